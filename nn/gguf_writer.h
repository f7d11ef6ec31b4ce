// nn/gguf_writer.h: writing GGUF v3 files and quantising float rows into ggml blocks. Tooling for
// tests and converters (tests/tools/make_test_*), not part of the runtime that reads models.
//
// Threads: a GgufWriter is used by one thread at a time; quantize_rows is a pure function that any
// number of threads may call at once.
#pragma once

#include "nn/weights.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace saem::nn {

// Rows of n floats in a ggml block type (F32, F16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K): what
// the GGUF writer stores. The quantisers are llama.cpp's reference ones without an importance
// matrix (round to nearest for the 32-element types, a scale search for the K types). Throws
// ModelError naming the tensor for another type, or rows that are not whole blocks.
std::string quantize_rows(DType type, const float *x, int64_t rows, int64_t n, const std::string &name);

// Collects metadata and tensors, then writes them in one go: the header, the tensor infos and the
// data, each tensor aligned to 32 bytes.
class GgufWriter {
public:
    void add(const std::string &key, const std::string &value);
    void add(const std::string &key, const char *value) { add(key, std::string(value)); }
    void add_u32(const std::string &key, uint32_t value);
    void add_f32(const std::string &key, float value);
    void add_bool(const std::string &key, bool value);
    void add(const std::string &key, const std::vector<std::string> &values);
    void add_i32s(const std::string &key, const std::vector<int32_t> &values);
    void add_f32s(const std::string &key, const std::vector<float> &values);
    // A value read from another GGUF, copied with its type.
    void add(const std::string &key, const Gguf::Value &value);
    // shape outermost first; data row-major floats, stored as type (quantize_rows' types).
    void add_tensor(const std::string &name, const std::vector<int64_t> &shape, DType type, const float *data);
    // A tensor whose bytes (already in `type`'s layout) are made when write() reaches it, so a
    // whole model need not be held in memory; write() checks their length.
    void add_tensor(const std::string &name, const std::vector<int64_t> &shape, DType type, std::function<std::string()> bytes);
    // Writes PATH.part, then renames it to PATH: a failed or interrupted write leaves no file at
    // PATH (and an earlier one there untouched).
    void write(const std::string &path) const;

private:
    std::string meta_;
    uint64_t meta_count_ = 0;
    struct Pending {
        std::string name;
        std::vector<int64_t> shape;
        DType type;
        std::string bytes;                   // when made at add time
        std::function<std::string()> make;   // else made by write()
        size_t size = 0;                     // bytes in the file, before alignment
    };
    std::vector<Pending> tensors_;
};

}  // namespace saem::nn
