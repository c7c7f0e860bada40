#include "molt/replicator/core/schema.hpp"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "molt/replicator/core/target.hpp"

namespace molt::replicator {

bool value_mark_at(std::string_view expr, size_t i) noexcept {
    return i + 1 < expr.size() && expr[i] == '$' && expr[i + 1] == '0' &&
           (i + 2 == expr.size() || expr[i + 2] < '0' || expr[i + 2] > '9');
}

size_t value_params(const column_info& c) noexcept {
    if (c.expr.empty()) {
        return 1;
    }
    size_t n = 0;
    for (size_t i = 0; i < c.expr.size(); ++i) {
        n += value_mark_at(c.expr, i) ? 1 : 0;
    }
    return n;
}

void table_info::index_columns() {
    by_key_.clear();
    for (size_t i = 0; i < columns.size(); ++i) {
        by_key_.emplace(ident_key(columns[i].name), static_cast<int>(i));
    }
}

int table_info::column_index(std::string_view column) const {
    const auto it = by_key_.find(ident_key(column));
    return it == by_key_.end() ? -1 : it->second;
}

const column_info* table_info::find_column(std::string_view column) const {
    const int i = column_index(column);
    return i < 0 ? nullptr : &columns[static_cast<size_t>(i)];
}

void order_primary_key_first(table_info& t) {
    const auto pk_end =
        std::stable_partition(t.columns.begin(), t.columns.end(),
                              [](const column_info& c) { return c.pk_position >= 0; });
    std::sort(t.columns.begin(), pk_end, [](const column_info& a, const column_info& b) {
        return a.pk_position < b.pk_position;
    });
    t.pk_count = static_cast<size_t>(pk_end - t.columns.begin());
}

const table_info* schema_snapshot::find_table(std::string_view name) const {
    const auto it = by_key_.find(ident_key(name));
    return it == by_key_.end() ? nullptr : &tables[it->second];
}

size_t schema_snapshot::order_of(const table_info& t) const noexcept {
    return static_cast<size_t>(&t - tables.data());
}

bool schema_snapshot::referenced(const table_info& t) const {
    return std::any_of(tables.begin(), tables.end(), [&](const table_info& other) {
        return std::any_of(other.parents.begin(), other.parents.end(),
                           [&](const std::string& parent) { return parent == t.name; });
    });
}

void schema_snapshot::finish() {
    // Depth-first topological order over the foreign keys; a table already on the stack (a
    // cycle) is skipped, so cycles keep catalog order instead of failing.
    std::unordered_map<std::string, size_t> index;
    for (size_t i = 0; i < tables.size(); ++i) {
        index.emplace(ident_key(tables[i].name), i);
    }
    std::vector<int> state(tables.size(), 0);  // 0 new, 1 visiting, 2 done
    std::vector<table_info> ordered;
    ordered.reserve(tables.size());
    std::function<void(size_t)> visit = [&](size_t i) {
        if (state[i] != 0) {
            return;
        }
        state[i] = 1;
        for (const std::string& parent : tables[i].parents) {
            const auto it = index.find(ident_key(parent));
            if (it != index.end() && it->second != i) {
                visit(it->second);
            }
        }
        state[i] = 2;
        ordered.push_back(std::move(tables[i]));
    };
    for (size_t i = 0; i < tables.size(); ++i) {
        visit(i);
    }
    tables = std::move(ordered);
    by_key_.clear();
    for (size_t i = 0; i < tables.size(); ++i) {
        tables[i].index_columns();
        by_key_.emplace(ident_key(tables[i].name), i);
    }
}

namespace {

std::string key_list(const table_info& t, molt::dialect d) {
    std::string key;
    for (size_t k = 0; k < t.pk_count; ++k) {
        key += (k == 0 ? "" : ",") + quote_ident(t.columns[k].name, d);
    }
    return key;
}

// ", "deadlined" AS (SELECT * FROM "data" WHERE …)": the rows within their deadlines.
std::string deadlined_cte(
    const table_info& t, molt::dialect d,
    const std::function<std::string(const column_info&, int64_t)>& before_now) {
    std::string sql =
        ", " + quote_ident("deadlined", d) + " AS (SELECT * FROM " + quote_ident("data", d);
    for (size_t i = 0; i < t.deadlines.size(); ++i) {
        const auto& [column, micros] = t.deadlines[i];
        sql += (i == 0 ? " WHERE (" : " AND (") + quote_ident(t.columns[column].name, d) + " > " +
               before_now(t.columns[column], micros) + ")";
    }
    return sql + ")";
}

}  // namespace

std::string merge_conflicts_ctes(
    const table_info& t, molt::dialect d,
    const std::function<std::string(const column_info&, int64_t)>& before_now,
    std::string_view row_json, std::string_view lock) {
    auto q = [d](std::string_view name) { return quote_ident(name, d); };
    const std::string deadlined = q("deadlined");
    const std::string target = q("__t");
    std::string proposed;
    std::string now;
    for (size_t i = 0; i < t.cas.size(); ++i) {
        const std::string name = q(t.columns[t.cas[i]].name);
        proposed += (i == 0 ? "" : ",") + deadlined + "." + name;
        now += (i == 0 ? "" : ",") + target + "." + name;
    }
    return fmt::format(
        "{} SELECT {}.{}, {} FROM {} JOIN {} {} USING ({}) WHERE (({}) > ({})) IS "
        "NOT TRUE {}",
        deadlined_cte(t, d, before_now), deadlined, q("__idx__"), row_json, deadlined,
        t.qualified.quoted(d), target, key_list(t, d), proposed, now, lock);
}

std::string conditional_ctes(
    const table_info& t, molt::dialect d,
    const std::function<std::string(const column_info&, int64_t)>& before_now) {
    auto q = [d](std::string_view name) { return quote_ident(name, d); };
    const std::string deadlined = q("deadlined");
    const std::string current = q("current");
    const std::string action = q("action");
    const std::string target = q("__t");
    const std::string key = key_list(t, d);
    std::string sql = deadlined_cte(t, d, before_now);
    if (t.cas.empty()) {
        return sql + ", " + action + " AS (SELECT * FROM " + deadlined + ")";
    }
    std::string proposed;
    std::string now;
    std::string target_columns;
    for (size_t i = 0; i < t.cas.size(); ++i) {
        const std::string name = q(t.columns[t.cas[i]].name);
        proposed += (i == 0 ? "" : ",") + deadlined + "." + name;
        now += (i == 0 ? "" : ",") + current + "." + name;
        target_columns += "," + target + "." + name;
    }
    sql += ", " + current + " AS (SELECT " + key + target_columns + " FROM " +
           t.qualified.quoted(d) + " " + target + " JOIN " + deadlined + " USING (" + key + "))";
    sql += ", " + action + " AS (SELECT " + deadlined + ".* FROM " + deadlined + " LEFT JOIN " +
           current + " USING (" + key + ") WHERE " + current + "." + q(t.columns[0].name) +
           " IS NULL OR (" + proposed + ") > (" + now + "))";
    return sql;
}

}  // namespace molt::replicator
