// Writes decoder GGUFs for the tests, in llama.cpp's layout:
//
//   make_test_decoder stories STORIES.bin TOK.bin OUT.gguf
//       a llama2.c checkpoint and its tokenizer (real weights, F32) as a "llama" GGUF
//   make_test_decoder random SHAPE TOKENIZER_DIR TYPES OUT.gguf [SEED]
//       SHAPE smollm2-135m | qwen2.5-0.5b: the published model's exact sizes with random weights and
//       its real tokenizer (tokenizer.json); TYPES f16 | q8_0 | q4_k_m (llama.cpp's Q4_K_M choice of
//       types per tensor, including its fallbacks for rows that are not whole 256-blocks)
//   make_test_decoder hf tiny-llama|tiny-qwen2|tiny-tinyllama TOKENIZER_DIR OUT_DIR [SEED]
//       a small Hugging Face model folder with random weights, for `saem convert`: config.json,
//       model.safetensors (F32; tiny-qwen2 in BF16, as Qwen2.5 ships) in Hugging Face's layout,
//       and the tokenizer files copied. tiny-llama: SmolLM2's tokenizer, tied embeddings;
//       tiny-qwen2: Qwen2.5's, q/k/v biases, an lm_head; tiny-tinyllama: TinyLlama's SentencePiece
//       tokenizer.model and llama3 rope scaling.
//   make_test_decoder vocab smollm2-135m|qwen2.5-0.5b|tinyllama TOKENIZER_DIR OUT.gguf
//       the vocabulary alone (with the architecture's metadata, no tensors), for tokenizer parity
//       with llama.cpp; TinyLlama's SentencePiece pieces, scores and types come from tokenizer.model
//
// The vocabulary is written from tokenizer.json directly, as llama.cpp's converter does, so saem's
// own tokenizer code is tested against it rather than used to make it.
#include "nn/convert.h"
#include "nn/gguf_writer.h"
#include "nn/quantize_model.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

using namespace saem::nn;
namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

