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

    // Schema changes: backfill (default) or not, stop; which changes count.
    CHECK(o->on_schema_change == schema_change_policy::backfill);
    CHECK(o->schema_events == schema_change_events::default_events);
    o = parse_changefeed_options(
        opts{{"schema_change_policy", "stop"}, {"schema_change_events", "column_changes"}});
    REQUIRE(o);
    CHECK(o->on_schema_change == schema_change_policy::stop);
    CHECK(o->schema_events == schema_change_events::column_changes);
    o = parse_changefeed_options(opts{{"schema_change_policy", "nobackfill"}});
    REQUIRE(o);
    CHECK(o->on_schema_change == schema_change_policy::nobackfill);
    CHECK(refused({{"schema_change_policy", "ignore"}}) == "unknown schema_change_policy: ignore");
    CHECK(refused({{"schema_change_events", "all"}}) == "unknown schema_change_events: all");
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

namespace {

// fam (id bigint PRIMARY KEY, a text, b text, c text, FAMILY f1 (id, a), FAMILY f2 (b, c)).
table_info fam() {
    table_info t;
    t.database = "appdb";
    t.schema = "public";
    t.name = "fam";
    t.topic = "fam";
    t.columns = {{"id", "bigint"}, {"a", "text"}, {"b", "text"}, {"c", "text"}};
    t.primary_key = {"id"};
    t.replica_identity = 'f';
    t.families = {{"f1", {"id", "a"}}, {"f2", {"b", "c"}}};
    return t;
}

std::string fam_row(int id, std::string_view a, std::string_view b, std::string_view c) {
    return fmt::format(
        R"([{{"name":"id","type":"bigint","typeoid":20,"value":{}}},{{"name":"a","type":"text","typeoid":25,"value":"{}"}},{{"name":"b","type":"text","typeoid":25,"value":"{}"}},{{"name":"c","type":"text","typeoid":25,"value":"{}"}}])",
        id, a, b, c);
}

// One transaction of wal2json lines for table fam: "I"/"U"/"D" with new and old rows.
source_txn fam_txn(uint32_t xid,
                   const std::vector<std::tuple<char, std::string, std::string>>& rows) {
    const std::string ts = R"("timestamp":"2026-11-26 18:56:03.350861+00")";
    const std::string x = fmt::format(R"("xid":{},)", xid);
    std::vector<std::string> lines{R"({"action":"B",)" + x + ts + "}"};
    for (const auto& [op, columns, identity] : rows) {
        std::string l =
            fmt::format(R"({{"action":"{}",)", op) + x + ts + R"(,"schema":"public","table":"fam")";
        if (!columns.empty()) {
            l += R"(,"columns":)" + columns;
        }
        if (!identity.empty()) {
            l += R"(,"identity":)" + identity;
        }
        lines.push_back(l + "}");
    }
    lines.push_back(R"({"action":"C",)" + x + ts + "}");
    auto txns = read(lines);
    REQUIRE(txns.size() == 1);
    return txns[0];
}

}  // namespace

TEST_CASE("column families: one stream per family, an update sends the families it changed",
          "[changefeed][families]") {
    changefeed_options o;
    o.message.updated = false;
    const hlc at(1, 0);
    const auto insert = fam_txn(900, {{'I', fam_row(1, "a1", "b1", "c1"), ""}});
    // Every family of an inserted row; the key in each, the key column only in its own.
    CHECK(texts(feed_changes(insert, {fam()}, o, at)) ==
          std::vector<std::string>{
              R"({"after": {"a": "a1", "id": 1}, "key": [1], "topic": "fam.f1"})",
              R"({"after": {"b": "b1", "c": "c1"}, "key": [1], "topic": "fam.f2"})"});
    const auto changes = feed_changes(insert, {fam()}, o, at);
    REQUIRE(changes);
    // One row's families share its key's hash (CockroachDB routes by the row key): in order.
    CHECK((*changes)[0].key_hash == key_hash("fam", "[1]"));
    CHECK((*changes)[1].key_hash == key_hash("fam", "[1]"));

    // An update of c: family f2 only (old and new rows compared per family).
    const auto update_c =
        fam_txn(901, {{'U', fam_row(1, "a1", "b1", "c2"), fam_row(1, "a1", "b1", "c1")}});
    CHECK(texts(feed_changes(update_c, {fam()}, o, at)) ==
          std::vector<std::string>{
              R"({"after": {"b": "b1", "c": "c2"}, "key": [1], "topic": "fam.f2"})"});
    // An update that changes nothing sends nothing; two updates in one transaction, each of
    // one family, send both families once (their final values).
    const auto same =
        fam_txn(902, {{'U', fam_row(1, "a1", "b1", "c2"), fam_row(1, "a1", "b1", "c2")}});
    CHECK(feed_changes(same, {fam()}, o, at)->empty());
    const auto both =
        fam_txn(903, {{'U', fam_row(1, "a2", "b1", "c2"), fam_row(1, "a1", "b1", "c2")},
                      {'U', fam_row(1, "a2", "b3", "c2"), fam_row(1, "a2", "b1", "c2")},
                      {'U', fam_row(1, "a4", "b3", "c2"), fam_row(1, "a2", "b3", "c2")}});
    CHECK(texts(feed_changes(both, {fam()}, o, at)) ==
          std::vector<std::string>{
              R"({"after": {"a": "a4", "id": 1}, "key": [1], "topic": "fam.f1"})",
              R"({"after": {"b": "b3", "c": "c2"}, "key": [1], "topic": "fam.f2"})"});

    // diff: each family's before image holds its own columns.
    o.message.diff = true;
    CHECK(
        texts(feed_changes(update_c, {fam()}, o, at)) ==
        std::vector<std::string>{
            R"({"after": {"b": "b1", "c": "c2"}, "before": {"b": "b1", "c": "c1"}, "key": [1], "topic": "fam.f2"})"});
    o.message.diff = false;

    // A delete: every family, after null.
    const auto erase = fam_txn(904, {{'D', "", fam_row(1, "a4", "b3", "c2")}});
    CHECK(texts(feed_changes(erase, {fam()}, o, at)) ==
          std::vector<std::string>{R"({"after": null, "key": [1], "topic": "fam.f1"})",
                                   R"({"after": null, "key": [1], "topic": "fam.f2"})"});

    // A primary-key change: the old key deleted and the new one inserted, in every family.
    const auto move =
        fam_txn(905, {{'U', fam_row(2, "a4", "b3", "c2"), fam_row(1, "a4", "b3", "c2")}});
    CHECK(texts(feed_changes(move, {fam()}, o, at)) ==
          std::vector<std::string>{
              R"({"after": null, "key": [1], "topic": "fam.f1"})",
              R"({"after": {"a": "a4", "id": 2}, "key": [2], "topic": "fam.f1"})",
              R"({"after": null, "key": [1], "topic": "fam.f2"})",
              R"({"after": {"b": "b3", "c": "c2"}, "key": [2], "topic": "fam.f2"})"});

    // TABLE fam FAMILY f2 alone; and both families as two targets, as split_column_families.
    table_info f2 = fam();
    f2.families = {fam().families[1]};
    CHECK(texts(feed_changes(insert, {f2}, o, at)) ==
          std::vector<std::string>{
              R"({"after": {"b": "b1", "c": "c1"}, "key": [1], "topic": "fam.f2"})"});
    CHECK(feed_changes(update_c, {fam()}, o, at)->size() == 1);
    table_info f1 = fam();
    f1.families = {fam().families[0]};
    CHECK(texts(feed_changes(insert, {f1, f2}, o, at)) ==
          texts(feed_changes(insert, {fam()}, o, at)));
    CHECK(target_topics(fam()) == std::vector<std::string>{"fam.f1", "fam.f2"});
    table_info whole = fam();
    whole.families.clear();
    CHECK(target_topics(whole) == std::vector<std::string>{"fam"});
    CHECK(
        texts(feed_changes(update_c, {whole}, o, at)) ==
        std::vector<std::string>{
            R"({"after": {"a": "a1", "b": "b1", "c": "c2", "id": 1}, "key": [1], "topic": "fam"})"});
}

