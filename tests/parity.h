// The passage sets of scripts/parity/passages.mjs, built the same way from the same files.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

inline std::string one_line(std::string s) {
    for (char &c : s)
        if (c == '\n' || c == '\r') c = ' ';
    return s;
}

inline std::vector<std::string> scifact_passages(const std::string &shared) {
    std::vector<std::string> out;
    std::ifstream in(shared + "/data/scifact/corpus.jsonl");
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        auto d = nlohmann::json::parse(line);
        out.push_back(one_line(d["title"].get<std::string>() + " " + d["text"].get<std::string>()));
    }
    return out;
}

inline std::vector<std::string> squad_passages(const std::string &shared) {
    std::vector<std::string> out;
    std::ifstream in(shared + "/data/squad_v1.1/dev-v1.1.json");
    auto d = nlohmann::json::parse(in);
    for (const auto &article : d["data"])
        for (const auto &p : article["paragraphs"]) out.push_back(one_line(p["context"].get<std::string>()));
    return out;
}

inline std::vector<std::string> line_passages(const std::string &file) {
    std::vector<std::string> out;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) out.push_back(line);
    return out;
}

// FNV-1a 32 over the ids joined by "," (passages.mjs fingerprint()).
template <class Ids>
uint32_t fingerprint(const Ids &ids) {
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? "," : "") + std::to_string(ids[i]);
    uint32_t h = 0x811c9dc5u;
    for (unsigned char c : s) h = (h ^ c) * 0x01000193u;
    return h;
}
