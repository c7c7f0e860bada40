#pragma once
// fault_proxy: a TCP proxy for tests that sits between a client (the replicator, libpq, a shell
// script) and a server (PostgreSQL, MariaDB, staging) and injects network faults, switched at
// run time from any thread:
//
//   pass        forward everything (clears every fault below)
//   latency     hold each chunk read for the given time before writing it, in each direction
//   reset       RST every open connection now; with refuse_new, also RST each new one at accept
//               until pass()
//   blackhole   accept, forward nothing, close nothing: the stalled server whose kernel still
//               acknowledges (a frozen process, a hung middlebox), which only the client's own
//               timers can detect. Data (and EOFs) already read are held, not dropped: pass()
//               releases them, like a healed partition. New connections are accepted but not
//               connected to the target until pass().
//   cut_after   forward at most N bytes in a direction of each connection (counted from its
//               start), then RST both sides; `either` counts each direction on its own
//
// Faults combine (latency with cut_after, say); blackhole and reset-refuse are one mode, the
// last set wins. Nothing is random. Counters: connections accepted and open, bytes forwarded
// each way, and connections reset by a fault. The control protocol (command(), and a TCP port
// for shell scripts, listen_control()) takes one line per command and answers one line:
//
//   pass | latency MS | reset [refuse] | blackhole | cut-after N [up|down|either] | stats
//
// answered `ok`, the stats line, or `error: ...`. Asio stays inside fault_proxy.cpp.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace molt::test {

/// up: client to target; down: target to client; either: whichever reaches the bound first.
enum class fault_direction { up, down, either };

struct fault_proxy_stats {
    uint64_t accepted = 0;    ///< connections accepted (refused ones included)
    uint64_t active = 0;      ///< connections open now
    uint64_t bytes_up = 0;    ///< forwarded client -> target
    uint64_t bytes_down = 0;  ///< forwarded target -> client
    uint64_t resets = 0;      ///< connections reset by a fault (reset, refuse, cut_after)
};

class fault_proxy {
public:
    /// Listens on listen_host:listen_port (0: a free port, see port()) and forwards each
    /// connection to target_host:target_port (resolved once, here). Throws on failure.
    fault_proxy(const std::string& target_host, uint16_t target_port,
                const std::string& listen_host = "127.0.0.1", uint16_t listen_port = 0);
    /// Closes every connection and stops the proxy's thread.
    ~fault_proxy();
    fault_proxy(const fault_proxy&) = delete;
    fault_proxy& operator=(const fault_proxy&) = delete;

    /// The port clients connect to.
    [[nodiscard]] uint16_t port() const noexcept;

    void pass();
    void latency(std::chrono::milliseconds each_way);
    /// Returns once every connection open at the call has been reset.
    void reset(bool refuse_new = false);
    void blackhole();
    void cut_after(uint64_t bytes, fault_direction direction = fault_direction::either);

    [[nodiscard]] fault_proxy_stats stats() const;
    /// `accepted=A active=O up=U down=D resets=R mode=pass|blackhole|refuse latency_ms=L
    /// cut_after=N cut_direction=up|down|either` (cut_after=0: no cut).
    [[nodiscard]] std::string stats_line() const;

    /// Runs one control line (see above) and returns the answer, without a newline.
    [[nodiscard]] std::string command(std::string_view line);

    /// Serves the control protocol on host:port (0: a free port); returns the port.
    uint16_t listen_control(const std::string& host = "127.0.0.1", uint16_t port = 0);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace molt::test
