#include "molt/emulator/crdb_names.hpp"

#include <algorithm>
#include <initializer_list>

#include <fmt/format.h>

namespace molt::emulator::crdb {
namespace {

std::string encode(std::string_view part) {
    std::string out;
    out.reserve(part.size());
    for (const char c : part) {
        if (c == '%') {
            out += "%25";
        } else if (c == '.') {
            out += "%2E";
        } else {
            out += c;
        }
    }
    return out;
}

std::optional<std::string> decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '.') {
            return std::nullopt;
        }
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        const std::string_view escape = s.substr(i, 3);
        if (escape == "%25") {
            out += '%';
        } else if (escape == "%2E") {
            out += '.';
        } else {
            return std::nullopt;
        }
        i += 2;
    }
    return out;
}

bool is_symbol(const token& t, char c) {
    return t.type == token::kind::symbol && t.text.size() == 1 && t.text[0] == c;
}

bool is_name(const token& t) {
    return t.type == token::kind::word || t.type == token::kind::quoted_ident;
}

// An identifier as CockroachDB reads it: unquoted words fold to lower case.
std::string name_of(const token& t) {
    return t.type == token::kind::word ? fold_case(t.text) : t.text;
}

bool one_of(std::string_view w, std::initializer_list<std::string_view> words) {
    return std::find(words.begin(), words.end(), w) != words.end();
}

// Where a dotted name stands, which decides how CockroachDB reads it.
enum class place {
    column,         // an expression: only db.schema.table.column is a database's
    table,          // a relation (or type, function, index): db.schema.t, or a.t
    create_target,  // what CREATE TABLE/VIEW/... creates: a missing schema is an error
    schema,         // after SCHEMA: db.schema
};

// Walks one statement's tokens, keeping per parenthesis level what decides a name's place.
class name_resolver {
public:
    name_resolver(const std::vector<token>& tokens, catalog& c) : t_(tokens), c_(c) {
        first_ = word_at(0);
        on_names_table_ = first_ == "grant" || first_ == "revoke" ||
                          (first_ == "drop" && one_of(word_at(1), {"trigger", "policy", "rule"}));
        if (first_ == "create") {
            size_t i = 1;
            while (one_of(word_at(i), {"unique", "or", "replace", "constraint"})) {
                ++i;
            }
            on_names_table_ = one_of(word_at(i), {"index", "trigger", "policy", "rule"});
        }
    }

    std::variant<std::vector<text_edit>, sql_error> run() {
        for (size_t i = 0; i < t_.size(); ++i) {
            const token& tk = t_[i];
            if (is_symbol(tk, '(')) {
                levels_.emplace_back();
                continue;
            }
            if (is_symbol(tk, ')')) {
                if (levels_.size() > 1) {
                    levels_.pop_back();
                }
                continue;
            }
            const bool after_dot = i > 0 && is_symbol(t_[i - 1], '.');
            if (tk.type == token::kind::word && !after_dot) {
                note_keyword(i);
            }
            if (!is_name(tk) || after_dot) {
                continue;
            }
            std::vector<std::string> parts{name_of(tk)};
            std::vector<size_t> at{i};
            while (at.back() + 2 < t_.size() && is_symbol(t_[at.back() + 1], '.') &&
                   is_name(t_[at.back() + 2])) {
                at.push_back(at.back() + 2);
                parts.push_back(name_of(t_[at.back()]));
            }
            if (parts.size() >= 2) {
                if (auto e = resolve(place_of(i), parts, at)) {
                    return *e;
                }
            }
            i = at.back();
        }
        return std::move(edits_);
    }

private:
    struct level {
        std::string_view verb;  // the last of SELECT, INSERT, UPDATE, DELETE at this level
        bool list = false;      // in a FROM list (or DROP TABLE's): a name after ',' is a table
    };

    [[nodiscard]] std::string word_at(size_t i) const {
        return i < t_.size() && t_[i].type == token::kind::word ? fold_case(t_[i].text) : "";
    }

