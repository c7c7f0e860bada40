#include "molt/replicator/script/userscript.hpp"

// The only translation unit that includes SpiderMonkey. One thread owns the JSContext; every
// call is a job queued to it. A watchdog thread interrupts a call that outlives its time limit.
// The JavaScript half (loader, API, row loops) is runtime.js, compiled in as runtime_js_text.

#include <fcntl.h>
#include <jsapi.h>
#include <jsfriendapi.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <js/CompilationAndEvaluation.h>
#include <js/Conversions.h>
#include <js/Initialization.h>
#include <js/Promise.h>
#include <js/PropertyAndElement.h>
#include <js/SourceText.h>
#include <rapidjson/document.h>
#if defined(__SANITIZE_ADDRESS__)
// sanitizer/allocator_interface.h, not installed with GCC here.
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

#include "molt/common/base64.hpp"
#include "molt/common/ident.hpp"
#include "molt/common/json_text.hpp"
#include "molt/common/log.hpp"
#include "molt/proto/decoder.hpp"
#include "molt/proto/encoder.hpp"
#include "molt/replicator/target/apply_plan.hpp"

extern "C" char** environ;

namespace molt::replicator::script {

extern const char* const runtime_js_text;
extern const char* const api_declarations_text;
extern const char* const example_script_text;

std::string_view api_declarations() noexcept {
    return api_declarations_text;
}

std::string_view example_script() noexcept {
    return example_script_text;
}

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

namespace {

// esbuild --------------------------------------------------------------------------------------

std::optional<fs::path> find_on_path(std::string_view program) {
    const char* path = std::getenv("PATH");
    std::string_view rest = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    while (!rest.empty()) {
        const size_t colon = std::min(rest.find(':'), rest.size());
        const fs::path candidate = fs::path(rest.substr(0, colon)) / program;
        rest.remove_prefix(std::min(colon + 1, rest.size()));
        if (::access(candidate.c_str(), X_OK) == 0 && fs::is_regular_file(candidate)) {
            return candidate;
        }
    }
    return std::nullopt;
}

std::string read_fd(int fd) {
    std::string out;
    ::lseek(fd, 0, SEEK_SET);
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            return out;
        }
        out.append(buf, static_cast<size_t>(n));
    }
}

// esbuild's messages, "✘ [ERROR] text" followed by an indented "file:line:column:" line, as
// "file:line:column: text" lines.
std::string esbuild_errors(std::string_view err) {
    std::string out;
    std::string pending;
    auto add = [&out](std::string_view line) {
        if (!out.empty()) {
            out += '\n';
        }
        out.append(line);
    };
    size_t pos = 0;
    while (pos < err.size()) {
        const size_t nl = std::min(err.find('\n', pos), err.size());
        std::string_view line = err.substr(pos, nl - pos);
        pos = nl + 1;
        if (const size_t at = line.find("[ERROR] "); at != std::string_view::npos) {
            if (!pending.empty()) {
                add(pending);
            }
            pending = std::string(line.substr(at + 8));
            continue;
        }
        const size_t first = line.find_first_not_of(' ');
        if (pending.empty() || first == std::string_view::npos || first == 0 ||
            line.back() != ':' || line.find(' ', first) != std::string_view::npos) {
            continue;
        }
        // file:line:column with esbuild's column counted from 0: from 1, as elsewhere.
        const std::string_view where = line.substr(first, line.size() - first - 1);
        const size_t colon = where.rfind(':');
        uint64_t column = 0;
        if (colon != std::string_view::npos) {
            const std::string_view digits = where.substr(colon + 1);
            const auto [end, ec] =
                std::from_chars(digits.data(), digits.data() + digits.size(), column);
            if (ec == std::errc() && end == digits.data() + digits.size()) {
                add(fmt::format("{}:{}: {}", where.substr(0, colon), column + 1, pending));
                pending.clear();
                continue;
            }
        }
        add(fmt::format("{}: {}", where, pending));
        pending.clear();
    }
    if (!pending.empty()) {
        add(pending);
    }
    return out.empty() ? std::string(err) : out;
}

struct transpiled {
    std::string code;
    std::string map;  ///< the source map's JSON, or empty
};

// Runs esbuild on `file` (stdin), its messages naming `display`. No type checking: types are
// stripped, as the original does.
// The longest esbuild may take for one module (or the call time limit, when longer).
constexpr std::chrono::milliseconds transpile_timeout{60'000};

result<transpiled> transpile(const fs::path& esbuild, const fs::path& file,
                             const std::string& display, std::string_view loader,
                             std::chrono::milliseconds timeout) {
    const int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return error{errc::not_found, fmt::format("{}: cannot be read", display)};
    }
    const int out = ::memfd_create("esbuild-out", MFD_CLOEXEC);
    const int err = ::memfd_create("esbuild-err", MFD_CLOEXEC);
    auto close_all = [&] {
        for (int fd : {in, out, err}) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    };
    if (out < 0 || err < 0) {
        close_all();
        return error{errc::internal, "cannot create a buffer for esbuild's output"};
    }
    std::vector<std::string> args = {esbuild.string(),         fmt::format("--loader={}", loader),
                                     "--format=cjs",           "--target=es2022",
                                     "--charset=utf8",         "--sourcemap=inline",
                                     "--log-level=error",      "--color=false",
                                     "--sourcefile=" + display};
    std::vector<char*> argv;
    for (std::string& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in, 0);
    posix_spawn_file_actions_adddup2(&actions, out, 1);
    posix_spawn_file_actions_adddup2(&actions, err, 2);
    // The replicator blocks its stop signals in every thread; esbuild gets the defaults back.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none;
    sigset_t defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGQUIT}) {
        sigaddset(&defaults, sig);
    }
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = 0;
    const int spawned =
        posix_spawn(&pid, esbuild.c_str(), &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (spawned != 0) {
        close_all();
        return error{errc::unavailable,
                     fmt::format("cannot run {}: {}", esbuild.string(), std::strerror(spawned))};
    }
    // Bounded like the script's own calls: a hung esbuild is killed.
    int status = 0;
    const auto give_up = clock_type::now() + timeout;
    bool killed = false;
    for (;;) {
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid || (done < 0 && errno != EINTR)) {
            break;
        }
        if (!killed && clock_type::now() >= give_up) {
            ::kill(pid, SIGKILL);
            killed = true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    if (killed) {
        close_all();
        return error{errc::unavailable,
                     fmt::format("{}: esbuild ran longer than {} ms (the longer of 60 s and "
                                 "--userscriptTimeout)",
                                 display, timeout.count())};
    }
    transpiled t{read_fd(out), {}};
    const std::string messages = read_fd(err);
    close_all();
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return error{errc::parse_error, esbuild_errors(messages)};
    }
    constexpr std::string_view marker = "//# sourceMappingURL=data:application/json;base64,";
    if (const size_t at = t.code.rfind(marker); at != std::string::npos) {
        std::string_view b64 = std::string_view(t.code).substr(at + marker.size());
        while (!b64.empty() && (b64.back() == '\n' || b64.back() == '\r')) {
            b64.remove_suffix(1);
        }
        if (auto decoded = base64_decode(b64)) {
            t.map = std::move(decoded).value();
        }
        t.code.resize(at);
    }
    return t;
}

std::string_view loader_of(const fs::path& file) {
    const std::string ext = file.extension().string();
    if (ext == ".ts" || ext == ".mts" || ext == ".cts") {
        return "ts";
    }
    if (ext == ".tsx") {
        return "tsx";
    }
    if (ext == ".jsx") {
        return "jsx";
    }
    if (ext == ".json") {
        return "json";
    }
    if (ext == ".js" || ext == ".mjs" || ext == ".cjs" || ext.empty()) {
        return "js";
    }
    return "text";  // other files import as their text, as the original allows (.txt)
}

// Whether `p` is `root` or inside it (both canonical).
bool inside(const fs::path& root, const fs::path& p) {
    auto r = root.begin();
    auto q = p.begin();
    for (; r != root.end(); ++r, ++q) {
        if (q == p.end() || *r != *q) {
            return false;
        }
    }
    return true;
}

JSClass global_class = {
    "Global", JSCLASS_GLOBAL_FLAGS, &JS::DefaultGlobalClassOps, nullptr, nullptr, nullptr};

std::once_flag js_init_once;
bool js_initialised = false;
std::atomic<int> live_engines{0};

// SpiderMonkey's helper threads hold its locks until JS_ShutDown; without it, its static
// mutexes are destroyed under them at exit. Only possible once every context is gone.
void shut_down_js() {
    if (live_engines.load() == 0) {
        JS_ShutDown();
    }
}

