// saem convert: the rules are numbered in nn/convert.h.
#include "nn/convert.h"

#include "nn/gguf_writer.h"
#include "nn/internal.h"
#include "nn/tokenizer.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

namespace saem::nn {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The safetensors of a folder: model.safetensors, or the shards its index names.
struct Checkpoint {
    std::vector<std::unique_ptr<SafeTensors>> files;
    std::map<std::string, const Tensor *> tensors;

    explicit Checkpoint(const fs::path &folder) {
        std::vector<fs::path> paths;
        if (fs::exists(folder / "model.safetensors")) {
            paths.push_back(folder / "model.safetensors");
        } else if (auto index = read_json(folder / "model.safetensors.index.json"); index.is_object() && index.contains("weight_map")) {
            std::map<std::string, bool> seen;
            for (const auto &[name, file] : index["weight_map"].items())
                if (file.is_string() && !seen[file.get<std::string>()]) {
                    seen[file.get<std::string>()] = true;
                    paths.push_back(folder / file.get<std::string>());
                }
        } else {
            throw ModelError(folder.string() + ": no model.safetensors or model.safetensors.index.json");
        }
        for (const auto &p : paths) {
            files.push_back(std::make_unique<SafeTensors>(p.string()));
            for (const auto &t : files.back()->tensors()) tensors[t.name] = &t;
        }
    }
    const Tensor *find(const std::string &name) const {
        auto it = tensors.find(name);
        return it == tensors.end() ? nullptr : it->second;
    }
    const Tensor &get(const std::string &name, const std::vector<int64_t> &shape, const std::string &folder) const {
        const Tensor *t = find(name);
        if (!t) throw ModelError(folder + ": the checkpoint has no tensor " + name);
        if (t->shape != shape) {
            std::string want, got;
            for (auto d : shape) want += (want.empty() ? "" : ", ") + std::to_string(d);
            for (auto d : t->shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
            throw ModelError(folder + ": tensor " + name + " is [" + got + "], config.json says [" + want + "]");
        }
        return *t;
    }
};

std::vector<float> floats_of(const Tensor &t) {
    std::vector<float> out(size_t(t.elements()));
    const int64_t cols = t.shape.back(), rows = t.elements() / cols;
    for (int64_t r = 0; r < rows; ++r) dequantize_row(t, r, out.data() + r * cols);
    return out;
}

// Rule 3: Hugging Face's q/k rows hold each head as two halves that rotate together; llama.cpp's
// llama rotates adjacent pairs. Row h*hd + 2i + j comes from row h*hd + j*hd/2 + i.
std::vector<float> permute_rows(const std::vector<float> &w, int heads, int64_t cols) {
    const int64_t rows = int64_t(w.size()) / cols, hd = rows / heads;
    std::vector<float> out(w.size());
    for (int h = 0; h < heads; ++h)
        for (int64_t i = 0; i < hd / 2; ++i)
            for (int64_t j = 0; j < 2; ++j)
                std::memcpy(&out[size_t((h * hd + 2 * i + j) * cols)], &w[size_t((h * hd + j * hd / 2 + i) * cols)], size_t(cols) * 4);
    return out;
}

}  // namespace

std::vector<SentencePiece> read_sentencepiece(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ModelError(path + ": cannot read");
    const std::string b(std::istreambuf_iterator<char>(in), {});
    size_t at = 0;
    auto varint = [&](size_t &pos) {
        uint64_t v = 0;
        for (int shift = 0; pos < b.size() && shift < 64; shift += 7) {
            const uint8_t c = uint8_t(b[pos++]);
            v |= uint64_t(c & 0x7F) << shift;
            if (!(c & 0x80)) break;
        }
        return v;
    };
    auto need = [&](size_t pos, uint64_t n) {
        if (n > b.size() - std::min(pos, b.size())) throw ModelError(path + ": truncated or not a SentencePiece model");
    };
    auto skip = [&](size_t &pos, int wire) {
        if (wire == 0) varint(pos);
        else if (wire == 1) need(pos, 8), pos += 8;
        else if (wire == 2) { uint64_t n = varint(pos); need(pos, n); pos += n; }
        else if (wire == 5) need(pos, 4), pos += 4;
        else throw ModelError(path + ": not a SentencePiece model (protobuf wire type " + std::to_string(wire) + ")");
    };
    std::vector<SentencePiece> out;
    while (at < b.size()) {
        const uint64_t key = varint(at);
        if (key >> 3 != 1 || (key & 7) != 2) {
            skip(at, int(key & 7));
            continue;
        }
        const uint64_t len = varint(at);
        need(at, len);
        const size_t end = at + len;
        SentencePiece p;
        while (at < end) {
            const uint64_t k = varint(at);
            if (k >> 3 == 1 && (k & 7) == 2) {
                const uint64_t n = varint(at);
                need(at, n);
                p.text = b.substr(at, n);
                at += n;
            } else if (k >> 3 == 2 && (k & 7) == 5) {
                need(at, 4);
                std::memcpy(&p.score, b.data() + at, 4);
                at += 4;
            } else if (k >> 3 == 3 && (k & 7) == 0) {
                p.type = int32_t(varint(at));
            } else {
                skip(at, int(k & 7));
            }
        }
        out.push_back(p);
    }
    if (out.empty()) throw ModelError(path + ": no pieces: not a SentencePiece model");
    return out;
}

namespace {

// Rules 1 and 5: the tokenizer.ggml.* metadata.
void write_vocabulary(GgufWriter &w, const fs::path &folder, const json &config, int64_t vocab_size) {
    const std::string where = folder.string();
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    const Bpe bpe = Bpe::load(where);
    const bool sentencepiece = fs::exists(folder / "tokenizer.model");
    if (sentencepiece) {
        std::vector<float> scores;
        for (const auto &p : read_sentencepiece((folder / "tokenizer.model").string())) {
            tokens.push_back(p.text);
            scores.push_back(p.score);
            types.push_back(p.type);
        }
        while (int64_t(tokens.size()) < vocab_size) {
            tokens.push_back("[PAD" + std::to_string(tokens.size()) + "]");
            scores.push_back(-1000.0f);
            types.push_back(5);
        }
        w.add("tokenizer.ggml.model", "llama");
        w.add("tokenizer.ggml.tokens", tokens);
        w.add_f32s("tokenizer.ggml.scores", scores);
        w.add_i32s("tokenizer.ggml.token_type", types);
    } else {
        if (bpe.kind() != Bpe::Kind::ByteLevel) throw ModelError(where + ": a SentencePiece tokenizer.json needs its tokenizer.model beside it");
        for (size_t i = 0; i < bpe.vocab_size(); ++i) {
            tokens.push_back(bpe.token(int32_t(i)));
            types.push_back(bpe.token_type(int32_t(i)));
        }
        for (size_t i = 0; i < tokens.size(); ++i)
            if (tokens[i].empty()) tokens[i] = "[PAD" + std::to_string(i) + "]", types[i] = 5;
        while (int64_t(tokens.size()) < vocab_size) {
            tokens.push_back("[PAD" + std::to_string(tokens.size()) + "]");
            types.push_back(5);
        }
        std::vector<std::string> merges;
        const auto tj = read_json(folder / "tokenizer.json");
        for (const auto &m : tj["model"]["merges"])
            merges.push_back(m.is_array() && m.size() == 2 ? m[0].get<std::string>() + " " + m[1].get<std::string>() : m.get<std::string>());
        w.add("tokenizer.ggml.model", "gpt2");
        w.add("tokenizer.ggml.pre", bpe.pre_name());
        w.add("tokenizer.ggml.tokens", tokens);
        w.add_i32s("tokenizer.ggml.token_type", types);
        w.add("tokenizer.ggml.merges", merges);
    }
    if (int64_t(tokens.size()) > vocab_size)
        throw ModelError(where + ": the tokenizer has " + std::to_string(tokens.size()) + " tokens but config.json's vocab_size is " +
                         std::to_string(vocab_size));
    // Special tokens: tokenizer_config.json's, else config.json's ids.
    auto id_from_config = [&](const char *key) { return config.contains(key) && config[key].is_number_integer() ? config[key].get<int>() : -1; };
    const int bos = bpe.bos_id() >= 0 ? bpe.bos_id() : id_from_config("bos_token_id");
    const int eos = bpe.eos_id() >= 0 ? bpe.eos_id() : id_from_config("eos_token_id");
    if (bos >= 0) w.add_u32("tokenizer.ggml.bos_token_id", uint32_t(bos));
    if (eos >= 0) w.add_u32("tokenizer.ggml.eos_token_id", uint32_t(eos));
    if (bpe.unk_id() >= 0) w.add_u32("tokenizer.ggml.unknown_token_id", uint32_t(bpe.unk_id()));
    w.add_bool("tokenizer.ggml.add_bos_token", bpe.add_bos());
    if (!bpe.chat_template().empty()) w.add("tokenizer.chat_template", bpe.chat_template());
}

int need_int(const json &config, const char *key, const std::string &where) {
    if (!config.contains(key) || !config[key].is_number_integer() || config[key].get<int64_t>() < 1 || config[key].get<int64_t>() > 1000000000)
        throw ModelError(where + "/config.json: " + key + " is missing or not a positive integer");
    return config[key].get<int>();
}

// Rule 8: BERT, as llama.cpp's converter writes it.
ConvertReport convert_bert(const fs::path &folder, const json &config, const std::string &out, DType type) {
    const std::string f = folder.string();
    const int embd = need_int(config, "hidden_size", f), layers = need_int(config, "num_hidden_layers", f);
    const int heads = need_int(config, "num_attention_heads", f), ff = need_int(config, "intermediate_size", f);
    const int positions = need_int(config, "max_position_embeddings", f);
    const int type_count = config.contains("type_vocab_size") ? need_int(config, "type_vocab_size", f) : 2;
    GgufWriter w;
    w.add("general.architecture", "bert");
    w.add("general.name", folder.filename().empty() ? folder.parent_path().filename().string() : folder.filename().string());
    w.add_u32("bert.context_length", uint32_t(positions));
    w.add_u32("bert.embedding_length", uint32_t(embd));
    w.add_u32("bert.feed_forward_length", uint32_t(ff));
    w.add_u32("bert.block_count", uint32_t(layers));
    w.add_u32("bert.attention.head_count", uint32_t(heads));
    w.add_f32("bert.attention.layer_norm_epsilon", float(config.value("layer_norm_eps", 1e-12)));
    w.add_bool("bert.attention.causal", false);
    // Pooling from the sentence-transformers module (modules.json names its folder).
    fs::path pooling_dir = folder / "1_Pooling";
    if (auto modules = read_json(folder / "modules.json"); modules.is_array())
        for (const auto &m : modules)
            if (m.is_object() && m.value("type", "") == "sentence_transformers.models.Pooling" && m.contains("path") && m["path"].is_string())
                pooling_dir = folder / m["path"].get<std::string>();
    if (auto pooling = read_json(pooling_dir / "config.json"); pooling.is_object()) {
        if (pooling.value("pooling_mode_mean_tokens", false)) w.add_u32("bert.pooling_type", 1);
        else if (pooling.value("pooling_mode_cls_token", false)) w.add_u32("bert.pooling_type", 2);
        else throw ModelError(pooling_dir.string() + "/config.json: a pooling other than mean or CLS is not supported");
    }
    w.add_u32("general.file_type", type == DType::F32 ? 0 : type == DType::F16 ? 1 : 7);
    // The WordPiece vocabulary in llama.cpp's "phantom space" form: a word-initial piece gets
    // U+2581 in front, a continuation ("##x") loses its marks, [SPECIAL] tokens stay.
    std::vector<std::string> vocab;
    if (std::ifstream in(folder / "vocab.txt"); in) {
        for (std::string t; std::getline(in, t);) {
            if (!t.empty() && t.back() == '\r') t.pop_back();
            vocab.push_back(t);
        }
    } else if (auto tj = read_json(folder / "tokenizer.json"); tj.is_object() && tj.contains("model") && tj["model"].contains("vocab")) {
        for (const auto &[t, id] : tj["model"]["vocab"].items()) {
            if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > 10000000) throw ModelError(f + "/tokenizer.json: a bad token id");
            if (size_t(id.get<int64_t>()) >= vocab.size()) vocab.resize(size_t(id.get<int64_t>()) + 1);
            vocab[size_t(id.get<int64_t>())] = t;
        }
    } else {
        throw ModelError(f + ": no vocab.txt or WordPiece tokenizer.json");
    }
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    for (const auto &t : vocab) {
        const bool special = t.size() >= 2 && t.front() == '[' && t.back() == ']';
        tokens.push_back(special ? t : t.rfind("##", 0) == 0 ? t.substr(2) : "\u2581" + t);
        types.push_back(special ? 3 : 1);
    }
    auto id_of = [&](const std::string &t) -> int {
        for (size_t i = 0; i < vocab.size(); ++i)
            if (vocab[i] == t) return int(i);
        return -1;
    };
    w.add("tokenizer.ggml.model", "bert");
    w.add("tokenizer.ggml.pre", "default");
    w.add("tokenizer.ggml.tokens", tokens);
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.token_type_count", uint32_t(type_count));
    for (auto [key, token] : {std::pair{"bos", "[CLS]"}, {"eos", "[SEP]"}, {"unknown", "[UNK]"}, {"seperator", "[SEP]"},
                              {"padding", "[PAD]"}, {"cls", "[CLS]"}, {"mask", "[MASK]"}})
        if (int id = id_of(token); id >= 0) w.add_u32(std::string("tokenizer.ggml.") + key + "_token_id", uint32_t(id));

