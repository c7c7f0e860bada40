// A failback run after its checks: the replicator, the changefeed, supervision, shutdown.
#include "failback/failback_run.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "molt/common/flag_text.hpp"
#include "molt/common/log.hpp"
#include "molt/common/redact.hpp"
#include "molt/fetch/child_log.hpp"
#include "molt/fetch/failback.hpp"

namespace molt::fetch {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kept_lines = 30;

std::string json_string(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
            } else {
                out += c;
            }
        }
    }
    return out + "\"";
}

// "running: resolved=..." is healthy; anything else while running (e.g. "transient error: ...")
// means the sink is failing.
bool feed_failing(const changefeed_job& job) {
    if (!job.error.empty() || job.status != "running") {
        return true;  // paused too: nothing is delivered while it is
    }
    return !job.running_status.empty() && job.running_status.rfind("running", 0) != 0;
}

// A job that will never deliver again without someone's action.
bool feed_finished(const changefeed_job& job) {
    return job.status == "failed" || job.status == "canceled" || job.status == "succeeded";
}

}  // namespace

void failback_run::pump(milliseconds max_wait) {
    pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {-1, POLLIN, 0}};
    nfds_t n = 1;
    if (child_ && child_->output_fd() >= 0) {
        fds[1].fd = child_->output_fd();
        n = 2;
    }
    if (poll(fds, n, static_cast<int>(std::max<int64_t>(0, max_wait.count()))) < 0) {
        return;  // EINTR: go round again
    }
    if ((fds[0].revents & POLLIN) != 0) {
        signalfd_siginfo info{};
        while (read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
            if (info.ssi_signo == SIGTERM || info.ssi_signo == SIGINT) {
                if (!stop_requested_) {
                    log::info()
                        .str("signal", strsignal(static_cast<int>(info.ssi_signo)))
                        .msg("received interrupt signal");
                }
                stop_requested_ = true;
            }
        }
    }
    if (child_) {
        child_->read_output([this](std::string_view line) {
            relay_child_line(log::global(), "replicator", line);
            last_lines_.emplace_back(redact_line(line));
            if (last_lines_.size() > kept_lines) {
                last_lines_.pop_front();
            }
        });
        (void)child_->try_wait();
    }
}

std::string failback_run::redact_line(std::string_view line) {
    return log::sanitize(redact_secrets(line));
}

void failback_run::log_last_lines(std::string_view why) {
    std::string text;
    for (const std::string& l : last_lines_) {
        text += l + "\n";
    }
    log::error()
        .str("last_output", text)
        .msg(fmt::format("{}; the replicator's last {} lines are in last_output", why,
                         last_lines_.size()));
}

bool failback_run::spawn_replicator() {
    const std::vector<std::string> argv = build_replicator_argv(molt_flags_, *user_);
    const std::vector<std::string> shown = redacted_replicator_argv(molt_flags_, *user_);
    log::debug()
        .str("command", fmt::format("{} {}", replicator_path_, fmt::join(shown, " ")))
        .msg("executing replicator command");
    auto child = child_process::spawn(replicator_path_, argv, child_env_);
    if (!child) {
        log::error().err(child.error()).msg("error while running the replicator");
        return false;
    }
    child_.emplace(std::move(child).value());
    last_lines_.clear();
    log::info().num("pid", child_->pid()).msg("replicator started");
    registry_.gauge("molt_failback_replicator_up", "1 while the replicator runs").get().set(1);
    return true;
}

