#include "molt/common/flag_text.hpp"

#include <fmt/format.h>

#include "molt/common/log.hpp"

namespace molt {

std::optional<bool> parse_flag_bool(std::string_view s) noexcept {
    if (s == "true" || s == "1" || s == "t" || s == "T" || s == "TRUE" || s == "True") {
        return true;
    }
    if (s == "false" || s == "0" || s == "f" || s == "F" || s == "FALSE" || s == "False") {
        return false;
    }
    return std::nullopt;
}

std::string describe_problems(const std::vector<std::string>& problems) {
    auto clean = [](const std::string& p, std::string_view indent) {
        std::string out;
        size_t start = 0;
        for (size_t nl = p.find('\n');; nl = p.find('\n', start)) {
            out += (start == 0 ? "" : "\n" + std::string(indent)) +
                   log::sanitize(std::string_view(p).substr(start, nl - start));
            if (nl == std::string::npos) {
                return out;
            }
            start = nl + 1;
        }
    };
    if (problems.size() == 1) {
        return clean(problems[0], "  ");
    }
    std::string message = fmt::format("{} problems with the command line:", problems.size());
    for (const std::string& p : problems) {
        message += "\n  " + clean(p, "    ");
    }
    return message;
}

}  // namespace molt
