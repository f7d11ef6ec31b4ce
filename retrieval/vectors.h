// The FAISS side of the store, private to retrieval: an index over the store's chunk vectors,
// cached in memory (per index file) and in <db>.faiss. SQLite holds the truth; this is derived.
//
// Cache contract.
//  - A cache is valid for a store only when its stamp equals the store's: database id (random,
//    made with the file: another index at the same path is another database), index kind and its
//    parameters, dimension, encoder identity and cache format version. Any difference: rebuilt.
//  - The stamp's generation says which committed vector state the index holds. A cache behind the
//    store's generation is brought forward from the store's vector log (store.h, invariant 6): the
//    logged chunks are removed from the index and those that still have a vector re-added
//    (FAISS IndexIDMap2 remove/add; the index is edited under its exclusive lock, O(n) for a
//    flat removal, so searches pause for it). Only flat indexes remove in place: HNSW cannot
//    remove, and IVF-PQ under an id map would keep stale list labels, so a change that removes
//    from either, or a log that no longer reaches back, rebuilds. An IVF-PQ index is also rebuilt
//    when the vector count has doubled or halved since it was trained (its lists were sized
//    for that count; below 40 vectors per list it is a flat index until then).
//  - A rebuild reads every vector inside one read transaction (so the stamp's generation is the
//    snapshot's), runs without any lock that searches wait on, and is swapped in when done; while
//    it runs, searches use the previous index (hits of chunks deleted meanwhile are dropped when
//    the hits are read). Only one rebuild per index file runs at a time.
//  - <db>.faiss is rewritten (temporary file, fsync, rename) after a rebuild and when the index
//    has moved more than a quarter of its size, or 50,000 changes, past the file's generation, so
//    a new process catches up from the file through a short log instead of rebuilding.
//
// File format (version 2): "SAEMVEC\0", uint32 format version, uint32 stamp length, the stamp as
// JSON {"database_id", "generation", "kind", "params", "dim", "encoder", "trained"}, then
// faiss::write_index bytes. All integers little-endian.
//
// Threads: current_vector_index(), current_stamp() (each with its own Store) and the const
// members of VectorIndex may be called from any thread at once. VectorIndex::apply() is called
// only by current_vector_index(), holding that index file's build lock. drop_vector_cache()
// (pipeline.h) must not run while another thread searches the same file.
#pragma once

#include "retrieval/store.h"

#include <memory>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace faiss {
struct Index;
}

namespace saem {

constexpr uint32_t vector_cache_format = 2;

// What a FAISS index was built from and how: equal stamps (but for generation) mean the same
// vectors in the same kind of index.
struct VectorStamp {
    std::string database_id;
    int64_t generation = -1;
    VectorIndexKind kind = VectorIndexKind::flat;
    std::string params;  // the kind's build settings, e.g. "M=32,efConstruction=64,efSearch=128"
    int dim = 0;
    std::string encoder;
    int64_t trained = 0;  // IVF-PQ: the vector count it was built for (0 for flat and HNSW)
    bool same_source(const VectorStamp &o) const {
        return database_id == o.database_id && kind == o.kind && params == o.params && dim == o.dim && encoder == o.encoder;
    }
};

class VectorIndex {
public:
    VectorIndex(std::unique_ptr<faiss::Index> index, VectorStamp stamp);
    ~VectorIndex();
    // Best k chunk ids by inner product with q (dim floats), best first.
    std::vector<std::pair<int64_t, float>> search(const float *q, int k) const;
    VectorStamp stamp() const;
    int dim() const { return stamp_.dim; }
    int64_t size() const;
    // Brings the index to `generation`: removes `changed` chunks, adds those of them in
    // (ids, data). False when this kind cannot (HNSW asked to remove): the caller rebuilds.
    bool apply(const std::vector<int64_t> &changed, const std::vector<int64_t> &ids, const std::vector<float> &data,
               int64_t generation);
    // faiss::write_index bytes, under the read lock.
    std::vector<uint8_t> serialize() const;

private:
    mutable std::shared_mutex mutex_;  // searches share; apply() is exclusive
    std::unique_ptr<faiss::Index> index_;
    VectorStamp stamp_;
};

// The store's current vector stamp (database id, generation, kind, dimension, encoder), with
// params as the kind would be built now.
VectorStamp current_stamp(Store &store);

// The index at the store's current generation: from memory, from <db>.faiss, or rebuilt from
// SQLite (see the contract above). Null when the store has no vectors.
std::shared_ptr<const VectorIndex> current_vector_index(Store &store);

}  // namespace saem
