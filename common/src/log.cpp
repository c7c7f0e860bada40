#include "molt/common/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "molt/common/json_text.hpp"
#include "molt/common/redact.hpp"
#include "molt/common/time_format.hpp"

namespace molt::log {
namespace {

constexpr std::string_view level_names[] = {"trace", "debug", "info", "warn",
                                            "error", "fatal", "panic"};
constexpr std::string_view console_names[] = {"TRC", "DBG", "INF", "WRN", "ERR", "FTL", "PNC"};
constexpr std::string_view text_names[] = {"TRACE", "DEBUG", "INFO", "WARN",
                                           "ERROR", "FATAL", "PANIC"};

size_t index_of(level lvl) noexcept {
    return static_cast<size_t>(lvl);
}

std::string format_double(double v) {
    if (std::isnan(v)) {
        return "\"NaN\"";
    }
    if (std::isinf(v)) {
        return v > 0 ? "\"+Inf\"" : "\"-Inf\"";
    }
    return fmt::format("{}", v);
}

// Applies redaction to a field: whole-value for secret names, pattern-based otherwise.
field_value redacted_value(const field& f) {
    if (is_secret_field_name(f.key)) {
        return std::string(redacted_marker);
    }
    if (const auto* s = std::get_if<std::string>(&f.value)) {
        return redact_secrets(*s);
    }
    if (const auto* list = std::get_if<std::vector<std::string>>(&f.value)) {
        std::vector<std::string> out;
        out.reserve(list->size());
        for (const auto& item : *list) {
            out.push_back(redact_secrets(item));
        }
        return out;
    }
    return f.value;
}

void append_json_value(std::string& out, const field_value& value) {
    std::visit(
        [&out](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
                append_json_string(out, v);
            } else if constexpr (std::is_same_v<T, bool>) {
                out.append(v ? "true" : "false");
            } else if constexpr (std::is_same_v<T, double>) {
                out.append(format_double(v));
            } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
                out.push_back('[');
                for (size_t i = 0; i < v.size(); ++i) {
                    if (i != 0) {
                        out.push_back(',');
                    }
                    append_json_string(out, v[i]);
                }
                out.push_back(']');
            } else {
                out.append(fmt::format("{}", v));
            }
        },
        value);
}

// Human forms: quote a string when it is empty or holds spaces, quotes, '=' or control bytes.
void append_human_value(std::string& out, const field_value& value) {
    if (const auto* s = std::get_if<std::string>(&value)) {
        const bool needs_quotes = s->empty() || s->find_first_of(" \"=\\") != std::string::npos ||
                                  std::any_of(s->begin(), s->end(), [](char c) {
                                      return static_cast<unsigned char>(c) < 0x20;
                                  });
        if (needs_quotes) {
            append_json_string(out, *s);
        } else {
            out.append(*s);
        }
        return;
    }
    if (const auto* list = std::get_if<std::vector<std::string>>(&value)) {
        append_json_value(out, *list);
        return;
    }
    append_json_value(out, value);
}

clock_reading system_clock_reading() {
    const auto now = std::chrono::system_clock::now();
    const int64_t seconds =
        std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
    return {seconds, local_utc_offset(seconds)};
}

void write_all(int fd, std::string_view line) {
    while (!line.empty()) {
        const ssize_t n = ::write(fd, line.data(), line.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;  // Nowhere left to report a failing log sink.
        }
        line.remove_prefix(static_cast<size_t>(n));
    }
}

}  // namespace

std::string_view to_string(level lvl) noexcept {
    return level_names[index_of(lvl)];
}

result<level> parse_level(std::string_view text) {
    std::string lowered;
    for (const char c : text) {
        lowered.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    if (lowered == "warning") {
        return level::warn;
    }
    for (size_t i = 0; i < std::size(level_names); ++i) {
        if (lowered == level_names[i]) {
            return static_cast<level>(i);
        }
    }
    return molt::error{errc::invalid_argument,
                       fmt::format("unknown log level \"{}\" (expected trace, debug, info, warn, "
                                   "error, fatal or panic)",
                                   sanitize(text))};
}

result<format> parse_format(std::string_view text) {
    if (text == "json") {
        return format::json;
    }
    if (text == "console") {
        return format::console;
    }
    if (text == "text") {
        return format::text;
    }
    return molt::error{
        errc::invalid_argument,
        fmt::format("unknown log format \"{}\" (expected json, console or text)", sanitize(text))};
}

sink stdout_sink() {
    return [](std::string_view line) { write_all(STDOUT_FILENO, line); };
}

sink stderr_sink() {
    return [](std::string_view line) { write_all(STDERR_FILENO, line); };
}

result<sink> file_sink(const std::string& path) {
    std::error_code ec;
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
        std::filesystem::create_directories(parent, ec);
        if (ec) {
            return molt::error{errc::io_error, fmt::format("cannot create log directory \"{}\": {}",
                                                           parent.string(), ec.message())};
        }
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        return molt::error{errc::io_error, fmt::format("cannot open log file \"{}\": {}", path,
                                                       std::strerror(errno))};
    }
    // The descriptor lives as long as the sink; the shared owner closes it.
    auto owner = std::shared_ptr<int>(new int(fd), [](int* p) {
        ::close(*p);
        delete p;
    });
    return sink{[owner](std::string_view line) { write_all(*owner, line); }};
}

