// The saem command line.
#include "api/api.h"
#include "api/cli.h"
#include "generator/remote.h"
#include "nn/convert.h"
#include "nn/perplexity.h"
#include "nn/quantize_model.h"
#include "nn/thread_pool.h"

#include <unistd.h>

#include <atomic>
#include <mutex>
#include <condition_variable>
#include <chrono>
#include <csignal>
#include <pthread.h>
#include <thread>
#include <cstring>
#include <deque>
#include <iomanip>
#include <fstream>
#include <iostream>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

namespace {

using nlohmann::json;

using saem::cli::Args;
using saem::cli::Option;
using saem::cli::UsageError;

saem::Filter filter_from(const Args &a) {
    saem::Filter f;
    f.path_prefix = a.get("path");
    for (const auto &kv : a.all("meta")) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) throw UsageError("--meta takes KEY=VALUE");
        f.metadata.emplace_back(kv.substr(0, eq), json(kv.substr(eq + 1)));
    }
    return f;
}

saem::ChunkOptions chunking_from(const Args &a) {
    saem::ChunkOptions c;
    c.max_tokens = a.get_int("chunk-tokens", c.max_tokens, 16, 8192);
    c.overlap_tokens = a.get_int("overlap", c.overlap_tokens, 0, c.max_tokens / 2);
    return c;
}

std::string location(const std::string &heading, int page) {
    std::string s = heading;
    if (page > 0) s += (s.empty() ? "" : ", ") + std::string("p. ") + std::to_string(page);
    return s;
}

saem::LoadedEncoder encoder_for(const Args &a, saem::Store *store) {
    if (a.has("no-encoder")) return {};
    return saem::find_encoder(a.get("encoder"), store);
}

// The retrieval request of search and ask: one request type from the flags to the pipeline.
saem::SearchRequest search_request(const Args &a, int default_k, int max_k) {
    saem::SearchRequest r;
    r.query = a.operands.at(0);
    r.k = a.get_int("k", default_k, 1, max_k);
    if (a.has("mode")) r.mode = saem::parse_mode(a.get("mode"));
    r.filter = filter_from(a);
    if (a.has("mmr")) r.mmr_lambda = a.get_double("mmr", saem::default_mmr_lambda, 0, 1);
    r.rerank = a.has("rerank");
    return r;
}

// The models a search needs: an encoder unless lexical mode is asked for or the index has no
// vectors (then lexical is what the default rule picks anyway), and the --rerank cross-encoder.
saem::Retriever retriever_for(const Args &a, saem::Store &store, const saem::SearchRequest &r) {
    saem::Retriever::Models m;
    bool lexical = r.mode ? *r.mode == saem::SearchMode::lexical : !store.has_vectors();
    if (!lexical) m.embedder = std::shared_ptr<const saem::nn::Embedder>(encoder_for(a, &store).embedder);
    if (r.rerank) m.reranker = saem::nn::load_reranker(a.get("rerank"));
    return saem::Retriever(std::move(m));
}

int cmd_index(const Args &a) {
    saem::Store store(a.get("db", "saem.db"));
    saem::IndexOptions opt;
    saem::LoadedEncoder enc = encoder_for(a, &store);
    if (enc.embedder) {
        std::cerr << "encoder: " << enc.path << " (" << enc.reason << ")\n";
        opt.embedder = enc.embedder.get();
        opt.embedder_path = enc.path;
    } else if (!a.has("no-encoder")) {
        std::cerr << "no encoder configured: indexing for lexical search only (saem models tells why)\n";
    }
    if (a.has("vector-index")) {
        std::string kind = a.get("vector-index");
        if (kind != "flat" && kind != "hnsw" && kind != "ivfpq") throw UsageError("--vector-index is flat, hnsw or ivfpq, not '" + kind + "'");
        store.set_vector_index_kind(saem::parse_vector_index(kind));
    }
    opt.include = a.all("include");
    opt.exclude = a.all("exclude");
    opt.chunking = chunking_from(a);
    opt.max_file_bytes = int64_t(a.get_int("max-file-mb", 64, 1, 1 << 20)) << 20;
    opt.follow_symlinks = a.has("follow-symlinks");
    opt.progress_bar = ::isatty(STDERR_FILENO);
    saem::index_folder(store, a.operands[0], opt, std::cerr);
    return 0;
}

int cmd_search(const Args &a) {
    saem::Store store(a.get("db", "saem.db"));
    saem::SearchRequest r = search_request(a, 10, 1000);
    bool tty = ::isatty(STDOUT_FILENO);
    if (!a.has("json") && tty) { r.mark_open = "\033[1m"; r.mark_close = "\033[0m"; }
    saem::Retrieved found = retriever_for(a, store, r).search(store, r);
    const auto &hits = found.hits;
    if (a.has("json")) {
        json out = json::array();
        for (const auto &h : hits) out.push_back(saem::to_json(h));
        std::cout << json{{"query", a.operands[0]}, {"mode", saem::mode_name(found.mode)}, {"hits", out}}.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
        return 0;
    }
    if (hits.empty()) {
        std::cout << "no matches for: " << a.operands[0] << '\n';
        return 0;
    }
    for (size_t i = 0; i < hits.size(); ++i) {
        const auto &h = hits[i];
        std::cout << i + 1 << ". " << h.path << "  (score " << std::fixed << std::setprecision(2) << h.score << ")\n";
        std::string where = location(h.heading, h.page);
        if (!where.empty()) std::cout << "   " << where << '\n';
        std::string snippet = h.snippet;
        for (char &c : snippet)
            if (c == '\n') c = ' ';
        std::cout << "   " << snippet << "\n\n";
    }
    return 0;
}

// The decoder of --model, else $SAEM_MODEL; null when neither is set.
std::unique_ptr<saem::nn::Decoder> decoder_for(const Args &a) {
    std::string path = a.get("model");
    if (path.empty())
        if (const char *env = std::getenv("SAEM_MODEL")) path = env;
    if (path.empty()) return nullptr;
    saem::nn::DecoderOptions dopt;
    dopt.threads = a.get_int("threads", 0, 0, 1024);
    dopt.context = a.get_int("context", dopt.context, 0, 1 << 20);
    return saem::nn::Decoder::load(path, dopt);
}

