// load_embedder: which kind of embedder a model folder or file holds, by its config files or its
// extension, then that kind's loader (model2vec.cpp, bert.cpp).
#include "nn/embedder.h"

#include "nn/internal.h"

#include <filesystem>

namespace saem::nn {

namespace fs = std::filesystem;

std::unique_ptr<Embedder> load_embedder(const std::string &path) {
    return with_model_errors(path, [&]() -> std::unique_ptr<Embedder> {
        fs::path p(path);
        if (!fs::exists(p)) throw ModelError(path + ": no such file or folder");
        if (fs::is_directory(p)) {
            auto config = read_json(p / "config.json");
            auto modules = read_json(p / "modules.json");
            bool model2vec = config.is_object() && config.value("model_type", "") == "model2vec";
            if (!model2vec && modules.is_array())
                for (const auto &m : modules)
                    model2vec |= m.value("type", "").find("StaticEmbedding") != std::string::npos;
            if (model2vec) return load_model2vec(path, config.is_object() ? config : nlohmann::json::object());
            if (config.is_object() && config.contains("architectures"))
                for (const auto &a : field(config, "architectures"))
                    if (a.is_string() && a.get<std::string>().find("ForSequenceClassification") != std::string::npos)
                        throw ModelError(path + ": a cross-encoder (" + a.get<std::string>() + "), not an embedding model: use it with --rerank");
            if (config.is_object() && config.value("model_type", "") == "bert") return load_bert_folder(path);
            throw ModelError(path + ": not a model folder saem can load (Model2Vec, or BERT: config.json model_type \"bert\")");
        }
        if (p.extension() == ".gguf") return load_bert_gguf(path);
        throw ModelError(path + ": unsupported model file (a .gguf encoder, or a model folder)");
    });
}


}  // namespace saem::nn
