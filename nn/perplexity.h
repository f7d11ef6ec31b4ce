// nn/perplexity.h: a decoder's perplexity over a text, by llama.cpp's method (its
// tools/perplexity, the default mode), so that the two programs' figures can be compared:
//
//   1. The whole text is tokenised once, BOS first where the vocabulary wants one.
//   2. It is cut into consecutive windows of `context` tokens; a tail shorter than a window is not
//      used. At least two windows are needed (llama.cpp's rule).
//   3. Each window runs from an empty cache, its first token replaced by BOS where the vocabulary
//      wants one, at positions 0 .. context-1.
//   4. Only the second half of each window is scored: the logits at positions context/2 ..
//      context-2 predict the tokens after them, so every scored token has at least context/2
//      tokens before it. A window scores context - context/2 - 1 tokens.
//   5. A token's negative log-likelihood is max + log(sum exp(logit - max)) - logit[token], summed
//      in double; PPL = exp(mean), and its error exp(mean) * sqrt(var / (count - 1)), var being
//      the population variance of the per-token values.
//
// Threads: perplexity() drives one Decoder, so it runs on the one thread that may use it.
#pragma once

#include "nn/decoder.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace saem::nn {

struct PerplexityOptions {
    int context = 512;    // tokens per window (at least 3); the decoder's context must hold it
    int max_windows = 0;  // 0: every whole window of the text
};

struct Perplexity {
    int context = 0;
    size_t text_tokens = 0;  // the text's tokens, BOS included
    size_t windows = 0;
    size_t scored = 0;                // windows * (context - context/2 - 1)
    double mean_nll = 0, ppl = 0, ppl_error = 0;
    std::vector<float> token_nll;     // each scored token's negative log-likelihood, in order
    double seconds = 0;               // evaluating the windows (tokenising excluded)
    double tokens_per_second() const;  // tokens run through the model (windows * context) per second
};

// After each window: its number (from 1) and the perplexity so far; return false to stop there.
using PerplexityProgress = std::function<bool(size_t window, double ppl_so_far)>;

// `tokens`: the whole text's, BOS first where the vocabulary wants one (saem::raw_prompt makes
// them). Throws std::invalid_argument when they fill fewer than two windows, or the window is under
// 3 tokens or larger than the decoder's context (the message says which and by how much).
Perplexity perplexity(Decoder &decoder, const std::vector<int32_t> &tokens, const PerplexityOptions &options,
                      const PerplexityProgress &progress = {});

}  // namespace saem::nn
