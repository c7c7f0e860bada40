// The SOCI postgresql session behind target_session: text parameters, errors classified by
// SQLSTATE, broken connections detected from libpq's status.
#include <fmt/format.h>
#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include "molt/common/log.hpp"
#include "molt/common/redact.hpp"
#include "molt/replicator/dialect/postgres.hpp"

namespace molt::replicator::postgres {
namespace {

class postgres_session final : public target_session {
public:
    explicit postgres_session(std::unique_ptr<soci::session> s) : sql_(std::move(s)) {}

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
            log::debug().err(redact_secrets(e.what())).msg("rollback failed");
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
    // Binds text parameters; the value and indicator arrays must outlive execution.
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

    bool connection_ok() const {
        auto* backend = static_cast<soci::postgresql_session_backend*>(sql_->get_backend());
        return backend != nullptr && PQstatus(backend->conn_) == CONNECTION_OK;
    }

    template <typename Fn>
    result<void> run(Fn&& fn) {
        try {
            fn();
            return ok();
        } catch (const soci::postgresql_soci_error& e) {
            const std::string state = e.sqlstate();
            retry_class why = classify_sqlstate(state);
            if (!connection_ok()) {
                why = retry_class::reconnect;
            }
            const errc code =
                why == retry_class::reconnect ? errc::unavailable : errc::database_error;
            return error{code, fmt::format("{} (SQLSTATE {})", trim(e.what()), state), why};
        } catch (const soci::soci_error& e) {
            const retry_class why = connection_ok() ? retry_class::fatal : retry_class::reconnect;
            return error{why == retry_class::reconnect ? errc::unavailable : errc::database_error,
                         trim(e.what()), why};
        }
    }

    static std::string trim(std::string text) {
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
            text.pop_back();
        }
        return redact_secrets(text);
    }

    std::unique_ptr<soci::session> sql_;
    std::vector<std::string> values_;
    std::vector<soci::indicator> indicators_;
};

}  // namespace

result<std::unique_ptr<target_session>> connect(const conn_url& url,
                                                std::chrono::nanoseconds statement_timeout) {
    std::string conninfo = url.libpq_conninfo();
    if (!url.param("application_name")) {
        conninfo += " application_name=replicator";
    }
    try {
        auto s = std::make_unique<soci::session>(soci::postgresql, conninfo);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(statement_timeout);
        if (ms.count() > 0) {
            *s << fmt::format("SET statement_timeout = {}", ms.count());
        }
        return std::unique_ptr<target_session>(std::make_unique<postgres_session>(std::move(s)));
    } catch (const std::exception& e) {
        std::string message = e.what();
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
            message.pop_back();
        }
        return error{
            errc::unavailable,
            fmt::format("cannot connect to {}: {}", url.redacted(), redact_secrets(message)),
            retry_class::reconnect};
    }
}

}  // namespace molt::replicator::postgres
