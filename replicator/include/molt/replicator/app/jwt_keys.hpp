#pragma once
// Keeps the JWT verifier's keys in step with the staging schema's jwt_public_keys and
// jwt_revoked_ids: read at start, every --jwtRefresh, and at once on SIGHUP (refresh_now).
// A failed read keeps the keys read before and is logged; so is a key that cannot verify.

#include <chrono>
#include <string>
#include <vector>

#include "molt/common/metrics.hpp"
#include "molt/common/result.hpp"
#include "molt/replicator/app/periodic_task.hpp"
#include "molt/replicator/server/jwt.hpp"
#include "molt/replicator/staging/staging_store.hpp"

namespace molt::replicator {

class jwt_key_refresher {
public:
    jwt_key_refresher(staging_store& store, jwt::verifier& verifier,
                      std::chrono::nanoseconds period, metrics::registry& metrics);
    jwt_key_refresher(const jwt_key_refresher&) = delete;
    jwt_key_refresher& operator=(const jwt_key_refresher&) = delete;

    /// Reads the keys now, on the caller's thread (startup).
    result<void> refresh();
    /// Starts the periodic refresh.
    void start();
    /// Asks the refresh thread to read the keys at once (SIGHUP).
    void refresh_now();
    /// Asks the refresh thread to stop, without waiting (a read under way ends by its own
    /// timeout while the server drains); the destructor waits for it.
    void stop();

private:
    staging_store& store_;
    jwt::verifier& verifier_;
    metrics::gauge& last_refresh_;
    metrics::counter& errors_;
    std::string keys_seen_ = "\n";            ///< the ids of the usable keys and the revoked count
    std::vector<std::string> problems_seen_;  ///< the unusable keys, warned of once per change
    std::string error_seen_;  ///< the last read error logged (empty after a successful read)
    bool read_once_ = false;  ///< whether the keys were ever read
    periodic_task task_;      ///< last: stopped and joined before the rest goes
};

}  // namespace molt::replicator
