// nn/internal.h: helpers shared by nn's file loaders; not part of nn's interface.
//
// Threads: pure functions of their arguments (read_json reads the file it is given).
#pragma once

#include "nn/embedder.h"
#include "nn/text.h"
#include "nn/weights.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace saem::nn {

// Model files' JSON nests a few levels (tokenizer.json: 5); deeper is a hostile file, refused
// before nlohmann's parser builds it, or an error message dumps it, recursively.
constexpr int max_model_json_depth = 32;

// Parses a model file's JSON text; ModelError naming where when it is not JSON or nests too deep.
inline nlohmann::json parse_model_json(std::string_view text, const std::string &where) {
    if (json_depth(text) > max_model_json_depth) throw ModelError(where + ": JSON nested deeper than " + std::to_string(max_model_json_depth) + " levels");
    auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) throw ModelError(where + ": not valid JSON");
    return j;
}

// The parsed JSON file, null when it does not exist; ModelError when it is not JSON.
inline nlohmann::json read_json(const std::filesystem::path &p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return nullptr;
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return parse_model_json(text, p.string());
}

// Runs a loader with nlohmann's type and range errors (a field of the wrong JSON type, say a
// string where a number belongs) turned into ModelError naming the file: every loader failure is
// then one error type, with the path in it.
template <class Load>
auto with_model_errors(const std::string &path, Load &&load) -> decltype(load()) {
    try {
        return load();
    } catch (const nlohmann::json::exception &e) {
        throw ModelError(path + ": a field has an unexpected JSON type or value (" + e.what() + ")");
    }
}

// obj[key] of a model file's JSON, null when obj is not an object or lacks key. nlohmann's const
// operator[] on a missing key is undefined behaviour (the fuzzer found one); this is the one way
// the loaders read a field.
inline const nlohmann::json &field(const nlohmann::json &obj, const char *key) {
    static const nlohmann::json null;
    if (!obj.is_object()) return null;
    auto it = obj.find(key);
    return it == obj.end() ? null : *it;
}

// An integer field of a model's JSON: fallback when absent, else an integer in lo..hi; ModelError
// naming where otherwise (a float such as 1e300 converted to int is undefined behaviour).
inline int64_t json_int(const nlohmann::json &obj, const char *key, int64_t fallback, int64_t lo, int64_t hi,
                        const std::string &where) {
    const auto &v = field(obj, key);
    if (v.is_null()) return fallback;
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(hi)) || v.get<int64_t>() < lo ||
        v.get<int64_t>() > hi)
        throw ModelError(where + ": " + key + " is " + v.dump() + ", not an integer from " + std::to_string(lo) + " to " +
                         std::to_string(hi));
    return v.get<int64_t>();
}

// A token id a GGUF names (tokenizer.ggml.bos_token_id, ...): fallback when absent, else an
// integer from -1 (none) to vocab - 1; ModelError otherwise, before it can index a table.
inline int32_t gguf_token_id(const Gguf &g, const std::string &key, int32_t fallback, size_t vocab) {
    if (!g.find(key)) return fallback;
    double v = g.get_number(key);
    if (!(v >= -1 && v < double(vocab)) || v != double(int64_t(v)))
        throw ModelError(g.path() + ": " + key + " is " + std::to_string(v) + ", not a token id below " + std::to_string(vocab));
    return int32_t(v);
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