// llama2.c: Config {dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len} as int32,
// then float32 weights; a negative vocab_size means a separate classifier follows.
int stories(const std::string &model_path, const std::string &tok_path, const std::string &out) {
    std::string bin = read_file(model_path);
    int32_t c[7];
    std::memcpy(c, bin.data(), sizeof c);
    const int dim = c[0], hidden = c[1], layers = c[2], heads = c[3], kv_heads = c[4], seq = c[6];
    const bool shared = c[5] > 0;
    const int vocab = std::abs(c[5]), head_size = dim / heads, kv_dim = kv_heads * head_size;
    const float *p = reinterpret_cast<const float *>(bin.data() + sizeof c);
    const float *end = reinterpret_cast<const float *>(bin.data() + bin.size());
    auto take = [&](size_t n) {
        const float *at = p;
        p += n;
        if (p > end) throw std::runtime_error(model_path + ": truncated");
        return at;
    };
    const float *embd = take(size_t(vocab) * dim), *rms_att = take(size_t(layers) * dim);
    const float *wq = take(size_t(layers) * dim * dim), *wk = take(size_t(layers) * kv_dim * dim);
    const float *wv = take(size_t(layers) * kv_dim * dim), *wo = take(size_t(layers) * dim * dim);
    const float *rms_ffn = take(size_t(layers) * dim), *w1 = take(size_t(layers) * hidden * dim);
    const float *w2 = take(size_t(layers) * dim * hidden), *w3 = take(size_t(layers) * hidden * dim);
    const float *rms_final = take(size_t(dim));
    take(size_t(seq) * head_size / 2 * 2);  // the RoPE tables run.c no longer reads
    const float *wcls = shared ? embd : take(size_t(vocab) * dim);

    // Tokenizer: int32 max length, then per token float score, int32 length, bytes, with spaces
    // as ' ' (exported from SentencePiece's U+2581) and BOS/EOS as "\n<s>\n" / "\n</s>\n".
    std::string tok = read_file(tok_path);
    size_t at = 4;
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    for (int i = 0; i < vocab; ++i) {
        float score;
        int32_t len;
        std::memcpy(&score, tok.data() + at, 4);
        std::memcpy(&len, tok.data() + at + 4, 4);
        std::string t = tok.substr(at + 8, size_t(len));
        at += 8 + size_t(len);
        int32_t type = 1;
        if (i == 0) t = "<unk>", type = 2;
        else if (i == 1) t = "<s>", type = 3;
        else if (i == 2) t = "</s>", type = 3;
        else if (t.size() == 6 && t.rfind("<0x", 0) == 0) type = 6;
        for (size_t k = 0; (k = t.find(' ', k)) != std::string::npos;) t.replace(k, 1, "\xE2\x96\x81");
        tokens.push_back(t);
        scores.push_back(score);
        types.push_back(type);
    }

    GgufWriter w;
    w.add("general.architecture", "llama");
    w.add("general.name", "stories260K");
    w.add_u32("llama.context_length", uint32_t(seq));
    w.add_u32("llama.embedding_length", uint32_t(dim));
    w.add_u32("llama.block_count", uint32_t(layers));
    w.add_u32("llama.feed_forward_length", uint32_t(hidden));
    w.add_u32("llama.attention.head_count", uint32_t(heads));
    w.add_u32("llama.attention.head_count_kv", uint32_t(kv_heads));
    w.add_u32("llama.rope.dimension_count", uint32_t(head_size));
    w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    w.add_f32("llama.rope.freq_base", 10000.0f);
    w.add("tokenizer.ggml.model", "llama");
    w.add("tokenizer.ggml.tokens", tokens);
    w.add_f32s("tokenizer.ggml.scores", scores);
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    w.add_tensor("token_embd.weight", {vocab, dim}, DType::F32, embd);
    w.add_tensor("output_norm.weight", {dim}, DType::F32, rms_final);
    if (!shared) w.add_tensor("output.weight", {vocab, dim}, DType::F32, wcls);
    for (int l = 0; l < layers; ++l) {
        std::string b = "blk." + std::to_string(l) + ".";
        w.add_tensor(b + "attn_norm.weight", {dim}, DType::F32, rms_att + size_t(l) * dim);
        w.add_tensor(b + "attn_q.weight", {dim, dim}, DType::F32, wq + size_t(l) * dim * dim);
        w.add_tensor(b + "attn_k.weight", {kv_dim, dim}, DType::F32, wk + size_t(l) * kv_dim * dim);
        w.add_tensor(b + "attn_v.weight", {kv_dim, dim}, DType::F32, wv + size_t(l) * kv_dim * dim);
        w.add_tensor(b + "attn_output.weight", {dim, dim}, DType::F32, wo + size_t(l) * dim * dim);
        w.add_tensor(b + "ffn_norm.weight", {dim}, DType::F32, rms_ffn + size_t(l) * dim);
        w.add_tensor(b + "ffn_gate.weight", {hidden, dim}, DType::F32, w1 + size_t(l) * hidden * dim);
        w.add_tensor(b + "ffn_down.weight", {dim, hidden}, DType::F32, w2 + size_t(l) * dim * hidden);
        w.add_tensor(b + "ffn_up.weight", {hidden, dim}, DType::F32, w3 + size_t(l) * hidden * dim);
    }
    w.write(out);
    return 0;
}

struct Shape {
    std::string arch, name, pre, chat_template;
    int vocab, embd, layers, ff, heads, kv_heads, ctx;
    float rope_base, eps, init_std;  // init_std: the model config's initializer_range
    bool bias;
};

const char *kChatML =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + "
    "message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

