#pragma once
// Prometheus metrics: counters, gauges and histograms with labels, and the text exposition
// format (version 0.0.4) served at /_/varz. Families are created once by name; children are
// looked up by label values and live as long as the registry (references stay valid).
//
//   auto& upserts = registry.counter("apply_upserts_total", "Rows upserted", {"schema", "table"});
//   upserts.with({"db.public", "employees"}).add(12);

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace molt::metrics {

// The metrics are prometheus-cpp's (Debian's prometheus-cpp-dev); these thin handles keep its
// headers out of the rest of the code and the call sites as they were.

class counter {
public:
    explicit counter(prometheus::Counter& c) noexcept : c_(&c) {}
    void add(uint64_t n = 1) noexcept;
    [[nodiscard]] uint64_t value() const noexcept;

private:
    prometheus::Counter* c_;
};

class gauge {
public:
    explicit gauge(prometheus::Gauge& g) noexcept : g_(&g) {}
    void set(double v) noexcept;
    void add(double d) noexcept;
    [[nodiscard]] double value() const noexcept;

private:
    prometheus::Gauge* g_;
};

class histogram {
public:
    explicit histogram(prometheus::Histogram& h) noexcept : h_(&h) {}
    void observe(double v) noexcept;
    /// Observations so far.
    [[nodiscard]] uint64_t count() const;

private:
    prometheus::Histogram* h_;
};

/// Default latency buckets in seconds: 1 ms to 60 s.
[[nodiscard]] std::vector<double> latency_buckets();

/// One metric name with its labels; children by label values.
template <typename Metric>
class family {
public:
    /// `add` makes the prometheus-cpp child for a label set (and keeps it for ever).
    using make_fn = std::function<Metric(const std::map<std::string, std::string>&)>;
    family(std::vector<std::string> labels, make_fn make)
        : labels_(std::move(labels)), make_(std::move(make)) {}

    /// The child for these label values (as many as the family has labels).
    Metric& with(const std::vector<std::string>& values);
    Metric& get() { return with({}); }

private:
    std::vector<std::string> labels_;
    make_fn make_;
    mutable std::mutex mutex_;
    std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

class registry {
public:
    registry();
    ~registry();
    registry(const registry&) = delete;
    registry& operator=(const registry&) = delete;

    family<metrics::counter>& counter(const std::string& name, const std::string& help,
                                      std::vector<std::string> labels = {});
    family<metrics::gauge>& gauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> labels = {});
    family<metrics::histogram>& histogram(const std::string& name, const std::string& help,
                                          std::vector<std::string> labels = {},
                                          std::vector<double> bounds = latency_buckets());

    /// The Prometheus text exposition (version 0.0.4) of every family, sorted by name, families
    /// without children included (HELP and TYPE only). Collectors run first.
    [[nodiscard]] std::string expose() const;

    /// A callback that refreshes gauges (e.g. pool sizes) just before each exposition.
    void on_collect(std::function<void()> collector);

private:
    struct declared {
        std::string help;
        std::string type;  ///< counter, gauge, histogram
    };
    std::unique_ptr<prometheus::Registry> registry_;
    std::vector<std::function<void()>> collectors_;
    mutable std::mutex mutex_;
    std::map<std::string, declared> declared_;
    std::map<std::string, std::unique_ptr<family<metrics::counter>>> counters_;
    std::map<std::string, std::unique_ptr<family<metrics::gauge>>> gauges_;
    std::map<std::string, std::unique_ptr<family<metrics::histogram>>> histograms_;
};

/// Seconds elapsed since `start`, for a duration histogram.
[[nodiscard]] inline double seconds_since(std::chrono::steady_clock::time_point start) noexcept {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace molt::metrics
