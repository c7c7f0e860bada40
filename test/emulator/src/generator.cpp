#include "molt/emulator/generator.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "molt/common/ident.hpp"
#include "molt/emulator/capture.hpp"
#include "molt/emulator/rich_values.hpp"
#include "molt/proto/encoder.hpp"

namespace molt::emulator {
namespace {

using proto::sql_type;

// "3,17" -> {3, 17}: a primary key as the generator writes it.
std::vector<int64_t> split_key(const std::string& pk) {
    std::vector<int64_t> key;
    size_t start = 0;
    while (start <= pk.size()) {
        const size_t comma = std::min(pk.find(',', start), pk.size());
        key.push_back(std::stoll(pk.substr(start, comma - start)));
        start = comma + 1;
    }
    return key;
}

// The key of `touched`, the rows a transaction has written: "table/pk".
std::string touch_key(size_t table, const std::string& pk) {
    return fmt::format("{}/{}", table, pk);
}

// Freed UNIQUE values kept for reuse, per column (the oldest go first).
constexpr size_t max_freed = 1000;

std::string random_text(std::mt19937_64& rng) {
    static const char* pieces[] = {"a",  "b",  "Z", "7", " ",  "'",    "\"", "\\",
                                   "\n", "\t", "é", "ß", "中", "🦀", "<",  "&",
                                   "%",  "_",  ",", "{", "}",  "null"};
    std::string s;
    const int n = uniform(rng, 0, 16);
    for (int i = 0; i < n; ++i) {
        s += pieces[uniform<size_t>(rng, 0, std::size(pieces) - 1)];
    }
    return s;
}

std::string trimmed_fraction(int micros) {
    if (micros == 0) {
        return "";
    }
    std::string f = fmt::format(".{:06}", micros);
    while (f.back() == '0') {
        f.pop_back();
    }
    return f;
}

std::string scalar(const column_spec& c, std::mt19937_64& rng, bool portable) {
    switch (c.family.base) {
    case sql_type::boolean: return uniform(rng, 0, 1) == 1 ? "t" : "f";
    case sql_type::integer:
        switch (uniform(rng, 0, 3)) {
        case 0: return std::to_string(uniform<int64_t>(rng, INT64_MIN, INT64_MAX));
        case 1:
            return std::to_string(uniform<int64_t>(rng, 9007199254740990LL, 9007199254741100LL));
        default: return std::to_string(uniform<int64_t>(rng, -100000, 100000));
        }
    case sql_type::float4:
        return fmt::format("{}", static_cast<double>(uniform(rng, -4096, 4096)) / 8.0);
    case sql_type::float8: {
        if (!portable && uniform(rng, 0, 20) == 0) {
            return uniform(rng, 0, 1) == 0 ? "NaN" : "Infinity";
        }
        const double v =
            static_cast<double>(uniform<int64_t>(rng, -1'000'000'000, 1'000'000'000)) / 1024.0;
        return fmt::format("{}", v);
    }
    case sql_type::decimal: {
        const int scale = c.precision > 0 ? c.scale : uniform(rng, 0, 6);
        const int int_digits =
            c.precision > 0 ? std::max(1, c.precision - c.scale) : uniform(rng, 1, 20);
        std::string digits = std::to_string(uniform(rng, 1, 9));
        const int n = uniform(rng, 0, int_digits - 1);
        for (int i = 0; i < n; ++i) {
            digits += static_cast<char>('0' + uniform(rng, 0, 9));
        }
        std::string out = (uniform(rng, 0, 4) == 0 ? "-" : "") + digits;
        if (scale > 0) {
            out += '.';
            for (int i = 0; i < scale; ++i) {
                out += static_cast<char>('0' + uniform(rng, 0, 9));
            }
        }
        return out;
    }
    case sql_type::string: return random_text(rng);
    case sql_type::bytes: {
        std::string out = "\\x";
        const int n = uniform(rng, 0, 16);
        for (int i = 0; i < n; ++i) {
            out += fmt::format("{:02x}", uniform(rng, 0, 255));
        }
        return out;
    }
    case sql_type::uuid:
        return fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                           uniform<uint32_t>(rng, 0, UINT32_MAX), uniform(rng, 0, 0xFFFF),
                           uniform(rng, 0, 0xFFF), uniform(rng, 0x8000, 0xBFFF),
                           uniform<uint64_t>(rng, 0, 0xFFFFFFFFFFFFULL));
    case sql_type::date:
        return fmt::format("{:04}-{:02}-{:02}", uniform(rng, 2000, 2030), uniform(rng, 1, 12),
                           uniform(rng, 1, 28));
    case sql_type::time:
        return fmt::format("{:02}:{:02}:{:02}{}", uniform(rng, 0, 23), uniform(rng, 0, 59),
                           uniform(rng, 0, 59),
                           trimmed_fraction(uniform(rng, 0, 3) == 0 ? uniform(rng, 0, 999999) : 0));
    case sql_type::timetz:
        return fmt::format("{:02}:{:02}:{:02}+00", uniform(rng, 0, 23), uniform(rng, 0, 59),
                           uniform(rng, 0, 59));
    case sql_type::timestamp:
    case sql_type::timestamptz:
        return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}{}{}", uniform(rng, 2001, 2030),
                           uniform(rng, 1, 12), uniform(rng, 1, 28), uniform(rng, 0, 23),
                           uniform(rng, 0, 59), uniform(rng, 0, 59),
                           trimmed_fraction(uniform(rng, 0, 1) == 0 ? uniform(rng, 0, 999999) : 0),
                           c.family.base == sql_type::timestamptz ? "+00" : "");
    case sql_type::interval:
        return fmt::format("{} days {:02}:{:02}:{:02}", uniform(rng, 2, 400), uniform(rng, 0, 23),
                           uniform(rng, 0, 59), uniform(rng, 0, 59));
    case sql_type::inet:
        return fmt::format("10.{}.{}.{}", uniform(rng, 0, 255), uniform(rng, 0, 255),
                           uniform(rng, 1, 254));
    case sql_type::jsonb:
        return fmt::format(R"({{"n": {}, "s": "{}", "list": [{}, null, true]}})",
                           uniform(rng, -1000, 1000), uniform(rng, 0, 1) == 0 ? "x" : "y \\\" z",
                           uniform(rng, 0, 9));
    case sql_type::bit: {
        std::string out;
        for (int i = 0; i < std::max(1, c.precision); ++i) {
            out += uniform(rng, 0, 1) == 0 ? '0' : '1';
        }
        return out;
    }
    case sql_type::enumeration: return c.labels[uniform<size_t>(rng, 0, c.labels.size() - 1)];
    default: return random_text(rng);
    }
}

}  // namespace

