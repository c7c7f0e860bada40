// The generator writes what a CockroachDB changefeed would: one message per key per
// transaction (its final version), foreign keys holding after every transaction.
#include "molt/emulator/generator.hpp"

#include <map>
#include <set>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "molt/emulator/capture.hpp"
#include "molt/emulator/rich_values.hpp"
#include "molt/emulator/spec.hpp"
#include "molt/proto/crdb_types.hpp"

using namespace molt;
using namespace molt::emulator;

TEST_CASE("generator: one message per key per transaction; foreign keys hold after each",
          "[emulator]") {
    generator_options options;
    options.keys = 40;  // a small keyspace: many deletes of parents with children
    options.max_rows = 6;
    options.seed = 5;
    generator g(default_spec(), options);
    const workload_spec& spec = g.spec();
    size_t replaced = 0;  // changes seen
    for (int i = 0; i < 3000; ++i) {
        const transaction txn = g.next();
        std::set<std::string> keys;
        for (const change& c : txn.changes) {
            INFO("transaction " << i << " at " << txn.updated.to_string());
            CHECK(keys.insert(fmt::format("{}/{}", c.table, c.pk)).second);
        }
        replaced += txn.changes.size();
        if (i % 25 != 0) {
            continue;
        }
        // The state after the transaction satisfies every foreign key.
        const auto state = g.state_at(txn.updated);
        for (size_t t = 0; t < spec.tables.size(); ++t) {
            for (const foreign_key_spec& fk : spec.tables[t].foreign_keys) {
                const auto column = static_cast<size_t>(spec.tables[t].column(fk.column) -
                                                        spec.tables[t].columns.data());
                size_t parent = 0;
                for (size_t p = 0; p < spec.tables.size(); ++p) {
                    parent = spec.tables[p].name == fk.references ? p : parent;
                }
                for (const auto& [pk, row] : state[t]) {
                    if (row[column]) {
                        INFO(spec.tables[t].name << " " << pk << " references " << *row[column]);
                        CHECK(state[parent].count(*row[column]) == 1);
                    }
                }
            }
        }
    }
    CHECK(replaced > 3000);
}

// A cluster's HLCs follow its wall clock, and transactions that touch no common key may share
// one; a key never has two versions at one HLC.
TEST_CASE("generator: wall-clock HLCs; some transactions share one, never a key", "[emulator]") {
    generator_options options;
    options.keys = 40;
    options.max_rows = 6;
    options.seed = 9;
    options.phantom_delete_rate = 0.1;
    options.wall_clock = true;
    options.shared_hlc_rate = 0.3;
    generator g(default_spec(), options);
    hlc previous;
    std::set<std::string> at_previous;  // keys written at `previous`
    uint64_t shared = 0;
    for (int i = 0; i < 2000; ++i) {
        const int64_t before = wall_clock_nanos();
        const transaction txn = g.next();
        INFO("transaction " << i << " at " << txn.updated.to_string());
        REQUIRE_FALSE(txn.updated < previous);
        if (txn.updated == previous) {
            ++shared;
        } else {
            CHECK(txn.updated.wall() >= before);
            at_previous.clear();
        }
        for (const change& c : txn.changes) {
            CHECK(at_previous.insert(fmt::format("{}/{}", c.table, c.pk)).second);
            CHECK(c.message.find(fmt::format("\"updated\": \"{}\"", txn.updated.to_string())) !=
                  std::string::npos);
        }
        if (txn.updated == previous || i % 50 == 0) {
            // The state as of its HLC holds what it wrote (a restamped one's events moved too).
            const auto state = g.state_at(txn.updated);
            for (const change& c : txn.changes) {
                const auto it = state[c.table].find(c.pk);
                if (c.row) {
                    REQUIRE(it != state[c.table].end());
                    CHECK(it->second == *c.row);
                } else {
                    CHECK(it == state[c.table].end());
                }
            }
        }
        previous = txn.updated;
    }
    CHECK(shared == g.shared_hlcs());
    CHECK(shared > 100);  // seeded: the draws and keys do not depend on the clock
}

TEST_CASE("generator: at_least_once opens with 2+ rows and a phantom delete, then goes by chance",
          "[emulator]") {
    for (uint64_t seed = 1; seed <= 50; ++seed) {
        generator_options options;
        options.seed = seed;
        options.phantom_delete_rate = 1e-12;  // never by chance
        options.at_least_once = true;
        generator g(default_spec(), options);
        INFO("seed " << seed);
        // Two rows, and the phantom delete on top.
        CHECK(g.next().changes.size() >= 3);
        CHECK(g.phantom_deletes() == 1);
        for (int i = 0; i < 100; ++i) {
            (void)g.next();
        }
        CHECK(g.phantom_deletes() == 1);
    }
    // Without it, one-row transactions (no foreign keys to pull parents in) and no phantoms.
    workload_spec spec = default_spec();
    for (table_spec& t : spec.tables) {
        t.foreign_keys.clear();
    }
    generator_options by_chance;
    by_chance.phantom_delete_rate = 1e-12;
    by_chance.min_rows = by_chance.max_rows = 1;
    generator g(spec, by_chance);
    for (int i = 0; i < 100; ++i) {
        CHECK(g.next().changes.size() == 1);
    }
    CHECK(g.phantom_deletes() == 0);
}

