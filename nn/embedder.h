// nn/embedder.h: text embedders (Model2Vec static tables, BERT sentence encoders), cross-encoder
// rerankers, and the loaders that pick the implementation from a model folder or file.
//
// Threads: Embedder::embed, Reranker::score and the other const members may be called from any
// number of threads at once (an HTTP server embeds queries from its request threads). A batch of
// texts is shared out over nn::compute_pool(), whose callers take turns, so concurrent callers never
// multiply the threads; a single text runs on the calling thread. set_max_tokens is not safe
// against concurrent use: call it before sharing the embedder.
#pragma once

#include "nn/text.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace saem::nn {

// Turns texts into unit-length (when the model normalises) float vectors of dim() floats each,
// written row-major to out.
class Embedder {
public:
    virtual ~Embedder() = default;
    virtual int dim() const = 0;
    // Name, weights hash, dimension and pooling: two stores agree on vectors only if this does.
    virtual std::string identity() const = 0;
    virtual void embed(const std::vector<std::string> &texts, float *out) const = 0;
    virtual const TokenCounter &token_counter() const = 0;
    // Texts are cut to this many tokens ([CLS]/[SEP] included for transformers).
    virtual size_t max_tokens() const = 0;
    virtual void set_max_tokens(size_t n) = 0;
};

// Cross-encoder rerankers (e.g. ms-marco-MiniLM): one relevance logit per (query, passage) pair,
// higher is more relevant.
class Reranker {
public:
    virtual ~Reranker() = default;
    virtual std::vector<float> score(const std::string &query, const std::vector<std::string> &passages) const = 0;
    virtual std::string identity() const = 0;
};

// Loads an embedder from a model folder or file. Supported: Model2Vec static models (config.json
// model_type "model2vec", or a sentence-transformers StaticEmbedding folder); BERT encoders as a
// GGUF file (llama.cpp's "bert" architecture) or a sentence-transformers / Hugging Face folder
// (config.json, model.safetensors, tokenizer.json or vocab.txt, 1_Pooling, Normalize). Throws
// ModelError (nn/weights.h) saying why a path is not one of these.
std::unique_ptr<Embedder> load_embedder(const std::string &path);

// A Hugging Face BertForSequenceClassification folder with one label (config.json,
// model.safetensors, tokenizer.json or vocab.txt).
std::unique_ptr<Reranker> load_reranker(const std::string &path);

}  // namespace saem::nn
