#include "molt/emulator/crdb_sql.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <set>

#include <fmt/format.h>

#include "molt/emulator/crdb_names.hpp"

namespace molt::emulator::crdb {
namespace {

bool ident_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' ||
           static_cast<unsigned char>(c) >= 0x80;
}
bool ident_char(char c) {
    return ident_start(c) || std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '$';
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

// The end of a quoted run starting at `i` (just after the opening quote); doubled quotes stay
// inside, and with `backslash` (E'...') so do escaped ones.
size_t quoted_end(std::string_view s, size_t i, char quote, bool backslash, std::string* out) {
    while (i < s.size()) {
        const char c = s[i];
        if (backslash && c == '\\' && i + 1 < s.size()) {
            if (out != nullptr) {
                out->push_back(s[i + 1]);
            }
            i += 2;
            continue;
        }
        if (c == quote) {
            if (i + 1 < s.size() && s[i + 1] == quote) {
                if (out != nullptr) {
                    out->push_back(quote);
                }
                i += 2;
                continue;
            }
            return i + 1;
        }
        if (out != nullptr) {
            out->push_back(c);
        }
        ++i;
    }
    return s.size();
}

// Parses tokens of one CockroachDB statement.
class parser {
public:
    explicit parser(std::vector<token> tokens) : t_(std::move(tokens)) {}

    bool word(std::string_view w) const { return word_at(pos_, w); }
    bool word_at(size_t i, std::string_view w) const {
        return i < t_.size() && t_[i].type == token::kind::word && iequals(t_[i].text, w);
    }
    bool symbol(char c) const {
        return pos_ < t_.size() && t_[pos_].type == token::kind::symbol &&
               t_[pos_].text.size() == 1 && t_[pos_].text[0] == c;
    }
    bool accept(std::string_view w) {
        if (word(w)) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool accept_symbol(char c) {
        if (symbol(c)) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool done() const { return pos_ >= t_.size(); }
    const token* peek() const { return done() ? nullptr : &t_[pos_]; }
    void advance() { ++pos_; }

    /// CockroachDB's syntax error at the current token.
    syntax_error error() const {
        return syntax_error{
            fmt::format("at or near \"{}\": syntax error", done() ? "EOF" : lower(t_[pos_].text))};
    }

    /// An identifier: a word (folded to lower case) or a quoted identifier.
    std::optional<std::string> identifier() {
        if (done()) {
            return std::nullopt;
        }
        const token& tk = t_[pos_];
        if (tk.type == token::kind::word) {
            ++pos_;
            return lower(tk.text);
        }
        if (tk.type == token::kind::quoted_ident) {
            ++pos_;
            return tk.text;
        }
        return std::nullopt;
    }
    /// a.b.c
    std::optional<std::vector<std::string>> dotted_name() {
        std::vector<std::string> parts;
        do {
            auto part = identifier();
            if (!part) {
                return std::nullopt;
            }
            parts.push_back(std::move(*part));
        } while (accept_symbol('.'));
        return parts;
    }
    /// A value: a string, a number, or a word (lower-cased); a trailing ::type cast is skipped.
    std::optional<std::string> value() {
        if (done()) {
            return std::nullopt;
        }
        const token& tk = t_[pos_];
        std::optional<std::string> v;
        if (tk.type == token::kind::string || tk.type == token::kind::number) {
            v = tk.text;
        } else if (tk.type == token::kind::word) {
            v = lower(tk.text);
        } else if (tk.type == token::kind::symbol && tk.text == "-" && pos_ + 1 < t_.size() &&
                   t_[pos_ + 1].type == token::kind::number) {
            ++pos_;
            v = "-" + t_[pos_].text;
        } else {
            return std::nullopt;
        }
        ++pos_;
        if (accept_symbol(':') && accept_symbol(':')) {
            (void)identifier();
        }
        return v;
    }
    std::optional<int64_t> job_id() {
        if (done() || t_[pos_].type != token::kind::number) {
            return std::nullopt;
        }
        int64_t id = 0;
        const std::string& s = t_[pos_].text;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
        if (ec != std::errc() || end != s.data() + s.size()) {
            return std::nullopt;
        }
        ++pos_;
        return id;
    }
    /// IF NOT EXISTS: true when there, false when not, nullopt for IF alone.
    std::optional<bool> if_not_exists() {
        if (!accept("if")) {
            return false;
        }
        if (accept("not") && accept("exists")) {
            return true;
        }
        return std::nullopt;
    }
    /// A dotted name joined again: kv.rangefeed.enabled
    std::optional<std::string> setting_name() {
        auto parts = dotted_name();
        if (!parts) {
            return std::nullopt;
        }
        std::string joined;
        for (const std::string& part : *parts) {
            joined += (joined.empty() ? "" : ".") + part;
        }
        return joined;
    }
    bool contains_words(std::string_view a, std::string_view b) const {
        for (size_t i = 0; i + 1 < t_.size(); ++i) {
            if (word_at(i, a) && word_at(i + 1, b)) {
                return true;
            }
        }
        return false;
    }

private:
    std::vector<token> t_;
    size_t pos_ = 0;
};

// WITH opt [= v] [, ...] (WITH already taken), as CREATE CHANGEFEED and ALTER CHANGEFEED ADD
// write them; false on a syntax error.
bool parse_options(parser& p,
                   std::vector<std::pair<std::string, std::optional<std::string>>>& out) {
    (void)p.accept("options");
    const bool parenthesised = p.accept_symbol('(');
    do {
        auto name = p.identifier();
        if (!name) {
            return false;
        }
        std::optional<std::string> v;
        if (p.accept_symbol('=')) {
            v = p.value();
            if (!v) {
                return false;
            }
        }
        out.emplace_back(std::move(*name), std::move(v));
    } while (p.accept_symbol(','));
    return !parenthesised || p.accept_symbol(')');
}

statement parse_changefeed(parser& p) {
    // CREATE CHANGEFEED FOR [TABLE] t [, [TABLE] t ...] INTO 'uri' [WITH opt [= v] [, ...]]
    if (!p.accept("for")) {
        if (p.word("into") || p.word("with")) {
            return not_emulated{"CDC queries (CREATE CHANGEFEED ... AS SELECT)"};
        }
        return p.error();
    }
    create_changefeed cf;
    do {
        (void)p.accept("table");
        auto name = p.dotted_name();
        if (!name || name->size() > 3) {
            return p.error();
        }
        std::optional<std::string> family;
        if (p.accept("family")) {
            family = p.identifier();
            if (!family) {
                return p.error();
            }
        }
        cf.tables.push_back(std::move(*name));
        cf.families.push_back(std::move(family));
    } while (p.accept_symbol(','));
    if (!p.accept("into")) {
        if (p.done() || p.word("with")) {
            return not_emulated{"sinkless changefeeds (CREATE CHANGEFEED without INTO)"};
        }
        return p.error();
    }
    const token* uri = p.peek();
    if (uri == nullptr || uri->type != token::kind::string) {
        return p.error();
    }
    cf.sink_uri = uri->text;
    p.advance();
    if (p.accept("with") && !parse_options(p, cf.options)) {
        return p.error();
    }
    if (p.word("as")) {
        return not_emulated{"CDC queries (CREATE CHANGEFEED ... AS SELECT)"};
    }
    if (!p.done()) {
        return p.error();
    }
    return cf;
}

statement parse_alter_changefeed(parser& p) {
    alter_changefeed a;
    auto id = p.job_id();
    if (!id) {
        return p.error();
    }
    a.job = *id;
    while (!p.done()) {
        if (p.word("set") || p.word("unset")) {
            return not_emulated{"ALTER CHANGEFEED ... " + lower(p.peek()->text)};
        }
        alter_changefeed::command c;
        if (p.accept("drop")) {
            c.add = false;
        } else if (!p.accept("add")) {
            return p.error();
        }
        do {
            (void)p.accept("table");
            auto name = p.dotted_name();
            if (!name || name->size() > 3) {
                return p.error();
            }
            if (p.word("family")) {
                return not_emulated{"column family targets in ALTER CHANGEFEED"};
            }
            c.tables.push_back(std::move(*name));
        } while (p.accept_symbol(','));
        if (c.add && p.accept("with") && !parse_options(p, c.options)) {
            return p.error();
        }
        a.commands.push_back(std::move(c));
    }
    if (a.commands.empty()) {
        return p.error();
    }
    return a;
}

// nullopt: a PostgreSQL SHOW, which passes through.
std::optional<statement> parse_show(parser& p) {
    if (p.accept("cluster")) {
        if (p.accept("setting")) {
            auto name = p.setting_name();
            if (!name || !p.done()) {
                return p.error();
            }
            return show_setting{*name};
        }
        if (p.accept("settings") && p.done()) {
            return show_all_settings{};
        }
        return not_emulated{"SHOW CLUSTER ..."};
    }
    if ((p.accept("all") || p.accept("public")) && p.accept("cluster")) {
        if (p.accept("settings") && p.done()) {
            return show_all_settings{};
        }
        return p.error();
    }
    show_jobs s;
    s.changefeeds_only = p.accept("changefeed");
    if (p.accept("jobs")) {
        if (!p.done()) {
            return not_emulated{"SHOW JOBS with a selection"};
        }
        return s;
    }
    if (p.accept("job")) {
        if (p.word("when")) {
            return not_emulated{"SHOW JOB WHEN COMPLETE"};
        }
        s.job = p.job_id();
        if (!s.job || !p.done()) {
            return p.error();
        }
        return s;
    }
    if (s.changefeeds_only) {
        return p.error();
    }
    if (p.accept("databases")) {
        show_databases d;
        if (p.accept("with")) {
            if (!p.accept("comment")) {
                return p.error();
            }
            d.with_comment = true;
        }
        if (!p.done()) {
            return p.error();
        }
        return d;
    }
    // Other SHOW statements of CockroachDB; PostgreSQL's SHOW only reads settings, and would
    // answer "unrecognized configuration parameter".
    static constexpr std::array<std::string_view, 27> crdb_only = {
        "tables",   "schemas",     "sequences", "types",    "columns", "indexes", "index",
        "keys",     "constraints", "grants",    "roles",    "users",   "create",  "partitions",
        "locality", "statistics",  "functions", "ranges",   "range",   "zone",    "zones",
        "regions",  "backup",      "schedules", "sessions", "queries", "trace"};
    const token* next = p.peek();
    if (next != nullptr && next->type == token::kind::word) {
        const std::string w = lower(next->text);
        if (std::find(crdb_only.begin(), crdb_only.end(), w) != crdb_only.end()) {
            return not_emulated{"SHOW " + w};
        }
    }
    return std::nullopt;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
        s.replace(at, from.size(), to);
    }
    return s;
}

constexpr std::string_view dollar = "$crdb_emulator$";

}  // namespace

std::vector<token> tokenize(std::string_view s) {
    std::vector<token> out;
    size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (std::isspace(static_cast<unsigned char>(c)) != 0) {
            ++i;
            continue;
        }
        if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
            const size_t nl = s.find('\n', i);
            i = nl == std::string_view::npos ? s.size() : nl + 1;
            continue;
        }
        if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
            int depth = 1;
            i += 2;
            while (i < s.size() && depth > 0) {
                if (s.compare(i, 2, "/*") == 0) {
                    ++depth;
                    i += 2;
                } else if (s.compare(i, 2, "*/") == 0) {
                    --depth;
                    i += 2;
                } else {
                    ++i;
                }
            }
            continue;
        }
        token t;
        t.begin = i;
        if (c == '\'') {
            t.type = token::kind::string;
            i = quoted_end(s, i + 1, '\'', false, &t.text);
        } else if ((c == 'e' || c == 'E') && i + 1 < s.size() && s[i + 1] == '\'') {
            t.type = token::kind::string;
            i = quoted_end(s, i + 2, '\'', true, &t.text);
        } else if ((c == 'b' || c == 'B' || c == 'x' || c == 'X' || c == 'n' || c == 'N') &&
                   i + 1 < s.size() && s[i + 1] == '\'') {
            t.type = token::kind::string;
            i = quoted_end(s, i + 2, '\'', false, &t.text);
        } else if (c == '"') {
            t.type = token::kind::quoted_ident;
            i = quoted_end(s, i + 1, '"', false, &t.text);
        } else if (c == '$' && i + 1 < s.size() && (s[i + 1] == '$' || (ident_start(s[i + 1])))) {
            // $tag$ ... $tag$ (a dollar-quoted string), unless it is not closed as a tag.
            size_t j = i + 1;
            while (j < s.size() && s[j] != '$' && ident_char(s[j])) {
                ++j;
            }
            if (j < s.size() && s[j] == '$') {
                const std::string_view tag = s.substr(i, j - i + 1);
                const size_t close = s.find(tag, j + 1);
                t.type = token::kind::string;
                t.text = std::string(s.substr(j + 1, close == std::string_view::npos
                                                         ? std::string_view::npos
                                                         : close - j - 1));
                i = close == std::string_view::npos ? s.size() : close + tag.size();
            } else {
                t.type = token::kind::symbol;
                t.text = "$";
                ++i;
            }
        } else if (std::isdigit(static_cast<unsigned char>(c)) != 0 ||
                   (c == '.' && i + 1 < s.size() &&
                    std::isdigit(static_cast<unsigned char>(s[i + 1])) != 0)) {
            t.type = token::kind::number;
            size_t j = i;
            while (j < s.size() &&
                   (std::isdigit(static_cast<unsigned char>(s[j])) != 0 || s[j] == '.')) {
                ++j;
            }
            if (j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
                size_t k = j + 1;
                if (k < s.size() && (s[k] == '+' || s[k] == '-')) {
                    ++k;
                }
                if (k < s.size() && std::isdigit(static_cast<unsigned char>(s[k])) != 0) {
                    j = k;
                    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])) != 0) {
                        ++j;
                    }
                }
            }
            t.text = std::string(s.substr(i, j - i));
            i = j;
        } else if (ident_start(c)) {
            t.type = token::kind::word;
            size_t j = i;
            while (j < s.size() && ident_char(s[j])) {
                ++j;
            }
            t.text = std::string(s.substr(i, j - i));
            i = j;
        } else {
            t.type = token::kind::symbol;
            t.text = std::string(1, c);
            ++i;
        }
        t.end = i;
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<std::string_view> split_statements(std::string_view sql) {
    std::vector<std::string_view> out;
    size_t start = 0;
    bool any = false;
    for (const token& t : tokenize(sql)) {
        if (t.type == token::kind::symbol && t.text == ";") {
            if (any) {
                out.push_back(sql.substr(start, t.begin - start));
            }
            start = t.end;
            any = false;
        } else {
            any = true;
        }
    }
    if (any) {
        out.push_back(sql.substr(start));
    }
    return out;
}

