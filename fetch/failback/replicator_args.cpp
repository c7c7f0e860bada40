#include "molt/fetch/replicator_args.hpp"

#include <fmt/format.h>

#include "molt/common/conn_url.hpp"
#include "molt/common/flag_text.hpp"
#include "molt/common/redact.hpp"

namespace molt::fetch {
namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// "--name=value" / "-name" → "name"; not a flag → "".
std::string_view flag_name(std::string_view word) {
    if (word.size() < 2 || word[0] != '-') {
        return {};
    }
    word.remove_prefix(word[1] == '-' ? 2 : 1);
    return word.substr(0, word.find('='));
}

bool looks_like_flag(std::string_view word) {
    return !flag_name(word).empty();
}

}  // namespace

result<std::vector<std::string>> split_shell_words(std::string_view text) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (is_blank(c)) {
            if (in_word) {
                words.push_back(std::move(word));
                word.clear();
                in_word = false;
            }
            ++i;
        } else if (c == '\'') {
            const size_t end = text.find('\'', i + 1);
            if (end == std::string_view::npos) {
                return error{
                    errc::invalid_argument,
                    fmt::format("--replicator-flags: unterminated ' quote at character {}", i + 1)};
            }
            word.append(text.substr(i + 1, end - i - 1));
            in_word = true;
            i = end + 1;
        } else if (c == '"') {
            size_t j = i + 1;
            for (;; ++j) {
                if (j >= text.size()) {
                    return error{errc::invalid_argument,
                                 fmt::format("--replicator-flags: unterminated \" quote at "
                                             "character {}",
                                             i + 1)};
                }
                if (text[j] == '"') {
                    break;
                }
                if (text[j] == '\\' && j + 1 < text.size() &&
                    (text[j + 1] == '"' || text[j + 1] == '\\' || text[j + 1] == '$' ||
                     text[j + 1] == '`')) {
                    ++j;
                }
                word += text[j];
            }
            in_word = true;
            i = j + 1;
        } else if (c == '\\') {
            if (i + 1 >= text.size()) {
                return error{errc::invalid_argument,
                             "--replicator-flags: a backslash at the end escapes nothing"};
            }
            word += text[i + 1];
            in_word = true;
            i += 2;
        } else {
            word += c;
            in_word = true;
            ++i;
        }
    }
    if (in_word) {
        words.push_back(std::move(word));
    }
    return words;
}

result<user_replicator_flags> user_replicator_flags::parse(std::string_view text) {
    auto words = split_shell_words(text);
    if (!words) {
        return std::move(words).error();
    }
    if (!words->empty() && !looks_like_flag(words->front())) {
        return error{errc::invalid_argument,
                     fmt::format("--replicator-flags: invalid flag '{}' (expected flags such as "
                                 "--stagingSchema name)",
                                 words->front())};
    }
    user_replicator_flags out;
    out.words_ = std::move(words).value();
    return out;
}

bool user_replicator_flags::has(std::string_view name) const {
    for (const std::string& w : words_) {
        if (flag_name(w) == name) {
            return true;
        }
    }
    return false;
}

std::optional<std::string> user_replicator_flags::value(std::string_view name) const {
    std::optional<std::string> found;
    for (size_t i = 0; i < words_.size(); ++i) {
        if (flag_name(words_[i]) != name) {
            continue;
        }
        if (const size_t eq = words_[i].find('='); eq != std::string::npos) {
            found = words_[i].substr(eq + 1);
        } else if (i + 1 < words_.size() && !looks_like_flag(words_[i + 1])) {
            found = words_[i + 1];
        }
    }
    return found;
}

bool user_replicator_flags::enabled(std::string_view name) const {
    for (const std::string& w : words_) {
        if (flag_name(w) != name) {
            continue;
        }
        const size_t eq = w.find('=');
        if (eq == std::string::npos) {
            return true;
        }
        return parse_flag_bool(std::string_view(w).substr(eq + 1)).value_or(false);
    }
    return false;
}

namespace {

std::vector<std::string> assemble_argv(const std::vector<replicator_flag>& molt_flags,
                                       const user_replicator_flags& user, bool redact) {
    std::vector<std::string> argv{"start"};
    for (const replicator_flag& f : molt_flags) {
        // A user's --X replaces molt's; so does --XFile for --X and --X for --XFile
        // (--targetConnFile: the connection string from a file, out of the process list).
        constexpr std::string_view file_suffix = "File";
        const bool file_flag = f.name.size() > file_suffix.size() &&
                               f.name.compare(f.name.size() - file_suffix.size(),
                                              file_suffix.size(), file_suffix) == 0;
        if (user.has(f.name) || user.has(f.name + "File") ||
            (file_flag && user.has(f.name.substr(0, f.name.size() - file_suffix.size())))) {
            continue;
        }
        argv.push_back("--" + f.name);
        if (f.value.empty()) {
            continue;
        }
        if (redact && f.secret) {
            auto url = conn_url::parse(f.value);
            argv.push_back(url ? url->redacted() : std::string(redacted_marker));
        } else {
            argv.push_back(f.value);
        }
    }
    for (const std::string& w : user.words()) {
        argv.push_back(redact ? redact_secrets(w) : w);
    }
    return argv;
}

}  // namespace

std::vector<std::string> build_replicator_argv(const std::vector<replicator_flag>& molt_flags,
                                               const user_replicator_flags& user) {
    return assemble_argv(molt_flags, user, false);
}

std::vector<std::string> redacted_replicator_argv(const std::vector<replicator_flag>& molt_flags,
                                                  const user_replicator_flags& user) {
    return assemble_argv(molt_flags, user, true);
}

}  // namespace molt::fetch