uint64_t key_hash(std::string_view table, std::string_view key) {
    uint64_t h = 1469598103934665603ULL;  // FNV-1a
    for (const std::string_view part : {table, std::string_view("\x1f", 1), key}) {
        for (const char c : part) {
            h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
        }
    }
    return h;
}

std::optional<std::string> random_value(const column_spec& c, std::mt19937_64& rng, bool portable) {
    if (!c.family.array) {
        return scalar(c, rng, portable);
    }
    // Arrays of simple elements, as PostgreSQL prints them.
    std::string out = "{";
    const int n = uniform(rng, 0, 4);
    for (int i = 0; i < n; ++i) {
        out += i == 0 ? "" : ",";
        if (c.family.base == sql_type::integer) {
            out += std::to_string(uniform(rng, -1000, 1000));
        } else {
            out += fmt::format("w{}", uniform(rng, 0, 99));
        }
    }
    return out + "}";
}

generator::generator(workload_spec spec, generator_options options)
    : spec_(std::move(spec)), options_(options), rng_(options.seed), tables_(spec_.tables.size()) {
    const int64_t start = options_.start_wall != 0 ? options_.start_wall : wall_clock_nanos();
    last_ = hlc(start, 0);
    unique_.resize(spec_.tables.size());
    for (size_t t = 0; t < spec_.tables.size(); ++t) {
        for (size_t c = 0; c < spec_.tables[t].columns.size(); ++c) {
            if (spec_.tables[t].columns[c].unique) {
                unique_[t].push_back({c, {}, {}});
            }
        }
    }
}

