// Model2Vec static embedders (e.g. potion-base): a token-embedding table; a text's embedding is
// the mean of its tokens' rows, L2-normalised when config.json says "normalize". As model2vec
// does: text is first cut to max_tokens * median token length characters, tokens are taken
// without [CLS]/[SEP], [UNK] is dropped, then at most max_tokens tokens are kept.
#include "nn/embedder.h"

#include "nn/internal.h"
#include "nn/thread_pool.h"
#include "nn/tokenizer.h"
#include "nn/weights.h"

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace saem::nn {

namespace fs = std::filesystem;

namespace {

class StaticEmbedder final : public Embedder {
public:
    StaticEmbedder(const std::string &folder, const nlohmann::json &config)
        : weights_((fs::path(folder) / "model.safetensors").string()),
          tokenizer_(WordPiece::from_tokenizer_json((fs::path(folder) / "tokenizer.json").string())),
          counter_(tokenizer_) {
        normalize_ = config.value("normalize", true);
        const Tensor *t = weights_.find("embeddings");
        if (!t) t = weights_.find("embedding.weight");  // sentence-transformers StaticEmbedding
        if (!t) throw ModelError(weights_.path() + ": missing tensor 'embeddings' (a Model2Vec table)");
        if (t->shape.size() != 2 || size_t(t->shape[0]) != tokenizer_.vocab_size())
            throw ModelError(weights_.path() + ": tensor '" + t->name + "' should be [" +
                             std::to_string(tokenizer_.vocab_size()) + ", dim] to match tokenizer.json");
        table_ = t;
        dim_ = int(t->shape[1]);
        // Token weights of newer Model2Vec models multiply each row before the mean.
        if (const Tensor *w = weights_.find("weights")) {
            if (w->elements() != t->shape[0]) throw ModelError(weights_.path() + ": tensor 'weights' should have one value per token");
            token_weights_ = w;
        }
        std::vector<size_t> lengths;
        for (size_t i = 0; i < tokenizer_.vocab_size(); ++i) {
            const std::string &tok = tokenizer_.token(int32_t(i));
            size_t chars = 0;
            for (size_t k = 0; k < tok.size(); k += utf8_length(static_cast<unsigned char>(tok[k]))) ++chars;
            lengths.push_back(chars);
        }
        std::sort(lengths.begin(), lengths.end());
        size_t n = lengths.size();
        // numpy's median, truncated to int as model2vec does
        median_chars_ = n % 2 ? lengths[n / 2] : (lengths[n / 2 - 1] + lengths[n / 2]) / 2;
        XXH64_hash_t h = XXH3_64bits(table_->data, table_->bytes);
        char hex[17];
        std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
        identity_ = "model2vec:" + fs::path(folder).filename().string() + ":" + hex + ":" + std::to_string(dim_) +
                    ":mean" + (normalize_ ? ":l2" : "");
    }

    int dim() const override { return dim_; }
    std::string identity() const override { return identity_; }
    const TokenCounter &token_counter() const override { return counter_; }

    size_t max_tokens() const override { return max_tokens_; }
    void set_max_tokens(size_t n) override { max_tokens_ = std::max<size_t>(n, 1); }

    // Texts are shared out over the compute pool (one text runs here); each vector depends on its
    // text alone.
    void embed(const std::vector<std::string> &texts, float *out) const override {
        std::atomic<size_t> next{0};
        auto work = [&](int, int) {
            for (size_t t; (t = next++) < texts.size();) embed_one(texts[t], out + t * size_t(dim_));
        };
        if (texts.size() > 1) compute_pool().run(work);
        else work(0, 1);
    }

private:
    void embed_one(std::string_view text, float *v) const {
        const size_t max_tokens = max_tokens_;
        std::fill(v, v + dim_, 0.0f);
        // Cut by characters first so a huge text is not tokenized whole.
        size_t limit = max_tokens * median_chars_, chars = 0, cut = 0;
        while (cut < text.size() && chars < limit) { cut += utf8_length(static_cast<unsigned char>(text[cut])); ++chars; }
        std::vector<int32_t> ids = tokenizer_.encode(text.substr(0, std::min(cut, text.size())));
        ids.erase(std::remove(ids.begin(), ids.end(), tokenizer_.unk_id()), ids.end());
        if (ids.size() > max_tokens) ids.resize(max_tokens);
        if (ids.empty()) return;
        for (int32_t id : ids) {
            float w = token_weights_ ? element(*token_weights_, id) : 1.0f;
            int64_t row = int64_t(id) * dim_;
            for (int d = 0; d < dim_; ++d) v[d] += w * element(*table_, row + d);
        }
        double norm = 0;
        for (int d = 0; d < dim_; ++d) {
            v[d] /= float(ids.size());
            norm += double(v[d]) * v[d];
        }
        if (normalize_ && norm > 0) {
            float inv = float(1.0 / std::sqrt(norm));
            for (int d = 0; d < dim_; ++d) v[d] *= inv;
        }
    }

    SafeTensors weights_;
    WordPiece tokenizer_;
    WordPieceCounter counter_;
    const Tensor *table_ = nullptr, *token_weights_ = nullptr;
    int dim_ = 0;
    bool normalize_ = true;
    size_t median_chars_ = 1;
    size_t max_tokens_ = 512;  // model2vec's default
    std::string identity_;
};


}  // namespace

std::unique_ptr<Embedder> load_model2vec(const std::string &folder, const nlohmann::json &config) {
    return std::make_unique<StaticEmbedder>(folder, config);
}

}  // namespace saem::nn
