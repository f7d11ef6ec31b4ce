// Writes an encoder in the exact all-MiniLM-L6-v2 shape (its real vocabulary, config and tensor
// names) with seeded random weights, in the formats users bring:
//   OUT.f32.gguf, OUT.f16.gguf, OUT.q8_0.gguf   llama.cpp GGUF, "bert" architecture, as
//                                convert_hf_to_gguf.py lays it out
//   OUT-st/                      a sentence-transformers folder with model.safetensors (F32)
// No pretrained weights exist here; parity with llama.cpp and between the formats is what these
// prove. Usage: make_test_encoder MODEL_DIR OUT [SEED]   (MODEL_DIR: ../shared/models/all-MiniLM-L6-v2)
#include "nn/gguf_writer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

namespace fs = std::filesystem;
using nlohmann::json;
using saem::nn::DType;

struct Weights {
    std::vector<std::pair<std::string, std::vector<int64_t>>> order;  // HF names and shapes
    std::map<std::string, std::vector<float>> data;
};

int main(int argc, char **argv) {
    if (argc < 3) {
        std::cerr << "usage: make_test_encoder MODEL_DIR OUT [SEED]\n";
        return 2;
    }
    fs::path model = argv[1];
    std::string out = argv[2];
    uint32_t seed = argc > 3 ? uint32_t(std::stoul(argv[3])) : 1234;
    json cfg = json::parse(std::ifstream(model / "config.json"));
    json header = json::parse(std::ifstream(model / "model.safetensors.header.json"));
    const int64_t H = cfg["hidden_size"], I = cfg["intermediate_size"], L = cfg["num_hidden_layers"];
    const int64_t V = cfg["vocab_size"], P = cfg["max_position_embeddings"], T = cfg["type_vocab_size"];

    // Every float tensor the real checkpoint has, with its real shape; BERT-style initialisation.
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 0.02f);
    Weights w;
    for (auto &[name, info] : header.items()) {
        if (name == "__metadata__" || info["dtype"] != "F32") continue;
        std::vector<int64_t> shape = info["shape"].get<std::vector<int64_t>>();
        int64_t n = 1;
        for (auto d : shape) n *= d;
        std::vector<float> v(static_cast<size_t>(n));
        bool norm_weight = name.find("LayerNorm.weight") != std::string::npos;
        for (float &x : v) x = norm_weight ? 1.0f + 5 * normal(rng) : normal(rng);
        w.order.emplace_back(name, shape);
        w.data[name] = std::move(v);
    }

    // sentence-transformers folder: the real files beside a safetensors of the random weights.
    fs::path st = out + "-st";
    fs::create_directories(st / "1_Pooling");
    fs::create_directories(st / "2_Normalize");
    for (const char *f : {"config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
                          "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json"})
        if (fs::exists(model / f)) fs::copy_file(model / f, st / f, fs::copy_options::overwrite_existing);
    fs::copy_file(model / "1_Pooling" / "config.json", st / "1_Pooling" / "config.json", fs::copy_options::overwrite_existing);
    {
        json h = json::object();
        uint64_t offset = 0;
        for (auto &[name, shape] : w.order) {
            uint64_t bytes = w.data[name].size() * 4;
            h[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
            offset += bytes;
        }
        std::string hs = h.dump();
        hs.resize((hs.size() + 7) / 8 * 8, ' ');
        std::ofstream f(st / "model.safetensors", std::ios::binary);
        uint64_t n = hs.size();
        f.write(reinterpret_cast<const char *>(&n), 8);
        f << hs;
        for (auto &[name, shape] : w.order) f.write(reinterpret_cast<const char *>(w.data[name].data()), std::streamsize(w.data[name].size() * 4));
    }

    // GGUF as llama.cpp's converter writes a BERT: "phantom space" vocabulary, renamed tensors.
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    {
        std::ifstream vocab(model / "vocab.txt");
        for (std::string t; std::getline(vocab, t);) {
            bool special = t.size() >= 2 && t.front() == '[' && t.back() == ']';
            tokens.push_back(special ? t : t.rfind("##", 0) == 0 ? t.substr(2) : "\u2581" + t);
            types.push_back(special ? 3 : 1);
        }
    }
    auto rename = [](std::string n) {
        static const std::vector<std::pair<std::string, std::string>> map = {
            {"embeddings.word_embeddings", "token_embd"}, {"embeddings.position_embeddings", "position_embd"},
            {"embeddings.token_type_embeddings", "token_types"}, {"embeddings.LayerNorm", "token_embd_norm"},
            {"attention.self.query", "attn_q"}, {"attention.self.key", "attn_k"}, {"attention.self.value", "attn_v"},
            {"attention.output.dense", "attn_output"}, {"attention.output.LayerNorm", "attn_output_norm"},
            {"intermediate.dense", "ffn_up"}, {"output.dense", "ffn_down"}, {"output.LayerNorm", "layer_output_norm"},
            {"encoder.layer.", "blk."}};
        for (auto &[from, to] : map)
            if (auto p = n.find(from); p != std::string::npos) n.replace(p, from.size(), to);
        return n;
    };
    for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
        saem::nn::GgufWriter g;
        g.add("general.architecture", "bert");
        g.add("general.name", "all-MiniLM-L6-v2-random");
        g.add_u32("bert.context_length", uint32_t(P));
        g.add_u32("bert.embedding_length", uint32_t(H));
        g.add_u32("bert.feed_forward_length", uint32_t(I));
        g.add_u32("bert.block_count", uint32_t(L));
        g.add_u32("bert.attention.head_count", uint32_t(cfg["num_attention_heads"].get<int>()));
        g.add_f32("bert.attention.layer_norm_epsilon", cfg["layer_norm_eps"].get<float>());
        g.add_bool("bert.attention.causal", false);
        g.add_u32("bert.pooling_type", 1);
        g.add_u32("general.file_type", type == DType::F32 ? 0 : type == DType::F16 ? 1 : 7);
        g.add("tokenizer.ggml.model", "bert");
        g.add("tokenizer.ggml.pre", "default");
        g.add("tokenizer.ggml.tokens", tokens);
        g.add_i32s("tokenizer.ggml.token_type", types);
        g.add_u32("tokenizer.ggml.token_type_count", uint32_t(T));
        g.add_u32("tokenizer.ggml.bos_token_id", 101);  // [CLS]
        g.add_u32("tokenizer.ggml.eos_token_id", 102);  // [SEP]
        g.add_u32("tokenizer.ggml.unknown_token_id", 100);
        g.add_u32("tokenizer.ggml.seperator_token_id", 102);
        g.add_u32("tokenizer.ggml.padding_token_id", 0);
        g.add_u32("tokenizer.ggml.cls_token_id", 101);
        g.add_u32("tokenizer.ggml.mask_token_id", 103);
        for (auto &[name, shape] : w.order) {
            if (name.rfind("pooler.", 0) == 0) continue;  // the converter drops the pooler
            // As llama.cpp's converter: 1-D tensors (norms, biases) stay F32 whatever the file type,
            // and so do the token-type embeddings (llama.cpp adds their row 0 to F32 activations
            // directly, which needs F32).
            bool keep_f32 = shape.size() == 1 || name.find("token_type_embeddings") != std::string::npos;
            DType t = keep_f32 ? DType::F32 : type;
            g.add_tensor(rename(name), shape, t, w.data[name].data());
        }
        g.write(out + (type == DType::F32 ? ".f32.gguf" : type == DType::F16 ? ".f16.gguf" : ".q8_0.gguf"));
    }
    std::cout << "wrote " << out << ".f32.gguf, .f16.gguf, .q8_0.gguf, " << st.string() << "/ (V=" << V << ", H=" << H
              << ", L=" << L << ", P=" << P << ")\n";
    return 0;
}
