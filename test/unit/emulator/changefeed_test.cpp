// From wal2json's output to changefeed messages: transactions, one message per key with its
// final version, primary-key changes as delete + insert, before images, exact bytes. The
// wal2json lines are what PostgreSQL 15 with wal2json 2.5 printed for these statements.
#include "molt/emulator/changefeed.hpp"

#include <catch2/catch.hpp>
#include <fmt/format.h>

using namespace molt;
using namespace molt::emulator;

namespace {

table_info w2j() {
    table_info t;
    t.database = "appdb";
    t.schema = "public";
    t.name = "w2j";
    t.topic = "w2j";
    t.columns = {{"id", "bigint"},
                 {"k2", "text"},
                 {"v", "numeric"},
                 {"by", "bytea"},
                 {"ts", "timestamp with time zone"}};
    t.primary_key = {"k2", "id"};  // not the column order
    return t;
}

std::string cols(std::string_view k2, std::string_view v) {
    return fmt::format(
        R"([{{"name":"id","type":"bigint","typeoid":20,"value":1}},{{"name":"k2","type":"text","typeoid":25,"value":"{}"}},{{"name":"v","type":"numeric","typeoid":1700,"value":{}}},{{"name":"by","type":"bytea","typeoid":17,"value":"01ff"}},{{"name":"ts","type":"timestamp with time zone","typeoid":1184,"value":"2026-11-26 18:56:03.348057+00"}}])",
        k2, v);
}

std::string key_identity(std::string_view k2) {
    return fmt::format(
        R"([{{"name":"id","type":"bigint","typeoid":20,"value":1}},{{"name":"k2","type":"text","typeoid":25,"value":"{}"}}])",
        k2);
}

std::vector<source_txn> read(const std::vector<std::string>& lines) {
    wal2json_reader reader;
    std::vector<source_txn> out;
    for (const std::string& l : lines) {
        auto r = reader.add(l);
        INFO(l);
        REQUIRE(r);
        if (*r) {
            out.push_back(std::move(**r));
            CHECK(reader.commit_nanos() > 0);
        }
    }
    return out;
}

std::vector<std::string> texts(const result<std::vector<change>>& changes) {
    REQUIRE(changes);
    std::vector<std::string> out;
    for (const change& c : *changes) {
        out.push_back(c.message);
    }
    return out;
}

}  // namespace

TEST_CASE("wal2json transactions become one message per key, in CockroachDB's bytes",
          "[changefeed]") {
    const std::string ts = R"("timestamp":"2026-11-26 18:56:03.350861+00")";
    const std::string head = R"("schema":"public","table":"w2j",)";
    const auto txns = read({
        R"({"action":"B","xid":733,)" + ts + "}",
        R"({"action":"I","xid":733,)" + ts + "," + head + R"("columns":)" + cols("a", "1.50") + "}",
        R"({"action":"U","xid":733,)" + ts + "," + head + R"("columns":)" + cols("a", "2.00") +
            R"(,"identity":)" + key_identity("a") + "}",
        R"({"action":"U","xid":733,)" + ts + "," + head + R"("columns":)" + cols("b", "2.00") +
            R"(,"identity":)" + key_identity("a") + "}",
        R"({"action":"C","xid":733,)" + ts + "}",
        R"({"action":"B","xid":734,)" + ts + "}",
        R"({"action":"M","xid":734,)" + ts +
            R"(,"transactional":true,"prefix":"crdb_emulator","content":"frontier"})",
        R"({"action":"C","xid":734,)" + ts + "}",
        R"({"action":"B","xid":735,)" + ts + "}",
        R"({"action":"D","xid":735,)" + ts + "," + head + R"("identity":)" + key_identity("b") +
            "}",
        R"({"action":"C","xid":735,)" + ts + "}",
    });
    // The marker transaction (messages only) is not one.
    REQUIRE(txns.size() == 2);
    CHECK(txns[0].xid == 733);
    CHECK(txns[0].changes.size() == 3);

    const hlc at(1795719968571317637, 2);
    changefeed_options o;
    o.message.updated = true;
    const auto first = feed_changes(txns[0], {w2j()}, o, at);
    // The row inserted under ("a", 1) and moved to ("b", 1) in the same transaction: a delete
    // of the old key (never seen, as CockroachDB sends it) and the new row.
    CHECK(
        texts(first) ==
        std::vector<std::string>{
            R"({"after": null, "key": ["a", 1], "topic": "w2j", "updated": "1795719968571317637.0000000002"})",
            R"({"after": {"by": "\\x01ff", "id": 1, "k2": "b", "ts": "2026-11-26T18:56:03.348057Z", "v": 2.00}, "key": ["b", 1], "topic": "w2j", "updated": "1795719968571317637.0000000002"})"});
    CHECK((*first)[0].key_hash != (*first)[1].key_hash);
    CHECK((*first)[1].key_hash == key_hash("w2j", R"(["b", 1])"));

    const auto second = feed_changes(txns[1], {w2j()}, o, at);
    CHECK(
        texts(second) ==
        std::vector<std::string>{
            R"({"after": null, "key": ["b", 1], "topic": "w2j", "updated": "1795719968571317637.0000000002"})"});

    // Tables outside the feed are left out.
    table_info other = w2j();
    other.name = "other";
    CHECK(feed_changes(txns[0], {other}, o, at)->empty());
}

