// Which encoder to use: an explicit path, then SAEM_ENCODER, then the one an index was built with,
// then the config file's "encoder", then the first loadable model in SAEM_MODELS (colon-separated
// folders), the config file's "model_folders" and the well-known folders.
#include "api/api.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace saem {

namespace fs = std::filesystem;

std::string config_path() {
    if (const char *p = std::getenv("SAEM_CONFIG"); p && *p) return p;
    if (const char *xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) return std::string(xdg) + "/saem/config.json";
    if (const char *home = std::getenv("HOME")) return std::string(home) + "/.config/saem/config.json";
    return {};
}

nlohmann::json read_config() {
    std::string path = config_path();
    std::ifstream in(path);
    if (path.empty() || !in) return nlohmann::json::object();
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object()) throw std::runtime_error(path + ": not a JSON object ({\"encoder\": PATH, \"model_folders\": [...]})");
    return j;
}

std::vector<std::string> model_folders() {
    std::vector<std::string> out;
    if (const char *env = std::getenv("SAEM_MODELS")) {
        std::string s = env;
        for (size_t pos = 0; pos <= s.size();) {
            size_t colon = s.find(':', pos);
            std::string dir = s.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
            if (!dir.empty()) out.push_back(dir);
            if (colon == std::string::npos) break;
            pos = colon + 1;
        }
    }
    auto config = read_config();
    if (config.contains("model_folders") && config["model_folders"].is_array())
        for (const auto &f : config["model_folders"])
            if (f.is_string()) out.push_back(f.get<std::string>());
    out.push_back("models");
    if (const char *xdg = std::getenv("XDG_DATA_HOME")) out.push_back(std::string(xdg) + "/saem/models");
    else if (const char *home = std::getenv("HOME")) out.push_back(std::string(home) + "/.local/share/saem/models");
    out.push_back("/usr/local/share/saem/models");
    out.push_back("/usr/share/saem/models");
    return out;
}

std::vector<ModelCandidate> list_models() {
    std::vector<ModelCandidate> out;
    for (const auto &folder : model_folders()) {
        std::error_code ec;
        if (!fs::is_directory(folder, ec)) continue;
        std::vector<fs::path> entries;
        for (const auto &e : fs::directory_iterator(folder, ec)) entries.push_back(e.path());
        std::sort(entries.begin(), entries.end());
        for (const auto &p : entries) {
            ModelCandidate c;
            c.path = p.string();
            try {
                auto embedder = nn::load_embedder(c.path);
                c.usable = true;
                c.description = "encoder " + embedder->identity();
            } catch (const std::exception &e) {
                c.description = e.what();
            }
            out.push_back(std::move(c));
        }
    }
    return out;
}

LoadedEncoder find_encoder(const std::string &explicit_path, Store *store) {
    LoadedEncoder out;
    auto load = [&](const std::string &path, const std::string &why) {
        out.embedder = nn::load_embedder(path);
        out.path = fs::absolute(path).lexically_normal().string();
        out.reason = why;
    };
    if (!explicit_path.empty()) {
        load(explicit_path, "--encoder");
        return out;
    }
    if (const char *env = std::getenv("SAEM_ENCODER"); env && *env) {
        load(env, "SAEM_ENCODER");
        return out;
    }
    if (store) {
        if (auto recorded = store->encoder(); recorded && !recorded->path.empty()) {
            try {
                load(recorded->path, "the encoder this index was built with");
                if (out.embedder->identity() == recorded->identity) return out;
                out = {};
            } catch (const std::exception &) {
                out = {};
            }
        }
    }
    if (auto config = read_config(); config.contains("encoder") && config["encoder"].is_string()) {
        load(config["encoder"].get<std::string>(), "the config file " + config_path());
        return out;
    }
    for (const auto &c : list_models()) {
        if (!c.usable) continue;
        load(c.path, "found in the model folders");
        return out;
    }
    return out;
}

}  // namespace saem
