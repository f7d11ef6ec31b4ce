// The decoder's thread pool: workers wait on an epoch counter, spinning, then sleeping on it.
#include "nn/thread_pool.h"

#include <algorithm>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace saem::nn {

namespace {
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int threads) {
    for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true);
    epoch_.fetch_add(1);
    epoch_.notify_all();
    for (auto &t : workers_) t.join();
}

void ThreadPool::worker(int ith) {
    uint64_t seen = 0;
    for (;;) {
        uint64_t e = epoch_.load(std::memory_order_acquire);
        for (int spin = 0; e == seen && spin < 200000; ++spin) {
            cpu_relax();
            e = epoch_.load(std::memory_order_acquire);
        }
        if (e == seen) {
            epoch_.wait(seen, std::memory_order_acquire);
            continue;
        }
        seen = e;
        if (stop_.load()) return;
        (*job_)(ith, size());
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::run(const std::function<void(int, int)> &job) {
    if (workers_.empty()) {
        job(0, 1);
        return;
    }
    job_ = &job;
    pending_.store(int(workers_.size()), std::memory_order_release);
    epoch_.fetch_add(1, std::memory_order_acq_rel);
    epoch_.notify_all();
    job(0, size());
    while (pending_.load(std::memory_order_acquire) != 0) cpu_relax();
}

}  // namespace saem::nn
