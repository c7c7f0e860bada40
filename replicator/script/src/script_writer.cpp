#include "molt/replicator/script/script_writer.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/target/apply_plan.hpp"

namespace molt::replicator::script {
namespace {

bool ident_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '$';
}

// Runs what a script's onWrite asks for on the session holding the target transaction.
class session_host final : public write_host {
public:
    session_host(target_session& db, const target_dialect& dialect, const schema_snapshot& target,
                 size_t rows_per_statement)
        : db_(db), dialect_(dialect), target_(target), rows_per_statement_(rows_per_statement) {}

    result<std::vector<sql_row>> run(const write_request& request) override {
        if (request.type != write_request::kind::write) {
            auto bound = bind_placeholders(request.sql, dialect_.kind(), request.params.size());
            if (!bound) {
                return bound.error();
            }
            sql_params params;
            params.reserve(bound->order.size());
            for (const size_t p : bound->order) {
                params.push_back(request.params[p]);
            }
            if (request.type == write_request::kind::query) {
                return db_.query(bound->sql, params);
            }
            if (auto done = db_.execute(bound->sql, params); !done) {
                return done.error();
            }
            return std::vector<sql_row>();
        }
        auto rows = proto::decode_webhook(request.body, proto::decode_limits::unlimited());
        if (!rows) {
            return error{errc::internal,
                         "write(): the rows cannot be read back: " + rows.error().message()};
        }
        auto plan =
            plan_batch_deletes_first_if_safe(target_, rows->rows, dialect_, rows_per_statement_);
        if (!plan) {
            return plan.error();
        }
        for (const planned_statement& st : plan->statements) {
            if (auto done = run_statement(db_, st); !done) {
                return done.error().with_context(fmt::format(
                    "{} on {}", st.type == planned_statement::kind::upsert ? "upsert" : "delete",
                    st.table->qualified.to_string()));
            }
        }
        return std::vector<sql_row>();
    }

    result<void> usable() override {
        auto probe =
            db_.query(dialect_.kind() == dialect::oracle ? "SELECT 1 FROM DUAL" : "SELECT 1", {});
        if (!probe) {
            return probe.error();
        }
        return ok();
    }

private:
    target_session& db_;
    const target_dialect& dialect_;
    const schema_snapshot& target_;
    size_t rows_per_statement_;
};

}  // namespace

namespace {

error refused_statement(std::string text) {
    return error{errc::invalid_argument, std::move(text), retry_class::fatal};
}

// Skips blanks and comments from `i`.
size_t skip_blanks(std::string_view sql, size_t i) {
    for (;;) {
        while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i])) != 0) {
            ++i;
        }
        if (sql.substr(i, 2) == "--" || (i < sql.size() && sql[i] == '#')) {
            i = std::min(sql.find('\n', i), sql.size());
        } else if (sql.substr(i, 2) == "/*") {
            const size_t close = sql.find("*/", i + 2);
            i = close == std::string_view::npos ? sql.size() : close + 2;
        } else {
            return i;
        }
    }
}

// The statement's first two words, upper case.
std::pair<std::string, std::string> leading_words(std::string_view sql) {
    std::string words[2];
    size_t i = 0;
    for (std::string& word : words) {
        i = skip_blanks(sql, i);
        while (i < sql.size() &&
               (std::isalpha(static_cast<unsigned char>(sql[i])) != 0 || sql[i] == '_')) {
            word += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i++])));
        }
    }
    return {words[0], words[1]};
}