    // FROM names tables, except in IS [NOT] DISTINCT FROM and in function calls such as
    // EXTRACT(x FROM y) and SUBSTRING(x FROM 2): inside parentheses only after a SELECT.
    [[nodiscard]] bool from_names_tables(size_t from) const {
        return word_at(from - 1) != "distinct" &&
               (levels_.size() == 1 || !levels_.back().verb.empty());
    }

    void note_keyword(size_t i) {
        const std::string w = word_at(i);
        level& l = levels_.back();
        for (const std::string_view verb : {"select", "insert", "update", "delete"}) {
            if (w == verb) {
                l.verb = verb;
            }
        }
        if (one_of(w, {"where", "group", "having", "window", "order", "limit", "offset", "fetch",
                       "for", "union", "intersect", "except", "returning", "set", "conflict", "do",
                       "cascade", "restrict"})) {
            l.list = false;
        }
        if ((w == "from" && from_names_tables(i)) || w == "truncate" ||
            (w == "table" && one_of(first_, {"drop", "truncate", "lock"}))) {
            l.list = true;
        }
    }

    [[nodiscard]] place place_of(size_t i) const {
        size_t k = i;  // t_[k - 1] is the word that says what the name is
        if (word_at(k - 1) == "only" && k > 0) {
            --k;
        }
        if (k >= 2 && word_at(k - 1) == "exists") {
            // IF EXISTS, IF NOT EXISTS
            size_t m = k - 1;
            if (m >= 1 && word_at(m - 1) == "not") {
                --m;
            }
            if (m >= 1 && word_at(m - 1) == "if") {
                k = m - 1;
            }
        }
        if (k == 0) {
            return place::column;
        }
        const token& p = t_[k - 1];
        if (is_symbol(p, ',')) {
            return levels_.back().list ? place::table : place::column;
        }
        const std::string w = word_at(k - 1);
        if (w == "from") {
            return from_names_tables(k - 1) ? place::table : place::column;
        }
        if (one_of(w, {"table", "view", "sequence", "type", "function", "procedure"})) {
            return creates(k - 1) ? place::create_target : place::table;
        }
        if (one_of(w, {"join", "into", "update", "references", "truncate", "copy", "index"})) {
            return place::table;
        }
        if (w == "using") {
            return levels_.back().verb == "delete" ? place::table : place::column;
        }
        if (w == "on") {
            return on_names_table_ && levels_.size() == 1 ? place::table : place::column;
        }
        if (w == "schema") {
            return place::schema;
        }
        return place::column;
    }

    // CREATE [OR REPLACE] [TEMP | UNLOGGED | MATERIALIZED ...] <kind> at `kind`.
    [[nodiscard]] bool creates(size_t kind) const {
        if (first_ != "create" || levels_.size() != 1) {
            return false;
        }
        for (size_t i = 1; i < kind; ++i) {
            if (!one_of(word_at(i), {"or", "replace", "temp", "temporary", "unlogged",
                                     "materialized", "global", "local", "recursive"})) {
                return false;
            }
        }
        return true;
    }

    [[nodiscard]] static sql_error cannot_create(const std::vector<std::string>& parts) {
        return {"3F000",
                fmt::format("cannot create {} because the target database or schema does not exist",
                            message_quote(display_name(parts)))};
    }

    // `first` and the dot after it go: appdb.public.t is public.t.
    void drop_first(const std::vector<size_t>& at) {
        edits_.push_back({t_[at[0]].begin, t_[at[1]].begin, ""});
    }
    // The first `count` parts become one backend schema name.
    void replace(const std::vector<size_t>& at, size_t count, const std::string& backend) {
        edits_.push_back({t_[at[0]].begin, t_[at[count - 1]].end, quote_identifier(backend)});
    }

