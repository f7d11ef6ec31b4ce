// nn/thread_pool.h: the thread pool that spreads the decoder's matrix products over cores.
//
// Threads: run() is called by one thread at a time, the pool's owner. Between jobs the workers spin
// briefly, then sleep: a decoder step issues a few hundred jobs of microseconds each, and waking a
// sleeping thread costs more than that.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace saem::nn {

// Runs a job on n threads (the calling thread is thread 0).
class ThreadPool {
public:
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool &operator=(const ThreadPool &) = delete;
    int size() const { return int(workers_.size()) + 1; }
    void run(const std::function<void(int ith, int nth)> &job);

private:
    void worker(int ith);
    std::vector<std::thread> workers_;
    const std::function<void(int, int)> *job_ = nullptr;
    std::atomic<uint64_t> epoch_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
};

}  // namespace saem::nn
