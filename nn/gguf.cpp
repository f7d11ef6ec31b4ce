// GGUF, llama.cpp's model file:
//   "GGUF", u32 version (2, 3), u64 tensor count, u64 metadata count,
//   metadata: string key, u32 type, value (strings are u64 length + bytes; arrays are u32 element
//   type, u64 count, elements),
//   tensor infos: string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml type,
//   u64 offset into the data section,
//   data section at the next multiple of general.alignment (default 32).
#include "nn/weights.h"

#include "nn/internal.h"

#include <cstring>

namespace saem::nn {

bool dtype_from_ggml(uint32_t id, DType &out) {
    switch (id) {
    case 0: out = DType::F32; return true;
    case 1: out = DType::F16; return true;
    case 2: out = DType::Q4_0; return true;
    case 3: out = DType::Q4_1; return true;
    case 6: out = DType::Q5_0; return true;
    case 7: out = DType::Q5_1; return true;
    case 8: out = DType::Q8_0; return true;
    case 12: out = DType::Q4_K; return true;
    case 13: out = DType::Q5_K; return true;
    case 14: out = DType::Q6_K; return true;
    case 24: out = DType::I8; return true;
    case 30: out = DType::BF16; return true;
    default: return false;
    }
}

uint32_t ggml_type_id(DType t) {
    switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q4_1: return 3;
    case DType::Q5_0: return 6;
    case DType::Q5_1: return 7;
    case DType::Q8_0: return 8;
    case DType::Q4_K: return 12;
    case DType::Q5_K: return 13;
    case DType::Q6_K: return 14;
    case DType::I8: return 24;
    case DType::BF16: return 30;
    }
    return 0;
}

namespace {

class Cursor {
public:
    Cursor(const MappedFile &f) : file_(f) {}
    template <class T>
    T read(const char *what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, file_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }
    std::string string(const char *what) {
        uint64_t n = read<uint64_t>(what);
        need(n, what);
        std::string s(reinterpret_cast<const char *>(file_.data() + pos_), size_t(n));
        pos_ += size_t(n);
        return s;
    }
    size_t pos() const { return pos_; }

private:
    void need(uint64_t n, const char *what) {
        if (n > file_.size() - pos_)
            throw ModelError(file_.path() + ": truncated or corrupt GGUF: " + what + " at byte " + std::to_string(pos_) +
                             " needs " + std::to_string(n) + " bytes, the file has " + std::to_string(file_.size() - pos_) + " left");
    }
    const MappedFile &file_;
    size_t pos_ = 0;
};

double read_number(Cursor &c, uint32_t type, const char *what) {
    switch (type) {
    case Gguf::Value::U8: return c.read<uint8_t>(what);
    case Gguf::Value::I8: return c.read<int8_t>(what);
    case Gguf::Value::U16: return c.read<uint16_t>(what);
    case Gguf::Value::I16: return c.read<int16_t>(what);
    case Gguf::Value::U32: return c.read<uint32_t>(what);
    case Gguf::Value::I32: return c.read<int32_t>(what);
    case Gguf::Value::F32: return c.read<float>(what);
    case Gguf::Value::BOOL: return c.read<uint8_t>(what) != 0;
    case Gguf::Value::U64: return double(c.read<uint64_t>(what));
    case Gguf::Value::I64: return double(c.read<int64_t>(what));
    case Gguf::Value::F64: return c.read<double>(what);
    default: return 0;
    }
}

}  // namespace

