#pragma once
// Failback progress as molt reports it: what the replicator's /_/varz says (rows applied per
// table, lags, the applied checkpoint) and what the changefeed job says.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace molt::fetch {

struct metric_sample {
    std::string name;
    std::vector<std::pair<std::string, std::string>> labels;
    double value = 0;

    [[nodiscard]] std::optional<std::string> label(std::string_view key) const;
};

/// Prometheus text exposition format (0.0.4): comments skipped, label values unescaped,
/// malformed lines ignored.
[[nodiscard]] std::vector<metric_sample> parse_prometheus_text(std::string_view text);

struct replicator_progress {
    std::map<std::string, double> rows_applied;  ///< table → upserts + deletes applied
    std::optional<double> source_lag_seconds;    ///< newest resolved timestamp received: age
    std::optional<double> target_lag_seconds;    ///< what the target holds: age
    /// The checkpoint the target holds (consistent mode), Unix seconds; every source change at
    /// or before it is on the target.
    std::optional<double> applied_checkpoint_seconds;

    [[nodiscard]] double total_rows() const;
};

[[nodiscard]] replicator_progress summarize_varz(const std::vector<metric_sample>& samples);

}  // namespace molt::fetch
