// GGUF v3 writing: metadata as it is added, tensors quantised as they are added, all written at
// the end (the layout is gguf.cpp's, which reads it back).
#include "nn/gguf_writer.h"

#include "nn/internal.h"

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

void GgufWriter::add_tensor(const std::string &name, const std::vector<int64_t> &shape, DType type, const float *data) {
    if (shape.empty()) throw ModelError("tensor '" + name + "' has no shape");
    int64_t n = 1;
    for (auto d : shape) n *= d;
    tensors_.push_back({name, shape, type, quantize_rows(type, data, n / shape.back(), shape.back(), name)});
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
        offset += (t.bytes.size() + alignment - 1) / alignment * alignment;
    }
    head.resize((head.size() + alignment - 1) / alignment * alignment, '\0');
    std::ofstream out(path, std::ios::binary);
    if (!out) throw ModelError(path + ": cannot write");
    out << head;
    for (const auto &t : tensors_) {
        out << t.bytes;
        out << std::string((alignment - t.bytes.size() % alignment) % alignment, '\0');
    }
    if (!out) throw ModelError(path + ": write failed");
}

}  // namespace saem::nn
