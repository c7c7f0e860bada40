#pragma once
// The schema names of one backend database, for resolving CockroachDB names (crdb_names.hpp)
// without a round trip per statement. Read on first use; read again when a lookup misses (a
// schema made since, by anyone), and told at once about the stand-in's own CREATE DATABASE,
// CREATE SCHEMA and DROP DATABASE (which may still be in an open transaction). A schema dropped
// by other means may linger as present: resolution then maps a name PostgreSQL reports as
// missing, which is CockroachDB's error too. Thread-safe.

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "molt/emulator/pg_client.hpp"

namespace molt::emulator {

class schema_cache {
public:
    /// `conninfo`: libpq's, for the database whose schemas these are.
    explicit schema_cache(std::string conninfo) : conninfo_(std::move(conninfo)) {}

    /// True too while the names could never be read (then names are left as written).
    [[nodiscard]] bool schema_exists(std::string_view name);
    /// Whether an emulated database has a schema (crdb_names.hpp's layout).
    [[nodiscard]] bool database_exists(std::string_view database);

    void added(const std::vector<std::string>& schemas);
    void dropped_database(std::string_view database);

private:
    // Reads the names again; keeps the old ones when the backend cannot answer.
    void reload_locked();
    [[nodiscard]] bool has_prefix_locked(std::string_view prefix) const;

    std::string conninfo_;
    std::mutex mutex_;
    std::optional<pg_client> db_;
    bool loaded_ = false;
    std::set<std::string, std::less<>> names_;
};

}  // namespace molt::emulator
