// BERT sentence encoders: absolute position and token-type embeddings, post-LayerNorm blocks,
// GELU (erf), mean or CLS pooling, optional L2 normalisation. Weights come from llama.cpp's GGUF
// ("bert" architecture) or from a Hugging Face / sentence-transformers folder; both map to the
// same plain struct. Math in float with Eigen; each text runs as one matrix-matrix pass per layer,
// texts spread over the compute pool's threads.
#include "nn/embedder.h"

#include "nn/internal.h"
#include "nn/thread_pool.h"
#include "nn/tokenizer.h"
#include "nn/weights.h"

#include <Eigen/Dense>
#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

namespace saem::nn {

namespace fs = std::filesystem;
using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vector = Eigen::RowVectorXf;

namespace {

struct Linear {
    Matrix w;  // [out, in]
    Vector b;  // [out]
};

struct Norm {
    Vector w, b;
};

struct Layer {
    Linear q, k, v, out, up, down;
    Norm attn_norm, out_norm;
};

struct BertWeights {
    int hidden = 0, heads = 0, layers = 0, ffn = 0, positions = 0;
    float eps = 1e-12f;
    Matrix word, position, type;
    Norm embed_norm;
    std::vector<Layer> blocks;
};

// A size a GGUF declares, in lo..hi before it is converted (a double out of int's range converts
// with undefined behaviour).
int size_field(const Gguf &g, const std::string &key, int lo, int hi) {
    double v = g.get_number(key);
    if (!(v >= lo && v <= hi) || v != double(int64_t(v)))
        throw ModelError(g.path() + ": " + key + " is " + std::to_string(v) + ", not an integer from " + std::to_string(lo) + " to " +
                         std::to_string(hi));
    return int(v);
}

// The sizes a BERT model declares, checked before they size a buffer or pick a row: a hostile
// file's may be zero, negative, or larger than its tables. The encoder reads word rows up to
// the tokenizer's largest id, position rows up to max_tokens (positions), and type row 0.
void check_bert_sizes(const std::string &where, const BertWeights &w) {
    auto in = [&](const char *what, int v, int lo, int hi) {
        if (v < lo || v > hi)
            throw ModelError(where + ": " + what + " is " + std::to_string(v) + ", outside " + std::to_string(lo) + ".." + std::to_string(hi));
    };
    in("the hidden size", w.hidden, 1, 1 << 16);
    in("the head count", w.heads, 1, w.hidden);
    if (w.hidden % w.heads) throw ModelError(where + ": the hidden size is not a multiple of the head count");
    in("the layer count", w.layers, 0, 1000);
    in("the feed-forward size", w.ffn, 1, 1 << 20);
    in("the position count", w.positions, 3, 1 << 20);  // [CLS] text [SEP]
}

Matrix to_matrix(const Tensor &t) {
    int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1, cols = t.shape.back();
    Matrix m(rows, cols);
    for (int64_t r = 0; r < rows; ++r) dequantize_row(t, r, m.row(r).data());
    return m;
}

Vector to_vector(const Tensor &t) {
    Vector v(t.elements());
    for (int64_t i = 0; i < t.elements(); ++i) v[i] = element(t, i);
    return v;
}

template <class Rows>
void layer_norm(Rows &&x, const Norm &n, float eps) {
    for (Eigen::Index r = 0; r < x.rows(); ++r) {
        auto row = x.row(r);
        float mean = row.mean();
        row.array() -= mean;
        float var = row.squaredNorm() / float(row.size());
        row *= 1.0f / std::sqrt(var + eps);
        row = row.cwiseProduct(n.w) + n.b;
    }
}

class BertEncoder final : public Embedder {
public:
    BertEncoder(BertWeights w, WordPiece tok, bool mean_pooling, bool normalize, std::string identity, size_t max_tokens)
        : w_(std::move(w)), tokenizer_(std::move(tok)), counter_(tokenizer_), mean_(mean_pooling), normalize_(normalize),
          identity_(std::move(identity)), max_tokens_(std::min(max_tokens, size_t(w_.positions))) {}

    size_t max_tokens() const override { return max_tokens_; }
    void set_max_tokens(size_t n) override { max_tokens_ = std::clamp<size_t>(n, 3, size_t(w_.positions)); }
    int ffn_size() const { return w_.ffn; }

