#include "molt/fetch/changefeed.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "molt/common/ident.hpp"
#include "molt/common/percent.hpp"

namespace molt::fetch {
namespace {

// CockroachDB's text[] output: {a,b,"c d"}.
std::vector<std::string> parse_text_array(const std::string& text) {
    std::vector<std::string> out;
    if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
        return out;
    }
    std::string item;
    bool quoted = false;
    bool any = false;
    for (size_t i = 1; i + 1 < text.size(); ++i) {
        const char c = text[i];
        if (quoted) {
            if (c == '\\' && i + 2 < text.size()) {
                item += text[++i];
            } else if (c == '"') {
                quoted = false;
            } else {
                item += c;
            }
        } else if (c == '"') {
            quoted = true;
            any = true;
        } else if (c == ',') {
            out.push_back(std::move(item));
            item.clear();
            any = false;
        } else {
            item += c;
            any = true;
        }
    }
    if (any || !out.empty()) {
        out.push_back(std::move(item));
    }
    return out;
}

std::string sql_string(std::string_view text) {
    return quote_literal(dialect::postgres, text);
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

}  // namespace

std::string webhook_path(const conn_url& target, const std::string& target_schema) {
    if (target.dialect() == dialect::mysql) {
        return "/" + percent_encode(target.database());
    }
    if (target.dialect() == dialect::oracle) {
        return "/" + percent_encode(target_schema);  // the owner, as the catalog spells it
    }
    return "/" + percent_encode(target.database()) + "/" + percent_encode(target_schema);
}

std::string target_group(const conn_url& target, const std::string& target_schema) {
    // As the replicator's staging names it (staging_store::group_of).
    if (target.dialect() == dialect::mysql) {
        return qualified_name{{target.database()}}.unambiguous();
    }
    if (target.dialect() == dialect::oracle) {
        return qualified_name{{target_schema}}.unambiguous();
    }
    return qualified_name{{target.database(), target_schema}}.unambiguous();
}

changefeed_spec make_changefeed_spec(const proto::changefeed_settings& settings,
                                     const std::string& path, std::vector<std::string> tables) {
    changefeed_spec spec;
    std::sort(tables.begin(), tables.end());
    spec.tables = std::move(tables);
    const bool v6 = settings.host.find(':') != std::string::npos;
    spec.sink_base =
        fmt::format("webhook-https://{}:{}{}", v6 ? "[" + settings.host + "]" : settings.host,
                    settings.port, path);
    spec.sink_uri = spec.sink_base;
    if (!settings.sink_query_parameters.empty()) {
        spec.sink_uri += "?" + settings.sink_query_parameters;
    }
    return spec;
}

std::string create_changefeed_sql(const changefeed_spec& spec,
                                  const proto::changefeed_settings& settings, const hlc& cursor) {
    std::string tables;
    for (const std::string& t : spec.tables) {
        std::string quoted;
        size_t start = 0;
        // db.schema.table, each part quoted (names may need it).
        for (size_t dot = t.find('.'); start <= t.size(); dot = t.find('.', start)) {
            const size_t end = dot == std::string::npos ? t.size() : dot;
            quoted +=
                (quoted.empty() ? "" : ".") +
                quote_ident(dialect::postgres, std::string_view(t).substr(start, end - start));
            if (dot == std::string::npos) {
                break;
            }
            start = dot + 1;
        }
        tables += (tables.empty() ? "" : ", ") + quoted;
    }
    std::string with = "updated";
    if (!settings.resolved.empty()) {
        with += ", resolved = " + sql_string(settings.resolved);
    } else {
        with += ", resolved";
    }
    with += ", min_checkpoint_frequency = " + sql_string(settings.min_checkpoint_frequency);
    with += ", initial_scan = " + sql_string(settings.initial_scan);
    with += ", webhook_client_timeout = " + sql_string(settings.webhook_client_timeout);
    with += ", cursor = " + sql_string(cursor.to_string());
    with += ", webhook_sink_config = " + sql_string(settings.webhook_sink_config);
    return fmt::format("CREATE CHANGEFEED FOR TABLE {} INTO {} WITH {}", tables,
                       sql_string(spec.sink_uri), with);
}

result<std::vector<changefeed_job>> show_changefeed_jobs(sql_client& source,
                                                         const std::optional<std::string>& id) {
    auto rows = source.query(id ? "SHOW CHANGEFEED JOB " + *id : "SHOW CHANGEFEED JOBS");
    if (!rows) {
        return std::move(rows).error();
    }
    auto col = [&](std::string_view name) { return rows->column(name); };
    const auto c_id = col("job_id");
    const auto c_status = col("status");
    if (!c_id || !c_status) {
        return error{errc::parse_error,
                     "--source: SHOW CHANGEFEED JOBS has no job_id or status column"};
    }
    const auto c_running = col("running_status");
    const auto c_error = col("error");
    const auto c_hw = col("high_water_timestamp");
    const auto c_sink = col("sink_uri");
    const auto c_tables = col("full_table_names");
    std::vector<changefeed_job> out;
    for (const auto& row : rows->rows) {
        auto get = [&](const std::optional<size_t>& c) {
            return c ? row[*c].value_or("") : std::string();
        };
        changefeed_job j;
        j.id = get(c_id);
        j.status = get(c_status);
        j.running_status = get(c_running);
        j.error = get(c_error);
        j.high_water = get(c_hw);
        j.sink_uri = get(c_sink);
        j.tables = parse_text_array(get(c_tables));
        out.push_back(std::move(j));
    }
    return out;
}

namespace {

std::vector<std::string> sorted_lower(const std::vector<std::string>& names) {
    std::vector<std::string> out;
    for (const std::string& t : names) {
        out.push_back(lower(t));
    }
    std::sort(out.begin(), out.end());
    return out;
}

bool live_on_sink(const changefeed_job& j, const changefeed_spec& spec) {
    return (j.status == "running" || j.status == "paused") &&
           j.sink_uri.substr(0, j.sink_uri.find('?')) == spec.sink_base;
}

}  // namespace

std::optional<changefeed_job> find_reusable_job(const std::vector<changefeed_job>& jobs,
                                                const changefeed_spec& spec) {
    const std::vector<std::string> want = sorted_lower(spec.tables);
    for (const changefeed_job& j : jobs) {
        if (live_on_sink(j, spec) && sorted_lower(j.tables) == want) {
            return j;
        }
    }
    return std::nullopt;
}

std::vector<changefeed_job> conflicting_jobs(const std::vector<changefeed_job>& jobs,
                                             const changefeed_spec& spec) {
    const std::vector<std::string> want = sorted_lower(spec.tables);
    std::vector<changefeed_job> out;
    for (const changefeed_job& j : jobs) {
        if (live_on_sink(j, spec) && sorted_lower(j.tables) != want) {
            out.push_back(j);
        }
    }
    return out;
}

result<std::optional<std::string>> find_earlier_staging(sql_client& source,
                                                        const std::string& group) {
    auto dbs = source.query("SHOW DATABASES");
    if (!dbs) {
        return std::move(dbs).error();
    }
    const auto col = dbs->column("database_name");
    if (!col) {
        return error{errc::parse_error, "--source: SHOW DATABASES has no database_name column"};
    }
    std::optional<std::string> best;
    hlc newest;
    for (const auto& row : dbs->rows) {
        const std::string name = row[*col].value_or("");
        constexpr std::string_view prefix = "_replicator_";
        if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
            !std::all_of(name.begin() + prefix.size(), name.end(),
                         [](char c) { return c >= '0' && c <= '9'; })) {
            continue;
        }
        auto checkpoint = staged_checkpoint(source, name, group);
        if (!checkpoint) {
            return std::move(checkpoint).error();
        }
        if (*checkpoint && (!best || newest < **checkpoint)) {
            best = name;
            newest = **checkpoint;
        }
    }
    return best;
}

