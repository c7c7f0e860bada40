#include "molt/common/metrics.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "molt/common/assert.hpp"

namespace molt::metrics {
namespace {

// Label values escape backslash, double quote and newline.
std::string escape_label(std::string_view v) {
    std::string out;
    for (const char c : v) {
        if (c == '\\' || c == '"') {
            out.push_back('\\');
            out.push_back(c);
        } else if (c == '\n') {
            out.append("\\n");
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string label_text(const std::vector<std::string>& names,
                       const std::vector<std::string>& values, std::string_view extra_name = {},
                       std::string_view extra_value = {}) {
    std::string out;
    for (size_t i = 0; i < names.size(); ++i) {
        out +=
            fmt::format("{}{}=\"{}\"", out.empty() ? "" : ",", names[i], escape_label(values[i]));
    }
    if (!extra_name.empty()) {
        out += fmt::format("{}{}=\"{}\"", out.empty() ? "" : ",", extra_name, extra_value);
    }
    return out.empty() ? "" : "{" + out + "}";
}

std::string number(double v) {
    if (std::isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    return fmt::format("{}", v);
}

}  // namespace

void gauge::add(double d) noexcept {
    double cur = bits_.load(std::memory_order_relaxed);
    while (!bits_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
}

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void histogram::observe(double v) noexcept {
    const size_t bucket =
        static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
    const std::lock_guard<std::mutex> lock(mutex_);
    ++counts_[bucket];
    sum_ += v;
    ++count_;
}

histogram::snapshot histogram::read() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    snapshot s;
    uint64_t running = 0;
    for (const uint64_t c : counts_) {
        running += c;
        s.cumulative.push_back(running);
    }
    s.sum = sum_;
    s.count = count_;
    return s;
}

std::vector<double> latency_buckets() {
    return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

template <typename Metric>
Metric& family<Metric>::with(const std::vector<std::string>& values) {
    MOLT_CHECK(values.size() == labels_.size(), "metric label count mismatch");
    const std::lock_guard<std::mutex> lock(mutex_);
    auto& slot = children_[values];
    if (!slot) {
        if constexpr (std::is_same_v<Metric, metrics::histogram>) {
            slot = std::make_unique<Metric>(bounds_);
        } else {
            slot = std::make_unique<Metric>();
        }
    }
    return *slot;
}

template <typename Metric>
std::vector<std::pair<std::vector<std::string>, const Metric*>> family<Metric>::children() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::pair<std::vector<std::string>, const Metric*>> out;
    for (const auto& [labels, metric] : children_) {
        out.emplace_back(labels, metric.get());
    }
    return out;
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

namespace {
template <typename Map, typename... Args>
auto& find_or_add(std::mutex& m, Map& map, const std::string& name, Args&&... args) {
    const std::lock_guard<std::mutex> lock(m);
    auto& slot = map[name];
    if (!slot) {
        using family_type = typename Map::mapped_type::element_type;
        slot = std::make_unique<family_type>(name, std::forward<Args>(args)...);
    }
    return *slot;
}
}  // namespace

family<counter>& registry::counter(const std::string& name, const std::string& help,
                                   std::vector<std::string> labels) {
    return find_or_add(mutex_, counters_, name, help, std::move(labels));
}

family<gauge>& registry::gauge(const std::string& name, const std::string& help,
                               std::vector<std::string> labels) {
    return find_or_add(mutex_, gauges_, name, help, std::move(labels));
}

family<histogram>& registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels,
                                       std::vector<double> bounds) {
    return find_or_add(mutex_, histograms_, name, help, std::move(labels), std::move(bounds));
}

void registry::on_collect(std::function<void()> collector) {
    const std::lock_guard<std::mutex> lock(mutex_);
    collectors_.push_back(std::move(collector));
}

std::string registry::expose() const {
    std::vector<std::function<void()>> collectors;
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        collectors = collectors_;
    }
    for (const auto& collect : collectors) {
        collect();
    }
    std::map<std::string, std::string> blocks;  // by name, so the output is sorted
    const std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [name, f] : counters_) {
        std::string b = fmt::format("# HELP {} {}\n# TYPE {} counter\n", name, f->help(), name);
        for (const auto& [labels, c] : f->children()) {
            b += fmt::format("{}{} {}\n", name, label_text(f->labels(), labels), c->value());
        }
        blocks[name] = std::move(b);
    }
    for (const auto& [name, f] : gauges_) {
        std::string b = fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, f->help(), name);
        for (const auto& [labels, g] : f->children()) {
            b +=
                fmt::format("{}{} {}\n", name, label_text(f->labels(), labels), number(g->value()));
        }
        blocks[name] = std::move(b);
    }
    for (const auto& [name, f] : histograms_) {
        std::string b = fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, f->help(), name);
        for (const auto& [labels, h] : f->children()) {
            const auto s = h->read();
            for (size_t i = 0; i < h->bounds().size(); ++i) {
                b += fmt::format("{}_bucket{} {}\n", name,
                                 label_text(f->labels(), labels, "le", number(h->bounds()[i])),
                                 s.cumulative[i]);
            }
            b += fmt::format("{}_bucket{} {}\n", name,
                             label_text(f->labels(), labels, "le", "+Inf"), s.cumulative.back());
            b += fmt::format("{}_sum{} {}\n", name, label_text(f->labels(), labels), number(s.sum));
            b += fmt::format("{}_count{} {}\n", name, label_text(f->labels(), labels), s.count);
        }
        blocks[name] = std::move(b);
    }
    std::string out;
    for (const auto& [name, block] : blocks) {
        out += block;
    }
    return out;
}

}  // namespace molt::metrics