    Checkpoint ck(folder);
    const std::string prefix = ck.find("bert.embeddings.word_embeddings.weight") ? "bert." : "";
    static const std::vector<std::pair<std::string, std::string>> names = {
        {"embeddings.word_embeddings", "token_embd"}, {"embeddings.position_embeddings", "position_embd"},
        {"embeddings.token_type_embeddings", "token_types"}, {"embeddings.LayerNorm", "token_embd_norm"},
        {"attention.self.query", "attn_q"}, {"attention.self.key", "attn_k"}, {"attention.self.value", "attn_v"},
        {"attention.output.dense", "attn_output"}, {"attention.output.LayerNorm", "attn_output_norm"},
        {"intermediate.dense", "ffn_up"}, {"output.dense", "ffn_down"}, {"output.LayerNorm", "layer_output_norm"},
        {"encoder.layer.", "blk."}};
    if (!ck.find(prefix + "embeddings.word_embeddings.weight")) throw ModelError(f + ": the checkpoint has no embeddings.word_embeddings.weight");
    size_t count = 0;
    for (const auto &[hf_name, t] : ck.tensors) {
        if (hf_name.rfind(prefix, 0) != 0) continue;  // heads of task checkpoints (cls., classifier.)
        std::string name = hf_name.substr(prefix.size());
        if (name.rfind("pooler.", 0) == 0) continue;  // the converter drops the pooler
        for (const auto &[from, to] : names)
            if (auto at = name.find(from); at != std::string::npos) name.replace(at, from.size(), to);
        // 1-D tensors and the token-type embeddings stay F32 (llama.cpp adds the latter's row 0 to
        // F32 activations directly).
        DType to = t->shape.size() < 2 || name.rfind("token_types", 0) == 0 ? DType::F32 : type;
        if (to == DType::Q8_0 && t->shape.back() % 32) to = DType::F16;
        const Tensor *src = t;
        w.add_tensor(name, t->shape, to, [src, to]() {
            const std::vector<float> x = floats_of(*src);
            const int64_t cols = src->shape.back();
            return quantize_rows(to, x.data(), int64_t(x.size()) / cols, cols, src->name);
        });
        ++count;
    }
    w.write(out);
    ConvertReport r;
    r.architecture = "bert";
    r.tensors = count;
    r.file_bytes = fs::file_size(out);
    return r;
}

}  // namespace

