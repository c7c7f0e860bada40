#include "molt/replicator/sequencer/window_reader.hpp"

#include <algorithm>

namespace molt::replicator {

hlc window_end(const std::map<hlc, int64_t>& unapplied, hlc committed, hlc proposed, int64_t rows,
               hlc at_least) {
    int64_t total = 0;
    for (auto it = unapplied.upper_bound(committed); it != unapplied.end() && it->first < proposed;
         ++it) {
        total += it->second;
        if (total >= rows && !(it->first < at_least)) {
            return it->first;
        }
    }
    return proposed;
}

window_reader::window_reader(stage_page_reader read, std::vector<window_table> tables,
                             hlc committed, hlc resolved, size_t page_size, applied_ranges applied,
                             size_t large_rows, size_t large_bytes)
    : read_(std::move(read)),
      resolved_(resolved),
      page_size_(std::max<size_t>(1, page_size)),
      applied_(std::move(applied)),
      large_rows_(large_rows),
      large_bytes_(large_bytes) {
    for (window_table& t : tables) {
        // Rows after (committed.next(), ""): staged keys are never empty, so this is every row
        // above the committed checkpoint.
        cursors_.push_back({std::move(t), {}, committed.next(), "", false});
    }
}

bool window_reader::applied(hlc t) const {
    return std::any_of(applied_.begin(), applied_.end(),
                       [t](const auto& r) { return r.first <= t && t <= r.second; });
}

result<void> window_reader::refill(cursor& c) {
    if (!c.rows.empty() || c.exhausted) {
        return ok();
    }
    auto page = read_(c.table.stage_table, c.after, c.after_key, resolved_, page_size_);
    if (!page) {
        return page.error();
    }
    c.exhausted = page->size() < page_size_;
    if (!page->empty()) {
        c.after = page->back().updated;
        c.after_key = page->back().key;
    }
    for (stored_mutation& m : *page) {
        c.rows.push_back(std::move(m));
    }
    return ok();
}

result<std::optional<source_transaction>> window_reader::next() {
    for (;;) {
        std::optional<hlc> time;
        for (cursor& c : cursors_) {
            if (auto r = refill(c); !r) {
                return r.error();
            }
            if (!c.rows.empty() && (!time || c.rows.front().updated < *time)) {
                time = c.rows.front().updated;
            }
        }
        if (!time) {
            return std::optional<source_transaction>();
        }
        const bool skip = applied(*time);
        source_transaction tx{*time, {}};
        size_t at_time = 0;  // rows of this HLC read (skipped ones too)
        size_t bytes = 0;    // and their messages' bytes
        bool skipped_past = false;
        for (cursor& c : cursors_) {
            if (skipped_past) {
                break;
            }
            for (;;) {
                if (auto r = refill(c); !r) {
                    return r.error();
                }
                if (c.rows.empty() || c.rows.front().updated != *time) {
                    break;
                }
                stored_mutation m = std::move(c.rows.front());
                c.rows.pop_front();
                ++rows_read_;
                bytes += m.message.size();
                if (!skip) {
                    tx.rows.push_back({c.table.position, std::move(m.key), std::move(m.message)});
                }
                if ((large_rows_ > 0 && ++at_time > large_rows_) ||
                    (large_bytes_ > 0 && bytes > large_bytes_)) {
                    skip_past(*time);
                    if (!skip) {
                        return std::optional<source_transaction>(
                            source_transaction{*time, {}, true});
                    }
                    skipped_past = true;  // applied already: not read to the end either
                    break;
                }
            }
        }
        if (!skip) {
            return std::optional<source_transaction>(std::move(tx));
        }
    }
}

void window_reader::skip_past(hlc t) {
    for (cursor& c : cursors_) {
        while (!c.rows.empty() && c.rows.front().updated == t) {
            c.rows.pop_front();
        }
        if (c.rows.empty() && c.after == t) {
            // The next page starts after every row of `t` (staged keys are never empty).
            c.after = t.next();
            c.after_key.clear();
        }
    }
}

}  // namespace molt::replicator
