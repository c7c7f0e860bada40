// The generator writes what a CockroachDB changefeed would: one message per key per
// transaction (its final version), foreign keys holding after every transaction.
#include "molt/emulator/generator.hpp"

#include <set>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "molt/emulator/spec.hpp"

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