// The process's memory: its resident set (/proc/self/statm; a few microseconds, where glibc's
// mallinfo2() walks every arena), or what the sanitizers' allocator holds in their builds.
size_t allocated_bytes() {
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    static const long page = ::sysconf(_SC_PAGESIZE);
    const int fd = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char buf[128];
    const ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    // "size resident shared …", in pages.
    const char* resident = std::strchr(buf, ' ');
    return resident == nullptr
               ? 0
               : std::strtoull(resident + 1, nullptr, 10) * static_cast<size_t>(page);
#endif
}

// Canonical JSON `text` with every number outside strings written as a string: an array column's
// elements, for the script (numbers are strings, exact); its elements bind as text either way.
void append_numbers_as_strings(std::string& out, std::string_view text) {
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            out += c;
            if (c == '\\' && i + 1 < text.size()) {
                out += text[++i];
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
            out += c;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            const size_t end = text.find_first_of(",]}", i);
            const size_t n = (end == std::string_view::npos ? text.size() : end) - i;
            out += '"';
            out.append(text.substr(i, n));
            out += '"';
            i += n - 1;
        } else {
            out += c;
        }
    }
}

// A row for the script. A number in a JSON column of `t` (a JSONB document that is a bare
// number) stays a number, so that a row the script passes on keeps its document; the numbers
// in an array column's elements are strings, as every other number. The exact text of each JSON
// value (documents, arrays, bare JSON numbers) goes to `originals` ("column":"text",…), and of
// the numbers the extras column of `t` takes to `numbers`: a value the script leaves as it came
// is written back as that text.
void append_row(std::string& out, std::span<const proto::column> columns, const table_info* t,
                std::string* originals, std::string* numbers) {
    out += '{';
    for (size_t i = 0; i < columns.size(); ++i) {
        if (i > 0) {
            out += ',';
        }
        append_json_string(out, columns[i].name);
        out += ':';
        const proto::value& v = columns[i].val;
        const column_info* c = t != nullptr ? t->find_column(columns[i].name) : nullptr;
        const bool json_number = v.kind == proto::value_kind::number && c != nullptr && !c->array &&
                                 (c->type_name == "json" || c->type_name == "jsonb");
        if (v.kind == proto::value_kind::json && c != nullptr && c->array) {
            append_numbers_as_strings(out, v.text);
        } else {
            proto::append_script_value(out, v, json_number);
        }
        // A number for a table's extras column (replicator@v1 configureTable): kept a number.
        const bool extra_number =
            v.kind == proto::value_kind::number && c == nullptr && t != nullptr && t->extras >= 0;
        std::string* text = extra_number ? numbers : originals;
        if (text != nullptr && (json_number || extra_number || v.kind == proto::value_kind::json)) {
            if (!text->empty()) {
                *text += ',';
            }
            append_json_string(*text, columns[i].name);
            *text += ':';
            append_json_string(*text, v.text);
        }
    }
    out += '}';
}

// The table a topic names, as the source spells it: t, t.family (split_column_families),
// db.schema.t (full_table_name) or db.schema.t.family; the part the target's table matches when
// it has one.
std::string_view source_table(const schema_snapshot& target, std::string_view topic) {
    std::vector<std::string_view> parts;
    for (size_t pos = 0;;) {
        const size_t dot = topic.find('.', pos);
        parts.push_back(topic.substr(pos, dot == std::string_view::npos ? dot : dot - pos));
        if (dot == std::string_view::npos) {
            break;
        }
        pos = dot + 1;
    }
    if (const table_info* t = resolve_topic(target, topic); t != nullptr) {
        for (std::string_view part : parts) {
            if (ident_equal(part, t->name)) {
                return part;
            }
        }
    }
    switch (parts.size()) {
    case 1: return topic;
    case 2: return parts[0];
    case 4: return parts[2];
    default: return parts.back();
    }
}

// A batch for the script: {"tables":[{"topic","table","rows":[{a, o?, n?, k, kt, b?, u, m?}]}]}
// (see runtime.js, "Rows").
std::string batch_input(const schema_snapshot& target, const proto::batch& rows) {
    std::string input = "{\"tables\":[";
    std::string originals;
    std::string numbers;
    for (size_t g = 0; g < rows.tables().size(); ++g) {
        const proto::table_mutations& group = rows.tables()[g];
        input += g == 0 ? "{\"topic\":" : ",{\"topic\":";
        append_json_string(input, group.topic);
        input += ",\"table\":";
        append_json_string(input, source_table(target, group.topic));
        const table_info* own = resolve_topic(target, group.topic);
        input += ",\"rows\":[";
        for (size_t i = 0; i < group.mutations.size(); ++i) {
            const proto::mutation& m = group.mutations[i];
            input += i == 0 ? "{\"a\":" : ",{\"a\":";
            originals.clear();
            numbers.clear();
            if (m.deleted) {
                input += "null";
            } else {
                append_row(input, m.after, own, &originals, &numbers);
            }
            if (!originals.empty()) {
                input += ",\"o\":{" + originals + '}';
            }
            if (!numbers.empty()) {
                input += ",\"n\":{" + numbers + '}';
            }
            input += ",\"k\":[";
            for (size_t k = 0; k < m.key_values.size(); ++k) {
                if (k > 0) {
                    input += ',';
                }
                proto::append_script_value(input, m.key_values[k]);
            }
            input += "],\"kt\":";
            append_json_string(input, m.key);
            if (m.has_before) {
                input += ",\"b\":";
                if (m.before.empty()) {
                    input += "null";
                } else {
                    append_row(input, m.before, own, nullptr, nullptr);
                }
            }
            input += ",\"u\":\"" + m.updated.to_string() + '"';
            if (m.mvcc_timestamp) {
                input += ",\"m\":\"" + m.mvcc_timestamp->to_string() + '"';
            }
            input += '}';
        }
        input += "]}";
    }
    input += "]}";
    return input;
}

// Each table of the target: its name and primary key, by name.
std::string catalog_json(const schema_snapshot& target) {
    std::string catalog = "{";
    for (const table_info& t : target.tables) {
        if (catalog.size() > 1) {
            catalog += ',';
        }
        append_json_string(catalog, t.name);
        catalog += ":[";
        append_json_string(catalog, t.name);
        for (size_t k = 0; k < t.pk_count; ++k) {
            catalog += ',';
            append_json_string(catalog, t.columns[k].name);
        }
        catalog += ']';
    }
    catalog += '}';
    return catalog;
}

// For getTX() in onWrite: each table of `rows`, by name: {schema, table (quoted for `d`),
// columns: [{name, primary, type, ignored, defaultExpr?}]}, primary key first.
std::string write_info(const schema_snapshot& target, const proto::batch& rows, dialect d) {
    std::string info = "{";
    std::set<const table_info*> seen;
    for (const proto::table_mutations& group : rows.tables()) {
        const table_info* t = resolve_topic(target, group.topic);
        if (t == nullptr || !seen.insert(t).second) {
            continue;
        }
        if (info.size() > 1) {
            info += ',';
        }
        append_json_string(info, t->name);
        info += ":{\"schema\":";
        append_json_string(info, target.schema.quoted(d));
        info += ",\"table\":";
        append_json_string(info, t->qualified.quoted(d));
        info += ",\"columns\":[";
        for (size_t i = 0; i < t->columns.size(); ++i) {
            const column_info& c = t->columns[i];
            info += i == 0 ? "{\"name\":" : ",{\"name\":";
            append_json_string(info, c.name);
            info += i < t->pk_count ? ",\"primary\":true" : ",\"primary\":false";
            info += ",\"type\":";
            append_json_string(info, c.sql_type);
            info += c.generated ? ",\"ignored\":true" : ",\"ignored\":false";
            if (c.default_expr) {
                info += ",\"defaultExpr\":";
                append_json_string(info, *c.default_expr);
            }
            info += '}';
        }
        info += "]}";
    }
    info += '}';
    return info;
}

}  // namespace

// The engine --------------------------------------------------------------------------------------

namespace {

// Runs a promise job (SpiderMonkey's internal job queue asks the embedding to, with the realm
// entered); an exception a job ends with is kept for the call that queued it to report.
// SpiderMonkey's interface has no virtual destructor; job_runner is only ever deleted as itself.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class job_runner final : public js::ScriptEnvironmentPreparer {
public:
    job_runner(JSContext* cx, std::string& failure) : cx_(cx), failure_(failure) {}
    void invoke(JS::HandleObject global, Closure& closure) override;

private:
    JSContext* cx_;
    std::string& failure_;
};
#pragma GCC diagnostic pop

}  // namespace

