#include "molt/replicator/target/fatal_rows.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "molt/common/log.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/target/apply_plan.hpp"

namespace molt::replicator {
namespace {

bool has(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

bool textual(const column_info& c) {
    return !c.array &&
           (has(c.type_name, "char") || has(c.type_name, "text") || has(c.type_name, "json"));
}

bool integral(const column_info& c, bool wide) {
    if (c.array) {
        return false;
    }
    const std::string_view t = c.type_name;
    if (t == "numeric" || t == "decimal" || t == "bigint" || t == "int8") {
        return true;
    }
    return !wide && has(t, "int");
}

}  // namespace

std::string without_row_values(std::string_view message) {
    size_t cut = message.size();
    for (const std::string_view marker :
         {std::string_view("\nDETAIL:"), std::string_view(" while executing \"")}) {
        cut = std::min(cut, message.find(marker));
    }
    if (cut == message.size()) {
        return std::string(message);
    }
    std::string out(message.substr(0, cut));
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '.')) {
        out.pop_back();
    }
    // The code the session appends: "(SQLSTATE xxxxx)" or "(MySQL error n)".
    for (const std::string_view code :
         {std::string_view("(SQLSTATE "), std::string_view("(MySQL error ")}) {
        if (const size_t at = message.rfind(code); at != std::string_view::npos && at >= cut) {
            out += ' ';
            out += message.substr(at);
            break;
        }
    }
    return out;
}

std::string_view to_string(fatal_row_policy p) noexcept {
    return p == fatal_row_policy::dlq ? "dlq" : "stall";
}

result<void> check_dlq_table(const schema_snapshot& schema, const target_dialect& dialect,
                             std::string_view table) {
    const std::string ddl = dialect.dlq_ddl(schema.schema, table);
    const table_info* dlq = schema.find_table(table);
    if (dlq == nullptr) {
        return error{errc::database_error,
                     fmt::format("the dead-letter queue table {}.{} (--dlqTableName) does not "
                                 "exist in target schema {}: --fatalRowPolicy dlq writes the "
                                 "rows the target refuses there, and the replicator never creates "
                                 "it; create it with: {}",
                                 schema.schema.parts.back(), table, schema.schema.to_string(), ddl),
                     retry_class::fatal};
    }
    std::vector<std::string> problems;
    auto need = [&](std::string_view name, std::string_view what, auto fits) {
        const column_info* c = dlq->find_column(name);
        if (c == nullptr) {
            problems.push_back(fmt::format("no column {}", name));
        } else if (!fits(*c)) {
            problems.push_back(fmt::format("{} is {}, not {}", name, c->sql_type, what));
        }
    };
    need("dlq_name", "text", textual);
    need("source_nanos", "a 64-bit integer",
         [](const column_info& c) { return integral(c, true); });
    need("source_logical", "an integer", [](const column_info& c) { return integral(c, false); });
    need("data_after", "text or JSON", textual);
    need("data_before", "text or JSON", textual);
    if (problems.empty()) {
        return ok();
    }
    std::string listed;
    for (const std::string& p : problems) {
        listed += (listed.empty() ? "" : "; ") + p;
    }
    return error{errc::database_error,
                 fmt::format("the dead-letter queue table {} (--dlqTableName) cannot take the "
                             "rows --fatalRowPolicy dlq writes: {}; it should look like: {}",
                             dlq->qualified.to_string(), listed, ddl),
                 retry_class::fatal};
}

fatal_rows::fatal_rows(const target_dialect& dialect, metrics::registry& metrics,
                       fatal_row_options options)
    : dialect_(dialect),
      options_(std::move(options)),
      dead_letters_(metrics.counter("dlq_rows_total",
                                    "Rows the target (or a userscript's row handler) refused, "
                                    "written to the dead-letter queue (--fatalRowPolicy dlq), "
                                    "per table",
                                    {"schema", "table"})),
      stalled_(metrics.gauge("apply_stalled",
                             "Target transactions waiting on a row or a table the target "
                             "refuses (0: none); their schema does not advance",
                             {"schema"})) {}

result<void> fatal_rows::ready(const schema_snapshot& schema) const {
    if (!diverts()) {
        return ok();
    }
    return check_dlq_table(schema, dialect_, options_.dlq_table);
}

bool fatal_rows::diverts(const error& e) const {
    return diverts() && e.retry() == retry_class::fatal && dialect_.row_data_error(e);
}

