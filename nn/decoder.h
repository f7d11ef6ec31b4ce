// nn/decoder.h: llama-family decoder models (architectures llama and qwen2) from GGUF files, run on
// their quantised weights as they are mapped. The transformer behind it is nn/transformer.h.
//
// Threads: a Decoder is used by one thread at a time (eval() and truncate() change its key/value
// cache; the const members read state that eval() changes). Its matrix work runs on
// nn::compute_pool(), which it shares with the encoders: different Decoders, and embedders, may run
// on other threads at the same time, taking turns for the pool job by job.
#pragma once

#include "nn/tokenizer.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

namespace saem::nn {

// A model's context would overflow: the message says how many tokens were asked for and the limit.
struct ContextError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct DecoderOptions {
    // Threads of the process-wide compute pool (nn/thread_pool.h), which every model shares: a
    // value above 0 sizes the pool when this load is the first to start it (what `saem generate
    // --threads N` does), and load() throws std::invalid_argument if the pool already runs with
    // another size. 0 leaves the pool as set_compute_threads / SAEM_THREADS / the hardware make it.
    int threads = 0;
    int context = 4096;     // tokens the cache holds; capped at the model's trained context; 0: the model's
    int batch = 512;        // prompt tokens per forward pass
};

// One sequence at a time: eval() appends tokens to the key/value cache.
class Decoder {
public:
    static std::unique_ptr<Decoder> load(const std::string &path, const DecoderOptions &options = {});
    virtual ~Decoder() = default;
    virtual const Bpe &tokenizer() const = 0;
    virtual std::string architecture() const = 0;
    // One line: architecture, sizes, tensor types, tokenizer, context, kernels, threads.
    virtual std::string describe() const = 0;
    virtual int vocab_size() const = 0;
    virtual int context_length() const = 0;
    virtual int n_past() const = 0;
    // Runs tokens at the positions after n_past() and returns the logits of the last `outputs` of
    // them (1 <= outputs <= n), row after row, vocab_size() floats each, valid until the next call:
    // one row to continue a text, many to score one (perplexity). Throws ContextError when the
    // tokens do not fit.
    virtual const float *eval(const int32_t *tokens, size_t n, size_t outputs) = 0;
    const float *eval(const int32_t *tokens, size_t n) { return eval(tokens, n, 1); }
    // Forgets cached positions from n on.
    virtual void truncate(int n) = 0;
};

}  // namespace saem::nn