std::vector<int64_t> generator::pk_values(size_t table, uint64_t index) const {
    const table_spec& t = spec_.tables[table];
    std::vector<int64_t> out;
    if (t.primary_key.size() == 1) {
        out.push_back(options_.key_base + static_cast<int64_t>(index));
        return out;
    }
    // Composite keys: the first column spreads, the others count within it.
    constexpr uint64_t fanout = 8;
    out.push_back(options_.key_base + static_cast<int64_t>(index / fanout));
    for (size_t k = 1; k < t.primary_key.size(); ++k) {
        out.push_back(static_cast<int64_t>(index % fanout) + static_cast<int64_t>(k) - 1);
    }
    return out;
}

std::string generator::pk_text(size_t table, uint64_t index) const {
    std::string out;
    for (const int64_t v : pk_values(table, index)) {
        out += (out.empty() ? "" : ",") + std::to_string(v);
    }
    return out;
}

void generator::store(size_t table, const std::string& pk, const row_values& row) {
    table_state& s = tables_[table];
    const auto old = s.rows.find(pk);
    for (unique_column& u : unique_[table]) {
        // In a swap the other row may have taken the old value already: drop it only if ours.
        if (old != s.rows.end() && old->second[u.column]) {
            const auto held = u.holder.find(*old->second[u.column]);
            if (held != u.holder.end() && held->second == pk) {
                u.holder.erase(held);
            }
        }
        if (row[u.column]) {
            u.holder[*row[u.column]] = pk;
        }
    }
    if (s.rows.emplace(pk, row).second) {
        s.position[pk] = s.present.size();
        s.present.push_back(pk);
    } else {
        s.rows[pk] = row;
    }
}

void generator::remove(size_t table, const std::string& pk) {
    table_state& s = tables_[table];
    const auto old = s.rows.find(pk);
    if (old == s.rows.end()) {
        return;
    }
    for (unique_column& u : unique_[table]) {
        const std::optional<std::string>& value = old->second[u.column];
        const auto held = value ? u.holder.find(*value) : u.holder.end();
        if (held != u.holder.end() && held->second == pk) {
            u.holder.erase(held);
            u.freed.emplace_back(*value, transactions_);
            if (u.freed.size() > max_freed) {
                u.freed.pop_front();
            }
        }
    }
    s.rows.erase(old);
    const size_t at = s.position[pk];
    s.position.erase(pk);
    if (at + 1 != s.present.size()) {
        s.present[at] = s.present.back();
        s.position[s.present[at]] = at;
    }
    s.present.pop_back();
}

std::optional<std::string> generator::pick_present(size_t table) {
    const table_state& s = tables_[table];
    if (s.present.empty()) {
        return std::nullopt;
    }
    return s.present[uniform<size_t>(rng_, 0, s.present.size() - 1)];
}