struct userscript::engine {
    std::string name;  ///< as given
    fs::path root;     ///< the script's folder, canonical
    std::string main;  ///< the main module, relative to root
    fs::path esbuild;
    script::limits limits;

    // Configuration, fixed once loaded.
    std::set<std::string> schemas;  ///< folded
    struct table_config {
        std::optional<std::string> schema;  ///< folded; none: any schema
        std::string name;                   ///< folded
        bool writes = false;                ///< has onWrite (apply)
        /// replicator@v1 configureTable's rowLimit, extras, exprs, cas and deadlines (`call`
        /// names the call).
        struct writer_options {
            std::string call;
            size_t row_limit = 0;
            std::string extras;
            std::vector<std::pair<std::string, std::string>> exprs;
            std::vector<std::string> cas;
            std::vector<std::pair<std::string, int64_t>> deadlines;  ///< microseconds
            bool merge = false;  ///< merge (a function or standardMerge)
        };
        std::optional<writer_options> writer;
    };
    std::vector<table_config> tables;  ///< in the order configured (the last one wins)
    /// The configuration of `table` in `schema` (both folded) that wins: the last naming it.
    [[nodiscard]] const table_config* table_of(const std::string& schema,
                                               const std::string& table) const {
        const auto it = std::find_if(tables.rbegin(), tables.rend(), [&](const table_config& c) {
            return c.name == table && (!c.schema || *c.schema == schema);
        });
        return it == tables.rend() ? nullptr : &*it;
    }
    /// setOptions (replicator@v1): flag names and values, in the order set.
    std::vector<std::pair<std::string, std::string>> set_options;
    std::atomic<int64_t> next_write{1};  ///< conversation ids (userscript::write)

    // The JS thread and its queue.
    std::thread thread;
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::function<void()>> jobs;
    bool stopping = false;

    // The watchdog: deadline_ns is the running call's deadline (0: none).
    std::thread watchdog;
    std::mutex watch_mutex;
    std::condition_variable watch_wake;
    std::atomic<int64_t> deadline_ns{0};
    /// Why the running call was interrupted: the time limit or the heap limit.
    enum class stop_reason { none, time, heap };
    std::atomic<stop_reason> stopped{stop_reason::none};
    /// The process's allocated bytes when the call started: SpiderMonkey keeps array elements
    /// and string characters in malloc()ed memory, which its own heap limit (JSGC_MAX_BYTES)
    /// does not count, so the watchdog also bounds what the process allocated meanwhile.
    std::atomic<size_t> allocated_at_start{0};
    bool watch_stopping = false;

    // Metrics (all null without a registry).
    metrics::family<metrics::counter>* invocations = nullptr;
    metrics::family<metrics::counter>* filtered = nullptr;
    metrics::family<metrics::counter>* processed = nullptr;
    metrics::family<metrics::counter>* errors = nullptr;
    metrics::family<metrics::histogram>* exec_time = nullptr;
    metrics::histogram* entry_wait = nullptr;

    // Promise jobs of the running call: an exception in one, rejections nobody handled.
    std::string job_failure;
    int unhandled_rejections = 0;
    std::string rejection;  ///< the reason of the last unhandled one
    std::unique_ptr<job_runner> preparer;

    JSContext* cx = nullptr;
    std::unique_ptr<JS::PersistentRootedObject> global;
    std::unique_ptr<JS::PersistentRootedObject> api;  ///< what runtime.js returned

    ~engine() {
        {
            const std::lock_guard<std::mutex> lock(watch_mutex);
            watch_stopping = true;
        }
        watch_wake.notify_all();
        if (watchdog.joinable()) {
            watchdog.join();
        }
        if (thread.joinable()) {
            post([this] {
                api.reset();
                global.reset();
                if (cx != nullptr) {
                    JS_DestroyContext(cx);
                    cx = nullptr;
                    --live_engines;
                }
            });
            {
                const std::lock_guard<std::mutex> lock(mutex);
                stopping = true;
            }
            wake.notify_all();
            thread.join();
        }
    }

    void post(std::function<void()> job) {
        {
            const std::lock_guard<std::mutex> lock(mutex);
            jobs.push_back(std::move(job));
        }
        wake.notify_one();
    }

    /// Runs `f` on the JS thread and returns its result.
    template <typename F>
    auto call(F&& f) -> decltype(f()) {
        auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::forward<F>(f));
        auto done = task->get_future();
        const auto queued = clock_type::now();
        post([task, queued, this] {
            if (entry_wait != nullptr) {
                entry_wait->observe(metrics::seconds_since(queued));
            }
            (*task)();
        });
        return done.get();
    }

    /// Adds a run's handler counts ("[[table, function, calls, filtered, passed], …]").
    void add_counts(const std::string& schema, std::string_view json) {
        if (invocations == nullptr || json.empty()) {
            return;
        }
        rapidjson::Document d;
        d.Parse(json.data(), json.size());
        if (d.HasParseError() || !d.IsArray()) {
            return;
        }
        for (const auto& c : d.GetArray()) {
            const std::vector<std::string> labels = {schema, c[0].GetString(), c[1].GetString()};
            invocations->with(labels).add(c[2].GetUint64());
            filtered->with(labels).add(c[3].GetUint64());
            processed->with(labels).add(c[4].GetUint64());
        }
    }

    void loop() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock<std::mutex> lock(mutex);
                wake.wait(lock, [&] { return stopping || !jobs.empty(); });
                if (jobs.empty()) {
                    return;
                }
                job = std::move(jobs.front());
                jobs.pop_front();
            }
            job();
        }
    }

    void watch() {
        std::unique_lock<std::mutex> lock(watch_mutex);
        while (!watch_stopping) {
            const int64_t d = deadline_ns.load();
            if (d == 0 || stopped.load() != stop_reason::none) {
                watch_wake.wait_for(lock, std::chrono::milliseconds(100));
                continue;
            }
            const auto now = clock_type::now();
            stop_reason why = stop_reason::none;
            if (now >= clock_type::time_point(clock_type::duration(d))) {
                why = stop_reason::time;
            } else if (allocated_bytes() > allocated_at_start.load() + limits.heap_bytes) {
                why = stop_reason::heap;
            }
            // Not over a reason the out-of-memory callback set meanwhile.
            auto expected = stop_reason::none;
            if (why != stop_reason::none && stopped.compare_exchange_strong(expected, why)) {
                JS_RequestInterruptCallback(cx);  // cx was set before the deadline was
                continue;
            }
            watch_wake.wait_until(lock, std::min(clock_type::time_point(clock_type::duration(d)),
                                                 now + std::chrono::milliseconds(20)));
        }
    }

    /// Starts a call's limits (its time limit restarts at host.tick() before each handler).
    /// Under the watchdog's lock, so that it never stops a call for the one before.
    void start_clock() {
        {
            const std::lock_guard<std::mutex> lock(watch_mutex);
            stopped = stop_reason::none;
            allocated_at_start = allocated_bytes();
            baseline_at = clock_type::now();
            deadline_ns = (baseline_at + limits.call_timeout).time_since_epoch().count();
        }
        watch_wake.notify_all();
    }
    void stop_clock() {
        const std::lock_guard<std::mutex> lock(watch_mutex);
        deadline_ns = 0;
    }
    /// host.tick(): a handler starts. Its time limit starts now; what the process allocated is
    /// measured from now, at most every 10 ms (the measure costs more than a handler call).
    void tick() {
        const auto now = clock_type::now();
        deadline_ns.store((now + limits.call_timeout).time_since_epoch().count(),
                          std::memory_order_relaxed);
        if (now - baseline_at >= std::chrono::milliseconds(10)) {
            baseline_at = now;
            allocated_at_start = allocated_bytes();
        }
    }
    clock_type::time_point baseline_at;  ///< JS thread only

    // On the JS thread ----------------------------------------------------------------------

    result<void> start();
    /// The pending exception's text (an Error's message), cleared; or the reason a call ended
    /// without one (time limit, heap limit).
    error take_failure(std::string_view context);
    /// Empties the promise job queue after a failed call.
    void discard_jobs();
    result<std::string> call_api(const char* function, JS::HandleValueArray args,
                                 std::string_view context);
};

