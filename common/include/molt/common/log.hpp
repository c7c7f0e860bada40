#pragma once
// Logging for both executables.
//
// The default form is zerolog's JSON line, as MOLT prints it:
//   {"level":"info","address":"[::]:30004","time":"2025-02-20T15:55:44-05:00","message":"Server
//   listening"}
// keys in this order: level, the event's fields in the order given, time (RFC 3339, local time
// with offset), message. Two human forms exist: `console` (zerolog's console writer:
// "2025-02-20T15:55:44-05:00 INF Server listening address=[::]:30004") and `text` (the
// replicator's logrus-style "INFO   [Feb 20 15:55:44] Server listening   address=...").
//
// Every message and string field passes through redact_secrets(); fields whose name marks a
// secret (password, token, private_key, ...) are replaced whole. Control characters are escaped
// in every form, so user-controlled text cannot forge log lines.
//
// Thread-safe: a line is formatted outside the lock and written to each sink in one call.
// `fatal` and `panic` are levels only; the caller decides to exit.
//
//   log::info().str("address", addr).msg("Server listening");

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "molt/common/result.hpp"

namespace molt::log {

enum class level { trace, debug, info, warn, error, fatal, panic };

[[nodiscard]] std::string_view to_string(level lvl) noexcept;
/// Accepts the zerolog names (trace, debug, info, warn, error, fatal, panic), any case, and
/// "warning" for warn.
[[nodiscard]] result<level> parse_level(std::string_view text);

enum class format { json, console, text };

[[nodiscard]] result<format> parse_format(std::string_view text);

/// Wall clock reading used for the time field: Unix seconds and the local UTC offset.
struct clock_reading {
    int64_t unix_seconds = 0;
    int utc_offset_seconds = 0;
};

/// Receives whole lines, newline included.
using sink = std::function<void(std::string_view line)>;

[[nodiscard]] sink stdout_sink();
[[nodiscard]] sink stderr_sink();
/// Appends to a file, creating it (mode 0640) and its parent directories.
[[nodiscard]] result<sink> file_sink(const std::string& path);

struct options {
    level min_level = level::info;
    format fmt = format::json;
    std::vector<sink> sinks;  ///< empty means stdout
    /// Overrides the system clock (tests).
    std::function<clock_reading()> clock;
};

using field_value =
    std::variant<std::string, int64_t, uint64_t, double, bool, std::vector<std::string>>;

struct field {
    std::string key;
    field_value value;
};

class logger;

/// One log event under construction; written by msg(). A disabled event ignores everything.
class event {
public:
    event(logger* owner, level lvl) : owner_(owner), level_(lvl) {}
    event(const event&) = delete;
    event& operator=(const event&) = delete;
    event(event&&) = default;
    event& operator=(event&&) = default;
    ~event() = default;

    event& str(std::string_view key, std::string_view value);
    event& num(std::string_view key, int64_t value);
    event& unum(std::string_view key, uint64_t value);
    event& dbl(std::string_view key, double value);
    event& boolean(std::string_view key, bool value);
    event& strs(std::string_view key, std::vector<std::string> values);
    /// The conventional "error" field.
    event& err(const molt::error& e);
    event& err(std::string_view message);

    void msg(std::string_view message);

private:
    void add(std::string_view key, field_value value);

    logger* owner_;
    level level_;
    std::vector<field> fields_;
};

class logger {
public:
    explicit logger(options opts = {});

    [[nodiscard]] bool enabled(level lvl) const noexcept { return lvl >= min_level_; }
    void set_min_level(level lvl) noexcept { min_level_ = lvl; }
    [[nodiscard]] level min_level() const noexcept { return min_level_; }

    [[nodiscard]] event at(level lvl) { return {enabled(lvl) ? this : nullptr, lvl}; }
    [[nodiscard]] event trace() { return at(level::trace); }
    [[nodiscard]] event debug() { return at(level::debug); }
    [[nodiscard]] event info() { return at(level::info); }
    [[nodiscard]] event warn() { return at(level::warn); }
    [[nodiscard]] event error() { return at(level::error); }
    [[nodiscard]] event fatal() { return at(level::fatal); }
    [[nodiscard]] event panic() { return at(level::panic); }

    /// Formats one line (with trailing newline) without writing it. Pure; used by tests.
    [[nodiscard]] std::string format_line(level lvl, const std::vector<field>& fields,
                                          std::string_view message,
                                          const clock_reading& when) const;

    void write(level lvl, const std::vector<field>& fields, std::string_view message);
    /// Writes a line that is already in this logger's format (another process's log line that
    /// the caller has checked and redacted), if `lvl` is enabled.
    void write_preformatted(level lvl, std::string_view line);
    [[nodiscard]] format line_format() const noexcept { return format_; }

private:
    level min_level_;
    format format_;
    std::vector<sink> sinks_;
    std::function<clock_reading()> clock_;
    std::mutex write_mutex_;
};

/// The process-wide logger both executables use. Until configure() it logs info and above as
/// JSON to stdout. configure() is meant for startup, before other threads log;
/// it is not synchronised with concurrent logging.
logger& global();
void configure(options opts);

[[nodiscard]] inline event trace() {
    return global().trace();
}
[[nodiscard]] inline event debug() {
    return global().debug();
}
[[nodiscard]] inline event info() {
    return global().info();
}
[[nodiscard]] inline event warn() {
    return global().warn();
}
[[nodiscard]] inline event error() {
    return global().error();
}
[[nodiscard]] inline event fatal() {
    return global().fatal();
}
[[nodiscard]] inline event panic() {
    return global().panic();
}

/// Escapes text for one-line display: \n, \r, \t, other control bytes as \xNN.
[[nodiscard]] std::string sanitize(std::string_view text);

}  // namespace molt::log