    int dim() const override { return w_.hidden; }
    std::string identity() const override { return identity_; }
    const TokenCounter &token_counter() const override { return counter_; }

    // Texts are shared out over the compute pool, each thread taking the next; each text is one
    // forward pass, so the vectors do not depend on how they were shared. One text runs here.
    void embed(const std::vector<std::string> &texts, float *out) const override {
        std::atomic<size_t> next{0};
        auto work = [&](int, int) {
            std::optional<Workspace> ws;  // once per thread that gets a text: no allocation per text
            for (size_t i; (i = next++) < texts.size();) {
                if (!ws) ws.emplace(max_tokens_, w_.hidden, w_.ffn);
                auto enc = tokenizer_.encode_for_model(texts[i], {}, max_tokens_);
                forward(enc.ids, enc.type_ids, *ws, out + i * size_t(w_.hidden));
            }
        };
        if (texts.size() > 1) compute_pool().run(work);
        else work(0, 1);
    }

    // Buffers for one forward pass of up to `tokens` tokens; the pass uses their top rows.
    struct Workspace {
        Matrix x, q, k, v, attn, tmp, ffn, scores;
        Workspace(size_t tokens, int hidden, int ffn_size)
            : x(tokens, hidden), q(tokens, hidden), k(tokens, hidden), v(tokens, hidden), attn(tokens, hidden),
              tmp(tokens, hidden), ffn(tokens, ffn_size), scores(tokens, tokens) {}
    };

    // Hidden states of the last layer: the top ids.size() rows of ws.x.
    void hidden_states(const std::vector<int32_t> &ids, const std::vector<int32_t> &types, Workspace &ws) const {
        const int n = int(ids.size()), h = w_.hidden, dh = h / w_.heads;
        auto x = ws.x.topRows(n);
        for (int i = 0; i < n; ++i) {
            int32_t id = ids[size_t(i)];
            if (id < 0 || id >= w_.word.rows()) throw ModelError("token id " + std::to_string(id) + " outside the vocabulary");
            x.row(i) = w_.word.row(id) + w_.position.row(i) + w_.type.row(types[size_t(i)]);
        }
        layer_norm(x, w_.embed_norm, w_.eps);
        const float scale = 1.0f / std::sqrt(float(dh));
        auto linear = [n](const Linear &l, const auto &in, Matrix &out) {
            auto o = out.topRows(n);
            o.noalias() = in * l.w.transpose();
            o.rowwise() += l.b;
        };
        auto attn = ws.attn.topRows(n);
        auto scores = ws.scores.topLeftCorner(n, n);
        for (const Layer &l : w_.blocks) {
            linear(l.q, x, ws.q);
            linear(l.k, x, ws.k);
            linear(l.v, x, ws.v);
            for (int hd = 0; hd < w_.heads; ++hd) {
                auto qh = ws.q.topRows(n).middleCols(hd * dh, dh), kh = ws.k.topRows(n).middleCols(hd * dh, dh),
                     vh = ws.v.topRows(n).middleCols(hd * dh, dh);
                scores.noalias() = qh * kh.transpose();
                scores *= scale;
                for (int r = 0; r < n; ++r) {
                    auto row = scores.row(r);
                    row.array() = (row.array() - row.maxCoeff()).exp();
                    row /= row.sum();
                }
                attn.middleCols(hd * dh, dh).noalias() = scores * vh;
            }
            linear(l.out, attn, ws.tmp);
            x += ws.tmp.topRows(n);
            layer_norm(x, l.attn_norm, w_.eps);
            linear(l.up, x, ws.ffn);
            auto f = ws.ffn.topRows(n);
            f = f.unaryExpr([](float z) { return 0.5f * z * (1.0f + std::erf(z * float(M_SQRT1_2))); });
            linear(l.down, f, ws.tmp);
            x += ws.tmp.topRows(n);
            layer_norm(x, l.out_norm, w_.eps);
        }
    }

private:
    void forward(const std::vector<int32_t> &ids, const std::vector<int32_t> &types, Workspace &ws, float *out) const {
        hidden_states(ids, types, ws);
        auto x = ws.x.topRows(Eigen::Index(ids.size()));
        Eigen::Map<Vector> o(out, w_.hidden);
        o = mean_ ? Vector(x.colwise().mean()) : Vector(x.row(0));
        if (normalize_) {
            float n = o.norm();
            if (n > 0) o /= n;
        }
    }

