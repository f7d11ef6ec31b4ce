// What retrieval hands to everything above it (generator, api): plain values, no store, no model.
// A Hit is a copy of one chunk and its document as they were when the search read them.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace saem {

struct Hit {
    int64_t chunk_id = 0, document_id = 0;
    int ordinal = 0, page = 0;
    std::string path, title, heading, text, snippet;
    double score = 0;  // of the last stage that ranked it (BM25, cosine, fusion or cross-encoder); higher is better
};

enum class SearchMode { lexical, dense, hybrid };

// A search's answer: the hits, the mode that was run, and the question's index terms with their
// inverse document frequency over the chunks (what the extractive answer weighs sentences by).
struct Retrieved {
    SearchMode mode = SearchMode::lexical;
    std::vector<Hit> hits;
    std::vector<std::pair<std::string, double>> term_idf;  // distinct terms, in query order
    // Seconds per stage that ran: embed, lexical, dense, fuse, idf, rerank, mmr, read (GET /metrics).
    std::vector<std::pair<std::string, double>> stage_seconds;
};

}  // namespace saem
