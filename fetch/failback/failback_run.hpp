#pragma once
// The state of one failback run, shared by its two halves: preflight (failback_preflight.cpp:
// every check before anything starts) and the run itself (failback_run.cpp: the replicator,
// the changefeed, supervision, shutdown). Private to fetch/.

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "molt/common/metrics.hpp"
#include "molt/fetch/catalog.hpp"
#include "molt/fetch/changefeed.hpp"
#include "molt/fetch/child_process.hpp"
#include "molt/fetch/fetch_flags.hpp"
#include "molt/fetch/https_client.hpp"
#include "molt/fetch/metrics_server.hpp"
#include "molt/fetch/progress.hpp"
#include "molt/fetch/replicator_args.hpp"
#include "molt/fetch/restart_budget.hpp"
#include "molt/fetch/sql_client.hpp"
#include "molt/proto/sink_config.hpp"

namespace molt::fetch {

class failback_run {
public:
    explicit failback_run(const fetch_config& cfg) : cfg_(cfg) {}
    failback_run(const failback_run&) = delete;
    failback_run& operator=(const failback_run&) = delete;
    ~failback_run();

    /// Checks that need no database: replicator flags and binary, certificates, the
    /// replicator's own verdict on its command line (--dryRun). Appends to `problems`.
    void static_checks(std::vector<std::string>& problems);
    /// Connects to both databases and checks them; selects the tables. Appends to `problems`.
    void database_checks(std::vector<std::string>& problems);
    /// Blocks SIGTERM, SIGINT and SIGCHLD and reads them from a signalfd from now on (call
    /// first, before any thread exists).
    [[nodiscard]] result<void> watch_signals();
    /// Everything after the checks; returns the exit code.
    [[nodiscard]] int run();

private:
    // failback_run.cpp
    enum class wait_outcome { ready, child_exited, stop_requested, timed_out };
    [[nodiscard]] bool spawn_replicator();
    [[nodiscard]] wait_outcome wait_until_healthy();
    [[nodiscard]] bool ensure_changefeed();
    [[nodiscard]] int supervise();
    [[nodiscard]] int shut_down(int code);
    void pump(std::chrono::milliseconds max_wait);
    void report_progress();
    void log_last_lines(std::string_view why);
    [[nodiscard]] static std::string redact_line(std::string_view line);
    [[nodiscard]] bool reconnect_source();
    void publish_status();

    const fetch_config& cfg_;
    std::optional<user_replicator_flags> user_;
    std::string replicator_path_;
    std::string staging_schema_;
    std::vector<replicator_flag> molt_flags_;
    std::string temp_dir_;                ///< 0700: the client CA, the password file
    std::vector<std::string> child_env_;  ///< added to the replicator's environment
    proto::sink_query sink_;
    http_target diagnostics_;               ///< where /_/healthz and /_/varz are served
    bool diagnostics_check_target_ = true;  ///< /_/healthz there checks target and staging

    std::unique_ptr<sql_client> source_;
    std::unique_ptr<sql_client> target_;
    table_selection selection_;
    std::string target_schema_;
    changefeed_spec spec_;
    std::string job_id_;

    std::optional<child_process> child_;
    std::deque<std::string> last_lines_;
    int signal_fd_ = -1;
    bool stop_requested_ = false;
    restart_budget budget_{0};    ///< set up by supervise()
    bool feed_finished_ = false;  ///< the job failed or was canceled: molt cannot go on

    metrics::registry registry_;
    std::unique_ptr<metrics_server> metrics_server_;
    std::mutex status_mutex_;
    std::string status_json_ = "{}";
    replicator_progress progress_;
    changefeed_job job_;
};

}  // namespace molt::fetch
