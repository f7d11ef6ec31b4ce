// The store: one SQLite file per index holds everything: documents, their chunks, an FTS5 index
// over the chunk text and the chunks' embedding vectors. Text is UTF-8; character spans are byte
// offsets into the document's normalised text. The store stores: it runs no model and hands out
// no SQLite handle; ranking, fusion and models live in the retrieval pipeline (pipeline.h).
//
// Vector layout contract. A chunk's vector is dim float32 values, little-endian, stored as one
// BLOB beside the chunk (table chunk_vectors, written in the same transaction as the chunk). All
// vectors of an index come from one encoder (Store::encoder()); they are compared by inner product,
// which is cosine similarity because encoders that saem indexes with L2-normalise. Chunk ids are
// AUTOINCREMENT and never reused: they are the FAISS ids. Every vector insert or delete bumps the
// vector generation and is logged (chunk id, added or removed) in the same transaction, so a FAISS
// cache (vectors.h) built at an older generation can be brought forward change by change.
//
// Threads: a Store is one SQLite connection and is used by one thread at a time. Any number of
// Stores (threads, processes) may open the same file: readers see committed snapshots (WAL) while
// one writer at a time commits.
#pragma once

#include "retrieval/hit.h"
#include "retrieval/terms.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

struct sqlite3;

namespace saem {

// A store operation failed: disk, permissions, corruption, or a bug.
struct StoreError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// The database stayed locked by another writer past the busy timeout: try again later.
struct StoreBusy : StoreError {
    using StoreError::StoreError;
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
    bool empty() const { return path_prefix.empty() && metadata.empty(); }
};
// Why a filter cannot be run (a metadata key that is not letters, digits, '_', '-', '.'; a value
// that is not a string, number or boolean), or "" when it can.
std::string filter_problem(const Filter &filter);

// What made an index's vectors. Two encoders agree only if their identities do.
struct EncoderInfo {
    std::string identity;
    std::string path;  // where it was loaded from, so later runs can load it again
    int dim = 0;
};

enum class VectorIndexKind { flat, hnsw, ivfpq };
const char *vector_index_name(VectorIndexKind kind);
VectorIndexKind parse_vector_index(const std::string &name);  // throws StoreError

struct Stats {
    int64_t documents = 0, chunks = 0, skipped = 0, db_bytes = 0, vectors = 0;
    std::string encoder;
    std::string vector_index;
    int schema_version = 0;
};

// Chunk ids with a score, best first.
using Ranked = std::vector<std::pair<int64_t, double>>;

class Store {
public:
    static constexpr int schema_version = 3;

    // Opens or creates the index file and brings its schema up to date. A statement that finds the
    // file locked by another writer waits up to busy_timeout_ms, then throws StoreBusy.
    explicit Store(const std::string &path, int busy_timeout_ms = 10000);
    ~Store();
    Store(const Store &) = delete;
    Store &operator=(const Store &) = delete;

    // ---- documents
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
    // The document's text as indexed (normalised), from its chunks in order with their overlaps
    // removed; nullopt when there is no such document.
    std::optional<std::string> document_text(int64_t id);
    // Paths of documents and skipped files that start with prefix.
    std::vector<std::string> paths_under(const std::string &prefix);
    void remove_path(const std::string &path);

    // Files that could not be indexed, remembered so an unchanged one is not read again.
    std::optional<std::pair<FileState, std::string>> skipped_state(const std::string &path);
    void put_skipped(const std::string &path, int64_t size, int64_t mtime_ns, const std::string &reason);

    // ---- reading chunks (what the pipeline ranks with)
    // BM25 over chunk text and heading for an FTS5 MATCH expression (fts_query()), filter applied,
    // best `limit`. heading_weight: the heading column's BM25 weight relative to the text's.
    Ranked match_chunks(const std::string &fts_match, const Filter &filter, double heading_weight, int limit);
    // The ids among `ids` whose documents pass the filter, in the given order, at most limit.
    // Throws StoreError for a metadata key or value a filter cannot hold.
    std::vector<int64_t> filter_chunks(const std::vector<int64_t> &ids, const Filter &filter, size_t limit);
    // Chunks and their documents, in the order of ids; ids no longer in the store are left out.
    std::vector<Hit> read_hits(const std::vector<int64_t> &ids);
    // FTS5 snippets of each chunk for a MATCH expression, marked with open/close ("" where none).
    std::vector<std::string> snippets(const std::string &fts_match, const std::vector<int64_t> &ids,
                                      const std::string &open, const std::string &close);
    // The vectors of the chunks, in the order of ids (empty where a chunk has none).
    std::vector<std::vector<float>> chunk_vectors(const std::vector<int64_t> &ids);
    // Inverse document frequency of index terms over chunks (BM25's form, floored at 0).
    std::vector<double> idf(const std::vector<std::string> &terms);

    // ---- vectors
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
    // A random id made when the file was created: a cache stamped with another one is another
    // index's, however equal its generation.
    std::string database_id();
    // Every vector, in chunk id order (rebuilding a cache).
    void read_vectors(const std::function<void(int64_t chunk_id, const float *v, size_t dim)> &fn);
    // Chunk ids whose vector was added or removed after generation `after`, up to the current one;
    // nullopt when the log no longer reaches back that far (the cache must be rebuilt). Call it
    // inside a Snapshot with the generation read there.
    std::optional<std::vector<int64_t>> vector_changes_since(int64_t after);

    // A read transaction: everything read while it lives is one committed snapshot.
    class Snapshot {
    public:
        explicit Snapshot(Store &store);
        ~Snapshot();
        Snapshot(const Snapshot &) = delete;
        Snapshot &operator=(const Snapshot &) = delete;

    private:
        sqlite3 *db_;
    };

    Stats stats();
    // Checks the invariants listed at the top of store.cpp, SQLite's own integrity and the FTS5
    // index against the chunks. Returns one line per problem; empty when the store is sound.
    std::vector<std::string> check();

    const std::string &path() const { return path_; }

private:
    void migrate();
    sqlite3 *db_ = nullptr;
    std::string path_;
};

// The text a chunk is embedded as: its heading path, then its text.
std::string embedding_text(const std::string &heading, const std::string &text);

// Test hook for the crash invariants in store.cpp: SAEM_CRASH_AT=name[:n] kills the process with
// SIGKILL the n-th time (default 1st) execution passes the named point.
void crash_point(const char *name);

}  // namespace saem
