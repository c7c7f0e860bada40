#include "molt/fetch/child_log.hpp"

#include <rapidjson/document.h>

#include "molt/common/redact.hpp"

namespace molt::fetch {

std::string tag_json_line(std::string_view line, std::string_view process, log::level& lvl) {
    constexpr std::string_view prefix = "{\"level\":\"";
    if (line.substr(0, prefix.size()) != prefix || line.back() != '}') {
        return {};
    }
    const size_t end = line.find('"', prefix.size());
    if (end == std::string_view::npos) {
        return {};
    }
    auto parsed = log::parse_level(line.substr(prefix.size(), end - prefix.size()));
    if (!parsed) {
        return {};
    }
    lvl = *parsed;
    std::string out(line.substr(0, end + 1));
    out += ",\"process\":\"";
    out += process;
    out += '"';
    out += line.substr(end + 1);
    return out;
}

void relay_child_line(log::logger& logger, std::string_view process, std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
        line.remove_suffix(1);
    }
    if (line.empty()) {
        return;
    }
    const std::string clean = redact_secrets(line);
    log::level lvl = log::level::info;
    if (logger.line_format() == log::format::json) {
        if (std::string tagged = tag_json_line(clean, process, lvl); !tagged.empty()) {
            logger.write_preformatted(lvl, tagged);
            return;
        }
    } else {
        rapidjson::Document doc;
        doc.Parse(clean.data(), clean.size());
        if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("level") &&
            doc["level"].IsString()) {
            if (auto parsed = log::parse_level(doc["level"].GetString())) {
                lvl = *parsed;
            }
            std::vector<log::field> fields{{"process", std::string(process)}};
            std::string message;
            for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
                const std::string key = it->name.GetString();
                if (key == "level" || key == "time") {
                    continue;
                }
                std::string value;
                if (it->value.IsString()) {
                    value = it->value.GetString();
                } else if (it->value.IsNumber()) {
                    value = std::to_string(it->value.GetDouble());
                } else if (it->value.IsBool()) {
                    value = it->value.GetBool() ? "true" : "false";
                } else {
                    continue;
                }
                if (key == "message") {
                    message = value;
                } else {
                    fields.push_back({key, value});
                }
            }
            logger.write(lvl, fields, message);
            return;
        }
    }
    logger.write(lvl, {{"process", std::string(process)}}, log::sanitize(clean));
}

}  // namespace molt::fetch
