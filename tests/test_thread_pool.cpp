// The compute thread pool: every thread runs a job once, exceptions reach the caller of run(),
// run() from inside a job runs inline, concurrent callers take turns; the process pool's sizing
// (set_compute_threads, SAEM_THREADS, `saem generate --threads`); embedders called from several
// threads at once give the vectors one text at a time gives (the BERT case is doctest suite "slow").
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "helpers.h"
#include "nn/embedder.h"
#include "nn/thread_pool.h"

#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using saem::nn::ThreadPool;

namespace {

const std::string shared = SAEM_SHARED;

// stdout and stderr of a shell command.
std::string run_command(const std::string &cmd) {
    std::string out;
    FILE *p = popen((cmd + " 2>&1").c_str(), "r");
    REQUIRE(p);
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
    return out;
}

}  // namespace

// First in this file: the process pool must not have started yet.
TEST_CASE("The process pool takes its size from set_compute_threads before it starts, and keeps it") {
    CHECK(saem::nn::set_compute_threads(3));
    CHECK(saem::nn::compute_threads() == 3);
    CHECK(saem::nn::compute_pool().size() == 3);
    CHECK(saem::nn::set_compute_threads(3));   // the size it has: fine
    CHECK(!saem::nn::set_compute_threads(2));  // too late to change
    CHECK(saem::nn::compute_pool().size() == 3);
    CHECK(&saem::nn::compute_pool() == &saem::nn::compute_pool());
}

TEST_CASE("run() gives every thread the job once, the caller's as thread 0") {
    ThreadPool pool(4);
    REQUIRE(pool.size() == 4);
    for (int round = 0; round < 20; ++round) {
        std::atomic<int> seen[4] = {};
        std::atomic<bool> caller_is_0{false};
        const auto caller = std::this_thread::get_id();
        pool.run([&](int ith, int nth) {
            CHECK(nth == 4);
            ++seen[ith];
            if (ith == 0) caller_is_0 = std::this_thread::get_id() == caller;
        });
        for (auto &s : seen) CHECK(s.load() == 1);
        CHECK(caller_is_0.load());
    }
    ThreadPool one(1);
    int calls = 0;
    one.run([&](int ith, int nth) { calls += ith == 0 && nth == 1; });
    CHECK(calls == 1);
}

TEST_CASE("An exception thrown in a job reaches the caller of run(), after every thread is done") {
    ThreadPool pool(4);
    std::atomic<int> finished{0};
    auto throw_on = [&](int thrower) {
        return [&, thrower](int ith, int) {
            if (ith == thrower) throw std::runtime_error("thread " + std::to_string(ith));
            std::this_thread::sleep_for(std::chrono::milliseconds(5));  // still busy when the thrower is done
            ++finished;
        };
    };
    // On a worker thread: no std::terminate, the caller sees it.
    finished = 0;
    CHECK_THROWS_WITH_AS(pool.run(throw_on(2)), "thread 2", std::runtime_error);
    CHECK(finished == 3);
    // On the caller's own share: run() still waits for the workers, which use the job.
    finished = 0;
    CHECK_THROWS_WITH_AS(pool.run(throw_on(0)), "thread 0", std::runtime_error);
    CHECK(finished == 3);
    // Several throwers: the first by thread index wins, the others are dropped.
    CHECK_THROWS_WITH_AS(pool.run([](int ith, int) { throw std::runtime_error("thread " + std::to_string(ith)); }), "thread 0",
                         std::runtime_error);
    CHECK_THROWS_WITH_AS(pool.run([](int ith, int) { if (ith >= 2) throw std::invalid_argument("late " + std::to_string(ith)); }),
                         "late 2", std::invalid_argument);
    // The pool works on, and an earlier error is not reported again.
    std::atomic<int> ran{0};
    CHECK_NOTHROW(pool.run([&](int, int) { ++ran; }));
    CHECK(ran == 4);
}

TEST_CASE("run() from inside a job runs that job inline, on this pool or another") {
    ThreadPool pool(3), other(2);
    std::atomic<int> inline_ok{0}, inner_calls{0};
    pool.run([&](int, int) {
        const auto me = std::this_thread::get_id();
        pool.run([&](int ith, int nth) {
            ++inner_calls;
            if (ith == 0 && nth == 1 && std::this_thread::get_id() == me) ++inline_ok;
        });
        other.run([&](int ith, int nth) {
            ++inner_calls;
            if (ith == 0 && nth == 1 && std::this_thread::get_id() == me) ++inline_ok;
        });
    });
    CHECK(inner_calls == 6);  // once per outer thread, not once per pool thread
    CHECK(inline_ok == 6);
    // Exceptions from a nested run travel out through both.
    CHECK_THROWS_WITH_AS(pool.run([&](int ith, int) { pool.run([&](int, int) { if (ith == 1) throw std::runtime_error("nested"); }); }),
                         "nested", std::runtime_error);
}

