#include "molt/replicator/app/periodic_task.hpp"

namespace molt::replicator {

periodic_task::periodic_task(std::chrono::nanoseconds period, std::function<void(bool)> work)
    : period_(period), work_(std::move(work)) {}

periodic_task::~periodic_task() {
    stop();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void periodic_task::start() {
    thread_ = std::thread([this] { run(); });
}

void periodic_task::wake() {
    {
        std::lock_guard lock(mu_);
        woken_ = true;
    }
    cv_.notify_all();
}

void periodic_task::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
}

void periodic_task::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        cv_.wait_for(lock, period_, [this] { return woken_ || stopping_; });
        if (stopping_) {
            return;
        }
        const bool woken = woken_;
        woken_ = false;
        lock.unlock();
        work_(woken);
        lock.lock();
    }
}

}  // namespace molt::replicator