failback_run::wait_outcome failback_run::wait_until_healthy() {
    const auto deadline = clock::now() + cfg_.replicator_ready_timeout;
    std::string last_problem = "no answer yet";
    while (clock::now() < deadline) {
        pump(milliseconds(200));
        if (stop_requested_) {
            return wait_outcome::stop_requested;
        }
        if (!child_->running()) {
            return wait_outcome::child_exited;
        }
        auto reply = http_get(diagnostics_, "/_/healthz", milliseconds(2000));
        if (reply && reply->status == 200) {
            log::info()
                .str("address", fmt::format("{}:{}", diagnostics_.host, diagnostics_.port))
                .msg("replicator is ready");
            return wait_outcome::ready;
        }
        last_problem = reply ? fmt::format("HTTP {}: {}", reply->status,
                                           log::sanitize(reply->body.substr(0, 300)))
                             : reply.error().message();
    }
    log::error().str("last_answer", last_problem).msg("the replicator did not become ready");
    return wait_outcome::timed_out;
}

bool failback_run::reconnect_source() {
    if (source_) {
        if (source_->query("SELECT 1")) {
            return true;
        }
        source_.reset();
    }
    auto c = connect_sql(*cfg_.source, "--source",
                         std::chrono::duration_cast<std::chrono::seconds>(cfg_.connect_timeout));
    if (!c) {
        log::warn().err(c.error()).msg("cannot reach the source");
        return false;
    }
    source_ = std::move(c).value();
    return true;
}

bool failback_run::ensure_changefeed() {
    log::info().msg("creating changefeed on the source CRDB database");
    auto jobs = show_changefeed_jobs(*source_);
    if (!jobs) {
        log::error().err(jobs.error()).msg("cannot list the changefeed jobs on the source");
        return false;
    }
    if (auto existing = find_reusable_job(*jobs, spec_)) {
        job_id_ = existing->id;
        if (existing->status == "paused") {
            if (auto r = source_->query("RESUME JOB " + job_id_); !r) {
                log::error().err(r.error()).msg("cannot resume the paused changefeed");
                return false;
            }
        }
        log::info()
            .str("job_id", job_id_)
            .str("status", existing->status)
            .str("sink", spec_.sink_base)
            .msg("reusing the changefeed that already posts to this replicator for these tables");
        return true;
    }
    const std::string group = target_group(*cfg_.target, target_schema_);
    auto staged = staged_checkpoint(*source_, staging_schema_, group);
    if (!staged) {
        log::error().err(staged.error()).msg("cannot read the staging schema's checkpoint");
        return false;
    }
    hlc cursor;
    if (*staged) {
        cursor = **staged;
        log::info()
            .str("cursor", cursor.to_string())
            .str("staging_schema", staging_schema_)
            .msg("the changefeed resumes from the checkpoint in the staging schema");
    } else {
        auto now = source_->query("SELECT cluster_logical_timestamp()");
        if (!now || now->rows.empty() || !now->rows[0][0]) {
            log::error()
                .err(now ? "no result" : now.error().message())
                .msg("cannot read the source's clock");
            return false;
        }
        auto parsed = hlc::parse(*now->rows[0][0]);
        if (!parsed) {
            log::error().err(parsed.error()).msg("cannot read the source's clock");
            return false;
        }
        cursor = *parsed;
        log::info().str("cursor", cursor.to_string()).msg("the changefeed starts from now");
    }
    auto created = source_->query(create_changefeed_sql(spec_, cfg_.changefeed, cursor));
    if (!created) {
        log::error().err(created.error()).msg("cannot create the changefeed");
        return false;
    }
    if (created->rows.empty() || !created->rows[0][0]) {
        log::error().msg("CREATE CHANGEFEED returned no job id");
        return false;
    }
    job_id_ = *created->rows[0][0];
    log::info()
        .str("job_id", job_id_)
        .strs("tables", spec_.tables)
        .str("sink", spec_.sink_base)
        .msg("changefeed created");
    return true;
}

