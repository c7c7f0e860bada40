#pragma once
// target_session over a SOCI session, shared by the SOCI-based dialects. Parameters are bound
// as text with NULL indicators; query results come back as text whatever the column type. Every
// exception becomes a molt::error; the dialect classifies its own driver errors through
// classify().

#include <memory>
#include <string>
#include <vector>

#include <soci/soci.h>

#include "molt/replicator/core/target.hpp"

namespace molt::replicator {

class soci_session : public target_session {
public:
    explicit soci_session(std::unique_ptr<soci::session> s) : sql_(std::move(s)) {}

    result<void> begin() override;
    result<void> commit() override;
    void rollback() noexcept override;
    result<void> execute(const std::string& sql, const sql_params& params) override;
    result<std::vector<sql_row>> query(const std::string& sql, const sql_params& params) override;
    result<void> ping() override;
    bool broken() const noexcept override { return broken_; }

protected:
    /// Turns a driver error into a molt::error with a retry_class. Called inside a catch block,
    /// so the dialect may rethrow to inspect the exception's type.
    [[nodiscard]] virtual error classify_current_exception() = 0;

    /// Around every call into the driver (a dialect may bound it, e.g. with a watchdog).
    virtual void before_call() {}
    virtual void after_call() noexcept {}

    /// Message text without the statement and values SOCI appends, without trailing newlines,
    /// secrets redacted.
    [[nodiscard]] static std::string clean(std::string text);

    soci::session& sql() { return *sql_; }

private:
    template <typename Fn>
    result<void> run(Fn&& fn);
    void bind(soci::statement& st, const std::string& text, const sql_params& params);

    std::unique_ptr<soci::session> sql_;
    std::vector<std::string> values_;
    std::vector<soci::indicator> indicators_;
    bool broken_ = false;
};

}  // namespace molt::replicator
