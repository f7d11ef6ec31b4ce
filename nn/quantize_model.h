// nn/quantize_model.h: `saem quantize`: a GGUF model in F32, F16 or BF16 rewritten with quantised
// weights, each tensor's type chosen as llama.cpp's llama-quantize chooses it for the same file
// type (src/llama-quant.cpp, without an importance matrix), so a file from either tool is laid out
// alike and both runtimes read it:
//
//   1. Quantised: tensors of two or more dimensions whose names end in "weight", except norms
//      ("_norm.weight") and BERT's position_embd / token_types. The others are copied as they are.
//   2. Each file type has a base type: Q8_0, Q4_0, Q5_0, Q4_K (Q4_K_M), Q5_K (Q5_K_M), Q6_K.
//   3. output.weight, or token_embd.weight when the file has no output.weight (the two are tied
//      then), is Q6_K unless the base is Q8_0; Q8_0 when its rows are not whole base blocks.
//   4. Q4_K_M and Q5_K_M give Q6_K to attn_v.weight and ffn_down.weight in layer i of n when
//      i < n/8, i >= 7n/8 or (i - n/8) % 3 == 2 (the first and last eighth, and every third).
//   5. A tensor whose rows are not whole blocks of its type falls back: Q4_K to Q5_0, Q5_K to
//      Q5_1, Q6_K to Q8_0, and to F16 when even those do not fit.
//   6. The metadata is copied; general.file_type becomes llama.cpp's number for the file type and
//      general.quantization_version 2.
//
// Threads: quantize_model runs on the calling thread and spreads each tensor's rows over the
// compute pool (nn/thread_pool.h).
#pragma once

#include "nn/weights.h"

#include <functional>
#include <string>
#include <vector>

namespace saem::nn {

enum class QuantType { Q8_0, Q4_0, Q5_0, Q4_K_M, Q5_K_M, Q6_K };

// llama.cpp's names in any case ("q4_k_m", "Q4_K_M"; "Q4_K" and "Q5_K" mean the _M mixes, as in
// llama-quantize). Throws std::invalid_argument listing the types.
QuantType parse_quant_type(const std::string &name);
const char *quant_type_name(QuantType type);

// Rule 1-5's choice for one tensor of a file (tied: the file has no output.weight; layers: its
// block count).
DType quantized_type(QuantType type, const Tensor &tensor, bool tied, int layers);

struct QuantizedTensor {
    std::string name;
    DType from = DType::F32, to = DType::F32;
    size_t bytes_in = 0, bytes_out = 0;
};

struct QuantizeReport {
    std::vector<QuantizedTensor> tensors;
    size_t file_bytes_in = 0, file_bytes_out = 0;
    double seconds = 0;
};

// Throws ModelError for an unreadable input, a tensor already quantised (quantise from F32, F16 or
// BF16), or an output that cannot be written; std::invalid_argument when out names the input.
// Writes OUT.part and renames it, so a failure leaves nothing at out. progress, when given, is
// called after each tensor is written.
QuantizeReport quantize_model(const std::string &in, const std::string &out, QuantType type,
                              const std::function<void(const QuantizedTensor &, size_t done, size_t total)> &progress = {});

}  // namespace saem::nn