    BertWeights w_;
    WordPiece tokenizer_;
    WordPieceCounter counter_;
    bool mean_, normalize_;
    std::string identity_;
    size_t max_tokens_;
};

// BERT with BertForSequenceClassification's head: tanh(pooler(CLS state)), then a linear layer to
// one logit. Query and passage go in as a pair ([CLS] q [SEP] p [SEP], token types 0 then 1).
class BertReranker final : public Reranker {
public:
    BertReranker(std::unique_ptr<BertEncoder> encoder, WordPiece tok, Linear pooler, Linear classifier, std::string identity)
        : encoder_(std::move(encoder)), tokenizer_(std::move(tok)), pooler_(std::move(pooler)), classifier_(std::move(classifier)),
          identity_(std::move(identity)) {}

    std::string identity() const override { return identity_; }

    std::vector<float> score(const std::string &query, const std::vector<std::string> &passages) const override {
        std::vector<float> out(passages.size());
        std::atomic<size_t> next{0};
        auto work = [&](int, int) {  // as BertEncoder::embed: passages over the compute pool
            std::optional<BertEncoder::Workspace> ws;
            for (size_t i; (i = next++) < passages.size();) {
                if (!ws) ws.emplace(encoder_->max_tokens(), encoder_->dim(), encoder_->ffn_size());
                auto enc = tokenizer_.encode_for_model(query, passages[i], encoder_->max_tokens());
                encoder_->hidden_states(enc.ids, enc.type_ids, *ws);
                Vector cls = ws->x.row(0);
                Vector pooled = (cls * pooler_.w.transpose() + pooler_.b).array().tanh();
                out[i] = (pooled * classifier_.w.transpose() + classifier_.b)(0);
            }
        };
        if (passages.size() > 1) compute_pool().run(work);
        else work(0, 1);
        return out;
    }

private:
    std::unique_ptr<BertEncoder> encoder_;
    WordPiece tokenizer_;
    Linear pooler_, classifier_;
    std::string identity_;
};

std::string hash_hex(const void *data, size_t bytes) {
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(XXH3_64bits(data, bytes)));
    return hex;
}


}  // namespace

std::unique_ptr<Embedder> load_bert_gguf(const std::string &path) {
    Gguf g(path);
    std::string arch = g.get_string("general.architecture");
    if (arch != "bert")
        throw ModelError(path + ": architecture '" + arch + "' is not an encoder saem runs (bert)");
    BertWeights w;
    w.hidden = size_field(g, "bert.embedding_length", 1, 1 << 16);
    w.layers = size_field(g, "bert.block_count", 0, 1000);
    w.heads = size_field(g, "bert.attention.head_count", 1, 1 << 16);
    w.ffn = size_field(g, "bert.feed_forward_length", 1, 1 << 20);
    w.positions = size_field(g, "bert.context_length", 3, 1 << 20);
    w.eps = float(g.get_number("bert.attention.layer_norm_epsilon", 1e-12));
    check_bert_sizes(path, w);
    int pooling = g.find("bert.pooling_type") ? size_field(g, "bert.pooling_type", 0, 10) : 1;
    if (pooling != 1 && pooling != 2) throw ModelError(path + ": bert.pooling_type " + std::to_string(pooling) + " (saem: 1 mean, 2 cls)");
    WordPiece tok = WordPiece::from_gguf(g);
    const int64_t H = w.hidden, I = w.ffn, V = int64_t(tok.vocab_size());
    w.word = to_matrix(g.tensor("token_embd.weight", {V, H}));
    w.position = to_matrix(g.tensor("position_embd.weight", {w.positions, H}));
    w.type = to_matrix(g.tensor("token_types.weight", {-1, H}));
    if (w.type.rows() < 1) throw ModelError(path + ": token_types.weight has no rows");
    w.embed_norm = {to_vector(g.tensor("token_embd_norm.weight", {H})), to_vector(g.tensor("token_embd_norm.bias", {H}))};
    for (int i = 0; i < w.layers; ++i) {
        std::string b = "blk." + std::to_string(i) + ".";
        auto lin = [&](const std::string &name, int64_t out, int64_t in) {
            return Linear{to_matrix(g.tensor(b + name + ".weight", {out, in})), to_vector(g.tensor(b + name + ".bias", {out}))};
        };
        auto norm = [&](const std::string &name) {
            return Norm{to_vector(g.tensor(b + name + ".weight", {H})), to_vector(g.tensor(b + name + ".bias", {H}))};
        };
        w.blocks.push_back({lin("attn_q", H, H), lin("attn_k", H, H), lin("attn_v", H, H), lin("attn_output", H, H),
                            lin("ffn_up", I, H), lin("ffn_down", H, I), norm("attn_output_norm"), norm("layer_output_norm")});
    }
    const Tensor &emb = g.tensor("token_embd.weight", {V, H});
    std::string name = g.find("general.name") ? g.get_string("general.name") : fs::path(path).stem().string();
    std::string identity = "bert:" + name + ":" + hash_hex(emb.data, emb.bytes) + ":" + std::to_string(H) +
                           (pooling == 1 ? ":mean" : ":cls") + ":l2";
    // llama.cpp leaves normalisation to the caller; saem compares by inner product, so it normalises.
    size_t max_tokens = size_t(w.positions);
    return std::make_unique<BertEncoder>(std::move(w), std::move(tok), pooling == 1, true, identity, max_tokens);
}

