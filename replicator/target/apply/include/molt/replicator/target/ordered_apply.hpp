#pragma once
// Unique keys: applying a batch whose folded, set-based plan failed on a unique key (a value
// another row still holds). Both modes fold a batch per key and write it with multi-row
// statements; that is fast, but a unique value that moves between rows can collide on the way:
// `DELETE (pk=1, email=x); INSERT (pk=2, email=x)` fails when the upsert runs first, and a
// changefeed gives no row order inside one source transaction (row 2 moves y -> z while new row
// 4 takes y). On such a failure the caller rolls back and calls apply_in_source_order, which,
// in one target transaction the caller began (so readers still see only whole batches):
//   1. takes the batch's source transactions one at a time, in HLC order (each is a state the
//      source had, so its unique keys hold after it);
//   2. tries each one set-based (upserts first, then deletes first), inside a savepoint;
//   3. if both collide, writes its rows one statement each, deletes first, retrying the rows that
//      collide (unique key or foreign key) after the others, for as long as that makes progress:
//      every order a row-by-row source could have used is found this way. A transaction that
//      deletes rows another table references is never written deletes first (no set-based
//      second try; row by row, upserts first): a delete could cascade into a child the
//      transaction moves to another parent, and take the child's children;
//   4. what is left is a cycle (a swap: x <-> y between two rows), which no row order can
//      write. When no table of the schema references the table by foreign key (so no delete
//      can cascade or be refused) and each row carries every column, the rows of the cycle are
//      deleted and inserted again, inside the same transaction. Otherwise it fails with
//      retry_class::fatal and a message saying so: the caller stalls loudly (consistent mode:
//      retried with backoff and logged as an error; immediate mode: 400, the changefeed retries).
// A source transaction whose set-based statements fail on bad data (retry_class::fatal) is
// written row by row too, to find the row: it is named in the error (its key), or, when
// `fatal` diverts it (--fatalRowPolicy dlq, fatal_rows.hpp), rolled back to its savepoint and
// written to the dead-letter queue in the same transaction; the caller reports
// `dead_letters` once it commits.
// On failure the transaction is rolled back.

#include <cstddef>
#include <vector>

#include "molt/common/result.hpp"
#include "molt/proto/batch.hpp"
#include "molt/replicator/core/schema.hpp"
#include "molt/replicator/core/target.hpp"
#include "molt/replicator/target/fatal_rows.hpp"

namespace molt::replicator {

struct ordered_apply_stats {
    size_t transactions = 0;                ///< source transactions
    size_t row_by_row = 0;                  ///< of those, written one row at a time
    size_t reinserted = 0;                  ///< rows of swaps deleted and inserted again
    std::vector<dead_letter> dead_letters;  ///< rows written to the DLQ
};

/// The quick form, tried first by the consistent mode (fewer round trips): each source
/// transaction's set-based statements (upserts first), in HLC order, without savepoints. A
/// failure rolls the target transaction back and is returned (the caller then begins again and
/// calls apply_in_source_order). Returns the number of source transactions.
[[nodiscard]] result<size_t> apply_transactions_in_order(target_session& db,
                                                         const schema_snapshot& schema,
                                                         const proto::batch& rows,
                                                         const target_dialect& dialect,
                                                         size_t rows_per_statement);

[[nodiscard]] result<ordered_apply_stats> apply_in_source_order(
    target_session& db, const schema_snapshot& schema, const proto::batch& rows,
    const target_dialect& dialect, size_t rows_per_statement, const fatal_rows* fatal = nullptr);

}  // namespace molt::replicator