void generator::emit(transaction& txn, size_t table, const std::string& pk,
                     std::vector<int64_t> key, std::optional<row_values> row) {
    const table_spec& t = spec_.tables[table];
    proto::message m;
    m.topic = t.name;
    for (const int64_t k : key) {
        m.key.items().push_back(proto::json::number(k));
    }
    if (row) {
        m.after = proto::json::object();
        for (size_t c = 0; c < t.columns.size(); ++c) {
            auto v = proto::value_from_pg_text(t.columns[c].family, (*row)[c]);
            MOLT_CHECK(v.has_value(), "generated values always encode");
            m.after.members().push_back({t.columns[c].name, std::move(v).value()});
        }
    }
    m.updated = txn.updated;
    change ch;
    ch.table = table;
    ch.pk = pk;
    ch.row = std::move(row);
    ch.message = proto::encode_message(m);
    ch.key_hash = key_hash(t.name, pk);
    events_.push_back({txn.updated, table, pk, ch.row});
    // A changefeed sends one message per key and timestamp: its final version in the
    // transaction. (A row updated to point at a parent that the same transaction then deletes is
    // deleted with it: the delete replaces the update.)
    for (change& earlier : txn.changes) {
        if (earlier.table == table && earlier.pk == pk) {
            earlier = std::move(ch);
            return;
        }
    }
    txn.changes.push_back(std::move(ch));
}

row_values generator::make_row(size_t table, uint64_t index,
                               std::unordered_set<std::string>& touched, transaction& txn,
                               const std::string* unique_value_taken) {
    const table_spec& t = spec_.tables[table];
    const std::vector<int64_t> key = pk_values(table, index);
    row_values row(t.columns.size());
    const row_values* current = nullptr;  // the row an update replaces (for UNIQUE columns)
    if (!unique_[table].empty()) {
        const auto it = tables_[table].rows.find(pk_text(table, index));
        current = it != tables_[table].rows.end() ? &it->second : nullptr;
    }
    for (size_t c = 0; c < t.columns.size(); ++c) {
        const column_spec& col = t.columns[c];
        const auto pk_at = std::find(t.primary_key.begin(), t.primary_key.end(), col.name);
        if (pk_at != t.primary_key.end()) {
            row[c] = std::to_string(key[static_cast<size_t>(pk_at - t.primary_key.begin())]);
            continue;
        }
        const foreign_key_spec* fk = nullptr;
        for (const foreign_key_spec& f : t.foreign_keys) {
            if (ident_equal(f.column, col.name)) {
                fk = &f;
            }
        }
        if (fk != nullptr) {
            // A parent that exists (inserted first in this transaction if there is none), or NULL.
            size_t parent = 0;
            for (size_t p = 0; p < spec_.tables.size(); ++p) {
                if (ident_equal(spec_.tables[p].name, fk->references)) {
                    parent = p;
                }
            }
            auto existing = pick_present(parent);
            if (existing && touched.count(fmt::format("{}/{}", parent, *existing)) == 0) {
                row[c] = *existing;
                continue;
            }
            for (int attempt = 0; attempt < 8; ++attempt) {
                const uint64_t i = uniform<uint64_t>(rng_, 0, options_.keys - 1);
                const std::string ppk = pk_text(parent, i);
                if (touched.insert(fmt::format("{}/{}", parent, ppk)).second &&
                    tables_[parent].rows.count(ppk) == 0) {
                    row_values parent_row = make_row(parent, i, touched, txn);
                    store(parent, ppk, parent_row);
                    emit(txn, parent, ppk, pk_values(parent, i), parent_row);
                    row[c] = ppk;
                    break;
                }
            }
            continue;
        }
        if (col.unique && unique_value_taken != nullptr) {
            row[c] = *unique_value_taken;
            continue;
        }
        if (std::uniform_real_distribution<double>(0, 1)(rng_) < options_.null_rate) {
            continue;
        }
        if (col.unique) {
            for (unique_column& u : unique_[table]) {
                if (u.column == c) {
                    row[c] = unique_value(u, current);
                }
            }
            continue;
        }
        row[c] = options_.rich_values ? rich_value(col, rng_, options_.portable)
                                      : random_value(col, rng_, options_.portable);
    }
    return row;
}

bool generator::roll(double rate) {
    return std::uniform_real_distribution<double>(0, 1)(rng_) < rate;
}

