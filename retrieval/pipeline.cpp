// The retrieval pipeline (pipeline.h): candidates, fusion, rerank, MMR, hits.
#include "retrieval/pipeline.h"
#include "retrieval/lexer.h"
#include "retrieval/vectors.h"

#include "nn/embedder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iterator>
#include <unordered_map>
#include <unordered_set>

namespace saem {

namespace {
// A query longer than this many distinct terms is cut: BM25 cost grows with every OR-ed term and
// a pasted page of text gains nothing from its 200th word.
constexpr size_t max_query_terms = 64;
}  // namespace

std::string fts_query(std::string_view text) {
    std::string out;
    std::unordered_set<std::string> seen;
    lexer::segment(text, [&](const lexer::Piece &piece) {
        if (seen.size() >= max_query_terms) return;
        std::string term = lexer::term(text, piece);
        if (term.empty() || !seen.insert(term).second) return;
        if (!out.empty()) out += " OR ";
        // Pieces hold only letters, digits and marks, so quoting needs no escaping; "" keeps that
        // true should segmentation ever change.
        out += '"';
        for (char c : piece.cjk ? std::string_view(term) : text.substr(piece.begin, piece.end - piece.begin)) {
            if (c == '"') out += '"';
            out += c;
        }
        out += '"';
        // A lone CJK character is indexed only inside bigrams: match it as their prefix.
        if (piece.cjk && term.size() <= 4) out += '*';
    });
    return out;
}

std::vector<std::string> analyze(std::string_view text) {
    std::vector<std::string> terms;
    lexer::segment(text, [&](const lexer::Piece &piece) {
        std::string term = lexer::term(text, piece);
        if (!term.empty()) terms.push_back(std::move(term));
    });
    return terms;
}

SearchMode parse_mode(const std::string &name) {
    if (name == "lexical") return SearchMode::lexical;
    if (name == "dense") return SearchMode::dense;
    if (name == "hybrid") return SearchMode::hybrid;
    throw RequestError("invalid_field", "unknown search mode '" + name + "' (lexical, dense, hybrid)");
}

const char *mode_name(SearchMode mode) {
    return mode == SearchMode::dense ? "dense" : mode == SearchMode::hybrid ? "hybrid" : "lexical";
}

namespace {

std::vector<int64_t> ids_of(const Ranked &ranked) {
    std::vector<int64_t> ids;
    ids.reserve(ranked.size());
    for (const auto &r : ranked) ids.push_back(r.first);
    return ids;
}

Ranked dense_ranking(Store &store, const std::vector<float> &q, const Filter &filter, int limit) {
    auto index = current_vector_index(store);
    if (!index) return {};
    if (size_t(index->dim()) != q.size())
        throw RequestError("encoder_mismatch", "the encoder makes " + std::to_string(q.size()) + "-d vectors, the index holds " +
                                                   std::to_string(index->dim()) + "-d ones");
    // FAISS does not know documents: filters are applied after, fetching more until enough pass.
    for (int fetch = filter.empty() ? limit : limit * 8;; fetch *= 4) {
        auto found = index->search(q.data(), fetch);
        Ranked out;
        if (filter.empty()) {
            for (auto [id, score] : found) out.emplace_back(id, score);
        } else {
            std::vector<int64_t> ids;
            std::unordered_map<int64_t, float> score_of;
            for (auto [id, score] : found) ids.push_back(id), score_of[id] = score;
            for (int64_t id : store.filter_chunks(ids, filter, size_t(limit))) out.emplace_back(id, score_of[id]);
        }
        if (int(out.size()) >= limit || int64_t(found.size()) >= index->size() || int(found.size()) < fetch) {
            if (int(out.size()) > limit) out.resize(size_t(limit));
            return out;
        }
    }
}

// Reciprocal-rank fusion in which each list has its own weight and rank constant. A small
// constant makes a list's top ranks decisive; a large one makes it a gentle tie-breaker that
// mostly adds what the other list missed.
Ranked fuse(const Ranked &lexical, const Ranked &dense, const Fusion &f) {
    std::unordered_map<int64_t, double> score;
    for (size_t r = 0; r < lexical.size(); ++r) score[lexical[r].first] += f.lexical_weight / (f.lexical_rrf_k + double(r + 1));
    for (size_t r = 0; r < dense.size(); ++r) score[dense[r].first] += f.dense_weight / (f.dense_rrf_k + double(r + 1));
    Ranked out(score.begin(), score.end());
    std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    return out;
}

// Pairwise similarity of candidate chunks: vector cosine where every candidate has a vector,
// otherwise the Jaccard overlap of their index terms.
std::vector<std::vector<float>> similarities(Store &store, const Ranked &ranked) {
    const size_t n = ranked.size();
    std::vector<std::vector<float>> sim(n, std::vector<float>(n, 0.f));
    std::vector<int64_t> ids = ids_of(ranked);
    std::vector<std::vector<float>> vecs = store.chunk_vectors(ids);
    bool all_vectors = std::all_of(vecs.begin(), vecs.end(), [&](const auto &v) { return !v.empty() && v.size() == vecs[0].size(); });
    std::vector<std::vector<std::string>> terms(n);
    if (!all_vectors) {
        std::unordered_map<int64_t, size_t> position;
        for (size_t i = 0; i < n; ++i) position[ids[i]] = i;
        for (const Hit &h : store.read_hits(ids)) {
            auto &t = terms[position.at(h.chunk_id)];
            t = analyze(h.text);
            std::sort(t.begin(), t.end());
            t.erase(std::unique(t.begin(), t.end()), t.end());
        }
    }
    for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j) {
            float s = 0;
            if (all_vectors) {
                double dot = 0, ni = 0, nj = 0;
                for (size_t k = 0; k < vecs[i].size(); ++k) {
                    dot += double(vecs[i][k]) * vecs[j][k];
                    ni += double(vecs[i][k]) * vecs[i][k];
                    nj += double(vecs[j][k]) * vecs[j][k];
                }
                s = ni > 0 && nj > 0 ? float(dot / std::sqrt(ni * nj)) : 0.f;
            } else {
                std::vector<std::string> common;
                std::set_intersection(terms[i].begin(), terms[i].end(), terms[j].begin(), terms[j].end(), std::back_inserter(common));
                size_t uni = terms[i].size() + terms[j].size() - common.size();
                s = uni ? float(common.size()) / float(uni) : 0.f;
            }
            sim[i][j] = sim[j][i] = s;
        }
    return sim;
}

Ranked maximal_marginal_relevance(Store &store, const Ranked &ranked, int k, double lambda) {
    if (ranked.size() <= 1) return ranked;
    // Relevance as a share of the best score (BM25, fusion and cosine scores are positive where
    // they matter); min-max scaling would give the last candidate no relevance at all.
    double hi = 0;
    for (const auto &r : ranked) hi = std::max(hi, r.second);
    auto relevance = [&](size_t i) { return hi > 0 ? std::max(0.0, ranked[i].second / hi) : 1.0; };
    auto sim = similarities(store, ranked);
    std::vector<bool> taken(ranked.size(), false);
    std::vector<size_t> chosen;
    Ranked out;
    while (out.size() < size_t(k) && out.size() < ranked.size()) {
        size_t best = 0;
        double best_value = -1e300;
        for (size_t i = 0; i < ranked.size(); ++i) {
            if (taken[i]) continue;
            double redundancy = 0;
            for (size_t j : chosen) redundancy = std::max(redundancy, double(sim[i][j]));
            double value = lambda * relevance(i) - (1 - lambda) * redundancy;
            if (value > best_value) { best_value = value; best = i; }
        }
        taken[best] = true;
        chosen.push_back(best);
        out.push_back(ranked[best]);
    }
    return out;
}

Ranked rerank(Store &store, std::string_view query, const Ranked &ranked, const nn::Reranker &reranker, int top) {
    size_t n = std::min(ranked.size(), size_t(std::max(top, 1)));
    Ranked head(ranked.begin(), ranked.begin() + std::ptrdiff_t(n));
    std::vector<Hit> hits = store.read_hits(ids_of(head));
    // A chunk deleted since it was ranked has no text to score: it is dropped here.
    Ranked scored;
    std::vector<std::string> passages;
    for (const Hit &h : hits) {
        passages.push_back(embedding_text(h.heading, h.text));
        scored.emplace_back(h.chunk_id, 0.0);
    }
    std::vector<float> scores = reranker.score(std::string(query), passages);
    for (size_t i = 0; i < scored.size(); ++i) scored[i].second = scores[i];
    std::stable_sort(scored.begin(), scored.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
    // What the cross-encoder did not see keeps its order, after what it did.
    scored.insert(scored.end(), ranked.begin() + std::ptrdiff_t(n), ranked.end());
    return scored;
}

}  // namespace

Retriever::Retriever(Models models) : models_(std::move(models)) {}

SearchMode Retriever::default_mode(Store &store) const {
    return models_.embedder && store.has_vectors() ? SearchMode::hybrid : SearchMode::lexical;
}

void Retriever::check_encoder(Store &store) const {
    if (!models_.embedder) return;
    auto recorded = store.encoder();
    if (!recorded || !store.has_vectors() || recorded->identity == models_.embedder->identity()) return;
    throw RequestError("encoder_mismatch",
                       "the index's vectors were made by " + recorded->identity + (recorded->path.empty() ? "" : " (" + recorded->path + ")") +
                           ", but the encoder at hand is " + models_.embedder->identity() +
                           ": dense results would be meaningless. Use that encoder, search in lexical mode, or re-embed "
                           "the index with saem reembed --encoder PATH");
}

Retrieved Retriever::search(Store &store, const SearchRequest &req) const {
    Retrieved out;
    out.mode = req.mode ? *req.mode : default_mode(store);
    if (out.mode != SearchMode::lexical) {
        if (!models_.embedder)
            throw RequestError("no_encoder", std::string(mode_name(out.mode)) +
                                                 " search needs an encoder (--encoder PATH, or an index made with one)");
        check_encoder(store);
    }
    if (req.rerank && !models_.reranker)
        throw RequestError("no_reranker", "reranking needs a cross-encoder (--rerank PATH)");
    if (std::string problem = filter_problem(req.filter); !problem.empty()) throw RequestError("invalid_field", problem);
    if (req.mmr_lambda && !(*req.mmr_lambda >= 0 && *req.mmr_lambda <= 1))
        throw RequestError("invalid_field", "the MMR lambda must be from 0 (diverse) to 1 (relevant)");

    if (req.k <= 0) return out;
    std::string match = fts_query(req.query);
    int candidates = std::max(req.k, req.candidates);
    // MMR and reranking choose among more than they return.
    int first_list = req.mmr_lambda ? candidates : req.rerank ? std::max(req.k, req.rerank_top) : req.k;
    // The query is embedded before the snapshot opens: inference holds no read transaction.
    auto clock = std::chrono::steady_clock::now();
    auto lap = [&](const char *stage) {
        auto now = std::chrono::steady_clock::now();
        out.stage_seconds.emplace_back(stage, std::chrono::duration<double>(now - clock).count());
        clock = now;
    };
    std::vector<float> query_vector;
    if (out.mode != SearchMode::lexical) {
        query_vector.resize(size_t(models_.embedder->dim()));
        models_.embedder->embed({req.query}, query_vector.data());
        lap("embed");
    }
    Ranked ranked;
    {
        // Every list and the idf below come from one committed snapshot of the store.
        Store::Snapshot snapshot(store);
        switch (out.mode) {
        case SearchMode::lexical:
            if (!match.empty()) ranked = store.match_chunks(match, req.filter, req.heading_weight, first_list);
            lap("lexical");
            break;
        case SearchMode::dense:
            ranked = dense_ranking(store, query_vector, req.filter, first_list);
            lap("dense");
            break;
        case SearchMode::hybrid: {
            Ranked lexical = match.empty() ? Ranked{} : store.match_chunks(match, req.filter, req.heading_weight, candidates);
            lap("lexical");
            Ranked dense = dense_ranking(store, query_vector, req.filter, candidates);
            lap("dense");
            ranked = fuse(lexical, dense, req.fusion);
            lap("fuse");
            break;
        }
        }
        if (req.term_idf) {
            std::vector<std::string> terms;
            std::unordered_set<std::string> seen;
            for (auto &t : analyze(req.query))
                if (seen.insert(t).second) terms.push_back(std::move(t));
            std::vector<double> idf = store.idf(terms);
            for (size_t i = 0; i < terms.size(); ++i) out.term_idf.emplace_back(terms[i], idf[i]);
        }
        if (req.term_idf) lap("idf");
    }
    if (req.rerank && !ranked.empty()) {
        ranked = rerank(store, req.query, ranked, *models_.reranker, req.rerank_top);
        // MMR then chooses among what the cross-encoder scored: its logits and the first stage's
        // scores are not on one scale.
        if (req.mmr_lambda && int(ranked.size()) > std::max(req.k, req.rerank_top)) ranked.resize(size_t(std::max(req.k, req.rerank_top)));
        lap("rerank");
    }
    if (req.mmr_lambda) {
        ranked = maximal_marginal_relevance(store, ranked, req.k, *req.mmr_lambda);
        lap("mmr");
    }
    if (int(ranked.size()) > req.k) ranked.resize(size_t(req.k));
    if (ranked.empty()) return out;

    // A chunk deleted between ranking and reading (a concurrent writer) is left out by read_hits.
    out.hits = store.read_hits(ids_of(ranked));
    std::unordered_map<int64_t, double> score;
    for (const auto &[id, s] : ranked) score[id] = s;
    for (Hit &h : out.hits) h.score = score[h.chunk_id];

    if (req.snippets) {
        std::vector<std::string> snippets;
        if (!match.empty()) {
            std::vector<int64_t> ids;
            for (const Hit &h : out.hits) ids.push_back(h.chunk_id);
            snippets = store.snippets(match, ids, req.mark_open, req.mark_close);
        }
        for (size_t i = 0; i < out.hits.size(); ++i) {
            Hit &h = out.hits[i];
            if (i < snippets.size()) h.snippet = snippets[i];
            if (h.snippet.empty()) {  // a dense-only hit shares no term with the query: its opening words
                size_t cut = std::min(h.text.size(), size_t(160));
                while (cut < h.text.size() && (static_cast<unsigned char>(h.text[cut]) & 0xC0) == 0x80) ++cut;
                h.snippet = h.text.substr(0, cut) + (cut < h.text.size() ? "…" : "");
            }
        }
    }
    lap("read");  // hits and snippets
    return out;
}

}  // namespace saem