namespace {

userscript::engine& engine_of(JSContext* cx) {
    return *static_cast<userscript::engine*>(JS_GetContextPrivate(cx));
}

std::string to_utf8(JSContext* cx, JS::HandleValue v) {
    JS::RootedString s(cx, JS::ToString(cx, v));
    if (!s) {
        JS_ClearPendingException(cx);
        return "(a value that cannot be shown)";
    }
    JS::UniqueChars chars = JS_EncodeStringToUTF8(cx, s);
    return chars ? std::string(chars.get()) : std::string();
}

// An exception's text: an Error's message, or the value as a string.
std::string describe_exception(JSContext* cx, JS::HandleValue exn) {
    if (exn.isObject()) {
        JS::RootedObject o(cx, &exn.toObject());
        JS::RootedValue message(cx);
        if (JS_GetProperty(cx, o, "message", &message) && message.isString()) {
            return to_utf8(cx, message);
        }
        JS_ClearPendingException(cx);
    }
    return to_utf8(cx, exn);
}

bool interrupt(JSContext* cx) {
    if (engine_of(cx).stopped.load() == userscript::engine::stop_reason::none) {
        return true;
    }
    // Asked again at once: SpiderMonkey's job queue goes on with the next job after one is
    // stopped, and that one is stopped at its first check too.
    JS_RequestInterruptCallback(cx);
    return false;
}

// A promise rejected with no handler (Unhandled), or given one later (Handled).
void track_rejection(JSContext* cx, bool /*muted*/, JS::HandleObject promise,
                     JS::PromiseRejectionHandlingState state, void* data) {
    auto* e = static_cast<userscript::engine*>(data);
    if (state == JS::PromiseRejectionHandlingState::Handled) {
        e->unhandled_rejections -= 1;
        return;
    }
    e->unhandled_rejections += 1;
    JS::RootedValue reason(cx, JS::GetPromiseResult(promise));
    JS::RootedValue message(cx);
    if (reason.isObject()) {
        JS::RootedObject o(cx, &reason.toObject());
        if (JS_GetProperty(cx, o, "message", &message) && message.isString()) {
            e->rejection = to_utf8(cx, message);
            return;
        }
        JS_ClearPendingException(cx);
    }
    e->rejection = to_utf8(cx, reason);
}

// SpiderMonkey ran out of its heap: a catchable exception for the script, so the call is also
// stopped (uncatchably) at its next interrupt check.
void out_of_memory(JSContext* cx, void* data) {
    auto* e = static_cast<userscript::engine*>(data);
    auto expected = userscript::engine::stop_reason::none;
    if (e->stopped.compare_exchange_strong(expected, userscript::engine::stop_reason::heap)) {
        JS_RequestInterruptCallback(cx);
    }
}

// host.compile(path) -> {fn, map}
bool host_compile(JSContext* cx, unsigned argc, JS::Value* vp) {
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    auto& e = engine_of(cx);
    const std::string rel = to_utf8(cx, args.get(0));
    std::error_code ec;
    const fs::path wanted = e.root / rel;
    const fs::path file = fs::weakly_canonical(wanted, ec);
    if (ec || !inside(e.root, file)) {
        JS_ReportErrorUTF8(cx, "cannot import %s: it is outside the script's folder", rel.c_str());
        return false;
    }
    if (!fs::is_regular_file(file, ec)) {
        JS_ReportErrorUTF8(cx, "cannot import %s: no such file in the script's folder",
                           rel.c_str());
        return false;
    }
    // esbuild's run is not the script's time: on a loaded machine starting it can take longer
    // than a call's limit. It has a bound of its own; each module's code then has the whole
    // time limit.
    e.stop_clock();
    auto t = transpile(e.esbuild, file, rel, loader_of(file),
                       std::max(e.limits.call_timeout, transpile_timeout));
    e.tick();
    if (!t) {
        JS_ReportErrorUTF8(cx, "%s", t.error().message().c_str());
        return false;
    }
    JS::CompileOptions options(cx);
    // SpiderMonkey numbers the function's own header line as the given line: the body (the
    // module's first line) is then line 1, as in the source map.
    options.setFileAndLine(rel.c_str(), 0);
    JS::SourceText<mozilla::Utf8Unit> source;
    if (!source.init(cx, t->code.data(), t->code.size(), JS::SourceOwnership::Borrowed)) {
        return false;
    }
    static const char* const names[] = {"exports", "require", "module"};
    JS::RootedVector<JSObject*> env(cx);
    JS::RootedFunction fn(cx, JS::CompileFunction(cx, env, options, "module", 3, names, source));
    if (!fn) {
        return false;
    }
    JS::RootedObject out(cx, JS_NewPlainObject(cx));
    JS::RootedValue fn_value(cx, JS::ObjectValue(*JS_GetFunctionObject(fn)));
    JS::RootedString map(cx,
                         JS_NewStringCopyUTF8N(cx, JS::UTF8Chars(t->map.data(), t->map.size())));
    if (!out || !map || !JS_DefineProperty(cx, out, "fn", fn_value, JSPROP_ENUMERATE) ||
        !JS_DefineProperty(cx, out, "map", map, JSPROP_ENUMERATE)) {
        return false;
    }
    args.rval().setObject(*out);
    return true;
}

// host.log(level, text)
bool host_log(JSContext* cx, unsigned argc, JS::Value* vp) {
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    auto& e = engine_of(cx);
    const int32_t n = args.get(0).isInt32() ? args.get(0).toInt32() : 2;
    static constexpr log::level levels[] = {log::level::trace, log::level::debug, log::level::info,
                                            log::level::warn, log::level::error};
    const log::level lvl = levels[std::clamp(n, 0, 4)];
    log::global().at(lvl).str("userscript", e.name).msg(to_utf8(cx, args.get(1)));
    args.rval().setUndefined();
    return true;
}

// host.uuid(): a random (version 4) UUID, for replicator@v1's randomUUID().
bool host_uuid(JSContext* cx, unsigned argc, JS::Value* vp) {
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    uint64_t words[2] = {0, 0};
    if (::getrandom(words, sizeof words, 0) != static_cast<ssize_t>(sizeof words)) {
        JS_ReportErrorUTF8(cx, "randomUUID(): the system has no random bytes to give");
        return false;
    }
    uint64_t hi = words[0];
    uint64_t lo = words[1];
    hi = (hi & ~uint64_t{0xf000}) | 0x4000;                    // version 4
    lo = (lo & ~(uint64_t{0xc} << 60)) | (uint64_t{8} << 60);  // variant 10
    const std::string text =
        fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", hi >> 32, (hi >> 16) & 0xffff,
                    hi & 0xffff, lo >> 48, lo & 0xffffffffffff);
    JSString* s = JS_NewStringCopyN(cx, text.data(), text.size());
    if (s == nullptr) {
        return false;
    }
    args.rval().setString(s);
    return true;
}

// host.tick(): a handler starts.
bool host_tick(JSContext* cx, unsigned argc, JS::Value* vp) {
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    engine_of(cx).tick();
    args.rval().setUndefined();
    return true;
}

int lowest_level() {
    const log::level min = log::global().min_level();
    switch (min) {
    case log::level::trace: return 0;
    case log::level::debug: return 1;
    case log::level::info: return 2;
    case log::level::warn: return 3;
    default: return 4;
    }
}

}  // namespace