namespace {
struct FolderModel {
    std::unique_ptr<BertEncoder> encoder;
    std::unique_ptr<SafeTensors> weights;
    std::string prefix;  // "bert." in task checkpoints
    int64_t type_rows = 0;  // token type embeddings: a pair (query, passage) needs 2
};
FolderModel load_folder(const std::string &folder);
}  // namespace

std::unique_ptr<Embedder> load_bert_folder(const std::string &folder) { return std::move(load_folder(folder).encoder); }

std::unique_ptr<Reranker> load_reranker(const std::string &path) {
    return with_model_errors(path, [&]() -> std::unique_ptr<Reranker> {
        if (!fs::is_directory(path)) throw ModelError(path + ": a reranker is a Hugging Face model folder (BertForSequenceClassification)");
        auto config = read_json(fs::path(path) / "config.json");
        bool classifier = false;
        if (config.is_object())
            for (const auto &a : config.value("architectures", nlohmann::json::array()))
                classifier |= a.is_string() && a.get<std::string>().find("ForSequenceClassification") != std::string::npos;
        if (!classifier) throw ModelError(path + ": not a cross-encoder (config.json architectures lacks BertForSequenceClassification)");
        FolderModel m = load_folder(path);
        if (m.type_rows < 2) throw ModelError(path + ": a cross-encoder needs 2 token types (query, passage); it has " + std::to_string(m.type_rows));
        const int64_t H = m.encoder->dim();
        auto lin = [&](const std::string &name, int64_t out, int64_t in) {
            return Linear{to_matrix(m.weights->get(name + ".weight", {out, in})), to_vector(m.weights->get(name + ".bias", {out}))};
        };
        Linear pooler = lin(m.prefix + "pooler.dense", H, H);
        Linear head = lin("classifier", 1, H);  // one label: a relevance logit
        WordPiece tok = WordPiece::load(path);
        std::string identity = "cross-encoder:" + fs::path(path).filename().string() + ":" + m.encoder->identity();
        return std::make_unique<BertReranker>(std::move(m.encoder), std::move(tok), std::move(pooler), std::move(head), identity);
    });
}

