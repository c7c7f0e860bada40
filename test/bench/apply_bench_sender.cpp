// apply_bench_sender: the rows and the lean sender of bench/apply_bench.py (see bench/README.md).
//
//   apply_bench_sender sql  OPTIONS --dialect postgres|mysql --out DIR [--statement arrays]
//       DIR/schema.sql (the table), DIR/ceiling.K.sql for each connection K: the workload as the
//       ceiling client sends it (one multi-row upsert, and a DELETE ... IN, per batch). With
//       --statement arrays (PostgreSQL), DIR/ceiling-arrays.K.sql: statements prepared once per
//       session, taking one array per column (EXECUTE up('{...}', ...)).
//   apply_bench_sender send OPTIONS --url URL [--resolved-interval D --target URL
//                           --progress-table T] [--rate ROWS_PER_S --duration S]
//       The same batches as changefeed webhook bodies (encoded before the clock starts), posted
//       over one keep-alive HTTPS connection per K; each key is always on the same connection,
//       so a key's versions arrive in order. With --resolved-interval (consistent mode), a
//       resolved timestamp goes out every interval, covering what every connection has had
//       acknowledged, and a last one at the end; the run ends when the target's progress table
//       shows it applied. With --rate, batches are paced and stamped with the wall clock, and
//       the time from each resolved timestamp to its appearance in the progress table is
//       measured. Prints one JSON object.
//
// OPTIONS: --shape narrow|wide --mix insert|mixed --rows N --batch B --connections C --seed S.
// The same OPTIONS give the same rows, batches and order, whichever subcommand.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "molt/common/conn_url.hpp"
#include "molt/common/hlc.hpp"
#include "molt/emulator/crdb_sql.hpp"
#include "molt/emulator/https_transport.hpp"
#include "molt/proto/crdb_types.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/dialect/mysql.hpp"
#include "molt/replicator/dialect/postgres.hpp"

namespace {

using clock_type = std::chrono::steady_clock;
using molt::hlc;
using molt::proto::json;

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "apply_bench_sender: %s\n", message.c_str());
    std::exit(2);
}

struct column {
    const char* name;
    const char* pg_type;  // also the CockroachDB type the value is encoded as
    const char* my_type;
};

// narrow: what the issue measured first; wide: 20 columns of mixed types.
const std::vector<column> narrow_columns = {
    {"id", "INT8", "BIGINT"},
    {"n", "INT8", "BIGINT"},
    {"s", "TEXT", "TEXT"},
    {"d", "NUMERIC(12,2)", "DECIMAL(12,2)"},
};
const std::vector<column> wide_columns = {
    {"id", "INT8", "BIGINT"},
    {"i1", "INT4", "INT"},
    {"i2", "INT8", "BIGINT"},
    {"i3", "INT8", "BIGINT"},
    {"t1", "TEXT", "TEXT"},
    {"t2", "TEXT", "TEXT"},
    {"t3", "TEXT", "TEXT"},
    {"t4", "TEXT", "TEXT"},
    {"n1", "NUMERIC(12,2)", "DECIMAL(12,2)"},
    {"n2", "NUMERIC(12,2)", "DECIMAL(12,2)"},
    {"f1", "FLOAT8", "DOUBLE"},
    {"f2", "FLOAT8", "DOUBLE"},
    {"b1", "BOOL", "BOOLEAN"},
    {"b2", "BOOL", "BOOLEAN"},
    {"ts1", "TIMESTAMPTZ", "DATETIME(6)"},
    {"ts2", "TIMESTAMPTZ", "DATETIME(6)"},
    {"dt", "DATE", "DATE"},
    {"u", "UUID", "CHAR(36)"},
    {"j", "JSONB", "JSON"},
    {"k", "INT8", "BIGINT"},
};

struct options {
    std::string shape = "narrow", mix = "insert";
    size_t rows = 200'000, batch = 1'000, connections = 4;
    uint64_t seed = 1;
    std::string dialect, out, url, target, progress_table;
    std::string statement = "values";  // sql: values, or arrays (PostgreSQL)
    std::chrono::milliseconds resolved_interval{0};
    double rate = 0;      // rows/s, 0: as fast as the target takes them
    double duration = 0;  // seconds of paced sending (--rate)
};

