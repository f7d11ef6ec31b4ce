// retrieval: saem's store and search.
//
// One SQLite file per index holds everything: documents, their chunks, an FTS5 index over the
// chunk text and the chunks' embedding vectors. Text is UTF-8; character spans are byte offsets
// into the document's normalised text.
//
// Vector layout contract. A chunk's vector is dim float32 values, little-endian, stored as one
// BLOB beside the chunk (table chunk_vectors, written in the same transaction as the chunk). All
// vectors of an index come from one encoder (Store::encoder()); they are compared by inner product,
// which is cosine similarity because encoders that saem indexes with L2-normalise. Chunk ids are
// AUTOINCREMENT and never reused: they are the FAISS ids. The FAISS index (<db>.faiss) is a cache
// derived from these BLOBs, stamped with the generation number SQLite bumps on every vector
// change; a cache with another generation is rebuilt, so FAISS never names a chunk that is gone.
#pragma once

#include "nn/embedder.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct sqlite3;

namespace saem {

struct StoreError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// What the store remembers of a file to decide, without reading it, whether it changed.
struct FileState {
    int64_t id = 0;
    int64_t size = 0;
    int64_t mtime_ns = 0;
    std::string hash;
};

struct DocumentInput {
    std::string path;    // file path, or any unique name for documents added over the API
    std::string hash;    // content hash of the source bytes
    std::string title;
    std::string format;  // txt, md, html, pdf
    int64_t size = 0;
    int64_t mtime_ns = 0;
    nlohmann::json metadata = nlohmann::json::object();
};

struct ChunkInput {
    std::string text;
    std::string heading;  // "Title › Section › Subsection"
    int page = 0;         // 1-based page for paged formats, 0 otherwise
    int64_t begin = 0, end = 0;
    int tokens = 0;
};

struct DocumentInfo {
    int64_t id = 0;
    std::string path, title, format, hash;
    nlohmann::json metadata;
    int64_t size = 0, mtime_ns = 0, indexed_at = 0;
    int chunks = 0;
};

struct Filter {
    std::string path_prefix;
    std::vector<std::pair<std::string, nlohmann::json>> metadata;  // key == value, all must hold
};

enum class SearchMode { lexical, dense, hybrid };
SearchMode parse_mode(const std::string &name);  // throws StoreError
const char *mode_name(SearchMode mode);

struct SearchOptions {
    int k = 10;
    SearchMode mode = SearchMode::lexical;
    const nn::Embedder *embedder = nullptr;  // needed by dense and hybrid
    int candidates = 100;                     // per list, before fusion
    // Hybrid fusion: score = lexical_weight / (lexical_rrf_k + lexical rank)
    //                      + dense_weight / (dense_rrf_k + dense rank)
    // BM25's first ranks are where it is most often right; a small embedder's are not. So the
    // lexical list gets a small rank constant (its top hits stay on top) and the dense list a
    // large one (it mostly lifts what BM25 ranked low or missed). On SciFact with
    // potion-base-4M this keeps BM25's nDCG@10 and raises Recall@100, where plain RRF
    // (60/60) loses 0.05 nDCG@10 (bench/README.md).
    double lexical_weight = 1.0, dense_weight = 1.0;
    double lexical_rrf_k = 5, dense_rrf_k = 60;
    // Maximal marginal relevance over the top `candidates`: each next hit maximises
    // mmr_lambda * relevance - (1 - mmr_lambda) * (greatest similarity to a hit already chosen).
    // Similarity is the cosine of chunk vectors when the index has them, else the overlap of terms.
    bool mmr = false;
    double mmr_lambda = 0.7;
    // A cross-encoder re-scores the first rerank_top hits (heading and text as the passage);
    // they are reordered by its scores, ahead of the rest.
    const nn::Reranker *reranker = nullptr;
    int rerank_top = 30;
    Filter filter;
    double heading_weight = 2.0;  // BM25 weight of the title/heading column relative to the text
    bool snippets = true;
    std::string mark_open = "[", mark_close = "]";
};

struct Hit {
    int64_t chunk_id = 0, document_id = 0;
    int ordinal = 0, page = 0;
    std::string path, title, heading, text, snippet;
    double score = 0;  // BM25, higher is better
};

// What made an index's vectors. Two encoders agree only if their identities do.
struct EncoderInfo {
    std::string identity;
    std::string path;  // where it was loaded from, so later runs can load it again
    int dim = 0;
};

enum class VectorIndexKind { flat, hnsw, ivfpq };

struct Stats {
    int64_t documents = 0, chunks = 0, skipped = 0, db_bytes = 0, vectors = 0;
    std::string encoder;
    int schema_version = 0;
};

class Store {
public:
    static constexpr int schema_version = 2;

