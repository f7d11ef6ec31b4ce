#include "generator/queue.h"

#include <algorithm>
#include <cmath>

namespace saem {

// Shared by the queue and its tickets, so a ticket outliving the queue stays valid.
struct GenerationQueue::Core {
    mutable std::mutex mutex;
    std::condition_variable work;   // the queue's thread: a job waits, or stop
    std::condition_variable ended;  // tickets: a job ended
    std::deque<std::shared_ptr<Ticket>> waiting;
    std::shared_ptr<Ticket> running;
    bool stopping = false;
    Stats stats;
    double total_seconds = 0;
    uint64_t ran = 0;
};

// Under the core's lock: a waiting job dropped, its captures (retrieved sources, sinks) released.
void GenerationQueue::Ticket::drop_waiting() {
    cancelled_ = true;
    state_ = State::ended;
    job_ = nullptr;
    ++core_->stats.cancelled;
}

void GenerationQueue::Ticket::cancel() {
    std::lock_guard lock(core_->mutex);
    if (state_ == State::ended) return;
    cancelled_ = true;
    if (state_ != State::waiting) return;  // the running job sees cancelled() at its next token
    auto &w = core_->waiting;
    w.erase(std::remove_if(w.begin(), w.end(), [this](const auto &t) { return t.get() == this; }), w.end());
    drop_waiting();
    core_->ended.notify_all();
}

bool GenerationQueue::Ticket::cancelled() const { return cancelled_.load(); }

bool GenerationQueue::Ticket::wait_for(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(core_->mutex);
    return core_->ended.wait_for(lock, timeout, [this] { return state_ == State::ended; });
}

void GenerationQueue::Ticket::rethrow_if_failed() const {
    std::lock_guard lock(core_->mutex);
    if (error_) std::rethrow_exception(error_);
}

bool GenerationQueue::Ticket::ran() const {
    std::lock_guard lock(core_->mutex);
    return ran_;
}

GenerationQueue::GenerationQueue(std::shared_ptr<nn::Decoder> decoder, size_t capacity) : core_(std::make_shared<Core>()) {
    if (!decoder) throw std::invalid_argument("a generation queue needs a decoder");
    core_->stats.capacity = std::max<size_t>(1, capacity);
    thread_ = std::thread([core = core_, decoder = std::move(decoder)] {
        std::unique_lock lock(core->mutex);
        for (;;) {
            core->work.wait(lock, [&] { return core->stopping || !core->waiting.empty(); });
            if (core->waiting.empty()) return;  // stopping, nothing left
            auto ticket = core->waiting.front();
            core->waiting.pop_front();
            core->running = ticket;
            ticket->state_ = Ticket::State::running;
            ticket->ran_ = true;
            Job job = std::move(ticket->job_);
            lock.unlock();
            auto start = std::chrono::steady_clock::now();
            std::exception_ptr error;
            bool cancelled_job = false;
            try {
                job(*decoder, *ticket);
            } catch (const GenerationCancelled &) {
                error = std::current_exception();
                cancelled_job = true;
            } catch (...) {
                error = std::current_exception();
            }
            job = nullptr;  // release captures before the submitter is told
            double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            lock.lock();
            ticket->error_ = error;
            ticket->state_ = Ticket::State::ended;
            core->running.reset();
            core->total_seconds += seconds;
            ++core->ran;
            if (cancelled_job || (!error && ticket->cancelled_)) ++core->stats.cancelled;
            else if (error) ++core->stats.failed;
            else ++core->stats.completed;
            core->ended.notify_all();
        }
    });
}

GenerationQueue::~GenerationQueue() {
    close();
    thread_.join();
}

namespace {
// Under the core's lock: throws when a job would not be admitted now.
template <class Core>
void refuse_if_full(Core &core) {
    if (core.stopping) throw QueueClosed("the server is stopping");
    size_t admitted = core.waiting.size() + (core.running ? 1 : 0);
    if (admitted < core.stats.capacity) return;
    ++core.stats.refused;
    double mean = core.ran ? core.total_seconds / double(core.ran) : 1.0;
    int retry = int(std::clamp(std::ceil(mean * double(admitted)), 1.0, 3600.0));
    throw QueueFull("the server has " + std::to_string(admitted) + " answers generating or waiting, its limit; try again", retry);
}
}  // namespace

void GenerationQueue::check_room() {
    std::lock_guard lock(core_->mutex);
    refuse_if_full(*core_);
}

std::shared_ptr<GenerationQueue::Ticket> GenerationQueue::submit(Job job) {
    auto ticket = std::make_shared<Ticket>();
    ticket->core_ = core_;
    ticket->job_ = std::move(job);
    std::lock_guard lock(core_->mutex);
    refuse_if_full(*core_);
    core_->waiting.push_back(ticket);
    core_->work.notify_one();
    return ticket;
}

void GenerationQueue::close() {
    {
        std::lock_guard lock(core_->mutex);
        core_->stopping = true;
        for (auto &t : core_->waiting) t->drop_waiting();
        core_->waiting.clear();
        if (core_->running) core_->running->cancelled_ = true;
        core_->ended.notify_all();
    }
    core_->work.notify_all();
}

GenerationQueue::Stats GenerationQueue::stats() const {
    std::lock_guard lock(core_->mutex);
    Stats s = core_->stats;
    s.running = core_->running ? 1 : 0;
    s.waiting = core_->waiting.size();
    s.mean_seconds = core_->ran ? core_->total_seconds / double(core_->ran) : 0;
    return s;
}

}  // namespace saem
