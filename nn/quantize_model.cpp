// saem quantize: the rules are numbered in nn/quantize_model.h.
#include "nn/quantize_model.h"

#include "nn/gguf_writer.h"
#include "nn/thread_pool.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <map>

namespace saem::nn {

namespace {

struct TypeInfo {
    QuantType type;
    const char *name;
    DType base;
    uint32_t file_type;  // llama.cpp's llama_ftype
};

constexpr TypeInfo types[] = {
    {QuantType::Q8_0, "Q8_0", DType::Q8_0, 7},     {QuantType::Q4_0, "Q4_0", DType::Q4_0, 2},
    {QuantType::Q5_0, "Q5_0", DType::Q5_0, 8},     {QuantType::Q4_K_M, "Q4_K_M", DType::Q4_K, 15},
    {QuantType::Q5_K_M, "Q5_K_M", DType::Q5_K, 17}, {QuantType::Q6_K, "Q6_K", DType::Q6_K, 18},
};

const TypeInfo &info(QuantType t) {
    for (const auto &i : types)
        if (i.type == t) return i;
    return types[0];
}

bool ends_with(const std::string &s, const std::string &tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// The layer number of "blk.N....", or -1.
int layer_of(const std::string &name) {
    if (name.rfind("blk.", 0) != 0) return -1;
    try {
        return std::stoi(name.substr(4));
    } catch (const std::exception &) {
        return -1;
    }
}

}  // namespace

QuantType parse_quant_type(const std::string &name) {
    std::string upper = name;
    for (char &c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
    if (upper == "Q4_K") upper = "Q4_K_M";
    if (upper == "Q5_K") upper = "Q5_K_M";
    std::string names;
    for (const auto &i : types) {
        if (upper == i.name) return i.type;
        names += std::string(names.empty() ? "" : ", ") + i.name;
    }
    throw std::invalid_argument("unknown quantisation type '" + name + "' (" + names + ")");
}

const char *quant_type_name(QuantType type) { return info(type).name; }

DType quantized_type(QuantType type, const Tensor &t, bool tied, int layers) {
    const std::string &name = t.name;
    // Rule 1.
    if (t.shape.size() < 2 || !ends_with(name, "weight") || name.find("_norm.weight") != std::string::npos ||
        name == "position_embd.weight" || name == "token_types.weight")
        return t.type;
    const DType base = info(type).base;
    const int64_t cols = t.shape.back();
    DType to = base;
    // Rule 3.
    if (name == "output.weight" || (tied && name == "token_embd.weight")) {
        if (cols % int64_t(block_elements(base))) to = DType::Q8_0;
        else if (base != DType::Q8_0) to = DType::Q6_K;
    } else if (type == QuantType::Q4_K_M || type == QuantType::Q5_K_M) {
        // Rule 4.
        const int i = layer_of(name), n = layers;
        const bool more_bits = i >= 0 && n > 0 && (i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2);
        if (more_bits && (name.find("attn_v.weight") != std::string::npos || name.find("ffn_down") != std::string::npos))
            to = DType::Q6_K;
    }
    // Rule 5.
    if (cols % int64_t(block_elements(to))) {
        if (to == DType::Q4_K) to = DType::Q5_0;
        else if (to == DType::Q5_K) to = DType::Q5_1;
        else if (to == DType::Q6_K) to = DType::Q8_0;
        if (cols % int64_t(block_elements(to))) to = DType::F16;
    }
    return to;
}

QuantizeReport quantize_model(const std::string &in, const std::string &out, QuantType type,
                              const std::function<void(const QuantizedTensor &, size_t, size_t)> &progress) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::equivalent(in, out, ec)) throw std::invalid_argument("the output " + out + " is the input; name another file");
    const auto start = std::chrono::steady_clock::now();
    Gguf g(in);
    for (const auto &t : g.tensors())
        if (t.type != DType::F32 && t.type != DType::F16 && t.type != DType::BF16)
            throw ModelError(in + ": tensor '" + t.name + "' is already " + dtype_name(t.type) +
                             "; quantise from an F32, F16 or BF16 file (quantising twice loses more than once)");
    const bool tied = g.find_tensor("output.weight") == nullptr;
    int layers = 0;
    for (const auto &t : g.tensors()) layers = std::max(layers, layer_of(t.name) + 1);

    GgufWriter w;
    // Rule 6: sorted keys, so the same input always gives the same file.
    std::map<std::string, const Gguf::Value *> meta;
    for (const auto &[k, v] : g.metadata()) meta[k] = &v;
    for (const auto &[k, v] : meta)
        if (k != "general.file_type" && k != "general.quantization_version") w.add(k, *v);
    w.add_u32("general.file_type", info(type).file_type);
    w.add_u32("general.quantization_version", 2);

    QuantizeReport report;
    report.file_bytes_in = fs::file_size(in);
    const size_t total = g.tensors().size();
    for (const auto &t : g.tensors()) {
        const DType to = quantized_type(type, t, tied, layers);
        const int64_t cols = t.shape.back(), rows = t.elements() / std::max<int64_t>(cols, 1);
        QuantizedTensor q{t.name, t.type, to, t.bytes, size_t(rows) * row_bytes(to, cols)};
        report.tensors.push_back(q);
        const Tensor *src = &t;
        const size_t index = report.tensors.size();
        w.add_tensor(t.name, t.shape, to, [src, to, rows, cols, q, index, &progress, total]() {
            std::string bytes;
            if (to == src->type) {
                bytes.assign(reinterpret_cast<const char *>(src->data), src->bytes);
            } else {
                // Rows spread over the pool; each thread's share is quantised into its own string.
                ThreadPool &pool = compute_pool();
                std::vector<std::string> parts(size_t(pool.size()));
                pool.run([&](int ith, int nth) {
                    const int64_t r0 = rows * ith / nth, r1 = rows * (ith + 1) / nth;
                    std::vector<float> x(size_t((r1 - r0) * cols));
                    for (int64_t r = r0; r < r1; ++r) dequantize_row(*src, r, x.data() + (r - r0) * cols);
                    if (r1 > r0) parts[size_t(ith)] = quantize_rows(to, x.data(), r1 - r0, cols, src->name);
                });
                for (auto &p : parts) bytes += p;
            }
            if (progress) progress(q, index, total);
            return bytes;
        });
    }
    w.write(out);
    report.file_bytes_out = fs::file_size(out);
    report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace saem::nn
