// nn/transformer.h: the llama-family transformer behind nn::Decoder: its hyperparameters and
// weights, and what each architecture file (nn/llama.cpp, nn/qwen2.cpp) fills in from a GGUF.
// Internal to nn.
//
// Threads: the readers fill a DecoderWeights on the loading thread; once loaded it is read-only.
//
// Layout contract: weight matrices are [out, in] row-major as GGUF stores them (ne[0] = in), used
// straight from the mapping; norms and biases are read into float vectors; the key/value cache
// holds f16 rows of n_head_kv * head_dim per position, as llama.cpp's default cache does.
#pragma once

#include "nn/weights.h"

#include <memory>
#include <string>
#include <vector>

namespace saem::nn {

struct DecoderHparams {
    std::string arch;
    int n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0;
    int n_ctx_train = 0, n_rot = 0;
    float rms_eps = 1e-5f, rope_base = 10000.0f, rope_freq_scale = 1.0f;
    // NORMAL rotates adjacent pairs (llama: the converter permutes q/k to suit), NEOX rotates
    // element i with i + n_rot/2 (qwen2).
    bool rope_neox = false;
};

struct DecoderLayer {
    std::vector<float> attn_norm, ffn_norm, bq, bk, bv;  // biases empty when the architecture has none
    const Tensor *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
    const Tensor *gate = nullptr, *up = nullptr, *down = nullptr;
};

struct DecoderWeights {
    DecoderHparams hp;
    const Tensor *tok_embd = nullptr, *output = nullptr;  // output is tok_embd when tied
    std::vector<float> output_norm;
    std::vector<float> rope_freq_factors;  // Llama 3.1+ long-context factors, one per rotated pair
    std::vector<DecoderLayer> layers;
};

// The pieces both architectures share. `prefix` is "llama" or "qwen2".
void read_common_hparams(const Gguf &g, const std::string &prefix, DecoderHparams &hp);
// Tensors named as llama.cpp names them (token_embd, blk.N.attn_q, ...), shapes checked.
void read_common_tensors(const Gguf &g, DecoderWeights &w);
std::vector<float> read_floats(const Gguf &g, const std::string &name, int64_t n);

void read_llama(const Gguf &g, DecoderWeights &w);
void read_qwen2(const Gguf &g, DecoderWeights &w);

}  // namespace saem::nn