Gguf::Gguf(const std::string &path) : file_(path) {
    Cursor c(file_);
    char magic[4];
    for (char &m : magic) m = char(c.read<uint8_t>("magic"));
    if (std::memcmp(magic, "GGUF", 4) != 0) throw ModelError(path + ": not a GGUF file (no GGUF magic)");
    version_ = c.read<uint32_t>("version");
    if (version_ != 2 && version_ != 3)
        throw ModelError(path + ": GGUF version " + std::to_string(version_) + " is not supported (2 or 3)");
    uint64_t n_tensors = c.read<uint64_t>("tensor count"), n_meta = c.read<uint64_t>("metadata count");
    if (n_tensors > file_.size() / 8 || n_meta > file_.size() / 8)
        throw ModelError(path + ": truncated or corrupt GGUF: the header claims " + std::to_string(n_tensors) + " tensors and " +
                         std::to_string(n_meta) + " metadata entries in a " + std::to_string(file_.size()) + "-byte file");
    for (uint64_t i = 0; i < n_meta; ++i) {
        std::string key = c.string("metadata key");
        Value v;
        uint32_t type = c.read<uint32_t>("metadata type");
        if (type > Value::F64) throw ModelError(path + ": metadata '" + key + "' has unknown type " + std::to_string(type));
        v.type = Value::Type(type);
        if (type == Value::STRING) {
            v.text = c.string("metadata string");
        } else if (type == Value::ARRAY) {
            uint32_t et = c.read<uint32_t>("array type");
            uint64_t n = c.read<uint64_t>("array length");
            if (et > Value::F64 || et == Value::ARRAY)
                throw ModelError(path + ": metadata '" + key + "' is an array of unsupported type " + std::to_string(et));
            if (n > file_.size()) throw ModelError(path + ": metadata '" + key + "' claims " + std::to_string(n) + " elements");
            v.element_type = Value::Type(et);
            if (et == Value::STRING) {
                v.strings.reserve(size_t(n));
                for (uint64_t k = 0; k < n; ++k) v.strings.push_back(c.string("array string"));
            } else {
                v.numbers.reserve(size_t(n));
                for (uint64_t k = 0; k < n; ++k) v.numbers.push_back(read_number(c, et, "array element"));
            }
        } else {
            v.number = read_number(c, type, "metadata value");
        }
        meta_[key] = std::move(v);
    }
    std::vector<uint64_t> offsets;
    for (uint64_t i = 0; i < n_tensors; ++i) {
        Tensor t;
        t.name = c.string("tensor name");
        uint32_t dims = c.read<uint32_t>("tensor dims");
        if (dims == 0 || dims > 4) throw ModelError(path + ": tensor '" + t.name + "' has " + std::to_string(dims) + " dimensions");
        std::vector<int64_t> ne(dims);
        for (auto &d : ne) {
            d = int64_t(c.read<uint64_t>("tensor shape"));
            if (d <= 0 || d > (int64_t(1) << 40))
                throw ModelError(path + ": tensor '" + t.name + "' has a corrupt shape (a dimension of " + std::to_string(d) + ")");
        }
        // Each dimension is at most 2^40, so a product that passes 2^48 is caught before it can wrap.
        int64_t total = 1;
        for (int64_t d : ne) {
            if (total > (int64_t(1) << 48) / d)
                throw ModelError(path + ": tensor '" + t.name + "' has a corrupt shape (more than 2^48 elements)");
            total *= d;
        }
        t.shape.assign(ne.rbegin(), ne.rend());
        uint32_t type = c.read<uint32_t>("tensor type");
        if (!dtype_from_ggml(type, t.type))
            throw ModelError(path + ": tensor '" + t.name + "' has ggml type " + std::to_string(type) +
                             ", which saem does not read (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
        int64_t rows = t.elements() / ne[0];
        try {
            t.bytes = size_t(rows) * row_bytes(t.type, ne[0]);
        } catch (const ModelError &e) {
            throw ModelError(path + ": tensor '" + t.name + "': " + e.what());
        }
        offsets.push_back(c.read<uint64_t>("tensor offset"));
        tensors_.push_back(std::move(t));
    }
    double align = get_number("general.alignment", 32);
    if (!(align >= 1 && align <= 65536)) throw ModelError(path + ": general.alignment must be a power of two up to 65536");
    uint64_t alignment = uint64_t(align);
    if (double(alignment) != align || (alignment & (alignment - 1))) throw ModelError(path + ": general.alignment must be a power of two");
    uint64_t data = (c.pos() + alignment - 1) / alignment * alignment;
    for (size_t i = 0; i < tensors_.size(); ++i) {
        Tensor &t = tensors_[i];
        if (offsets[i] % alignment) throw ModelError(path + ": tensor '" + t.name + "' is not aligned");
        if (data + offsets[i] > file_.size() || t.bytes > file_.size() - data - offsets[i])
            throw ModelError(path + ": tensor '" + t.name + "' (" + dtype_name(t.type) + ", " + std::to_string(t.bytes) +
                             " bytes at data offset " + std::to_string(offsets[i]) + ") runs past the end of the " +
                             std::to_string(file_.size()) + "-byte file: truncated download?");
        t.data = file_.data() + data + offsets[i];
    }
}

const Gguf::Value *Gguf::find(const std::string &key) const {
    auto it = meta_.find(key);
    return it == meta_.end() ? nullptr : &it->second;
}

std::string Gguf::get_string(const std::string &key) const {
    const Value *v = find(key);
    if (!v || v->type != Value::STRING) throw ModelError(path() + ": metadata '" + key + "' (a string) is missing");
    return v->text;
}

double Gguf::get_number(const std::string &key) const {
    const Value *v = find(key);
    if (!v || v->type == Value::STRING || v->type == Value::ARRAY)
        throw ModelError(path() + ": metadata '" + key + "' (a number) is missing");
    return v->number;
}

double Gguf::get_number(const std::string &key, double fallback) const {
    const Value *v = find(key);
    return v && v->type != Value::STRING && v->type != Value::ARRAY ? v->number : fallback;
}

const std::vector<std::string> &Gguf::get_strings(const std::string &key) const {
    const Value *v = find(key);
    if (!v || v->type != Value::ARRAY || v->element_type != Value::STRING)
        throw ModelError(path() + ": metadata '" + key + "' (a string array) is missing");
    return v->strings;
}

const Tensor *Gguf::find_tensor(const std::string &name) const {
    for (const auto &t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

const Tensor &Gguf::tensor(const std::string &name, const std::vector<int64_t> &shape) const {
    return checked_tensor(path(), name, find_tensor(name), shape);
}

}  // namespace saem::nn
