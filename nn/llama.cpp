// Architecture "llama": SmolLM, TinyLlama, Llama 2/3.x, llama2.c models. RMSNorm, rotary positions
// on adjacent pairs, grouped-query attention, SwiGLU, output tied to the embedding or separate.
// Llama 3.1+ carries its long-context frequency factors as the tensor rope_freqs.weight.
#include "nn/transformer.h"

namespace saem::nn {

void read_llama(const Gguf &g, DecoderWeights &w) {
    read_common_hparams(g, "llama", w.hp);
    w.hp.rope_neox = false;
    read_common_tensors(g, w);
    if (g.find_tensor("rope_freqs.weight")) w.rope_freq_factors = read_floats(g, "rope_freqs.weight", w.hp.n_rot / 2);
}

}  // namespace saem::nn
