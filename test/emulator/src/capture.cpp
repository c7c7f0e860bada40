#include "molt/emulator/capture.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <climits>
#include <iostream>

#include <fmt/format.h>

#include "molt/common/time_format.hpp"
#include "molt/emulator/pg_client.hpp"
#include "molt/proto/json.hpp"

namespace molt::emulator {
namespace {

// wal2json prints numbers and booleans as JSON, everything else as the type's text, except
// bytea, whose hex digits come without PostgreSQL's "\x".
std::optional<std::string> pg_text(const proto::json& v, std::string_view type) {
    switch (v.kind()) {
    case proto::json::type::null: return std::nullopt;
    case proto::json::type::boolean: return std::string(v.as_bool() ? "t" : "f");
    case proto::json::type::string: return type == "bytea" ? "\\x" + v.text() : v.text();
    default: return v.text();
    }
}

result<std::vector<column_value>> columns_of(const proto::json* list) {
    std::vector<column_value> out;
    if (list == nullptr) {
        return out;
    }
    for (const proto::json& c : list->items()) {
        const proto::json* name = c.find("name");
        const proto::json* type = c.find("type");
        const proto::json* value = c.find("value");
        if (name == nullptr || type == nullptr || value == nullptr) {
            return error{errc::parse_error, "wal2json column without name, type or value"};
        }
        out.push_back({name->text(), type->text(), pg_text(*value, type->text())});
    }
    return out;
}

// "2026-11-26 18:56:03.350861+00" (the session runs in UTC).
result<int64_t> commit_time(std::string text) {
    const size_t sign = text.find_last_of("+-");
    if (sign != std::string::npos && sign + 3 == text.size()) {
        text += ":00";
    }
    return parse_rfc3339(text);
}

std::atomic<int> slot_counter{0};

}  // namespace

result<void> use_changefeed_text_forms(pg_client& session) {
    for (const char* set :
         {"SET TimeZone = 'UTC'", "SET DateStyle = 'ISO'", "SET IntervalStyle = 'postgres'",
          "SET extra_float_digits = 1", "SET bytea_output = 'hex'"}) {
        if (auto r = session.exec(set); !r) {
            return r;
        }
    }
    return ok();
}

int64_t wall_clock_nanos() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

hlc hlc_clock::now() {
    return at_least(wall_clock_nanos());
}

hlc hlc_clock::at_least(int64_t wall_nanos) {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (wall_nanos > last_.wall()) {
        last_ = hlc(wall_nanos, 0);
    } else {
        last_ = last_.next();
    }
    return last_;
}

result<std::optional<source_txn>> wal2json_reader::add(std::string_view text) {
    auto parsed = proto::json::parse(text);
    if (!parsed) {
        return error{errc::parse_error, "wal2json: " + parsed.error().message()};
    }
    const proto::json& a = *parsed;
    const proto::json* action = a.find("action");
    if (action == nullptr || action->text().size() != 1) {
        return error{errc::parse_error, "wal2json: an action without \"action\""};
    }
    const char kind = action->text()[0];
    switch (kind) {
    case 'B': {
        open_ = source_txn{};
        if (const proto::json* xid = a.find("xid")) {
            std::from_chars(xid->text().data(), xid->text().data() + xid->text().size(),
                            open_->xid);
        }
        return std::optional<source_txn>();
    }
    case 'I':
    case 'U':
    case 'D':
    case 'T': {
        if (!open_) {
            return error{errc::parse_error, "wal2json: a row change outside a transaction"};
        }
        const proto::json* schema = a.find("schema");
        const proto::json* table = a.find("table");
        if (schema == nullptr || table == nullptr) {
            return error{errc::parse_error, "wal2json: a row change without schema or table"};
        }
        row_change rc;
        rc.schema = schema->text();
        rc.table = table->text();
        rc.op = kind;
        auto columns = columns_of(a.find("columns"));
        auto identity = columns_of(a.find("identity"));
        if (!columns) {
            return std::move(columns).error();
        }
        if (!identity) {
            return std::move(identity).error();
        }
        rc.columns = std::move(columns).value();
        rc.identity = std::move(identity).value();
        if (kind == 'U' && rc.identity.size() > rc.columns.size()) {
            // wal2json leaves a TOASTed value the UPDATE did not change out of the new row;
            // the old row (REPLICA IDENTITY FULL) has it, and CockroachDB sends every column.
            // (With only the key as identity, a table updated before a feed made it FULL, the
            // value is not there to take: not emulated.)
            std::vector<column_value> whole;
            whole.reserve(rc.identity.size());
            std::vector<bool> taken(rc.columns.size(), false);
            for (const column_value& old_value : rc.identity) {
                const auto now =
                    std::find_if(rc.columns.begin(), rc.columns.end(),
                                 [&](const column_value& c) { return c.name == old_value.name; });
                if (now == rc.columns.end()) {
                    whole.push_back(old_value);
                } else {
                    taken[static_cast<size_t>(now - rc.columns.begin())] = true;
                    whole.push_back(std::move(*now));
                }
            }
            for (size_t i = 0; i < rc.columns.size(); ++i) {
                if (!taken[i]) {
                    whole.push_back(std::move(rc.columns[i]));  // not in the old row
                }
            }
            rc.columns = std::move(whole);
        }
        open_->changes.push_back(std::move(rc));
        return std::optional<source_txn>();
    }
    case 'C': {
        if (!open_) {
            return error{errc::parse_error, "wal2json: a commit outside a transaction"};
        }
        const proto::json* ts = a.find("timestamp");
        auto nanos = ts == nullptr ? result<int64_t>(wall_clock_nanos()) : commit_time(ts->text());
        if (!nanos) {
            return error{errc::parse_error,
                         "wal2json commit timestamp: " + nanos.error().message()};
        }
        commit_nanos_ = *nanos;
        std::optional<source_txn> done = std::move(open_);
        open_.reset();
        if (done->changes.empty()) {
            return std::optional<source_txn>();
        }
        return done;
    }
    default: return std::optional<source_txn>();  // 'M' (messages), and anything newer
    }
}

struct capture::session {
    pg_client client;
    wal2json_reader reader;
};

capture::capture(std::string conninfo, hlc_clock& clock, std::chrono::nanoseconds gc_ttl,
                 std::chrono::milliseconds poll)
    : conninfo_(std::move(conninfo)), clock_(clock), gc_ttl_(gc_ttl), poll_(poll) {}

capture::~capture() {
    stop();
}

result<void> capture::start() {
    auto client = pg_client::connect(conninfo_);
    if (!client) {
        return std::move(client).error();
    }
    // Values are decoded in this session. The marker that advances the frontier is committed
    // synchronously, which flushes the WAL of every transaction committed before it.
    if (auto r = use_changefeed_text_forms(*client); !r) {
        return r.error();
    }
    if (auto r = client->exec("SET synchronous_commit = on"); !r) {
        return r.error();
    }
    slot_ = fmt::format("crdb_emulator_{}_{}", ::getpid(), slot_counter++);
    auto slot =
        client->query("SELECT pg_create_logical_replication_slot($1, 'wal2json', true)", {slot_});
    if (!slot) {
        return error{errc::unavailable,
                     fmt::format("cannot create the logical replication slot (the backend needs "
                                 "wal_level=logical, wal2json and a role with REPLICATION): {}",
                                 slot.error().message())};
    }
    session_ = std::make_unique<session>(session{std::move(client).value(), {}});
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        gc_threshold_ = clock_.now();
        frontier_ = gc_threshold_;
    }
    thread_ = std::thread([this] { run(); });
    return ok();
}

