// Lexical retrieval measured side by side with SQLite's own FTS5 tokenizers on the same chunks.
//
//   saem-bench-lexical scifact DIR      saem's BM25 vs FTS5 'porter unicode61': nDCG@10, ms/query
//   saem-bench-lexical korean DIR [N]   saem's CJK bigrams vs FTS5 'trigram' on Korean HTML:
//                                       known-item success@10 and MRR@10, ms/query, index bytes
//
// Not a test: run by bench/run-lexical, figures go into issue notes.
#include "api/api.h"
#include "retrieval/metrics.h"
#include "retrieval/pipeline.h"

#include <sqlite3.h>
#include <unistd.h>
#include <utf8proc.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

using namespace saem;
using clock_type = std::chrono::steady_clock;

namespace {

// A connection of the benchmark's own to saem's index file, for SQLite's tokenizers.
struct Db {
    sqlite3 *db = nullptr;
    explicit Db(const std::string &path) {
        if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + path);
    }
    ~Db() { sqlite3_close(db); }
    void exec(const std::string &sql) {
        char *err = nullptr;
        if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
            std::string e = err ? err : "?";
            sqlite3_free(err);
            throw std::runtime_error(e + " in " + sql.substr(0, 80));
        }
    }
    // Ranked distinct document ids for a MATCH over a plain FTS5 table keyed by chunk id.
    std::vector<int64_t> ranked_docs(const std::string &table, const std::string &match, int k, int chunks) {
        std::vector<int64_t> docs;
        if (match.empty()) return docs;
        std::string sql = "SELECT c.document_id FROM (SELECT rowid AS id, bm25(" + table + ") AS s FROM " + table +
                          " WHERE " + table + " MATCH ?1 ORDER BY s LIMIT " + std::to_string(chunks) + ") t JOIN chunks c ON c.id = t.id ORDER BY t.s";
        sqlite3_stmt *st = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) throw std::runtime_error(sqlite3_errmsg(db));
        sqlite3_bind_text(st, 1, match.c_str(), -1, SQLITE_TRANSIENT);
        std::set<int64_t> seen;
        while (sqlite3_step(st) == SQLITE_ROW && int(docs.size()) < k) {
            int64_t d = sqlite3_column_int64(st, 0);
            if (seen.insert(d).second) docs.push_back(d);
        }
        sqlite3_finalize(st);
        return docs;
    }
    int64_t bytes_of(const std::string &prefix) {
        sqlite3_stmt *st = nullptr;
        std::string sql = "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE '" + prefix + "%'";
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return -1;
        int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
        sqlite3_finalize(st);
        return v;
    }
};

std::vector<int64_t> saem_ranked_docs(Store &store, const std::string &q, int k, int chunks) {
    SearchRequest so;
    so.query = q;
    so.k = chunks;
    so.snippets = false;
    std::vector<int64_t> docs;
    std::set<int64_t> seen;
    for (const Hit &h : Retriever().search(store, so).hits) {
        if (seen.insert(h.document_id).second) docs.push_back(h.document_id);
        if (int(docs.size()) == k) break;
    }
    return docs;
}

template <class F>
double ms_per_call(size_t n, F &&f) {
    auto t0 = clock_type::now();
    for (size_t i = 0; i < n; ++i) f(i);
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count() / double(n);
}

std::string temp_db(const char *name) {
    std::string p = "/tmp/saem-bench-" + std::string(name) + "-" + std::to_string(getpid()) + ".db";
    for (const char *s : {"", "-wal", "-shm"}) std::remove((p + s).c_str());
    return p;
}

