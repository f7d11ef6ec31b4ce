// generator/poller.h: a thread that calls a check every interval until the check returns true or
// stop() is called (or the Poller is destroyed): how a waiting request notices, while nothing
// else wakes it, that its client left, its server is stopping or it was cancelled.
//
// Threads: construct, stop() and destroy on one thread; check runs on the Poller's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace saem {

class Poller {
public:
    Poller(std::function<bool()> check, std::chrono::milliseconds interval)
        : thread_([this, check = std::move(check), interval] {
              std::unique_lock lock(mutex_);
              while (!done_ && !check()) wake_.wait_for(lock, interval);
          }) {}
    ~Poller() { stop(); }
    Poller(const Poller &) = delete;
    Poller &operator=(const Poller &) = delete;
    void stop() {
        if (!thread_.joinable()) return;
        {
            std::lock_guard lock(mutex_);
            done_ = true;
        }
        wake_.notify_one();
        thread_.join();
    }

private:
    std::mutex mutex_;
    std::condition_variable wake_;
    bool done_ = false;
    std::thread thread_;  // last: started once the members above exist
};

}  // namespace saem