std::optional<statement> parse_statement(std::string_view sql) {
    auto tokens = tokenize(sql);
    if (tokens.empty() || tokens[0].type != token::kind::word) {
        return std::nullopt;
    }
    parser p(std::move(tokens));
    if (p.contains_words("configure", "zone")) {
        return not_emulated{"zone configurations (CONFIGURE ZONE)"};
    }
    for (const auto& [a, b] : {std::pair<std::string_view, std::string_view>{"split", "at"},
                               {"unsplit", "at"},
                               {"unsplit", "all"}}) {
        if (p.word("alter") && p.contains_words(a, b)) {
            return not_emulated{"range splits (SPLIT AT)"};
        }
    }
    if (p.accept("show")) {
        return parse_show(p);
    }
    if (p.accept("set")) {
        if (p.word("database") || (p.word("session") && p.word_at(2, "database"))) {
            // SET [SESSION] database = name: CockroachDB's USE.
            (void)p.accept("session");
            p.advance();
            if (!(p.accept_symbol('=') || p.accept("to"))) {
                return p.error();
            }
            std::optional<std::string> name;
            if (const token* v = p.peek(); v != nullptr && v->type == token::kind::string) {
                name = v->text;
                p.advance();
            } else {
                name = p.identifier();
            }
            if (!name || !p.done()) {
                return p.error();
            }
            return use_database{std::move(*name)};
        }
        if (!p.accept("cluster")) {
            return std::nullopt;
        }
        if (!p.accept("setting")) {
            return p.error();
        }
        auto name = p.setting_name();
        if (!name || !(p.accept_symbol('=') || p.accept("to"))) {
            return p.error();
        }
        set_setting s;
        s.name = std::move(*name);
        if (!p.accept("default")) {
            s.value = p.value();
            if (!s.value) {
                return p.error();
            }
        }
        if (!p.done()) {
            return p.error();
        }
        return s;
    }
    if (p.accept("reset")) {
        if (!p.accept("cluster")) {
            return std::nullopt;
        }
        if (!p.accept("setting")) {
            return p.error();
        }
        auto name = p.setting_name();
        if (!name || !p.done()) {
            return p.error();
        }
        return set_setting{std::move(*name), std::nullopt};
    }
    if (p.accept("create")) {
        if (p.accept("changefeed")) {
            return parse_changefeed(p);
        }
        if (p.accept("database")) {
            create_database d;
            const auto ine = p.if_not_exists();
            if (!ine) {
                return p.error();
            }
            d.if_not_exists = *ine;
            auto name = p.identifier();
            if (!name) {
                return p.error();
            }
            if (!p.done()) {
                return not_emulated{"CREATE DATABASE options (ENCODING, OWNER, regions, ...)"};
            }
            d.name = std::move(*name);
            return d;
        }
        if (p.accept("schema")) {
            create_schema c;
            const auto ine = p.if_not_exists();
            if (!ine) {
                return p.error();
            }
            c.if_not_exists = *ine;
            auto name = p.dotted_name();
            if (!name || name->size() != 2 || !p.done()) {
                return std::nullopt;
            }
            c.database = (*name)[0];
            c.schema = (*name)[1];
            return c;
        }
        if (p.accept("schedule")) {
            return not_emulated{"CREATE SCHEDULE"};
        }
        if (p.accept("external")) {
            return not_emulated{"external connections (CREATE EXTERNAL CONNECTION)"};
        }
        return std::nullopt;
    }
    if (p.word("drop") && p.word_at(1, "database")) {
        p.advance();
        p.advance();
        drop_database d;
        if (p.accept("if")) {
            if (!p.accept("exists")) {
                return p.error();
            }
            d.if_exists = true;
        }
        auto name = p.identifier();
        if (!name) {
            return p.error();
        }
        d.name = std::move(*name);
        if (p.accept("restrict")) {
            d.restricted = true;
        } else {
            (void)p.accept("cascade");
        }
        if (!p.done()) {
            return p.error();
        }
        return d;
    }
    if (p.accept("use")) {
        auto name = p.identifier();
        if (!name || !p.done()) {
            return p.error();
        }
        return use_database{std::move(*name)};
    }
    for (const auto& [w, what] :
         {std::pair<std::string_view, control_job::action>{"pause", control_job::action::pause},
          {"resume", control_job::action::resume},
          {"cancel", control_job::action::cancel}}) {
        if (!p.accept(w)) {
            continue;
        }
        if (!p.accept("job")) {
            const token* next = p.peek();
            return not_emulated{
                fmt::format("{} {}", lower(w), next == nullptr ? "" : lower(next->text))};
        }
        control_job c;
        c.what = what;
        auto id = p.job_id();
        if (!id || !p.done()) {
            return p.error();
        }
        c.job = *id;
        return c;
    }
    for (const std::string_view w :
         {"backup", "restore", "import", "export", "upsert", "experimental"}) {
        if (p.word(w)) {
            return not_emulated{lower(w)};
        }
    }
    if (p.accept("alter")) {
        if (p.accept("changefeed")) {
            return parse_alter_changefeed(p);
        }
        if (p.word("backup")) {
            return not_emulated{"ALTER backup"};
        }
    }
    return std::nullopt;
}