TEST_CASE("Concurrent callers take turns: jobs never overlap and each gets every thread") {
    // More threads than this machine may have cores: spinning workers then wait for the scheduler,
    // so the rounds are few.
    ThreadPool pool(3);
    std::atomic<int> owner{0}, active{0}, overlaps{0}, incomplete{0}, errors{0};
    auto caller = [&](int id) {
        for (int round = 0; round < 100; ++round) {
            const int call = id * 1000 + round + 1;
            std::atomic<int> hits[3] = {};
            try {
                pool.run([&](int ith, int nth) {
                    int expected = 0;
                    if (!owner.compare_exchange_strong(expected, call) && expected != call) ++overlaps;
                    ++active;
                    ++hits[ith];
                    if (nth != 3) ++incomplete;
                    if (id == 2 && round % 25 == 0 && ith == 1) {
                        if (--active == 0) owner = 0;
                        throw std::runtime_error("caller 2");
                    }
                    if (--active == 0) owner = 0;
                });
                if (id == 2 && round % 25 == 0) ++incomplete;  // should have thrown
            } catch (const std::runtime_error &e) {
                if (!(id == 2 && round % 25 == 0 && std::string(e.what()) == "caller 2")) ++errors;
            }
            for (auto &h : hits) incomplete += h != 1;
        }
    };
    std::vector<std::thread> callers;
    for (int id = 1; id <= 4; ++id) callers.emplace_back(caller, id);
    for (auto &t : callers) t.join();
    CHECK(overlaps == 0);
    CHECK(incomplete == 0);
    CHECK(errors == 0);
}

namespace {

// A single text runs on the calling thread; four threads embedding the whole list at once share the
// pool. Every vector must come out bit for bit the same.
void check_concurrent_embedding(const std::string &path) {
    CAPTURE(path);
    std::vector<std::string> texts;
    for (int i = 0; i < 12; ++i)
        texts.push_back("Passage " + std::to_string(i) + ": springs feed the well " + std::string(size_t(i % 4), '!') + " and the river.");
    auto enc = saem::nn::load_embedder(path);
    const size_t dim = size_t(enc->dim());
    std::vector<float> one_by_one(texts.size() * dim);
    for (size_t i = 0; i < texts.size(); ++i) enc->embed({texts[i]}, one_by_one.data() + i * dim);
    std::vector<std::vector<float>> outs(4, std::vector<float>(texts.size() * dim));
    std::vector<std::thread> threads;
    for (auto &out : outs) threads.emplace_back([&] { enc->embed(texts, out.data()); });
    for (auto &t : threads) t.join();
    for (const auto &out : outs) CHECK(std::memcmp(out.data(), one_by_one.data(), out.size() * sizeof(float)) == 0);
}

}  // namespace

TEST_CASE("Model2Vec embeddings from several threads at once equal one text at a time") {
    check_concurrent_embedding(shared + "/models/potion-base-4M-int8");
}

TEST_CASE("BERT embeddings from several threads at once equal one text at a time" * doctest::test_suite("slow")) {
    TempDir dir;
    std::string cmd = std::string(SAEM_MAKE_TEST_ENCODER) + " " + shared + "/models/all-MiniLM-L6-v2 " + (dir / "minilm") + " 1234 > /dev/null";
    REQUIRE(std::system(cmd.c_str()) == 0);
    check_concurrent_embedding(dir / "minilm.q8_0.gguf");
}

TEST_CASE("saem generate: --threads, else SAEM_THREADS, sizes the pool") {
    TempDir dir;
    std::string model = dir / "stories260K.gguf";
    std::string cmd = std::string(SAEM_MAKE_TEST_DECODER) + " stories " + shared + "/models/stories260K/stories260K.bin " + shared +
                      "/models/stories260K/tok512.bin " + model;
    REQUIRE(std::system(cmd.c_str()) == 0);
    const std::string generate = std::string(SAEM_BINARY) + " generate --model " + model + " 'Once upon a time' --greedy --max-tokens 4";
    CHECK(run_command("SAEM_THREADS=3 " + generate).find("kernels, 3 threads") != std::string::npos);
    CHECK(run_command("SAEM_THREADS=3 " + generate + " --threads 1").find("kernels, 1 threads") != std::string::npos);
    CHECK(run_command("SAEM_THREADS=0 " + generate + " --threads 2").find("kernels, 2 threads") != std::string::npos);
}