Shape shape_of(const std::string &name) {
    if (name == "smollm2-135m") return {"llama", name, "smollm", kChatML, 49152, 576, 30, 1536, 9, 3, 8192, 100000.0f, 1e-5f, 0.041666668f, false};
    if (name == "tinyllama") return {"llama", name, "", "", 32000, 2048, 22, 5632, 32, 4, 2048, 10000.0f, 1e-5f, 0.02f, false};
    if (name == "qwen2.5-0.5b") return {"qwen2", name, "qwen2", "", 151936, 896, 24, 4864, 14, 2, 32768, 1000000.0f, 1e-6f, 0.02f, true};
    throw std::runtime_error("unknown shape " + name + " (smollm2-135m, qwen2.5-0.5b)");
}

struct Rng {
    uint64_t s;
    float uniform() {  // [-1, 1)
        uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        return float(z >> 40) / float(1 << 23) - 1.0f;
    }
};

void write_hparams(GgufWriter &w, const Shape &s, const std::string &what) {
    const std::string a = s.arch;
    w.add("general.architecture", a);
    w.add("general.name", s.name + "-" + what);
    w.add_u32(a + ".context_length", uint32_t(s.ctx));
    w.add_u32(a + ".embedding_length", uint32_t(s.embd));
    w.add_u32(a + ".block_count", uint32_t(s.layers));
    w.add_u32(a + ".feed_forward_length", uint32_t(s.ff));
    w.add_u32(a + ".attention.head_count", uint32_t(s.heads));
    w.add_u32(a + ".attention.head_count_kv", uint32_t(s.kv_heads));
    w.add_u32(a + ".rope.dimension_count", uint32_t(s.embd / s.heads));
    w.add_f32(a + ".rope.freq_base", s.rope_base);
    w.add_f32(a + ".attention.layer_norm_rms_epsilon", s.eps);
}

// tokenizer_config.json's chat_template beside the tokenizer, else fallback.
std::string chat_template_of(const std::string &tok_dir, const std::string &fallback) {
    std::ifstream cfg(tok_dir + "/tokenizer_config.json");
    if (!cfg) return fallback;
    auto c = nlohmann::json::parse(cfg);
    return c.contains("chat_template") && c["chat_template"].is_string() ? c["chat_template"].get<std::string>() : fallback;
}

// TinyLlama: SentencePiece BPE as llama.cpp's converter writes it (pieces, scores, types).
void write_sentencepiece_vocab(GgufWriter &w, const std::string &tok_dir) {
    auto pieces = read_sentencepiece(tok_dir + "/tokenizer.model");
    std::vector<std::string> tokens;
    std::vector<float> scores;
    std::vector<int32_t> types;
    for (const auto &p : pieces) {
        tokens.push_back(p.text);
        scores.push_back(p.score);
        types.push_back(p.type);
    }
    w.add("tokenizer.ggml.model", "llama");
    w.add("tokenizer.ggml.tokens", tokens);
    w.add_f32s("tokenizer.ggml.scores", scores);
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    if (std::string t = chat_template_of(tok_dir, ""); !t.empty()) w.add("tokenizer.chat_template", t);
}

