#include "retrieval/lexer.h"
#include "retrieval/retrieval.h"
#include "retrieval/sqlite.h"
#include "retrieval/vectors.h"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <memory>
#include <unordered_map>
#include <unordered_set>

namespace saem {

namespace {
// A query longer than this many distinct terms is cut: BM25 cost grows with every OR-ed term and
// a pasted page of text gains nothing from its 200th word.
constexpr size_t max_query_terms = 64;

bool valid_metadata_key(const std::string &key) {
    return !key.empty() && key.size() <= 128 &&
           std::all_of(key.begin(), key.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
           });
}
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
    throw StoreError("unknown search mode '" + name + "' (lexical, dense, hybrid)");
}

const char *mode_name(SearchMode mode) {
    return mode == SearchMode::dense ? "dense" : mode == SearchMode::hybrid ? "hybrid" : "lexical";
}

namespace {

using Ranked = std::vector<std::pair<int64_t, double>>;  // chunk id, score; best first

// " AND ..." conditions on documents d for a filter, and their bindings from ?first on.
std::string filter_sql(const Filter &f, int first) {
    std::string sql;
    if (!f.path_prefix.empty()) sql += " AND substr(d.path, 1, length(?" + std::to_string(first) + ")) = ?" + std::to_string(first);
    int next = first + 1;
    for (const auto &[key, value] : f.metadata) {
        if (!valid_metadata_key(key))
            throw StoreError("metadata filter key '" + key + "' must be letters, digits, '_', '-' or '.'");
        if (!(value.is_string() || value.is_number() || value.is_boolean()))
            throw StoreError("metadata filter '" + key + "' must be a string, number or boolean");
        sql += " AND json_extract(d.metadata, '$.\"" + key + "\"') = ?" + std::to_string(next++);
    }
    return sql;
}

void bind_filter(sql::Stmt &st, const Filter &f, int first) {
    if (!f.path_prefix.empty()) st.bind(first, f.path_prefix);
    int i = first + 1;
    for (const auto &[key, value] : f.metadata) {
        if (value.is_string()) st.bind(i++, value.get<std::string>());
        else if (value.is_boolean()) st.bind(i++, int64_t(value.get<bool>()));
        else if (value.is_number_integer()) st.bind(i++, value.get<int64_t>());
        else st.bind(i++, value.get<double>());
    }
}

bool filtered(const Filter &f) { return !f.path_prefix.empty() || !f.metadata.empty(); }

Ranked lexical_ranking(sqlite3 *db, const std::string &match, const SearchOptions &opt, int limit) {
    // Rank touching only what filters need; chunk text is read later, for the winners alone.
    std::string sql = "SELECT chunks_fts.rowid, bm25(chunks_fts, 1.0, ?2) AS score FROM chunks_fts";
    if (filtered(opt.filter))
        sql += " JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.document_id";
    sql += " WHERE chunks_fts MATCH ?1" + filter_sql(opt.filter, 4) + " ORDER BY score LIMIT ?3";
    sql::Stmt st(db, sql);
    st.bind(1, match).bind(2, opt.heading_weight).bind(3, limit);
    bind_filter(st, opt.filter, 4);
    Ranked out;
    while (st.step()) out.emplace_back(st.i64(0), -st.f64(1));  // bm25() is negated: lower is better
    return out;
}

Ranked dense_ranking(Store &store, std::string_view query, const SearchOptions &opt, int limit) {
    if (!opt.embedder)
        throw StoreError(std::string(mode_name(opt.mode)) + " search needs an encoder (--encoder PATH, or an index made with one)");
    auto index = current_vector_index(store);
    if (!index) return {};
    if (index->dim() != opt.embedder->dim())
        throw StoreError("the encoder makes " + std::to_string(opt.embedder->dim()) + "-d vectors, the index holds " +
                         std::to_string(index->dim()) + "-d ones");
    std::vector<float> q(size_t(opt.embedder->dim()));
    opt.embedder->embed({std::string(query)}, q.data());
    // FAISS does not know documents: filters are applied after, fetching more until enough pass.
    for (int fetch = filtered(opt.filter) ? limit * 8 : limit;; fetch *= 4) {
        auto found = index->search(q.data(), fetch);
        Ranked out;
        if (!filtered(opt.filter)) {
            for (auto [id, score] : found) out.emplace_back(id, score);
        } else {
            sql::Stmt st(store.handle(), "SELECT 1 FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?1" +
                                             filter_sql(opt.filter, 2));
            for (auto [id, score] : found) {
                st.bind(1, id);
                bind_filter(st, opt.filter, 2);
                if (st.step()) out.emplace_back(id, score);
                st.reset();
                if (int(out.size()) == limit) break;
            }
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
Ranked fuse(const Ranked &lexical, const Ranked &dense, const SearchOptions &opt) {
    std::unordered_map<int64_t, double> score;
    for (size_t r = 0; r < lexical.size(); ++r) score[lexical[r].first] += opt.lexical_weight / (opt.lexical_rrf_k + double(r + 1));
    for (size_t r = 0; r < dense.size(); ++r) score[dense[r].first] += opt.dense_weight / (opt.dense_rrf_k + double(r + 1));
    Ranked out(score.begin(), score.end());
    std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
    });
    return out;
}

// Pairwise similarity of candidate chunks: vector cosine where every candidate has a vector,
// otherwise the Jaccard overlap of their index terms.
std::vector<std::vector<float>> similarities(sqlite3 *db, const Ranked &ranked) {
    const size_t n = ranked.size();
    std::vector<std::vector<float>> sim(n, std::vector<float>(n, 0.f));
    std::vector<std::vector<float>> vecs(n);
    std::vector<std::vector<std::string>> terms(n);
    bool all_vectors = true;
    sql::Stmt st(db, "SELECT c.text, v.embedding FROM chunks c LEFT JOIN chunk_vectors v ON v.chunk_id = c.id WHERE c.id = ?");
    for (size_t i = 0; i < n; ++i) {
        st.bind(1, ranked[i].first);
        if (st.step()) {
            if (st.is_null(1)) {
                all_vectors = false;
            } else {
                const float *f = static_cast<const float *>(st.blob(1));
                vecs[i].assign(f, f + st.bytes(1) / sizeof(float));
            }
            terms[i] = analyze(st.str(0));
            std::sort(terms[i].begin(), terms[i].end());
            terms[i].erase(std::unique(terms[i].begin(), terms[i].end()), terms[i].end());
        }
        st.reset();
    }
    for (size_t i = 0; i < n; ++i)
        for (size_t j = i + 1; j < n; ++j) {
            float s = 0;
            if (all_vectors && vecs[i].size() == vecs[j].size() && !vecs[i].empty()) {
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

Ranked maximal_marginal_relevance(sqlite3 *db, const Ranked &ranked, int k, double lambda) {
    if (ranked.size() <= 1) return ranked;
    // Relevance as a share of the best score (BM25, fusion and cosine scores are positive where
    // they matter); min-max scaling would give the last candidate no relevance at all.
    double hi = 0;
    for (const auto &r : ranked) hi = std::max(hi, r.second);
    auto relevance = [&](size_t i) { return hi > 0 ? std::max(0.0, ranked[i].second / hi) : 1.0; };
    auto sim = similarities(db, ranked);
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

Ranked rerank(sqlite3 *db, std::string_view query, const Ranked &ranked, const nn::Reranker &reranker, int top) {
    size_t n = std::min(ranked.size(), size_t(std::max(top, 1)));
    std::vector<std::string> passages(n);
    sql::Stmt st(db, "SELECT heading, text FROM chunks WHERE id = ?");
    for (size_t i = 0; i < n; ++i) {
        st.bind(1, ranked[i].first);
        if (st.step()) passages[i] = embedding_text(st.str(0), st.str(1));
        st.reset();
    }
    std::vector<float> scores = reranker.score(std::string(query), passages);
    Ranked head(ranked.begin(), ranked.begin() + std::ptrdiff_t(n));
    for (size_t i = 0; i < n; ++i) head[i].second = scores[i];
    std::stable_sort(head.begin(), head.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
    // What the cross-encoder did not see keeps its order, after what it did.
    head.insert(head.end(), ranked.begin() + std::ptrdiff_t(n), ranked.end());
    return head;
}

}  // namespace

std::vector<Hit> Store::search(std::string_view query, const SearchOptions &opt) {
    if (opt.k <= 0) return {};
    std::string match = fts_query(query);
    int candidates = std::max(opt.k, opt.candidates);
    // MMR and reranking choose among more than they return.
    int first_list = opt.mmr ? candidates : opt.reranker ? std::max(opt.k, opt.rerank_top) : opt.k;
    Ranked ranked;
    switch (opt.mode) {
    case SearchMode::lexical:
        if (!match.empty()) ranked = lexical_ranking(db_, match, opt, first_list);
        break;
    case SearchMode::dense:
        ranked = dense_ranking(*this, query, opt, first_list);
        break;
    case SearchMode::hybrid: {
        Ranked lexical = match.empty() ? Ranked{} : lexical_ranking(db_, match, opt, candidates);
        ranked = fuse(lexical, dense_ranking(*this, query, opt, candidates), opt);
        break;
    }
    }
    if (opt.reranker && !ranked.empty()) ranked = rerank(db_, query, ranked, *opt.reranker, opt.rerank_top);
    if (opt.mmr) ranked = maximal_marginal_relevance(db_, ranked, opt.k, std::clamp(opt.mmr_lambda, 0.0, 1.0));
    if (int(ranked.size()) > opt.k) ranked.resize(size_t(opt.k));
    if (ranked.empty()) return {};

    std::unordered_map<int64_t, size_t> position;
    std::string ids;
    for (size_t i = 0; i < ranked.size(); ++i) {
        position[ranked[i].first] = i;
        ids += (i ? "," : "") + std::to_string(ranked[i].first);
    }
    std::vector<Hit> hits(ranked.size());
    sql::Stmt st(db_, "SELECT c.id, c.document_id, c.ordinal, c.page, c.heading, c.text, d.path, d.title "
                      "FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN (" + ids + ")");
    while (st.step()) {
        Hit &h = hits[position.at(st.i64(0))];
        h.chunk_id = st.i64(0);
        h.document_id = st.i64(1);
        h.ordinal = int(st.i64(2));
        h.page = int(st.i64(3));
        h.heading = st.str(4);
        h.text = st.str(5);
        h.path = st.str(6);
        h.title = st.str(7);
    }
    for (size_t i = 0; i < ranked.size(); ++i) hits[i].score = ranked[i].second;
    // A chunk deleted between ranking and reading (a concurrent writer) is dropped.
    hits.erase(std::remove_if(hits.begin(), hits.end(), [](const Hit &h) { return h.chunk_id == 0; }), hits.end());

    if (opt.snippets) {
        std::unique_ptr<sql::Stmt> sn;
        if (!match.empty())
            sn = std::make_unique<sql::Stmt>(db_, "SELECT snippet(chunks_fts, 0, ?2, ?3, '…', 24) FROM chunks_fts "
                                                  "WHERE chunks_fts MATCH ?1 AND rowid = ?4");
        for (Hit &h : hits) {
            if (sn) {
                sn->bind(1, match).bind(2, opt.mark_open).bind(3, opt.mark_close).bind(4, h.chunk_id);
                if (sn->step()) h.snippet = sn->str(0);
                sn->reset();
            }
            if (h.snippet.empty()) {  // a dense-only hit shares no term with the query: its opening words
                size_t cut = std::min(h.text.size(), size_t(160));
                while (cut < h.text.size() && (static_cast<unsigned char>(h.text[cut]) & 0xC0) == 0x80) ++cut;
                h.snippet = h.text.substr(0, cut) + (cut < h.text.size() ? "…" : "");
            }
        }
    }
    return hits;
}

}  // namespace saem
