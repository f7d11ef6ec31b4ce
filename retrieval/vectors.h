// The FAISS side of the store, private to retrieval: an index over chunk_vectors, cached in
// <db>.faiss and in memory, rebuilt whenever its generation is not SQLite's.
#pragma once

#include "retrieval/retrieval.h"

#include <memory>
#include <utility>
#include <vector>

namespace faiss { struct Index; }

namespace saem {

class VectorIndex {
public:
    VectorIndex(std::unique_ptr<faiss::Index> index, int64_t generation, int dim, VectorIndexKind kind);
    ~VectorIndex();
    // Best k chunk ids by inner product with q (dim floats), best first.
    std::vector<std::pair<int64_t, float>> search(const float *q, int k) const;
    int64_t generation() const { return generation_; }
    int dim() const { return dim_; }
    int64_t size() const;

private:
    std::unique_ptr<faiss::Index> index_;
    int64_t generation_;
    int dim_;
    VectorIndexKind kind_;
};

// The index for the store's current generation: from memory, from <db>.faiss, or rebuilt from
// SQLite (and then written to <db>.faiss atomically). Null when the store has no vectors.
std::shared_ptr<const VectorIndex> current_vector_index(Store &store);

}  // namespace saem