void failback_run::report_progress() {
    if (auto reply = http_get(diagnostics_, "/_/varz", milliseconds(3000));
        reply && reply->status == 200) {
        progress_ = summarize_varz(parse_prometheus_text(reply->body));
    } else {
        log::warn()
            .err(reply ? fmt::format("HTTP {}", reply->status) : reply.error().message())
            .msg("cannot read the replicator's metrics");
    }
    bool job_known = false;
    if (reconnect_source()) {
        if (auto jobs = show_changefeed_jobs(*source_, job_id_); jobs && !jobs->empty()) {
            job_ = jobs->front();
            job_known = true;
        } else if (!jobs) {
            log::warn().err(jobs.error()).msg("cannot read the changefeed job");
            source_.reset();
        }
    }
    auto& rows =
        registry_.gauge("molt_failback_rows_applied",
                        "Rows (upserts and deletes) the replicator applied, per table", {"table"});
    std::string per_table;
    for (const auto& [table, n] : progress_.rows_applied) {
        rows.with({table}).set(n);
        per_table +=
            fmt::format("{}{}={}", per_table.empty() ? "" : " ", table, static_cast<int64_t>(n));
    }
    auto gauge = [&](const char* name, const char* help, const std::optional<double>& v) {
        if (v) {
            registry_.gauge(name, help).get().set(*v);
        }
    };
    gauge("molt_failback_source_lag_seconds",
          "Age of the newest resolved timestamp the replicator received",
          progress_.source_lag_seconds);
    gauge("molt_failback_target_lag_seconds", "Age of the checkpoint the target holds",
          progress_.target_lag_seconds);
    gauge("molt_failback_applied_checkpoint_seconds",
          "The checkpoint the target holds (Unix seconds): every source change at or before it "
          "is on the target",
          progress_.applied_checkpoint_seconds);
    registry_
        .gauge("molt_failback_changefeed_failing",
               "1 while the changefeed reports an error (see /status)")
        .get()
        .set(job_known && feed_failing(job_) ? 1 : 0);

    auto event = job_known && feed_failing(job_) ? log::warn() : log::info();
    event.num("rows_applied", static_cast<int64_t>(progress_.total_rows()))
        .str("tables", per_table);
    if (progress_.source_lag_seconds) {
        event.dbl("source_lag_seconds", *progress_.source_lag_seconds);
    }
    if (progress_.target_lag_seconds) {
        event.dbl("target_lag_seconds", *progress_.target_lag_seconds);
    }
    event.str("changefeed_job", job_id_);
    if (job_known) {
        event.str("changefeed_status", job_.status)
            .str("changefeed_running_status", job_.running_status);
        if (!job_.error.empty()) {
            event.str("changefeed_error", job_.error);
        }
    }
    event.msg(job_known && feed_failing(job_)
                  ? "failback progress: the changefeed is NOT delivering (see changefeed_status "
                    "and changefeed_running_status)"
                  : "failback progress");
    feed_finished_ = job_known && feed_finished(job_);
    publish_status();
}

void failback_run::publish_status() {
    std::string tables;
    for (const auto& [table, n] : progress_.rows_applied) {
        tables += fmt::format("{}{}:{}", tables.empty() ? "" : ",", json_string(table),
                              static_cast<int64_t>(n));
    }
    auto number = [](const std::optional<double>& v) {
        return v ? fmt::format("{}", *v) : std::string("null");
    };
    std::string json = fmt::format(
        "{{\"replicator_pid\":{},\"replicator_running\":{},\"replicator_restarts\":{},"
        "\"staging_schema\":{},\"target_schema\":{},\"changefeed_job\":{},"
        "\"changefeed_status\":{},\"changefeed_running_status\":{},\"changefeed_error\":{},"
        "\"applied_checkpoint_seconds\":{},\"source_lag_seconds\":{},\"target_lag_seconds\":{},"
        "\"rows_applied\":{{{}}}}}",
        child_ ? child_->pid() : 0, child_ && child_->running() ? "true" : "false",
        budget_.restarts(), json_string(staging_schema_),
        json_string(target_group(*cfg_.target, target_schema_)), json_string(job_id_),
        json_string(job_.status), json_string(redact_secrets(job_.running_status)),
        json_string(redact_secrets(job_.error)), number(progress_.applied_checkpoint_seconds),
        number(progress_.source_lag_seconds), number(progress_.target_lag_seconds), tables);
    const std::lock_guard<std::mutex> lock(status_mutex_);
    status_json_ = std::move(json);
}

