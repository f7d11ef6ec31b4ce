// The compute pool. Workers wait on an epoch counter (spinning, then sleeping on it); run() bumps
// the epoch to hand out a job, does its own share, and spins until the workers' pending count
// reaches zero. Callers are serialised by a mutex held for the whole run.
#include "nn/thread_pool.h"

#include <pthread.h>

#include <algorithm>
#include <cstdlib>

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

// Pauses a waiting thread spins before it sleeps (a worker) or yields (a caller whose own share is
// done): a few milliseconds, far longer than the gap between a decoder step's jobs.
constexpr int kSpins = 200000;

// Set on a pool's worker threads, and on a caller's thread while it runs its share of a job: a
// run() from there would wait for a pool it is itself part of, so it runs the job inline instead.
thread_local bool in_job = false;

struct InJob {
    InJob() { in_job = true; }
    ~InJob() { in_job = false; }
};

}  // namespace

ThreadPool::ThreadPool(int threads) : errors_(size_t(std::max(1, threads))) {
    for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
    stop_.store(true);
    epoch_.fetch_add(1);
    epoch_.notify_all();
    for (auto &t : workers_) t.join();
}

void ThreadPool::worker(int ith) {
    in_job = true;
    uint64_t seen = 0;
    for (;;) {
        uint64_t e = epoch_.load(std::memory_order_acquire);
        for (int spin = 0; e == seen && spin < kSpins; ++spin) {
            cpu_relax();
            e = epoch_.load(std::memory_order_acquire);
        }
        if (e == seen) {
            epoch_.wait(seen, std::memory_order_acquire);
            continue;
        }
        seen = e;
        if (stop_.load()) return;
        // An exception must not leave the thread (std::terminate): it is handed to run().
        try {
            (*job_)(ith, size());
        } catch (...) {
            errors_[size_t(ith)] = std::current_exception();
            failed_.store(true, std::memory_order_relaxed);
        }
        // Release: run() reads errors_ and failed_ after it sees the count reach zero.
        pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
}

void ThreadPool::run(const std::function<void(int, int)> &job) {
    if (in_job) {
        job(0, 1);
        return;
    }
    std::lock_guard<std::mutex> lock(callers_);
    if (workers_.empty()) {
        InJob mark;
        job(0, 1);
        return;
    }
    job_ = &job;
    pending_.store(int(workers_.size()), std::memory_order_release);
    epoch_.fetch_add(1, std::memory_order_acq_rel);
    epoch_.notify_all();
    {
        InJob mark;
        try {
            job(0, size());
        } catch (...) {  // kept until the workers are done: they still use job
            errors_[0] = std::current_exception();
            failed_.store(true, std::memory_order_relaxed);
        }
    }
    for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
        if (spin < kSpins) cpu_relax();
        else std::this_thread::yield();
    }
    if (failed_.load(std::memory_order_relaxed)) {
        failed_.store(false, std::memory_order_relaxed);
        std::exception_ptr first;
        for (auto &e : errors_) {
            if (!first) first = e;
            e = nullptr;
        }
        std::rethrow_exception(first);
    }
}

// ---- the process's pool ---------------------------------------------------------------------------

namespace {

std::mutex setup;                        // guards requested and the start of the pool
int requested = 0;                       // set_compute_threads; 0: not called
std::atomic<ThreadPool *> started{nullptr};

int planned_threads() {
    if (requested > 0) return requested;
    if (const char *env = std::getenv("SAEM_THREADS")) {
        char *end = nullptr;
        long n = std::strtol(env, &end, 10);
        if (end != env && *end == '\0' && n >= 1) return int(std::min(n, 1024L));
    }
    return int(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

ThreadPool &compute_pool() {
    if (ThreadPool *p = started.load(std::memory_order_acquire)) return *p;
    std::lock_guard<std::mutex> lock(setup);
    if (!started.load(std::memory_order_relaxed)) {
        // In a forked child the parent's workers do not exist: forget its pool (leaked, as its
        // threads' stacks are) so the child starts its own.
        static const int registered = pthread_atfork(nullptr, nullptr, [] { started.store(nullptr); });
        (void)registered;
        // Never deleted: a thread may still be inside run() while the process exits (an HTTP
        // request when main returns); the workers end with the process.
        started.store(new ThreadPool(planned_threads()), std::memory_order_release);
    }
    return *started.load(std::memory_order_relaxed);
}

bool set_compute_threads(int n) {
    n = std::max(1, n);
    std::lock_guard<std::mutex> lock(setup);
    if (ThreadPool *p = started.load()) return p->size() == n;
    requested = n;
    return true;
}

int compute_threads() {
    std::lock_guard<std::mutex> lock(setup);
    if (ThreadPool *p = started.load()) return p->size();
    return planned_threads();
}

}  // namespace saem::nn