result<void> userscript::engine::start() {
    cx = JS_NewContext(JS::DefaultHeapMaxBytes);
    if (cx == nullptr) {
        return error{errc::internal, "cannot create a JavaScript context"};
    }
    ++live_engines;
    JS_SetContextPrivate(cx, this);
    JS_SetNativeStackQuota(cx, 1024 * 1024);
    JS_SetGCParameter(cx, JSGC_MAX_BYTES,
                      static_cast<uint32_t>(std::min<size_t>(limits.heap_bytes, UINT32_MAX)));
    // Promise jobs (then, await) run from SpiderMonkey's own queue, drained after each call;
    // it must be chosen before the self-hosted code is initialised.
    if (!js::UseInternalJobQueues(cx)) {
        return error{errc::internal, "cannot create the JavaScript job queue"};
    }
    if (!JS::InitSelfHostedCode(cx)) {
        return error{errc::internal, "cannot initialise the JavaScript engine"};
    }
    JS_AddInterruptCallback(cx, interrupt);
    JS::SetOutOfMemoryCallback(cx, out_of_memory, this);
    JS::SetPromiseRejectionTrackerCallback(cx, track_rejection, this);
    preparer = std::make_unique<job_runner>(cx, job_failure);
    js::SetScriptEnvironmentPreparer(cx, preparer.get());
    JS::RealmOptions options;
    global = std::make_unique<JS::PersistentRootedObject>(
        cx, JS_NewGlobalObject(cx, &global_class, nullptr, JS::FireOnNewGlobalHook, options));
    if (!*global) {
        return error{errc::internal, "cannot create the script's global object"};
    }
    JSAutoRealm realm(cx, *global);
    if (!JS::InitRealmStandardClasses(cx)) {
        return error{errc::internal, "cannot create the script's standard library"};
    }
    JS::RootedObject host(cx, JS_NewPlainObject(cx));
    if (!host || !JS_DefineFunction(cx, host, "compile", host_compile, 1, 0) ||
        !JS_DefineFunction(cx, host, "log", host_log, 2, 0) ||
        !JS_DefineFunction(cx, host, "tick", host_tick, 0, 0) ||
        !JS_DefineFunction(cx, host, "uuid", host_uuid, 0, 0) ||
        !JS_DefineProperty(cx, host, "levels", lowest_level(), JSPROP_ENUMERATE)) {
        return error{errc::internal, "cannot create the script's host functions"};
    }
    JS::CompileOptions compile(cx);
    compile.setFileAndLine("replicator-runtime.js", 1);
    JS::SourceText<mozilla::Utf8Unit> text;
    const std::string_view runtime = runtime_js_text;
    if (!text.init(cx, runtime.data(), runtime.size(), JS::SourceOwnership::Borrowed)) {
        return error{errc::internal, "cannot read the userscript runtime"};
    }
    JS::RootedValue factory(cx);
    if (!JS::Evaluate(cx, compile, text, &factory)) {
        return take_failure("the userscript runtime");
    }
    JS::RootedValue host_value(cx, JS::ObjectValue(*host));
    JS::RootedValue made(cx);
    if (!JS_CallFunctionValue(cx, nullptr, factory, JS::HandleValueArray(host_value), &made) ||
        !made.isObject()) {
        return take_failure("the userscript runtime");
    }
    api = std::make_unique<JS::PersistentRootedObject>(cx, &made.toObject());
    return ok();
}

error userscript::engine::take_failure(std::string_view context) {
    const stop_reason why = stopped.exchange(stop_reason::none);
    if (why == stop_reason::time) {
        JS_ClearPendingException(cx);
        return error{errc::unavailable,
                     fmt::format("{} ran longer than --userscriptTimeout ({} ms)", context,
                                 limits.call_timeout.count())};
    }
    if (why == stop_reason::heap || !JS_IsExceptionPending(cx)) {
        JS_ClearPendingException(cx);
        JS_GC(cx);
        return error{errc::unavailable, fmt::format("{} ran out of memory: it may allocate up to "
                                                    "--userscriptMaxHeap ({} bytes) per call",
                                                    context, limits.heap_bytes)};
    }
    JS::RootedValue exn(cx);
    JS_GetPendingException(cx, &exn);
    JS_ClearPendingException(cx);
    std::string text;
    if (exn.isObject()) {
        JS::RootedObject o(cx, &exn.toObject());
        JS::RootedValue message(cx);
        if (JS_GetProperty(cx, o, "message", &message) && message.isString()) {
            text = to_utf8(cx, message);
        }
    }
    if (text.empty()) {
        text = to_utf8(cx, exn);
    }
    if (text == "out of memory") {
        JS_GC(cx);
        return error{errc::unavailable, fmt::format("{} ran out of memory: it may allocate up to "
                                                    "--userscriptMaxHeap ({} bytes) per call",
                                                    context, limits.heap_bytes)};
    }
    return error{errc::invalid_argument, text};
}

result<std::string> userscript::engine::call_api(const char* function, JS::HandleValueArray args,
                                                 std::string_view context) {
    JSAutoRealm realm(cx, *global);
    JS::RootedValue out(cx);
    job_failure.clear();
    unhandled_rejections = 0;
    start_clock();
    bool called = JS_CallFunctionName(cx, *api, function, args, &out);
    if (called) {
        js::RunJobs(cx);  // promise reactions the call queued, under the same limits
        called = stopped.load() == stop_reason::none;
    }
    stop_clock();
    if (called && (!job_failure.empty() || unhandled_rejections > 0)) {
        error failed{errc::invalid_argument,
                     !job_failure.empty()
                         ? fmt::format("{}: a promise job failed: {}", context, job_failure)
                         : fmt::format("{}: a promise was rejected and nothing handled it: {}",
                                       context, rejection)};
        job_failure.clear();
        unhandled_rejections = 0;
        return failed;
    }
    if (!called) {
        // Interrupted: which handler was running (the runtime remembers it), asked under a
        // time limit of its own.
        std::string where;
        const stop_reason why = stopped.exchange(stop_reason::none);
        if (why != stop_reason::none) {
            JS::RootedValue current(cx);
            JS::RootedValue pending(cx);
            const bool had_exception = JS_GetPendingException(cx, &pending);
            JS_ClearPendingException(cx);
            start_clock();
            if (JS_CallFunctionName(cx, *api, "current", JS::HandleValueArray::empty(), &current)) {
                where = to_utf8(cx, current);
            }
            stop_clock();
            JS_ClearPendingException(cx);
            if (had_exception) {
                JS_SetPendingException(cx, pending);
            }
            stopped = why;
        }
        error failed = take_failure(where.empty() ? context : std::string_view(where));
        discard_jobs();
        return failed;
    }
    return out.isString() ? to_utf8(cx, out) : std::string();
}

void userscript::engine::discard_jobs() {
    // Jobs a failed call left queued must not run in the next call, under its limits and its
    // name: each is stopped at its first interrupt check (short ones may still finish).
    const stop_reason saved = stopped.exchange(stop_reason::time);
    JS_RequestInterruptCallback(cx);
    js::RunJobs(cx);
    JS_ClearPendingException(cx);
    stopped = saved;
    job_failure.clear();
    unhandled_rejections = 0;
}

namespace {

void job_runner::invoke(JS::HandleObject global, Closure& closure) {
    JSAutoRealm realm(cx_, global);
    if (!closure(cx_)) {
        JS::RootedValue exn(cx_);
        if (JS_GetPendingException(cx_, &exn)) {
            JS_ClearPendingException(cx_);
            if (failure_.empty()) {
                failure_ = exn.isString() ? to_utf8(cx_, exn) : describe_exception(cx_, exn);
            }
        } else if (failure_.empty()) {
            failure_ = "stopped";
        }
    }
}

}  // namespace

// userscript ------------------------------------------------------------------------------------

userscript::userscript(std::unique_ptr<engine> e) : engine_(std::move(e)) {}
userscript::~userscript() = default;

const std::string& userscript::name() const noexcept {
    return engine_->name;
}