statement_result statement_result::failure(std::string sqlstate, std::string message) {
    statement_result r;
    r.error = sql_error{std::move(sqlstate), std::move(message)};
    return r;
}

std::string quote_literal(std::string_view s) {
    return "'" + replace_all(std::string(s), "'", "''") + "'";
}

std::string quote_identifier(std::string_view s) {
    return "\"" + replace_all(std::string(s), "\"", "\"\"") + "\"";
}

std::string fold_case(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

std::string do_block(std::string_view body) {
    std::string tag(dollar);
    for (int n = 1; body.find(tag) != std::string_view::npos; ++n) {
        tag = fmt::format("$crdb_emulator{}$", n);
    }
    return fmt::format("DO {}{}{}", tag, body, tag);
}

std::string message_quote(std::string_view name) {
    std::string out = "\"";
    for (const char c : name) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

std::string display_name(const std::vector<std::string>& parts) {
    std::string out;
    for (const std::string& part : parts) {
        const bool plain =
            !part.empty() &&
            (std::islower(static_cast<unsigned char>(part[0])) != 0 || part[0] == '_') &&
            std::all_of(part.begin(), part.end(), [](char c) {
                return std::islower(static_cast<unsigned char>(c)) != 0 ||
                       std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_';
            });
        out += (out.empty() ? "" : ".") + (plain ? part : quote_identifier(part));
    }
    return out;
}

std::string to_postgres(const statement_result& r) {
    if (r.postgres_sql) {
        return *r.postgres_sql;
    }
    if (r.error) {
        // The message must not close the dollar quote.
        const std::string message = replace_all(r.error->message, dollar, "$crdb_emulator $");
        return fmt::format("DO {}BEGIN RAISE EXCEPTION USING MESSAGE = {}, ERRCODE = {}; END{}",
                           dollar, quote_literal(message), quote_literal(r.error->sqlstate),
                           dollar);
    }
    if (r.columns.empty()) {
        return fmt::format("DO {}BEGIN END{}", dollar, dollar);
    }
    auto cell = [&](const std::optional<std::string>& v, size_t c) {
        return fmt::format("{}::{}", v ? quote_literal(*v) : "NULL", r.columns[c].type);
    };
    std::string sql;
    if (r.rows.empty()) {
        sql = "SELECT ";
        for (size_t c = 0; c < r.columns.size(); ++c) {
            sql += fmt::format("{}{} AS {}", c == 0 ? "" : ", ", cell(std::nullopt, c),
                               quote_identifier(r.columns[c].name));
        }
        return sql + " WHERE false";
    }
    sql = "SELECT * FROM (VALUES ";
    for (size_t row = 0; row < r.rows.size(); ++row) {
        sql += row == 0 ? "(" : ", (";
        for (size_t c = 0; c < r.columns.size(); ++c) {
            sql += (c == 0 ? "" : ", ") +
                   cell(c < r.rows[row].size() ? r.rows[row][c] : std::nullopt, c);
        }
        sql += ")";
    }
    sql += ") AS crdb_result(";
    for (size_t c = 0; c < r.columns.size(); ++c) {
        sql += (c == 0 ? "" : ", ") + quote_identifier(r.columns[c].name);
    }
    return sql + ")";
}

namespace {

bool is_symbol(const token& t, char c) {
    return t.type == token::kind::symbol && t.text.size() == 1 && t.text[0] == c;
}
bool is_word(const std::vector<token>& t, size_t i, std::string_view w) {
    return i < t.size() && t[i].type == token::kind::word && iequals(t[i].text, w);
}
std::optional<std::string> identifier_at(const std::vector<token>& t, size_t i) {
    if (i >= t.size()) {
        return std::nullopt;
    }
    if (t[i].type == token::kind::word) {
        return fold_case(t[i].text);
    }
    if (t[i].type == token::kind::quoted_ident) {
        return t[i].text;
    }
    return std::nullopt;
}

// An element of CREATE TABLE's list: tokens [begin, end).
struct table_element {
    size_t begin = 0, end = 0;
};

// FAMILY [name] (column, ...) at `e`; nullopt when it does not parse.
std::optional<std::pair<std::optional<std::string>, std::vector<std::string>>> family_clause(
    const std::vector<token>& t, table_element e) {
    size_t i = e.begin + 1;
    std::optional<std::string> name;
    if (i < e.end && !is_symbol(t[i], '(')) {
        name = identifier_at(t, i);
        if (!name) {
            return std::nullopt;
        }
        ++i;
    }
    if (i >= e.end || !is_symbol(t[i], '(')) {
        return std::nullopt;
    }
    std::vector<std::string> columns;
    for (++i;; i += 2) {
        auto column = identifier_at(t, i);
        if (!column || i + 1 >= e.end) {
            return std::nullopt;
        }
        columns.push_back(std::move(*column));
        if (is_symbol(t[i + 1], ')')) {
            return i + 2 == e.end ? std::optional(std::pair(std::move(name), std::move(columns)))
                                  : std::nullopt;
        }
        if (!is_symbol(t[i + 1], ',')) {
            return std::nullopt;
        }
    }
}

}  // namespace

std::optional<std::variant<created_table, sql_error>> parse_create_table(std::string_view sql) {
    const std::vector<token> t = tokenize(sql);
    if (!is_word(t, 0, "create")) {
        return std::nullopt;
    }
    size_t i = 1;
    while (i < t.size() && t[i].type == token::kind::word &&
           (iequals(t[i].text, "temp") || iequals(t[i].text, "temporary") ||
            iequals(t[i].text, "unlogged") || iequals(t[i].text, "global") ||
            iequals(t[i].text, "local"))) {
        ++i;
    }
    if (!is_word(t, i, "table")) {
        return std::nullopt;
    }
    ++i;
    if (is_word(t, i, "if") && is_word(t, i + 1, "not") && is_word(t, i + 2, "exists")) {
        i += 3;
    }
    created_table out;
    for (;;) {
        auto part = identifier_at(t, i);
        if (!part) {
            return std::nullopt;
        }
        out.name.push_back(std::move(*part));
        if (i + 2 < t.size() && is_symbol(t[i + 1], '.')) {
            i += 2;
            continue;
        }
        ++i;
        break;
    }
    out.sql = std::string(sql);
    if (i >= t.size() || !is_symbol(t[i], '(')) {
        return out;  // CREATE TABLE ... AS, PARTITION OF, OF type: no column list
    }
    const size_t open = i;
    std::vector<table_element> elements;
    size_t depth = 0, close = t.size();
    for (size_t start = i + 1; ++i < t.size();) {
        if (is_symbol(t[i], '(')) {
            ++depth;
        } else if (is_symbol(t[i], ')') && depth > 0) {
            --depth;
        } else if (depth == 0 && (is_symbol(t[i], ',') || is_symbol(t[i], ')'))) {
            if (start < i) {
                elements.push_back({start, i});
            }
            start = i + 1;
            if (is_symbol(t[i], ')')) {
                close = i;
                break;
            }
        }
    }
    if (close == t.size()) {
        return out;  // unbalanced: PostgreSQL's syntax error
    }
    std::vector<std::string> columns;
    std::vector<std::pair<std::optional<std::string>, std::vector<std::string>>> clauses;
    std::string kept;  // the elements that are not FAMILY clauses
    for (const table_element& e : elements) {
        if (is_word(t, e.begin, "family")) {
            auto clause = family_clause(t, e);
            if (!clause) {
                return sql_error{"42601",
                                 fmt::format("at or near \"{}\": syntax error",
                                             fold_case(t[std::min(e.end, t.size()) - 1].text))};
            }
            clauses.push_back(std::move(*clause));
            continue;
        }
        kept += (kept.empty() ? "" : ", ") +
                std::string(sql.substr(t[e.begin].begin, t[e.end - 1].end - t[e.begin].begin));
        static constexpr std::array<std::string_view, 9> not_columns = {
            "constraint", "primary", "unique", "check",   "foreign",
            "exclude",    "like",    "index",  "inverted"};
        const bool column =
            t[e.begin].type == token::kind::quoted_ident ||
            (t[e.begin].type == token::kind::word &&
             std::none_of(not_columns.begin(), not_columns.end(),
                          [&](std::string_view w) { return iequals(t[e.begin].text, w); }));
        if (!column) {
            continue;
        }
        columns.push_back(*identifier_at(t, e.begin));
        for (size_t k = e.begin + 1; k < e.end; ++k) {
            if (is_word(t, k, "family")) {
                return sql_error{"0A000",
                                 "unimplemented: column qualifiers FAMILY and CREATE FAMILY are "
                                 "not emulated by crdb-emulator (a CockroachDB stand-in over "
                                 "PostgreSQL); name the columns in FAMILY clauses of the table"};
            }
        }
    }
    if (clauses.empty()) {
        return out;
    }
    std::set<std::string, std::less<>> assigned, names;
    for (size_t f = 0; f < clauses.size(); ++f) {
        auto& [name, family_columns] = clauses[f];
        column_family fam;
        if (name) {
            fam.name = *name;
        } else {
            fam.name = fmt::format("fam_{}", f);
            for (const std::string& c : family_columns) {
                fam.name += "_" + c;
            }
        }
        if (!names.insert(fam.name).second) {
            return sql_error{"42710",
                             fmt::format("family {} already exists", message_quote(fam.name))};
        }
        for (const std::string& c : family_columns) {
            if (std::find(columns.begin(), columns.end(), c) == columns.end()) {
                return sql_error{"42703",
                                 fmt::format("column {} does not exist", message_quote(c))};
            }
            if (!assigned.insert(c).second) {
                return sql_error{
                    "42P16", fmt::format("column {} is in more than one family", message_quote(c))};
            }
        }
        fam.columns = std::move(family_columns);
        out.families.push_back(std::move(fam));
    }
    for (const std::string& c : columns) {
        if (assigned.count(c) == 0) {
            out.families.front().columns.push_back(c);
        }
    }
    out.sql =
        std::string(sql.substr(0, t[open].end)) + kept + std::string(sql.substr(t[close].begin));
    return out;
}

std::string rewrite_statement(std::string_view sql, executor& ex) {
    if (auto s = parse_statement(sql)) {
        if (const auto* e = std::get_if<syntax_error>(&*s)) {
            return to_postgres(statement_result::failure("42601", e->message));
        }
        if (const auto* n = std::get_if<not_emulated>(&*s)) {
            return to_postgres(statement_result::failure(
                "0A000", fmt::format("unimplemented: {} is not emulated by crdb-emulator (a "
                                     "CockroachDB stand-in over PostgreSQL)",
                                     n->what)));
        }
        return to_postgres(ex.execute(*s));
    }
    const std::vector<token> tokens = tokenize(sql);
    auto names = resolve_names(tokens, ex);
    if (const auto* e = std::get_if<sql_error>(&names)) {
        return to_postgres(statement_result::failure(e->sqlstate, e->message));
    }
    std::vector<text_edit> edits = std::get<std::vector<text_edit>>(std::move(names));
    // version() and cluster_logical_timestamp() calls become CockroachDB's answers.
    for (size_t i = 0; i + 2 < tokens.size(); ++i) {
        const token& t = tokens[i];
        if (t.type != token::kind::word || tokens[i + 1].text != "(" || tokens[i + 2].text != ")" ||
            (i > 0 && tokens[i - 1].text == ".")) {
            continue;
        }
        std::string replacement;
        if (iequals(t.text, "version")) {
            replacement = fmt::format("(SELECT {}::text AS version)", quote_literal(ex.version()));
        } else if (iequals(t.text, "cluster_logical_timestamp")) {
            replacement = fmt::format("(SELECT {}::numeric AS cluster_logical_timestamp)",
                                      ex.logical_timestamp().to_string());
        } else {
            continue;
        }
        edits.push_back({t.begin, tokens[i + 2].end, std::move(replacement)});
        i += 2;
    }
    std::string out(sql);
    if (!edits.empty()) {
        std::sort(edits.begin(), edits.end(),
                  [](const text_edit& a, const text_edit& b) { return a.begin < b.begin; });
        out = apply_edits(sql, edits);
    }
    // CREATE TABLE: PostgreSQL has no column families; the stand-in keeps them for changefeeds.
    if (auto created = is_word(tokens, 0, "create") ? parse_create_table(out) : std::nullopt) {
        if (auto* e = std::get_if<sql_error>(&*created)) {
            return to_postgres(statement_result::failure(e->sqlstate, e->message));
        }
        auto& table = std::get<created_table>(*created);
        ex.note_table(table);
        return std::move(table.sql);
    }
    return out;
}

namespace {

// The statements of one simple query are all rewritten before PostgreSQL runs any of them,
// while CockroachDB runs them one after the other: so that a name resolves as it would there,
// the schemas that earlier statements of the batch create count as existing for later ones.
class batch_executor final : public executor {
public:
    explicit batch_executor(executor& ex) : ex_(ex) {}

    std::string version() override { return ex_.version(); }
    hlc logical_timestamp() override { return ex_.logical_timestamp(); }
    statement_result execute(const statement& s) override { return ex_.execute(s); }
    void note_table(const created_table& t) override { ex_.note_table(t); }
    std::string current_database() override { return ex_.current_database(); }
    bool schema_exists(std::string_view name) override {
        return created_.count(name) != 0 || ex_.schema_exists(name);
    }
    bool database_exists(std::string_view database) override {
        const std::string prefix = database_prefix(database);
        const auto it = created_.lower_bound(prefix);
        if (it != created_.end() && std::string_view(*it).substr(0, prefix.size()) == prefix) {
            return true;
        }
        return ex_.database_exists(database);
    }

    // Notes the schemas `sql` creates (in PostgreSQL's names), if it is CREATE SCHEMA or
    // CREATE DATABASE.
    void note_created(std::string_view sql) {
        if (auto parsed = parse_statement(sql)) {
            if (const auto* d = std::get_if<create_database>(&*parsed)) {
                created_.insert(backend_schema(d->name, "public"));
            } else if (const auto* c = std::get_if<create_schema>(&*parsed)) {
                created_.insert(c->database == current_database()
                                    ? c->schema
                                    : backend_schema(c->database, c->schema));
            }
            return;
        }
        // CREATE SCHEMA [IF NOT EXISTS] name [AUTHORIZATION role], or CREATE SCHEMA
        // AUTHORIZATION role (a schema named after the role), passes through to PostgreSQL.
        const std::vector<token> t = tokenize(sql);
        auto is_word = [&](size_t i, std::string_view w) {
            return i < t.size() && t[i].type == token::kind::word && iequals(t[i].text, w);
        };
        if (!is_word(0, "create") || !is_word(1, "schema")) {
            return;
        }
        size_t at = 2;
        if (is_word(2, "if") && is_word(3, "not") && is_word(4, "exists")) {
            at = 5;
        }
        if (is_word(at, "authorization")) {
            ++at;
        }
        const bool one_part = at + 1 >= t.size() || t[at + 1].text != ".";
        if (at < t.size() && one_part &&
            (t[at].type == token::kind::word || t[at].type == token::kind::quoted_ident)) {
            created_.insert(t[at].type == token::kind::word ? fold_case(t[at].text) : t[at].text);
        }
    }

private:
    executor& ex_;
    std::set<std::string, std::less<>> created_;
};

}  // namespace

std::string rewrite_query(std::string_view sql, executor& ex) {
    const std::vector<std::string_view> statements = split_statements(sql);
    if (statements.size() <= 1) {
        return statements.empty() ? std::string(sql) : rewrite_statement(statements[0], ex);
    }
    batch_executor batch(ex);
    std::string out;
    for (const std::string_view s : statements) {
        out += (out.empty() ? "" : "; ") + rewrite_statement(s, batch);
        batch.note_created(s);
    }
    return out;
}

}  // namespace molt::emulator::crdb
