#pragma once
// When the replicator exits unexpectedly, whether molt starts it again and after how long:
// backoff 1 s doubling to 30 s, at most --replicator-max-restarts in a row. A replicator that
// got ready and then ran for `healthy_run` (5 minutes) earns a fresh budget, so the limit bounds
// a crash loop, not a long run's rare crashes; one that never got ready earns nothing, however
// long ago the last healthy one started.

#include <algorithm>
#include <chrono>
#include <optional>

namespace molt::fetch {

class restart_budget {
public:
    using clock = std::chrono::steady_clock;

    explicit restart_budget(int max_restarts, clock::duration healthy_run = std::chrono::minutes(5))
        : max_restarts_(max_restarts), healthy_run_(healthy_run) {}

    /// The current replicator answered its health check.
    void ready(clock::time_point now) { ready_at_ = now; }

    /// The current replicator exited, or was killed for not getting ready: the wait before
    /// starting the next one, or nothing when the budget is spent (molt gives up).
    [[nodiscard]] std::optional<std::chrono::seconds> exited(clock::time_point now) {
        if (ready_at_ && now - *ready_at_ > healthy_run_) {
            restarts_ = 0;
            backoff_ = std::chrono::seconds(1);
        }
        ready_at_.reset();  // the next replicator has to earn it again
        if (restarts_ >= max_restarts_) {
            return std::nullopt;
        }
        ++restarts_;
        const auto wait = backoff_;
        backoff_ = std::min<std::chrono::seconds>(backoff_ * 2, std::chrono::seconds(30));
        return wait;
    }

    /// Restarts in the current run of failures.
    [[nodiscard]] int restarts() const { return restarts_; }

private:
    int max_restarts_;
    clock::duration healthy_run_;
    int restarts_ = 0;
    std::chrono::seconds backoff_{1};
    std::optional<clock::time_point> ready_at_;
};

}  // namespace molt::fetch
