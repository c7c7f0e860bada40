// The SOCI mysql session behind target_session: parameters substituted by SOCI (escaped text),
// errors classified by MySQL error number.
#include <fmt/format.h>
#include <soci/mysql/soci-mysql.h>
#include <soci/soci.h>

#include "molt/common/log.hpp"
#include "molt/common/redact.hpp"
#include "molt/replicator/dialect/mysql.hpp"

namespace molt::replicator::mysql {
namespace {

std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    return redact_secrets(text);
}

class mysql_session final : public target_session {
public:
    explicit mysql_session(std::unique_ptr<soci::session> s) : sql_(std::move(s)) {}

    result<void> begin() override {
        return run([&] { sql_->begin(); });
    }
    result<void> commit() override {
        return run([&] { sql_->commit(); });
    }
    void rollback() noexcept override {
        try {
            sql_->rollback();
        } catch (const std::exception& e) {
            log::debug().err(trim(e.what())).msg("rollback failed");
        }
    }

    result<void> execute(const std::string& text, const sql_params& params) override {
        return run([&] {
            soci::statement st(*sql_);
            bind(st, text, params);
            st.execute(true);
        });
    }

    result<std::vector<sql_row>> query(const std::string& text, const sql_params& params) override {
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
                for (size_t i = 0; i < row.size(); ++i) {
                    if (row.get_indicator(i) == soci::i_null) {
                        out.emplace_back(std::nullopt);
                    } else if (row.get_properties(i).get_data_type() == soci::dt_string) {
                        out.emplace_back(row.get<std::string>(i));
                    } else if (row.get_properties(i).get_data_type() == soci::dt_long_long) {
                        out.emplace_back(std::to_string(row.get<long long>(i)));
                    } else if (row.get_properties(i).get_data_type() ==
                               soci::dt_unsigned_long_long) {
                        out.emplace_back(std::to_string(row.get<unsigned long long>(i)));
                    } else if (row.get_properties(i).get_data_type() == soci::dt_integer) {
                        out.emplace_back(std::to_string(row.get<int>(i)));
                    } else {
                        out.emplace_back(row.get<std::string>(i));
                    }
                }
                rows.push_back(std::move(out));
            } while (st.fetch());
        });
        if (!done) {
            return std::move(done).error();
        }
        return rows;
    }

    result<void> ping() override {
        return run([&] {
            int one = 0;
            *sql_ << "SELECT 1", soci::into(one);
        });
    }

private:
    void bind(soci::statement& st, const std::string& text, const sql_params& params) {
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
        st.prepare(text);
        st.define_and_bind();
    }

    template <typename Fn>
    result<void> run(Fn&& fn) {
        try {
            fn();
            return ok();
        } catch (const soci::mysql_soci_error& e) {
            const retry_class why = classify_error_number(e.err_num_);
            const errc code =
                why == retry_class::reconnect ? errc::unavailable : errc::database_error;
            return error{code, fmt::format("{} (MySQL error {})", trim(e.what()), e.err_num_), why};
        } catch (const soci::soci_error& e) {
            return error{errc::database_error, trim(e.what()), retry_class::fatal};
        }
    }

    std::unique_ptr<soci::session> sql_;
    std::vector<std::string> values_;
    std::vector<soci::indicator> indicators_;
};

}  // namespace

result<std::unique_ptr<target_session>> connect(const conn_url& url,
                                                std::chrono::nanoseconds lock_timeout) {
    try {
        auto s = std::make_unique<soci::session>(soci::mysql, url.soci_mysql());
        *s << "SET NAMES utf8mb4";
        *s << "SET SESSION time_zone = '+00:00'";
        *s << "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES')";
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(lock_timeout).count();
        if (seconds > 0) {
            *s << fmt::format("SET SESSION innodb_lock_wait_timeout = {}", seconds);
        }
        return std::unique_ptr<target_session>(std::make_unique<mysql_session>(std::move(s)));
    } catch (const std::exception& e) {
        return error{errc::unavailable,
                     fmt::format("cannot connect to {}: {}", url.redacted(), trim(e.what())),
                     retry_class::reconnect};
    }
}

}  // namespace molt::replicator::mysql
