// safetensors: u64 little-endian header size N, N bytes of JSON
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the data;
// offsets are relative to the end of the header.
#include "nn/weights.h"

#include "nn/internal.h"

#include <nlohmann/json.hpp>

#include <cstring>

namespace saem::nn {

namespace {
bool parse_dtype(const std::string &s, DType &out) {
    if (s == "F32") out = DType::F32;
    else if (s == "F16") out = DType::F16;
    else if (s == "BF16") out = DType::BF16;
    else if (s == "I8") out = DType::I8;
    else return false;
    return true;
}

size_t other_dtype_size(const std::string &s) {
    if (s == "F64" || s == "I64" || s == "U64") return 8;
    if (s == "I32" || s == "U32") return 4;
    if (s == "I16" || s == "U16") return 2;
    if (s == "U8" || s == "BOOL" || s == "F8_E4M3" || s == "F8_E5M2") return 1;
    return 0;
}
}  // namespace

SafeTensors::SafeTensors(const std::string &path) : file_(path) {
    if (file_.size() < 8) throw ModelError(path + ": truncated safetensors file (" + std::to_string(file_.size()) + " bytes)");
    uint64_t header_size;
    std::memcpy(&header_size, file_.data(), 8);
    if (header_size > file_.size() - 8)
        throw ModelError(path + ": header of " + std::to_string(header_size) + " bytes does not fit in a " +
                         std::to_string(file_.size()) + "-byte file: not safetensors, or truncated");
    auto header = parse_model_json({reinterpret_cast<const char *>(file_.data()) + 8, size_t(header_size)}, path + " (safetensors header)");
    if (!header.is_object()) throw ModelError(path + ": header is not a JSON object: not safetensors");
    const uint8_t *base = file_.data() + 8 + header_size;
    size_t data_size = file_.size() - 8 - header_size;
    for (const auto &[name, info] : header.items()) {
        if (name == "__metadata__") continue;
        std::string where = path + ": tensor '" + name + "'";
        if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
            throw ModelError(where + ": entry lacks dtype, shape or data_offsets");
        Tensor t;
        t.name = name;
        if (!info["dtype"].is_string()) throw ModelError(where + ": dtype is not a string");
        std::string dtype = info["dtype"].get<std::string>();
        bool readable = parse_dtype(dtype, t.type);
        // Each dimension and their product below 2^48, so the byte count cannot wrap and match.
        const auto &shape = info["shape"];
        if (!shape.is_array() || shape.size() > 8) throw ModelError(where + ": shape is not an array of up to 8 sizes");
        uint64_t elements = 1;
        for (const auto &d : shape) {
            if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t(1) << 48))
                throw ModelError(where + ": a shape size is not an integer from 0 to 2^48");
            t.shape.push_back(d.get<int64_t>());
            uint64_t size = d.get<uint64_t>();
            if (size && elements > (uint64_t(1) << 48) / size) throw ModelError(where + ": more than 2^48 elements");
            elements *= size;
        }
        const auto &off = info["data_offsets"];
        if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
            throw ModelError(where + ": data_offsets is not two byte offsets");
        uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
        size_t element_size = readable ? dtype_size(t.type) : other_dtype_size(dtype);
        if (!element_size) throw ModelError(where + ": unknown dtype " + dtype);
        uint64_t expected = elements * element_size;
        if (end < begin || end - begin != expected)
            throw ModelError(where + ": holds " + std::to_string(end - begin) + " bytes, shape and dtype need " +
                             std::to_string(expected));
        if (end > data_size)
            throw ModelError(where + ": data ends at byte " + std::to_string(end) + " but the file has " +
                             std::to_string(data_size) + " data bytes: truncated file");
        if (!readable) {  // e.g. BERT's I64 position_ids buffer: present, never needed
            unreadable_[name] = dtype;
            continue;
        }
        t.data = base + begin;
        t.bytes = size_t(expected);
        tensors_.push_back(std::move(t));
    }
}

const Tensor *SafeTensors::find(const std::string &name) const {
    for (const auto &t : tensors_)
        if (t.name == name) return &t;
    return nullptr;
}

const Tensor &SafeTensors::get(const std::string &name, const std::vector<int64_t> &shape) const {
    const Tensor *t = find(name);
    if (!t && unreadable_.count(name))
        throw ModelError(path() + ": tensor '" + name + "' has dtype " + unreadable_.at(name) + " (saem reads F32, F16, BF16, I8)");
    return checked_tensor(path(), name, t, shape);
}

const Tensor &checked_tensor(const std::string &file, const std::string &name, const Tensor *t,
                             const std::vector<int64_t> &shape) {
    if (!t) throw ModelError(file + ": missing tensor '" + name + "'");
    bool ok = t->shape.size() == shape.size();
    for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || shape[i] == t->shape[i];
    if (!ok) {
        auto fmt = [](const std::vector<int64_t> &s) {
            std::string out = "[";
            for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + (s[i] < 0 ? std::string("*") : std::to_string(s[i]));
            return out + "]";
        };
        throw ModelError(file + ": tensor '" + name + "' has shape " + fmt(t->shape) + ", expected " + fmt(shape));
    }
    return *t;
}

}  // namespace saem::nn