void write_vocab(GgufWriter &w, const Shape &s, const std::string &tok_dir) {
    if (s.pre.empty()) return write_sentencepiece_vocab(w, tok_dir);
    std::ifstream in(tok_dir + "/tokenizer.json");
    if (!in) throw std::runtime_error("cannot read " + tok_dir + "/tokenizer.json");
    auto tj = nlohmann::json::parse(in);
    std::vector<std::string> tokens(size_t(s.vocab));
    std::vector<int32_t> token_types(size_t(s.vocab), 5);  // unused rows of the padded vocabulary
    for (auto &[t, id] : tj["model"]["vocab"].items()) {
        tokens[size_t(id.get<int>())] = t;
        token_types[size_t(id.get<int>())] = 1;
    }
    for (auto &a : tj["added_tokens"]) {
        tokens[size_t(a["id"].get<int>())] = a["content"];
        token_types[size_t(a["id"].get<int>())] = a.value("special", false) ? 3 : 4;
    }
    for (size_t i = 0; i < tokens.size(); ++i)
        if (tokens[i].empty()) tokens[i] = "[PAD" + std::to_string(i) + "]";
    std::vector<std::string> merges;
    for (auto &m : tj["model"]["merges"]) merges.push_back(m.is_array() ? m[0].get<std::string>() + " " + m[1].get<std::string>() : m.get<std::string>());
    std::string chat_template = chat_template_of(tok_dir, s.chat_template);
    auto id_of = [&](const std::string &t) {
        for (size_t i = 0; i < tokens.size(); ++i)
            if (tokens[i] == t) return uint32_t(i);
        throw std::runtime_error("no token " + t);
    };

    w.add("tokenizer.ggml.model", "gpt2");
    w.add("tokenizer.ggml.pre", s.pre);
    w.add("tokenizer.ggml.tokens", tokens);
    w.add_i32s("tokenizer.ggml.token_type", token_types);
    w.add("tokenizer.ggml.merges", merges);
    if (s.arch == "llama") {
        w.add_u32("tokenizer.ggml.bos_token_id", id_of("<|im_start|>"));
        w.add_u32("tokenizer.ggml.eos_token_id", id_of("<|im_end|>"));
    } else {
        w.add_u32("tokenizer.ggml.bos_token_id", id_of("<|endoftext|>"));
        w.add_u32("tokenizer.ggml.eos_token_id", id_of("<|im_end|>"));
    }
    w.add_bool("tokenizer.ggml.add_bos_token", false);
    if (!chat_template.empty()) w.add("tokenizer.chat_template", chat_template);
}

int vocab_only(const std::string &shape_name, const std::string &tok_dir, const std::string &out) {
    Shape s = shape_of(shape_name);
    GgufWriter w;
    write_hparams(w, s, "vocab");
    write_vocab(w, s, tok_dir);
    w.write(out);
    return 0;
}

int random_model(const std::string &shape_name, const std::string &tok_dir, const std::string &types, const std::string &out, uint64_t seed) {
    Shape s = shape_of(shape_name);
    GgufWriter w;
    write_hparams(w, s, "random-" + types);
    write_vocab(w, s, tok_dir);
    Rng rng{seed};
    std::vector<float> buf;
    auto fill = [&](size_t n, float scale, float offset) {
        buf.resize(n);
        for (auto &x : buf) x = offset + scale * rng.uniform();
        return buf.data();
    };
    // The output is tied to the embedding, so the embedding gets the output's type.
    auto type_for = [&](const std::string &name, int64_t rows, int64_t cols) {
        if (types == "f16") return DType::F16;
        Tensor t;
        t.name = name;
        t.shape = {rows, cols};
        if (types == "q8_0") return quantized_type(QuantType::Q8_0, t, true, s.layers);
        if (types == "q4_k_m") return quantized_type(QuantType::Q4_K_M, t, true, s.layers);
        throw std::runtime_error("unknown types " + types + " (f16, q8_0, q4_k_m)");
    };
    const int hd = s.embd / s.heads, q_dim = s.heads * hd, kv_dim = s.kv_heads * hd;
    // Weights as Hugging Face initialises the model (std = initializer_range; uniform, so the bound
    // is sqrt(3) std): a fresh model's residual branches are small, as a trained model's are. With
    // unit-gain branches instead, 30 random layers amplify rounding differences chaotically and no
    // two implementations could agree past the first tokens.
    const float bound = std::sqrt(3.0f) * s.init_std;
    auto matrix = [&](const std::string &name, int64_t rows, int64_t cols) {
        w.add_tensor(name, {rows, cols}, type_for(name, rows, cols), fill(size_t(rows * cols), bound, 0));
    };
    matrix("token_embd.weight", s.vocab, s.embd);
    w.add_tensor("output_norm.weight", {s.embd}, DType::F32, fill(size_t(s.embd), 0.1f, 1.0f));
    for (int l = 0; l < s.layers; ++l) {
        std::string b = "blk." + std::to_string(l) + ".";
        w.add_tensor(b + "attn_norm.weight", {s.embd}, DType::F32, fill(size_t(s.embd), 0.1f, 1.0f));
        matrix(b + "attn_q.weight", q_dim, s.embd);
        matrix(b + "attn_k.weight", kv_dim, s.embd);
        matrix(b + "attn_v.weight", kv_dim, s.embd);
        if (s.bias) {
            w.add_tensor(b + "attn_q.bias", {q_dim}, DType::F32, fill(size_t(q_dim), 0.2f, 0));
            w.add_tensor(b + "attn_k.bias", {kv_dim}, DType::F32, fill(size_t(kv_dim), 0.2f, 0));
            w.add_tensor(b + "attn_v.bias", {kv_dim}, DType::F32, fill(size_t(kv_dim), 0.2f, 0));
        }
        matrix(b + "attn_output.weight", s.embd, q_dim);
        w.add_tensor(b + "ffn_norm.weight", {s.embd}, DType::F32, fill(size_t(s.embd), 0.1f, 1.0f));
        matrix(b + "ffn_gate.weight", s.ff, s.embd);
        matrix(b + "ffn_up.weight", s.ff, s.embd);
        matrix(b + "ffn_down.weight", s.embd, s.ff);
    }
    w.write(out);
    return 0;
}