int scifact(const std::string &dir) {
    std::string path = temp_db("scifact");
    BeirOptions bo;
    bo.db = path;
    BeirResult saem_result = eval_beir(dir, bo, std::cerr);
    Store store(path);
    Db db(path);
    auto t0 = clock_type::now();
    db.exec("CREATE VIRTUAL TABLE plain USING fts5(text, heading, content='chunks', content_rowid='id', "
            "tokenize='porter unicode61 remove_diacritics 2')");
    db.exec("INSERT INTO plain(rowid, text, heading) SELECT id, text, heading FROM chunks");
    double plain_index_s = std::chrono::duration<double>(clock_type::now() - t0).count();

    // Same queries, same OR-of-terms expression, same qrels: only the analyser and saem's
    // result assembly differ.
    std::map<std::string, std::string> queries;
    {
        std::ifstream in(dir + "/queries.jsonl");
        std::string line;
        while (std::getline(in, line)) {
            auto j = nlohmann::json::parse(line);
            queries[j["_id"]] = j["text"];
        }
    }
    std::map<std::string, Qrels> qrels;
    {
        std::ifstream in(dir + "/qrels/test.tsv");
        std::string q, d, s;
        std::getline(in, q);
        while (in >> q >> d >> s) qrels[q].emplace_back(d, std::stoi(s));
    }
    std::map<int64_t, std::string> beir_id;
    for (const auto &d : store.list_documents("beir/", 1 << 30, 0)) beir_id[d.id] = d.path.substr(5);
    std::vector<std::string> qids;
    for (const auto &[q, _] : qrels) qids.push_back(q);

    double plain_ndcg = 0;
    double plain_ms = ms_per_call(qids.size(), [&](size_t i) {
        auto docs = db.ranked_docs("plain", fts_query(queries[qids[i]]), 100, 1000);
        std::vector<std::string> ranked;
        for (auto d : docs) ranked.push_back(beir_id[d]);
        plain_ndcg += ndcg_at(ranked, qrels[qids[i]], 10);
    });
    double saem_ms = ms_per_call(qids.size(), [&](size_t i) { saem_ranked_docs(store, queries[qids[i]], 100, 1000); });
    std::printf("SciFact, %zu queries, %zu documents, top 1000 chunks per query\n", qids.size(), saem_result.documents);
    std::printf("%-34s %9s %10s %12s\n", "", "nDCG@10", "ms/query", "index bytes");
    std::printf("%-34s %9.4f %10.2f %12lld\n", "saem (Snowball, stopwords)", saem_result.ndcg10, saem_ms,
                (long long)db.bytes_of("chunks_fts"));
    std::printf("%-34s %9.4f %10.2f %12lld\n", "FTS5 porter unicode61", plain_ndcg / double(qids.size()), plain_ms,
                (long long)db.bytes_of("plain"));
    std::printf("saem / FTS5 time per query: %.2fx; FTS5 table build %.2f s\n", saem_ms / plain_ms, plain_index_s);
    for (const char *s : {"", "-wal", "-shm"}) std::remove((path + s).c_str());
    return 0;
}

bool is_hangul(utf8proc_int32_t cp) { return cp >= 0xAC00 && cp <= 0xD7AF; }

std::vector<std::string> codepoints(const std::string &w) {
    std::vector<std::string> out;
    for (size_t i = 0; i < w.size();) {
        size_t n = nn::utf8_length(static_cast<unsigned char>(w[i]));
        out.push_back(w.substr(i, n));
        i += n;
    }
    return out;
}

