// generator/queue.h: a bounded queue of generation jobs in front of one decoder.
//
// A decoder holds one sequence, so answers are generated one at a time. Jobs are admitted up to a
// capacity (the running job plus those waiting); beyond it submit() refuses at once with QueueFull
// (the server's 429 with Retry-After) rather than letting callers pile up behind the decoder. Jobs
// run in arrival order on the queue's own thread, the only thread that touches the decoder. A
// job's Ticket is how its submitter waits and cancels: a waiting job that is cancelled leaves the
// queue at once and frees its place; a running one sees cancelled() (the job checks it at each
// token, by returning false from its TextSink).
//
// Threads: submit() and stats() from any thread; a Ticket's methods from any thread. The
// destructor cancels what waits, tells the running job to stop, and joins.
#pragma once

#include "nn/decoder.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace saem {

// submit() on a full queue. retry_after_seconds: how long until a place is likely free (the mean
// job time so far, times the jobs ahead), at least 1.
struct QueueFull : std::runtime_error {
    int retry_after_seconds = 1;
    QueueFull(const std::string &what, int retry_after) : std::runtime_error(what), retry_after_seconds(retry_after) {}
};

// submit() after close(): the server is stopping.
struct QueueClosed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Thrown by a job that saw its ticket cancelled, so its submitter gets no partial answer as if
// it were whole; the queue counts it as cancelled, not failed.
struct GenerationCancelled : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class GenerationQueue {
    struct Core;

public:
    class Ticket {
    public:
        // Asks the job to stop: a waiting job is dropped, a running one sees cancelled(). No effect
        // once the job has ended.
        void cancel();
        bool cancelled() const;
        // The flag cancel() sets, for GenerateOptions::cancel (read at every decoder step).
        const std::atomic<bool> &cancel_flag() const { return cancelled_; }
        // Waits up to timeout for the job to end (finished, failed or dropped); true once it has.
        bool wait_for(std::chrono::milliseconds timeout) const;
        // After the end: rethrows the job's exception, if it threw.
        void rethrow_if_failed() const;
        // True when the job ran (false: cancelled while it waited).
        bool ran() const;

    private:
        friend class GenerationQueue;
        friend struct Core;
        enum class State { waiting, running, ended };
        void drop_waiting();
        std::shared_ptr<Core> core_;
        std::function<void(nn::Decoder &, const Ticket &)> job_;
        State state_ = State::waiting;  // guarded by core_->mutex
        bool ran_ = false;
        std::atomic<bool> cancelled_{false};
        std::exception_ptr error_;
    };
    // Runs on the queue's thread; reads ticket.cancelled() to stop early.
    using Job = std::function<void(nn::Decoder &, const Ticket &)>;

    struct Stats {
        size_t capacity = 0, running = 0, waiting = 0;
        uint64_t completed = 0, failed = 0, cancelled = 0, refused = 0;
        double mean_seconds = 0;  // of the jobs that ran
    };

    // capacity: jobs admitted at once, the running one included (at least 1).
    GenerationQueue(std::shared_ptr<nn::Decoder> decoder, size_t capacity);
    ~GenerationQueue();
    GenerationQueue(const GenerationQueue &) = delete;
    GenerationQueue &operator=(const GenerationQueue &) = delete;

    // Queues job; throws QueueFull when capacity jobs are admitted already, QueueClosed after
    // close().
    std::shared_ptr<Ticket> submit(Job job);
    // Throws (and counts the refusal) as submit() would if called now: lets a caller refuse
    // before costly preparation; submit() still decides.
    void check_room();
    Stats stats() const;
    // Refuses new jobs from now on and cancels every admitted one, waiting or running (a server
    // stopping).
    void close();

private:
    std::shared_ptr<Core> core_;
    std::thread thread_;
};

}  // namespace saem