TEST_CASE("diff: before images from REPLICA IDENTITY FULL; null for inserts", "[changefeed]") {
    const std::string ts = R"("timestamp":"2026-11-26 18:56:03.350861+00")";
    const std::string head = R"("schema":"public","table":"w2j",)";
    const auto txns = read({
        R"({"action":"B","xid":800,)" + ts + "}",
        R"({"action":"U","xid":800,)" + ts + "," + head + R"("columns":)" + cols("a", "3.00") +
            R"(,"identity":)" + cols("a", "2.00") + "}",
        R"({"action":"U","xid":800,)" + ts + "," + head + R"("columns":)" + cols("a", "4.00") +
            R"(,"identity":)" + cols("a", "3.00") + "}",
        R"({"action":"I","xid":800,)" + ts + "," + head + R"("columns":)" + cols("c", "1.00") + "}",
        R"({"action":"C","xid":800,)" + ts + "}",
    });
    REQUIRE(txns.size() == 1);
    changefeed_options o;
    o.message.updated = false;
    o.message.diff = true;
    // Two updates of one key: the last row, and the row from before the transaction.
    CHECK(
        texts(feed_changes(txns[0], {w2j()}, o, hlc(1, 0))) ==
        std::vector<std::string>{
            R"({"after": {"by": "\\x01ff", "id": 1, "k2": "a", "ts": "2026-11-26T18:56:03.348057Z", "v": 4.00}, "before": {"by": "\\x01ff", "id": 1, "k2": "a", "ts": "2026-11-26T18:56:03.348057Z", "v": 2.00}, "key": ["a", 1], "topic": "w2j"})",
            R"({"after": {"by": "\\x01ff", "id": 1, "k2": "c", "ts": "2026-11-26T18:56:03.348057Z", "v": 1.00}, "before": null, "key": ["c", 1], "topic": "w2j"})"});
}

TEST_CASE("wal2json input that does not fit is refused with a reason", "[changefeed]") {
    wal2json_reader reader;
    CHECK_FALSE(reader.add("not json"));
    CHECK_FALSE(reader.add(R"({"xid":1})"));
    CHECK_FALSE(reader.add(R"({"action":"I","schema":"public","table":"t","columns":[]})"));
    REQUIRE(reader.add(R"({"action":"B","xid":1})"));
    CHECK_FALSE(reader.add(R"({"action":"I","table":"t"})"));
    CHECK_FALSE(reader.add(R"({"action":"C","timestamp":"yesterday"})"));
}

