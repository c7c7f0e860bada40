#pragma once
// Prometheus metrics: counters, gauges and histograms with labels, and the text exposition
// format (version 0.0.4) served at /_/varz. Families are created once by name; children are
// looked up by label values and live as long as the registry (references stay valid).
//
//   auto& upserts = registry.counter("apply_upserts_total", "Rows upserted", {"schema", "table"});
//   upserts.with({"db.public", "employees"}).add(12);

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace molt::metrics {

class counter {
public:
    void add(uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
    [[nodiscard]] uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> value_{0};
};

class gauge {
public:
    void set(double v) noexcept { bits_.store(v, std::memory_order_relaxed); }
    void add(double d) noexcept;
    [[nodiscard]] double value() const noexcept { return bits_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> bits_{0.0};
};

class histogram {
public:
    explicit histogram(std::vector<double> bounds);
    void observe(double v) noexcept;
    struct snapshot {
        std::vector<uint64_t> cumulative;  ///< per bound, then +Inf
        double sum = 0;
        uint64_t count = 0;
    };
    [[nodiscard]] snapshot read() const;
    [[nodiscard]] const std::vector<double>& bounds() const noexcept { return bounds_; }

private:
    std::vector<double> bounds_;
    mutable std::mutex mutex_;
    std::vector<uint64_t> counts_;  ///< per bucket, last is +Inf
    double sum_ = 0;
    uint64_t count_ = 0;
};

/// Default latency buckets in seconds: 1 ms to 60 s.
[[nodiscard]] std::vector<double> latency_buckets();

template <typename Metric>
class family {
public:
    family(std::string name, std::string help, std::vector<std::string> labels,
           std::vector<double> bounds = {})
        : name_(std::move(name)),
          help_(std::move(help)),
          labels_(std::move(labels)),
          bounds_(std::move(bounds)) {}

    /// The child for these label values (as many as the family has labels).
    Metric& with(const std::vector<std::string>& values);
    Metric& get() { return with({}); }

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const std::string& help() const noexcept { return help_; }
    [[nodiscard]] const std::vector<std::string>& labels() const noexcept { return labels_; }
    /// A copy of the children list under the lock (pointers stay valid).
    [[nodiscard]] std::vector<std::pair<std::vector<std::string>, const Metric*>> children() const;

private:
    std::string name_;
    std::string help_;
    std::vector<std::string> labels_;
    std::vector<double> bounds_;
    mutable std::mutex mutex_;
    std::map<std::vector<std::string>, std::unique_ptr<Metric>> children_;
};

class registry {
public:
    family<metrics::counter>& counter(const std::string& name, const std::string& help,
                                      std::vector<std::string> labels = {});
    family<metrics::gauge>& gauge(const std::string& name, const std::string& help,
                                  std::vector<std::string> labels = {});
    family<metrics::histogram>& histogram(const std::string& name, const std::string& help,
                                          std::vector<std::string> labels = {},
                                          std::vector<double> bounds = latency_buckets());

    /// The Prometheus text exposition of every family, sorted by name. Collectors run first.
    [[nodiscard]] std::string expose() const;

    /// A callback that refreshes gauges (e.g. pool sizes) just before each exposition.
    void on_collect(std::function<void()> collector);

private:
    std::vector<std::function<void()>> collectors_;
    mutable std::mutex mutex_;
    std::map<std::string, std::unique_ptr<family<metrics::counter>>> counters_;
    std::map<std::string, std::unique_ptr<family<metrics::gauge>>> gauges_;
    std::map<std::string, std::unique_ptr<family<metrics::histogram>>> histograms_;
};

/// Seconds elapsed since `start`, for a duration histogram.
[[nodiscard]] inline double seconds_since(std::chrono::steady_clock::time_point start) noexcept {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace molt::metrics