namespace {
FolderModel load_folder(const std::string &folder) {
    fs::path dir(folder);
    auto config = read_json(dir / "config.json");
    if (!config.is_object()) throw ModelError(folder + ": no config.json");
    std::string act = config.value("hidden_act", "gelu");
    if (act != "gelu") throw ModelError(folder + ": hidden_act '" + act + "' is not supported (gelu)");
    if (config.value("position_embedding_type", "absolute") != "absolute")
        throw ModelError(folder + ": only absolute position embeddings are supported");
    fs::path weights = dir / "model.safetensors";
    if (!fs::exists(weights)) throw ModelError(folder + ": no model.safetensors (saem reads safetensors, not pytorch_model.bin)");
    auto owned = std::make_unique<SafeTensors>(weights.string());
    SafeTensors &st = *owned;
    BertWeights w;
    // Wide bounds here (config.json's own words); check_bert_sizes says what a BERT may have.
    const std::string where = folder + "/config.json";
    auto size = [&](const char *key, int64_t fallback) { return int(json_int(config, key, fallback, -(1 << 30), 1 << 30, where)); };
    w.hidden = size("hidden_size", 0);
    w.layers = size("num_hidden_layers", 0);
    w.heads = size("num_attention_heads", 0);
    w.ffn = size("intermediate_size", 0);
    w.positions = size("max_position_embeddings", 512);
    w.eps = config.value("layer_norm_eps", 1e-12f);
    check_bert_sizes(where, w);
    WordPiece tok = WordPiece::load(folder);
    if (tok.cls_id() < 0 || tok.sep_id() < 0) throw ModelError(folder + ": the vocabulary lacks [CLS] or [SEP], which every input holds");
    const int64_t H = w.hidden, I = w.ffn, V = json_int(config, "vocab_size", int64_t(tok.vocab_size()), 1, int64_t(1) << 24, where);
    if (V < int64_t(tok.vocab_size()))
        throw ModelError(folder + ": vocab_size " + std::to_string(V) + " is smaller than the tokenizer's " +
                         std::to_string(tok.vocab_size()) + " tokens");
    std::string p = st.find("bert.embeddings.word_embeddings.weight") ? "bert." : "";
    w.word = to_matrix(st.get(p + "embeddings.word_embeddings.weight", {V, H}));
    w.position = to_matrix(st.get(p + "embeddings.position_embeddings.weight", {w.positions, H}));
    w.type = to_matrix(st.get(p + "embeddings.token_type_embeddings.weight", {-1, H}));
    const int64_t type_rows = w.type.rows();
    if (type_rows < 1) throw ModelError(folder + ": token_type_embeddings has no rows");
    w.embed_norm = {to_vector(st.get(p + "embeddings.LayerNorm.weight", {H})), to_vector(st.get(p + "embeddings.LayerNorm.bias", {H}))};
    for (int i = 0; i < w.layers; ++i) {
        std::string b = p + "encoder.layer." + std::to_string(i) + ".";
        auto lin = [&](const std::string &name, int64_t out, int64_t in) {
            return Linear{to_matrix(st.get(b + name + ".weight", {out, in})), to_vector(st.get(b + name + ".bias", {out}))};
        };
        auto norm = [&](const std::string &name) {
            return Norm{to_vector(st.get(b + name + ".weight", {H})), to_vector(st.get(b + name + ".bias", {H}))};
        };
        w.blocks.push_back({lin("attention.self.query", H, H), lin("attention.self.key", H, H), lin("attention.self.value", H, H),
                            lin("attention.output.dense", H, H), lin("intermediate.dense", I, H), lin("output.dense", H, I),
                            norm("attention.output.LayerNorm"), norm("output.LayerNorm")});
    }
    bool mean = true, normalize = false;
    if (auto pool = read_json(dir / "1_Pooling" / "config.json"); pool.is_object()) {
        if (pool.value("pooling_mode_cls_token", false)) mean = false;
        else if (!pool.value("pooling_mode_mean_tokens", true))
            throw ModelError(folder + ": 1_Pooling/config.json asks for a pooling saem lacks (mean or cls)");
    }
    if (auto modules = read_json(dir / "modules.json"); modules.is_array())
        for (const auto &m : modules) normalize |= m.value("type", "").find("Normalize") != std::string::npos;
    const Tensor &emb = st.get(p + "embeddings.word_embeddings.weight", {V, H});
    std::string identity = "bert:" + dir.filename().string() + ":" + hash_hex(emb.data, emb.bytes) + ":" + std::to_string(H) +
                           (mean ? ":mean" : ":cls") + (normalize ? ":l2" : "");
    size_t max_tokens = size_t(w.positions);
    if (auto sb = read_json(dir / "sentence_bert_config.json"); sb.is_object())  // sentence-transformers' max_seq_length
        max_tokens = std::min(max_tokens, size_t(json_int(sb, "max_seq_length", int64_t(max_tokens), 3, 1 << 30,
                                                          (dir / "sentence_bert_config.json").string())));
    FolderModel m;
    m.type_rows = type_rows;
    m.encoder = std::make_unique<BertEncoder>(std::move(w), std::move(tok), mean, normalize, identity, max_tokens);
    m.weights = std::move(owned);
    m.prefix = p;
    return m;
}
}  // namespace

}  // namespace saem::nn