TEST_CASE("changefeed options: CockroachDB's defaults and refusals", "[changefeed]") {
    using opts = std::vector<std::pair<std::string, std::optional<std::string>>>;
    auto o = parse_changefeed_options(opts{});
    REQUIRE(o);
    CHECK_FALSE(o->message.updated);
    CHECK_FALSE(o->resolved);
    CHECK(o->initial_scan == initial_scan_mode::yes);
    CHECK(o->checkpoint_interval == std::chrono::seconds(30));

    o = parse_changefeed_options(opts{{"updated", std::nullopt},
                                      {"resolved", "250ms"},
                                      {"min_checkpoint_frequency", "250ms"},
                                      {"cursor", "1759246920563173000.0000000000"},
                                      {"webhook_client_timeout", "10s"},
                                      {"webhook_auth_header", "Bearer t"}});
    REQUIRE(o);
    CHECK(o->message.updated);
    CHECK(o->resolved_interval == std::chrono::milliseconds(250));
    CHECK(o->initial_scan == initial_scan_mode::no);  // a cursor implies no scan
    CHECK(o->cursor == hlc(1759246920563173000, 0));
    CHECK(o->client_timeout == std::chrono::seconds(10));
    CHECK(o->auth_header == "Bearer t");
    // With initial_scan, a cursor is where the scan is (CockroachDB scans as of it).
    o = parse_changefeed_options(
        opts{{"cursor", "1759246920563173000.0000000000"}, {"initial_scan", "yes"}});
    REQUIRE(o);
    CHECK(o->initial_scan == initial_scan_mode::yes);

    auto refused = [](opts given) {
        auto r = parse_changefeed_options(given);
        REQUIRE_FALSE(r);
        return r.error().message();
    };
    CHECK(refused({{"envelope", "key_only"}}) ==
          "this sink is incompatible with envelope=key_only");
    CHECK(refused({{"initial_scan", "maybe"}}) == "unknown initial_scan: maybe");
    CHECK(refused({{"bogus", std::nullopt}}) == "invalid option \"bogus\"");
    CHECK(refused({{"resolved", "soon"}}) == "invalid duration value for resolved: 'soon'");
    CHECK(refused({{"webhook_sink_config", R"({"Flush":{"Messages":10}})"}}) ==
          "invalid sink config, Flush.Frequency is not set, messages may never be sent");
    CHECK(refused({{"extra_headers", "{}"}}).find("not emulated") != std::string::npos);

    // compression (v25.2+ webhook sinks): gzip or zstd in any case; the transport compresses.
    CHECK(o->compression == molt::compression::codec::identity);
    o = parse_changefeed_options(opts{{"compression", "GZIP"}});
    REQUIRE(o);
    CHECK(o->compression == molt::compression::codec::gzip);
    o = parse_changefeed_options(opts{{"compression", "zstd"}});
    REQUIRE(o);
    CHECK(o->compression == molt::compression::codec::zstd);
    CHECK(refused({{"compression", "br"}}) == "unsupported compression algorithm \"br\"");
    CHECK(refused({{"compression", ""}}) == "unsupported compression algorithm \"\"");
    CHECK(refused({{"compression", "x-gzip"}}) == "unsupported compression algorithm \"x-gzip\"");
}

TEST_CASE("snapshot visibility follows pg_current_snapshot()", "[changefeed]") {
    CHECK(visible_in_snapshot("740:745:741,743", 700));
    CHECK(visible_in_snapshot("740:745:741,743", 742));
    CHECK_FALSE(visible_in_snapshot("740:745:741,743", 741));
    CHECK_FALSE(visible_in_snapshot("740:745:741,743", 745));
    CHECK_FALSE(visible_in_snapshot("740:745:", 746));
    CHECK(visible_in_snapshot("740:745:", 744));
}

