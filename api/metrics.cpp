#include "api/metrics.h"

#include <algorithm>
#include <cstdio>
#include <regex>

namespace saem {

namespace {
// Seconds: from a cached search to a long generated answer.
const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
constexpr size_t n_bounds = sizeof bounds / sizeof bounds[0];

std::string number(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}
}  // namespace

std::string Metrics::route_of(const std::string &path) {
    static const std::regex document_id("/v1/documents/[0-9]+");
    static const char *known[] = {"/healthz", "/metrics", "/v1/stats", "/v1/search", "/v1/ask", "/v1/documents",
                                  "/v1/embeddings", "/v1/models", "/v1/rerank", "/v1/chat/completions", "/v1/collections", "/", "/page.js"};
    for (const char *k : known)
        if (path == k) return k;
    if (std::regex_match(path, document_id)) return "/v1/documents/{id}";
    return "other";
}

void Metrics::count(const std::string &route, int status) {
    std::lock_guard lock(mutex_);
    ++requests_[{route, status}];
}

void Metrics::Histogram::add(double seconds) {
    if (buckets.empty()) buckets.assign(n_bounds, 0);
    for (size_t i = 0; i < n_bounds; ++i)
        if (seconds <= bounds[i]) {
            ++buckets[i];
            break;
        }
    ++count;
    sum += seconds;
}

void Metrics::time(const std::string &route, double seconds) {
    std::lock_guard lock(mutex_);
    latency_[route].add(seconds);
}

void Metrics::stage(const std::string &name, double seconds) {
    std::lock_guard lock(mutex_);
    stages_[name].add(seconds);
}

void Metrics::tokens(const std::string &route, int64_t prompt, int64_t generated) {
    std::lock_guard lock(mutex_);
    auto &t = tokens_[route];
    t.first += uint64_t(std::max<int64_t>(prompt, 0));
    t.second += uint64_t(std::max<int64_t>(generated, 0));
}

namespace {
void render_histograms(std::string &out, const char *name, const char *help, const char *label,
                       const std::map<std::string, Metrics::Histogram> &histograms) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " histogram\n";
    for (const auto &[value, h] : histograms) {
        const std::string l = std::string(label) + "=\"" + value + "\"";
        uint64_t cumulative = 0;
        for (size_t i = 0; i < n_bounds; ++i) {
            cumulative += h.buckets[i];
            out += std::string(name) + "_bucket{" + l + ",le=\"" + number(bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
        }
        out += std::string(name) + "_bucket{" + l + ",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
        out += std::string(name) + "_sum{" + l + "} " + number(h.sum) + "\n";
        out += std::string(name) + "_count{" + l + "} " + std::to_string(h.count) + "\n";
    }
}
}  // namespace

std::string Metrics::render(const std::string &extra) const {
    std::lock_guard lock(mutex_);
    std::string out = "# HELP saem_requests_total HTTP requests answered, by route and status.\n"
                      "# TYPE saem_requests_total counter\n";
    for (const auto &[key, n] : requests_)
        out += "saem_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
               std::to_string(n) + "\n";
    render_histograms(out, "saem_request_seconds", "Time in a route's handler (a stream: until its first byte).", "route", latency_);
    render_histograms(out, "saem_stage_seconds",
                      "Time per stage of retrieval (embed, lexical, dense, fuse, idf, rerank, mmr, read) and generation (prompt: until "
                      "the first token; generation: the rest).",
                      "stage", stages_);
    out += "# HELP saem_tokens_total Tokens of generated answers, by route (local, remote) and kind.\n"
           "# TYPE saem_tokens_total counter\n";
    for (const auto &[route, t] : tokens_) {
        out += "saem_tokens_total{route=\"" + route + "\",kind=\"prompt\"} " + std::to_string(t.first) + "\n";
        out += "saem_tokens_total{route=\"" + route + "\",kind=\"generated\"} " + std::to_string(t.second) + "\n";
    }
    return out + extra;
}

}  // namespace saem