// A Hugging Face folder: the weights are drawn in Hugging Face's own layout (each q/k head as two
// rotate-half halves), which `saem convert` must permute; the reference that checks it
// (scripts/parity/convert.mjs) runs the folder as Hugging Face's modeling code does.
int hf_folder(const std::string &shape, const std::string &tok_dir, const std::string &out, uint64_t seed) {
    const bool qwen = shape == "tiny-qwen2", spm = shape == "tiny-tinyllama";
    if (!qwen && !spm && shape != "tiny-llama") throw std::runtime_error("unknown hf shape " + shape + " (tiny-llama, tiny-qwen2, tiny-tinyllama)");
    const int vocab = qwen ? 151936 : spm ? 32000 : 49152, embd = 64, layers = 2, heads = 4, kv_heads = 2, ff = 160, hd = embd / heads;
    const bool tied = !qwen;
    nlohmann::json config = {
        {"architectures", {qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
        {"model_type", qwen ? "qwen2" : "llama"},
        {"hidden_size", embd},
        {"intermediate_size", ff},
        {"num_hidden_layers", layers},
        {"num_attention_heads", heads},
        {"num_key_value_heads", kv_heads},
        {"vocab_size", vocab},
        {"max_position_embeddings", 2048},
        {"rms_norm_eps", qwen ? 1e-6 : 1e-5},
        {"rope_theta", qwen ? 1000000.0 : 10000.0},
        {"tie_word_embeddings", tied},
        {"hidden_act", "silu"},
        {"torch_dtype", qwen ? "bfloat16" : "float32"},
        // The published models' special token ids (SmolLM2, Qwen2.5, TinyLlama).
        {"bos_token_id", qwen ? 151643 : 1},
        {"eos_token_id", qwen ? 151645 : 2},
    };
    if (spm)
        config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                                  {"original_max_position_embeddings", 64}};
    fs::create_directories(out);
    std::ofstream(out + "/config.json") << config.dump(2) << "\n";
    for (const char *f : {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json"})
        if (fs::exists(tok_dir + "/" + f)) fs::copy_file(tok_dir + "/" + f, out + "/" + f, fs::copy_options::overwrite_existing);

    Rng rng{seed};
    std::vector<std::pair<std::string, std::vector<int64_t>>> order;
    std::vector<std::vector<float>> data;
    auto tensor = [&](const std::string &name, std::vector<int64_t> shape, float scale, float offset) {
        int64_t n = 1;
        for (auto d : shape) n *= d;
        std::vector<float> v(static_cast<size_t>(n));
        for (auto &x : v) x = offset + scale * rng.uniform();
        order.emplace_back(name, shape);
        data.push_back(std::move(v));
    };
    const float w = 0.08f;  // larger than a fresh model's, so two layers give logits worth comparing
    tensor("model.embed_tokens.weight", {vocab, embd}, w, 0);
    for (int l = 0; l < layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        tensor(p + "input_layernorm.weight", {embd}, 0.1f, 1.0f);
        tensor(p + "self_attn.q_proj.weight", {heads * hd, embd}, w * 3, 0);
        tensor(p + "self_attn.k_proj.weight", {kv_heads * hd, embd}, w * 3, 0);
        tensor(p + "self_attn.v_proj.weight", {kv_heads * hd, embd}, w, 0);
        if (qwen) {
            tensor(p + "self_attn.q_proj.bias", {heads * hd}, 0.2f, 0);
            tensor(p + "self_attn.k_proj.bias", {kv_heads * hd}, 0.2f, 0);
            tensor(p + "self_attn.v_proj.bias", {kv_heads * hd}, 0.2f, 0);
        }
        tensor(p + "self_attn.o_proj.weight", {embd, heads * hd}, w, 0);
        tensor(p + "post_attention_layernorm.weight", {embd}, 0.1f, 1.0f);
        tensor(p + "mlp.gate_proj.weight", {ff, embd}, w, 0);
        tensor(p + "mlp.up_proj.weight", {ff, embd}, w, 0);
        tensor(p + "mlp.down_proj.weight", {embd, ff}, w, 0);
    }
    tensor("model.norm.weight", {embd}, 0.1f, 1.0f);
    if (!tied) tensor("lm_head.weight", {vocab, embd}, w, 0);

    // safetensors: u64 header length, the JSON header, then the data in header order.
    nlohmann::json header = nlohmann::json::object();
    std::string body;
    for (size_t i = 0; i < order.size(); ++i) {
        const size_t begin = body.size();
        for (float x : data[i]) {
            if (qwen) {  // BF16: the float's upper half, rounded to nearest even
                uint32_t u;
                std::memcpy(&u, &x, 4);
                const uint16_t h = uint16_t((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
                body.append(reinterpret_cast<const char *>(&h), 2);
            } else {
                body.append(reinterpret_cast<const char *>(&x), 4);
            }
        }
        header[order[i].first] = {{"dtype", qwen ? "BF16" : "F32"}, {"shape", order[i].second}, {"data_offsets", {begin, body.size()}}};
    }
    header["__metadata__"] = {{"format", "pt"}};
    std::string h = header.dump();
    h.resize((h.size() + 7) / 8 * 8, ' ');
    std::ofstream st(out + "/model.safetensors", std::ios::binary);
    const uint64_t n = h.size();
    st.write(reinterpret_cast<const char *>(&n), 8);
    st << h << body;
    if (!st) throw std::runtime_error("cannot write " + out + "/model.safetensors");
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        std::vector<std::string> a(argv + 1, argv + argc);
        if (a.size() == 4 && a[0] == "stories") return stories(a[1], a[2], a[3]);
        if (a.size() == 4 && a[0] == "vocab") return vocab_only(a[1], a[2], a[3]);
        if ((a.size() == 4 || a.size() == 5) && a[0] == "hf") return hf_folder(a[1], a[2], a[3], a.size() == 5 ? std::stoull(a[4]) : 1234);
        if ((a.size() == 5 || a.size() == 6) && a[0] == "random")
            return random_model(a[1], a[2], a[3], a[4], a.size() == 6 ? std::stoull(a[5]) : 1234);
        std::cerr << "usage: make_test_decoder stories STORIES.bin TOK.bin OUT.gguf\n"
                     "       make_test_decoder random smollm2-135m|qwen2.5-0.5b TOKENIZER_DIR f16|q8_0|q4_k_m OUT.gguf [SEED]\n"
                     "       make_test_decoder vocab smollm2-135m|qwen2.5-0.5b|tinyllama TOKENIZER_DIR OUT.gguf\n"
                     "       make_test_decoder hf tiny-llama|tiny-qwen2|tiny-tinyllama TOKENIZER_DIR OUT_DIR [SEED]\n";
        return 2;
    } catch (const std::exception &e) {
        std::cerr << "make_test_decoder: " << e.what() << "\n";
        return 1;
    }
}
