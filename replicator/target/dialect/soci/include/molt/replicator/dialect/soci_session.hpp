#pragma once
// target_session over a SOCI session, shared by the SOCI-based dialects. Parameters are bound
// as text with NULL indicators; query results come back as text whatever the column type. Every
// exception becomes a molt::error; the dialect classifies its own driver errors through
// classify(). execute() and query() send each statement once (PostgreSQL: one round trip, an
// unnamed statement); execute_reused() keeps the statement prepared in the session (the 64 most
// recently used texts) and runs it again with new values; one that fails is prepared again the
// next time. execute_array() binds std::vector<std::string> columns (SOCI's vector use).

#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <soci/soci.h>

#include "molt/replicator/core/target.hpp"

namespace molt::replicator {

class soci_session : public target_session {
public:
    /// `max_array_bytes`: the most buffer bytes one execution of execute_array() binds (below).
    explicit soci_session(std::unique_ptr<soci::session> s,
                          size_t max_array_bytes = 32 * 1024 * 1024)
        : sql_(std::move(s)), max_array_bytes_(max_array_bytes) {}

    result<void> begin() override;
    result<void> commit() override;
    void rollback() noexcept override;
    result<void> execute(const std::string& sql, const sql_params& params) override;
    result<void> execute_reused(const std::string& sql, const sql_params& params) override;
    result<void> execute_array(const std::string& sql, const sql_params& params,
                               size_t rows) override;
    result<std::vector<sql_row>> query(const std::string& sql, const sql_params& params) override;
    result<void> ping() override;
    bool broken() const noexcept override { return broken_; }

protected:
    /// Turns a driver error into a molt::error with a retry_class. Called inside a catch block,
    /// so the dialect may rethrow to inspect the exception's type.
    [[nodiscard]] virtual error classify_current_exception() = 0;

    /// For execute(): sends `text` with `params` written into it, as a dialect whose driver
    /// substitutes parameters on the client anyway (SOCI's MySQL backend) can do without
    /// SOCI's per-value objects. Throws as the driver does. false: not done, bind as usual.
    virtual bool send_inline(const std::string& /*text*/, const sql_params& /*params*/) {
        return false;
    }

    /// Around every call into the driver (a dialect may bound it, e.g. with a watchdog).
    virtual void before_call() {}
    virtual void after_call() noexcept {}

    /// Around each execution of execute_array() with `rows` rows, once the statement is
    /// prepared and bound: a dialect may check each row's outcome and throw (as SOCI does).
    virtual void before_array_execute(soci::statement& /*st*/, size_t /*rows*/) {}
    virtual void after_array_execute(soci::statement& /*st*/, size_t /*rows*/) {}
    /// When executing a parameter array threw something other than a SOCI error (SOCI 4.0.3's
    /// ODBC backend throws std::out_of_range when a failed execution processed no row, as a
    /// query timeout does, and the driver's diagnostic is gone by then): a dialect may throw
    /// what it can tell instead. Returning rethrows the original.
    virtual void array_execute_failed(soci::statement& /*st*/) {}

    /// Message text without the statement and values SOCI appends, without trailing newlines,
    /// secrets redacted.
    [[nodiscard]] static std::string clean(std::string text);

    soci::session& sql() { return *sql_; }

    /// Calls `fn` on every statement the session keeps prepared (cached, or retired and waiting
    /// for the end of the transaction). For a dialect's destructor: closing the connection frees
    /// them on the server, so it can keep the driver from freeing each one first.
    template <typename Fn>
    void for_each_kept_statement(Fn&& fn) {
        for (auto& [text, p] : prepared_) {
            fn(*p.statement);
        }
        for (prepared& p : retired_) {
            fn(*p.statement);
        }
    }

private:
    // A statement prepared once and run again with new values (PostgreSQL: a server-side
    // prepared statement, planned once it has run a few times), with the buffers its values are
    // bound to.
    struct prepared {
        std::unique_ptr<soci::statement> statement;
        std::vector<std::string> values;
        std::vector<soci::indicator> indicators;
    };
    static constexpr size_t max_prepared = 64;

    template <typename Fn>
    result<void> run(Fn&& fn);
    void bind(soci::statement& st, const std::string& text, const sql_params& params);
    /// Drops the cached statement for `text`, if any. Its DEALLOCATE waits for the end of the
    /// transaction (an aborted one refuses it): retired_ is cleared after commit and rollback.
    void forget(const std::string& text);
    /// The prepared statement for `text`, prepared now if it is not cached (the least recently
    /// used one is dropped beyond max_prepared). Throws as SOCI does.
    prepared& prepare_cached(const std::string& text, size_t parameters);

    std::unique_ptr<soci::session> sql_;
    std::vector<std::string> values_;
    std::vector<soci::indicator> indicators_;
    std::list<std::pair<std::string, prepared>> prepared_;  // most recently used first
    std::unordered_map<std::string_view, decltype(prepared_)::iterator> prepared_index_;
    std::vector<prepared> retired_;
    size_t max_array_bytes_;
    bool broken_ = false;
};

}  // namespace molt::replicator
