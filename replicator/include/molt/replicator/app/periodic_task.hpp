#pragma once
// A background thread that runs a piece of work every `period`, or at once when woken (SIGHUP):
// the JWT key refresher and the TLS file watcher. stop() asks it to end without waiting (a run
// under way finishes while the server drains); the destructor waits for it.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace molt::replicator {

class periodic_task {
public:
    /// `work(woken)`: woken is true when wake() asked for the run.
    periodic_task(std::chrono::nanoseconds period, std::function<void(bool woken)> work);
    ~periodic_task();
    periodic_task(const periodic_task&) = delete;
    periodic_task& operator=(const periodic_task&) = delete;

    void start();
    /// Runs the work as soon as the thread is free (before start(): right after it).
    void wake();
    void stop();

private:
    void run();

    std::chrono::nanoseconds period_;
    std::function<void(bool)> work_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool woken_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace molt::replicator
