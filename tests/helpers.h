// Shared by the doctest suites: temporary folders and file helpers.
#pragma once

#include "nn/embedder.h"
#include "retrieval/pipeline.h"
#include "retrieval/store.h"

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

namespace fs = std::filesystem;

struct TempDir {
    fs::path path;
    TempDir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("saem-test-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string &name) const { return (path / name).string(); }
};

inline std::string read_bytes(const fs::path &p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_bytes(const fs::path &p, const std::string &bytes) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << bytes;
}

inline std::string data_file(const std::string &name) { return std::string(SAEM_TEST_DATA) + "/" + name; }

// A connection of the test's own to an index file (the Store hands out none).
struct Sql {
    sqlite3 *db = nullptr;
    explicit Sql(const std::string &path) { REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK); }
    ~Sql() { sqlite3_close(db); }
    int exec(const std::string &sql) { return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr); }
};

// The first column of the first row of a query on the store's file (-1 when no row).
inline int64_t scalar(saem::Store &s, const std::string &sql) {
    Sql c(s.path());
    sqlite3_stmt *st = nullptr;
    REQUIRE(sqlite3_prepare_v2(c.db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

// A model the test owns, lent to a Retriever.
template <class T>
std::shared_ptr<const T> borrow(const T *p) {
    return std::shared_ptr<const T>(p, [](const T *) {});
}

// The hits of the retrieval pipeline for query, with the given models.
inline std::vector<saem::Hit> search(saem::Store &s, const std::string &query, saem::SearchRequest r = {},
                                     const saem::nn::Embedder *embedder = nullptr, const saem::nn::Reranker *reranker = nullptr) {
    r.query = query;
    return saem::Retriever({borrow(embedder), borrow(reranker)}).search(s, r).hits;
}

// Holds whoever calls pass() while it is closed, counting arrivals: lets a test stop a model in
// the middle of a call (an upload in its encoder, a generation in its decoder) and let it go.
class Gate {
public:
    void set_open(bool open) {
        std::lock_guard lock(m_);
        open_ = open;
        cv_.notify_all();
    }
    void pass() {
        std::unique_lock lock(m_);
        ++arrivals_;
        cv_.notify_all();
        cv_.wait(lock, [&] { return open_; });
    }
    int arrivals() const {
        std::lock_guard lock(m_);
        return arrivals_;
    }
    // Waits (up to 10 s) until pass() has been called n times in all.
    bool wait_arrivals(int n) const {
        std::unique_lock lock(m_);
        return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return arrivals_ >= n; });
    }

private:
    mutable std::mutex m_;
    mutable std::condition_variable cv_;
    bool open_ = true;
    int arrivals_ = 0;
};

// Maps each text to a preset vector (or zeros): lets a test choose the query vector exactly.
struct TableEmbedder : saem::nn::Embedder {
    int d;
    std::string id;
    std::map<std::string, std::vector<float>> table;
    saem::nn::ApproxTokenCounter counter;
    TableEmbedder(int dim, std::string identity) : d(dim), id(std::move(identity)) {}
    int dim() const override { return d; }
    std::string identity() const override { return id; }
    const saem::nn::TokenCounter &token_counter() const override { return counter; }
    size_t max_tokens() const override { return 512; }
    void set_max_tokens(size_t) override {}
    void embed(const std::vector<std::string> &texts, float *out) const override {
        for (size_t i = 0; i < texts.size(); ++i) {
            auto it = table.find(texts[i]);
            for (int k = 0; k < d; ++k) out[i * size_t(d) + size_t(k)] = it == table.end() ? 0.f : it->second[size_t(k)];
        }
    }
};

// One document at path whose chunks "v0", "v1", ... carry the given vectors (n of them, dim floats
// each): a store of chosen vectors without an encoder.
inline void put_vectors_document(saem::Store &s, const std::string &path, const std::vector<float> &vectors, int n) {
    std::vector<saem::ChunkInput> chunks(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        chunks[size_t(i)].text = "v" + std::to_string(i);
        chunks[size_t(i)].end = 1;
    }
    saem::DocumentInput doc;
    doc.path = path;
    doc.format = "txt";
    s.put_document(doc, chunks, vectors);
}

// stories260K (llama2.c's real weights, ../shared/models) written once per test binary as a llama
// GGUF by make_test_decoder: the decoder the HTTP and answer tests generate with.
struct Stories {
    TempDir dir;
    std::string path = dir / "stories260K.gguf";
    Stories() {
        const std::string shared = SAEM_SHARED;
        std::string cmd = std::string(SAEM_MAKE_TEST_DECODER) + " stories " + shared + "/models/stories260K/stories260K.bin " + shared +
                          "/models/stories260K/tok512.bin " + path;
        if (std::system(cmd.c_str()) != 0) throw std::runtime_error("make_test_decoder failed: " + cmd);
    }
};

inline Stories &stories() {
    static Stories s;
    return s;
}
