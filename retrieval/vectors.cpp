#include "retrieval/vectors.h"
#include "retrieval/sqlite.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

namespace saem {

namespace {

constexpr char cache_magic[8] = {'S', 'A', 'E', 'M', 'V', 'E', 'C', '1'};

std::unique_ptr<faiss::Index> make_index(VectorIndexKind kind, int dim, int64_t n, const float *data) {
    switch (kind) {
    case VectorIndexKind::hnsw: {
        auto *hnsw = new faiss::IndexHNSWFlat(dim, 32, faiss::METRIC_INNER_PRODUCT);
        hnsw->hnsw.efConstruction = 64;
        hnsw->hnsw.efSearch = 128;
        auto idmap = std::make_unique<faiss::IndexIDMap2>(hnsw);
        idmap->own_fields = true;
        return idmap;
    }
    case VectorIndexKind::ivfpq: {
        // IVF-PQ needs training data: below ~40 vectors per list it is worse than exact search.
        int64_t nlist = std::max<int64_t>(1, int64_t(4 * std::sqrt(double(n))));
        int m = dim % 16 == 0 ? dim / 16 : dim % 8 == 0 ? dim / 8 : 0;
        if (n >= 40 * nlist && m > 0) {
            auto *quantizer = new faiss::IndexFlatIP(dim);
            auto *ivf = new faiss::IndexIVFPQ(quantizer, dim, size_t(nlist), size_t(m), 8, faiss::METRIC_INNER_PRODUCT);
            ivf->own_fields = true;
            ivf->train(n, data);
            ivf->nprobe = std::min<size_t>(size_t(nlist), 32);
            auto idmap = std::make_unique<faiss::IndexIDMap2>(ivf);
            idmap->own_fields = true;
            return idmap;
        }
        [[fallthrough]];
    }
    case VectorIndexKind::flat:
    default: {
        auto idmap = std::make_unique<faiss::IndexIDMap2>(new faiss::IndexFlatIP(dim));
        idmap->own_fields = true;
        return idmap;
    }
    }
}

std::string cache_path(const Store &store) { return store.path() + ".faiss"; }

// Reads <db>.faiss if it was written at this generation.
std::unique_ptr<faiss::Index> read_cache(const std::string &path, int64_t generation) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return nullptr;
    char magic[8];
    int64_t gen = -1;
    if (!in.read(magic, 8) || std::memcmp(magic, cache_magic, 8) != 0) return nullptr;
    if (!in.read(reinterpret_cast<char *>(&gen), 8) || gen != generation) return nullptr;
    faiss::VectorIOReader reader;
    reader.data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    try {
        return std::unique_ptr<faiss::Index>(faiss::read_index(&reader));
    } catch (const std::exception &) {
        return nullptr;  // damaged cache: rebuilt from SQLite
    }
}

// Temporary file, fsync, rename: a reader sees the old cache or the new one, never half of one.
void write_cache(const std::string &path, const faiss::Index &index, int64_t generation) {
    faiss::VectorIOWriter writer;
    faiss::write_index(&index, &writer);
    std::string tmp = path + ".tmp" + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;  // a cache that cannot be written is rebuilt next time; not an error
    bool ok = ::write(fd, cache_magic, 8) == 8 && ::write(fd, &generation, 8) == 8;
    size_t off = 0;
    while (ok && off < writer.data.size()) {
        ssize_t w = ::write(fd, writer.data.data() + off, writer.data.size() - off);
        ok = w > 0;
        off += ok ? size_t(w) : 0;
    }
    ok = ok && ::fsync(fd) == 0;
    ::close(fd);
    if (ok && std::rename(tmp.c_str(), path.c_str()) == 0) {
        std::string dir = std::filesystem::path(path).parent_path().string();
        int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) { ::fsync(dfd); ::close(dfd); }
    } else {
        std::remove(tmp.c_str());
    }
}

std::mutex cache_mutex;
std::map<std::string, std::shared_ptr<const VectorIndex>> cache;

}  // namespace

VectorIndex::VectorIndex(std::unique_ptr<faiss::Index> index, int64_t generation, int dim, VectorIndexKind kind)
    : index_(std::move(index)), generation_(generation), dim_(dim), kind_(kind) {}

VectorIndex::~VectorIndex() = default;

int64_t VectorIndex::size() const { return index_->ntotal; }

std::vector<std::pair<int64_t, float>> VectorIndex::search(const float *q, int k) const {
    k = int(std::min<int64_t>(k, index_->ntotal));
    if (k <= 0) return {};
    std::vector<float> scores(static_cast<size_t>(k));
    std::vector<faiss::Index::idx_t> ids(static_cast<size_t>(k));
    index_->search(1, q, k, scores.data(), ids.data());
    std::vector<std::pair<int64_t, float>> out;
    for (int i = 0; i < k; ++i)
        if (ids[size_t(i)] >= 0) out.emplace_back(ids[size_t(i)], scores[size_t(i)]);
    return out;
}

std::shared_ptr<const VectorIndex> current_vector_index(Store &store) {
    std::lock_guard lock(cache_mutex);
    // One read transaction: the generation and the vectors are the same snapshot.
    sql::exec(store.handle(), "BEGIN");
    struct End {
        sqlite3 *db;
        ~End() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
    } end{store.handle()};
    int64_t generation = store.vector_generation();
    auto encoder = store.encoder();
    if (!encoder || encoder->dim <= 0) return nullptr;
    VectorIndexKind kind = store.vector_index_kind();
    auto &slot = cache[store.path()];
    if (slot && slot->generation() == generation && slot->dim() == encoder->dim) return slot;

    if (auto index = read_cache(cache_path(store), generation); index && index->d == encoder->dim) {
        slot = std::make_shared<VectorIndex>(std::move(index), generation, encoder->dim, kind);
        return slot;
    }
    std::vector<float> data;
    std::vector<faiss::Index::idx_t> ids;
    {
        sql::Stmt st(store.handle(), "SELECT chunk_id, embedding FROM chunk_vectors ORDER BY chunk_id");
        size_t bytes = size_t(encoder->dim) * sizeof(float);
        while (st.step()) {
            if (st.bytes(1) != bytes)
                throw StoreError("vector of chunk " + std::to_string(st.i64(0)) + " has " + std::to_string(st.bytes(1)) +
                                 " bytes, expected " + std::to_string(bytes) + " (" + encoder->identity + ")");
            ids.push_back(st.i64(0));
            const float *v = static_cast<const float *>(st.blob(1));
            data.insert(data.end(), v, v + encoder->dim);
        }
    }
    if (ids.empty()) return nullptr;
    auto index = make_index(kind, encoder->dim, int64_t(ids.size()), data.data());
    index->add_with_ids(int64_t(ids.size()), data.data(), ids.data());
    write_cache(cache_path(store), *index, generation);
    slot = std::make_shared<VectorIndex>(std::move(index), generation, encoder->dim, kind);
    return slot;
}

void build_vector_index(Store &store) { current_vector_index(store); }

}  // namespace saem
