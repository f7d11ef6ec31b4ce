// api/metrics.h: the server's counters, in Prometheus text format (GET /metrics).
//
// Requests by route and status, and a latency histogram per route (handler time: reading the
// body, the work, the response built; a streamed answer counts until its first byte). Routes are
// patterns (/v1/documents/{id}), so the label set stays small whatever clients send. A latency
// histogram per stage of retrieval and generation (Retrieved::stage_seconds, the answer's prompt
// and generation times), and the tokens of generated answers.
//
// Threads: any thread may call every method.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace saem {

class Metrics {
public:
    // The route label of a request path: a known route or its pattern, else "other".
    static std::string route_of(const std::string &path);
    void count(const std::string &route, int status);
    void time(const std::string &route, double seconds);
    void stage(const std::string &name, double seconds);
    void tokens(const std::string &route, int64_t prompt, int64_t generated);
    // The families above, then extra lines the caller renders (gauges it reads when asked).
    std::string render(const std::string &extra) const;

    struct Histogram {
        std::vector<uint64_t> buckets;  // one per bound, cumulative when rendered
        uint64_t count = 0;
        double sum = 0;
        void add(double seconds);
    };

private:
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, int>, uint64_t> requests_;
    std::map<std::string, Histogram> latency_, stages_;
    std::map<std::string, std::pair<uint64_t, uint64_t>> tokens_;  // route -> prompt, generated
};

}  // namespace saem
