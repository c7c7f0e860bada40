#include "molt/replicator/sequencer/chunk_scheduler.hpp"

#include <algorithm>

#include "molt/common/log.hpp"

namespace molt::replicator {

chunk_scheduler::chunk_scheduler(size_t threads) : size_(std::max<size_t>(1, threads)) {
    threads_.reserve(size_);
    for (size_t i = 0; i < size_; ++i) {
        threads_.emplace_back([this] { worker(); });
    }
}

chunk_scheduler::~chunk_scheduler() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        shutting_down_ = true;
        interrupted_ = true;
    }
    changed_.notify_all();
    for (std::thread& t : threads_) {
        t.join();
    }
}

void chunk_scheduler::begin(work fn) {
    const std::lock_guard<std::mutex> lock(mutex_);
    fn_ = std::move(fn);
    failure_.reset();
    window_start_ = next_sequence_;
}

uint64_t chunk_scheduler::submitted() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return next_sequence_ - window_start_;
}

bool chunk_scheduler::overlaps_running(const chunk& c) const {
    return std::any_of(unfinished_.begin(), unfinished_.end(), [&](const auto& running) {
        if (c.large || running.second->large) {
            return true;  // its keys are not known
        }
        const auto& a = running.second->keys;
        const auto& b = c.keys;
        const auto& small = a.size() < b.size() ? a : b;
        const auto& large = a.size() < b.size() ? b : a;
        return std::any_of(small.begin(), small.end(),
                           [&](const auto& k) { return large.count(k) != 0; });
    });
}

result<void> chunk_scheduler::submit(chunk c) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        if (interrupted_) {
            return error{errc::cancelled, "stopping"};
        }
        if (failure_) {
            return *failure_;
        }
        if (unfinished_.size() < size_ && !overlaps_running(c)) {
            break;
        }
        changed_.wait(lock);
    }
    c.sequence = next_sequence_++;
    auto owned = std::make_unique<chunk>(std::move(c));
    queue_.push_back(owned.get());
    const uint64_t sequence = owned->sequence;
    unfinished_.emplace(sequence, std::move(owned));
    changed_.notify_all();
    return ok();
}

result<void> chunk_scheduler::drain() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return unfinished_.empty(); });
    if (failure_) {
        return *failure_;
    }
    return ok();
}

void chunk_scheduler::wait_for_earlier(uint64_t sequence) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] {
        return interrupted_ || unfinished_.empty() || unfinished_.begin()->first >= sequence;
    });
}

chunk_scheduler::turn chunk_scheduler::wait_turn(uint64_t sequence,
                                                 std::chrono::nanoseconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    const bool settled = changed_.wait_for(lock, limit, [&] {
        return interrupted_ || failure_.has_value() || unfinished_.empty() ||
               unfinished_.begin()->first >= sequence;
    });
    if (interrupted_ || failure_) {
        return turn::abandoned;
    }
    return settled ? turn::yours : turn::not_yet;
}

void chunk_scheduler::interrupt() {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        interrupted_ = true;
    }
    changed_.notify_all();
}

void chunk_scheduler::worker() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        changed_.wait(lock, [&] { return shutting_down_ || !queue_.empty(); });
        if (queue_.empty()) {
            return;  // shutting down, nothing left to run
        }
        chunk* c = queue_.front();
        queue_.pop_front();
        const work fn = fn_;
        lock.unlock();
        result<void> done = ok();
        try {
            done = fn(*c);
        } catch (const std::exception& e) {
            // A chunk's code does not throw by design; if it does, the window fails and is
            // retried rather than the process ending.
            log::error().err(e.what()).msg("unexpected exception in a target transaction");
            done = error{errc::internal, std::string("unexpected exception: ") + e.what()};
        }
        lock.lock();
        if (!done && !failure_) {
            failure_ = done.error();
        }
        unfinished_.erase(c->sequence);
        changed_.notify_all();
    }
}

}  // namespace molt::replicator