result<std::unique_ptr<userscript>> userscript::load(const fs::path& file,
                                                     const script::limits& limits,
                                                     metrics::registry* registry) {
    const std::string name = file.string();
    std::error_code ec;
    const fs::path canonical = fs::canonical(file, ec);
    if (ec || !fs::is_regular_file(canonical, ec)) {
        return error{errc::not_found,
                     fmt::format("--userscript {}: no such file", log::sanitize(name))};
    }
    auto esbuild = find_on_path("esbuild");
    if (!esbuild) {
        return error{errc::not_found,
                     fmt::format("--userscript {}: esbuild is not on PATH; the replicator runs "
                                 "it to strip TypeScript types from userscripts (install it: "
                                 "apt-get install esbuild, or npm install -g esbuild)",
                                 log::sanitize(name))};
    }
    std::call_once(js_init_once, [] {
        js_initialised = JS_Init();
        if (js_initialised) {
            std::atexit(shut_down_js);
        }
    });
    if (!js_initialised) {
        return error{errc::internal, "the JavaScript engine cannot be initialised"};
    }
    auto e = std::make_unique<engine>();
    e->name = name;
    e->root = canonical.parent_path();
    e->main = canonical.filename().string();
    e->esbuild = *esbuild;
    e->limits = limits;
    if (registry != nullptr) {
        const std::vector<std::string> labels = {"schema", "table", "function"};
        e->invocations = &registry->counter(
            "script_invocations_total",
            "Userscript handler calls (table \"*\": a schema-level handler)", labels);
        e->filtered = &registry->counter("script_rows_filtered_total",
                                         "Rows a userscript handler dropped (null or {})", labels);
        e->processed = &registry->counter("script_rows_processed_total",
                                          "Rows a userscript handler passed on", labels);
        e->errors = &registry->counter(
            "script_errors_total",
            "Userscript calls that failed: an exception, a wrong result, a time or memory limit",
            labels);
        e->exec_time = &registry->histogram(
            "script_exec_time_seconds",
            "Time in the userscript per batch of rows (one request, or one staged chunk)",
            {"schema"});
        e->entry_wait = &registry
                             ->histogram("script_entry_wait_seconds",
                                         "Time a batch waited for the userscript's thread")
                             .get();
    }
    e->thread = std::thread([p = e.get()] { p->loop(); });
    e->watchdog = std::thread([p = e.get()] { p->watch(); });
    auto loaded = e->call([p = e.get()]() -> result<std::string> {
        if (auto started = p->start(); !started) {
            return started.error();
        }
        JSAutoRealm realm(p->cx, *p->global);
        JS::RootedValue main(p->cx);
        JSString* main_name =
            JS_NewStringCopyUTF8N(p->cx, JS::UTF8Chars(p->main.data(), p->main.size()));
        if (main_name == nullptr) {
            return p->take_failure("loading it");
        }
        main.setString(main_name);
        if (auto done = p->call_api("load", JS::HandleValueArray(main), "loading it"); !done) {
            return done.error();
        }
        return p->call_api("describe", JS::HandleValueArray::empty(), "loading it");
    });
    if (!loaded) {
        return error{loaded.error().code(), fmt::format("--userscript {}: {}", log::sanitize(name),
                                                        loaded.error().message())};
    }
    rapidjson::Document d;
    d.Parse(loaded->data(), loaded->size());
    if (d.HasParseError() || !d.IsObject()) {
        return error{errc::internal, "the userscript runtime described its configuration badly"};
    }
    for (const auto& s : d["schemas"].GetArray()) {
        e->schemas.insert(ident_key(s.GetString()));
    }
    for (const auto& t : d["tables"].GetArray()) {
        std::optional<std::string> schema;
        if (t[0].IsString()) {
            schema = t[0].GetString();
        }
        std::optional<engine::table_config::writer_options> writer;
        if (t[3].IsObject()) {
            const auto& w = t[3];
            writer.emplace();
            writer->call = w["call"].GetString();
            writer->row_limit = w["rowLimit"].GetUint64();
            writer->extras = w["extras"].GetString();
            for (const auto& x : w["exprs"].GetArray()) {
                writer->exprs.emplace_back(std::string(x[0].GetString(), x[0].GetStringLength()),
                                           std::string(x[1].GetString(), x[1].GetStringLength()));
            }
            for (const auto& c : w["cas"].GetArray()) {
                writer->cas.emplace_back(c.GetString(), c.GetStringLength());
            }
            for (const auto& x : w["deadlines"].GetArray()) {
                writer->deadlines.emplace_back(
                    std::string(x[0].GetString(), x[0].GetStringLength()), x[1].GetInt64());
            }
            writer->merge = w["merge"].GetBool();
        }
        e->tables.push_back(
            {std::move(schema), t[1].GetString(), t[2].GetBool(), std::move(writer)});
    }
    for (const auto& o : d["options"].GetArray()) {
        e->set_options.emplace_back(std::string(o[0].GetString(), o[0].GetStringLength()),
                                    std::string(o[1].GetString(), o[1].GetStringLength()));
    }
    return std::unique_ptr<userscript>(new userscript(std::move(e)));
}

const std::vector<std::pair<std::string, std::string>>& userscript::options() const noexcept {
    return engine_->set_options;
}

namespace {

// A table's merge (replicator@v1 configureTable merge), run on the script's thread.
class script_merger final : public row_merger {
public:
    script_merger(userscript::engine& e, std::string dlq_table)
        : engine_(e), dlq_table_(std::move(dlq_table)) {}

    result<std::vector<merge_resolution>> resolve(
        const qualified_name& schema, const table_info& t,
        const std::vector<merge_conflict>& conflicts) const override;
    const std::string& dlq_table() const noexcept override { return dlq_table_; }

private:
    userscript::engine& engine_;
    std::string dlq_table_;
};

}  // namespace

void userscript::configure(schema_snapshot& target, molt::dialect dialect,
                           const std::string& dlq_table) const {
    const std::string folded = ident_key(target.schema.to_string());
    for (table_info& t : target.tables) {
        const engine::table_config* config = engine_->table_of(folded, ident_key(t.name));
        if (config == nullptr || !config->writer) {
            continue;
        }
        const auto& w = *config->writer;
        auto refuse = [&](std::string_view what) {
            if (t.options_error.empty()) {
                t.options_error = fmt::format("--userscript {}: {}: {} (table {}.{})",
                                              log::sanitize(engine_->name), log::sanitize(w.call),
                                              what, target.schema.to_string(), t.name);
            }
        };
        // A column the script names: one of the table's, not generated.
        auto column = [&](std::string_view option, const std::string& c) -> int {
            const int index = t.column_index(c);
            if (index < 0) {
                refuse(fmt::format("{} names column \"{}\", which the table does not have", option,
                                   log::sanitize(c)));
            } else if (t.columns[static_cast<size_t>(index)].generated) {
                refuse(fmt::format("{} names column \"{}\", which is generated (never written)",
                                   option, log::sanitize(c)));
                return -1;
            }
            return index;
        };
        t.row_limit = w.row_limit;
        if (!w.extras.empty()) {
            t.extras = column("extras", w.extras);
            if (t.extras >= 0 && t.columns[static_cast<size_t>(t.extras)].pk_position >= 0) {
                refuse(fmt::format("extras names column \"{}\", which is in the primary key",
                                   log::sanitize(w.extras)));
                t.extras = -1;
            }
        }
        for (const auto& [c, sql] : w.exprs) {
            if (dialect == molt::dialect::oracle) {
                refuse("exprs are not supported on Oracle targets");
            } else if (const int index = column("exprs", c); index >= 0) {
                t.columns[static_cast<size_t>(index)].expr = sql;
            }
        }
        if (dialect == molt::dialect::oracle && (!w.cas.empty() || !w.deadlines.empty())) {
            refuse("cas and deadlines are not supported on Oracle targets");
        }
        for (const std::string& c : w.cas) {
            const int index = column("cas", c);
            if (index < 0) {
                continue;
            }
            const auto at = static_cast<size_t>(index);
            if (t.columns[at].pk_position >= 0) {
                refuse(fmt::format("cas names column \"{}\", which is in the primary key",
                                   log::sanitize(c)));
            } else if (std::find(t.cas.begin(), t.cas.end(), at) != t.cas.end()) {
                refuse(fmt::format("cas names column \"{}\" twice", log::sanitize(c)));
            } else {
                t.cas.push_back(at);
            }
        }
        for (const auto& [c, micros] : w.deadlines) {
            const int index = column("deadlines", c);
            if (index < 0) {
                continue;
            }
            const column_info& col = t.columns[static_cast<size_t>(index)];
            if (col.type_name.rfind("timestamp", 0) != 0 && col.type_name != "date" &&
                col.type_name != "datetime") {
                refuse(
                    fmt::format("deadlines names column \"{}\", which is not a date or "
                                "timestamp ({})",
                                log::sanitize(c), col.sql_type));
            } else {
                t.deadlines.emplace_back(static_cast<size_t>(index), micros);
            }
        }
        if (w.merge) {
            if (dialect == molt::dialect::oracle) {
                refuse("merge is not supported on Oracle targets");
            } else {
                t.merger = std::make_shared<script_merger>(*engine_, dlq_table);
            }
        }
    }
}

bool userscript::handles_schema(const qualified_name& schema) const {
    return engine_->schemas.contains(ident_key(schema.to_string()));
}

bool userscript::handles_tables(const qualified_name& schema) const {
    const std::string folded = ident_key(schema.to_string());
    return std::any_of(engine_->tables.begin(), engine_->tables.end(),
                       [&](const auto& t) { return !t.schema || *t.schema == folded; });
}

bool userscript::writes(const qualified_name& schema, std::string_view table) const {
    const std::string folded = ident_key(schema.to_string());
    if (!table.empty()) {
        const engine::table_config* c = engine_->table_of(folded, ident_key(table));
        return c != nullptr && c->writes;
    }
    return std::any_of(engine_->tables.begin(), engine_->tables.end(),
                       [&](const engine::table_config& c) {
                           return c.writes && (!c.schema || *c.schema == folded);
                       });
}

namespace {
// runtime.js's run(): with this bit of its phases, the rows whose table-level handler fails are
// listed (refusals), not fatal to the call.
constexpr unsigned divert_refusals = 4;
}  // namespace