// The word by which the statement would end the replicator's transaction, or "".
std::string ends_transaction(std::string_view sql, dialect d) {
    const auto [first, second] = leading_words(sql);
    if (first == "COMMIT" || first == "ABORT" || first == "START" || first == "XA" ||
        (first == "ROLLBACK" && second != "TO") ||
        (first == "PREPARE" && second == "TRANSACTION") ||
        (first == "SET" && second == "AUTOCOMMIT")) {
        return first;
    }
    if (d != dialect::oracle && (first == "BEGIN" || first == "END")) {
        return first;  // Oracle's BEGIN … END is a PL/SQL block
    }
    if (d != dialect::postgres && (first == "CREATE" || first == "ALTER" || first == "DROP" ||
                                   first == "TRUNCATE" || first == "RENAME" || first == "GRANT" ||
                                   first == "REVOKE" || first == "LOCK" || first == "UNLOCK")) {
        return first;  // committed implicitly, before and after
    }
    return {};
}

}  // namespace

result<bound_sql> bind_placeholders(std::string_view sql, molt::dialect dialect, size_t params) {
    if (const std::string word = ends_transaction(sql, dialect); !word.empty()) {
        return refused_statement(
            fmt::format("{} would end the replicator's transaction, which commits after onWrite; "
                        "not run (use SAVEPOINT and ROLLBACK TO SAVEPOINT)",
                        word));
    }
    const bool dollars = dialect == dialect::postgres;
    const bool backslashes = dialect == dialect::mysql;
    bound_sql out;
    out.sql.reserve(sql.size() + 16);
    std::vector<bool> used(params);
    size_t i = 0;
    auto copy_until = [&](std::string_view end) {
        const size_t at = sql.find(end, i);
        const size_t stop = at == std::string_view::npos ? sql.size() : at + end.size();
        out.sql.append(sql.substr(i, stop - i));
        i = stop;
    };
    auto placeholder = [&](size_t param) -> result<void> {
        if (param >= params) {
            return refused_statement(
                dollars ? fmt::format("${} has no parameter ({} given)", param + 1, params)
                        : fmt::format("more ? placeholders than the {} parameters given", params));
        }
        used[param] = true;
        out.order.push_back(param);
        out.sql += ":p" + std::to_string(out.order.size());
        return ok();
    };
    while (i < sql.size()) {
        const char c = sql[i];
        const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
        const bool word_start = i == 0 || !ident_char(sql[i - 1]);
        // E'…' (PostgreSQL) takes backslash escapes, as MySQL's quoted text does.
        const bool e_string = dollars && (c == 'E' || c == 'e') && next == '\'' && word_start;
        if (c == '\'' || c == '"' || c == '`' || e_string) {
            if (e_string) {
                out.sql += c;
                ++i;
            }
            const char quote = sql[i];
            const bool escapes = e_string || (backslashes && quote != '`');
            out.sql += quote;
            for (++i; i < sql.size(); ++i) {
                out.sql += sql[i];
                if (escapes && sql[i] == '\\' && i + 1 < sql.size()) {
                    out.sql += sql[++i];
                } else if (sql[i] == quote) {
                    ++i;
                    break;  // a doubled quote opens the next run
                }
            }
        } else if ((c == '-' && next == '-') || (c == '#' && backslashes)) {
            copy_until("\n");
        } else if (c == '/' && next == '*') {
            copy_until("*/");
        } else if (c == ';' && dialect != dialect::oracle) {
            size_t j = i + 1;
            while ((j = skip_blanks(sql, j)) < sql.size() && sql[j] == ';') {
                ++j;
            }
            if (j < sql.size()) {
                return refused_statement("one statement per call: the text holds more than one");
            }
            out.sql.append(sql.substr(i));
            i = sql.size();
        } else if (dollars && c == '$' && word_start) {
            size_t j = i + 1;
            if (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])) != 0) {
                size_t n = 0;
                while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])) != 0) {
                    n = std::min<size_t>(n * 10 + static_cast<size_t>(sql[j] - '0'),
                                         size_t{1} << 20);
                    ++j;
                }
                if (n == 0) {
                    return refused_statement("$0 is no placeholder: they count from $1");
                }
                if (auto done = placeholder(n - 1); !done) {
                    return done.error();
                }
                i = j;
                continue;
            }
            // $tag$ … $tag$ (dollar quoting)
            while (j < sql.size() && ident_char(sql[j]) && sql[j] != '$') {
                ++j;
            }
            if (j < sql.size() && sql[j] == '$') {
                const std::string tag(sql.substr(i, j - i + 1));
                out.sql += tag;
                i = j + 1;
                copy_until(tag);
            } else {
                out.sql += c;
                ++i;
            }
        } else if (!dollars && c == '?') {
            if (auto done = placeholder(out.order.size()); !done) {
                return done.error();
            }
            ++i;
        } else {
            out.sql += c;
            ++i;
        }
    }
    for (size_t p = 0; p < params; ++p) {
        if (!used[p]) {
            return refused_statement(
                dollars ? fmt::format("parameter {} is given but ${} is not in the statement",
                                      p + 1, p + 1)
                        : fmt::format("{} parameters given for {} ? placeholders", params,
                                      out.order.size()));
        }
    }
    return out;
}

