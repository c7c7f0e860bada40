#pragma once
// The replicator's command line, as molt builds it (molt-fetch-failback.md §6.3, §6.4).
//
// --replicator-flags is one string split as a POSIX shell splits words, without expansion:
// blanks separate words; '...' keeps everything literally; "..." keeps everything but \" \\ \$
// \` (backslash escapes); outside quotes a backslash escapes the next character. Quotes are
// removed (MOLT kept them: its `--applyTimeout '1h'` passed the literal 'h' quotes along).
//
// molt's own flags come first and the user's last. The replicator refuses a repeated flag, so a
// flag the user gives is never also passed by molt: the user's wins.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/result.hpp"

namespace molt::fetch {

/// Shell-like word splitting; an unterminated quote or a trailing backslash is an error.
[[nodiscard]] result<std::vector<std::string>> split_shell_words(std::string_view text);

/// The user's replicator flags, split, with lookups by flag name (without dashes).
class user_replicator_flags {
public:
    /// Splits and checks the shape: the first word must be a flag (MOLT: `invalid flag '<w>'`).
    [[nodiscard]] static result<user_replicator_flags> parse(std::string_view text);

    [[nodiscard]] const std::vector<std::string>& words() const noexcept { return words_; }
    /// True when --name (or -name, --name=...) appears.
    [[nodiscard]] bool has(std::string_view name) const;
    /// The value of a flag that takes one: --name=value, or the word after --name.
    [[nodiscard]] std::optional<std::string> value(std::string_view name) const;
    /// A boolean flag: absent → false; --name or --name=true|1|t → true.
    [[nodiscard]] bool enabled(std::string_view name) const;

private:
    std::vector<std::string> words_;
};

struct replicator_flag {
    std::string name;     ///< without dashes, e.g. "targetConn"
    std::string value;    ///< empty for a boolean flag
    bool secret = false;  ///< a connection string: logged redacted
};

/// `start`, then each of molt's flags the user did not give, then the user's words.
[[nodiscard]] std::vector<std::string> build_replicator_argv(
    const std::vector<replicator_flag>& molt_flags, const user_replicator_flags& user);

/// The same, safe to log: connection strings redacted, secrets in user words removed.
[[nodiscard]] std::vector<std::string> redacted_replicator_argv(
    const std::vector<replicator_flag>& molt_flags, const user_replicator_flags& user);

}  // namespace molt::fetch
