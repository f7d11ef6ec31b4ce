// Architecture "qwen2": Qwen2 and Qwen2.5. The llama block with biases on the q, k and v
// projections and rotary positions in NEOX order (element i pairs with i + head_dim/2).
#include "nn/transformer.h"

namespace saem::nn {

void read_qwen2(const Gguf &g, DecoderWeights &w) {
    read_common_hparams(g, "qwen2", w.hp);
    w.hp.rope_neox = true;
    read_common_tensors(g, w);
    const auto &hp = w.hp;
    for (int l = 0; l < hp.n_layer; ++l) {
        auto &layer = w.layers[size_t(l)];
        std::string p = "blk." + std::to_string(l) + ".";
        layer.bq = read_floats(g, p + "attn_q.bias", int64_t(hp.n_head) * hp.head_dim);
        layer.bk = read_floats(g, p + "attn_k.bias", int64_t(hp.n_head_kv) * hp.head_dim);
        layer.bv = read_floats(g, p + "attn_v.bias", int64_t(hp.n_head_kv) * hp.head_dim);
    }
}

}  // namespace saem::nn