std::string generator::unique_value(unique_column& u, const row_values* current) {
    if (current != nullptr && (*current)[u.column] && uniform(rng_, 0, 1) == 0) {
        return *(*current)[u.column];  // an update that keeps the value
    }
    if (options_.unique_reuse_rate > 0 && roll(options_.unique_reuse_rate)) {
        // The newest value a delete of an earlier transaction freed: a reinsert soon after the
        // delete, likely in the same request.
        for (auto it = u.freed.rbegin(); it != u.freed.rend(); ++it) {
            if (it->second < transactions_) {
                std::string value = std::move(it->first);
                u.freed.erase(std::next(it).base());
                ++unique_counts_.reuses;
                return value;
            }
        }
    }
    return unique_text(++unique_serial_, rng_);
}

std::optional<std::string> generator::pick_unique_holder(
    size_t table, const unique_column& u, const std::unordered_set<std::string>& touched) {
    for (int attempt = 0; attempt < 8; ++attempt) {
        auto pk = pick_present(table);
        if (pk && touched.count(touch_key(table, *pk)) == 0 &&
            tables_[table].rows.at(*pk)[u.column]) {
            return pk;
        }
    }
    return std::nullopt;
}

std::optional<uint64_t> generator::free_index(size_t table,
                                              std::unordered_set<std::string>& touched) {
    for (int attempt = 0; attempt < 8; ++attempt) {
        const uint64_t index = uniform<uint64_t>(rng_, 0, options_.keys - 1);
        const std::string pk = pk_text(table, index);
        if (tables_[table].rows.count(pk) == 0 && touched.insert(touch_key(table, pk)).second) {
            return index;
        }
    }
    return std::nullopt;
}

std::optional<size_t> generator::unique_table() {
    std::vector<size_t> tables;
    for (size_t t = 0; t < unique_.size(); ++t) {
        if (!unique_[t].empty()) {
            tables.push_back(t);
        }
    }
    if (tables.empty()) {
        return std::nullopt;
    }
    return tables[uniform<size_t>(rng_, 0, tables.size() - 1)];
}

void generator::move_unique(transaction& txn, std::unordered_set<std::string>& touched) {
    const auto unique_table_index = unique_table();
    if (!unique_table_index) {
        return;
    }
    const size_t table = *unique_table_index;
    // The table's first UNIQUE column.
    const unique_column& u = unique_[table].front();
    const auto from = pick_unique_holder(table, u, touched);
    const auto index = from ? free_index(table, touched) : std::nullopt;
    if (!index) {
        return;
    }
    touched.insert(touch_key(table, *from));
    // The holder's y becomes a new z; a new row takes y.
    row_values moved = tables_[table].rows.at(*from);
    const std::string taken = *moved[u.column];
    moved[u.column] = unique_text(++unique_serial_, rng_);
    const row_values taker = make_row(table, *index, touched, txn, &taken);
    const std::string taker_pk = pk_text(table, *index);
    store(table, *from, moved);
    store(table, taker_pk, taker);
    // A changefeed orders a transaction's rows by nothing the target can rely on: both orders.
    if (uniform(rng_, 0, 1) == 0) {
        emit(txn, table, *from, split_key(*from), moved);
        emit(txn, table, taker_pk, pk_values(table, *index), taker);
    } else {
        emit(txn, table, taker_pk, pk_values(table, *index), taker);
        emit(txn, table, *from, split_key(*from), moved);
    }
    ++unique_counts_.moves;
}

