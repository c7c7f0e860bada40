#include "molt/replicator/app/tls_watch.hpp"

#include <sys/stat.h>

#include <cmath>

#include <fmt/format.h>

#include "molt/common/log.hpp"

namespace molt::replicator {
namespace {

constexpr auto warn_below = std::chrono::hours(24 * 30);
constexpr auto warn_every = std::chrono::hours(24);

}  // namespace

tls_watcher::tls_watcher(tls_files files, const tls_material& loaded, http_server& server,
                         metrics::registry& metrics, std::chrono::nanoseconds poll)
    : files_(std::move(files)),
      server_(server),
      days_left_(metrics
                     .gauge("tls_certificate_expiry_days",
                            "Days until the HTTPS server's certificate expires (negative: "
                            "expired)")
                     .get()),
      reloads_ok_(
          metrics.counter("tls_reloads_total", "TLS material loaded again, by outcome", {"outcome"})
              .with({"ok"})),
      reloads_failed_(
          metrics.counter("tls_reloads_total", "TLS material loaded again, by outcome", {"outcome"})
              .with({"refused"})),
      task_(poll, [this](bool woken) { tick(woken); }) {
    if (auto when = validity_of(loaded.certificate_pem)) {
        not_after_ = when->not_after;
    }
    seen_ = stamps();
    // The files were read before the databases were reached: if they changed since, read them
    // again at once.
    if (!files_.certificate.empty()) {
        auto now = load_tls_material(files_.certificate, files_.private_key);
        if (!now || now->certificate_pem != loaded.certificate_pem ||
            now->private_key_pem != loaded.private_key_pem) {
            startup_change_ = true;
            task_.wake();
        }
    }
    report_expiry();
}

void tls_watcher::start() {
    task_.start();
}

void tls_watcher::reload_now() {
    task_.wake();
}

void tls_watcher::stop() {
    task_.stop();
}

std::vector<tls_watcher::stamp> tls_watcher::stamps() const {
    std::vector<stamp> out;
    for (const std::string* path : {&files_.certificate, &files_.private_key, &files_.client_ca}) {
        stamp s;
        struct stat st {};
        if (!path->empty() && ::stat(path->c_str(), &st) == 0) {
            s.size = static_cast<long long>(st.st_size);
            s.mtime_ns = static_cast<long long>(st.st_mtim.tv_sec) * 1'000'000'000LL +
                         static_cast<long long>(st.st_mtim.tv_nsec);
            s.inode = static_cast<long long>(st.st_ino);
        }
        out.push_back(s);
    }
    return out;
}

void tls_watcher::reload(std::string_view why) {
    waiting_until_.reset();
    auto material = load_tls_material(files_.certificate, files_.private_key);
    std::optional<certificate_validity> validity;
    if (material) {
        material->client_ca_file = files_.client_ca;
        if (auto dates = validity_of(material->certificate_pem)) {
            validity = *dates;
        }
    }
    // A certificate outside its validity (a stale copy put back) would fail every handshake.
    const auto now = std::chrono::system_clock::now();
    result<void> installed = ok();
    if (!material) {
        installed = material.error();
    } else if (!validity) {
        installed = error{errc::tls_error, fmt::format("--tlsCertificate \"{}\": its validity "
                                                       "dates cannot be read",
                                                       files_.certificate)};
    } else if (now >= validity->not_after) {
        installed = error{errc::tls_error,
                          fmt::format("--tlsCertificate \"{}\" has expired", files_.certificate)};
    } else if (now < validity->not_before) {
        installed = error{errc::tls_error,
                          fmt::format("--tlsCertificate \"{}\" is not valid yet (it will be tried "
                                      "again once it is)",
                                      files_.certificate)};
        waiting_until_ = validity->not_before;
    } else {
        installed = server_.reload_tls(*material);
    }
    if (!installed) {
        reloads_failed_.add();
        log::error()
            .str("reason", std::string(why))
            .err(installed.error())
            .msg("new TLS certificate refused; the one in use stays");
        return;
    }
    reloads_ok_.add();
    not_after_ = validity->not_after;
    warned_ = false;
    log::info()
        .str("reason", std::string(why))
        .str("tlsCertificate", files_.certificate)
        .str("tlsClientCA", files_.client_ca)
        .msg("TLS certificate reloaded; new connections use it");
    report_expiry();
}

void tls_watcher::report_expiry() {
    if (not_after_ == std::chrono::system_clock::time_point{}) {
        return;
    }
    const auto left = not_after_ - std::chrono::system_clock::now();
    const double days = std::chrono::duration<double>(left).count() / 86400.0;
    days_left_.set(days);
    const auto now = std::chrono::steady_clock::now();
    if (left < warn_below && (!warned_ || now - last_warning_ >= warn_every)) {
        warned_ = true;
        last_warning_ = now;
        auto event = left.count() <= 0 ? log::error() : log::warn();
        event
            .str("tlsCertificate",
                 files_.certificate.empty() ? "(self-signed)" : files_.certificate)
            .num("daysLeft", static_cast<int64_t>(std::floor(days)))
            .msg(left.count() <= 0 ? "the HTTPS certificate has expired: replace it, then send "
                                     "SIGHUP"
                                   : "the HTTPS certificate expires soon: replace the files, "
                                     "then send SIGHUP (or let the replicator notice them)");
    }
}

void tls_watcher::tick(bool woken) {
    if (!files_.certificate.empty()) {
        auto now = stamps();
        const bool valid_now =
            waiting_until_ && std::chrono::system_clock::now() >= *waiting_until_;
        if (woken || now != seen_ || valid_now) {
            seen_ = std::move(now);
            reload(startup_change_ ? "the files changed while the replicator started"
                   : woken         ? "SIGHUP"
                   : valid_now     ? "the new certificate is valid now"
                                   : "a file changed");
            startup_change_ = false;
        }
    }
    report_expiry();
}

}  // namespace molt::replicator