result<void> failback_run::watch_signals() {
    // Signals are read from a signalfd by this thread; they are blocked before any thread
    // starts, so every thread inherits the mask (the child's is reset before exec).
    sigset_t set;
    sigemptyset(&set);
    for (const int sig : {SIGTERM, SIGINT, SIGCHLD}) {
        sigaddset(&set, sig);
    }
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal_fd_ = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (signal_fd_ < 0) {
        pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
        return error{errc::internal, fmt::format("signalfd: {}", std::strerror(errno))};
    }
    return ok();
}

int failback_run::run() {
    pump(milliseconds(0));  // a SIGTERM during the checks: stop before starting anything
    if (stop_requested_) {
        return 0;
    }
    if (cfg_.metrics_listen_addr.host != "off") {
        auto server = metrics_server::start(cfg_.metrics_listen_addr, registry_, [this] {
            const std::lock_guard<std::mutex> lock(status_mutex_);
            return status_json_;
        });
        if (!server) {
            // As MOLT: molt's own metrics are not worth failing a failback for.
            log::warn().err(server.error()).msg("error exposing metrics endpoints");
        } else {
            metrics_server_ = std::move(server).value();
            log::info()
                .str("address", metrics_server_->address().to_string())
                .msg("serving /metrics, /healthz and /status");
        }
    }

    log::info().msg("starting replicator");
    log::info().msg(fmt::format("staging database name: {}", staging_schema_));
    if (!spawn_replicator()) {
        return 1;
    }
    switch (wait_until_healthy()) {
    case wait_outcome::ready: break;
    case wait_outcome::stop_requested: return shut_down(0);
    case wait_outcome::child_exited:
        log_last_lines(fmt::format("the replicator exited during startup ({})",
                                   describe_exit(*child_->exit_status())));
        return shut_down(1);
    case wait_outcome::timed_out:
        log_last_lines("the replicator did not answer /_/healthz in time");
        return shut_down(1);
    }
    if (!reconnect_source() || !ensure_changefeed()) {
        log::error().msg("error while running the replicator: the changefeed could not be set up");
        return shut_down(1);
    }
    publish_status();
    return supervise();
}

int failback_run::supervise() {
    auto next_progress = clock::now() + cfg_.progress_interval;
    budget_ = restart_budget(cfg_.replicator_max_restarts);
    budget_.ready(clock::now());
    for (;;) {
        if (feed_finished_) {
            log::error()
                .str("job_id", job_id_)
                .str("status", job_.status)
                .str("error", redact_secrets(job_.error))
                .msg(
                    "the changefeed has stopped for good; fix the cause and run molt again (it "
                    "resumes from the staging schema's checkpoint)");
            return shut_down(1);
        }
        pump(std::chrono::duration_cast<milliseconds>(
            std::min<clock::duration>(next_progress - clock::now(), milliseconds(500))));
        if (stop_requested_) {
            return shut_down(0);
        }
        if (!child_->running()) {
            const int status = *child_->exit_status();
            child_->read_output([this](std::string_view line) {
                relay_child_line(log::global(), "replicator", line);
                last_lines_.emplace_back(redact_line(line));
            });
            registry_.gauge("molt_failback_replicator_up", "1 while the replicator runs")
                .get()
                .set(0);
            log_last_lines(
                fmt::format("the replicator exited unexpectedly ({})", describe_exit(status)));
            const auto backoff = budget_.exited(clock::now());
            if (!backoff) {
                log::error()
                    .num("restarts", budget_.restarts())
                    .msg(
                        "error while running the replicator: it keeps exiting; giving up "
                        "(--replicator-max-restarts)");
                return shut_down(1);
            }
            registry_
                .counter("molt_failback_replicator_restarts_total",
                         "Times the replicator was restarted after exiting unexpectedly")
                .get()
                .add();
            log::warn()
                .num("restart", budget_.restarts())
                .num("of", cfg_.replicator_max_restarts)
                .dbl("backoff_seconds", static_cast<double>(backoff->count()))
                .msg("restarting the replicator with the same staging schema (nothing is lost)");
            const auto resume_at = clock::now() + *backoff;
            while (clock::now() < resume_at && !stop_requested_) {
                pump(milliseconds(200));
            }
            if (stop_requested_) {
                return shut_down(0);
            }
            if (!spawn_replicator()) {
                return shut_down(1);
            }
            switch (wait_until_healthy()) {
            case wait_outcome::ready: budget_.ready(clock::now()); break;
            case wait_outcome::stop_requested: return shut_down(0);
            case wait_outcome::child_exited: break;  // restarted on the next round
            case wait_outcome::timed_out:
                // A replicator that never gets ready is no better than one that exited.
                log_last_lines("the restarted replicator did not answer /_/healthz in time");
                child_->signal(SIGKILL);
                while (child_->running()) {
                    pump(milliseconds(100));
                }
                break;
            }
            publish_status();
            continue;
        }
        if (clock::now() >= next_progress) {
            report_progress();
            next_progress = clock::now() + cfg_.progress_interval;
        }
    }
}