    // Opens or creates the index file and brings its schema up to date.
    explicit Store(const std::string &path);
    ~Store();
    Store(const Store &) = delete;
    Store &operator=(const Store &) = delete;

    std::optional<FileState> file_state(const std::string &path);
    // Adds the document or replaces the one with the same path, chunks included, atomically.
    // The id of a replaced document is kept.
    // vectors: chunks.size() * encoder dim floats, or empty when the index has no encoder.
    int64_t put_document(const DocumentInput &doc, const std::vector<ChunkInput> &chunks,
                         const std::vector<float> &vectors = {});
    // Records a new size/mtime for a document whose content hash did not change.
    void touch_document(int64_t id, int64_t size, int64_t mtime_ns);
    bool remove_document(int64_t id);
    std::optional<DocumentInfo> document(int64_t id);
    std::optional<DocumentInfo> document_by_path(const std::string &path);
    std::vector<DocumentInfo> list_documents(const std::string &path_prefix, int limit, int offset);
    // Paths of documents and skipped files that start with prefix.
    std::vector<std::string> paths_under(const std::string &prefix);
    void remove_path(const std::string &path);

    // Files that could not be indexed, remembered so an unchanged one is not read again.
    std::optional<std::pair<FileState, std::string>> skipped_state(const std::string &path);
    void put_skipped(const std::string &path, int64_t size, int64_t mtime_ns, const std::string &reason);

    std::vector<Hit> search(std::string_view query, const SearchOptions &options);

    std::optional<EncoderInfo> encoder();
    // Records the encoder on first use; refuses (StoreError) one that differs from the recorded one
    // while vectors exist, naming both and the command that re-embeds.
    void use_encoder(const EncoderInfo &info);
    // Drops every vector and the recorded encoder (before re-embedding with another one).
    void clear_vectors();
    // Chunks that have no vector yet: id and the text to embed.
    std::vector<std::pair<int64_t, std::string>> chunks_without_vectors(int limit);
    void put_vectors(const std::vector<int64_t> &chunk_ids, const std::vector<float> &vectors);
    int64_t vector_generation();
    bool has_vectors();
    VectorIndexKind vector_index_kind();
    void set_vector_index_kind(VectorIndexKind kind);
    // Inverse document frequency of an index term over chunks (BM25's form, floored at 0).
    double idf(const std::string &term);
    Stats stats();

    sqlite3 *handle() { return db_; }
    const std::string &path() const { return path_; }

private:
    void migrate();
    sqlite3 *db_ = nullptr;
    std::string path_;
};

// Brings the FAISS cache (<db>.faiss) up to the store's vectors now rather than at the first
// dense search.
void build_vector_index(Store &store);

// The text a chunk is embedded as: its heading path, then its text.
std::string embedding_text(const std::string &heading, const std::string &text);

// The FTS5 MATCH expression for arbitrary user text: every searchable word as a quoted term,
// OR-ed, so no input can be an FTS5 syntax error. Empty when nothing in the text is searchable.
std::string fts_query(std::string_view user_text);

// The index terms of a text, in order (stemmed, stopwords dropped, CJK bigrams).
std::vector<std::string> analyze(std::string_view text);

// Test hook for the crash invariants in store.cpp: SAEM_CRASH_AT=name[:n] kills the process with
// SIGKILL the n-th time (default 1st) execution passes the named point.
void crash_point(const char *name);

// BEIR / trec_eval metrics for one query. ranked: document ids, best first. qrels: judged
// documents and their graded relevance (0 = judged not relevant).
struct Qrels : std::vector<std::pair<std::string, int>> {};
double ndcg_at(const std::vector<std::string> &ranked, const Qrels &qrels, size_t k);
double recall_at(const std::vector<std::string> &ranked, const Qrels &qrels, size_t k);
double mrr_at(const std::vector<std::string> &ranked, const Qrels &qrels, size_t k);

}  // namespace saem