saem::GenerateOptions generation_from(const Args &a, int max_tokens) {
    saem::GenerateOptions o;
    o.max_tokens = a.get_int("max-tokens", max_tokens, 1, 1 << 20);
    o.stop = a.all("stop");
    auto &s = o.sampling;
    s.greedy = a.has("greedy") > 0;
    s.seed = uint64_t(a.get_int("seed", 0, 0, 2147483647));
    s.temperature = float(a.get_double("temperature", s.temperature, 0, 100));
    s.top_k = a.get_int("top-k", s.top_k, 0, 1 << 30);
    s.top_p = float(a.get_double("top-p", s.top_p, 0, 1));
    s.min_p = float(a.get_double("min-p", s.min_p, 0, 1));
    s.repeat_penalty = float(a.get_double("repeat-penalty", s.repeat_penalty, 0.01f, 100));
    return o;
}

int cmd_ask(const Args &a) {
    saem::Retrieved found;
    {
        saem::Store store(a.get("db", "saem.db"));
        saem::SearchRequest r = saem::for_answers(search_request(a, 5, 100));
        found = retriever_for(a, store, r).search(store, r);
    }
    auto decoder = decoder_for(a);
    saem::Answer ans;
    const bool json_out = a.has("json") > 0;
    if (decoder) {
        saem::GeneratedAnswerOptions go;
        go.generation = generation_from(a, 512);
        // An answer from sources is greedy unless a temperature is asked for.
        if (!a.has("temperature")) go.generation.sampling.greedy = true;
        go.chat_template = a.get("template");
        go.grounding.strict = a.has("strict") > 0;
        go.min_support = a.get_double("min-support", go.min_support, 0, 1);
        // The answer streams as it is generated; the sources follow it.
        // Strict answers are printed once checked: their pieces may hold sentences it removes.
        ans = saem::answer_generated(*decoder, a.operands[0], found, go, [&](std::string_view piece) {
            if (!json_out && !go.grounding.strict) std::cout << piece << std::flush;
            return true;
        });
        if (!json_out && (!ans.found || go.grounding.strict)) std::cout << ans.text;
    } else {
        saem::ExtractiveOptions eo;
        eo.min_support = a.get_double("min-support", eo.min_support, 0, 1);
        ans = saem::answer_extractive(a.operands[0], found, eo);
        if (!json_out) std::cout << ans.text;
    }
    if (json_out) {
        json out = saem::to_json(ans);
        out["question"] = a.operands[0];
        out["mode"] = saem::mode_name(found.mode);
        std::cout << out.dump(2, ' ', false, json::error_handler_t::replace) << '\n';
        return 0;
    }
    std::cout << "\n";
    if (!ans.citations.empty()) {
        std::cout << "\nSources:\n";
        for (const auto &c : ans.citations) {
            std::cout << "[" << c.number << "] " << c.path;
            std::string where = location(c.heading, c.page);
            if (!where.empty()) std::cout << " — " << where;
            std::cout << '\n';
        }
    }
    std::cout << "\n(" << ans.note << ")\n";
    return 0;
}

// The options `serve` and `mcp` share: collections, models, generators, limits and keys.
saem::ServerOptions server_options(const Args &a) {
    saem::ServerOptions so;
    so.db = a.get("db", "saem.db");
    for (const auto &spec : a.all("collection")) {
        size_t eq = spec.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
            throw UsageError("--collection takes NAME=DB, not '" + spec + "'");
        so.collections.push_back({spec.substr(0, eq), spec.substr(eq + 1)});
    }
    if (a.has("data")) {
        std::vector<std::filesystem::path> found;
        for (const auto &e : std::filesystem::directory_iterator(a.get("data")))
            if (e.path().extension() == ".db") found.push_back(e.path());
        std::sort(found.begin(), found.end());
        for (const auto &f : found) so.collections.push_back({f.stem().string(), f.string()});
        if (found.empty()) throw UsageError("--data " + a.get("data") + " holds no NAME.db index");
    }
    if (!so.collections.empty() && a.has("db")) throw UsageError("give --db or --collection/--data, not both");
    {
        // The encoder: the one the first collection was built with, unless given.
        saem::Store store(so.collections.empty() ? so.db : so.collections.front().db);
        saem::LoadedEncoder enc = encoder_for(a, &store);
        if (enc.embedder) std::cerr << "encoder: " << enc.path << " (" << enc.reason << ")\n";
        so.embedder = std::move(enc.embedder);
        so.embedder_path = enc.path;
    }
    if (a.has("rerank")) so.reranker = saem::nn::load_reranker(a.get("rerank"));
    so.decoder = decoder_for(a);
    if (so.decoder) {
        std::string model = a.has("model") ? a.get("model") : std::getenv("SAEM_MODEL");
        so.decoder_name = std::filesystem::path(model).filename().string();
        std::cerr << "decoder: " << so.decoder->describe() << '\n';
        so.chat_template = a.get("template");
        so.max_answer_tokens = a.get_int("max-tokens", so.max_answer_tokens, 1, 8192);
    }
    if (a.has("generator-url")) {
        saem::RemoteOptions ro;
        ro.url = a.get("generator-url");
        ro.model = a.get("generator-model");
        if (a.has("generator-key-file")) {
            std::ifstream in(a.get("generator-key-file"));
            if (!in || !std::getline(in, ro.api_key) || ro.api_key.empty())
                throw UsageError("cannot read a key from the generator key file " + a.get("generator-key-file"));
            while (!ro.api_key.empty() && (ro.api_key.back() == '\r' || ro.api_key.back() == ' ')) ro.api_key.pop_back();
        }
        ro.context_tokens = a.get_int("generator-context", ro.context_tokens, 256, 1 << 24);
        ro.read_timeout = a.get_double("generator-timeout", ro.read_timeout, 0.1, 3600);
        ro.retries = a.get_int("generator-retries", ro.retries, 0, 10);
        so.remote = std::make_shared<saem::RemoteChat>(ro);
        std::cerr << "generator: " << ro.url << (ro.model.empty() ? "" : " model " + ro.model) << '\n';
    } else if (a.has("generator-model") || a.has("generator-key-file")) {
        throw UsageError("--generator-model and --generator-key-file go with --generator-url");
    }
    so.router = saem::router_options_from_json(saem::read_config().value("router", nlohmann::json()));
    if (a.has("route")) so.router.policy = saem::parse_route_policy(a.get("route"));
    if (so.decoder && so.remote) std::cerr << "route: " << (a.has("route") ? a.get("route") : "auto (or the config's router.policy)") << '\n';
    so.max_body_bytes = size_t(a.get_int("max-body-mb", 32, 1, 4096)) << 20;
    so.generation_queue = size_t(a.get_int("generation-queue", int(so.generation_queue), 1, 1024));
    so.http_threads = size_t(a.get_int("http-threads", 0, 0, 4096));
    so.cors_origins = a.all("cors-origin");
    if (const char *key = std::getenv("SAEM_API_KEY"); key && *key) so.api_keys.push_back(key);
    if (a.has("api-key-file")) {
        std::ifstream in(a.get("api-key-file"));
        if (!in) throw UsageError("cannot read the API key file " + a.get("api-key-file"));
        size_t keys = 0;
        for (std::string line; std::getline(in, line);) {
            size_t b = line.find_first_not_of(" \t\r"), e = line.find_last_not_of(" \t\r");
            if (b != std::string::npos && line[b] != '#') so.api_keys.push_back(line.substr(b, e - b + 1)), ++keys;
        }
        if (keys == 0) throw UsageError("the API key file " + a.get("api-key-file") + " holds no key");
    }
    so.read_only = a.has("read-only") > 0;
    return so;
}