struct mutation {
    int64_t id = 0;
    bool deleted = false;
    std::vector<std::string> values;  // PostgreSQL text per column (no NULLs)
};

struct batch {
    size_t connection = 0;
    std::vector<mutation> rows;
    hlc first, last;
    std::string body;
};

const std::string letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";

std::string text(std::mt19937_64& rng, size_t min, size_t max) {
    std::string s(min + rng() % (max - min + 1), ' ');
    for (char& c : s) {
        c = letters[rng() % letters.size()];
    }
    return s;
}

std::vector<std::string> row_values(const std::vector<column>& cols, int64_t id,
                                    std::mt19937_64& rng) {
    std::vector<std::string> v;
    v.reserve(cols.size());
    for (const column& c : cols) {
        const std::string_view type = c.pg_type;
        if (std::string_view(c.name) == "id") {
            v.push_back(std::to_string(id));
        } else if (type == "INT8") {
            v.push_back(std::to_string(static_cast<int64_t>(rng() % 4'000'000'000'000ULL)));
        } else if (type == "INT4") {
            v.push_back(std::to_string(static_cast<int32_t>(rng() % 2'000'000'000ULL)));
        } else if (type == "TEXT") {
            v.push_back(text(rng, 8, 40));
        } else if (type == "NUMERIC(12,2)") {
            v.push_back(fmt::format("{}.{:02}", rng() % 1'000'000'000, rng() % 100));
        } else if (type == "FLOAT8") {
            // k + 0.5: always a fraction, so CockroachDB prints it in plain notation.
            v.push_back(fmt::format("{}.5", rng() % 10'000'000));
        } else if (type == "BOOL") {
            v.push_back(rng() % 2 ? "true" : "false");
        } else if (type == "TIMESTAMPTZ") {
            v.push_back(fmt::format("2026-{:02}-{:02} {:02}:{:02}:{:02}.{:06}+00", 1 + rng() % 12,
                                    1 + rng() % 28, rng() % 24, rng() % 60, rng() % 60,
                                    rng() % 1'000'000));
        } else if (type == "DATE") {
            v.push_back(
                fmt::format("20{:02}-{:02}-{:02}", rng() % 40, 1 + rng() % 12, 1 + rng() % 28));
        } else if (type == "UUID") {
            const uint64_t a = rng(), b = rng();
            v.push_back(fmt::format("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", a >> 32,
                                    (a >> 16) & 0xffff, a & 0xfff, b >> 52, b & 0xffffffffffffULL));
        } else if (type == "JSONB") {
            v.push_back(
                fmt::format(R"({{"n": {}, "tag": "{}"}})", rng() % 100'000, text(rng, 3, 12)));
        } else {
            die(fmt::format("no generator for {}", type));
        }
    }
    return v;
}

// Batches in the global order they are sent: batch g goes on connection g % C; a key lives on
// one connection (id % C), so per-key order holds whatever the connections' interleaving.
std::vector<batch> generate(const options& o, const std::vector<column>& cols) {
    std::mt19937_64 rng(o.seed);
    const auto conns = static_cast<int64_t>(o.connections);
    std::vector<int64_t> next_id(o.connections);
    std::vector<std::vector<int64_t>> live(o.connections);  // ids present, per connection
    std::vector<batch> out;
    size_t made = 0;
    for (size_t g = 0; made < o.rows; ++g) {
        batch b;
        b.connection = g % o.connections;
        const auto c = static_cast<int64_t>(b.connection);
        std::unordered_set<int64_t> in_batch;
        const size_t n = std::min(o.batch, o.rows - made);
        for (size_t i = 0; i < n; ++i) {
            std::vector<int64_t>& present = live[b.connection];
            const uint64_t roll = rng() % 100;
            mutation m;
            int64_t existing = 0;
            size_t at = 0;
            if (o.mix == "mixed" && roll >= 50 && present.size() > o.batch * 2) {
                for (int tries = 0; tries < 8 && existing == 0; ++tries) {
                    at = rng() % present.size();
                    if (in_batch.count(present[at]) == 0) {
                        existing = present[at];
                    }
                }
            }
            if (existing == 0) {  // an insert of a new key
                m.id = 1 + c + conns * next_id[b.connection]++;
                present.push_back(m.id);
                m.values = row_values(cols, m.id, rng);
            } else if (roll < 85) {  // 35 %: an update
                m.id = existing;
                m.values = row_values(cols, m.id, rng);
            } else {  // 15 %: a delete
                m.id = existing;
                m.deleted = true;
                present[at] = present.back();
                present.pop_back();
            }
            in_batch.insert(m.id);
            b.rows.push_back(std::move(m));
        }
        made += n;
        out.push_back(std::move(b));
    }
    return out;
}

// ---- SQL for the ceiling client --------------------------------------------------------------

std::string my_literal(const column& c, const std::string& v) {
    const std::string_view type = c.pg_type;
    if (type == "BOOL") {
        return v == "true" ? "1" : "0";
    }
    if (type == "INT8" || type == "INT4" || type == "FLOAT8" || type == "NUMERIC(12,2)") {
        return v;
    }
    std::string value = v;
    if (type == "TIMESTAMPTZ") {
        value = v.substr(0, v.size() - 3);  // UTC, as the replicator's sessions run
    }
    std::string out = "'";
    for (const char ch : value) {
        if (ch == '\'' || ch == '\\') {
            out += '\\';
        }
        out += ch;
    }
    return out + "'";
}

void write_sql(const options& o, const std::vector<column>& cols, const std::vector<batch>& all) {
    const bool pg = o.dialect == "postgres";
    if (!pg && o.dialect != "mysql") {
        die("--dialect is postgres or mysql");
    }
    std::filesystem::create_directories(o.out);
    {
        std::ofstream schema(o.out + "/schema.sql");
        schema << "DROP TABLE IF EXISTS bench_t;\nCREATE TABLE bench_t (";
        for (size_t i = 0; i < cols.size(); ++i) {
            schema << (i ? ", " : "") << cols[i].name << ' '
                   << (pg ? cols[i].pg_type : cols[i].my_type) << (i == 0 ? " PRIMARY KEY" : "");
        }
        schema << ");\n";
    }
    std::string names;
    std::string update;
    for (size_t i = 0; i < cols.size(); ++i) {
        names += fmt::format("{}{}", i ? ", " : "", cols[i].name);
        if (i > 0) {
            update += fmt::format("{}{} = {}", i > 1 ? ", " : "", cols[i].name,
                                  pg ? fmt::format("excluded.{}", cols[i].name)
                                     : fmt::format("VALUES({})", cols[i].name));
        }
    }
    const std::string upsert_tail =
        (pg ? " ON CONFLICT (id) DO UPDATE SET " : " ON DUPLICATE KEY UPDATE ") + update;
    // PostgreSQL's second form: statements prepared once per session, one array per column.
    const bool arrays = o.statement == "arrays";
    if (arrays && !pg) {
        die("--statement arrays is for PostgreSQL");
    }
    std::vector<std::ofstream> files;
    for (size_t k = 0; k < o.connections; ++k) {
        files.emplace_back(fmt::format("{}/ceiling{}.{}.sql", o.out, arrays ? "-arrays" : "", k));
        if (pg) {
            files.back() << "\\set ON_ERROR_STOP 1\n";
        } else {
            // The session settings the replicator's MySQL sessions use.
            files.back() << "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED;\n"
                         << "SET SESSION time_zone = '+00:00';\n"
                         << "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, "
                            "',STRICT_ALL_TABLES');\n";
        }
        if (arrays) {
            std::string types;
            std::string params;
            for (size_t i = 0; i < cols.size(); ++i) {
                types += fmt::format("{}{}[]", i ? ", " : "", cols[i].pg_type);
                params += fmt::format("{}${}", i ? ", " : "", i + 1);
            }
            files.back() << "PREPARE up(" << types << ") AS INSERT INTO bench_t (" << names
                         << ") SELECT * FROM unnest(" << params << ")" << upsert_tail << ";\n"
                         << "PREPARE del(INT8[]) AS DELETE FROM bench_t WHERE id = ANY($1);\n";
        }
    }
    for (const batch& b : all) {
        std::string upserts;
        std::string deletes;
        std::vector<std::string> columns(cols.size());
        for (const mutation& m : b.rows) {
            if (m.deleted) {
                deletes += fmt::format("{}{}", deletes.empty() ? "" : ",", m.id);
                continue;
            }
            if (arrays) {
                for (size_t i = 0; i < cols.size(); ++i) {
                    columns[i] += columns[i].empty() ? "{" : ",";
                    columns[i] += '"';
                    for (const char ch : m.values[i]) {
                        if (ch == '"' || ch == '\\') {
                            columns[i] += '\\';
                        }
                        columns[i] += ch;
                    }
                    columns[i] += '"';
                }
                continue;
            }
            upserts += upserts.empty() ? "(" : ",(";
            for (size_t i = 0; i < cols.size(); ++i) {
                upserts += i ? "," : "";
                upserts += pg ? molt::emulator::crdb::quote_literal(m.values[i])
                              : my_literal(cols[i], m.values[i]);
            }
            upserts += ")";
        }
        if (arrays && !columns[0].empty()) {
            upserts = "EXECUTE up(";
            for (size_t i = 0; i < cols.size(); ++i) {
                upserts += (i ? ", " : "") + molt::emulator::crdb::quote_literal(columns[i] + "}");
            }
            upserts += ")";
        }
        std::ofstream& f = files[b.connection];
        const bool both = !upserts.empty() && !deletes.empty();
        if (both) {
            f << "BEGIN;\n";
        }
        if (!upserts.empty() && arrays) {
            f << upserts << ";\n";
        } else if (!upserts.empty()) {
            f << "INSERT INTO bench_t (" << names << ") VALUES " << upserts << upsert_tail << ";\n";
        }
        if (!deletes.empty() && arrays) {
            f << "EXECUTE del('{" << deletes << "}');\n";
        } else if (!deletes.empty()) {
            f << "DELETE FROM bench_t WHERE id IN (" << deletes << ");\n";
        }
        if (both) {
            f << "COMMIT;\n";
        }
    }
}

// ---- the webhook bodies ----------------------------------------------------------------------

// Stamps the batch's rows first, first+1ns, ... and encodes its body.
void encode(batch& b, const std::vector<column>& cols, int64_t first) {
    std::vector<std::string> messages;
    messages.reserve(b.rows.size());
    for (size_t i = 0; i < b.rows.size(); ++i) {
        const mutation& m = b.rows[i];
        molt::proto::message msg;
        msg.topic = "bench_t";
        msg.updated = hlc(first + static_cast<int64_t>(i), 0);
        msg.key = json::array({json::number(m.id)});
        if (m.deleted) {
            msg.after = json::null();
        } else {
            msg.after = json::object();
            for (size_t c = 0; c < cols.size(); ++c) {
                auto v = molt::proto::value_from_pg_text(
                    molt::proto::column_type_from_name(cols[c].pg_type), m.values[c]);
                if (!v) {
                    die(fmt::format("{}: {}", cols[c].name, v.error().message()));
                }
                msg.after.set(cols[c].name, std::move(*v));
            }
        }
        messages.push_back(molt::proto::encode_message(msg));
    }
    b.first = hlc(first, 0);
    b.last = hlc(first + static_cast<int64_t>(b.rows.size()) - 1, 0);
    b.body = molt::proto::encode_payload(messages);
}

int64_t wall_now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

double seconds_since(clock_type::time_point t) {
    return std::chrono::duration<double>(clock_type::now() - t).count();
}

// Posts until a 2xx (the changefeed retries too); gives up after a minute of failures.
void post(molt::emulator::transport& t, const std::string& body, std::atomic<uint64_t>& retries) {
    const auto give_up = clock_type::now() + std::chrono::minutes(1);
    for (;;) {
        const auto out = t.post(body, molt::emulator::send_mode::whole);
        if (out.status >= 200 && out.status < 300) {
            return;
        }
        if (clock_type::now() > give_up) {
            die(fmt::format("the replicator kept refusing a request: {}", out.error));
        }
        ++retries;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

// The target's committed checkpoint, from its progress table. Not thread-safe.
class progress_reader {
public:
    progress_reader(const std::string& url, const std::string& table) {
        auto parsed = molt::conn_url::parse(url);
        if (!parsed) {
            die("--target: " + parsed.error().message());
        }
        auto s = parsed->dialect() == molt::dialect::mysql
                     ? molt::replicator::mysql::connect(*parsed, std::chrono::seconds(30))
                     : molt::replicator::postgres::connect(*parsed, std::chrono::seconds(30));
        if (!s) {
            die(s.error().message());
        }
        session_ = std::move(*s);
        // The committed checkpoint (replicator/README.md, "Consistent mode").
        sql_ = fmt::format("SELECT max(last_nanos) FROM {} WHERE first_nanos = 0", table);
    }
    int64_t applied() {
        auto rows = session_->query(sql_, {});
        if (!rows) {
            // The replicator creates the table with its first window.
            return 0;
        }
        const auto& v = rows->empty() ? std::nullopt : rows->front().front();
        return v ? std::stoll(*v) : 0;
    }

private:
    std::unique_ptr<molt::replicator::target_session> session_;
    std::string sql_;
};

// What the connections have in flight, for the resolved timestamps.
class frontier {
public:
    explicit frontier(size_t connections) : open_(connections) {}
    /// Rows from `first` on are about to go out on connection k.
    void sending(size_t k, int64_t first) {
        const std::lock_guard<std::mutex> lock(mutex_);
        open_[k] = first;
    }
    void acknowledged(size_t k) {
        const std::lock_guard<std::mutex> lock(mutex_);
        open_[k].reset();
    }
    /// Pre-stamped runs: the last stamp of all.
    void set_last(int64_t last) {
        const std::lock_guard<std::mutex> lock(mutex_);
        last_ = last;
    }
    /// Paced runs: a stamp above every stamp given and at least the wall clock.
    int64_t next_stamp(size_t k, size_t rows) {
        const std::lock_guard<std::mutex> lock(mutex_);
        const int64_t first = std::max({wall_now(), last_ + 1, resolved_ + 1});
        last_ = first + static_cast<int64_t>(rows) - 1;
        open_[k] = first;
        return first;
    }
    /// Every row at or below the answer has been acknowledged (paced: or is never to come).
    int64_t resolved(bool paced) {
        const std::lock_guard<std::mutex> lock(mutex_);
        int64_t r = paced ? std::max(wall_now(), last_ + 1) : last_ + 1;
        for (const auto& o : open_) {
            if (o) {
                r = std::min(r, *o);
            }
        }
        resolved_ = std::max(resolved_, r - 1);
        return r - 1;
    }

private:
    std::mutex mutex_;
    std::vector<std::optional<int64_t>> open_;
    int64_t last_ = 0;
    int64_t resolved_ = 0;  // the highest answer resolved() gave
};

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const size_t at =
        std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
    return v[at];
}

int send(const options& o, const std::vector<column>& cols, std::vector<batch>& all) {
    const bool consistent = o.resolved_interval.count() > 0;
    const bool paced = o.rate > 0;
    if (consistent && (o.target.empty() || o.progress_table.empty())) {
        die("--resolved-interval needs --target and --progress-table");
    }
    const int64_t base = 1'700'000'000'000'000'000;
    if (!paced) {
        for (size_t g = 0; g < all.size(); ++g) {
            encode(all[g], cols, base + static_cast<int64_t>(g * o.batch * 1000));
        }
    }
    molt::emulator::endpoint_options endpoint;
    endpoint.sink_uri = o.url;
    auto factory = molt::emulator::make_https_transport(endpoint);
    if (!factory) {
        die(factory.error().message());
    }
    std::vector<std::vector<batch*>> per_connection(o.connections);
    size_t rows = 0;
    for (batch& b : all) {
        per_connection[b.connection].push_back(&b);
        rows += b.rows.size();
    }
    std::vector<std::unique_ptr<molt::emulator::transport>> transports;
    for (size_t k = 0; k <= o.connections; ++k) {
        transports.push_back((*factory)());
    }
    std::unique_ptr<progress_reader> progress;
    if (consistent) {
        progress = std::make_unique<progress_reader>(o.target, o.progress_table);
    }

    frontier front(o.connections);
    for (size_t k = 0; k < o.connections; ++k) {
        if (!paced && !per_connection[k].empty()) {
            front.sending(k, per_connection[k].front()->first.wall());
        }
    }
    if (!paced && !all.empty()) {
        front.set_last(all.back().last.wall());
    }
    std::atomic<uint64_t> retries{0};
    std::atomic<size_t> done{0};
    std::mutex mutex;
    std::condition_variable changed;
    const auto start = clock_type::now();
    std::vector<std::thread> workers;
    const double batch_seconds =
        paced ? static_cast<double>(o.batch) * static_cast<double>(o.connections) / o.rate : 0;
    for (size_t k = 0; k < o.connections; ++k) {
        workers.emplace_back([&, k] {
            auto due = start;
            const std::vector<batch*>& mine = per_connection[k];
            for (size_t i = 0; i < mine.size(); ++i) {
                if (paced) {
                    std::this_thread::sleep_until(due);
                    due += std::chrono::duration_cast<clock_type::duration>(
                        std::chrono::duration<double>(batch_seconds));
                    encode(*mine[i], cols, front.next_stamp(k, mine[i]->rows.size()));
                }
                post(*transports[k], mine[i]->body, retries);
                // Pre-stamped: the connection's next batch is the lowest it can still send.
                if (!paced && i + 1 < mine.size()) {
                    front.sending(k, mine[i + 1]->first.wall());
                } else {
                    front.acknowledged(k);
                }
                if (paced) {
                    mine[i]->body = std::string();
                }
            }
            const std::lock_guard<std::mutex> lock(mutex);
            ++done;
            changed.notify_all();
        });
    }

    // Resolved timestamps: when each went out (wall clock), and when it was seen applied.
    struct resolved_sent {
        int64_t resolved;
        clock_type::time_point posted;
        std::optional<clock_type::time_point> applied;
    };
    std::vector<resolved_sent> sent;
    std::mutex sent_mutex;
    std::atomic<bool> stop_polling{false};
    std::atomic<int64_t> checkpoint{0};
    std::thread poller;
    if (consistent) {
        poller = std::thread([&] {
            while (!stop_polling) {
                if (!paced && done < o.connections) {
                    // Throughput runs: the target is only read once everything is sent, so the
                    // polls take no database time from the run itself.
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                    continue;
                }
                const int64_t applied = progress->applied();
                checkpoint = applied;
                const auto now = clock_type::now();
                {
                    const std::lock_guard<std::mutex> lock(sent_mutex);
                    for (resolved_sent& s : sent) {
                        if (!s.applied && s.resolved <= applied) {
                            s.applied = now;
                        }
                    }
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(paced ? 10 : 5));
            }
        });
    }
    auto post_resolved = [&](int64_t r) {
        const auto posted = clock_type::now();
        post(*transports[o.connections], molt::proto::encode_resolved(hlc(r, 0)), retries);
        const std::lock_guard<std::mutex> lock(sent_mutex);
        sent.push_back({r, posted, std::nullopt});
    };
    int64_t last_resolved = 0;
    {
        std::unique_lock<std::mutex> lock(mutex);
        auto due = clock_type::now() + o.resolved_interval;
        while (done < o.connections) {
            if (!consistent) {
                changed.wait(lock);
                continue;
            }
            // Woken early by a connection finishing: nothing is due yet.
            if (changed.wait_until(lock, due) != std::cv_status::timeout) {
                continue;
            }
            due += o.resolved_interval;
            const int64_t r = front.resolved(paced);
            if (r > last_resolved && done < o.connections) {
                lock.unlock();
                post_resolved(r);
                lock.lock();
                last_resolved = r;
            }
        }
    }
    for (std::thread& t : workers) {
        t.join();
    }
    const double sent_seconds = seconds_since(start);
    int64_t final_resolved = 0;
    if (consistent) {
        final_resolved = front.resolved(paced);
        post_resolved(final_resolved);
        const auto give_up = clock_type::now() + std::chrono::minutes(30);
        while (checkpoint.load() < final_resolved) {
            if (clock_type::now() > give_up) {
                die("the target did not apply the last resolved timestamp within 30 minutes");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    const double seconds = seconds_since(start);
    stop_polling = true;
    if (poller.joinable()) {
        poller.join();
    }
    std::vector<double> latencies_ms;  // resolved timestamp (its wall time) -> seen applied
    std::vector<double> delivery_ms;   // resolved timestamp posted -> seen applied
    if (paced) {
        // The resolved timestamp's wall time on the steady clock: now minus its age.
        const int64_t wall_at_end = wall_now();
        const auto steady_at_end = clock_type::now();
        for (const resolved_sent& s : sent) {
            if (!s.applied || s.resolved == final_resolved) {
                continue;  // the last one is sent after pacing stopped
            }
            const auto stamp = steady_at_end - std::chrono::nanoseconds(wall_at_end - s.resolved);
            latencies_ms.push_back(
                std::chrono::duration<double, std::milli>(*s.applied - stamp).count());
            delivery_ms.push_back(
                std::chrono::duration<double, std::milli>(*s.applied - s.posted).count());
        }
    }
    std::printf(
        "{\"rows\": %zu, \"requests\": %zu, \"seconds\": %.4f, \"sent_seconds\": %.4f, "
        "\"rows_per_second\": %.1f, \"retries\": %llu, \"resolved_sent\": %zu, "
        "\"latency_samples\": %zu, \"latency_p50_ms\": %.1f, \"latency_p99_ms\": %.1f, "
        "\"latency_max_ms\": %.1f, \"delivery_p50_ms\": %.1f, \"delivery_p99_ms\": %.1f}\n",
        rows, all.size(), seconds, sent_seconds, static_cast<double>(rows) / seconds,
        static_cast<unsigned long long>(retries.load()), sent.size(), latencies_ms.size(),
        percentile(latencies_ms, 0.5), percentile(latencies_ms, 0.99),
        percentile(latencies_ms, 1.0), percentile(delivery_ms, 0.5), percentile(delivery_ms, 0.99));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        die("usage: apply_bench_sender sql|send OPTIONS (see the source's header)");
    }
    const std::string command = argv[1];
    options o;
    // A whole number or decimal, or exit naming the flag.
    auto number = [](const std::string& flag, const std::string& v) {
        size_t used = 0;
        double n = 0;
        try {
            n = std::stod(v, &used);
        } catch (const std::exception&) {
        }
        if (used == 0 || used != v.size() || n < 0) {
            die(fmt::format("{}: not a non-negative number: {}", flag, v));
        }
        return n;
    };
    auto count = [&](size_t& to) {
        return [&, to_ptr = &to](const std::string& flag, const std::string& v) {
            *to_ptr = static_cast<size_t>(number(flag, v));
        };
    };
    auto text = [](std::string& to) {
        return [to_ptr = &to](const std::string&, const std::string& v) { *to_ptr = v; };
    };
    const std::map<std::string, std::function<void(const std::string&, const std::string&)>> flags =
        {
            {"--shape", text(o.shape)},
            {"--mix", text(o.mix)},
            {"--rows", count(o.rows)},
            {"--batch", count(o.batch)},
            {"--connections", count(o.connections)},
            {"--seed", [&](const std::string& f,
                           const std::string& v) { o.seed = static_cast<uint64_t>(number(f, v)); }},
            {"--dialect", text(o.dialect)},
            {"--statement", text(o.statement)},
            {"--out", text(o.out)},
            {"--url", text(o.url)},
            {"--target", text(o.target)},
            {"--progress-table", text(o.progress_table)},
            {"--resolved-interval",
             [&](const std::string& f, const std::string& v) {
                 o.resolved_interval =
                     std::chrono::milliseconds(static_cast<int64_t>(number(f, v)));
             }},
            {"--rate", [&](const std::string& f, const std::string& v) { o.rate = number(f, v); }},
            {"--duration",
             [&](const std::string& f, const std::string& v) { o.duration = number(f, v); }},
        };
    for (int i = 2; i < argc; i += 2) {
        const std::string flag = argv[i];
        const auto it = flags.find(flag);
        if (it == flags.end()) {
            die("unknown flag " + flag);
        }
        if (i + 1 >= argc) {
            die(flag + " needs a value");
        }
        it->second(flag, argv[i + 1]);
    }
    if (o.shape != "narrow" && o.shape != "wide") {
        die("--shape is narrow or wide");
    }
    if (o.mix != "insert" && o.mix != "mixed") {
        die("--mix is insert or mixed");
    }
    if (o.connections == 0 || o.batch == 0) {
        die("--connections and --batch must be positive");
    }
    if (o.rate > 0) {
        o.rows = static_cast<size_t>(o.rate * o.duration);
    }
    const auto& cols = o.shape == "narrow" ? narrow_columns : wide_columns;
    std::vector<batch> all = generate(o, cols);
    if (command == "sql") {
        write_sql(o, cols, all);
        return 0;
    }
    if (command == "send") {
        if (o.url.empty()) {
            die("send needs --url");
        }
        return send(o, cols, all);
    }
    die("unknown subcommand " + command);
}
