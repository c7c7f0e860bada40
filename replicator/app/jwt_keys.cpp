#include "molt/replicator/app/jwt_keys.hpp"

#include "molt/common/log.hpp"

namespace molt::replicator {

jwt_key_refresher::jwt_key_refresher(staging_store& store, jwt::verifier& verifier,
                                     std::chrono::nanoseconds period, metrics::registry& metrics)
    : store_(store),
      verifier_(verifier),
      last_refresh_(metrics
                        .gauge("jwt_last_refresh_time",
                               "When the JWT public keys and revoked ids were last read (Unix "
                               "seconds)")
                        .get()),
      errors_(metrics
                  .counter("jwt_refresh_errors_total",
                           "Failed reads of the JWT public keys and revoked ids")
                  .get()),
      task_(period, [this](bool /*woken*/) { (void)refresh(); }) {}  // a failure is logged there

result<void> jwt_key_refresher::refresh() {
    auto stored = store_.read_jwt_keys();
    if (!stored) {
        errors_.add();
        // Logged when the error changes; jwt_refresh_errors_total counts every one.
        if (stored.error().message() != error_seen_) {
            error_seen_ = stored.error().message();
            log::warn()
                .err(stored.error())
                .num("keys", static_cast<int64_t>(verifier_.key_count()))
                .msg(read_once_ ? "cannot read the JWT public keys; the keys read before stay in "
                                  "use"
                                : "cannot read the JWT public keys; none has been read yet, so "
                                  "every write is refused (401) until they are");
        }
        return stored.error();
    }
    read_once_ = true;
    error_seen_.clear();
    jwt::key_set keys;
    std::string ids;
    for (auto& [id, pem] : stored->keys) {
        ids += (ids.empty() ? "" : ",") + id;
        keys.keys.push_back({id, pem});
    }
    keys.revoked_ids = std::move(stored->revoked_ids);
    // Each unusable key is named when the set of problems changes, not at every refresh.
    std::vector<std::string> problems = verifier_.replace(keys);
    if (problems != problems_seen_) {
        for (const std::string& problem : problems) {
            log::warn().msg(problem + "; it is ignored (jwt_public_keys)");
        }
        problems_seen_ = std::move(problems);
    }
    last_refresh_.set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
    // Logged when the set of keys (by id) or the number of revocations changes.
    const size_t usable = verifier_.key_count();
    const std::string seen = ids + "\n" + std::to_string(keys.revoked_ids.size());
    if (seen != keys_seen_) {
        keys_seen_ = seen;
        log::info()
            .num("keys", static_cast<int64_t>(usable))
            .str("keyIds", ids)
            .num("revokedIds", static_cast<int64_t>(keys.revoked_ids.size()))
            .str("stagingSchema", store_.location().to_string())
            .msg("JWT public keys loaded");
    }
    return {};
}

void jwt_key_refresher::start() {
    task_.start();
}

void jwt_key_refresher::refresh_now() {
    task_.wake();
}

void jwt_key_refresher::stop() {
    task_.stop();
}

}  // namespace molt::replicator