void event::add(std::string_view key, field_value value) {
    if (owner_ != nullptr) {
        fields_.push_back({std::string(key), std::move(value)});
    }
}

event& event::str(std::string_view key, std::string_view value) {
    add(key, std::string(value));
    return *this;
}

event& event::num(std::string_view key, int64_t value) {
    add(key, value);
    return *this;
}

event& event::unum(std::string_view key, uint64_t value) {
    add(key, value);
    return *this;
}

event& event::dbl(std::string_view key, double value) {
    add(key, value);
    return *this;
}

event& event::boolean(std::string_view key, bool value) {
    add(key, value);
    return *this;
}

event& event::strs(std::string_view key, std::vector<std::string> values) {
    add(key, std::move(values));
    return *this;
}

event& event::err(const molt::error& e) {
    return str("error", e.message());
}

event& event::err(std::string_view message) {
    return str("error", message);
}

void event::msg(std::string_view message) {
    if (owner_ != nullptr) {
        owner_->write(level_, fields_, message);
        owner_ = nullptr;
    }
}

logger::logger(options opts)
    : min_level_(opts.min_level),
      format_(opts.fmt),
      sinks_(std::move(opts.sinks)),
      clock_(std::move(opts.clock)) {
    if (sinks_.empty()) {
        sinks_.push_back(stdout_sink());
    }
    if (!clock_) {
        clock_ = system_clock_reading;
    }
}

std::string logger::format_line(level lvl, const std::vector<field>& fields,
                                std::string_view message, const clock_reading& when) const {
    const std::string clean_message = redact_secrets(message);
    std::string line;
    line.reserve(96 + clean_message.size() + fields.size() * 24);
    switch (format_) {
    case format::json: {
        line.append("{\"level\":\"").append(to_string(lvl)).append("\"");
        for (const field& f : fields) {
            line.push_back(',');
            append_json_string(line, f.key);
            line.push_back(':');
            append_json_value(line, redacted_value(f));
        }
        line.append(",\"time\":\"")
            .append(format_rfc3339_seconds(when.unix_seconds, when.utc_offset_seconds))
            .append("\"");
        if (!clean_message.empty()) {
            line.append(",\"message\":");
            append_json_string(line, clean_message);
        }
        line.append("}\n");
        break;
    }
    case format::console: {
        line.append(format_rfc3339_seconds(when.unix_seconds, when.utc_offset_seconds));
        line.push_back(' ');
        line.append(console_names[index_of(lvl)]);
        line.push_back(' ');
        line.append(sanitize(clean_message));
        for (const field& f : fields) {
            line.push_back(' ');
            line.append(sanitize(f.key)).push_back('=');
            append_human_value(line, redacted_value(f));
        }
        line.push_back('\n');
        break;
    }
    case format::text: {
        static constexpr std::string_view months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
        const civil_time t =
            civil_from_unix_nanos((when.unix_seconds + when.utc_offset_seconds) * 1'000'000'000LL);
        line.append(fmt::format("{:<6} [{} {:>2} {:02}:{:02}:{:02}] {:<45} ",
                                text_names[index_of(lvl)], months[t.month - 1], t.day, t.hour,
                                t.minute, t.second, sanitize(clean_message)));
        for (size_t i = 0; i < fields.size(); ++i) {
            if (i != 0) {
                line.push_back(' ');
            }
            line.append(sanitize(fields[i].key)).push_back('=');
            append_human_value(line, redacted_value(fields[i]));
        }
        while (!line.empty() && line.back() == ' ') {
            line.pop_back();
        }
        line.push_back('\n');
        break;
    }
    }
    return line;
}

void logger::write(level lvl, const std::vector<field>& fields, std::string_view message) {
    if (!enabled(lvl)) {
        return;
    }
    const std::string line = format_line(lvl, fields, message, clock_());
    const std::lock_guard<std::mutex> lock(write_mutex_);
    for (const sink& s : sinks_) {
        s(line);
    }
}

void logger::write_preformatted(level lvl, std::string_view line) {
    if (!enabled(lvl)) {
        return;
    }
    std::string text(line);
    if (text.empty() || text.back() != '\n') {
        text += '\n';
    }
    const std::lock_guard<std::mutex> lock(write_mutex_);
    for (const sink& s : sinks_) {
        s(text);
    }
}

namespace {
std::unique_ptr<logger>& global_slot() {
    static std::unique_ptr<logger> instance = std::make_unique<logger>();
    return instance;
}
}  // namespace

logger& global() {
    return *global_slot();
}

void configure(options opts) {
    global_slot() = std::make_unique<logger>(std::move(opts));
}

std::string sanitize(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '\n': out.append("\\n"); break;
        case '\r': out.append("\\r"); break;
        case '\t': out.append("\\t"); break;
        default:
            if (c < 0x20 || c == 0x7F) {
                out.append(fmt::format("\\x{:02x}", c));
            } else {
                out.push_back(ch);
            }
        }
    }
    return out;
}

}  // namespace molt::log
