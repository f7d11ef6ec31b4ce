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