result<std::optional<hlc>> staged_checkpoint(sql_client& source, const std::string& staging_schema,
                                             const std::string& group) {
    // The replicator's reading of --stagingSchema on CockroachDB: "db" is db.public.
    const size_t dot = staging_schema.find('.');
    const std::string db = staging_schema.substr(0, dot);
    const std::string schema = dot == std::string::npos ? "public" : staging_schema.substr(dot + 1);
    auto rows = source.query(fmt::format(
        "SELECT source_nanos, source_logical FROM {}.{}.molt_checkpoints WHERE group_name = {} "
        "ORDER BY source_nanos DESC, source_logical DESC LIMIT 1",
        quote_ident(dialect::postgres, db), quote_ident(dialect::postgres, schema),
        sql_string(group)));
    if (!rows) {
        // 3D000: no such database; 42P01: no such table: nothing staged there yet.
        if (source.last_error_code() == "3D000" || source.last_error_code() == "42P01" ||
            source.last_error_code() == "3F000") {
            return std::optional<hlc>();
        }
        return std::move(rows).error();
    }
    if (rows->rows.empty()) {
        return std::optional<hlc>();
    }
    const auto& row = rows->rows.front();
    try {
        return std::optional<hlc>(
            hlc(std::stoll(row.at(0).value_or("0")), std::stoi(row.at(1).value_or("0"))));
    } catch (const std::exception&) {
        return error{errc::parse_error, "--source: unreadable checkpoint in the staging schema"};
    }
}

}  // namespace molt::fetch
