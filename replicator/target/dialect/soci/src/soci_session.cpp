#include "molt/replicator/dialect/soci_session.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/common/redact.hpp"

namespace molt::replicator {
namespace {

// A column value as text, whatever type SOCI reports.
std::optional<std::string> column_text(const soci::row& row, size_t i) {
    if (row.get_indicator(i) == soci::i_null) {
        return std::nullopt;
    }
    switch (row.get_properties(i).get_data_type()) {
    case soci::dt_string: return row.get<std::string>(i);
    case soci::dt_integer: return std::to_string(row.get<int>(i));
    case soci::dt_long_long: return std::to_string(row.get<long long>(i));
    case soci::dt_unsigned_long_long: return std::to_string(row.get<unsigned long long>(i));
    case soci::dt_double: return fmt::format("{}", row.get<double>(i));
    case soci::dt_date: {
        const std::tm t = row.get<std::tm>(i);
        return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.tm_year + 1900, t.tm_mon + 1,
                           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
    }
    default: return row.get<std::string>(i);
    }
}

}  // namespace

std::string soci_session::clean(std::string text) {
    // SOCI's what() appends the statement and every bound value (the sessions pass
    // get_error_message(), without them; this is for any other text): kilobytes per multi-row
    // statement, and row data that has no place in logs and HTTP answers.
    for (const char* context : {" while executing \"", " while preparing \""}) {
        if (const size_t at = text.find(context); at != std::string::npos) {
            text.erase(at);
        }
    }
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '.')) {
        text.pop_back();
    }
    return redact_secrets(text);
}

template <typename Fn>
result<void> soci_session::run(Fn&& fn) {
    struct call_scope {
        soci_session& s;
        explicit call_scope(soci_session& session) : s(session) { s.before_call(); }
        ~call_scope() { s.after_call(); }
        call_scope(const call_scope&) = delete;
        call_scope& operator=(const call_scope&) = delete;
    };
    try {
        const call_scope scope(*this);
        fn();
        return ok();
    } catch (const soci::soci_error&) {
        error e = classify_current_exception();
        broken_ = broken_ || e.retry() == retry_class::reconnect;
        return e;
    } catch (const std::exception& e) {
        // Not a database error: a conversion or a bug. Never retried.
        return error{errc::internal, clean(e.what()), retry_class::fatal};
    }
}

void soci_session::bind(soci::statement& st, const std::string& text, const sql_params& params) {
    // The value and indicator arrays must not move until the statement has run.
    values_.clear();
    indicators_.clear();
    values_.reserve(params.size());
    indicators_.reserve(params.size());
    for (const auto& p : params) {
        values_.push_back(p.value_or(std::string()));
        indicators_.push_back(p ? soci::i_ok : soci::i_null);
    }
    for (size_t i = 0; i < params.size(); ++i) {
        st.exchange(soci::use(values_[i], indicators_[i]));
    }
    st.alloc();
    st.prepare(text, soci::details::st_one_time_query);
    st.define_and_bind();
}

void soci_session::forget(const std::string& text) {
    if (const auto it = prepared_index_.find(text); it != prepared_index_.end()) {
        const auto node = it->second;
        prepared_index_.erase(it);  // its key points into the node
        retired_.push_back(std::move(node->second));
        prepared_.erase(node);
    }
}

result<void> soci_session::begin() {
    return run([&] { sql_->begin(); });
}

result<void> soci_session::commit() {
    return run([&] {
        sql_->commit();
        retired_.clear();
    });
}

void soci_session::rollback() noexcept {
    try {
        before_call();
        sql_->rollback();
        retired_.clear();
        after_call();
    } catch (const std::exception& e) {
        after_call();
        broken_ = true;
        log::debug().err(clean(e.what())).msg("rollback failed; the session is closed");
    }
}

soci_session::prepared& soci_session::prepare_cached(const std::string& text, size_t parameters) {
    if (const auto it = prepared_index_.find(text); it != prepared_index_.end()) {
        if (it->second->second.values.size() == parameters) {
            prepared_.splice(prepared_.begin(), prepared_, it->second);
            return prepared_.front().second;
        }
        forget(text);
    }
    prepared p;
    p.values.resize(parameters);
    p.indicators.resize(parameters, soci::i_ok);
    p.statement = std::make_unique<soci::statement>(*sql_);
    for (size_t i = 0; i < parameters; ++i) {
        p.statement->exchange(soci::use(p.values[i], p.indicators[i]));
    }
    p.statement->alloc();
    p.statement->prepare(text);
    p.statement->define_and_bind();
    if (prepared_.size() >= max_prepared) {
        forget(prepared_.back().first);
    }
    prepared_.emplace_front(text, std::move(p));
    prepared_index_.emplace(prepared_.front().first, prepared_.begin());
    return prepared_.front().second;
}

