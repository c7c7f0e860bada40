#include "molt/replicator/script/script_writer.hpp"

#include <cctype>
#include <limits>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/target/apply_plan.hpp"

namespace molt::replicator::script {
namespace {

// The script's rows are the replicator's own: no request limits.
proto::decode_limits unlimited() {
    proto::decode_limits limits;
    limits.max_body_bytes = std::numeric_limits<size_t>::max();
    limits.max_messages = std::numeric_limits<size_t>::max();
    return limits;
}

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
        switch (request.type) {
        case write_request::kind::query:
            return db_.query(bind_placeholders(request.sql, dialect_.kind()), request.params);
        case write_request::kind::exec:
            if (auto done =
                    db_.execute(bind_placeholders(request.sql, dialect_.kind()), request.params);
                !done) {
                return done.error();
            }
            return std::vector<sql_row>();
        case write_request::kind::write: break;
        }
        auto rows = proto::decode_webhook(request.body, unlimited());
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

std::string bind_placeholders(std::string_view sql, molt::dialect dialect) {
    const bool dollars = dialect == dialect::postgres;
    const bool backslashes = dialect == dialect::mysql;
    std::string out;
    out.reserve(sql.size() + 16);
    size_t n = 0;
    size_t i = 0;
    auto copy_until = [&](std::string_view end) {
        const size_t at = sql.find(end, i);
        const size_t stop = at == std::string_view::npos ? sql.size() : at + end.size();
        out.append(sql.substr(i, stop - i));
        i = stop;
    };
    while (i < sql.size()) {
        const char c = sql[i];
        const char next = i + 1 < sql.size() ? sql[i + 1] : '\0';
        if (c == '\'' || c == '"' || c == '`') {
            out += c;
            for (++i; i < sql.size(); ++i) {
                out += sql[i];
                if (backslashes && sql[i] == '\\' && i + 1 < sql.size()) {
                    out += sql[++i];
                } else if (sql[i] == c) {
                    ++i;
                    break;  // a doubled quote opens the next run
                }
            }
        } else if (c == '-' && next == '-') {
            copy_until("\n");
        } else if (c == '/' && next == '*') {
            copy_until("*/");
        } else if (dollars && c == '$' && (i == 0 || !ident_char(sql[i - 1]))) {
            size_t j = i + 1;
            if (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])) != 0) {
                while (j < sql.size() && std::isdigit(static_cast<unsigned char>(sql[j])) != 0) {
                    ++j;
                }
                out += ":p";
                out.append(sql.substr(i + 1, j - i - 1));
                i = j;
                continue;
            }
            // $tag$ … $tag$ (dollar quoting)
            while (j < sql.size() && ident_char(sql[j]) && sql[j] != '$') {
                ++j;
            }
            if (j < sql.size() && sql[j] == '$') {
                const std::string tag(sql.substr(i, j - i + 1));
                out += tag;
                i = j + 1;
                copy_until(tag);
            } else {
                out += c;
                ++i;
            }
        } else if (!dollars && c == '?') {
            out += ":p" + std::to_string(++n);
            ++i;
        } else {
            out += c;
            ++i;
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
    auto built_in = proto::decode_ndjson(std::move(halves[0]), unlimited());
    auto own = proto::decode_ndjson(std::move(halves[1]), unlimited());
    if (!built_in || !own) {
        return error{errc::internal, "the rows of tables with onWrite cannot be set apart: " +
                                         (built_in ? own : built_in).error().message()};
    }
    return std::optional<split_rows>(
        split_rows{std::move(built_in).value(), std::move(own).value()});
}

result<void> script_writer::write(target_session& db, const qualified_name& schema,
                                  const schema_snapshot& target, const proto::batch& rows,
                                  std::chrono::steady_clock::time_point deadline) const {
    session_host host(db, dialect_, target, rows_per_statement_);
    return script_.write(schema, target, dialect_.kind(), rows, host, deadline);
}

}  // namespace molt::replicator::script
