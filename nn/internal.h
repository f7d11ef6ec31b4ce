// nn/internal.h: helpers shared by nn's file loaders; not part of nn's interface.
//
// Threads: pure functions of their arguments (read_json reads the file it is given).
#pragma once

#include "nn/embedder.h"
#include "nn/weights.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

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

// ggml's type ids, as GGUF stores them (gguf.cpp): false for a type saem does not read.
bool dtype_from_ggml(uint32_t id, DType &out);
uint32_t ggml_type_id(DType type);

// The loaders behind load_embedder (embedder.cpp) and load_reranker.
std::unique_ptr<Embedder> load_model2vec(const std::string &folder, const nlohmann::json &config);  // model2vec.cpp
std::unique_ptr<Embedder> load_bert_gguf(const std::string &path);                                 // bert.cpp
std::unique_ptr<Embedder> load_bert_folder(const std::string &folder);                             // bert.cpp

}  // namespace saem::nn
