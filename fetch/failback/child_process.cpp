#include "molt/fetch/child_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace molt::fetch {
namespace {

constexpr size_t max_line = 64 * 1024;

int status_code(int raw) {
    if (WIFEXITED(raw)) {
        return WEXITSTATUS(raw);
    }
    if (WIFSIGNALED(raw)) {
        return 128 + WTERMSIG(raw);
    }
    return 255;
}

}  // namespace

result<child_process> child_process::spawn(const std::string& path,
                                           const std::vector<std::string>& args,
                                           const std::vector<std::string>& env) {
    // Everything the child needs is prepared before fork(): after it, in a process that may
    // have threads, only async-signal-safe calls are allowed.
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (const std::string& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    std::vector<std::string> env_text;
    for (char** e = environ; *e != nullptr; ++e) {
        const std::string_view entry(*e);
        const std::string_view name = entry.substr(0, entry.find('='));
        const bool replaced = std::any_of(env.begin(), env.end(), [&](const std::string& v) {
            return v.compare(0, name.size() + 1, std::string(name) + "=") == 0;
        });
        if (!replaced) {
            env_text.emplace_back(entry);
        }
    }
    env_text.insert(env_text.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (std::string& e : env_text) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return error{errc::io_error, fmt::format("cannot create a pipe: {}", std::strerror(errno))};
    }
    // A pipe for exec failures: closed by exec on success, carries errno otherwise.
    int exec_fds[2];
    if (pipe2(exec_fds, O_CLOEXEC) != 0) {
        close(fds[0]);
        close(fds[1]);
        return error{errc::io_error, fmt::format("cannot create a pipe: {}", std::strerror(errno))};
    }
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        const int e = errno;
        close(fds[0]);
        close(fds[1]);
        close(exec_fds[0]);
        close(exec_fds[1]);
        return error{errc::io_error, fmt::format("cannot start {}: {}", path, std::strerror(e))};
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) {  // molt died before prctl took effect
            _exit(1);
        }
        setpgid(0, 0);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, nullptr);
        for (const int sig : {SIGTERM, SIGINT, SIGCHLD, SIGPIPE, SIGHUP}) {
            ::signal(sig, SIG_DFL);
        }
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        const int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
        }
        // Nothing of molt's (listening sockets, database connections) leaks into the child;
        // exec_fds[1] is close-on-exec and reports a failed exec.
        close_range(3, static_cast<unsigned>(exec_fds[1]) - 1, 0);
        close_range(static_cast<unsigned>(exec_fds[1]) + 1, ~0U, 0);
        execve(path.c_str(), argv.data(), envp.data());
        const int e = errno;
        ssize_t ignored = write(exec_fds[1], &e, sizeof e);
        (void)ignored;
        _exit(127);
    }
    close(fds[1]);
    close(exec_fds[1]);
    int exec_errno = 0;
    ssize_t n;
    do {
        n = read(exec_fds[0], &exec_errno, sizeof exec_errno);
    } while (n < 0 && errno == EINTR);
    close(exec_fds[0]);
    if (n == static_cast<ssize_t>(sizeof exec_errno)) {
        int raw = 0;
        waitpid(pid, &raw, 0);
        close(fds[0]);
        return error{errc::io_error,
                     fmt::format("cannot run {}: {}", path, std::strerror(exec_errno))};
    }
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    return child_process(pid, fds[0]);
}

child_process::child_process(child_process&& other) noexcept
    : pid_(other.pid_),
      out_fd_(other.out_fd_),
      status_(other.status_),
      partial_(std::move(other.partial_)) {
    other.pid_ = -1;
    other.out_fd_ = -1;
}

child_process& child_process::operator=(child_process&& other) noexcept {
    if (this != &other) {
        reap_and_close();
        pid_ = other.pid_;
        out_fd_ = other.out_fd_;
        status_ = other.status_;
        partial_ = std::move(other.partial_);
        other.pid_ = -1;
        other.out_fd_ = -1;
    }
    return *this;
}

child_process::~child_process() {
    reap_and_close();
}

void child_process::reap_and_close() {
    if (pid_ > 0 && !status_) {
        kill(pid_, SIGKILL);
        int raw = 0;
        while (waitpid(pid_, &raw, 0) < 0 && errno == EINTR) {
        }
        status_ = status_code(raw);
    }
    close_output();
}

void child_process::close_output() {
    if (out_fd_ >= 0) {
        close(out_fd_);
        out_fd_ = -1;
    }
}

void child_process::read_output(const std::function<void(std::string_view)>& on_line) {
    if (out_fd_ < 0) {
        return;
    }
    char buffer[16384];
    for (;;) {
        const ssize_t n = read(out_fd_, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return;  // EAGAIN: nothing more for now
        }
        if (n == 0) {
            if (!partial_.empty()) {
                on_line(partial_);
                partial_.clear();
            }
            close_output();
            return;
        }
        partial_.append(buffer, static_cast<size_t>(n));
        size_t start = 0;
        for (size_t nl = partial_.find('\n'); nl != std::string::npos;
             nl = partial_.find('\n', start)) {
            on_line(std::string_view(partial_).substr(start, nl - start));
            start = nl + 1;
        }
        partial_.erase(0, start);
        if (partial_.size() > max_line) {
            on_line(std::string_view(partial_).substr(0, max_line));
            partial_.clear();
        }
    }
}

std::optional<int> child_process::try_wait() {
    if (status_ || pid_ <= 0) {
        return status_;
    }
    int raw = 0;
    pid_t r;
    do {
        r = waitpid(pid_, &raw, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == pid_) {
        status_ = status_code(raw);
    }
    return status_;
}

void child_process::signal(int sig) const {
    if (pid_ > 0 && !status_) {
        kill(pid_, sig);
    }
}

result<captured_run> run_and_capture(const std::string& path, const std::vector<std::string>& args,
                                     std::chrono::milliseconds timeout,
                                     const std::vector<std::string>& env) {
    auto child = child_process::spawn(path, args, env);
    if (!child) {
        return std::move(child).error();
    }
    captured_run out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (child->output_fd() >= 0) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            child->signal(SIGKILL);
            return error{errc::timeout,
                         fmt::format("{} did not finish within {} ms", path, timeout.count())};
        }
        pollfd p{child->output_fd(), POLLIN, 0};
        poll(&p, 1, static_cast<int>(left.count()));
        child->read_output([&](std::string_view line) {
            out.output.append(line);
            out.output += '\n';
        });
    }
    for (;;) {
        if (auto status = child->try_wait()) {
            out.exit_status = *status;
            return out;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            child->signal(SIGKILL);
            return error{errc::timeout,
                         fmt::format("{} did not finish within {} ms", path, timeout.count())};
        }
        usleep(10000);
    }
}

std::string describe_exit(int status) {
    if (status > 128 && status < 128 + 65) {
        return fmt::format("signal {} ({})", status - 128, strsignal(status - 128));
    }
    return fmt::format("exit code {}", status);
}

}  // namespace molt::fetch
