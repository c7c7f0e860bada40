#include "molt/replicator/target/session_pool.hpp"

#include <fmt/format.h>

namespace molt::replicator {

session_pool::lease::~lease() {
    if (pool_ != nullptr && session_) {
        const bool broken = broken_ || session_->broken();
        pool_->give_back(std::move(session_), broken);
    }
}

session_pool::session_pool(connect_fn connect, size_t max_sessions, std::string name,
                           std::string flag)
    : connect_(std::move(connect)),
      max_(max_sessions),
      name_(std::move(name)),
      flag_(std::move(flag)) {}

result<session_pool::lease> session_pool::acquire(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        if (!idle_.empty()) {
            auto s = std::move(idle_.back());
            idle_.pop_back();
            return lease(this, std::move(s));
        }
        if (open_ < max_) {
            ++open_;
            lock.unlock();
            auto opened = connect_();
            if (!opened) {
                lock.lock();
                --open_;
                available_.notify_one();
                return std::move(opened).error();
            }
            return lease(this, std::move(opened).value());
        }
        if (available_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
            open_ >= max_) {
            return error{errc::unavailable,
                         fmt::format("all {} {} connections are busy ({})", max_, name_, flag_)};
        }
    }
}

void session_pool::give_back(std::unique_ptr<target_session> s, bool broken) {
    {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (broken) {
            --open_;
        } else {
            idle_.push_back(std::move(s));
        }
    }
    available_.notify_one();
    // A broken session is destroyed here, outside the lock.
}

size_t session_pool::in_use() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return open_ - idle_.size();
}

size_t session_pool::idle() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return idle_.size();
}

session_pool::connect_fn with_session_setting(session_pool::connect_fn connect, std::string sql,
                                              std::string flag, std::string hint) {
    return [connect = std::move(connect), sql = std::move(sql), flag = std::move(flag),
            hint = std::move(hint)]() -> result<std::unique_ptr<target_session>> {
        auto s = connect();
        if (!s) {
            return s;
        }
        if (auto set = (*s)->execute(sql, {}); !set) {
            if (set.error().retry() != retry_class::fatal) {
                return std::move(set).error();  // a lost connection, a lock: retried as any
            }
            return error{errc::invalid_argument,
                         fmt::format("{}: the target refused `{}` ({}): {}", flag, sql, hint,
                                     set.error().message())};
        }
        return s;
    };
}

}  // namespace molt::replicator
