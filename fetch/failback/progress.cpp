#include "molt/fetch/progress.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace molt::fetch {

std::optional<std::string> metric_sample::label(std::string_view key) const {
    for (const auto& [k, v] : labels) {
        if (k == key) {
            return v;
        }
    }
    return std::nullopt;
}

std::vector<metric_sample> parse_prometheus_text(std::string_view text) {
    std::vector<metric_sample> out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.empty() || line.front() == '#') {
            continue;
        }
        metric_sample s;
        size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') {
            ++i;
        }
        s.name = std::string(line.substr(0, i));
        bool ok = !s.name.empty();
        if (ok && i < line.size() && line[i] == '{') {
            ++i;
            while (ok && i < line.size() && line[i] != '}') {
                const size_t eq = line.find('=', i);
                if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
                    ok = false;
                    break;
                }
                std::string key(line.substr(i, eq - i));
                std::string value;
                size_t j = eq + 2;
                for (; j < line.size() && line[j] != '"'; ++j) {
                    if (line[j] == '\\' && j + 1 < line.size()) {
                        ++j;
                        value += line[j] == 'n' ? '\n' : line[j];
                    } else {
                        value += line[j];
                    }
                }
                if (j >= line.size()) {
                    ok = false;
                    break;
                }
                s.labels.emplace_back(std::move(key), std::move(value));
                i = j + 1;
                if (i < line.size() && line[i] == ',') {
                    ++i;
                }
            }
            if (i >= line.size()) {
                ok = false;
            }
            ++i;
        }
        if (!ok) {
            continue;
        }
        while (i < line.size() && line[i] == ' ') {
            ++i;
        }
        const std::string number(line.substr(i, line.find(' ', i) - i));
        char* parsed_end = nullptr;
        s.value = std::strtod(number.c_str(), &parsed_end);
        if (number.empty() || parsed_end != number.c_str() + number.size()) {
            continue;
        }
        out.push_back(std::move(s));
    }
    return out;
}

double replicator_progress::total_rows() const {
    double total = 0;
    for (const auto& [table, n] : rows_applied) {
        total += n;
    }
    return total;
}

replicator_progress summarize_varz(const std::vector<metric_sample>& samples) {
    replicator_progress p;
    auto keep_max = [](std::optional<double>& slot, double v) {
        slot = slot ? std::max(*slot, v) : v;
    };
    for (const metric_sample& s : samples) {
        if (s.name == "apply_upserts_total" || s.name == "apply_deletes_total") {
            p.rows_applied[s.label("table").value_or("?")] += s.value;
        } else if (s.name == "source_lag_seconds") {
            keep_max(p.source_lag_seconds, s.value);
        } else if (s.name == "target_lag_seconds") {
            keep_max(p.target_lag_seconds, s.value);
        } else if (s.name == "checkpoint_committed_time_seconds" && s.value > 0) {
            p.applied_checkpoint_seconds = p.applied_checkpoint_seconds
                                               ? std::min(*p.applied_checkpoint_seconds, s.value)
                                               : s.value;
        }
    }
    return p;
}

}  // namespace molt::fetch
