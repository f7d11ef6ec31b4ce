// The FAISS cache of the store's vectors: the contract is in vectors.h.
#include "retrieval/vectors.h"
#include "retrieval/pipeline.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

namespace saem {

namespace {

constexpr char cache_magic[8] = {'S', 'A', 'E', 'M', 'V', 'E', 'C', '\0'};
// HNSW graph degree and build/search breadth; IVF-PQ lists and probes follow the size.
constexpr int hnsw_m = 32, hnsw_ef_construction = 64, hnsw_ef_search = 128;

std::string kind_params(VectorIndexKind kind) {
    switch (kind) {
    case VectorIndexKind::hnsw:
        return "M=" + std::to_string(hnsw_m) + ",efConstruction=" + std::to_string(hnsw_ef_construction) +
               ",efSearch=" + std::to_string(hnsw_ef_search);
    case VectorIndexKind::ivfpq: return "nlist=4sqrt(n),m=dim/16|dim/8,nbits=8,nprobe=32,min_per_list=40";
    default: return "exact";
    }
}

// built_for: the vector count an IVF-PQ index (or its flat stand-in) was sized for; 0 otherwise.
std::unique_ptr<faiss::Index> make_index(VectorIndexKind kind, int dim, int64_t n, const float *data, int64_t &built_for) {
    built_for = kind == VectorIndexKind::ivfpq ? n : 0;
    switch (kind) {
    case VectorIndexKind::hnsw: {
        auto *hnsw = new faiss::IndexHNSWFlat(dim, hnsw_m, faiss::METRIC_INNER_PRODUCT);
        hnsw->hnsw.efConstruction = hnsw_ef_construction;
        hnsw->hnsw.efSearch = hnsw_ef_search;
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

std::string cache_path(const std::string &db) { return db + ".faiss"; }

nlohmann::json stamp_json(const VectorStamp &s) {
    return {{"database_id", s.database_id}, {"generation", s.generation}, {"kind", vector_index_name(s.kind)},
            {"params", s.params}, {"dim", s.dim}, {"encoder", s.encoder}, {"trained", s.trained}};
}

// Reads <db>.faiss when its stamp is the store's (any generation): the caller brings it forward.
std::unique_ptr<VectorIndex> read_cache(const std::string &path, const VectorStamp &want) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return nullptr;
    char magic[8];
    uint32_t version = 0, stamp_bytes = 0;
    if (!in.read(magic, 8) || std::memcmp(magic, cache_magic, 8) != 0) return nullptr;
    if (!in.read(reinterpret_cast<char *>(&version), 4) || version != vector_cache_format) return nullptr;
    if (!in.read(reinterpret_cast<char *>(&stamp_bytes), 4) || stamp_bytes > (1u << 20)) return nullptr;
    std::string text(stamp_bytes, '\0');
    if (!in.read(text.data(), stamp_bytes)) return nullptr;
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return nullptr;
    VectorStamp got;
    try {
        got.database_id = j.at("database_id").get<std::string>();
        got.generation = j.at("generation").get<int64_t>();
        got.kind = parse_vector_index(j.at("kind").get<std::string>());
        got.params = j.at("params").get<std::string>();
        got.dim = j.at("dim").get<int>();
        got.encoder = j.at("encoder").get<std::string>();
        got.trained = j.at("trained").get<int64_t>();
    } catch (const std::exception &) {
        return nullptr;
    }
    if (!got.same_source(want) || got.generation > want.generation) return nullptr;
    faiss::VectorIOReader reader;
    reader.data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    try {
        std::unique_ptr<faiss::Index> index(faiss::read_index(&reader));
        if (!index || index->d != got.dim) return nullptr;
        return std::make_unique<VectorIndex>(std::move(index), got);
    } catch (const std::exception &) {
        return nullptr;  // damaged cache: rebuilt from SQLite
    }
}

// A unique temporary file, fsync, rename: a reader sees the old cache or the new one, never half
// of one. False when it could not be written (then it is rebuilt next time; not an error).
bool write_cache(const std::string &path, const VectorIndex &index) {
    std::vector<uint8_t> bytes = index.serialize();
    std::string stamp = stamp_json(index.stamp()).dump();
    uint32_t version = vector_cache_format, stamp_bytes = uint32_t(stamp.size());
    std::string tmp = path + ".tmpXXXXXX";
    int fd = ::mkstemp(tmp.data());
    if (fd < 0) return false;
    ::fchmod(fd, 0644);
    auto put = [&](const void *p, size_t n) {
        const char *c = static_cast<const char *>(p);
        while (n > 0) {
            ssize_t w = ::write(fd, c, n);
            if (w <= 0) return false;
            c += w;
            n -= size_t(w);
        }
        return true;
    };
    bool ok = put(cache_magic, 8) && put(&version, 4) && put(&stamp_bytes, 4) && put(stamp.data(), stamp.size()) &&
              put(bytes.data(), bytes.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (ok && std::rename(tmp.c_str(), path.c_str()) == 0) {
        std::string dir = std::filesystem::path(path).parent_path().string();
        int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) { ::fsync(dfd); ::close(dfd); }
        return true;
    }
    std::remove(tmp.c_str());
    return false;
}

// The vectors of ids that still have one, read in the caller's snapshot.
void read_some(Store &store, const std::vector<int64_t> &changed, int dim, std::vector<int64_t> &ids, std::vector<float> &data) {
    auto vecs = store.chunk_vectors(changed);
    for (size_t i = 0; i < changed.size(); ++i) {
        if (vecs[i].size() != size_t(dim)) continue;
        ids.push_back(changed[i]);
        data.insert(data.end(), vecs[i].begin(), vecs[i].end());
    }
}

// One index file's cache. The map lock is held only to find the entry; `build` serialises the
// catching-up and rebuilding of one file's index, never searches.
struct Entry {
    std::mutex build;
    std::mutex slot_mutex;
    std::shared_ptr<VectorIndex> slot;
    int64_t file_generation = -1;  // the generation <db>.faiss holds
    std::shared_ptr<VectorIndex> get() {
        std::lock_guard lock(slot_mutex);
        return slot;
    }
    void set(std::shared_ptr<VectorIndex> index) {
        std::lock_guard lock(slot_mutex);
        slot = std::move(index);
    }
};

std::mutex map_mutex;
std::map<std::string, std::shared_ptr<Entry>> entries;

std::shared_ptr<Entry> entry_for(const std::string &db) {
    std::lock_guard lock(map_mutex);
    auto &e = entries[db];
    if (!e) e = std::make_shared<Entry>();
    return e;
}

}  // namespace

VectorIndex::VectorIndex(std::unique_ptr<faiss::Index> index, VectorStamp stamp)
    : index_(std::move(index)), stamp_(std::move(stamp)) {}

VectorIndex::~VectorIndex() = default;

int64_t VectorIndex::size() const {
    std::shared_lock lock(mutex_);
    return index_->ntotal;
}

VectorStamp VectorIndex::stamp() const {
    std::shared_lock lock(mutex_);
    return stamp_;
}

std::vector<std::pair<int64_t, float>> VectorIndex::search(const float *q, int k) const {
    std::shared_lock lock(mutex_);
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

bool VectorIndex::apply(const std::vector<int64_t> &changed, const std::vector<int64_t> &ids, const std::vector<float> &data,
                        int64_t generation) {
    std::unique_lock lock(mutex_);
    auto *idmap = dynamic_cast<faiss::IndexIDMap2 *>(index_.get());
    if (!idmap) return false;
    bool removes = false;
    for (int64_t id : changed) removes = removes || idmap->rev_map.count(id);
    if (removes) {
        // Only a flat index removes correctly under the id map (see the contract).
        if (!dynamic_cast<faiss::IndexFlat *>(idmap->index)) return false;
        std::vector<faiss::Index::idx_t> gone(changed.begin(), changed.end());
        faiss::IDSelectorBatch sel(gone.size(), gone.data());
        idmap->remove_ids(sel);
    }
    if (!ids.empty()) {
        std::vector<faiss::Index::idx_t> add(ids.begin(), ids.end());
        idmap->add_with_ids(faiss::Index::idx_t(add.size()), data.data(), add.data());
    }
    stamp_.generation = generation;
    return true;
}

std::vector<uint8_t> VectorIndex::serialize() const {
    std::shared_lock lock(mutex_);
    faiss::VectorIOWriter writer;
    faiss::write_index(index_.get(), &writer);
    return std::move(writer.data);
}

VectorStamp current_stamp(Store &store) {
    Store::Snapshot snapshot(store);
    VectorStamp s;
    s.database_id = store.database_id();
    s.generation = store.vector_generation();
    s.kind = store.vector_index_kind();
    s.params = kind_params(s.kind);
    if (auto enc = store.encoder()) {
        s.dim = enc->dim;
        s.encoder = enc->identity;
    }
    return s;
}

std::shared_ptr<const VectorIndex> current_vector_index(Store &store) {
    VectorStamp want = current_stamp(store);
    if (want.dim <= 0 || !store.has_vectors()) return nullptr;
    auto entry = entry_for(store.path());
    auto fresh = [&](const std::shared_ptr<VectorIndex> &index) {
        if (!index) return false;
        VectorStamp have = index->stamp();
        return have.same_source(want) && have.generation >= want.generation;
    };
    if (auto index = entry->get(); fresh(index)) return index;

    std::unique_lock build(entry->build, std::try_to_lock);
    if (!build.owns_lock()) {
        // Another thread is catching up or rebuilding: search what is there if it is this
        // store's index, else wait for the build.
        if (auto index = entry->get(); index && index->stamp().same_source(want)) return index;
        build.lock();
    }
    // Whoever held the lock before may have brought the index forward already.
    if (auto index = entry->get(); fresh(index)) return index;

    // Catch up from memory, else from <db>.faiss, through the vector log.
    std::shared_ptr<VectorIndex> base = entry->get();
    if (!base || !base->stamp().same_source(want)) {
        base = read_cache(cache_path(store.path()), want);
        if (base) entry->file_generation = base->stamp().generation;
    }
    if (base) {
        Store::Snapshot snapshot(store);
        VectorStamp now = current_stamp(store);
        VectorStamp have = base->stamp();
        if (now.same_source(want)) {
            if (have.generation >= now.generation) {  // our snapshot is older than the index
                entry->set(base);
                return base;
            }
            if (auto changed = store.vector_changes_since(have.generation)) {
                std::vector<int64_t> ids;
                std::vector<float> data;
                read_some(store, *changed, now.dim, ids, data);
                bool retrain = have.trained > 0 && (base->size() > 2 * have.trained || 2 * base->size() < have.trained);
                if (!retrain && base->apply(*changed, ids, data, now.generation)) {
                    entry->set(base);
                    int64_t drift = now.generation - entry->file_generation;
                    if ((drift > 50000 || drift * 4 > base->size()) && write_cache(cache_path(store.path()), *base))
                        entry->file_generation = now.generation;
                    return base;
                }
            }
        }
    }

    // Rebuild from SQLite in one snapshot: the stamp's generation is the vectors'.
    std::vector<float> data;
    std::vector<faiss::Index::idx_t> ids;
    VectorStamp stamp;
    {
        Store::Snapshot snapshot(store);
        stamp = current_stamp(store);
        if (stamp.dim <= 0) return nullptr;
        const size_t dim = size_t(stamp.dim);
        store.read_vectors([&](int64_t id, const float *v, size_t n) {
            if (n != dim)
                throw StoreError("vector of chunk " + std::to_string(id) + " has " + std::to_string(n) + " floats, expected " +
                                 std::to_string(dim) + " (" + stamp.encoder + ")");
            ids.push_back(id);
            data.insert(data.end(), v, v + dim);
        });
    }
    if (ids.empty()) return nullptr;
    auto faiss_index = make_index(stamp.kind, stamp.dim, int64_t(ids.size()), data.data(), stamp.trained);
    faiss_index->add_with_ids(int64_t(ids.size()), data.data(), ids.data());
    auto index = std::make_shared<VectorIndex>(std::move(faiss_index), stamp);
    if (write_cache(cache_path(store.path()), *index)) entry->file_generation = stamp.generation;
    entry->set(index);
    return index;
}

void build_vector_index(Store &store) { current_vector_index(store); }

void drop_vector_cache(const std::string &db_path) {
    {
        std::lock_guard lock(map_mutex);
        entries.erase(db_path);
    }
    std::remove(cache_path(db_path).c_str());
}

}  // namespace saem
