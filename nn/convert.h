// nn/convert.h: `saem convert`: a Hugging Face model folder to a GGUF laid out as llama.cpp's
// convert_hf_to_gguf.py lays it out, so saem and llama.cpp both run the result:
//
//   1. The folder: config.json, model.safetensors (or the shards model.safetensors.index.json
//      names), and the tokenizer: tokenizer.json (byte-level BPE: GGUF "gpt2" with its merges and
//      pre-tokenizer name) or tokenizer.model (SentencePiece: GGUF "llama", pieces, scores,
//      types), with tokenizer_config.json's special tokens, add_bos_token and chat template.
//   2. Architectures: LlamaForCausalLM ("llama"), Qwen2ForCausalLM ("qwen2"), BertModel ("bert").
//   3. Tensors are renamed (model.layers.N.self_attn.q_proj.weight -> blk.N.attn_q.weight, ...).
//      llama's q and k rows are permuted from Hugging Face's rotate-half order (the two halves of
//      each head rotate together) to the adjacent pairs llama.cpp's llama rotates; qwen2 keeps
//      Hugging Face's order (llama.cpp rotates it NEOX-style) and its q/k/v biases.
//   4. lm_head.weight becomes output.weight unless tie_word_embeddings; then the embedding serves.
//   5. The vocabulary is padded to config.json's vocab_size with "[PADn]" tokens of type unused.
//   6. Types: 1-D tensors (norms, biases) F32; the others F16, Q8_0 (F16 for rows that are not
//      whole 32-blocks) or F32, as asked.
//   7. rope_scaling: linear is written as it is; llama3 as the rope_freqs.weight factors llama.cpp
//      computes; another kind is refused.
//   8. BertModel (a sentence encoder, with its sentence-transformers pooling): "bert", the
//      WordPiece vocabulary in llama.cpp's phantom-space form (vocab.txt or tokenizer.json), the
//      pooler dropped, 1-D tensors and the token-type embeddings F32.
//
// Threads: convert_model runs on the calling thread (quantising on the compute pool).
#pragma once

#include "nn/weights.h"

#include <string>
#include <vector>

namespace saem::nn {

// One piece of SentencePiece's tokenizer.model (a protobuf ModelProto whose field 1 repeats
// {1: piece, 2: score, 3: type}); its types number as GGUF's token types do.
struct SentencePiece {
    std::string text;
    float score = 0;
    int32_t type = 1;
};
// Throws ModelError for a file that is unreadable, truncated or holds no pieces.
std::vector<SentencePiece> read_sentencepiece(const std::string &path);

struct ConvertReport {
    std::string architecture;
    size_t tensors = 0, file_bytes = 0;
};

// type: F32, F16 or Q8_0. Throws ModelError naming what is missing or unsupported; writes OUT.part
// and renames it, so a failure leaves no file at out.
ConvertReport convert_model(const std::string &folder, const std::string &out, DType type);

}  // namespace saem::nn
