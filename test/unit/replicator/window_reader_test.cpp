// The window reader: a k-way merge of staging tables by HLC that never splits a source
// transaction, skips applied ranges, and starts strictly after the committed checkpoint.
#include "molt/replicator/sequencer/window_reader.hpp"

#include <map>
#include <tuple>

#include <catch2/catch.hpp>

using namespace molt;
using namespace molt::replicator;

namespace {

// Staging tables in memory, read with staging_store::read's contract.
struct fake_staging {
    std::map<std::string, std::vector<stored_mutation>> tables;  // sorted by (HLC, key)
    std::vector<std::tuple<std::string, hlc, std::string>> reads;
    bool fail = false;

    void add(const std::string& table, hlc t, std::string key) {
        auto& rows = tables[table];
        rows.push_back({t, key, table + ":" + key});
        std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
            return std::tie(a.updated, a.key) < std::tie(b.updated, b.key);
        });
    }

    stage_page_reader reader() {
        return [this](const std::string& table, hlc after, const std::string& after_key, hlc upto,
                      size_t limit) -> result<std::vector<stored_mutation>> {
            reads.emplace_back(table, after, after_key);
            if (fail) {
                return error{errc::unavailable, "staging is down"};
            }
            std::vector<stored_mutation> page;
            for (const stored_mutation& m : tables[table]) {
                if (std::tie(m.updated, m.key) > std::tie(after, after_key) && m.updated <= upto &&
                    page.size() < limit) {
                    page.push_back(m);
                }
            }
            return page;
        };
    }
};

std::vector<source_transaction> read_all(window_reader& r) {
    std::vector<source_transaction> out;
    for (;;) {
        auto tx = r.next();
        REQUIRE(tx);
        if (!*tx) {
            return out;
        }
        out.push_back(std::move(**tx));
    }
}

}  // namespace

TEST_CASE("window reader merges tables by HLC and keeps each source transaction whole",
          "[sequencer]") {
    fake_staging s;
    // HLC 10: five rows in a (pages of 2 split it) and one in b; HLC 20: b only; 30: a only.
    for (const char* k : {"[1]", "[2]", "[3]", "[4]", "[5]"}) {
        s.add("a", hlc(10, 0), k);
    }
    s.add("b", hlc(10, 0), "[9]");
    s.add("b", hlc(20, 0), "[9]");
    s.add("a", hlc(30, 0), "[1]");
    s.add("a", hlc(40, 0), "[1]");  // above the resolved timestamp: not read
    window_reader r(s.reader(), {{"a", 0}, {"b", 1}}, hlc(5, 0), hlc(30, 0), 2, {});
    auto txs = read_all(r);
    REQUIRE(txs.size() == 3);
    CHECK(txs[0].time == hlc(10, 0));
    CHECK(txs[0].rows.size() == 6);
    CHECK(txs[0].rows.back().position == 1);
    CHECK(txs[0].rows.back().message == "b:[9]");
    CHECK(txs[1].time == hlc(20, 0));
    CHECK(txs[1].rows.size() == 1);
    CHECK(txs[2].time == hlc(30, 0));
    CHECK(r.rows_read() == 8);
}

TEST_CASE("window reader starts strictly after the committed checkpoint", "[sequencer]") {
    fake_staging s;
    s.add("a", hlc(10, 0), "[1]");  // at the committed checkpoint: applied already
    s.add("a", hlc(10, 1), "[1]");
    window_reader r(s.reader(), {{"a", 0}}, hlc(10, 0), hlc(20, 0), 100, {});
    auto txs = read_all(r);
    REQUIRE(txs.size() == 1);
    CHECK(txs[0].time == hlc(10, 1));
    REQUIRE_FALSE(s.reads.empty());
    CHECK(std::get<1>(s.reads.front()) == hlc(10, 1));
}

TEST_CASE("window reader skips ranges already applied but counts their rows", "[sequencer]") {
    fake_staging s;
    for (int64_t t = 1; t <= 6; ++t) {
        s.add("a", hlc(t * 10, 0), "[1]");
    }
    // [20, 30] and [50, 50] committed by an earlier attempt of this window.
    window_reader r(s.reader(), {{"a", 0}}, hlc(), hlc(60, 0), 4,
                    {{hlc(20, 0), hlc(30, 0)}, {hlc(50, 0), hlc(50, 0)}});
    auto txs = read_all(r);
    REQUIRE(txs.size() == 3);
    CHECK(txs[0].time == hlc(10, 0));
    CHECK(txs[1].time == hlc(40, 0));
    CHECK(txs[2].time == hlc(60, 0));
    CHECK(r.rows_read() == 6);
}

TEST_CASE("window reader reports a staging failure", "[sequencer]") {
    fake_staging s;
    s.add("a", hlc(10, 0), "[1]");
    s.fail = true;
    window_reader r(s.reader(), {{"a", 0}}, hlc(), hlc(60, 0), 4, {});
    auto tx = r.next();
    REQUIRE_FALSE(tx);
    CHECK_THAT(tx.error().message(), Catch::Contains("staging is down"));
}