result<proto::batch> userscript::run(const qualified_name& schema, const schema_snapshot& target,
                                     const proto::batch& rows, unsigned which,
                                     std::optional<std::chrono::steady_clock::time_point> deadline,
                                     std::vector<refused_row>* refused) const {
    if (refused != nullptr) {
        // Only table-level handlers' rows can be diverted (a schema-level handler runs in the
        // request, which answers for its rows).
        if ((which & schema_phase) != 0U) {
            return error{errc::internal, "refused rows are listed for table-level handlers only"};
        }
        which |= divert_refusals;
    }
    const std::string input = batch_input(target, rows);
    const std::string catalog = catalog_json(target);
    const std::string schema_text = schema.to_string();
    auto out = engine_->call([&, e = engine_.get()]() -> result<std::string> {
        // A request whose deadline passed while it waited for the script's thread: not run.
        if (deadline && clock_type::now() >= *deadline) {
            return error{errc::unavailable,
                         "the request waited for the userscript until its deadline; not run"};
        }
        const auto started = clock_type::now();
        JSAutoRealm realm(e->cx, *e->global);
        JS::RootedValueArray<4> args(e->cx);
        for (size_t i = 0; i < 3; ++i) {
            const std::string& text = i == 0 ? schema_text : i == 1 ? input : catalog;
            JSString* s = JS_NewStringCopyUTF8N(e->cx, JS::UTF8Chars(text.data(), text.size()));
            if (s == nullptr) {
                return e->take_failure(e->name);
            }
            args[i].setString(s);
        }
        args[3].setInt32(static_cast<int32_t>(which));
        auto done = e->call_api("run", args, "the script");
        std::string counts;
        if (done) {
            // The counts, the rows the handlers refused ([group, index, table, function,
            // message] each), then the body.
            const size_t nl = done->find('\n');
            const size_t nl2 = done->find('\n', nl == std::string::npos ? done->size() : nl + 1);
            counts = done->substr(0, nl);
            rapidjson::Document list;
            if (nl != std::string::npos && nl2 != std::string::npos) {
                list.Parse(done->data() + nl + 1, nl2 - nl - 1);
            }
            if (list.HasParseError() || !list.IsArray()) {
                done = error{errc::internal,
                             "the script's runtime answered without its list of refused rows"};
            }
            for (size_t i = 0; done && i < list.Size(); ++i) {
                const rapidjson::Value& r = list[static_cast<rapidjson::SizeType>(i)];
                if (!r.IsArray() || r.Size() != 5 || !r[0].IsUint() || !r[1].IsUint() ||
                    !r[2].IsString() || !r[3].IsString() || !r[4].IsString()) {
                    done = error{errc::internal,
                                 "the script's runtime listed a refused row it did not describe"};
                    break;
                }
                if (refused != nullptr) {
                    refused->push_back(
                        {r[0].GetUint(), r[1].GetUint(),
                         fmt::format("userscript {}: {}", e->name, r[4].GetString())});
                }
                if (e->errors != nullptr) {
                    e->errors->with({schema_text, r[2].GetString(), r[3].GetString()}).add();
                }
            }
            if (done) {
                done->erase(0, nl2 + 1);
            }
        } else if (auto failed = e->call_api("failed", JS::HandleValueArray::empty(), ""); failed) {
            // The counts of the handlers before, then [table, function] of the one that failed.
            const size_t nl = failed->find('\n');
            counts = failed->substr(0, nl);
            rapidjson::Document where;
            where.Parse(failed->c_str() + std::min(nl + 1, failed->size()));
            if (e->errors != nullptr && !where.HasParseError() && where.IsArray() &&
                where.Size() == 2 && where[0].IsString() && where[1].IsString()) {
                const std::string fn = where[1].GetString();
                e->errors->with({schema_text, where[0].GetString(), fn.empty() ? "run" : fn}).add();
            }
        }
        e->add_counts(schema_text, counts);
        if (e->exec_time != nullptr) {
            e->exec_time->with({schema_text}).observe(metrics::seconds_since(started));
        }
        return done;
    });
    if (!out) {
        if (refused != nullptr) {
            refused->clear();
        }
        return error{out.error().code(),
                     fmt::format("userscript {}: {}", engine_->name, out.error().message())};
    }
    // The script may fan rows out: the decoder's limits are the replicator's own here.
    auto decoded = proto::decode_webhook(std::move(out).value(), proto::decode_limits::unlimited());
    if (!decoded) {
        return error{errc::invalid_argument,
                     fmt::format("userscript {}: its rows cannot be read back: {}", engine_->name,
                                 decoded.error().message())};
    }
    return std::move(decoded->rows);
}

namespace {

// The requests of a write's step ({"requests": [{id, kind, sql?, params?, body?}, …]}).
result<std::vector<std::pair<int64_t, write_request>>> parse_requests(
    const rapidjson::Value& list) {
    std::vector<std::pair<int64_t, write_request>> out;
    for (const auto& r : list.GetArray()) {
        write_request request;
        const std::string_view kind = r["kind"].GetString();
        request.type = kind == "query"  ? write_request::kind::query
                       : kind == "exec" ? write_request::kind::exec
                                        : write_request::kind::write;
        if (request.type == write_request::kind::write) {
            request.body = r["body"].GetString();
        } else {
            request.sql = r["sql"].GetString();
            for (const auto& v : r["params"].GetArray()) {
                request.params.push_back(v.IsString() ? std::optional<std::string>(v.GetString())
                                                      : std::nullopt);
            }
        }
        out.emplace_back(r["id"].GetInt64(), std::move(request));
    }
    return out;
}

void append_rows(std::string& out, const std::vector<sql_row>& rows) {
    out += '[';
    for (size_t i = 0; i < rows.size(); ++i) {
        out += i == 0 ? "[" : ",[";
        for (size_t c = 0; c < rows[i].size(); ++c) {
            if (c > 0) {
                out += ',';
            }
            if (rows[i][c]) {
                append_json_string(out, *rows[i][c]);
            } else {
                out += "null";
            }
        }
        out += ']';
    }
    out += ']';
}

}  // namespace

namespace {

// How standardMerge compares a column's values (runtime.js sameValue): "number" (exact
// decimals), "float", "time" (timestamps, to the digit, whatever their offset), or "" (as they
// are), by the column's type on PostgreSQL or MySQL/MariaDB.
std::string_view merge_kind(const column_info& c) {
    if (c.array) {
        return "";
    }
    static constexpr std::string_view numbers[] = {"smallint",  "integer", "bigint",  "int",
                                                   "int2",      "int4",    "int8",    "tinyint",
                                                   "mediumint", "numeric", "decimal", "year"};
    static constexpr std::string_view floats[] = {"real",  "double precision", "double",
                                                  "float", "float4",           "float8"};
    const std::string_view type = c.type_name;
    if (std::find(std::begin(numbers), std::end(numbers), type) != std::end(numbers)) {
        return "number";
    }
    if (std::find(std::begin(floats), std::end(floats), type) != std::end(floats)) {
        return "float";
    }
    if (type.rfind("timestamp", 0) == 0 || type == "datetime") {
        return "time";
    }
    return "";
}

result<std::vector<merge_resolution>> script_merger::resolve(
    const qualified_name& schema, const table_info& t,
    const std::vector<merge_conflict>& conflicts) const {
    userscript::engine& e = engine_;
    // {pk: [names], kinds: {name: kind}, rows: [{key, before, proposed, target}, …]}
    std::string input = "{\"pk\":[";
    for (size_t k = 0; k < t.pk_count; ++k) {
        if (k > 0) {
            input += ',';
        }
        append_json_string(input, t.columns[k].name);
    }
    input += "],\"kinds\":{";
    bool first = true;
    for (const column_info& c : t.columns) {
        if (const std::string_view kind = merge_kind(c); !kind.empty()) {
            input += first ? "" : ",";
            first = false;
            append_json_string(input, c.name);
            input += ':';
            append_json_string(input, kind);
        }
    }
    input += "},\"rows\":[";
    for (size_t i = 0; i < conflicts.size(); ++i) {
        const merge_conflict& c = conflicts[i];
        input += fmt::format("{}{{\"key\":{},\"before\":{},\"proposed\":{},\"target\":{}}}",
                             i == 0 ? "" : ",", c.key, c.before, c.proposed, c.target);
    }
    input += "]}";
    const std::string schema_text = schema.to_string();
    auto out = e.call([&]() -> result<std::string> {
        const auto started = clock_type::now();
        JSAutoRealm realm(e.cx, *e.global);
        JS::RootedValueArray<3> args(e.cx);
        for (size_t i = 0; i < 3; ++i) {
            const std::string& text = i == 0 ? schema_text : i == 1 ? t.name : input;
            JSString* s = JS_NewStringCopyUTF8N(e.cx, JS::UTF8Chars(text.data(), text.size()));
            if (s == nullptr) {
                return e.take_failure(e.name);
            }
            args[i].setString(s);
        }
        auto done = e.call_api("merge", args, "merge");
        if (!done && e.errors != nullptr) {
            e.errors->with({schema_text, t.name, "merge"}).add();
        }
        if (e.exec_time != nullptr) {
            e.exec_time->with({schema_text}).observe(metrics::seconds_since(started));
        }
        return done;
    });
    if (!out) {
        // A time or heap limit: errc::timeout, not unavailable (the target is fine: its session
        // is kept), as userscript::write.
        const error& why = out.error();
        return error{why.code() == errc::unavailable ? errc::timeout : why.code(),
                     fmt::format("userscript {}: {}", e.name, why.message()), retry_class::none};
    }
    // [["apply", "<row JSON>"] | ["dlq", "<name>"] | ["drop"], …]
    rapidjson::Document d;
    d.Parse(out->data(), out->size());
    std::vector<merge_resolution> resolved;
    for (size_t i = 0; !d.HasParseError() && d.IsArray() && i < d.Size(); ++i) {
        const rapidjson::Value& r = d[static_cast<rapidjson::SizeType>(i)];
        if (!r.IsArray() || r.Empty() || !r[0].IsString() || (r.Size() > 1 && !r[1].IsString())) {
            break;
        }
        const std::string_view type = r[0].GetString();
        merge_resolution m;
        m.type = type == "apply" ? merge_resolution::kind::apply
                 : type == "dlq" ? merge_resolution::kind::dlq
                                 : merge_resolution::kind::drop;
        if (r.Size() > 1) {
            m.value.assign(r[1].GetString(), r[1].GetStringLength());
        }
        resolved.push_back(std::move(m));
    }
    if (resolved.size() != conflicts.size()) {
        return error{errc::internal, "the userscript runtime answered a merge badly",
                     retry_class::fatal};
    }
    return resolved;
}

}  // namespace

