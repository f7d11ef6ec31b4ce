// Perplexity by llama.cpp's method: the steps are numbered in nn/perplexity.h.
#include "nn/perplexity.h"

#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

namespace saem::nn {

double Perplexity::tokens_per_second() const {
    return seconds > 0 ? double(windows) * context / seconds : 0;
}

namespace {

// Step 5's per-token value, computed as llama.cpp computes it: the exponentials in float, their
// sum in double.
double negative_log_likelihood(const float *logits, int vocab, int32_t token) {
    float max = logits[0];
    for (int i = 1; i < vocab; ++i) max = std::max(max, logits[i]);
    double sum = 0;
    for (int i = 0; i < vocab; ++i) sum += std::exp(logits[i] - max);
    return double(max) + std::log(sum) - double(logits[token]);
}

}  // namespace

Perplexity perplexity(Decoder &decoder, const std::vector<int32_t> &tokens, const PerplexityOptions &options,
                      const PerplexityProgress &progress) {
    const int ctx = options.context;
    if (ctx < 3) throw std::invalid_argument("a perplexity window needs at least 3 tokens, not " + std::to_string(ctx));
    if (ctx > decoder.context_length())
        throw std::invalid_argument("a window of " + std::to_string(ctx) + " tokens does not fit the decoder's context of " +
                                    std::to_string(decoder.context_length()));
    if (tokens.size() < 2 * size_t(ctx))
        throw std::invalid_argument("the text has " + std::to_string(tokens.size()) + " tokens; perplexity with windows of " +
                                    std::to_string(ctx) + " needs at least " + std::to_string(2 * ctx) +
                                    " (two windows): give a longer text or a smaller context");
    Perplexity r;
    r.context = ctx;
    r.text_tokens = tokens.size();
    size_t windows = tokens.size() / size_t(ctx);
    if (options.max_windows > 0) windows = std::min(windows, size_t(options.max_windows));
    const int first = ctx / 2, vocab = decoder.vocab_size();
    const Bpe &bpe = decoder.tokenizer();
    const bool bos = bpe.add_bos() && bpe.bos_id() >= 0;
    double nll = 0, nll2 = 0;
    std::vector<int32_t> window(static_cast<size_t>(ctx));
    const auto start = std::chrono::steady_clock::now();
    for (size_t w = 0; w < windows; ++w) {
        std::copy(tokens.begin() + ptrdiff_t(w * ctx), tokens.begin() + ptrdiff_t((w + 1) * ctx), window.begin());
        if (bos) window[0] = bpe.bos_id();
        decoder.truncate(0);
        // Logits of positions first .. ctx-1; the last predicts the next window's first token,
        // which llama.cpp does not score.
        const float *logits = decoder.eval(window.data(), window.size(), size_t(ctx - first));
        for (int j = first; j < ctx - 1; ++j) {
            const double v = negative_log_likelihood(logits + size_t(j - first) * size_t(vocab), vocab, window[size_t(j + 1)]);
            nll += v;
            nll2 += v * v;
            r.token_nll.push_back(float(v));
        }
        r.windows = w + 1;
        r.scored = r.token_nll.size();
        if (progress && !progress(r.windows, std::exp(nll / double(r.scored)))) break;
    }
    decoder.truncate(0);
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double n = double(r.scored);
    r.mean_nll = nll / n;
    r.ppl = std::exp(r.mean_nll);
    const double var = nll2 / n - r.mean_nll * r.mean_nll;
    r.ppl_error = var > 0 && n > 1 ? std::sqrt(var / (n - 1)) * r.ppl : 0;
    return r;
}

}  // namespace saem::nn
