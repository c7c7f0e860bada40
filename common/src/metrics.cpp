#include "molt/common/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "molt/common/assert.hpp"

namespace molt::metrics {

void counter::add(uint64_t n) noexcept {
    c_->Increment(static_cast<double>(n));
}
uint64_t counter::value() const noexcept {
    return static_cast<uint64_t>(c_->Value());
}

void gauge::set(double v) noexcept {
    g_->Set(v);
}
void gauge::add(double d) noexcept {
    g_->Increment(d);
}
double gauge::value() const noexcept {
    return g_->Value();
}

void histogram::observe(double v) noexcept {
    h_->Observe(v);
}

uint64_t histogram::count() const {
    return h_->Collect().histogram.sample_count;
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
        std::map<std::string, std::string> labels;
        for (size_t i = 0; i < labels_.size(); ++i) {
            labels.emplace(labels_[i], values[i]);
        }
        slot = std::make_unique<Metric>(make_(labels));
    }
    return *slot;
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

registry::registry() : registry_(std::make_unique<prometheus::Registry>()) {}
registry::~registry() = default;

namespace {

template <typename Map, typename Make>
auto& find_or_add(Map& map, const std::string& name, std::vector<std::string> labels, Make&& make) {
    auto& slot = map[name];
    if (!slot) {
        using family_type = typename Map::mapped_type::element_type;
        slot = std::make_unique<family_type>(std::move(labels), std::forward<Make>(make));
    }
    return *slot;
}

}  // namespace

family<counter>& registry::counter(const std::string& name, const std::string& help,
                                   std::vector<std::string> labels) {
    const std::lock_guard<std::mutex> lock(mutex_);
    declared_.try_emplace(name, declared{help, "counter"});
    if (const auto it = counters_.find(name); it != counters_.end()) {
        return *it->second;
    }
    auto& prom = prometheus::BuildCounter().Name(name).Help(help).Register(*registry_);
    return find_or_add(counters_, name, std::move(labels),
                       [p = &prom](const std::map<std::string, std::string>& l) {
                           return metrics::counter(p->Add(l));
                       });
}

family<gauge>& registry::gauge(const std::string& name, const std::string& help,
                               std::vector<std::string> labels) {
    const std::lock_guard<std::mutex> lock(mutex_);
    declared_.try_emplace(name, declared{help, "gauge"});
    if (const auto it = gauges_.find(name); it != gauges_.end()) {
        return *it->second;
    }
    auto& prom = prometheus::BuildGauge().Name(name).Help(help).Register(*registry_);
    return find_or_add(gauges_, name, std::move(labels),
                       [p = &prom](const std::map<std::string, std::string>& l) {
                           return metrics::gauge(p->Add(l));
                       });
}

family<histogram>& registry::histogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> labels,
                                       std::vector<double> bounds) {
    const std::lock_guard<std::mutex> lock(mutex_);
    declared_.try_emplace(name, declared{help, "histogram"});
    if (const auto it = histograms_.find(name); it != histograms_.end()) {
        return *it->second;
    }
    auto& prom = prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_);
    return find_or_add(
        histograms_, name, std::move(labels),
        [p = &prom, bounds = std::move(bounds)](const std::map<std::string, std::string>& l) {
            return metrics::histogram(p->Add(l, prometheus::Histogram::BucketBoundaries(bounds)));
        });
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
    std::vector<prometheus::MetricFamily> collected = registry_->Collect();
    {
        // prometheus-cpp leaves out a family without children: keep its HELP and TYPE, so that
        // /_/varz lists every metric this process has (dashboards and tests look them up).
        const std::lock_guard<std::mutex> lock(mutex_);
        for (const auto& [name, what] : declared_) {
            const bool present = std::any_of(
                collected.begin(), collected.end(),
                [&name = name](const prometheus::MetricFamily& f) { return f.name == name; });
            if (!present) {
                prometheus::MetricFamily empty;
                empty.name = name;
                empty.help = what.help;
                empty.type = what.type == "counter" ? prometheus::MetricType::Counter
                             : what.type == "gauge" ? prometheus::MetricType::Gauge
                                                    : prometheus::MetricType::Histogram;
                collected.push_back(std::move(empty));
            }
        }
    }
    // Sorted by name, and each family's children by their labels: the same output every time.
    for (auto& f : collected) {
        std::sort(f.metric.begin(), f.metric.end(),
                  [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) {
                      return std::lexicographical_compare(
                          a.label.begin(), a.label.end(), b.label.begin(), b.label.end(),
                          [](const auto& x, const auto& y) {
                              return std::tie(x.name, x.value) < std::tie(y.name, y.value);
                          });
                  });
    }
    std::sort(collected.begin(), collected.end(),
              [](const prometheus::MetricFamily& a, const prometheus::MetricFamily& b) {
                  return a.name < b.name;
              });
    return prometheus::TextSerializer().Serialize(collected);
}

}  // namespace molt::metrics