TEST_CASE("a scan as of an earlier HLC rewinds the snapshot through the history", "[changefeed]") {
    const std::string ts = R"("timestamp":"2026-11-26 18:56:03.350861+00")";
    const std::string head = R"("schema":"public","table":"w2j",)";
    // After the cursor: ("a",1) updated 2.00 -> 3.00, ("b",1) deleted, ("c",1) inserted, then
    // ("a",1) moved to ("d",1).
    const auto txns = read({
        R"({"action":"B","xid":900,)" + ts + "}",
        R"({"action":"U","xid":900,)" + ts + "," + head + R"("columns":)" + cols("a", "3.00") +
            R"(,"identity":)" + cols("a", "2.00") + "}",
        R"({"action":"D","xid":900,)" + ts + "," + head + R"("identity":)" + cols("b", "7.00") +
            "}",
        R"({"action":"I","xid":900,)" + ts + "," + head + R"("columns":)" + cols("c", "1.00") + "}",
        R"({"action":"C","xid":900,)" + ts + "}",
        R"({"action":"B","xid":901,)" + ts + "}",
        R"({"action":"U","xid":901,)" + ts + "," + head + R"("columns":)" + cols("d", "3.00") +
            R"(,"identity":)" + cols("a", "3.00") + "}",
        R"({"action":"C","xid":901,)" + ts + "}",
    });
    REQUIRE(txns.size() == 2);
    std::vector<std::shared_ptr<const source_txn>> undo;
    for (const source_txn& t : txns) {
        undo.push_back(std::make_shared<source_txn>(t));
    }
    const table_info t = w2j();
    auto row = [&](std::string k2, std::string v) {
        std::vector<column_value> r;
        for (const auto& [name, type] : t.columns) {
            r.push_back({name, type,
                         name == "k2"   ? k2
                         : name == "v"  ? v
                         : name == "id" ? "1"
                         : name == "by" ? "\\x01ff"
                                        : "2026-11-26 18:56:03+00"});
        }
        return r;
    };
    // The snapshot: the state after both transactions.
    scan_rows now(1);
    for (const auto& r : {row("c", "1.00"), row("d", "3.00"), row("e", "9.00")}) {
        now[0][*scan_key(t, r)] = r;
    }
    REQUIRE(rewind_rows(now, {t}, undo));
    std::map<std::string, std::string> values;  // k2 -> v
    for (const auto& [key, r] : now[0]) {
        CHECK(r.size() == t.columns.size());
        values[*r[1].text] = *r[2].text;
    }
    CHECK(values ==
          std::map<std::string, std::string>{{"a", "2.00"}, {"b", "7.00"}, {"e", "9.00"}});

    // Without the whole old row (REPLICA IDENTITY DEFAULT when it was made), or across a
    // TRUNCATE, the rows as they were are not known: refused, naming the table.
    const auto keyed = read({
        R"({"action":"B","xid":902,)" + ts + "}",
        R"({"action":"D","xid":902,)" + ts + "," + head + R"("identity":)" + key_identity("e") +
            "}",
        R"({"action":"C","xid":902,)" + ts + "}",
    });
    REQUIRE(keyed.size() == 1);
    scan_rows again(1);
    auto refused = rewind_rows(again, {t}, {std::make_shared<source_txn>(keyed[0])});
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message(), Catch::Contains("\"w2j\""));
    CHECK_THAT(refused.error().message(), Catch::Contains("old row"));
    source_txn truncate;
    truncate.changes.push_back(row_change{"public", "w2j", 'T', {}, {}});
    refused = rewind_rows(again, {t}, {std::make_shared<source_txn>(truncate)});
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error().message(), Catch::Contains("TRUNCATE"));
    // Other tables' changes are not this scan's.
    table_info other = t;
    other.name = "other";
    CHECK(rewind_rows(again, {other}, {std::make_shared<source_txn>(truncate)}));
}