void generator::swap_unique(transaction& txn, std::unordered_set<std::string>& touched) {
    const auto unique_table_index = unique_table();
    if (!unique_table_index) {
        return;
    }
    const size_t table = *unique_table_index;
    const unique_column& u = unique_[table].front();
    const auto a = pick_unique_holder(table, u, touched);
    if (!a) {
        return;
    }
    touched.insert(touch_key(table, *a));
    const auto b = pick_unique_holder(table, u, touched);
    if (!b) {
        return;
    }
    touched.insert(touch_key(table, *b));
    row_values row_a = tables_[table].rows.at(*a);
    row_values row_b = tables_[table].rows.at(*b);
    std::swap(row_a[u.column], row_b[u.column]);
    store(table, *a, row_a);
    store(table, *b, row_b);
    emit(txn, table, *a, split_key(*a), row_a);
    emit(txn, table, *b, split_key(*b), row_b);
    ++unique_counts_.swaps;
}

void generator::delete_with_children(transaction& txn, size_t table, const std::string& pk,
                                     std::unordered_set<std::string>& touched) {
    // Children first, as a foreign key needs (the receiver orders them anyway).
    for (size_t child = 0; child < spec_.tables.size(); ++child) {
        for (const foreign_key_spec& fk : spec_.tables[child].foreign_keys) {
            if (!ident_equal(fk.references, spec_.tables[table].name)) {
                continue;
            }
            const size_t column = static_cast<size_t>(spec_.tables[child].column(fk.column) -
                                                      spec_.tables[child].columns.data());
            std::vector<std::string> doomed;
            for (const auto& [child_pk, row] : tables_[child].rows) {
                if (row[column] == pk) {
                    doomed.push_back(child_pk);
                }
            }
            for (const std::string& child_pk : doomed) {
                touched.insert(fmt::format("{}/{}", child, child_pk));
                remove(child, child_pk);
                emit(txn, child, child_pk, split_key(child_pk), std::nullopt);
            }
        }
    }
    remove(table, pk);
    emit(txn, table, pk, split_key(pk), std::nullopt);
}

void generator::restamp(transaction& txn, hlc to) {
    const std::string from_text = fmt::format("\"updated\": \"{}\"", txn.updated.to_string());
    const std::string to_text = fmt::format("\"updated\": \"{}\"", to.to_string());
    for (change& c : txn.changes) {
        // Only the field itself can match: a quote inside a JSON string is escaped.
        const size_t at = c.message.find(from_text);
        MOLT_CHECK(at != std::string::npos, "a generated message carries its HLC");
        c.message.replace(at, from_text.size(), to_text);
    }
    for (auto e = events_.rbegin(); e != events_.rend() && e->updated == txn.updated; ++e) {
        e->updated = to;
    }
    txn.updated = to;
    last_ = to;
}

