#pragma once
// Rows the target refuses (replicator/README.md, "Rows the target refuses"): what both modes do
// when a row's apply fails with bad data (retry_class::fatal and target_dialect::row_data_error:
// NOT NULL, CHECK, a value too long or out of range, a bad number). The row is found by
// ordered_apply's row-by-row fallback, then, by --fatalRowPolicy:
//   stall (the default)  its transaction (consistent mode: its schema; immediate mode: its
//                        request) is retried until someone fixes the row or the table; the error
//                        names table and key, apply_stalled{schema} counts the stalled target
//                        transactions, and the log says so at error level at least once a minute;
//   dlq                  the row's savepoint is rolled back and a row is written to the
//                        dead-letter queue table (--dlqTableName, in the target schema) in the
//                        same target transaction, so the DLQ row, the other rows and the
//                        consistent mode's progress commit together; each is logged at error
//                        level after the commit and counted in dlq_rows_total{schema,table}.
// In the consistent mode a row a userscript's table-level handler refuses (refused_row) follows
// the same policy: stalled, or written to the DLQ as it was staged.
// The DLQ table is never created by the replicator: with dlq, a target schema is not applied
// until its DLQ table exists with the right columns (check_dlq_table), and the error prints the
// CREATE TABLE to run (target_dialect::dlq_ddl). Thread-safe.

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/error.hpp"
#include "molt/common/hlc.hpp"
#include "molt/common/metrics.hpp"
#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/core/schema.hpp"
#include "molt/replicator/core/target.hpp"

namespace molt::replicator {

struct planned_statement;

enum class fatal_row_policy { stall, dlq };

struct fatal_row_options {
    fatal_row_policy policy = fatal_row_policy::stall;  ///< --fatalRowPolicy
    std::string dlq_table = "replicator_dlq";           ///< --dlqTableName, in the target schema
};

/// The --fatalRowPolicy text: "stall" or "dlq".
[[nodiscard]] std::string_view to_string(fatal_row_policy p) noexcept;

/// Checks that `schema` has a DLQ table named `table` with the columns the insert needs
/// (dlq_name text, source_nanos and source_logical integers, data_after and data_before text or
/// JSON). The error (retry_class::fatal) names the table and prints the dialect's CREATE TABLE.
[[nodiscard]] result<void> check_dlq_table(const schema_snapshot& schema,
                                           const target_dialect& dialect, std::string_view table);

/// A target's error about one row without the row's values: SOCI's ` while executing "<sql>"
/// with :p1=...` and PostgreSQL's `DETAIL: Failing row contains (...)` are cut, the server's
/// message and its code ("(SQLSTATE 23514)", "(MySQL error 4025)") kept.
[[nodiscard]] std::string without_row_values(std::string_view message);

/// A row written to the DLQ, for the log line and the metric after the commit.
struct dead_letter {
    std::string table_name;  ///< the target table's own name (the metric's label)
    std::string table;       ///< its qualified name
    std::string key;         ///< the key as JSON, sanitised
    hlc at;
    std::string why;         ///< the target's error, or the userscript's
    bool by_script = false;  ///< a userscript's row handler refused it (refused_row)
};

/// A row a userscript's row handler refused (it threw, or returned what cannot be a row): the
/// mutation at `index` of table group `group` of the batch the handlers ran on. With dlq it goes
/// to the DLQ as it was staged, as a row the target refuses does; with stall its chunk stalls.
struct refused_row {
    size_t group = 0;
    size_t index = 0;
    std::string why;  ///< names the script, the handler, the table and the row's key
};

class fatal_rows {
public:
    fatal_rows(const target_dialect& dialect, metrics::registry& metrics,
               fatal_row_options options);

    [[nodiscard]] const fatal_row_options& options() const noexcept { return options_; }
    [[nodiscard]] bool diverts() const noexcept { return options_.policy == fatal_row_policy::dlq; }
    /// With dlq, the DLQ table's check (check_dlq_table); with stall, always fine.
    [[nodiscard]] result<void> ready(const schema_snapshot& schema) const;
    /// True when the policy diverts this error of one row to the DLQ.
    [[nodiscard]] bool diverts(const error& e) const;

    /// Writes the mutations of `st` (one row, rows == 1) at `at` to the DLQ, inside the caller's
    /// transaction (the row's own savepoint already rolled back).
    [[nodiscard]] result<void> divert(target_session& db, const schema_snapshot& schema,
                                      const proto::batch& rows, const planned_statement& st, hlc at,
                                      const error& why, std::vector<dead_letter>& letters) const;
    /// Writes the mutation `row` names in `rows` to the DLQ, inside the caller's transaction.
    [[nodiscard]] result<void> divert(target_session& db, const schema_snapshot& schema,
                                      const proto::batch& rows, const refused_row& row,
                                      std::vector<dead_letter>& letters) const;
    /// After the commit that holds them: one error line each, and dlq_rows_total.
    void report(const std::string& schema, const std::vector<dead_letter>& letters) const;

    /// A remedy for logs of a stalled row, naming the other policy.
    [[nodiscard]] std::string_view remedy() const noexcept;
    /// apply_stalled{schema}: +1 while a target transaction is stalled on a refusal, -1 after.
    void stalled(const std::string& schema, int delta) const;

private:
    /// Inserts one DLQ row for `m` of `table` (named `table_name` in the DLQ) into `dlq`.
    [[nodiscard]] result<void> insert(target_session& db, const table_info& dlq,
                                      const std::string& table_name, std::string_view topic,
                                      const proto::mutation& m) const;

    const target_dialect& dialect_;
    fatal_row_options options_;
    metrics::family<metrics::counter>& dead_letters_;
    metrics::family<metrics::gauge>& stalled_;
};

/// Counts one target transaction in apply_stalled{schema} from set() until it is destroyed.
class stall_mark {
public:
    stall_mark(const fatal_rows* fatal, std::string schema)
        : fatal_(fatal), schema_(std::move(schema)) {}
    ~stall_mark() {
        if (on_) {
            fatal_->stalled(schema_, -1);
        }
    }
    stall_mark(const stall_mark&) = delete;
    stall_mark& operator=(const stall_mark&) = delete;
    void set() {
        if (!on_ && fatal_ != nullptr) {
            fatal_->stalled(schema_, 1);
            on_ = true;
        }
    }

private:
    const fatal_rows* fatal_;
    std::string schema_;
    bool on_ = false;
};

/// Whether a stalled failure should be logged now: at attempts 1, 2, 4, 8, ... and, while it
/// lasts, at least once every `every` (the backoff caps at seconds, so powers of two alone would
/// fall silent for minutes).
class stall_log_pacer {
public:
    explicit stall_log_pacer(std::chrono::steady_clock::duration every = std::chrono::minutes(1))
        : every_(every) {}
    [[nodiscard]] bool due(int attempt, std::chrono::steady_clock::time_point now);

private:
    std::chrono::steady_clock::duration every_;
    std::chrono::steady_clock::time_point last_{};
};

}  // namespace molt::replicator