void capture::stop() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) {
        thread_.join();
    }
    session_.reset();  // the temporary slot goes with the session
}

void capture::run() {
    for (;;) {
        bool more = false;
        auto polled = poll_once(more);
        std::unique_lock<std::mutex> lock(mutex_);
        if (!polled) {
            failure_ = "change capture stopped: " + polled.error().message();
            changed_.notify_all();
            return;
        }
        if (!more && changed_.wait_for(lock, poll_, [&] { return stopping_; })) {
            return;
        }
        if (stopping_) {
            return;
        }
    }
}

result<void> capture::poll_once(bool& more) {
    constexpr size_t limit = 20000;
    // The watched tables' columns, read before the marker: every transaction committed before a
    // change seen here is decoded by this poll (unless more remain), so the change goes after them.
    auto columns = read_columns();
    if (!columns) {
        return columns.error();
    }
    const hlc marker_time = clock_.now();
    if (auto r = session_->client.exec(
            "SELECT pg_logical_emit_message(true, 'crdb_emulator', 'frontier')");
        !r) {
        return r;
    }
    auto rows = session_->client.query(
        "SELECT data FROM pg_logical_slot_get_changes($1, NULL, $2, 'format-version', '2', "
        "'include-xids', '1', 'include-timestamp', '1', 'include-pk', '0')",
        {slot_, std::to_string(limit)});
    if (!rows) {
        return std::move(rows).error();
    }
    std::vector<std::shared_ptr<const source_txn>> decoded;
    for (const pg_row& row : rows->rows) {
        if (!row.empty() && row[0]) {
            auto txn = session_->reader.add(*row[0]);
            if (!txn) {
                return std::move(txn).error();
            }
            if (*txn) {
                (*txn)->updated = clock_.at_least(session_->reader.commit_nanos());
                decoded.push_back(std::make_shared<const source_txn>(std::move(**txn)));
            }
        }
    }
    more = rows->rows.size() >= limit;
    if (!more) {
        auto changed = changed_columns(std::move(columns).value());
        if (!changed.empty()) {
            // Above every transaction decoded so far; those decoded later get higher HLCs.
            source_txn t;
            t.updated = clock_.now();
            t.schema_changes = std::move(changed);
            decoded.push_back(std::make_shared<const source_txn>(std::move(t)));
        }
    }
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        history_.insert(history_.end(), decoded.begin(), decoded.end());
        const int64_t horizon = wall_clock_nanos() - gc_ttl_.count();
        std::optional<hlc> oldest_protected;
        for (const auto& [job, at] : protected_) {
            oldest_protected = oldest_protected ? std::min(*oldest_protected, at) : at;
        }
        while (!history_.empty() && history_.front()->updated.wall() < horizon &&
               (!oldest_protected || !(*oldest_protected < history_.front()->updated))) {
            gc_threshold_ = history_.front()->updated;
            history_.pop_front();
            ++collected_;
        }
        if (!more) {
            frontier_ = marker_time;
        }
    }
    changed_.notify_all();
    return ok();
}

