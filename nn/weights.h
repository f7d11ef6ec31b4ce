// nn/weights.h: model weight files and the tensors in them: element types (DType and its size
// tables), Tensor, the read-only file map, the safetensors and GGUF readers, and reading any
// tensor's elements back as floats. The block layouts behind the quantised types are in
// nn/blocks.h; writing GGUF files is nn/gguf_writer.h.
//
// Threads: MappedFile, SafeTensors and Gguf do not change once constructed, and the tensors they
// hand out point into the read-only map: their const members, element(), dequantize_row() and the
// type tables may be called from any number of threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace saem::nn {

// A model file that is missing, truncated, corrupt or of a kind saem does not support. The
// message names the file and, where it applies, the tensor and what was expected.
struct ModelError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Element types. The quantised ones are ggml's blocks (nn/blocks.h): block_elements() elements
// stored in block_bytes().
enum class DType : uint8_t { F32, F16, BF16, I8, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K };
const char *dtype_name(DType type);
size_t dtype_size(DType type);        // bytes per element of the unquantised types, 0 otherwise
size_t block_elements(DType type);    // 1 for the unquantised types
size_t block_bytes(DType type);
size_t row_bytes(DType type, int64_t elements);  // throws ModelError if elements is not whole blocks

// A tensor inside a mapped file. Row-major; shape[0] is the outermost dimension (safetensors
// order, the reverse of GGUF's ne[]).
struct Tensor {
    std::string name;
    DType type = DType::F32;
    std::vector<int64_t> shape;
    const uint8_t *data = nullptr;
    size_t bytes = 0;
    int64_t elements() const;
};

// Element i of a tensor of any supported type, as float.
float element(const Tensor &t, int64_t i);
// Row r of a tensor (the innermost dimension, contiguous) dequantised to float.
void dequantize_row(const Tensor &t, int64_t row, float *out);
// IEEE half precision, rounded to nearest even.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

// A read-only memory map of a whole file.
class MappedFile {
public:
    explicit MappedFile(const std::string &path);
    ~MappedFile();
    MappedFile(const MappedFile &) = delete;
    MappedFile &operator=(const MappedFile &) = delete;
    const uint8_t *data() const { return data_; }
    size_t size() const { return size_; }
    const std::string &path() const { return path_; }

private:
    std::string path_;
    const uint8_t *data_ = nullptr;
    size_t size_ = 0;
};

// Hugging Face safetensors: an 8-byte header length, a JSON header, then the tensor bytes.
class SafeTensors {
public:
    explicit SafeTensors(const std::string &path);
    const Tensor *find(const std::string &name) const;
    // The named tensor, checked against the expected shape (-1: any size in that dimension).
    const Tensor &get(const std::string &name, const std::vector<int64_t> &shape) const;
    const std::vector<Tensor> &tensors() const { return tensors_; }
    const std::string &path() const { return file_.path(); }

private:
    MappedFile file_;
    std::vector<Tensor> tensors_;
    std::unordered_map<std::string, std::string> unreadable_;  // name -> dtype saem does not read
};

// llama.cpp's GGUF (versions 2 and 3): typed metadata, then tensor infos, then aligned data.
// Tensors are mapped, not copied.
class Gguf {
public:
    explicit Gguf(const std::string &path);
    struct Value {
        enum Type : uint32_t { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 } type = U32;
        Type element_type = U32;  // of an ARRAY
        double number = 0;        // every numeric and bool scalar
        std::string text;         // STRING
        std::vector<double> numbers;       // numeric and bool arrays
        std::vector<std::string> strings;  // string arrays
    };
    const Value *find(const std::string &key) const;
    std::string get_string(const std::string &key) const;      // throws ModelError naming the key
    double get_number(const std::string &key) const;
    double get_number(const std::string &key, double fallback) const;
    const std::vector<std::string> &get_strings(const std::string &key) const;
    const Tensor *find_tensor(const std::string &name) const;
    const Tensor &tensor(const std::string &name, const std::vector<int64_t> &shape) const;
    const std::vector<Tensor> &tensors() const { return tensors_; }
    const std::unordered_map<std::string, Value> &metadata() const { return meta_; }
    const std::string &path() const { return file_.path(); }
    uint32_t version() const { return version_; }

private:
    MappedFile file_;
    uint32_t version_ = 0;
    std::unordered_map<std::string, Value> meta_;
    std::vector<Tensor> tensors_;
};

}  // namespace saem::nn
