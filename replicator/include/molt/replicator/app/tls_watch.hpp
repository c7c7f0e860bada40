#pragma once
// Keeps the HTTPS server's certificate fresh: --tlsCertificate, --tlsPrivateKey and --tlsClientCA
// are read again on SIGHUP (reload_now) and when one of the files changes (polled every few
// seconds: size, modification time, inode, so a rename over the file counts). New connections
// get the new material; established ones keep theirs. Material that does not load (a key that
// does not match, a file half written, expired) is refused with a log line and the old one stays;
// the next change is tried again, and a certificate not valid yet once it is. The certificate's
// days left are a gauge and, under 30 days, a warning once a day.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "molt/common/metrics.hpp"
#include "molt/replicator/app/periodic_task.hpp"
#include "molt/replicator/server/http_server.hpp"

namespace molt::replicator {

struct tls_files {
    std::string certificate;  ///< empty with --tlsSelfSigned: nothing to watch
    std::string private_key;
    std::string client_ca;  ///< may be empty
};

class tls_watcher {
public:
    /// `loaded`: the material the server started with (for its expiry date).
    tls_watcher(tls_files files, const tls_material& loaded, http_server& server,
                metrics::registry& metrics,
                std::chrono::nanoseconds poll = std::chrono::seconds(2));
    tls_watcher(const tls_watcher&) = delete;
    tls_watcher& operator=(const tls_watcher&) = delete;

    void start();
    /// SIGHUP: read the files now.
    void reload_now();
    /// Asks the watch thread to stop, without waiting; the destructor waits for it.
    void stop();

private:
    struct stamp {
        long long size = -1, mtime_ns = -1, inode = -1;
        bool operator==(const stamp&) const = default;
    };
    [[nodiscard]] std::vector<stamp> stamps() const;
    void reload(std::string_view why);
    void report_expiry();
    void tick(bool woken);

    tls_files files_;
    http_server& server_;
    metrics::gauge& days_left_;
    metrics::counter& reloads_ok_;
    metrics::counter& reloads_failed_;
    std::chrono::system_clock::time_point not_after_;
    std::chrono::steady_clock::time_point last_warning_{};
    bool warned_ = false;
    std::vector<stamp> seen_;
    /// A new certificate refused because it is not valid yet: tried again from then on.
    std::optional<std::chrono::system_clock::time_point> waiting_until_;
    bool startup_change_ = false;  ///< the files changed between loading and watching
    periodic_task task_;           ///< last: stopped and joined before the rest goes
};

}  // namespace molt::replicator