TEST_CASE("a backlog over several resolved timestamps is cut into windows of about N rows",
          "[sequencer]") {
    // Rows staged and not applied, by the resolved timestamp that covered them; 90 and 95 are
    // rows above the newest resolved timestamp (80), not resolved yet.
    const std::map<hlc, int64_t> unapplied{{hlc(10, 0), 40}, {hlc(20, 0), 30},  {hlc(30, 0), 50},
                                           {hlc(80, 0), 10}, {hlc(90, 0), 500}, {hlc(95, 0), 1}};
    // The oldest resolved timestamp whose window reaches the size.
    CHECK(window_end(unapplied, hlc(5, 0), hlc(80, 0), 60) == hlc(20, 0));
    CHECK(window_end(unapplied, hlc(5, 0), hlc(80, 0), 40) == hlc(10, 0));
    CHECK(window_end(unapplied, hlc(5, 0), hlc(80, 0), 1) == hlc(10, 0));
    // Counted from the committed checkpoint on.
    CHECK(window_end(unapplied, hlc(10, 0), hlc(80, 0), 60) == hlc(30, 0));
    // Never past the newest resolved timestamp, however many rows wait above it.
    CHECK(window_end(unapplied, hlc(5, 0), hlc(80, 0), 1000) == hlc(80, 0));
    CHECK(window_end(unapplied, hlc(30, 0), hlc(80, 0), 60) == hlc(80, 0));
    // Nothing known (a backlog an earlier process left is one entry): the newest.
    CHECK(window_end({}, hlc(5, 0), hlc(80, 0), 60) == hlc(80, 0));
    // A retried window never ends below a transaction it committed (its checkpoint clears the
    // applied ranges): here one at 25, so not 20.
    CHECK(window_end(unapplied, hlc(5, 0), hlc(80, 0), 60, hlc(25, 0)) == hlc(30, 0));
    CHECK(window_end(unapplied, hlc(5, 0), hlc(80, 0), 60, hlc(30, 0)) == hlc(30, 0));
    CHECK(window_end(unapplied, hlc(5, 0), hlc(80, 0), 60, hlc(31, 0)) == hlc(80, 0));
}

// A source transaction larger than the limit (a schema-change backfill) is handed out without
// its rows, having held no more than about the limit: the rows are read page by page as it
// applies. What follows it is read as usual.
TEST_CASE("window reader: a source transaction above the large limit comes without its rows",
          "[sequencer]") {
    fake_staging s;
    s.add("a", hlc(10, 0), "[1]");
    for (int k = 0; k < 25; ++k) {
        s.add(k % 2 == 0 ? "a" : "b", hlc(20, 0), "[" + std::to_string(100 + k) + "]");
    }
    s.add("a", hlc(30, 0), "[2]");
    s.add("b", hlc(30, 0), "[3]");
    size_t most = 0;  // rows the largest page asked for
    auto counting = [&](const std::string& table, hlc after, const std::string& after_key, hlc upto,
                        size_t limit) {
        most = std::max(most, limit);
        return s.reader()(table, after, after_key, upto, limit);
    };
    window_reader r(counting, {{"a", 0}, {"b", 1}}, hlc(5, 0), hlc(40, 0), 4, {}, 10);
    const auto txs = read_all(r);
    REQUIRE(txs.size() == 3);
    CHECK(txs[0].time == hlc(10, 0));
    CHECK(txs[0].rows.size() == 1);
    CHECK_FALSE(txs[0].large);
    CHECK(txs[1].time == hlc(20, 0));
    CHECK(txs[1].large);
    CHECK(txs[1].rows.empty());
    CHECK(txs[2].time == hlc(30, 0));
    CHECK_FALSE(txs[2].large);
    CHECK(txs[2].rows.size() == 2);
    CHECK(most == 4);
    // Fewer rows read than staged at HLC 20: it stopped at the limit and skipped the rest.
    CHECK(r.rows_read() < 1 + 25 + 2);

    // At the limit exactly: an ordinary transaction.
    window_reader whole(s.reader(), {{"a", 0}, {"b", 1}}, hlc(5, 0), hlc(40, 0), 4, {}, 25);
    const auto all = read_all(whole);
    REQUIRE(all.size() == 3);
    CHECK_FALSE(all[1].large);
    CHECK(all[1].rows.size() == 25);
}

TEST_CASE("window reader: a large source transaction already applied is skipped, not read whole",
          "[sequencer]") {
    fake_staging s;
    for (int k = 0; k < 40; ++k) {
        s.add("a", hlc(20, 0), "[" + std::to_string(100 + k) + "]");
    }
    s.add("a", hlc(30, 0), "[2]");
    window_reader r(s.reader(), {{"a", 0}}, hlc(5, 0), hlc(40, 0), 4, {{hlc(20, 0), hlc(20, 0)}},
                    10);
    const auto txs = read_all(r);
    REQUIRE(txs.size() == 1);
    CHECK(txs[0].time == hlc(30, 0));
    CHECK(r.rows_read() <= 12 + 1);  // the limit and a page, not 40
}

TEST_CASE("window reader: a source transaction above the byte limit is large too", "[sequencer]") {
    fake_staging s;
    for (int k = 0; k < 5; ++k) {
        s.add("a", hlc(20, 0), "[" + std::to_string(100 + k) + "]");  // messages of 7 bytes
    }
    s.add("a", hlc(30, 0), "[2]");
    window_reader r(s.reader(), {{"a", 0}}, hlc(5, 0), hlc(40, 0), 4, {}, 100, 30);
    const auto txs = read_all(r);
    REQUIRE(txs.size() == 2);
    CHECK(txs[0].large);
    CHECK_FALSE(txs[1].large);
}
