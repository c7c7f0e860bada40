#include "molt/replicator/target/apply_plan.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <numeric>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "molt/common/integer_text.hpp"
#include "molt/common/json_text.hpp"
#include "molt/common/log.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/proto/json.hpp"
#include "molt/replicator/target/fatal_rows.hpp"

namespace molt::replicator {
namespace {

// Where a mutation falls in source order: its HLC, then its place in the request (arrival
// order among equal timestamps).
using stamp = std::pair<hlc, uint32_t>;

// One key's state after folding its mutations.
struct folded_row {
    std::span<const proto::value> key_values;
    std::string_view key;       ///< the key's JSON text
    bool delete_first = false;  ///< delete the row before any upsert
    bool upsert = false;
    std::vector<const proto::value*> values;  ///< by target column; nullptr = not in the payload
    uint32_t message = 0;                     ///< the last message that touched the key
    // While folding: the column families of a table arrive under different topics, so a key's
    // mutations are not seen in source order; each value keeps its stamp and the latest
    // delete discards the values before it when the fold ends (finish_fold).
    std::optional<stamp> last, deleted_at, upserted_at;
    std::vector<stamp> value_at;  ///< by target column, with `values`
    /// With a userscript's extras column: the properties the table has no column for, each
    /// with its stamp (folded like columns).
    std::vector<std::tuple<std::string_view, const proto::value*, stamp>> extras;
    /// The key's earliest mutation in the batch (its "before" is the row before the batch).
    const proto::mutation* first = nullptr;
    std::optional<stamp> first_at;
};

using sent_columns = std::vector<std::pair<size_t, const proto::value*>>;
using sent_extras = std::vector<std::pair<std::string_view, const proto::value*>>;

void fold_mutation(folded_row& row, const table_info& t, const proto::mutation& m,
                   const sent_columns& columns, const sent_extras& extras) {
    const stamp at{m.updated, m.message_index};
    if (!row.first_at || at < *row.first_at) {
        row.first_at = at;
        row.first = &m;
    }
    if (!row.last || *row.last < at) {
        row.last = at;
        row.key_values = m.key_values;
        row.key = m.key;
        row.message = m.message_index;
    }
    if (m.deleted) {
        row.deleted_at = std::max(row.deleted_at.value_or(at), at);
        return;
    }
    row.upserted_at = std::max(row.upserted_at.value_or(at), at);
    if (row.values.empty()) {
        row.values.assign(t.columns.size(), nullptr);
        row.value_at.assign(t.columns.size(), stamp{});
    }
    for (const auto& [index, v] : columns) {
        if (row.values[index] == nullptr || !(at < row.value_at[index])) {
            row.values[index] = v;
            row.value_at[index] = at;
        }
    }
    for (const auto& [name, v] : extras) {
        auto it = std::find_if(row.extras.begin(), row.extras.end(),
                               [&](const auto& e) { return std::get<0>(e) == name; });
        if (it == row.extras.end()) {
            row.extras.emplace_back(name, v, at);
        } else if (!(at < std::get<2>(*it))) {
            *it = {name, v, at};
        }
    }
}

// The value of a userscript's extras column: the properties without a column as a JSON object,
// names in order.
std::string extras_object(
    std::vector<std::tuple<std::string_view, const proto::value*, stamp>> extras) {
    std::sort(extras.begin(), extras.end(),
              [](const auto& a, const auto& b) { return std::get<0>(a) < std::get<0>(b); });
    std::string out = "{";
    for (const auto& [name, v, at] : extras) {
        if (out.size() > 1) {
            out += ',';
        }
        append_json_string(out, name);
        out += ':';
        out += proto::json_document(*v).value_or("null");
    }
    return out + "}";
}

// A key's upsert holds the values sent after its latest delete; a column family's message
// carries the primary key in "key" only, so key columns absent from "after" come from there.
void finish_fold(folded_row& row, const table_info& t) {
    row.delete_first = row.deleted_at.has_value();
    // By HLC only: at one HLC a key has one final version, so an upsert there means the row
    // exists (a family's delete beside another family's upsert is not a row delete).
    row.upsert =
        row.upserted_at && (!row.deleted_at || !(row.upserted_at->first < row.deleted_at->first));
    if (!row.upsert) {
        row.values.clear();
        return;
    }
    for (size_t c = 0; c < row.values.size(); ++c) {
        if (row.values[c] != nullptr && row.deleted_at &&
            row.value_at[c].first < row.deleted_at->first) {
            row.values[c] = nullptr;
        }
    }
    if (row.deleted_at) {
        std::erase_if(row.extras,
                      [&](const auto& e) { return std::get<2>(e).first < row.deleted_at->first; });
    }
    // Only a key of exactly the primary key's columns (not one with crdb_region or a shard
    // column first); a generated key column is never written.
    if (row.key_values.size() != t.pk_count) {
        return;
    }
    for (size_t k = 0; k < t.pk_count; ++k) {
        if (row.values[k] == nullptr && !t.columns[k].generated) {
            row.values[k] = &row.key_values[k];
        }
    }
}

// A row for a userscript's merge: `script` for the script, `text` as CockroachDB prints it (the
// DLQ's); properties named as the table's columns where it has them.
void merge_documents(const table_info& t,
                     const std::vector<std::pair<std::string_view, const proto::value*>>& row,
                     std::string& script, std::string& text) {
    proto::json doc = proto::json::object();
    script = "{";
    for (const auto& [sent, v] : row) {
        const column_info* c = t.find_column(sent);
        const std::string name = c != nullptr ? c->name : std::string(sent);
        if (script.size() > 1) {
            script += ',';
        }
        append_json_string(script, name);
        script += ':';
        // As the script's handlers see rows (userscript.cpp append_row), but an array column's
        // numbers stay numbers, as the target's row has them.
        proto::append_script_value(
            script, *v,
            c != nullptr && !c->array && (c->type_name == "json" || c->type_name == "jsonb"));
        doc.members().push_back({name, proto::to_json(*v)});
    }
    script += '}';
    text = proto::to_crdb_text(doc);
}

// The merge of one upsert statement's rows (table_info::merger).
std::shared_ptr<const merge_rows> merge_of(const schema_snapshot& schema, const table_info& t,
                                           const target_dialect& dialect, size_t rows_per_statement,
                                           std::span<const size_t> columns,
                                           std::span<const folded_row* const> rows) {
    auto m = std::make_shared<merge_rows>();
    m->conflicts_sql = dialect.merge_conflicts_sql(t, columns, rows.size());
    m->dialect = &dialect;
    m->schema = &schema;
    m->rows_per_statement = rows_per_statement;
    std::vector<std::pair<std::string_view, const proto::value*>> values;
    for (const folded_row* r : rows) {
        merge_rows::row out;
        out.key = std::string(r->key);
        out.updated = r->last->first;
        // The columns the statement writes, but those of an expression without the value
        // (written by every upsert, not by the row).
        values.clear();
        for (const size_t c : columns) {
            if (t.columns[c].expr.empty() || value_params(t.columns[c]) > 0) {
                values.emplace_back(t.columns[c].name, r->values[c]);
            }
        }
        merge_documents(t, values, out.proposed, out.after_text);
        out.before = out.before_text = "null";
        if (r->first != nullptr && r->first->has_before && !r->first->before.empty()) {
            // The DLQ's text is the whole row; the script's, of those columns only (not what the
            // script ignored, renamed or sent to extras).
            // An extras column's object is made of the properties without a column, as the
            // proposed row's.
            std::vector<std::pair<std::string_view, const proto::value*>> whole;
            std::vector<std::pair<std::string_view, const proto::value*>> written;
            std::vector<std::tuple<std::string_view, const proto::value*, stamp>> extras;
            for (const proto::column& c : r->first->before) {
                whole.emplace_back(c.name, &c.val);
                const column_info* col = t.find_column(c.name);
                if (col == nullptr && t.extras >= 0) {
                    extras.emplace_back(c.name, &c.val, stamp{});
                } else if (col != nullptr &&
                           (t.extras < 0 || col != &t.columns[static_cast<size_t>(t.extras)]) &&
                           std::any_of(values.begin(), values.end(),
                                       [&](const auto& v) { return v.first == col->name; })) {
                    written.emplace_back(c.name, &c.val);
                }
            }
            const std::string extras_text = extras_object(std::move(extras));
            const proto::value extras_value{proto::value_kind::json, extras_text};
            if (t.extras >= 0 && std::any_of(values.begin(), values.end(), [&](const auto& v) {
                    return v.first == t.columns[static_cast<size_t>(t.extras)].name;
                })) {
                written.emplace_back(t.columns[static_cast<size_t>(t.extras)].name, &extras_value);
            }
            std::string unused;
            merge_documents(t, whole, unused, out.before_text);
            merge_documents(t, written, out.before, unused);
        }
        m->rows.push_back(std::move(out));
    }
    return m;
}

std::string table_display(const table_info& t) {
    return t.qualified.to_string();
}

error row_error(const table_info& t, uint32_t message, std::string_view what) {
    return {errc::invalid_argument,
            fmt::format("table {}, message {}: {}", table_display(t), message, what)};
}

}  // namespace

const table_info* resolve_topic(const schema_snapshot& schema, std::string_view topic) {
    if (const table_info* t = schema.find_table(topic)) {
        return t;
    }
    const size_t first_dot = topic.find('.');
    if (first_dot == std::string_view::npos) {
        return nullptr;
    }
    const size_t last_dot = topic.rfind('.');
    // db.schema.table (WITH full_table_name): the table is the last part.
    if (const table_info* t = schema.find_table(topic.substr(last_dot + 1));
        t != nullptr && first_dot != last_dot) {
        return t;
    }
    // table.family (column families): the table is the first part; else schema.table.
    if (const table_info* t = schema.find_table(topic.substr(0, first_dot))) {
        return t;
    }
    return schema.find_table(topic.substr(last_dot + 1));
}

result<apply_plan> plan_batch(const schema_snapshot& schema, const proto::batch& rows,
                              const target_dialect& dialect, size_t rows_per_statement,
                              statement_order order, std::optional<hlc> only) {
    struct table_work {
        const table_info* table = nullptr;
        std::vector<folded_row> rows;
        std::unordered_map<std::string_view, size_t> by_key;
        size_t received = 0;
    };
    // Tables in parent-first order; several topics may map to one table (column families).
    std::map<size_t, table_work> work;
    sent_columns sent;  // of one mutation
    sent_extras extras;

    for (const proto::table_mutations& group : rows.tables()) {
        const table_info* table = resolve_topic(schema, group.topic);
        if (table == nullptr) {
            return error{errc::not_found,
                         fmt::format("unknown table \"{}\" in target schema {}",
                                     log::sanitize(group.topic), schema.schema.to_string())};
        }
        if (!table->options_error.empty()) {
            return error{errc::invalid_argument, table->options_error};
        }
        if (table->pk_count == 0) {
            return error{errc::invalid_argument,
                         fmt::format("table {} has no primary key; the replicator needs one to "
                                     "apply changes",
                                     table->qualified.to_string())};
        }
        if (only && std::none_of(group.mutations.begin(), group.mutations.end(),
                                 [&](const proto::mutation& m) { return m.updated == *only; })) {
            continue;
        }
        table_work& w = work[schema.order_of(*table)];
        w.table = table;
        for (const proto::mutation& m : group.mutations) {
            if (only && m.updated != *only) {
                continue;
            }
            ++w.received;
            auto [it, inserted] = w.by_key.try_emplace(m.key, w.rows.size());
            if (inserted) {
                w.rows.emplace_back();
            }
            sent.clear();
            extras.clear();
            for (const proto::column& c : m.after) {
                const int index = table->column_index(c.name);
                if (index < 0 && table->extras >= 0) {
                    extras.emplace_back(c.name, &c.val);
                    continue;
                }
                if (index < 0) {
                    return row_error(
                        *table, m.message_index,
                        fmt::format("the target has no column \"{}\"", log::sanitize(c.name)));
                }
                // The extras column takes what the script's extras collect, never its own.
                if (!table->columns[static_cast<size_t>(index)].generated &&
                    index != table->extras) {
                    sent.emplace_back(static_cast<size_t>(index), &c.val);
                }
            }
            fold_mutation(w.rows[it->second], *table, m, sent, extras);
        }
    }
    // The extras columns' values (the plan binds them before returning).
    std::deque<std::string> extras_text;
    std::deque<proto::value> extras_values;
    static const proto::value no_value;
    for (auto& [position, w] : work) {
        const table_info& t = *w.table;
        for (folded_row& row : w.rows) {
            finish_fold(row, t);
            if (!row.upsert) {
                continue;
            }
            if (t.extras >= 0) {
                extras_text.push_back(extras_object(std::move(row.extras)));
                extras_values.push_back({proto::value_kind::json, extras_text.back()});
                row.values[static_cast<size_t>(t.extras)] = &extras_values.back();
            }
            // An expression without the value is written by every upsert.
            for (size_t c = 0; c < t.columns.size(); ++c) {
                if (row.values[c] == nullptr && !t.columns[c].expr.empty() &&
                    value_params(t.columns[c]) == 0 && !t.columns[c].generated) {
                    row.values[c] = &no_value;
                }
            }
        }
    }

    apply_plan plan;
    // Rows per statement: --flushSize (or the script's rowLimit for the table), and within the
    // dialect's parameter limit unless a parameter carries a whole column.
    auto chunk_size = [&](const table_info& t, std::span<const size_t> columns) {
        // rowLimit only lowers it: a caller asking for single rows (ordered_apply.hpp) gets them.
        const size_t per =
            t.row_limit > 0 ? std::min(t.row_limit, rows_per_statement) : rows_per_statement;
        if (dialect.binds_columns(t, columns)) {
            return std::max<size_t>(1, per);
        }
        size_t params = 0;
        for (const size_t c : columns) {
            params += value_params(t.columns[c]);
        }
        return std::max<size_t>(
            1, std::min(per, dialect.max_parameters() / std::max<size_t>(1, params)));
    };
    // A value bound once per parameter its column takes (value_params).
    auto bind_column = [&](const table_info& t, size_t c, const proto::value& v, uint32_t message,
                           sql_params& params) -> result<void> {
        const size_t times = value_params(t.columns[c]);
        if (times == 0) {
            return ok();
        }
        auto bound = dialect.bind_value(t.columns[c], v);
        if (!bound) {
            return row_error(t, message, bound.error().message());
        }
        for (size_t i = 1; i < times; ++i) {
            params.push_back(*bound);
        }
        params.push_back(std::move(bound).value());
        return ok();
    };
    // Rows into statements of at most `per` rows and dialect.max_statement_bytes() of bound
    // values (a larger row gets a statement of its own). bind(i, params) appends row i's values;
    // sql(n) is the statement for n rows; key(i) is row i's key; `columns` are the columns each
    // row binds.
    auto chunk = [&](planned_statement::kind type, const table_info& t,
                     std::span<const size_t> columns, size_t count, size_t per, const auto& bind,
                     const auto& sql, const auto& key) -> result<void> {
        const size_t budget = dialect.max_statement_bytes();
        const bool by_column = dialect.binds_columns(t, columns);
        // A userscript's expressions are written out in each row of the statement's text.
        size_t expr_bytes = 0;
        for (const size_t c : columns) {
            expr_bytes += t.columns[c].expr.size();
        }
        planned_statement st;
        size_t bytes = 0;
        size_t first = 0;
        auto flush = [&] {
            if (st.rows == 0) {
                return;
            }
            st.type = type;
            st.table = &t;
            st.sql = sql(st.rows);
            if (by_column) {
                st.params = dialect.pack_columns(std::move(st.params), columns.size());
                st.by_column = true;
                st.arrays = dialect.binds_arrays();
            }
            st.key = st.rows == 1 ? key(first) : std::string_view();
            plan.statements.push_back(std::move(st));
            st = planned_statement{};
            bytes = 0;
        };
        sql_params row_params;
        for (size_t i = 0; i < count; ++i) {
            row_params.clear();
            if (auto done = bind(i, row_params); !done) {
                return std::move(done).error();
            }
            size_t row_bytes = expr_bytes;
            if (budget != SIZE_MAX) {  // PostgreSQL binds: no byte budget, nothing to count
                for (const auto& p : row_params) {
                    row_bytes += dialect.statement_bytes(p);
                }
            }
            if (st.rows == per || (st.rows > 0 && bytes + row_bytes > budget)) {
                flush();
            }
            if (st.rows == 0) {
                first = i;
                if (budget == SIZE_MAX) {  // else a statement may hold far fewer rows
                    st.params.reserve(std::min(per, count - i) * row_params.size());
                }
            }
            for (auto& p : row_params) {
                st.params.push_back(std::move(p));
            }
            bytes += row_bytes;
            ++st.rows;
        }
        flush();
        return ok();
    };

    // Deletes, children before parents. Upserts first: a key written again after its delete
    // needs no delete, as the changefeed sends whole rows (an insert sends every column family)
    // and the upsert sets them.
    auto plan_deletes = [&]() -> result<void> {
        for (auto it = work.rbegin(); it != work.rend(); ++it) {
            const table_work& w = it->second;
            const table_info& t = *w.table;
            std::vector<const folded_row*> deletes;
            for (const folded_row& row : w.rows) {
                if (!row.delete_first || (row.upsert && order == statement_order::upserts_first)) {
                    continue;
                }
                if (row.key_values.size() != t.pk_count) {
                    return row_error(t, row.message,
                                     fmt::format("\"key\" has {} values but the primary key has "
                                                 "{} columns (schema drift?)",
                                                 row.key_values.size(), t.pk_count));
                }
                deletes.push_back(&row);
            }
            std::vector<size_t> key_columns(t.pk_count);
            std::iota(key_columns.begin(), key_columns.end(), size_t{0});
            auto done = chunk(
                planned_statement::kind::erase, t, key_columns, deletes.size(),
                chunk_size(t, key_columns),
                [&](size_t r, sql_params& params) -> result<void> {
                    for (size_t k = 0; k < t.pk_count; ++k) {
                        if (auto bound = bind_column(t, k, deletes[r]->key_values[k],
                                                     deletes[r]->message, params);
                            !bound) {
                            return bound;
                        }
                    }
                    return ok();
                },
                [&](size_t n) { return dialect.delete_sql(t, n); },
                [&](size_t r) { return std::string_view(deletes[r]->key); });
            if (!done) {
                return std::move(done).error();
            }
        }
        return ok();
    };
    if (order == statement_order::deletes_first) {
        if (auto done = plan_deletes(); !done) {
            return std::move(done).error();
        }
    }

    // Upserts, parents before children; rows grouped by the set of columns they carry.
    for (auto& [position, w] : work) {
        const table_info& t = *w.table;
        table_counts counts{&t, w.received, 0, 0};
        std::map<std::vector<size_t>, std::vector<const folded_row*>> by_columns;
        for (const folded_row& row : w.rows) {
            counts.deletes +=
                row.delete_first && !(row.upsert && order == statement_order::upserts_first) ? 1
                                                                                             : 0;
            if (!row.upsert) {
                continue;
            }
            for (size_t k = 0; k < t.pk_count; ++k) {
                if (row.values[k] == nullptr || row.values[k]->is_null()) {
                    return row_error(t, row.message,
                                     fmt::format("primary key column \"{}\" is in neither "
                                                 "\"after\" nor \"key\"",
                                                 t.columns[k].name));
                }
            }
            // A conditional upsert compares the row's own values: it must carry them.
            auto missing = [&](size_t c) { return row.values[c] == nullptr; };
            for (const size_t c : t.cas) {
                if (missing(c)) {
                    return row_error(t, row.message,
                                     fmt::format("the userscript's cas column \"{}\" is not in "
                                                 "the row (column families?)",
                                                 t.columns[c].name));
                }
            }
            for (const auto& [c, micros] : t.deadlines) {
                if (missing(c)) {
                    return row_error(t, row.message,
                                     fmt::format("the userscript's deadline column \"{}\" is not "
                                                 "in the row (column families?)",
                                                 t.columns[c].name));
                }
            }
            std::vector<size_t> columns;
            for (size_t c = 0; c < row.values.size(); ++c) {
                if (row.values[c] != nullptr) {
                    columns.push_back(c);
                }
            }
            by_columns[std::move(columns)].push_back(&row);
            ++counts.upserts;
        }
        for (const auto& [columns, group] : by_columns) {
            const size_t planned = plan.statements.size();
            auto done = chunk(
                planned_statement::kind::upsert, t, columns, group.size(), chunk_size(t, columns),
                [&](size_t r, sql_params& params) -> result<void> {
                    for (const size_t c : columns) {
                        if (auto bound =
                                bind_column(t, c, *group[r]->values[c], group[r]->message, params);
                            !bound) {
                            return bound;
                        }
                    }
                    return ok();
                },
                [&](size_t n) { return dialect.upsert_sql(t, columns, n); },
                [&](size_t r) { return std::string_view(group[r]->key); });
            if (!done) {
                return std::move(done).error();
            }
            // The statements just planned hold the group's rows in order. A merge resolves the
            // rows cas keeps out (it needs cas: userscript.cpp).
            size_t next = 0;
            for (size_t i = planned; t.merger && !t.cas.empty() && i < plan.statements.size();
                 ++i) {
                planned_statement& st = plan.statements[i];
                st.merge = merge_of(schema, t, dialect, rows_per_statement, columns,
                                    std::span(group).subspan(next, st.rows));
                next += st.rows;
                if (st.merge->conflicts_sql.empty()) {
                    return error{errc::invalid_argument,
                                 fmt::format("table {}: the userscript's merge is not supported "
                                             "on this target",
                                             table_display(t))};
                }
            }
        }
        plan.tables.push_back(counts);
    }
    if (order == statement_order::upserts_first) {
        if (auto done = plan_deletes(); !done) {
            return std::move(done).error();
        }
    }
    return plan;
}

std::vector<hlc> source_transactions(const proto::batch& rows) {
    std::vector<hlc> out;
    for (const proto::table_mutations& t : rows.tables()) {
        for (const proto::mutation& m : t.mutations) {
            out.push_back(m.updated);
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

namespace {

// An upsert with a userscript's merge (run_statement).
result<void> run_merge(target_session& session, const planned_statement& st) {
    const merge_rows& m = *st.merge;
    const table_info& t = *st.table;
    auto kept = session.query(m.conflicts_sql, st.params);
    if (!kept) {
        return std::move(kept).error().with_context(
            "reading the target rows that win the cas comparison, for the userscript's merge");
    }
    if (auto done = session.execute(st.sql, st.params); !done || kept->empty()) {
        return done;
    }
    std::vector<merge_conflict> conflicts;
    std::vector<const merge_rows::row*> rows;
    for (const sql_row& r : *kept) {
        const auto index =
            r.size() == 2 && r[0] && r[1] ? parse_integer<size_t>(*r[0]) : std::optional<size_t>();
        if (!index || *index >= m.rows.size()) {
            return error{errc::internal, "the target rows for the merge came back unreadable",
                         retry_class::fatal};
        }
        const merge_rows::row& row = m.rows[*index];
        rows.push_back(&row);
        conflicts.push_back({row.key, row.before, row.proposed, *r[1]});
    }
    auto resolved = t.merger->resolve(m.schema->schema, t, conflicts);
    if (!resolved) {
        return std::move(resolved).error();
    }
    if (resolved->size() != conflicts.size()) {
        return error{errc::internal, "the userscript's merge did not resolve every conflict",
                     retry_class::fatal};
    }
    std::string body;  // the rows to apply, as a webhook body
    for (size_t i = 0; i < rows.size(); ++i) {
        const merge_resolution& r = (*resolved)[i];
        if (r.type == merge_resolution::kind::apply) {
            body += fmt::format("{}{{\"after\":{},\"key\":{},\"topic\":", body.empty() ? "" : ",",
                                r.value, rows[i]->key);
            append_json_string(body, t.name);
            body += fmt::format(",\"updated\":\"{}\"}}", rows[i]->updated.to_string());
        } else if (r.type == merge_resolution::kind::dlq) {
            const std::string& name = t.merger->dlq_table();
            if (auto checked = check_dlq_table(*m.schema, *m.dialect, name); !checked) {
                return std::move(checked).error().with_context(fmt::format(
                    "the userscript's merge sent the row of {} with key {} to dead-letter queue "
                    "\"{}\"",
                    table_display(t), log::sanitize(rows[i]->key), log::sanitize(r.value)));
            }
            const table_info* dlq = m.schema->find_table(name);
            const sql_params params{r.value, std::to_string(rows[i]->updated.wall()),
                                    std::to_string(rows[i]->updated.logical()), rows[i]->after_text,
                                    rows[i]->before_text};
            if (auto done = session.execute(m.dialect->dlq_insert_sql(*dlq), params); !done) {
                return error{done.error().code(), without_row_values(done.error().message()),
                             done.error().retry()}
                    .with_context(fmt::format(
                        "writing the row of {} with key {} to the dead-letter queue {}",
                        table_display(t), log::sanitize(rows[i]->key), dlq->qualified.to_string()));
            }
        }
    }
    if (body.empty()) {
        return ok();
    }
    auto decoded =
        proto::decode_webhook("{\"payload\":[" + body + "]}", proto::decode_limits::unlimited());
    if (!decoded) {
        return error{errc::invalid_argument,
                     fmt::format("table {}: the rows the userscript's merge resolved cannot be "
                                 "read: {}",
                                 table_display(t), decoded.error().message()),
                     retry_class::none};
    }
    // Written as they are: the table without its conditions and merge.
    schema_snapshot alone;
    alone.schema = m.schema->schema;
    alone.tables.push_back(t);
    table_info& plain = alone.tables.back();
    plain.cas.clear();
    plain.deadlines.clear();
    plain.merger.reset();
    plain.parents.clear();
    plain.extras = -1;  // the row holds the extras column's object as it is
    alone.finish();
    auto plan = plan_batch(alone, decoded->rows, *m.dialect, m.rows_per_statement,
                           statement_order::upserts_first);
    if (!plan) {
        return std::move(plan).error().with_context(
            "writing the rows the userscript's merge resolved");
    }
    for (const planned_statement& next : plan->statements) {
        if (auto done = run_statement(session, next); !done) {
            return done;
        }
    }
    return ok();
}

}  // namespace

result<void> run_statement(target_session& session, const planned_statement& st) {
    if (st.merge) {
        return run_merge(session, st);
    }
    if (st.arrays) {
        return session.execute_array(st.sql, st.params, st.rows);
    }
    return st.by_column ? session.execute_reused(st.sql, st.params)
                        : session.execute(st.sql, st.params);
}

bool deletes_referenced_rows(const schema_snapshot& schema, const apply_plan& plan) {
    return std::any_of(plan.tables.begin(), plan.tables.end(), [&](const table_counts& t) {
        return t.deletes > 0 && schema.referenced(*t.table);
    });
}

result<apply_plan> plan_batch_deletes_first_if_safe(const schema_snapshot& schema,
                                                    const proto::batch& rows,
                                                    const target_dialect& dialect,
                                                    size_t rows_per_statement,
                                                    std::optional<hlc> only) {
    auto plan =
        plan_batch(schema, rows, dialect, rows_per_statement, statement_order::deletes_first, only);
    if (plan && deletes_referenced_rows(schema, *plan)) {
        return plan_batch(schema, rows, dialect, rows_per_statement, statement_order::upserts_first,
                          only);
    }
    return plan;
}

result<void> execute_statements(target_session& session, const apply_plan& plan) {
    for (const planned_statement& st : plan.statements) {
        if (auto done = run_statement(session, st); !done) {
            session.rollback();
            return done.error().with_context(fmt::format(
                "{} on {}", st.type == planned_statement::kind::upsert ? "upsert" : "delete",
                st.table->qualified.to_string()));
        }
    }
    return ok();
}

}  // namespace molt::replicator
