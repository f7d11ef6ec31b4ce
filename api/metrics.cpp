#include "api/metrics.h"

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
                                  "/v1/embeddings", "/v1/models", "/v1/rerank", "/v1/chat/completions", "/v1/collections", "/"};
    for (const char *k : known)
        if (path == k) return k;
    if (std::regex_match(path, document_id)) return "/v1/documents/{id}";
    return "other";
}

void Metrics::count(const std::string &route, int status) {
    std::lock_guard lock(mutex_);
    ++requests_[{route, status}];
}

void Metrics::time(const std::string &route, double seconds) {
    std::lock_guard lock(mutex_);
    Histogram &h = latency_[route];
    if (h.buckets.empty()) h.buckets.assign(n_bounds, 0);
    for (size_t i = 0; i < n_bounds; ++i)
        if (seconds <= bounds[i]) {
            ++h.buckets[i];
            break;
        }
    ++h.count;
    h.sum += seconds;
}

std::string Metrics::render(const std::string &extra) const {
    std::lock_guard lock(mutex_);
    std::string out = "# HELP saem_requests_total HTTP requests answered, by route and status.\n"
                      "# TYPE saem_requests_total counter\n";
    for (const auto &[key, n] : requests_)
        out += "saem_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) + "\"} " +
               std::to_string(n) + "\n";
    out += "# HELP saem_request_seconds Time in a route's handler (a stream: until its first byte).\n"
           "# TYPE saem_request_seconds histogram\n";
    for (const auto &[route, h] : latency_) {
        uint64_t cumulative = 0;
        for (size_t i = 0; i < n_bounds; ++i) {
            cumulative += h.buckets[i];
            out += "saem_request_seconds_bucket{route=\"" + route + "\",le=\"" + number(bounds[i]) + "\"} " +
                   std::to_string(cumulative) + "\n";
        }
        out += "saem_request_seconds_bucket{route=\"" + route + "\",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
        out += "saem_request_seconds_sum{route=\"" + route + "\"} " + number(h.sum) + "\n";
        out += "saem_request_seconds_count{route=\"" + route + "\"} " + std::to_string(h.count) + "\n";
    }
    return out + extra;
}

}  // namespace saem
