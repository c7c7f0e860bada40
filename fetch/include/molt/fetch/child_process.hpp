#pragma once
// A child process as molt runs the replicator: its stdout and stderr on one pipe (read line by
// line by the caller), its own process group (molt alone decides when it gets a signal), every
// signal unblocked and reset, and PR_SET_PDEATHSIG = SIGTERM so it drains and exits when molt
// dies, even by SIGKILL (no orphan keeps the port). The death signal is tied to the thread that
// spawned the child: spawn from a thread that lives as long as molt runs (the main thread).

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "molt/common/result.hpp"

namespace molt::fetch {

class child_process {
public:
    /// Starts `path` with `args` (argv[1...]), with molt's environment plus `env` ("K=V",
    /// replacing a variable of the same name).
    [[nodiscard]] static result<child_process> spawn(const std::string& path,
                                                     const std::vector<std::string>& args,
                                                     const std::vector<std::string>& env = {});

    child_process(child_process&& other) noexcept;
    child_process& operator=(child_process&& other) noexcept;
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    /// Kills (SIGKILL) and reaps a child still running: never leaves one behind.
    ~child_process();

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }
    /// The read end of the output pipe (non-blocking), for poll(); -1 after EOF.
    [[nodiscard]] int output_fd() const noexcept { return out_fd_; }

    /// Reads what is available and calls `on_line` for each complete line (without the
    /// newline; over-long lines are cut at 64 KiB). At EOF a last partial line is delivered and
    /// the pipe is closed.
    void read_output(const std::function<void(std::string_view)>& on_line);

    /// Reaps the child if it has exited: its exit code, or 128 + the signal that ended it.
    [[nodiscard]] std::optional<int> try_wait();
    /// Sends a signal (no-op once reaped).
    void signal(int sig) const;
    [[nodiscard]] bool running() const noexcept { return pid_ > 0 && !status_; }
    [[nodiscard]] std::optional<int> exit_status() const noexcept { return status_; }

private:
    child_process(pid_t pid, int out_fd) : pid_(pid), out_fd_(out_fd) {}
    void close_output();
    void reap_and_close();

    pid_t pid_ = -1;
    int out_fd_ = -1;
    std::optional<int> status_;
    std::string partial_;
};

struct captured_run {
    int exit_status = 0;
    std::string output;  ///< stdout and stderr together
};

/// Runs a program to completion (killed after `timeout`), capturing its output.
[[nodiscard]] result<captured_run> run_and_capture(const std::string& path,
                                                   const std::vector<std::string>& args,
                                                   std::chrono::milliseconds timeout,
                                                   const std::vector<std::string>& env = {});

/// "exit code 1", "signal 9 (Killed)".
[[nodiscard]] std::string describe_exit(int status);

}  // namespace molt::fetch