result<std::optional<split_rows>> script_writer::split(const qualified_name& schema,
                                                       const schema_snapshot& target,
                                                       const proto::batch& rows) const {
    if (!script_.writes(schema)) {
        return std::optional<split_rows>();
    }
    std::vector<bool> custom(rows.tables().size());
    bool any = false;
    for (size_t g = 0; g < rows.tables().size(); ++g) {
        const table_info* t = resolve_topic(target, rows.tables()[g].topic);
        custom[g] = t != nullptr && script_.writes(schema, t->name);
        any = any || custom[g];
        if (custom[g] && (!t->parents.empty() || target.referenced(*t))) {
            warn_foreign_keys(schema, *t);
        }
    }
    if (!any) {
        return std::optional<split_rows>();
    }
    // Each half as staging keeps rows: one message per line, as the changefeed sent it.
    std::string halves[2];
    for (size_t g = 0; g < rows.tables().size(); ++g) {
        const proto::table_mutations& group = rows.tables()[g];
        for (const proto::mutation& m : group.mutations) {
            proto::message_options options;
            options.diff = m.has_before;
            options.mvcc_timestamp = m.mvcc_timestamp.has_value();
            halves[custom[g] ? 1 : 0] +=
                proto::encode_message(proto::to_message(group.topic, m), options) + '\n';
        }
    }
    auto built_in = proto::decode_ndjson(std::move(halves[0]), proto::decode_limits::unlimited());
    auto own = proto::decode_ndjson(std::move(halves[1]), proto::decode_limits::unlimited());
    if (!built_in || !own) {
        return error{errc::internal, "the rows of tables with onWrite cannot be set apart: " +
                                         (built_in ? own : built_in).error().message()};
    }
    return std::optional<split_rows>(
        split_rows{std::move(built_in).value(), std::move(own).value()});
}

void script_writer::warn_foreign_keys(const qualified_name& schema, const table_info& t) const {
    {
        const std::lock_guard<std::mutex> lock(warned_mutex_);
        if (!warned_.insert(schema.to_string() + "." + t.name).second) {
            return;
        }
    }
    log::warn()
        .str("schema", schema.to_string())
        .str("table", t.name)
        .msg(
            "this table's rows are written by the userscript's onWrite, after the other tables "
            "of each batch, but it has foreign keys to or from other tables: a parent's delete "
            "in another table comes before its children's here, and this table's parents come "
            "after their children elsewhere; unless the keys are deferrable or cascade, such "
            "batches fail until the rows are resolved by hand");
}

result<void> script_writer::write(target_session& db, const qualified_name& schema,
                                  const schema_snapshot& target, const proto::batch& rows,
                                  std::chrono::steady_clock::time_point deadline) const {
    session_host host(db, dialect_, target, rows_per_statement_);
    return script_.write(schema, target, dialect_.kind(), rows, host, deadline);
}

}  // namespace molt::replicator::script