int cmd_serve(const Args &a) {
    // SIGINT and SIGTERM are taken by one thread that waits for them (sigwait) and stops the server
    // there, out of signal context: stopping cancels generations, which takes locks. Blocked here,
    // before any thread starts, so every thread inherits the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    saem::ServerOptions so = server_options(a);
    std::string host = a.get("host", "127.0.0.1");
    int port = a.get_int("port", 8080, 0, 65535);
    saem::Server server(so);
    int bound = server.bind(host, port);
    if (bound < 0) throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port));
    // The first signal stops the server (once it is listening: cpp-httplib ignores a stop before
    // that); a second one, during a slow stop, exits at once.
    std::atomic<bool> listen_ended{false};
    std::thread stopper([&] {
        int signal = 0;
        sigwait(&stop_signals, &signal);
        if (listen_ended) return;
        while (!server.running() && !listen_ended) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (!listen_ended) server.stop();
        sigwait(&stop_signals, &signal);
        if (!listen_ended) std::_Exit(128 + signal);
    });
    std::cerr << "saem serving ";
    if (so.collections.empty()) std::cerr << so.db;
    for (size_t i = 0; i < so.collections.size(); ++i) std::cerr << (i ? ", " : "") << so.collections[i].name << "=" << so.collections[i].db;
    std::cerr << " on http://" << host << ":" << bound << std::endl;
    if (so.api_keys.empty() && host != "127.0.0.1" && host != "localhost" && host != "::1")
        std::cerr << "saem: warning: listening on " << host << " without an API key: anyone who can reach it can read and "
                     "change the index (--api-key-file FILE or SAEM_API_KEY)\n";
    server.listen();
    listen_ended = true;
    pthread_kill(stopper.native_handle(), SIGTERM);  // release the waiter, whichever sigwait it is in
    stopper.join();
    return 0;
}