TEST_CASE("column families: a scan rewinds every target of a table", "[changefeed][families]") {
    table_info f1 = fam();
    f1.families = {fam().families[0]};
    table_info f2 = fam();
    f2.families = {fam().families[1]};
    auto row = [](std::string_view c) {
        return std::vector<column_value>{{"id", "bigint", "1"},
                                         {"a", "text", "a1"},
                                         {"b", "text", "b1"},
                                         {"c", "text", std::string(c)}};
    };
    scan_rows rows(2);
    rows[0][*scan_key(f1, row("c2"))] = row("c2");
    rows[1][*scan_key(f2, row("c2"))] = row("c2");
    const auto update_c =
        fam_txn(906, {{'U', fam_row(1, "a1", "b1", "c2"), fam_row(1, "a1", "b1", "c1")}});
    REQUIRE(rewind_rows(rows, {f1, f2}, {std::make_shared<const source_txn>(update_c)}));
    CHECK(*rows[0].begin()->second[3].text == "c1");
    CHECK(*rows[1].begin()->second[3].text == "c1");
}

TEST_CASE("changefeed options: split_column_families, and not with resolved",
          "[changefeed][families]") {
    using opts = std::vector<std::pair<std::string, std::optional<std::string>>>;
    auto o = parse_changefeed_options(opts{{"split_column_families", std::nullopt}});
    REQUIRE(o);
    CHECK(o->split_column_families);
    CHECK_FALSE(parse_changefeed_options(opts{})->split_column_families);
    auto refused =
        parse_changefeed_options(opts{{"split_column_families", std::nullopt}, {"resolved", "1s"}});
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message() ==
          "resolved timestamps are not currently supported with split_column_families for this "
          "sink as the set of topics to fan them out to may change. Instead, use TABLE tablename "
          "FAMILY familyname to specify individual families to watch.");
}

TEST_CASE("schema changes CockroachDB backfills, by schema_change_events", "[emulator]") {
    const column_def id{"id", "bigint", false};
    const column_def v{"v", "text", false};
    auto change = [](std::vector<column_def> before, std::vector<column_def> after) {
        return schema_change{1, std::move(before), std::move(after)};
    };
    const auto defaults = schema_change_events::default_events;
    const auto columns = schema_change_events::column_changes;
    // ADD COLUMN with a default (or computed): both.
    const auto with_default = change({id}, {id, {"n", "bigint", true}});
    CHECK(backfills(with_default, defaults));
    CHECK(backfills(with_default, columns));
    // ADD COLUMN, nullable without a default: column_changes only.
    const auto nullable = change({id}, {id, v});
    CHECK_FALSE(backfills(nullable, defaults));
    CHECK(backfills(nullable, columns));
    // DROP COLUMN: both.
    CHECK(backfills(change({id, v}, {id}), defaults));
    CHECK(backfills(change({id, v}, {id}), columns));
    // A type change alone: neither (not emulated as a backfill).
    CHECK_FALSE(backfills(change({id, v}, {id, {"v", "character varying(10)", false}}), defaults));
    CHECK_FALSE(backfills(change({id, v}, {id, {"v", "character varying(10)", false}}), columns));
}