int failback_run::shut_down(int code) {
    if (child_ && child_->running()) {
        log::info().num("pid", child_->pid()).msg("stopping the replicator (SIGTERM)");
        child_->signal(SIGTERM);
        const auto deadline = clock::now() + cfg_.replicator_stop_timeout;
        while (child_->running() && clock::now() < deadline) {
            pump(milliseconds(100));
        }
        if (child_->running()) {
            log::error()
                .num("pid", child_->pid())
                .msg(
                    "the replicator did not stop within --replicator-stop-timeout; killing it "
                    "(SIGKILL)");
            child_->signal(SIGKILL);
            while (child_->running()) {
                pump(milliseconds(100));
            }
        } else {
            child_->read_output(
                [](std::string_view line) { relay_child_line(log::global(), "replicator", line); });
            log::info()
                .str("exit", describe_exit(*child_->exit_status()))
                .msg("the replicator stopped");
        }
    }
    if (!job_id_.empty()) {
        if (cfg_.cancel_changefeed_on_exit) {
            if (reconnect_source()) {
                if (auto r = source_->query("CANCEL JOB " + job_id_); r) {
                    log::info().str("job_id", job_id_).msg("changefeed canceled");
                } else {
                    log::error()
                        .err(r.error())
                        .str("job_id", job_id_)
                        .msg("cannot cancel the changefeed");
                    code = 1;
                }
            } else {
                code = 1;
            }
        } else {
            log::info()
                .str("job_id", job_id_)
                .msg(fmt::format("the changefeed keeps running on the source (it retries until a "
                                 "replicator answers again; the same molt command resumes it). "
                                 "To stop it: CANCEL JOB {};",
                                 job_id_));
        }
    }
    return code;
}

int run_failback(const fetch_config& config, std::vector<std::string> problems, std::ostream& err) {
    failback_run run(config);
    if (auto watching = run.watch_signals(); !watching) {
        problems.push_back(watching.error().message());
    }
    // Two rounds, each reporting all it finds: what needs no network (flags, files,
    // certificates, the replicator's command line), then, only when that is clean, the
    // databases (so a wrong command line never waits on connection timeouts).
    run.static_checks(problems);
    if (problems.empty()) {
        run.database_checks(problems);
    }
    if (!problems.empty()) {
        err << "Error: " << describe_problems(problems) << "\n";
        return 1;
    }
    const int code = run.run();
    // The last line: cutover scripts read it to know how molt ended.
    log::info().num("exit_code", code).msg("molt fetch stopped");
    return code;
}

}  // namespace molt::fetch
