// BEIR / trec_eval metrics for one query. ranked: document ids, best first. qrels: judged
// documents and their graded relevance (0 = judged not relevant). Pure functions: any thread.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace saem {

struct Qrels : std::vector<std::pair<std::string, int>> {};
double ndcg_at(const std::vector<std::string> &ranked, const Qrels &qrels, size_t k);
double recall_at(const std::vector<std::string> &ranked, const Qrels &qrels, size_t k);
double mrr_at(const std::vector<std::string> &ranked, const Qrels &qrels, size_t k);

}  // namespace saem