transaction generator::next() {
    transaction txn;
    const hlc previous = last_;
    const bool share =
        options_.shared_hlc_rate > 0 && transactions_ > 0 && roll(options_.shared_hlc_rate);
    const unique_counts unique_before = unique_counts_;
    if (options_.wall_clock) {
        // A cluster's clock: the wall time, above the one before.
        const int64_t now = wall_clock_nanos();
        last_ = now > last_.wall() ? hlc(now, 0) : last_.next();
    } else {
        // Strictly increasing: usually a new wall time, sometimes the next logical tick.
        last_ = uniform(rng_, 0, 9) == 0
                    ? last_.next()
                    : hlc(last_.wall() + uniform<int64_t>(rng_, 1000, 50000), 0);
    }
    txn.updated = last_;
    std::unordered_set<std::string> touched;
    size_t rows = uniform(rng_, options_.min_rows, options_.max_rows);
    const bool first = transactions_++ == 0;
    if (first && options_.at_least_once) {
        rows = std::max(rows, std::min<size_t>(2, options_.max_rows));
    }
    const int total = options_.insert_weight + options_.update_weight + options_.delete_weight;
    for (size_t r = 0; r < rows; ++r) {
        const size_t table = uniform<size_t>(rng_, 0, spec_.tables.size() - 1);
        const int roll = uniform(rng_, 0, std::max(0, total - 1));
        const bool want_insert = roll < options_.insert_weight;
        const bool want_update =
            !want_insert && roll < options_.insert_weight + options_.update_weight;
        std::optional<std::string> existing = pick_present(table);
        if (existing && touched.count(fmt::format("{}/{}", table, *existing)) != 0) {
            existing.reset();
        }
        if (!want_insert && existing) {
            touched.insert(fmt::format("{}/{}", table, *existing));
            if (want_update) {
                const std::string pk = *existing;
                // Rebuild from the key index encoded in the row's key values.
                const table_spec& t = spec_.tables[table];
                std::vector<int64_t> key = split_key(pk);
                const uint64_t index = t.primary_key.size() == 1
                                           ? static_cast<uint64_t>(key[0] - options_.key_base)
                                           : static_cast<uint64_t>(key[0] - options_.key_base) * 8 +
                                                 static_cast<uint64_t>(key[1]);
                row_values row = make_row(table, index, touched, txn);
                store(table, pk, row);
                emit(txn, table, pk, key, row);
            } else {
                delete_with_children(txn, table, *existing, touched);
            }
            continue;
        }
        // An insert of a key that is not present.
        if (const auto index = free_index(table, touched)) {
            const std::string pk = pk_text(table, *index);
            row_values row = make_row(table, *index, touched, txn);
            store(table, pk, row);
            emit(txn, table, pk, pk_values(table, *index), row);
        }
    }
    if (options_.unique_move_rate > 0 && roll(options_.unique_move_rate)) {
        move_unique(txn, touched);
    }
    if (options_.unique_swap_rate > 0 && roll(options_.unique_swap_rate)) {
        swap_unique(txn, touched);
    }
    if (options_.phantom_delete_rate > 0 &&
        (std::uniform_real_distribution<double>(0, 1)(rng_) < options_.phantom_delete_rate ||
         (first && options_.at_least_once))) {
        // A key outside the keyspace: never inserted.
        const size_t table = uniform<size_t>(rng_, 0, spec_.tables.size() - 1);
        const uint64_t index = options_.keys + uniform<uint64_t>(rng_, 0, 1'000'000);
        const std::string pk = pk_text(table, index);
        if (touched.insert(fmt::format("{}/{}", table, pk)).second) {
            proto::message m;
            m.topic = spec_.tables[table].name;
            for (const int64_t k : pk_values(table, index)) {
                m.key.items().push_back(proto::json::number(k));
            }
            m.updated = txn.updated;
            change ch;
            ch.table = table;
            ch.pk = pk;
            ch.message = proto::encode_message(m);
            ch.key_hash = key_hash(spec_.tables[table].name, pk);
            txn.changes.push_back(std::move(ch));
            ++phantom_deletes_;
        }
    }
    const bool disjoint = std::none_of(touched.begin(), touched.end(), [&](const std::string& k) {
        return last_touched_.count(k) != 0;
    });
    if (share && !txn.changes.empty() && disjoint &&
        unique_counts_.reuses == unique_before.reuses &&
        unique_counts_.moves == unique_before.moves &&
        unique_counts_.swaps == unique_before.swaps) {
        restamp(txn, previous);
        ++shared_hlcs_;
        last_touched_.insert(touched.begin(), touched.end());
    } else {
        last_touched_ = std::move(touched);
    }
    return txn;
}

std::vector<std::map<std::string, row_values>> generator::state_at(hlc as_of) const {
    return state_where([as_of](hlc t) { return t <= as_of; });
}

std::vector<std::map<std::string, row_values>> generator::state_where(
    const std::function<bool(hlc)>& applied) const {
    std::vector<std::map<std::string, row_values>> out(spec_.tables.size());
    for (const event& e : events_) {
        if (!applied(e.updated)) {
            continue;
        }
        if (e.row) {
            out[e.table][e.pk] = *e.row;
        } else {
            out[e.table].erase(e.pk);
        }
    }
    return out;
}

std::vector<std::map<std::string, row_values>> generator::final_state() const {
    return state_at(last_);
}

}  // namespace molt::emulator
