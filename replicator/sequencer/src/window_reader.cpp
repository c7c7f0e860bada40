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
                             hlc committed, hlc resolved, size_t page_size, applied_ranges applied)
    : read_(std::move(read)),
      resolved_(resolved),
      page_size_(std::max<size_t>(1, page_size)),
      applied_(std::move(applied)) {
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
        for (cursor& c : cursors_) {
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
                if (!skip) {
                    tx.rows.push_back({c.table.position, std::move(m.key), std::move(m.message)});
                }
            }
        }
        if (!skip) {
            return std::optional<source_transaction>(std::move(tx));
        }
    }
}

}  // namespace molt::replicator