    std::optional<sql_error> resolve(place where, const std::vector<std::string>& parts,
                                     const std::vector<size_t>& at) {
        const std::string current = c_.current_database();
        const size_t n = parts.size();
        const bool create = where == place::create_target;
        switch (where) {
        case place::schema:
            if (n == 2 && parts[0] == current) {
                drop_first(at);
            } else if (n == 2 &&
                       backend_schema(parts[0], parts[1]).size() <= max_identifier_bytes) {
                replace(at, 2, backend_schema(parts[0], parts[1]));
            }
            return std::nullopt;
        case place::column:
            if (n >= 4 && parts[0] == current) {
                drop_first(at);
            } else if (n >= 4 && c_.database_exists(parts[0]) &&
                       backend_schema(parts[0], parts[1]).size() <= max_identifier_bytes) {
                replace(at, 2, backend_schema(parts[0], parts[1]));
            }
            return std::nullopt;
        case place::table:
        case place::create_target: break;
        }
        if (n == 3) {
            if (parts[0] == current) {
                if (create && !c_.schema_exists(parts[1])) {
                    return cannot_create(parts);
                }
                drop_first(at);
                return std::nullopt;
            }
            // A database that does not exist maps too: PostgreSQL then says what CockroachDB
            // says, relation "d.s.t" does not exist.
            const std::string backend = backend_schema(parts[0], parts[1]);
            if (backend.size() > max_identifier_bytes || (create && !c_.schema_exists(backend))) {
                return create ? cannot_create(parts)
                              : sql_error{"42P01", fmt::format("relation {} does not exist",
                                                               message_quote(display_name(parts)))};
            }
            replace(at, 2, backend);
            return std::nullopt;
        }
        if (n != 2 || c_.schema_exists(parts[0])) {
            return std::nullopt;  // schema.table of the current database
        }
        if (parts[0] == current) {
            replace(at, 1, "public");
            return std::nullopt;
        }
        const std::string backend = backend_schema(parts[0], "public");
        if (backend.size() <= max_identifier_bytes && c_.database_exists(parts[0]) &&
            (!create || c_.schema_exists(backend))) {
            replace(at, 1, backend);
            return std::nullopt;
        }
        if (create) {
            return cannot_create(parts);
        }
        return std::nullopt;  // PostgreSQL: relation "a.t" does not exist, as CockroachDB
    }

    const std::vector<token>& t_;
    catalog& c_;
    std::string first_;
    bool on_names_table_ = false;
    std::vector<level> levels_{level{}};
    std::vector<text_edit> edits_;
};

}  // namespace

std::string backend_schema(std::string_view database, std::string_view schema) {
    return database_prefix(database) + encode(schema);
}

std::string database_prefix(std::string_view database) {
    return encode(database) + ".";
}

std::optional<std::pair<std::string, std::string>> emulated_schema(std::string_view backend) {
    const size_t dot = backend.find('.');
    if (dot == std::string_view::npos) {
        return std::nullopt;
    }
    auto database = decode(backend.substr(0, dot));
    auto schema = decode(backend.substr(dot + 1));
    if (!database || !schema) {
        return std::nullopt;
    }
    return std::pair{std::move(*database), std::move(*schema)};
}

std::string decode_sql(std::string_view expr) {
    // Every '%' of an encoded part starts "%25" or "%2E", so "%2E" cannot match inside "%25".
    return fmt::format("replace(replace({}, '%2E', '.'), '%25', '%')", expr);
}

std::variant<std::vector<text_edit>, sql_error> resolve_names(const std::vector<token>& tokens,
                                                              catalog& c) {
    return name_resolver(tokens, c).run();
}

std::string apply_edits(std::string_view sql, const std::vector<text_edit>& edits) {
    std::string out;
    size_t copied = 0;
    for (const text_edit& e : edits) {
        out.append(sql.substr(copied, e.begin - copied));
        out += e.text;
        copied = e.end;
    }
    out.append(sql.substr(copied));
    return out;
}

}  // namespace molt::emulator::crdb
