#pragma once
// A pool of target sessions, opened lazily up to a maximum. acquire() waits up to a deadline for
// a free session (errc::unavailable after it: the server answers 503). A lease returns its
// session when it ends, unless it was marked broken (then the session is closed).
//
// Thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "molt/common/result.hpp"
#include "molt/replicator/core/target.hpp"

namespace molt::replicator {

class session_pool {
public:
    using connect_fn = std::function<result<std::unique_ptr<target_session>>()>;

    class lease {
    public:
        lease(session_pool* pool, std::unique_ptr<target_session> s)
            : pool_(pool), session_(std::move(s)) {}
        lease(lease&&) noexcept = default;
        lease& operator=(lease&&) noexcept = default;
        lease(const lease&) = delete;
        lease& operator=(const lease&) = delete;
        ~lease();

        target_session& operator*() const noexcept { return *session_; }
        target_session* operator->() const noexcept { return session_.get(); }
        /// The session must not be reused (its connection failed).
        void mark_broken() noexcept { broken_ = true; }

    private:
        session_pool* pool_;
        std::unique_ptr<target_session> session_;
        bool broken_ = false;
    };

    /// `name` and `flag` word the error when every session is busy ("target",
    /// "--targetMaxPoolSize").
    session_pool(connect_fn connect, size_t max_sessions, std::string name = "target",
                 std::string flag = "--targetMaxPoolSize");

    [[nodiscard]] result<lease> acquire(std::chrono::steady_clock::time_point deadline);

    [[nodiscard]] size_t in_use() const;
    [[nodiscard]] size_t idle() const;
    [[nodiscard]] size_t max_sessions() const noexcept { return max_; }

private:
    void give_back(std::unique_ptr<target_session> s, bool broken);

    connect_fn connect_;
    size_t max_;
    std::string name_;
    std::string flag_;
    mutable std::mutex mutex_;
    std::condition_variable available_;
    std::vector<std::unique_ptr<target_session>> idle_;
    size_t open_ = 0;  ///< sessions idle or leased, plus those being opened
};

/// Every session `connect` opens first runs `sql` (a session setting); when the database refuses
/// it (a fatal error, such as a missing privilege), the session is closed and the error
/// (errc::invalid_argument: a configuration the target does not allow) names `flag`, the
/// statement, `hint` and the database's message; other failures pass through as they are.
[[nodiscard]] session_pool::connect_fn with_session_setting(session_pool::connect_fn connect,
                                                            std::string sql, std::string flag,
                                                            std::string hint);

}  // namespace molt::replicator