result<void> userscript::write(const qualified_name& schema, const schema_snapshot& target,
                               molt::dialect dialect, const proto::batch& rows, write_host& host,
                               clock_type::time_point deadline) const {
    engine& e = *engine_;
    const std::string schema_text = schema.to_string();
    const std::string input = batch_input(target, rows);
    const std::string catalog = catalog_json(target);
    const std::string info = write_info(target, rows, dialect);
    const int64_t id = e.next_write++;
    // Ends the conversation on the script's thread and counts the failure under the handler it
    // was in.
    const auto abandon = [&](bool count) {
        e.call([&] {
            JSAutoRealm realm(e.cx, *e.global);
            JS::RootedValueArray<1> args(e.cx);
            args[0].setNumber(static_cast<double>(id));
            auto where = e.call_api("endWrite", args, "onWrite");
            rapidjson::Document d;
            if (count && e.errors != nullptr && where && !d.Parse(where->c_str()).HasParseError() &&
                d.IsArray() && d.Size() == 2) {
                const std::string fn = d[1].GetString();
                e.errors->with({schema_text, d[0].GetString(), fn.empty() ? "onWrite" : fn}).add();
            }
        });
    };
    std::string results;        // for resumeWrite: [{id, rows} | {id, error}, …]
    std::vector<error> failed;  // statements that failed and went back to the handler
    for (bool first = true;; first = false) {
        auto step = e.call([&]() -> result<std::string> {
            const auto started = clock_type::now();
            // A batch whose deadline passed while it waited for the script's thread: not run.
            if (first && started >= deadline) {
                return error{errc::timeout,
                             "the rows waited for the userscript until their deadline; not run"};
            }
            JSAutoRealm realm(e.cx, *e.global);
            result<std::string> out = std::string();
            if (first) {
                JS::RootedValueArray<5> args(e.cx);
                args[0].setNumber(static_cast<double>(id));
                const std::string* texts[] = {&schema_text, &input, &catalog, &info};
                for (size_t i = 0; i < 4; ++i) {
                    JSString* s = JS_NewStringCopyUTF8N(
                        e.cx, JS::UTF8Chars(texts[i]->data(), texts[i]->size()));
                    if (s == nullptr) {
                        return e.take_failure(e.name);
                    }
                    args[i + 1].setString(s);
                }
                out = e.call_api("beginWrite", args, "onWrite");
            } else {
                JS::RootedValueArray<2> args(e.cx);
                args[0].setNumber(static_cast<double>(id));
                JSString* s =
                    JS_NewStringCopyUTF8N(e.cx, JS::UTF8Chars(results.data(), results.size()));
                if (s == nullptr) {
                    return e.take_failure(e.name);
                }
                args[1].setString(s);
                out = e.call_api("resumeWrite", args, "onWrite");
            }
            if (out) {
                JS::RootedValueArray<1> args(e.cx);
                args[0].setNumber(static_cast<double>(id));
                out = e.call_api("stepWrite", args, "onWrite");
            }
            if (e.exec_time != nullptr) {
                e.exec_time->with({schema_text}).observe(metrics::seconds_since(started));
            }
            return out;
        });
        if (!step) {
            abandon(true);
            // A time or heap limit: errc::timeout, not unavailable (the target is fine: its
            // session is kept), and not retried at once (it would hold the script's thread
            // again for as long).
            const error& why = step.error();
            return error{why.code() == errc::unavailable ? errc::timeout : why.code(),
                         fmt::format("userscript {}: {}", e.name, why.message()),
                         retry_class::none};
        }
        const size_t nl = step->find('\n');
        e.add_counts(schema_text, std::string_view(*step).substr(0, nl));
        rapidjson::Document d;
        d.Parse(step->c_str() + nl + 1);
        if (d.HasParseError() || !d.IsObject()) {
            abandon(false);
            return error{errc::internal, "the userscript runtime answered a write badly"};
        }
        if (d.HasMember("done")) {
            if (!failed.empty()) {
                // The handler caught a failure and went on: a PostgreSQL transaction stays
                // aborted unless it rolled back to a savepoint, and its COMMIT would roll back.
                if (auto usable = host.usable(); !usable) {
                    return error{
                        errc::invalid_argument,
                        fmt::format("userscript {}: onWrite went on after a statement "
                                    "failed ({}), but the transaction cannot commit "
                                    "(roll back to a savepoint after a failure): {}",
                                    e.name, failed.back().message(), usable.error().message()),
                        retry_class::none};
                }
            }
            return ok();
        }
        if (d.HasMember("failure")) {
            const std::string failure = d["failure"].GetString();
            if (e.errors != nullptr) {
                const std::string fn = d["function"].GetString();
                e.errors->with({schema_text, d["table"].GetString(), fn.empty() ? "onWrite" : fn})
                    .add();
            }
            // A statement's failure the handler passed on keeps its retry class (a parent row
            // that has not arrived, a schema change, a unique key another order resolves);
            // otherwise a refusal.
            retry_class why = retry_class::none;
            for (const error& f : failed) {
                if (failure.find(f.message()) != std::string::npos) {
                    why = f.retry();
                }
            }
            return error{errc::invalid_argument, fmt::format("userscript {}: {}", e.name, failure),
                         why};
        }
        auto requests = parse_requests(d["requests"]);
        if (!requests) {
            abandon(false);
            return requests.error();
        }
        results = "[";
        for (const auto& [n, request] : *requests) {
            if (clock_type::now() >= deadline) {
                abandon(true);
                return error{errc::timeout,
                             fmt::format("userscript {}: onWrite was still writing at the "
                                         "deadline (--applyTimeout); rolled back",
                                         e.name),
                             retry_class::retry_now};
            }
            auto done = host.run(request);
            results += results.size() == 1 ? "{\"id\":" : ",{\"id\":";
            results += std::to_string(n);
            if (done) {
                results += ",\"rows\":";
                append_rows(results, *done);
            } else {
                const retry_class why = done.error().retry();
                if (why == retry_class::retry_now || why == retry_class::reconnect) {
                    // The transaction is gone (a deadlock, a serialization failure, the
                    // connection): whatever the handler would do, the attempt starts again.
                    abandon(false);
                    return error{done.error().code(),
                                 fmt::format("userscript {}: a statement of onWrite: {}", e.name,
                                             done.error().message()),
                                 why};
                }
                failed.push_back(done.error());
                results += ",\"error\":";
                append_json_string(results, done.error().message());
            }
            results += '}';
        }
        results += ']';
    }
}

}  // namespace molt::replicator::script
