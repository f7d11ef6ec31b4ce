// nn/thread_pool.h: the compute thread pool. One pool per process, compute_pool(), runs the
// parallel work of the encoder, the reranker and the decoder, so the process computes on the pool's
// threads (plus its callers') however many callers there are, instead of each call spawning its own.
//
// Sizing: compute_pool() starts on first use with set_compute_threads(n) if that was called, else
// $SAEM_THREADS (a positive integer; anything else is ignored), else
// std::thread::hardware_concurrency(). The calling thread counts as one of them.
//
// Threads: run() may be called from any number of threads at once. Callers take turns (one job has
// the whole pool); a run() issued from inside a job, of this pool or another, runs that job inline
// on the calling thread as job(0, 1), so nested parallel code neither deadlocks nor spawns.
// Between jobs the workers spin briefly, then sleep: a decoder step issues a few hundred jobs of
// microseconds each, and waking a sleeping thread costs more than that.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace saem::nn {

class ThreadPool {
public:
    // threads in all, the caller of run() included (at least 1).
    explicit ThreadPool(int threads);
    // Not while a run() is in progress.
    ~ThreadPool();
    ThreadPool(const ThreadPool &) = delete;
    ThreadPool &operator=(const ThreadPool &) = delete;
    int size() const { return int(workers_.size()) + 1; }
    // Runs job(ith, size()) for ith = 0 .. size() - 1 at once, ith 0 on the calling thread, and
    // returns when all have returned. If the job throws on any thread, the first exception (by ith)
    // is rethrown here once every thread is done; the pool stays usable.
    void run(const std::function<void(int ith, int nth)> &job);

private:
    void worker(int ith);
    std::vector<std::thread> workers_;
    std::mutex callers_;  // held for a whole run(): one job at a time
    const std::function<void(int, int)> *job_ = nullptr;
    std::vector<std::exception_ptr> errors_;  // one per thread, read by run() after the job
    std::atomic<bool> failed_{false};
    std::atomic<uint64_t> epoch_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
};

// The process's pool, started on first use. A child process made by fork() starts its own on its
// first use (the parent's threads do not exist there); objects that kept the parent's pool, such
// as a Decoder loaded before the fork, are not usable in the child.
ThreadPool &compute_pool();
// Sets the size compute_pool() starts with (n >= 1). Returns false, and changes nothing, once the
// pool has started with another size: call it at startup, before any model runs.
bool set_compute_threads(int n);
// The size compute_pool() has, or will start with.
int compute_threads();

}  // namespace saem::nn
