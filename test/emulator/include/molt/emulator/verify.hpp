#pragma once
// Proves the target right: reads every table of the spec from the target and compares it, row
// by row and column by column, with an expected state (the generator's final state, or its state
// as of an earlier resolved timestamp). Values are compared by meaning per type (booleans
// true/1, timestamps as instants, floats as doubles, JSON with sorted keys, bytes as hex).

#include <map>
#include <string>
#include <vector>

#include "molt/common/conn_url.hpp"
#include "molt/common/result.hpp"
#include "molt/emulator/generator.hpp"

namespace molt::emulator {

struct verify_report {
    size_t rows_expected = 0;
    size_t rows_found = 0;
    size_t missing = 0;                    ///< expected rows absent from the target
    size_t unexpected = 0;                 ///< target rows that should not exist
    size_t differing = 0;                  ///< rows present on both sides with different values
    std::vector<std::string> differences;  ///< the first ones, by table and key

    [[nodiscard]] bool ok() const noexcept {
        return missing == 0 && unexpected == 0 && differing == 0;
    }
};

[[nodiscard]] result<verify_report> verify_target(
    const conn_url& target, const workload_spec& spec,
    const std::vector<std::map<std::string, row_values>>& expected, size_t max_reported = 20);

/// A sampled check of a consistent-mode target: what its progress table says it holds, and how
/// the tables compare with the generator's state for exactly that.
struct progress_check {
    bool ready = false;  ///< false: the target has no committed checkpoint yet (nothing checked)
    hlc committed;       ///< every transaction up to here is applied
    std::vector<std::pair<hlc, hlc>> ranges;  ///< plus those inside these (a window in progress)
    verify_report report;
};

/// Reads the replicator's _replicator_progress table and every table of the spec in one
/// snapshot (REPEATABLE READ / CONSISTENT SNAPSHOT) and compares the tables with the generator's
/// state for the transactions the progress covers: never a partial transaction, never a
/// regressed row.
[[nodiscard]] result<progress_check> check_progress(const conn_url& target, const generator& g,
                                                    size_t max_reported = 20);

/// Runs the spec's DDL on the target (dropping its tables first).
[[nodiscard]] result<void> create_tables(const conn_url& target, const workload_spec& spec);

/// A spec read from the target's catalog (integer primary keys, single-column foreign keys).
[[nodiscard]] result<workload_spec> introspect_spec(const conn_url& target);

}  // namespace molt::emulator