// ---- the rich profile ----

namespace {

generator_options rich_options(uint64_t seed) {
    generator_options options;
    options.seed = seed;
    options.keys = 60;  // a small keyspace: deletes and reinserts meet often
    options.max_rows = 5;
    options.rich_values = true;
    options.unique_reuse_rate = 0.5;
    options.unique_move_rate = 0.3;
    options.unique_swap_rate = 0.3;
    options.start_wall = 1'700'000'000'000'000'000;
    return options;
}

// The encoded messages of a generator's first `n` transactions.
std::vector<std::string> messages(generator& g, int n) {
    std::vector<std::string> out;
    for (int i = 0; i < n; ++i) {
        for (const change& c : g.next().changes) {
            out.push_back(c.message);
        }
    }
    return out;
}

bool has(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("rich profile: the same seed gives the same stream, another seed another", "[emulator]") {
    generator a(rich_spec(), rich_options(7));
    generator b(rich_spec(), rich_options(7));
    generator c(rich_spec(), rich_options(8));
    const auto first = messages(a, 300);
    CHECK(first == messages(b, 300));
    CHECK(first != messages(c, 300));
    CHECK(a.final_state() == b.final_state());
    CHECK(a.unique_changes().reuses == b.unique_changes().reuses);
    CHECK(a.unique_changes().swaps == b.unique_changes().swaps);
}

TEST_CASE("rich values: every kind the profile promises occurs, and each encodes", "[emulator]") {
    std::mt19937_64 rng(3);
    std::set<proto::json::type> json_top;
    bool json_null = false;
    for (int i = 0; i < 3000; ++i) {
        const std::string text = rich_json(rng);
        auto parsed = proto::json::parse(text);
        REQUIRE(parsed);
        json_top.insert(parsed->kind());
        json_null = json_null || text == "null";
        REQUIRE(proto::value_from_pg_text({proto::sql_type::jsonb, false}, text));
    }
    CHECK(json_top.size() == 6);  // null, boolean, number, string, array, object
    CHECK(json_null);

    bool before_1970 = false, after_2100 = false;
    for (int i = 0; i < 500; ++i) {
        const std::string d = rich_date(rng);
        before_1970 = before_1970 || d < "1970";
        after_2100 = after_2100 || d > "2101";
        CHECK(d >= "1000-01-01");
        CHECK(d <= "9999-12-31");
    }
    CHECK(before_1970);
    CHECK(after_2100);

    bool offset = false, nanos = false, carry = false;
    for (int i = 0; i < 2000; ++i) {
        const std::string t = rich_timestamp(rng, true, true);
        INFO(t);
        const size_t zone = t.find_first_of("+-", 19);
        REQUIRE(zone != std::string::npos);
        offset = offset || t.substr(zone) != "+00";
        const size_t dot = t.find('.');
        const std::string fraction =
            dot == std::string::npos ? "" : t.substr(dot + 1, zone - dot - 1);
        nanos = nanos || fraction.size() > 6;
        carry = carry || fraction == "999999999";
        CHECK(fraction.size() <= 9);
        // No tie for PostgreSQL's rounding to microseconds.
        CHECK((fraction.size() < 9 || fraction.substr(6) != "5"));
        CHECK((fraction.size() != 9 || fraction.substr(6) != "500"));
        // MySQL's TIMESTAMP range (portable), after the offset is applied.
        auto utc = proto::value_from_pg_text({proto::sql_type::timestamptz, false}, t);
        REQUIRE(utc);
        CHECK(utc->text() > "1970-01-01T00:00:01");
        CHECK(utc->text() < "2038-01-19T03:14:07");
    }
    CHECK(offset);
    CHECK(nanos);
    CHECK(carry);

    column_spec money;
    money.family = {proto::sql_type::decimal, false};
    money.precision = 38;
    money.scale = 10;
    std::set<std::string> decimals;
    for (int i = 0; i < 500; ++i) {
        decimals.insert(rich_decimal(money, rng));
    }
    CHECK(decimals.count("9999999999999999999999999999.9999999999") == 1);
    CHECK(decimals.count("-9999999999999999999999999999.9999999999") == 1);
    CHECK(decimals.count("0.0000000000") == 1);
    CHECK(decimals.count("-0.0000000000") == 1);
    CHECK(decimals.count("0.0000000001") == 1);
    CHECK(decimals.count("-0.0000000001") == 1);

    bool empty = false, four_byte = false, combining = false;
    for (int i = 0; i < 500; ++i) {
        const std::string s = rich_text(rng);
        empty = empty || s.empty();
        four_byte = four_byte || has(s, "🦀") || has(s, "𝄞");
        combining = combining || has(s, "e\u0301");
    }
    CHECK(empty);
    CHECK(four_byte);
    CHECK(combining);
    // Around 64 KiB, or (1 in 100; the seed gives some among 500) of megabytes.
    int huge = 0;
    for (int i = 0; i < 500; ++i) {
        const std::string big = long_text(rng);
        const bool megabytes = big.size() >= 1'000'000;
        huge += megabytes ? 1 : 0;
        CHECK(big.size() >= (megabytes ? 1'000'000 : 60'000));
        CHECK(big.size() < (megabytes ? 3'000'100 : 70'100));
        if (i == 0 || (megabytes && huge == 1)) {
            auto encoded = proto::value_from_pg_text({proto::sql_type::string, false}, big);
            REQUIRE(encoded);
            CHECK(encoded->text() == big);  // whole characters only: nothing to replace
        }
    }
    CHECK(huge > 0);
    CHECK(huge < 20);
}

TEST_CASE(
    "rich profile: UNIQUE values never collide at a transaction boundary; reuse, move and "
    "swap occur when forced, each alone",
    "[emulator]") {
    struct mode {
        const char* name;
        double reuse, move, swap;
    };
    for (const mode m : {mode{"reuse", 1, 0, 0}, mode{"move", 0, 1, 0}, mode{"swap", 0, 0, 1},
                         mode{"all", 0.5, 0.3, 0.3}}) {
        INFO("mode " << m.name);
        generator_options options = rich_options(11);
        options.unique_reuse_rate = m.reuse;
        options.unique_move_rate = m.move;
        options.unique_swap_rate = m.swap;
        generator g(rich_spec(), options);
        const size_t users = 0, email = 1;
        REQUIRE(g.spec().tables[users].name == "wl_rich_users");
        REQUIRE(g.spec().tables[users].columns[email].unique);
        // Replays the changes as a target would, and checks after each transaction.
        std::map<std::string, std::string> email_of;  // pk -> email (rows with one)
        std::set<std::string> freed;                  // emails whose row was deleted
        size_t reused = 0, moved = 0, swapped = 0;
        for (int i = 0; i < 2000; ++i) {
            const transaction txn = g.next();
            // The emails of the rows this transaction changed, before and after it.
            std::map<std::string, std::optional<std::string>> before, after;
            for (const change& c : txn.changes) {
                if (c.table != users) {
                    continue;
                }
                const auto old = email_of.find(c.pk);
                before[c.pk] = old != email_of.end() ? std::optional(old->second) : std::nullopt;
                after[c.pk] = c.row ? (*c.row)[email] : std::nullopt;
                if (old != email_of.end() && !c.row) {
                    freed.insert(old->second);
                }
            }
            for (const auto& [pk, value] : after) {
                email_of.erase(pk);
            }
            for (const auto& [pk, value] : after) {
                if (!value) {
                    continue;
                }
                email_of[pk] = *value;
                reused += freed.erase(*value);
                // Taken from another row this transaction changed: swapped, or moved.
                for (const auto& [other, was] : before) {
                    if (other != pk && was == value) {
                        const bool swap = before[pk] && after[other] == before[pk];
                        swapped += swap ? 1 : 0;
                        moved += swap ? 0 : 1;
                    }
                }
            }
            std::map<std::string, std::string> holder;
            for (const auto& [pk, value] : email_of) {
                const auto [held, fresh] = holder.emplace(value, pk);
                INFO("transaction " << i << ": " << value << " on " << pk << " and "
                                    << held->second);
                REQUIRE(fresh);
            }
        }
        // The replay agrees with the generator's own state.
        std::map<std::string, std::string> expected;
        const auto final_state = g.final_state();
        for (const auto& [pk, row] : final_state[users]) {
            if (row[email]) {
                expected[pk] = *row[email];
            }
        }
        CHECK(email_of == expected);
        const unique_counts& counts = g.unique_changes();
        CHECK((counts.reuses > 0) == (m.reuse > 0));
        CHECK((counts.moves > 0) == (m.move > 0));
        CHECK((counts.swaps > 0) == (m.swap > 0));
        // Seen in the stream itself, not only counted.
        CHECK((reused > 0) == (m.reuse > 0));
        CHECK((moved > 0) == (m.move > 0));
        CHECK((swapped > 0) == (m.swap > 0));
    }
}

TEST_CASE("rich spec: UNIQUE and TEXT reach the DDL of both dialects", "[emulator]") {
    const workload_spec spec = rich_spec();
    const auto pg = spec.ddl(dialect::postgres, false);
    const auto my = spec.ddl(dialect::mysql, false);
    CHECK(has(pg[0], R"(UNIQUE ("email"))"));
    CHECK(has(my[0], "UNIQUE (`email`)"));
    CHECK(has(my[0], "`bio` LONGTEXT"));
    CHECK(has(my[0], "`email` VARCHAR(255)"));
    CHECK(has(my[0], "DECIMAL(38,10)"));
    // The default spec is as it was: no UNIQUE, no LONGTEXT.
    for (const std::string& sql : default_spec().ddl(dialect::mysql, false)) {
        CHECK_FALSE(has(sql, "UNIQUE"));
        CHECK_FALSE(has(sql, "LONGTEXT"));
    }
}