ConvertReport convert_model(const std::string &folder_arg, const std::string &out, DType type) {
    if (type != DType::F32 && type != DType::F16 && type != DType::Q8_0)
        throw std::invalid_argument(std::string("convert writes f32, f16 or q8_0, not ") + dtype_name(type));
    const fs::path folder(folder_arg);
    const auto config = read_json(folder / "config.json");
    if (!config.is_object()) throw ModelError(folder_arg + ": no readable config.json");
    std::string hf_arch = config.contains("architectures") && config["architectures"].is_array() && !config["architectures"].empty() &&
                                  config["architectures"][0].is_string()
                              ? config["architectures"][0].get<std::string>()
                              : "";
    std::string arch;
    if (hf_arch == "LlamaForCausalLM") arch = "llama";
    else if (hf_arch == "Qwen2ForCausalLM") arch = "qwen2";
    else if (hf_arch == "BertModel" || (hf_arch.empty() && config.value("model_type", "") == "bert")) return convert_bert(folder, config, out, type);
    else throw ModelError(folder_arg + ": architecture '" + hf_arch + "' is not supported (LlamaForCausalLM, Qwen2ForCausalLM, BertModel)");

    const int embd = need_int(config, "hidden_size", folder_arg), layers = need_int(config, "num_hidden_layers", folder_arg);
    const int heads = need_int(config, "num_attention_heads", folder_arg), ff = need_int(config, "intermediate_size", folder_arg);
    const int kv_heads = config.contains("num_key_value_heads") ? need_int(config, "num_key_value_heads", folder_arg) : heads;
    const int vocab = need_int(config, "vocab_size", folder_arg);
    const int ctx = config.contains("max_position_embeddings") ? need_int(config, "max_position_embeddings", folder_arg) : 4096;
    const int head_dim = config.contains("head_dim") && config["head_dim"].is_number_integer() ? config["head_dim"].get<int>() : embd / heads;
    if (head_dim < 2 || head_dim % 2 || heads % kv_heads) throw ModelError(folder_arg + "/config.json: heads of " + std::to_string(head_dim) + " dimensions in " + std::to_string(heads) + "/" + std::to_string(kv_heads) + " heads are not supported");
    const bool tied = config.value("tie_word_embeddings", false);

    Checkpoint ck(folder);
    GgufWriter w;
    w.add("general.architecture", arch);
    w.add("general.name", folder.filename().empty() ? folder.parent_path().filename().string() : folder.filename().string());
    w.add_u32("general.file_type", type == DType::F32 ? 0 : type == DType::F16 ? 1 : 7);
    w.add_u32(arch + ".context_length", uint32_t(ctx));
    w.add_u32(arch + ".embedding_length", uint32_t(embd));
    w.add_u32(arch + ".block_count", uint32_t(layers));
    w.add_u32(arch + ".feed_forward_length", uint32_t(ff));
    w.add_u32(arch + ".attention.head_count", uint32_t(heads));
    w.add_u32(arch + ".attention.head_count_kv", uint32_t(kv_heads));
    w.add_u32(arch + ".rope.dimension_count", uint32_t(head_dim));
    if (head_dim != embd / heads) {
        w.add_u32(arch + ".attention.key_length", uint32_t(head_dim));
        w.add_u32(arch + ".attention.value_length", uint32_t(head_dim));
    }
    const double theta = config.contains("rope_theta") && config["rope_theta"].is_number() ? config["rope_theta"].get<double>() : 10000.0;
    w.add_f32(arch + ".rope.freq_base", float(theta));
    w.add_f32(arch + ".attention.layer_norm_rms_epsilon", float(config.value("rms_norm_eps", 1e-6)));
    std::vector<float> rope_factors;
    // Rule 7.
    if (config.contains("rope_scaling") && config["rope_scaling"].is_object()) {
        const auto &rs = config["rope_scaling"];
        const std::string kind = rs.value("rope_type", rs.value("type", ""));
        const double factor = rs.value("factor", 1.0);
        if (kind == "linear") {
            w.add(arch + ".rope.scaling.type", "linear");
            w.add_f32(arch + ".rope.scaling.factor", float(factor));
        } else if (kind == "llama3") {
            const double low = rs.value("low_freq_factor", 1.0), high = rs.value("high_freq_factor", 4.0);
            const double old_ctx = rs.value("original_max_position_embeddings", 8192.0);
            const double low_wavelen = old_ctx / low, high_wavelen = old_ctx / high;
            for (int i = 0; i < head_dim; i += 2) {
                const double freq = 1.0 / std::pow(theta, double(i) / head_dim), wavelen = 2 * M_PI / freq;
                if (wavelen < high_wavelen) rope_factors.push_back(1.0f);
                else if (wavelen > low_wavelen) rope_factors.push_back(float(factor));
                else {
                    const double smooth = (old_ctx / wavelen - low) / (high - low);
                    rope_factors.push_back(float(1.0 / ((1 - smooth) / factor + smooth)));
                }
            }
        } else if (!kind.empty() && kind != "default") {
            throw ModelError(folder_arg + "/config.json: rope_scaling '" + kind + "' is not supported (linear, llama3)");
        }
    }
    write_vocabulary(w, folder, config, vocab);

    // Rule 6's type for a tensor, and the tensor itself made when the writer reaches it.
    size_t count = 0;
    auto add = [&](const std::string &gguf_name, const Tensor &t, int permute_heads) {
        ++count;
        DType to = t.shape.size() < 2 ? DType::F32 : type;
        if (to == DType::Q8_0 && t.shape.back() % 32) to = DType::F16;
        const Tensor *src = &t;
        w.add_tensor(gguf_name, t.shape, to, [src, to, permute_heads]() {
            std::vector<float> x = floats_of(*src);
            if (permute_heads > 0) x = permute_rows(x, permute_heads, src->shape.size() < 2 ? 1 : src->shape.back());
            const int64_t cols = src->shape.back();
            return quantize_rows(to, x.data(), int64_t(x.size()) / cols, cols, src->name);
        });
    };
    const std::string f = folder_arg;
    const int64_t q_dim = int64_t(heads) * head_dim, kv_dim = int64_t(kv_heads) * head_dim;
    add("token_embd.weight", ck.get("model.embed_tokens.weight", {vocab, embd}, f), 0);
    add("output_norm.weight", ck.get("model.norm.weight", {embd}, f), 0);
    if (!tied) add("output.weight", ck.get("lm_head.weight", {vocab, embd}, f), 0);
    if (!rope_factors.empty()) {
        w.add_tensor("rope_freqs.weight", {int64_t(rope_factors.size())}, DType::F32, rope_factors.data());
        ++count;
    }
    const bool llama = arch == "llama";
    for (int l = 0; l < layers; ++l) {
        const std::string hf = "model.layers." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
        add(b + "attn_norm.weight", ck.get(hf + "input_layernorm.weight", {embd}, f), 0);
        add(b + "attn_q.weight", ck.get(hf + "self_attn.q_proj.weight", {q_dim, embd}, f), llama ? heads : 0);
        add(b + "attn_k.weight", ck.get(hf + "self_attn.k_proj.weight", {kv_dim, embd}, f), llama ? kv_heads : 0);
        add(b + "attn_v.weight", ck.get(hf + "self_attn.v_proj.weight", {kv_dim, embd}, f), 0);
        if (!llama) {
            add(b + "attn_q.bias", ck.get(hf + "self_attn.q_proj.bias", {q_dim}, f), 0);
            add(b + "attn_k.bias", ck.get(hf + "self_attn.k_proj.bias", {kv_dim}, f), 0);
            add(b + "attn_v.bias", ck.get(hf + "self_attn.v_proj.bias", {kv_dim}, f), 0);
        } else if (ck.find(hf + "self_attn.q_proj.bias")) {
            throw ModelError(folder_arg + ": llama attention biases (attention_bias) are not supported");
        }
        add(b + "attn_output.weight", ck.get(hf + "self_attn.o_proj.weight", {embd, q_dim}, f), 0);
        add(b + "ffn_norm.weight", ck.get(hf + "post_attention_layernorm.weight", {embd}, f), 0);
        add(b + "ffn_gate.weight", ck.get(hf + "mlp.gate_proj.weight", {ff, embd}, f), 0);
        add(b + "ffn_up.weight", ck.get(hf + "mlp.up_proj.weight", {ff, embd}, f), 0);
        add(b + "ffn_down.weight", ck.get(hf + "mlp.down_proj.weight", {embd, ff}, f), 0);
    }
    w.write(out);
    ConvertReport r;
    r.architecture = arch;
    r.file_bytes = fs::file_size(out);
    r.tensors = count;
    return r;
}

}  // namespace saem::nn
