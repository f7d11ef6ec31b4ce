// ingest: turn files into normalised text blocks, split them into token-budgeted chunks and keep a
// store in step with a folder.
//
// Threads: index_folder reads and chunks files on IndexOptions::threads loader threads; a batch of
// files is then embedded by one Embedder::embed call from the calling thread, which spreads the
// texts over nn::compute_pool(). A run thus uses at most loaders + pool threads, never loaders x
// pool (each loader starting the encoder's parallel work). Callers that embed from threads of their
// own keep that bound too, since the pool's callers take turns; passing many texts per call is what
// keeps the pool busy.
#pragma once

#include "nn/embedder.h"
#include "nn/text.h"
#include "retrieval/store.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace saem {

// A file that cannot be indexed; what() is the one-line reason shown to the user.
struct LoadError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// A paragraph-level piece of a document, with where it sits.
struct Block {
    std::string text;     // normalised UTF-8 (NFC, LF line ends), never empty
    std::string heading;  // heading path, "Section › Subsection"
    int page = 0;         // 1-based for PDF, 0 otherwise
};

struct LoadedDocument {
    std::string title;
    std::string format;
    std::vector<Block> blocks;
    nlohmann::json metadata = nlohmann::json::object();
};

// The loader format for a file name ("txt", "md", "html", "pdf"), if saem reads it.
std::optional<std::string> format_for_path(const std::filesystem::path &path);

// Parses bytes of the given format. name is used for the fallback title. Throws LoadError for
// empty, binary, non-UTF-8 or malformed input.
LoadedDocument load_document(std::string_view bytes, const std::string &format, const std::string &name);

struct ChunkOptions {
    int max_tokens = 256;
    int overlap_tokens = 32;
    const nn::TokenCounter *counter = nullptr;  // nullptr: nn::ApproxTokenCounter
};

// Splits a document at headings, paragraphs and sentences (and, for over-long sentences, at words)
// into chunks of at most max_tokens, neighbours within a section overlapping by up to
// overlap_tokens of whole sentences. ChunkInput::begin/end are byte offsets into
// document_text(doc); each chunk's text is exactly that span, and its heading starts with the title.
std::vector<ChunkInput> chunk_document(const LoadedDocument &doc, const ChunkOptions &options = {});
// The document's normalised text: its blocks joined by blank lines.
std::string document_text(const LoadedDocument &doc);

// A 128-bit XXH3 content hash, in hex.
std::string content_hash(std::string_view bytes);

// A document parsed, chunked and embedded, ready to be written.
struct PreparedDocument {
    DocumentInput input;
    std::vector<ChunkInput> chunks;
    std::vector<float> vectors;  // empty without an embedder
};

// The work of indexing that needs no store (parse, chunk, embed): callers that serialise writes
// do this outside their write lock. Throws LoadError for input it cannot read.
PreparedDocument prepare_document(const std::string &path, std::string_view bytes, const std::string &format,
                                  const nlohmann::json &metadata, const ChunkOptions &options,
                                  const nn::Embedder *embedder = nullptr, int64_t size = 0, int64_t mtime_ns = 0);

// Writes a prepared document (add, or replace by path) in one transaction. Returns its id.
int64_t store_document(Store &store, const PreparedDocument &doc);

// prepare_document, then store_document. Returns the document id.
int64_t index_document(Store &store, const std::string &path, std::string_view bytes, const std::string &format,
                       const nlohmann::json &metadata, const ChunkOptions &options,
                       const nn::Embedder *embedder = nullptr, int64_t size = 0, int64_t mtime_ns = 0);

// The vectors of chunks as the store expects them (embedding_text of heading and text).
std::vector<float> embed_chunks(const nn::Embedder &embedder, const std::vector<ChunkInput> &chunks);

// Records the embedder as the store's encoder (refusing a different one) and embeds every chunk
// that has no vector yet. Returns how many were embedded.
size_t embed_missing(Store &store, const nn::Embedder &embedder, const std::string &embedder_path);

struct IndexOptions {
    std::vector<std::string> include;  // globs over the path relative to the folder; empty: all
    std::vector<std::string> exclude;
    ChunkOptions chunking;
    const nn::Embedder *embedder = nullptr;  // dense vectors for every chunk when set
    std::string embedder_path;               // recorded so later searches can load it
    bool progress_bar = false;          // redraw one line (a terminal) rather than print lines
    int threads = 0;                    // loaders in parallel (reading and chunking); 0: hardware threads
    int64_t max_file_bytes = int64_t(64) << 20;  // larger files are skipped with that reason
    // Symbolic links to files are skipped unless this is set; then followed only when the real
    // path of the target is inside the folder. Links to folders are never descended.
    bool follow_symlinks = false;
};

struct IndexSummary {
    size_t added = 0, updated = 0, unchanged = 0, removed = 0, chunks_written = 0, vectors_written = 0;
    std::vector<std::pair<std::string, std::string>> skipped;  // path, reason
    double seconds = 0;
};

// Brings the store in step with the folder: new and changed files are (re)indexed, unchanged files
// (same size and mtime) are not read, and documents of files that are gone are removed. Progress
// and the final summary go to log.
IndexSummary index_folder(Store &store, const std::filesystem::path &folder, const IndexOptions &options,
                          std::ostream &log);

}  // namespace saem