result<void> soci_session::execute(const std::string& text, const sql_params& params) {
    if (auto late = past_deadline()) {
        return *late;
    }
    return run([&] {
        if (send_inline(text, params)) {
            return;
        }
        soci::statement st(*sql_);
        bind(st, text, params);
        st.execute(true);
    });
}

result<void> soci_session::execute_reused(const std::string& text, const sql_params& params) {
    if (auto late = past_deadline()) {
        return *late;
    }
    auto done = run([&] {
        prepared& p = prepare_cached(text, params.size());
        for (size_t i = 0; i < params.size(); ++i) {
            p.values[i] = params[i].value_or(std::string());
            p.indicators[i] = params[i] ? soci::i_ok : soci::i_null;
        }
        p.statement->execute(true);
        for (std::string& v : p.values) {
            std::string().swap(v);  // a cached statement holds no row data between runs
        }
    });
    if (!done) {
        // Prepared again next time: after an error the statement's state is not trusted.
        forget(text);
    }
    return done;
}

result<void> soci_session::execute_array(const std::string& text, const sql_params& params,
                                         size_t rows) {
    if (auto late = past_deadline()) {
        return *late;
    }
    if (rows == 0 || params.size() % rows != 0) {
        return error{
            errc::internal,
            fmt::format("{} array values do not make whole arrays of {} rows", params.size(), rows),
            retry_class::fatal};
    }
    const size_t count = params.size() / rows;
    auto width = [&](size_t p, size_t r) {
        const std::optional<std::string>& v = params[p * rows + r];
        return (v ? v->size() : 0) + 1;
    };
    // A driver buffers every row of a parameter at the width of its longest value (ODBC: one
    // fixed-width buffer per parameter), so one long value among many short ones would cost
    // rows x its length: rows go in runs whose buffers stay within max_array_bytes_ (a row
    // larger than that alone).
    std::vector<size_t> widest(count);
    std::vector<std::vector<std::string>> values(count);
    std::vector<std::vector<soci::indicator>> indicators(count);
    for (size_t first = 0; first < rows;) {
        std::fill(widest.begin(), widest.end(), size_t{0});
        size_t end = first;
        for (; end < rows; ++end) {
            size_t bytes = 0;
            for (size_t p = 0; p < count; ++p) {
                bytes += std::max(widest[p], width(p, end)) * (end - first + 1);
            }
            if (end > first && bytes > max_array_bytes_) {
                break;
            }
            for (size_t p = 0; p < count; ++p) {
                widest[p] = std::max(widest[p], width(p, end));
            }
        }
        // The arrays must not move until the statement has run.
        for (size_t p = 0; p < count; ++p) {
            values[p].clear();
            indicators[p].clear();
            for (size_t r = first; r < end; ++r) {
                const std::optional<std::string>& v = params[p * rows + r];
                values[p].push_back(v.value_or(std::string()));
                indicators[p].push_back(v ? soci::i_ok : soci::i_null);
            }
        }
        auto done = run([&] {
            soci::statement st(*sql_);
            for (size_t p = 0; p < count; ++p) {
                st.exchange(soci::use(values[p], indicators[p]));
            }
            st.alloc();
            st.prepare(text);
            st.define_and_bind();
            before_array_execute(st, end - first);
            try {
                st.execute(true);
            } catch (const soci::soci_error&) {
                throw;
            } catch (const std::exception&) {
                array_execute_failed(st);
                throw;
            }
            after_array_execute(st, end - first);
        });
        if (!done) {
            return done;
        }
        first = end;
    }
    return ok();
}

result<std::vector<sql_row>> soci_session::query(const std::string& text,
                                                 const sql_params& params) {
    if (auto late = past_deadline()) {
        return *late;
    }
    std::vector<sql_row> rows;
    auto done = run([&] {
        soci::statement st(*sql_);
        soci::row row;
        st.exchange(soci::into(row));
        bind(st, text, params);
        if (!st.execute(true)) {
            return;
        }
        do {
            sql_row out;
            out.reserve(row.size());
            for (size_t i = 0; i < row.size(); ++i) {
                out.push_back(column_text(row, i));
            }
            rows.push_back(std::move(out));
        } while (st.fetch());
    });
    if (!done) {
        return std::move(done).error();
    }
    return rows;
}

result<void> soci_session::ping() {
    return run([&] {
        int one = 0;
        *sql_ << "SELECT 1", soci::into(one);
    });
}

}  // namespace molt::replicator