int korean(const std::string &dir, size_t n_queries) {
    std::string path = temp_db("korean");
    Store store(path);
    IndexOptions io;
    std::ostringstream log;
    index_folder(store, dir, io, log);
    std::cerr << log.str().substr(log.str().rfind("added"));
    Db db(path);
    db.exec("CREATE VIRTUAL TABLE tri USING fts5(text, heading, content='chunks', content_rowid='id', tokenize='trigram')");
    db.exec("INSERT INTO tri(rowid, text, heading) SELECT id, text, heading FROM chunks");

    // Known-item queries: 2-6 words of a Korean sentence from a random chunk; the chunk's
    // document is the item to find (top 50 chunks, deduplicated to 10 documents, for both). "exact" keeps the words as written; "stem" drops the
    // last syllable of words of 3+ syllables, as a user typing 글꼴 크기 for 글꼴의 크기를 does.
    struct Query { std::string exact, stem; int64_t doc; };
    std::vector<Query> qs;
    std::mt19937 rng(1);
    sqlite3_stmt *st = nullptr;
    sqlite3_prepare_v2(db.db, "SELECT document_id, text FROM chunks ORDER BY id", -1, &st, nullptr);
    std::vector<std::pair<int64_t, std::string>> chunks;
    while (sqlite3_step(st) == SQLITE_ROW)
        chunks.emplace_back(sqlite3_column_int64(st, 0), reinterpret_cast<const char *>(sqlite3_column_text(st, 0 + 1)));
    sqlite3_finalize(st);
    std::shuffle(chunks.begin(), chunks.end(), rng);
    for (const auto &[doc, text] : chunks) {
        if (qs.size() == n_queries) break;
        auto spans = nn::split_sentences(text);
        if (spans.empty()) continue;
        std::istringstream words(text.substr(spans[0].first, spans[0].second - spans[0].first));
        std::vector<std::string> ws;
        for (std::string w; words >> w && ws.size() < 6;) {
            auto cps = codepoints(w);
            utf8proc_int32_t cp = 0;
            utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t *>(cps[0].data()), -1, &cp);
            if (cps.size() >= 2 && is_hangul(cp)) ws.push_back(w);
        }
        if (ws.size() < 2) continue;
        Query q{"", "", doc};
        for (const auto &w : ws) {
            auto cps = codepoints(w);
            std::string stem;
            for (size_t i = 0; i + (cps.size() >= 3 ? 1 : 0) < cps.size(); ++i) stem += cps[i];
            q.exact += (q.exact.empty() ? "" : " ") + w;
            q.stem += (q.stem.empty() ? "" : " ") + stem;
        }
        qs.push_back(q);
    }
    auto trigram_match = [](const std::string &q) {
        std::string m;
        std::istringstream ws(q);
        for (std::string w; ws >> w;) {
            if (codepoints(w).size() < 3) continue;  // the trigram tokenizer cannot match shorter terms
            std::string quoted;
            for (char c : w) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
            m += (m.empty() ? "" : " OR ") + ("\"" + quoted + "\"");
        }
        return m;
    };
    auto score = [&](auto &&ranked_fn, bool stem) {
        double success = 0, mrr = 0;
        double ms = ms_per_call(qs.size(), [&](size_t i) {
            std::vector<int64_t> docs = ranked_fn(stem ? qs[i].stem : qs[i].exact);
            for (size_t r = 0; r < docs.size() && r < 10; ++r)
                if (docs[r] == qs[i].doc) { success += 1; mrr += 1.0 / double(r + 1); break; }
        });
        return std::make_tuple(success / double(qs.size()), mrr / double(qs.size()), ms);
    };
    auto saem_fn = [&](const std::string &q) { return saem_ranked_docs(store, q, 10, 50); };
    auto tri_fn = [&](const std::string &q) { return db.ranked_docs("tri", trigram_match(q), 10, 50); };
    std::printf("Korean known-item search, %zu queries from %s\n", qs.size(), dir.c_str());
    std::printf("%-26s %-6s %11s %8s %9s %12s\n", "", "query", "success@10", "MRR@10", "ms/query", "index bytes");
    for (bool stem : {false, true}) {
        auto [s1, m1, t1] = score(saem_fn, stem);
        auto [s2, m2, t2] = score(tri_fn, stem);
        std::printf("%-26s %-6s %11.3f %8.3f %9.2f %12lld\n", "saem bigrams", stem ? "stem" : "exact", s1, m1, t1,
                    (long long)db.bytes_of("chunks_fts"));
        std::printf("%-26s %-6s %11.3f %8.3f %9.2f %12lld\n", "FTS5 trigram", stem ? "stem" : "exact", s2, m2, t2,
                    (long long)db.bytes_of("tri"));
    }
    for (const char *s : {"", "-wal", "-shm"}) std::remove((path + s).c_str());
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        if (argc >= 3 && std::string(argv[1]) == "scifact") return scifact(argv[2]);
        if (argc >= 3 && std::string(argv[1]) == "korean") return korean(argv[2], argc > 3 ? std::stoul(argv[3]) : 1000);
    } catch (const std::exception &e) {
        std::cerr << "saem-bench-lexical: " << e.what() << '\n';
        return 1;
    }
    std::cerr << "usage: saem-bench-lexical scifact DIR | korean DIR [QUERIES]\n";
    return 2;
}
