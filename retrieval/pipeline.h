// The retrieval pipeline: from a request to ranked hits. It owns everything between the user's
// text and the store: query embedding, lexical / dense / hybrid ranking, fusion, filters,
// cross-encoder reranking, maximal marginal relevance, snippets, and the one rule that picks the
// mode a request leaves open. The CLI, the HTTP server and BEIR evaluation all send it the same
// SearchRequest, so an option given anywhere reaches the ranking.
//
// Stages, in order:
//   1. candidates: lexical (FTS5 BM25), dense (FAISS over the chunk vectors, the query embedded by
//      the encoder) or both, each list filtered;
//   2. hybrid: weighted reciprocal-rank fusion of the two lists;
//   3. rerank (when asked): a cross-encoder re-scores the first rerank_top;
//   4. MMR (when asked): diversify down to k;
//   5. hits read from the store in that order, snippets added.
//
// Threads: a Retriever is immutable after construction; search() may be called from any number
// of threads at once, each with its own Store. Its models are shared (their inference functions
// are const and thread-safe) and run their parallel work on nn::compute_pool().
#pragma once

#include "retrieval/hit.h"
#include "retrieval/store.h"

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

namespace saem::nn {
class Embedder;
class Reranker;
}  // namespace saem::nn

namespace saem {

// A request the pipeline cannot serve as asked; code is the HTTP API's error code
// (invalid_field, no_encoder, encoder_mismatch, no_reranker).
struct RequestError : std::invalid_argument {
    RequestError(std::string code, const std::string &message) : std::invalid_argument(message), code(std::move(code)) {}
    std::string code;
};

SearchMode parse_mode(const std::string &name);  // throws RequestError
const char *mode_name(SearchMode mode);

// Hybrid fusion: score = lexical_weight / (lexical_rrf_k + lexical rank)
//                      + dense_weight / (dense_rrf_k + dense rank)
// BM25's first ranks are where it is most often right; a small embedder's are not. So the
// lexical list gets a small rank constant (its top hits stay on top) and the dense list a large
// one (it mostly lifts what BM25 ranked low or missed). On SciFact with potion-base-4M this keeps
// BM25's nDCG@10 and raises Recall@100, where plain RRF (60/60) loses 0.05 nDCG@10
// (bench/README.md).
struct Fusion {
    double lexical_weight = 1.0, dense_weight = 1.0;
    double lexical_rrf_k = 5, dense_rrf_k = 60;
};

// The MMR lambda of a request that asks for MMR without one ("mmr": true).
constexpr double default_mmr_lambda = 0.7;

struct SearchRequest {
    std::string query;
    int k = 10;
    std::optional<SearchMode> mode;  // unset: Retriever::default_mode()
    Filter filter;
    // Maximal marginal relevance over the candidates: each next hit maximises
    // lambda * relevance - (1 - lambda) * (greatest similarity to a hit already chosen).
    // Similarity is the cosine of chunk vectors when the index has them, else the overlap of terms.
    std::optional<double> mmr_lambda;  // unset: no MMR
    bool rerank = false;               // the Retriever's cross-encoder re-scores the first rerank_top
    int rerank_top = 30;
    int candidates = 100;              // per list, before fusion and MMR
    Fusion fusion;
    double heading_weight = 2.0;       // BM25 weight of the title/heading column relative to the text
    bool snippets = true;
    std::string mark_open = "[", mark_close = "]";
    bool term_idf = false;             // fill Retrieved::term_idf (what extractive answers weigh by)
};

class Retriever {
public:
    struct Models {
        std::shared_ptr<const nn::Embedder> embedder;  // dense and hybrid; null: lexical only
        std::shared_ptr<const nn::Reranker> reranker;  // null: requests with rerank are refused
    };
    Retriever() = default;
    explicit Retriever(Models models);

    // The mode of a request that names none: hybrid when the index has vectors and this retriever
    // has an encoder, lexical otherwise.
    SearchMode default_mode(Store &store) const;
    // Throws RequestError (encoder_mismatch) when the index's vectors were made by another encoder
    // than this retriever's, naming both; nothing when they agree or the index has no vectors.
    void check_encoder(Store &store) const;

    // Runs the stages above. Throws RequestError for a request it cannot serve (a dense mode
    // without an encoder, an encoder other than the index's, rerank without a reranker, a bad
    // filter), StoreError when the store fails.
    Retrieved search(Store &store, const SearchRequest &request) const;

    const nn::Embedder *embedder() const { return models_.embedder.get(); }
    const nn::Reranker *reranker() const { return models_.reranker.get(); }

private:
    Models models_;
};

// Brings the FAISS cache (<db>.faiss) up to the store's vectors now rather than at the first
// dense search (after indexing, re-embedding). Any thread, with its own Store.
void build_vector_index(Store &store);
// Removes an index file's FAISS cache, on disk and in memory (temporary indexes). Only when no
// other thread uses that index file.
void drop_vector_cache(const std::string &db_path);

}  // namespace saem
