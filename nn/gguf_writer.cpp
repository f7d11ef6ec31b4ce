// GGUF v3 writing: metadata as it is added, tensors quantised as they are added, all written at
// the end (the layout is gguf.cpp's, which reads it back).
#include "nn/gguf_writer.h"

#include "nn/internal.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

namespace saem::nn {

namespace {
void put_u32(std::string &s, uint32_t v) { s.append(reinterpret_cast<const char *>(&v), 4); }
void put_u64(std::string &s, uint64_t v) { s.append(reinterpret_cast<const char *>(&v), 8); }
void put_str(std::string &s, const std::string &v) {
    put_u64(s, v.size());
    s += v;
}
}  // namespace

void GgufWriter::add(const std::string &key, const std::string &value) {
    put_str(meta_, key);
    put_u32(meta_, Gguf::Value::STRING);
    put_str(meta_, value);
    ++meta_count_;
}

void GgufWriter::add_u32(const std::string &key, uint32_t value) {
    put_str(meta_, key);
    put_u32(meta_, Gguf::Value::U32);
    put_u32(meta_, value);
    ++meta_count_;
}

void GgufWriter::add_f32(const std::string &key, float value) {
    put_str(meta_, key);
    put_u32(meta_, Gguf::Value::F32);
    meta_.append(reinterpret_cast<const char *>(&value), 4);
    ++meta_count_;
}

void GgufWriter::add_bool(const std::string &key, bool value) {
    put_str(meta_, key);
    put_u32(meta_, Gguf::Value::BOOL);
    meta_ += char(value ? 1 : 0);
    ++meta_count_;
}

void GgufWriter::add(const std::string &key, const std::vector<std::string> &values) {
    put_str(meta_, key);
    put_u32(meta_, Gguf::Value::ARRAY);
    put_u32(meta_, Gguf::Value::STRING);
    put_u64(meta_, values.size());
    for (const auto &v : values) put_str(meta_, v);
    ++meta_count_;
}

void GgufWriter::add_i32s(const std::string &key, const std::vector<int32_t> &values) {
    put_str(meta_, key);
    put_u32(meta_, Gguf::Value::ARRAY);
    put_u32(meta_, Gguf::Value::I32);
    put_u64(meta_, values.size());
    meta_.append(reinterpret_cast<const char *>(values.data()), values.size() * 4);
    ++meta_count_;
}

void GgufWriter::add_f32s(const std::string &key, const std::vector<float> &values) {
    put_str(meta_, key);
    put_u32(meta_, Gguf::Value::ARRAY);
    put_u32(meta_, Gguf::Value::F32);
    put_u64(meta_, values.size());
    meta_.append(reinterpret_cast<const char *>(values.data()), values.size() * 4);
    ++meta_count_;
}

void GgufWriter::add(const std::string &key, const Gguf::Value &v) {
    using V = Gguf::Value;
    // One scalar of a numeric or bool type, from the double the reader keeps it as.
    auto scalar = [&](V::Type type, double x) {
        auto raw = [&](auto value) { meta_.append(reinterpret_cast<const char *>(&value), sizeof value); };
        switch (type) {
        case V::U8: raw(uint8_t(x)); break;
        case V::I8: raw(int8_t(x)); break;
        case V::U16: raw(uint16_t(x)); break;
        case V::I16: raw(int16_t(x)); break;
        case V::U32: raw(uint32_t(x)); break;
        case V::I32: raw(int32_t(x)); break;
        case V::F32: raw(float(x)); break;
        case V::BOOL: raw(uint8_t(x != 0)); break;
        case V::U64: raw(uint64_t(x)); break;
        case V::I64: raw(int64_t(x)); break;
        case V::F64: raw(x); break;
        default: throw ModelError("metadata '" + key + "': cannot copy a value of GGUF type " + std::to_string(int(type)));
        }
    };
    put_str(meta_, key);
    put_u32(meta_, v.type);
    if (v.type == V::STRING) {
        put_str(meta_, v.text);
    } else if (v.type == V::ARRAY) {
        put_u32(meta_, v.element_type);
        if (v.element_type == V::STRING) {
            put_u64(meta_, v.strings.size());
            for (const auto &s : v.strings) put_str(meta_, s);
        } else {
            put_u64(meta_, v.numbers.size());
            for (double x : v.numbers) scalar(v.element_type, x);
        }
    } else {
        scalar(v.type, v.number);
    }
    ++meta_count_;
}

void GgufWriter::add_tensor(const std::string &name, const std::vector<int64_t> &shape, DType type, const float *data) {
    if (shape.empty()) throw ModelError("tensor '" + name + "' has no shape");
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::string bytes = quantize_rows(type, data, n / shape.back(), shape.back(), name);
    const size_t size = bytes.size();
    tensors_.push_back({name, shape, type, std::move(bytes), {}, size});
}

void GgufWriter::add_tensor(const std::string &name, const std::vector<int64_t> &shape, DType type, std::function<std::string()> make) {
    if (shape.empty()) throw ModelError("tensor '" + name + "' has no shape");
    int64_t rows = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
    tensors_.push_back({name, shape, type, {}, std::move(make), size_t(rows) * row_bytes(type, shape.back())});
}

void GgufWriter::write(const std::string &path) const {
    const uint64_t alignment = 32;
    std::string head = "GGUF";
    put_u32(head, 3);
    put_u64(head, tensors_.size());
    put_u64(head, meta_count_);
    head += meta_;
    uint64_t offset = 0;
    for (const auto &t : tensors_) {
        put_str(head, t.name);
        put_u32(head, uint32_t(t.shape.size()));
        for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put_u64(head, uint64_t(*it));
        put_u32(head, ggml_type_id(t.type));
        put_u64(head, offset);
        offset += (t.size + alignment - 1) / alignment * alignment;
    }
    head.resize((head.size() + alignment - 1) / alignment * alignment, '\0');
    const std::string part = path + ".part";
    std::ofstream out(part, std::ios::binary | std::ios::trunc);
    if (!out) throw ModelError(part + ": cannot write: " + std::strerror(errno));
    try {
        out << head;
        for (const auto &t : tensors_) {
            std::string made = t.make ? t.make() : std::string();
            const std::string &bytes = t.make ? made : t.bytes;
            if (bytes.size() != t.size)
                throw ModelError("tensor '" + t.name + "': " + std::to_string(bytes.size()) + " bytes made, " + std::to_string(t.size) + " expected");
            out << bytes;
            out << std::string((alignment - t.size % alignment) % alignment, '\0');
            if (!out) throw ModelError(part + ": write failed: " + std::strerror(errno));
        }
        out.close();
        if (!out) throw ModelError(part + ": write failed: " + std::strerror(errno));
        if (std::rename(part.c_str(), path.c_str()) != 0) throw ModelError(path + ": cannot rename " + part + " to it: " + std::strerror(errno));
    } catch (...) {
        std::remove(part.c_str());
        throw;
    }
}

}  // namespace saem::nn
