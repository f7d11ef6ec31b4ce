// Helpers shared by nn's loaders; not part of the public header.
#pragma once

#include "nn/nn.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace saem::nn {

// The parsed JSON file, null when it does not exist; ModelError when it is not JSON.
inline nlohmann::json read_json(const std::filesystem::path &p) {
    std::ifstream in(p);
    if (!in) return nullptr;
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) throw ModelError(p.string() + ": not valid JSON");
    return j;
}

// t, after checking it exists and has the expected shape (-1: any size in that dimension).
const Tensor &checked_tensor(const std::string &file, const std::string &name, const Tensor *t,
                             const std::vector<int64_t> &shape);

}  // namespace saem::nn

namespace saem::nn {

// Rows of n floats in a ggml block type (F32, F16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K): what the GGUF
// writer stores. Round-to-nearest block quantisers, without llama.cpp's error-weighted search: the
// test models only need valid blocks that both runtimes read the same way.
std::string quantize_rows(DType type, const float *x, int64_t rows, int64_t n, const std::string &name);

}  // namespace saem::nn

namespace saem::nn {

// Splits text the way a byte-level BPE model's pre-tokenizer regex does (see pretokenize.cpp for
// the patterns), appending the pieces to out. Every byte of text lands in exactly one piece.
void pretokenize(Bpe::Pre pre, bool ascii_digits, std::string_view text, std::vector<std::string_view> &out);

}  // namespace saem::nn
