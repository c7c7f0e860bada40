#pragma once
// Reads one resolved window (committed, resolved] back from the staging tables of a target
// schema: a k-way merge of every table's pages by HLC that hands out whole source transactions
// (all rows of one HLC, across pages and tables, together), in HLC order. HLCs inside a range an
// earlier attempt already applied are read and skipped.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "molt/common/hlc.hpp"
#include "molt/common/result.hpp"
#include "molt/replicator/staging/staging_store.hpp"

namespace molt::replicator {

/// A page of one staging table: rows in (after, upto] ordered by (HLC, key), strictly after
/// (after, after_key), at most `limit` (staging_store::read).
using stage_page_reader = std::function<result<std::vector<stored_mutation>>(
    const std::string& stage_table, hlc after, const std::string& after_key, hlc upto,
    size_t limit)>;

/// A staging table to read, and its target table's parent-first position.
struct window_table {
    std::string stage_table;
    size_t position = 0;
};

struct window_row {
    size_t position = 0;  ///< the target table's parent-first position
    std::string key;      ///< the staged key (a column family's topic may follow a tab)
    std::string message;  ///< the v2 webhook message
};

/// Every staged row of one HLC.
struct source_transaction {
    hlc time;
    std::vector<window_row> rows;
    /// Above the reader's large limits (a schema-change backfill, a bulk write): `rows`
    /// is empty, and they are read page by page while it applies (chunk_hooks::read_large).
    bool large = false;
};

/// Closed HLC ranges [first, last] already applied.
using applied_ranges = std::vector<std::pair<hlc, hlc>>;

/// Where the next window ends: the oldest resolved timestamp in [at_least, proposed] whose
/// window (from `committed`) holds at least `rows` unapplied rows (`unapplied`: staged rows not
/// applied yet, keyed by the resolved timestamp that covered them; keys above `proposed` are
/// rows not resolved yet), or `proposed` when none does. A backlog (after an outage, or an
/// applier behind its stream) is applied in windows of about `rows`, so the committed
/// checkpoint keeps moving. `at_least`: the newest transaction a window in progress committed
/// (a retried window never ends below what it applied; its checkpoint clears those ranges).
[[nodiscard]] hlc window_end(const std::map<hlc, int64_t>& unapplied, hlc committed, hlc proposed,
                             int64_t rows, hlc at_least = hlc());

class window_reader {
public:
    /// A source transaction of more than `large_rows` rows or `large_bytes` bytes of messages
    /// (0: no limit) is handed out as `large`, without its rows: memory holds at most about
    /// that much and a page per table.
    window_reader(stage_page_reader read, std::vector<window_table> tables, hlc committed,
                  hlc resolved, size_t page_size, applied_ranges applied, size_t large_rows = 0,
                  size_t large_bytes = 0);

    /// The next source transaction outside the applied ranges; nullopt after the last.
    [[nodiscard]] result<std::optional<source_transaction>> next();

    /// Rows read so far, skipped ones included (a large transaction's: those read to find it).
    [[nodiscard]] size_t rows_read() const noexcept { return rows_read_; }

private:
    struct cursor {
        window_table table;
        std::deque<stored_mutation> rows;
        hlc after;
        std::string after_key;
        bool exhausted = false;
    };
    result<void> refill(cursor& c);
    [[nodiscard]] bool applied(hlc t) const;
    /// Moves every cursor past the rows of HLC `t`, reading no more of them.
    void skip_past(hlc t);

    stage_page_reader read_;
    std::vector<cursor> cursors_;
    hlc resolved_;
    size_t page_size_;
    applied_ranges applied_;
    size_t large_rows_ = 0;
    size_t large_bytes_ = 0;
    size_t rows_read_ = 0;
};

}  // namespace molt::replicator