result<void> fatal_rows::divert(target_session& db, const schema_snapshot& schema,
                                const proto::batch& rows, const planned_statement& st, hlc at,
                                const error& why, std::vector<dead_letter>& letters) const {
    const table_info& t = *st.table;
    if (auto checked = check_dlq_table(schema, dialect_, options_.dlq_table); !checked) {
        return checked.error().with_context(
            fmt::format("{} refused the row with key {} ({})", t.qualified.to_string(),
                        log::sanitize(st.key), without_row_values(why.message())));
    }
    const table_info& dlq = *schema.find_table(options_.dlq_table);
    size_t written = 0;
    for (const proto::table_mutations& group : rows.tables()) {
        if (resolve_topic(schema, group.topic) != &t) {
            continue;
        }
        for (const proto::mutation& m : group.mutations) {
            if (m.updated != at || m.key != st.key) {
                continue;
            }
            if (auto done = insert(db, dlq, t.qualified.to_string(), group.topic, m); !done) {
                return done;
            }
            ++written;
        }
    }
    if (written == 0) {
        return error{errc::internal,
                     fmt::format("no mutation of {} with key {} at {} to write to the dead-letter "
                                 "queue",
                                 t.qualified.to_string(), log::sanitize(st.key), at.to_string()),
                     retry_class::fatal};
    }
    for (size_t i = 0; i < written; ++i) {
        letters.push_back({t.name, t.qualified.to_string(), log::sanitize(st.key), at,
                           without_row_values(why.message())});
    }
    return ok();
}

result<void> fatal_rows::insert(target_session& db, const table_info& dlq,
                                const std::string& table_name, std::string_view topic,
                                const proto::mutation& m) const {
    const proto::message message = proto::to_message(topic, m);
    const sql_params params{
        table_name,
        std::to_string(m.updated.wall()),
        std::to_string(m.updated.logical()),
        m.deleted ? std::string("null") : proto::to_crdb_text(message.after),
        m.has_before ? proto::to_crdb_text(message.before) : std::string("null"),
    };
    if (auto done = db.execute(dialect_.dlq_insert_sql(dlq), params); !done) {
        // Without SOCI's echo of the parameters: they hold the whole row.
        return error{done.error().code(), without_row_values(done.error().message()),
                     done.error().retry()}
            .with_context(
                fmt::format("writing the row of {} with key {} to the dead-letter queue {}",
                            table_name, log::sanitize(m.key), dlq.qualified.to_string()));
    }
    return ok();
}

result<void> fatal_rows::divert(target_session& db, const schema_snapshot& schema,
                                const proto::batch& rows, const refused_row& row,
                                std::vector<dead_letter>& letters) const {
    if (row.group >= rows.tables().size() ||
        row.index >= rows.tables()[row.group].mutations.size()) {
        return error{errc::internal,
                     fmt::format("no mutation {} of table group {} to write to the dead-letter "
                                 "queue",
                                 row.index, row.group),
                     retry_class::fatal};
    }
    const proto::table_mutations& group = rows.tables()[row.group];
    const proto::mutation& m = group.mutations[row.index];
    // A table the target lacks keeps the changefeed's topic as its name.
    const table_info* t = resolve_topic(schema, group.topic);
    const std::string table = t != nullptr ? t->qualified.to_string() : std::string(group.topic);
    if (auto checked = check_dlq_table(schema, dialect_, options_.dlq_table); !checked) {
        return checked.error().with_context(
            fmt::format("{} (with key {} of {})", row.why, log::sanitize(m.key), table));
    }
    if (auto done = insert(db, *schema.find_table(options_.dlq_table), table, group.topic, m);
        !done) {
        return done;
    }
    letters.push_back({t != nullptr ? t->name : std::string(group.topic), table,
                       log::sanitize(m.key), m.updated, row.why, true});
    return ok();
}

void fatal_rows::report(const std::string& schema, const std::vector<dead_letter>& letters) const {
    for (const dead_letter& l : letters) {
        dead_letters_.with({schema, l.table_name}).add();
        log::error()
            .str("schema", schema)
            .str("table", l.table)
            .str("key", l.key)
            .str("source", l.at.to_string())
            .str("dlqTable", options_.dlq_table)
            .err(l.why)
            .msg(l.by_script ? "the userscript refused a row; it went to the dead-letter queue "
                               "(--fatalRowPolicy dlq) and the rest was applied"
                             : "the target refused a row; it went to the dead-letter queue "
                               "(--fatalRowPolicy dlq) and the rest was applied");
    }
}

std::string_view fatal_rows::remedy() const noexcept {
    if (diverts()) {
        return "--fatalRowPolicy dlq diverts only bad data of one row (NOT NULL, CHECK, a value "
               "too long or out of range); fix this by hand (rights, the table, the DLQ table): "
               "a fix is seen at the next retry";
    }
    return "fix the row's data or the target table by hand (a fix is seen at the next retry), or "
           "start the replicator with --fatalRowPolicy dlq to divert rows the target refuses to "
           "the dead-letter queue table (--dlqTableName)";
}

void fatal_rows::stalled(const std::string& schema, int delta) const {
    stalled_.with({schema}).add(delta);
}

bool stall_log_pacer::due(int attempt, std::chrono::steady_clock::time_point now) {
    if ((attempt & (attempt - 1)) == 0 || now - last_ >= every_) {
        last_ = now;
        return true;
    }
    return false;
}

}  // namespace molt::replicator