void capture::watch_columns(uint32_t oid, std::vector<column_def> known) {
    const std::lock_guard<std::mutex> lock(mutex_);
    watched_.try_emplace(oid, std::move(known));
}

result<std::map<uint32_t, std::vector<column_def>>> capture::read_columns() {
    std::string oids;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [oid, columns] : watched_) {
            oids += (oids.empty() ? "" : ",") + std::to_string(oid);
        }
    }
    std::map<uint32_t, std::vector<column_def>> now;
    if (oids.empty()) {
        return now;
    }
    auto rows = session_->client.query(
        "SELECT attrelid::int8::text, attname::text, format_type(atttypid, atttypmod), "
        "(atthasdef OR attgenerated <> '')::text FROM pg_attribute "
        "WHERE attrelid = ANY(('{' || $1 || '}')::oid[]) AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attrelid, attnum",
        {oids});
    if (!rows) {
        return std::move(rows).error();
    }
    for (const pg_row& r : rows->rows) {
        now[static_cast<uint32_t>(std::stoul(*r[0]))].push_back(
            {*r[1], *r[2], r[3].value_or("false") == "true"});
    }
    return now;
}

std::vector<schema_change> capture::changed_columns(
    std::map<uint32_t, std::vector<column_def>> now) {
    // Names and types: a new default alone changes no row CockroachDB sends.
    auto same = [](const std::vector<column_def>& a, const std::vector<column_def>& b) {
        return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const auto& x, const auto& y) {
            return x.name == y.name && x.type == y.type;
        });
    };
    std::vector<schema_change> out;
    const std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [oid, columns] : now) {
        auto& last = watched_[oid];
        if (!same(last, columns)) {
            out.push_back({oid, last, columns});
        }
        last = std::move(columns);
    }
    return out;
}

std::vector<std::string> capture::column_names(uint32_t oid) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    if (const auto it = watched_.find(oid); it != watched_.end()) {
        for (const column_def& c : it->second) {
            out.push_back(c.name);
        }
    }
    return out;
}

void capture::protect(int64_t job, hlc at) {
    const std::lock_guard<std::mutex> lock(mutex_);
    hlc& p = protected_[job];
    p = std::max(p, at);
}

void capture::release(int64_t job) {
    const std::lock_guard<std::mutex> lock(mutex_);
    protected_.erase(job);
}

hlc capture::gc_threshold() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return gc_threshold_;
}

hlc capture::frontier() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return frontier_;
}

hlc capture::settled_now() {
    const hlc asked = clock_.now();
    {
        std::unique_lock<std::mutex> lock(mutex_);
        if (!changed_.wait_for(lock, std::chrono::seconds(10),
                               [&] { return stopping_ || failure_ || !(frontier_ < asked); })) {
            std::cerr << "crdb-emulator: the change capture has not caught up in 10 s (a "
                         "backlog?): a transaction committed just before this timestamp may "
                         "get a later HLC\n";
        }
    }
    return clock_.now();
}

std::optional<std::string> capture::failure() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
}

capture::news capture::since(size_t from, hlc seen, std::chrono::milliseconds wait) const {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait_for(lock, wait, [&] {
        return stopping_ || failure_ || collected_ + history_.size() > from || seen < frontier_;
    });
    news out;
    out.frontier = frontier_;
    if (from < collected_) {
        out.collected = true;
    } else if (from - collected_ < history_.size()) {
        out.txns.assign(history_.begin() + static_cast<std::ptrdiff_t>(from - collected_),
                        history_.end());
    }
    return out;
}

size_t capture::first_after(hlc h) const {
    const std::lock_guard<std::mutex> lock(mutex_);
    const auto it = std::upper_bound(
        history_.begin(), history_.end(), h,
        [](const hlc& t, const std::shared_ptr<const source_txn>& x) { return t < x->updated; });
    return collected_ + static_cast<size_t>(it - history_.begin());
}

}  // namespace molt::emulator
