#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "retrieval/metrics.h"

#include <cmath>

using namespace saem;

static Qrels qrels(std::initializer_list<std::pair<std::string, int>> l) {
    Qrels q;
    for (auto &p : l) q.push_back(p);
    return q;
}

TEST_CASE("nDCG@k with graded gains and ideal DCG over all judged documents") {
    // Relevant: d1 (2), d2 (1), d3 (1, never retrieved); d9 judged 0.
    auto q = qrels({{"d1", 2}, {"d2", 1}, {"d3", 1}, {"d9", 0}});
    std::vector<std::string> ranked = {"x", "d1", "d9", "d2"};
    double dcg = 2 / std::log2(3.0) + 1 / std::log2(5.0);
    double idcg = 2 / std::log2(2.0) + 1 / std::log2(3.0) + 1 / std::log2(4.0);
    CHECK(ndcg_at(ranked, q, 10) == doctest::Approx(dcg / idcg));
    CHECK(ndcg_at(ranked, q, 10) == doctest::Approx(0.5406).epsilon(1e-3));
    // Cut at 2: only d1 counts; the ideal is cut at 2 as well.
    CHECK(ndcg_at(ranked, q, 2) == doctest::Approx((2 / std::log2(3.0)) / (2 + 1 / std::log2(3.0))));
    CHECK(ndcg_at({"d1", "d2", "d3"}, q, 10) == doctest::Approx(1.0));
    CHECK(ndcg_at({}, q, 10) == 0);
    CHECK(ndcg_at({"d1"}, qrels({{"d1", 0}}), 10) == 0);  // nothing relevant: 0, not NaN
}

TEST_CASE("recall@k counts relevant documents found in the top k") {
    auto q = qrels({{"a", 1}, {"b", 2}, {"c", 1}, {"z", 0}});
    CHECK(recall_at({"a", "z", "b"}, q, 100) == doctest::Approx(2.0 / 3));
    CHECK(recall_at({"a", "z", "b"}, q, 2) == doctest::Approx(1.0 / 3));
    CHECK(recall_at({"z"}, q, 100) == 0);
}

TEST_CASE("MRR@k is the reciprocal rank of the first relevant hit within k") {
    auto q = qrels({{"a", 1}, {"b", 1}});
    CHECK(mrr_at({"x", "y", "b", "a"}, q, 10) == doctest::Approx(1.0 / 3));
    CHECK(mrr_at({"x", "y", "b"}, q, 2) == 0);
    CHECK(mrr_at({"a"}, q, 10) == 1);
}
