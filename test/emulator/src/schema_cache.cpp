#include "molt/emulator/schema_cache.hpp"

#include "molt/emulator/crdb_names.hpp"

namespace molt::emulator {

void schema_cache::reload_locked() {
    if (!db_) {
        auto c = pg_client::connect(conninfo_);
        if (!c) {
            return;
        }
        db_.emplace(std::move(*c));
    }
    auto rows = db_->query("SELECT nspname::text FROM pg_namespace");
    if (!rows) {
        db_.reset();  // a new connection next time
        return;
    }
    names_.clear();
    for (const pg_row& row : rows->rows) {
        names_.insert(row.at(0).value_or(""));
    }
    loaded_ = true;
}

bool schema_cache::has_prefix_locked(std::string_view prefix) const {
    const auto it = names_.lower_bound(prefix);
    return it != names_.end() && std::string_view(*it).substr(0, prefix.size()) == prefix;
}

bool schema_cache::schema_exists(std::string_view name) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (names_.count(name) != 0) {
        return true;
    }
    reload_locked();
    return !loaded_ || names_.count(name) != 0;
}

bool schema_cache::database_exists(std::string_view database) {
    const std::string prefix = crdb::database_prefix(database);
    const std::lock_guard<std::mutex> lock(mutex_);
    if (has_prefix_locked(prefix)) {
        return true;
    }
    reload_locked();
    return has_prefix_locked(prefix);
}

void schema_cache::added(const std::vector<std::string>& schemas) {
    const std::lock_guard<std::mutex> lock(mutex_);
    names_.insert(schemas.begin(), schemas.end());
}

void schema_cache::dropped_database(std::string_view database) {
    const std::string prefix = crdb::database_prefix(database);
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = names_.lower_bound(prefix);
         it != names_.end() && std::string_view(*it).substr(0, prefix.size()) == prefix;) {
        it = names_.erase(it);
    }
}

}  // namespace molt::emulator
