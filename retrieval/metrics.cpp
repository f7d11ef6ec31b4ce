// Retrieval metrics as trec_eval (and so BEIR and MTEB) define them: graded gain, log2 discount,
// ideal DCG over every judged document of the query.
#include "retrieval/metrics.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

namespace saem {

namespace {
std::unordered_map<std::string, int> relevance(const Qrels &qrels) {
    std::unordered_map<std::string, int> rel;
    for (const auto &[doc, grade] : qrels) rel[doc] = grade;
    return rel;
}
}  // namespace

double ndcg_at(const std::vector<std::string> &ranked, const Qrels &qrels, size_t k) {
    auto rel = relevance(qrels);
    double dcg = 0;
    for (size_t i = 0; i < ranked.size() && i < k; ++i) {
        auto it = rel.find(ranked[i]);
        if (it != rel.end() && it->second > 0) dcg += it->second / std::log2(double(i) + 2);
    }
    std::vector<int> grades;
    for (const auto &[doc, grade] : rel)
        if (grade > 0) grades.push_back(grade);
    std::sort(grades.rbegin(), grades.rend());
    double idcg = 0;
    for (size_t i = 0; i < grades.size() && i < k; ++i) idcg += grades[i] / std::log2(double(i) + 2);
    return idcg > 0 ? dcg / idcg : 0;
}

double recall_at(const std::vector<std::string> &ranked, const Qrels &qrels, size_t k) {
    auto rel = relevance(qrels);
    size_t relevant = 0, found = 0;
    for (const auto &[doc, grade] : rel) relevant += grade > 0;
    for (size_t i = 0; i < ranked.size() && i < k; ++i) {
        auto it = rel.find(ranked[i]);
        found += it != rel.end() && it->second > 0;
    }
    return relevant ? double(found) / double(relevant) : 0;
}

double mrr_at(const std::vector<std::string> &ranked, const Qrels &qrels, size_t k) {
    auto rel = relevance(qrels);
    for (size_t i = 0; i < ranked.size() && i < k; ++i) {
        auto it = rel.find(ranked[i]);
        if (it != rel.end() && it->second > 0) return 1.0 / double(i + 1);
    }
    return 0;
}

}  // namespace saem