// MCP over stdio: a JSON-RPC message per line in, a reply per line out; logs go to stderr only.
// The reader answers initialize and malformed lines itself and hands requests to 8 workers, so it
// keeps reading while tool calls run: a notifications/cancelled is seen at once, and the
// cancelled request gets no reply (as MCP asks). Each request runs with the session as it was
// when it arrived. A line longer than --max-body-mb is refused unread. At end of input the
// requests already read are answered, then the command ends.
int cmd_mcp(const Args &a) {
    saem::ServerOptions options = server_options(a);
    const size_t max_line = options.max_body_bytes;
    saem::Server server(options);
    saem::mcp::Session session;  // written by the reader only
    struct Job {
        std::string line, id;
        saem::mcp::Session session;
        std::shared_ptr<std::atomic<bool>> cancel;
    };
    std::mutex out_mutex, jobs_mutex;
    std::condition_variable jobs_ready;
    std::deque<Job> jobs;
    bool input_ended = false;
    std::map<std::string, std::shared_ptr<std::atomic<bool>>> in_flight;  // request id (dumped) -> cancel flag; under jobs_mutex
    auto write = [&](const std::string &text) {
        std::lock_guard lock(out_mutex);
        std::cout << text << '\n' << std::flush;
    };
    auto dump = [](const nlohmann::json &j) { return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); };
    std::vector<std::thread> workers;
    for (int i = 0; i < 8; ++i)
        workers.emplace_back([&] {
            for (;;) {
                Job job;
                {
                    std::unique_lock lock(jobs_mutex);
                    jobs_ready.wait(lock, [&] { return input_ended || !jobs.empty(); });
                    if (jobs.empty()) return;
                    job = std::move(jobs.front());
                    jobs.pop_front();
                }
                std::optional<std::string> reply;
                try {
                    saem::mcp::Call call{job.cancel.get(), [&](const nlohmann::json &n) {
                                             if (!*job.cancel) write(dump(n));
                                         }};
                    reply = server.mcp(job.line, job.session, call);
                } catch (const std::exception &e) {
                    reply = dump({{"jsonrpc", "2.0"}, {"id", nlohmann::json::parse(job.id)}, {"error", {{"code", -32603}, {"message", e.what()}}}});
                }
                {
                    std::lock_guard lock(jobs_mutex);
                    in_flight.erase(job.id);
                }
                if (reply && !*job.cancel) write(*reply);
            }
        });
    std::cerr << "saem mcp: ready on stdin/stdout" << std::endl;
    for (;;) {
        // A line, at most max_line bytes kept (a longer one is read to its end and refused).
        std::string line;
        bool too_long = false, got = false;
        for (int c; (c = std::cin.get()) != EOF;) {
            got = true;
            if (c == '\n') break;
            if (line.size() < max_line) line += char(c);
            else too_long = true;
        }
        if (!got) break;
        if (too_long) {
            write(dump({{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", {{"code", -32600}, {"message", "the message is longer than " + std::to_string(max_line) + " bytes"}}}}));
            continue;
        }
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        nlohmann::json message = nlohmann::json::parse(line, nullptr, false);
        const bool object = message.is_object();
        const bool request = object && message.contains("id") && !message["id"].is_null() && message.contains("method");
        if (object && message.value("method", nlohmann::json()) == "notifications/cancelled") {
            const auto params = message.value("params", nlohmann::json::object());
            if (params.is_object() && params.contains("requestId")) {
                std::lock_guard lock(jobs_mutex);
                if (auto it = in_flight.find(params["requestId"].dump()); it != in_flight.end()) *it->second = true;
            }
        }
        // initialize, notifications and malformed lines are answered here, in order.
        if (!request || message["method"] == "initialize") {
            if (auto reply = server.mcp(line, session)) write(*reply);
            continue;
        }
        Job job{line, message["id"].dump(), session, std::make_shared<std::atomic<bool>>(false)};
        std::lock_guard lock(jobs_mutex);
        in_flight[job.id] = job.cancel;
        jobs.push_back(std::move(job));
        jobs_ready.notify_one();
    }
    {
        std::lock_guard lock(jobs_mutex);
        input_ended = true;
    }
    jobs_ready.notify_all();
    for (auto &w : workers) w.join();
    return 0;
}

// saem eval qa FILE: extractive answers to a SQuAD-format file's questions, scored.
int cmd_eval_qa(const Args &a) {
    for (const char *beir_only : {"mode", "encoder", "split", "keep-identical-ids", "lexical-weight", "dense-weight", "lexical-rrf-k",
                                  "dense-rrf-k", "heading-weight"})
        if (a.has(beir_only)) throw UsageError(std::string("--") + beir_only + " is an option of eval beir; eval qa answers as saem ask does (lexical)");
    saem::QaOptions qo;
    qo.db = a.get("db");
    qo.chunking = chunking_from(a);
    qo.k = a.get_int("k", qo.k, 1, 100);
    qo.sample = a.get("sample", "all");
    qo.limit = size_t(a.get_int("limit", 0, 0, 1 << 30));
    qo.extractive.min_support = a.get_double("min-support", qo.extractive.min_support, 0, 1);
    if (a.has("unanswerable")) {
        std::ifstream in(a.get("unanswerable"));
        if (!in) throw UsageError("cannot read " + a.get("unanswerable"));
        for (std::string line; std::getline(in, line);)
            if (line.find_first_not_of(" \t\r") != std::string::npos) qo.unanswerable.push_back(line);
    }
    saem::QaResult r = saem::eval_qa(a.operands[1], qo, std::cerr);
    // --scan: the trade-off of every abstain threshold on this run's scores, to choose one from.
    json scan = json::array();
    // A support of 0 (no sentence covers enough of the question) abstains at every threshold.
    if (a.has("scan"))
        for (int i = 0; i <= 40; ++i) {
            const double t = i * 0.025;
            size_t kept_gold = 0, abstained = 0;
            for (auto [score, gold] : r.answerable_scores) kept_gold += gold && score > 0 && score >= t;
            for (double score : r.unanswerable_scores) abstained += score <= 0 || score < t;
            scan.push_back({{"min_support", t},
                            {"gold_in_answer", r.questions ? double(kept_gold) / double(r.questions) : 0},
                            {"abstain_rate", r.unanswerable ? double(abstained) / double(r.unanswerable) : 0}});
        }
    if (a.has("json")) {
        json out = {{"file", a.operands[1]},       {"paragraphs", r.paragraphs},   {"questions", r.questions},
                    {"exact_match", r.exact_match}, {"f1", r.f1},                   {"gold_in_answer", r.gold_in_answer},
                    {"answered", r.answered},       {"citation_accuracy", r.citation_accuracy},
                    {"min_support", qo.extractive.min_support},
                    {"index_seconds", r.index_seconds}, {"answer_seconds", r.answer_seconds}};
        if (!qo.unanswerable.empty()) {
            out["unanswerable"] = r.unanswerable;
            out["abstain_rate"] = r.abstain_rate;
        }
        if (a.has("scan")) out["scan"] = scan;
        std::cout << out.dump(2) << '\n';
        return 0;
    }
    std::cout << std::fixed << std::setprecision(4) << "paragraphs " << r.paragraphs << ", questions " << r.questions
              << " (sample " << qo.sample << ", min support " << qo.extractive.min_support << ")\n"
              << "exact match       " << r.exact_match << '\n'
              << "F1                " << r.f1 << '\n'
              << "gold in answer    " << r.gold_in_answer << '\n'
              << "answered          " << r.answered << '\n'
              << "citation accuracy " << r.citation_accuracy << '\n';
    if (!qo.unanswerable.empty()) std::cout << "abstain rate      " << r.abstain_rate << " of " << r.unanswerable << " unanswerable\n";
    for (const auto &row : scan)
        std::cout << "  min support " << row["min_support"].get<double>() << ": gold in answer " << row["gold_in_answer"].get<double>()
                  << ", abstain " << row["abstain_rate"].get<double>() << '\n';
    std::cout << std::setprecision(2) << "index " << r.index_seconds << " s, answers " << r.answer_seconds << " s\n";
    return 0;
}

int cmd_eval(const Args &a) {
    if (a.operands[0] == "qa") return cmd_eval_qa(a);
    if (a.operands[0] != "beir") throw UsageError("saem eval knows two benchmark formats: saem eval beir DIR, saem eval qa FILE.json");
    saem::BeirOptions bo;
    bo.db = a.get("db");
    bo.split = a.get("split", "test");
    bo.ignore_identical_ids = !a.has("keep-identical-ids");
    bo.chunking = chunking_from(a);
    bo.heading_weight = a.get_double("heading-weight", bo.heading_weight, 0, 100);
    bo.mode = saem::parse_mode(a.get("mode", "lexical"));
    saem::LoadedEncoder enc;
    if (bo.mode != saem::SearchMode::lexical || a.has("encoder")) {
        enc = encoder_for(a, nullptr);
        if (!enc.embedder) throw UsageError("--mode " + a.get("mode") + " needs an encoder: --encoder PATH");
        bo.embedder = std::move(enc.embedder);
        bo.embedder_path = enc.path;
    }
    // Fusion settings, for experiments; the defaults are saem's.
    bo.fusion.lexical_weight = a.get_double("lexical-weight", bo.fusion.lexical_weight, 0, 1000);
    bo.fusion.dense_weight = a.get_double("dense-weight", bo.fusion.dense_weight, 0, 1000);
    bo.fusion.lexical_rrf_k = a.get_double("lexical-rrf-k", bo.fusion.lexical_rrf_k, 0, 1e6);
    bo.fusion.dense_rrf_k = a.get_double("dense-rrf-k", bo.fusion.dense_rrf_k, 0, 1e6);
    saem::BeirResult r = saem::eval_beir(a.operands[1], bo, std::cerr);
    if (a.has("json")) {
        std::cout << json{{"dataset", a.operands[1]}, {"mode", r.mode}, {"queries", r.queries}, {"documents", r.documents},
                          {"ndcg@10", r.ndcg10}, {"recall@100", r.recall100}, {"mrr@10", r.mrr10},
                          {"index_seconds", r.index_seconds}, {"search_seconds", r.search_seconds}}.dump(2) << '\n';
        return 0;
    }
    std::cout << std::fixed << std::setprecision(4) << "mode " << r.mode << ", queries " << r.queries << ", documents " << r.documents << '\n'
              << "nDCG@10    " << r.ndcg10 << '\n'
              << "Recall@100 " << r.recall100 << '\n'
              << "MRR@10     " << r.mrr10 << '\n'
              << std::setprecision(2) << "index " << r.index_seconds << " s, search " << r.search_seconds << " s ("
              << (r.queries ? 1000.0 * r.search_seconds / double(r.queries) : 0) << " ms/query)\n";
    return 0;
}

int cmd_tokenize(const Args &a) {
    std::string path = a.get("tokenizer");
    if (path.empty()) throw UsageError("tokenize needs --tokenizer PATH (tokenizer.json, vocab.txt, a model folder or a .gguf)");
    // A decoder vocabulary prints what the model is fed (BOS when it asks for one); WordPiece its
    // [CLS] ... [SEP] input.
    std::optional<saem::nn::Bpe> bpe;
    std::optional<saem::nn::WordPiece> wp;
    if (saem::nn::Bpe::is_bpe(path)) bpe = saem::nn::Bpe::load(path);
    else if (std::filesystem::path(path).extension() == ".gguf") wp = saem::nn::WordPiece::from_gguf(saem::nn::Gguf(path));
    else wp = saem::nn::WordPiece::load(path);
    std::string line, out;
    while (std::getline(std::cin, line)) {
        out = "[";
        for (int32_t id : bpe ? saem::raw_prompt(*bpe, line) : wp->encode_for_model(line, {}, size_t(1) << 30).ids) out += std::to_string(id) + ",";
        if (out.size() > 1) out.pop_back();
        out += "]\n";
        std::cout << out;
    }
    return 0;
}

int cmd_generate(const Args &a) {
    auto decoder = decoder_for(a);
    if (!decoder) throw UsageError("generate needs --model FILE.gguf (or SAEM_MODEL)");
    const auto &bpe = decoder->tokenizer();
    std::vector<int32_t> prompt;
    if (a.has("chat")) {
        auto format = saem::chat_format(bpe, a.get("template"));
        std::cerr << "saem: chat template " << saem::chat_format_name(format) << '\n';
        std::vector<saem::ChatMessage> messages;
        if (!a.get("system").empty()) messages.push_back({"system", a.get("system")});
        messages.push_back({"user", a.operands[0]});
        prompt = saem::chat_prompt(bpe, format, messages);
    } else {
        prompt = saem::raw_prompt(bpe, a.operands[0]);
        std::cout << a.operands[0] << std::flush;
    }
    saem::GenerateOptions o = generation_from(a, 256);
    std::cerr << "saem: " << decoder->describe() << '\n';
    auto g = saem::generate(*decoder, prompt, o, [](std::string_view piece) {
        std::cout << piece << std::flush;
        return true;
    });
    std::cout << '\n';
    std::cerr << std::fixed << std::setprecision(1) << "prompt " << g.prompt_tokens << " tokens, " << g.prompt_tokens_per_second()
              << " tokens/s; generated " << g.tokens.size() << " tokens, " << g.generation_tokens_per_second()
              << " tokens/s; stopped: " << g.stop_reason << '\n';
    return 0;
}

// llama.cpp's perplexity tool's output: the running figure after each window, then the final
// estimate; the counts and speed on stderr (nn/perplexity.h has the method).
int cmd_perplexity(const Args &a) {
    if (a.get("model").empty() && !std::getenv("SAEM_MODEL")) throw UsageError("perplexity needs --model FILE.gguf (or SAEM_MODEL)");
    const int context = a.get_int("context", 512, 3, 1 << 20);
    std::string text;
    const std::string &file = a.operands[0];
    if (file == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
        std::ifstream in(file, std::ios::binary);
        if (!in) throw UsageError("cannot read " + file + ": " + std::strerror(errno));
        text.assign(std::istreambuf_iterator<char>(in), {});
        if (in.bad()) throw std::runtime_error("reading " + file + " failed: " + std::strerror(errno));
    }
    saem::nn::DecoderOptions dopt;
    dopt.threads = a.get_int("threads", 0, 0, 1024);
    dopt.context = context;
    dopt.batch = a.get_int("batch", 512, 1, 1 << 20);
    auto decoder = saem::nn::Decoder::load(!a.get("model").empty() ? a.get("model") : std::string(std::getenv("SAEM_MODEL")), dopt);
    if (decoder->context_length() < context)
        throw UsageError("the model was trained on a context of " + std::to_string(decoder->context_length()) +
                         " tokens; give --context at most that");
    std::cerr << "saem: " << decoder->describe() << '\n';
    const auto tokens = saem::raw_prompt(decoder->tokenizer(), text);
    saem::nn::PerplexityOptions po;
    po.context = context;
    po.max_windows = a.get_int("windows", 0, 0, 1 << 30);
    const bool json = a.has("json");
    auto r = saem::nn::perplexity(*decoder, tokens, po, [&](size_t window, double ppl) {
        if (!json) std::cout << '[' << window << ']' << std::fixed << std::setprecision(4) << ppl << ',' << std::flush;
        return true;
    });
    if (json) {
        std::cout << nlohmann::json{{"ppl", r.ppl}, {"ppl_error", r.ppl_error}, {"mean_nll", r.mean_nll}, {"context", r.context},
                                    {"text_tokens", r.text_tokens}, {"windows", r.windows}, {"scored", r.scored},
                                    {"seconds", r.seconds}, {"tokens_per_second", r.tokens_per_second()}}
                         .dump()
                  << '\n';
    } else {
        std::cout << "\nFinal estimate: PPL = " << std::fixed << std::setprecision(4) << r.ppl << " +/- " << std::setprecision(5)
                  << r.ppl_error << '\n';
    }
    std::cerr << std::fixed << std::setprecision(1) << "saem: " << r.text_tokens << " tokens, " << r.windows << " windows of "
              << r.context << ", " << r.scored << " tokens scored, " << r.tokens_per_second() << " tokens/s\n";
    return 0;
}

// llama-quantize's command line: IN OUT TYPE, a line per tensor as it is written, then the sizes.
int cmd_quantize(const Args &a) {
    const auto type = saem::nn::parse_quant_type(a.operands[2]);
    if (int threads = a.get_int("threads", 0, 0, 1024); threads > 0 && !saem::nn::set_compute_threads(threads))
        throw UsageError("the compute pool already runs other threads");
    auto mib = [](size_t bytes) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.2f MiB", double(bytes) / (1 << 20));
        return std::string(buf);
    };
    auto r = saem::nn::quantize_model(a.operands[0], a.operands[1], type, [&](const saem::nn::QuantizedTensor &t, size_t done, size_t total) {
        std::cerr << '[' << std::setw(4) << done << '/' << std::setw(4) << total << "] " << std::left << std::setw(32) << t.name << std::right
                  << ' ' << saem::nn::dtype_name(t.from) << " -> " << saem::nn::dtype_name(t.to) << ", " << mib(t.bytes_in) << " -> "
                  << mib(t.bytes_out) << '\n';
    });
    std::map<std::string, int> counts;
    for (const auto &t : r.tensors) ++counts[saem::nn::dtype_name(t.to)];
    std::string mix;
    for (const auto &[name, n] : counts) mix += (mix.empty() ? "" : ", ") + std::to_string(n) + " " + name;
    std::cout << a.operands[1] << ": " << saem::nn::quant_type_name(type) << ", " << mib(r.file_bytes_in) << " -> " << mib(r.file_bytes_out)
              << " (" << std::fixed << std::setprecision(1) << 100.0 * double(r.file_bytes_out) / double(r.file_bytes_in) << "%); tensors: " << mix
              << "; " << std::setprecision(1) << r.seconds << " s\n";
    return 0;
}

int cmd_convert(const Args &a) {
    const std::string t = a.get("type", "f16");
    const saem::nn::DType type = t == "f16" ? saem::nn::DType::F16 : t == "q8_0" ? saem::nn::DType::Q8_0 : t == "f32" ? saem::nn::DType::F32
                                                                                                                     : throw UsageError("--type is f16, q8_0 or f32, not " + t);
    auto r = saem::nn::convert_model(a.operands[0], a.operands[1], type);
    std::cout << a.operands[1] << ": " << r.architecture << ", " << r.tensors << " tensors, " << std::fixed << std::setprecision(2)
              << double(r.file_bytes) / (1 << 20) << " MiB (" << t << ")\n";
    return 0;
}

int cmd_embed(const Args &a) {
    std::string path = a.get("encoder");
    if (path.empty()) throw UsageError("embed needs --encoder PATH");
    auto embedder = saem::nn::load_embedder(path);
    if (a.has("max-tokens")) embedder->set_max_tokens(size_t(a.get_int("max-tokens", 512, 3, 1 << 20)));
    // Lines are embedded in batches (the encoder spreads a batch over the cores) and printed in order.
    const size_t batch = size_t(a.get_int("batch", 64, 1, 4096));
    const size_t dim = size_t(embedder->dim());
    std::vector<std::string> lines;
    std::vector<float> v;
    char buf[32];
    auto flush = [&] {
        v.resize(lines.size() * dim);
        embedder->embed(lines, v.data());
        std::string out;
        for (size_t i = 0; i < lines.size(); ++i) {
            out += '[';
            for (size_t k = 0; k < dim; ++k) {
                std::snprintf(buf, sizeof buf, "%.7g,", double(v[i * dim + k]));
                out += buf;
            }
            out.back() = ']';
            out += '\n';
        }
        std::cout << out;
        lines.clear();
    };
    for (std::string line; std::getline(std::cin, line);) {
        lines.push_back(std::move(line));
        if (lines.size() == batch) flush();
    }
    if (!lines.empty()) flush();
    return 0;
}

int cmd_models(const Args &) {
    std::cout << "model folders searched: ";
    for (const auto &f : saem::model_folders()) std::cout << f << "  ";
    std::cout << '\n';
    auto models = saem::list_models();
    if (models.empty()) std::cout << "no models found (put a model folder in one of them, or pass --encoder PATH)\n";
    for (const auto &m : models) std::cout << (m.usable ? "  usable    " : "  rejected  ") << m.path << ": " << m.description << '\n';
    return 0;
}

int cmd_reembed(const Args &a) {
    saem::Store store(a.get("db", "saem.db"));
    if (a.get("encoder").empty()) throw UsageError("reembed needs --encoder PATH");
    saem::LoadedEncoder enc = encoder_for(a, &store);
    store.clear_vectors();
    size_t n = saem::embed_missing(store, *enc.embedder, enc.path);
    saem::build_vector_index(store);
    std::cerr << "re-embedded " << n << " chunks with " << enc.embedder->identity() << '\n';
    return 0;
}

int cmd_stats(const Args &a) {
    saem::Store store(a.get("db", "saem.db"));
    json s = saem::to_json(store.stats());
    int status = 0;
    if (a.has("check")) {
        auto problems = store.check();
        s["check"] = problems.empty() ? json("ok") : json(problems);
        for (const auto &p : problems) std::cerr << "saem stats --check: " << p << '\n';
        status = problems.empty() ? 0 : 1;
    }
    std::cout << (a.has("json") ? s.dump(2) : s.dump()) << '\n';
    return status;
}

// ---- The option tables -------------------------------------------------------------------------

const Option db_option{"db", "FILE", "the index file (default ./saem.db)"};
const Option json_option{"json", "", "print JSON"};
const Option encoder_option{"encoder", "PATH", "the encoder (a model folder or GGUF); default: SAEM_ENCODER, the index's, the config's, the model folders'"};
const Option no_encoder_option{"no-encoder", "", "use no encoder: lexical search only"};

std::vector<Option> retrieval_options(int default_k) {
    return {db_option,
            {"k", "N", "how many chunks (default " + std::to_string(default_k) + ")"},
            {"mode", "MODE", "lexical, dense or hybrid (default: hybrid when the index has vectors and its encoder loads)"},
            encoder_option,
            no_encoder_option,
            {"mmr", "LAMBDA", "diversify with maximal marginal relevance, 0 (diverse) to 1 (relevant)"},
            {"rerank", "PATH", "re-score the top 30 with a cross-encoder (BertForSequenceClassification folder)"},
            {"path", "PREFIX", "only documents whose path starts with PREFIX"},
            {"meta", "KEY=VALUE", "only documents whose metadata KEY equals VALUE", true},
            json_option};
}

std::vector<Option> decoder_options() {
    return {{"model", "FILE.gguf", "a llama or qwen2 GGUF decoder (default: SAEM_MODEL)"},
            {"template", "NAME", "chat template, chatml or llama3, when the GGUF's is not recognised"},
            {"threads", "N", "compute threads (default: every hardware thread)"},
            {"context", "N", "context tokens (default 4096, capped at the model's)"}};
}

std::vector<Option> sampling_options() {
    return {{"greedy", "", "always take the most likely token"},
            {"seed", "N", "sampling seed (default: random)"},
            {"max-tokens", "N", "most tokens to generate"},
            {"temperature", "T", "sampling temperature (0: greedy)"},
            {"top-k", "N", "sample among the N most likely tokens (0: off)"},
            {"top-p", "P", "nucleus sampling (1: off)"},
            {"min-p", "P", "drop tokens below P times the best one's probability (0: off)"},
            {"repeat-penalty", "R", "penalty on the last 64 tokens (1: off)"},
            {"stop", "TEXT", "stop before TEXT", true}};
}

template <class... Lists>
std::vector<Option> join(std::vector<Option> first, const Lists &...rest) {
    (first.insert(first.end(), rest.begin(), rest.end()), ...);
    return first;
}

struct Entry {
    saem::cli::Command command;
    int (*run)(const Args &);
};

const std::vector<Entry> &commands() {
    static const std::vector<Entry> table = {
        {{"index", "DIR", 1, 1, "index a folder recursively; re-runs read only new and changed files and drop deleted ones",
          {db_option,
           {"include", "GLOB", "index only paths matching GLOB (relative to DIR)", true},
           {"exclude", "GLOB", "skip paths matching GLOB", true},
           {"chunk-tokens", "N", "tokens per chunk (default 256)"},
           {"overlap", "N", "tokens of overlap between neighbouring chunks (default 32)"},
           {"max-file-mb", "N", "skip files larger than N MiB (default 64)"},
           {"follow-symlinks", "", "index symbolic links to files whose real path is inside DIR (default: links are skipped)"},
           encoder_option,
           no_encoder_option,
           {"vector-index", "KIND", "FAISS index: flat (exact, default), hnsw or ivfpq"}}},
         cmd_index},
        {{"search", "\"QUERY\"", 1, 1, "search the index (BM25, dense or hybrid)", retrieval_options(10)}, cmd_search},
        {{"ask", "\"QUESTION\"", 1, 1,
          "answer from the index: extractive (quoted sentences) without a model, written by a decoder with --model",
          join(retrieval_options(5), decoder_options(), sampling_options(),
               std::vector<Option>{{"strict", "", "remove generated sentences their cited sources do not support (and say so)"},
                                   {"min-support", "S", "abstain below this support of the question in the sources (default 0.35; 0: never)"}})},
         cmd_ask},
        {{"serve", "", 0, 0, "serve the HTTP API",
          join(std::vector<Option>{db_option,
                                   {"host", "HOST", "address to listen on (default 127.0.0.1)"},
                                   {"port", "PORT", "port (default 8080; 0 picks a free one)"},
                                   {"max-body-mb", "N", "largest request body in MiB (default 32)"},
                                   {"generation-queue", "N", "generated answers admitted at once, running and waiting (default 4); more get 429"},
                                   {"http-threads", "N", "request workers (default: 8, or generation-queue + 4 if more)"},
                                   {"api-key-file", "FILE", "require Authorization: Bearer KEY, a key per line of FILE (also SAEM_API_KEY)"},
                                   {"cors-origin", "ORIGIN", "let pages of ORIGIN (https://host:port) call the API; others get 403", true},
                                   encoder_option,
                                   no_encoder_option,
                                   {"rerank", "PATH", "the cross-encoder for requests with \"rerank\": true"},
                                   {"max-tokens", "N", "default answer length of generated answers (default 512)"},
                                   {"collection", "NAME=DB", "serve the index DB as collection NAME (instead of --db)", true},
                                   {"data", "DIR", "serve every DIR/NAME.db as collection NAME"},
                                   {"generator-url", "URL", "generate on an OpenAI-compatible server (e.g. http://127.0.0.1:8000/v1)"},
                                   {"generator-model", "NAME", "the model to ask the generator server for"},
                                   {"generator-key-file", "FILE", "the generator server's API key (first line of FILE)"},
                                   {"generator-context", "N", "the remote model's context in tokens (default 8192)"},
                                   {"generator-timeout", "SECONDS", "give up on a silent generator server after SECONDS (default 60)"},
                                   {"generator-retries", "N", "attempts after a failure before the answer falls back (default 2)"},
                                   {"route", "POLICY", "with --model and --generator-url: local, remote or auto (default auto; thresholds: config \"router\")"},
                                   {"read-only", "", "refuse uploads and deletions (HTTP 403; MCP lists no write tools)"}},
               decoder_options())},
         cmd_serve},
        {{"mcp", "", 0, 0, "an MCP server over stdio (JSON-RPC, a message per line): search, ask and document tools, documents as resources",
          join(std::vector<Option>{db_option,
                                   {"collection", "NAME=DB", "serve the index DB as collection NAME (instead of --db)", true},
                                   {"data", "DIR", "serve every DIR/NAME.db as collection NAME"},
                                   encoder_option,
                                   no_encoder_option,
                                   {"rerank", "PATH", "the cross-encoder for \"rerank\": true"},
                                   {"max-tokens", "N", "answer length of generated answers (default 512)"},
                                   {"generator-url", "URL", "generate on an OpenAI-compatible server"},
                                   {"generator-model", "NAME", "the model to ask the generator server for"},
                                   {"generator-key-file", "FILE", "the generator server's API key (first line of FILE)"},
                                   {"generator-context", "N", "the remote model's context in tokens (default 8192)"},
                                   {"generator-timeout", "SECONDS", "give up on a silent generator server after SECONDS (default 60)"},
                                   {"generator-retries", "N", "attempts after a failure before the answer falls back (default 2)"},
                                   {"route", "POLICY", "with --model and --generator-url: local, remote or auto"},
                                   {"read-only", "", "offer no write tools (add_document, delete_document)"}},
               decoder_options())},
         cmd_mcp},
        {{"eval", "beir DIR | qa FILE.json", 2, 2,
          "index a BEIR dataset and print nDCG@10, Recall@100, MRR@10; or answer a SQuAD-format file's questions and print exact "
          "match, F1, gold-in-answer, citation accuracy and (with --unanswerable) the abstain rate",
          {db_option,
           {"split", "NAME", "qrels split (default test)"},
           {"mode", "MODE", "lexical (default), dense or hybrid"},
           encoder_option,
           {"keep-identical-ids", "", "keep hits whose id is the query's (BEIR drops them)"},
           {"chunk-tokens", "N", "tokens per chunk (default 256)"},
           {"overlap", "N", "tokens of overlap (default 32)"},
           {"heading-weight", "W", "BM25 weight of titles and headings (default 2)"},
           {"lexical-weight", "W", "hybrid fusion: weight of the lexical list"},
           {"dense-weight", "W", "hybrid fusion: weight of the dense list"},
           {"lexical-rrf-k", "K", "hybrid fusion: rank constant of the lexical list"},
           {"dense-rrf-k", "K", "hybrid fusion: rank constant of the dense list"},
           {"unanswerable", "FILE", "qa: questions (a line each) the file's paragraphs cannot answer: report the abstain rate"},
           {"min-support", "S", "qa: the answer's least support (see saem ask); below it the answer abstains"},
           {"sample", "all|even|odd", "qa: every question, or the even- or odd-numbered ones (choose on one, report the other)"},
           {"limit", "N", "qa: at most N questions"},
           {"k", "N", "qa: chunks retrieved per question (default 5)"},
           {"scan", "", "qa: print gold-in-answer and abstain rate for every --min-support from 0 to 1"},
           json_option}},
         cmd_eval},
        {{"stats", "", 0, 0, "document, chunk and vector counts, encoder, index size",
          {db_option, json_option, {"check", "", "verify the store's invariants; exit 1 on any problem"}}},
         cmd_stats},
        {{"models", "", 0, 0, "the encoders saem finds in the model folders, and why others were rejected", {}}, cmd_models},
        {{"reembed", "", 0, 0, "replace every vector with ones from another encoder", {db_option, encoder_option}}, cmd_reembed},
        {{"tokenize", "", 0, 0, "token ids of each stdin line as a JSON array (WordPiece or a decoder's BPE)",
          {{"tokenizer", "PATH", "tokenizer.json, vocab.txt, vocab.json + merges.txt folder, model folder or .gguf"}}},
         cmd_tokenize},
        {{"embed", "", 0, 0, "the embedding of each stdin line as a JSON array",
          {encoder_option, {"max-tokens", "N", "cut texts to N tokens"}, {"batch", "N", "lines per batch (default 64)"}}},
         cmd_embed},
        {{"generate", "\"PROMPT\"", 1, 1, "run a decoder: a raw continuation, or with --chat the model's reply; speeds to stderr",
          join(decoder_options(),
               std::vector<Option>{{"chat", "", "wrap the prompt in the model's chat template"},
                                   {"system", "TEXT", "system message (with --chat)"}},
               sampling_options())},
         cmd_generate},
        {{"perplexity", "FILE", 1, 1, "a decoder's perplexity over a text (FILE or - for stdin), by llama.cpp's method",
          {{"model", "FILE.gguf", "a llama or qwen2 GGUF decoder (default: SAEM_MODEL)"},
           {"context", "N", "tokens per window (default 512); the second half of each is scored"},
           {"batch", "N", "tokens per forward pass (default 512)"},
           {"windows", "N", "score at most the first N windows (default: all)"},
           {"threads", "N", "compute threads (default: every hardware thread)"},
           json_option}},
         cmd_perplexity},
        {{"quantize", "IN.gguf OUT.gguf TYPE", 3, 3,
          "quantise an F32/F16/BF16 GGUF as llama-quantize does: Q8_0, Q4_0, Q5_0, Q4_K_M, Q5_K_M or Q6_K (any case)",
          {{"threads", "N", "compute threads (default: every hardware thread)"}}},
         cmd_quantize},
        {{"convert", "FOLDER OUT.gguf", 2, 2,
          "a Hugging Face llama or qwen2 folder (config.json, safetensors, tokenizer) to a GGUF as llama.cpp's converter writes it",
          {{"type", "f16|q8_0|f32", "the weights' type (default f16; norms and biases stay f32)"}}},
         cmd_convert},
    };
    return table;
}

const Entry *find_command(const std::string &name) {
    for (const auto &e : commands())
        if (e.command.name == name) return &e;
    return nullptr;
}

std::string overview() {
    std::string out = "saem: a retrieval-augmented answer engine over your documents\n\nusage: saem COMMAND [options]\n\ncommands:\n";
    for (const auto &e : commands()) {
        std::string left = e.command.name + (e.command.operands.empty() ? "" : " " + e.command.operands);
        out += "  " + left + std::string(left.size() < 20 ? 20 - left.size() : 1, ' ') + e.command.summary + "\n";
    }
    out += "\nsaem help COMMAND (or saem COMMAND --help) lists a command's options.\n";
    return out;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) {
        std::cerr << overview();
        return 2;
    }
    std::string cmd = argv[1];
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
        if (argc < 3) {
            std::cout << overview();
            return 0;
        }
        const Entry *e = find_command(argv[2]);
        if (!e) {
            std::cerr << "saem: no command '" << argv[2] << "'\n" << overview();
            return 2;
        }
        std::cout << saem::cli::help(e->command);
        return 0;
    }
    const Entry *e = find_command(cmd);
    if (!e) {
        std::string closest;
        size_t best = 3;
        for (const auto &c : commands())
            if (size_t d = saem::cli::edit_distance(cmd, c.command.name); d < best) best = d, closest = c.command.name;
        std::cerr << "saem: unknown command '" << cmd << "'" << (closest.empty() ? "" : "; did you mean '" + closest + "'?")
                  << "\n\n" << overview();
        return 2;
    }
    try {
        Args args = saem::cli::parse(e->command, argc, argv, 2);
        if (args.help) {
            std::cout << saem::cli::help(e->command);
            return 0;
        }
        return e->run(args);
    } catch (const std::invalid_argument &ex) {  // UsageError, RequestError: what was asked cannot be done
        std::cerr << "saem " << cmd << ": " << ex.what() << "\n";
        return 2;
    } catch (const std::exception &ex) {
        std::cerr << "saem " << cmd << ": " << ex.what() << "\n";
        return 1;
    }
}
