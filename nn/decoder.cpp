// The decoder forward pass shared by the llama-family architectures: embedding lookup, per layer
// RMSNorm -> q/k/v -> RoPE -> causal attention over the f16 cache -> output projection -> residual
// -> RMSNorm -> SwiGLU feed-forward -> residual, then the final norm and the vocabulary projection of
// the positions whose logits are asked for (the last, to continue a text; many, to score one).
// Numerics follow llama.cpp's CPU path where it rounds: activations quantised to the weight's
// partner format, queries and attention probabilities rounded to f16 against the f16 cache, RoPE
// angles built by repeated multiplication.
#include "nn/decoder.h"

#include "nn/kernels.h"
#include "nn/thread_pool.h"
#include "nn/transformer.h"
#include "nn/weights.h"

#include <algorithm>
#include <optional>
#include <cmath>
#include <cstring>

namespace saem::nn {

// ---- reading ---------------------------------------------------------------------------------

std::vector<float> read_floats(const Gguf &g, const std::string &name, int64_t n) {
    const Tensor &t = g.tensor(name, {n});
    std::vector<float> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out[size_t(i)] = element(t, i);
    return out;
}

void read_common_hparams(const Gguf &g, const std::string &p, DecoderHparams &hp) {
    // A count in 1..1e9 before it becomes an int (a double outside int's range converts with
    // undefined behaviour); fallback when the key is optional and absent.
    auto count = [&](const std::string &key, std::optional<int> fallback = std::nullopt) {
        double v = fallback && !g.find(p + "." + key) ? *fallback : g.get_number(p + "." + key);
        if (!(v >= 1 && v <= 1e9)) throw ModelError(g.path() + ": " + p + "." + key + " is " + std::to_string(v));
        return int(v);
    };
    hp.n_embd = count("embedding_length");
    hp.n_layer = count("block_count");
    hp.n_ff = count("feed_forward_length");
    hp.n_head = count("attention.head_count");
    hp.n_head_kv = count("attention.head_count_kv", hp.n_head);
    hp.n_ctx_train = count("context_length");
    hp.head_dim = count("attention.key_length", std::max(1, hp.n_embd / hp.n_head));
    hp.n_rot = count("rope.dimension_count", hp.head_dim);
    hp.rms_eps = float(g.get_number(p + ".attention.layer_norm_rms_epsilon", 1e-5));
    hp.rope_base = float(g.get_number(p + ".rope.freq_base", 10000.0));
    if (const auto *type = g.find(p + ".rope.scaling.type"); type && type->text == "linear") {
        double factor = g.get_number(p + ".rope.scaling.factor", 1.0);
        if (factor > 0) hp.rope_freq_scale = float(1.0 / factor);
    } else if (type && !type->text.empty() && type->text != "none" && type->text != "llama3") {
        throw ModelError(g.path() + ": rope scaling '" + type->text + "' is not supported (none, linear, llama3)");
    }
    if (hp.n_head_kv < 1 || hp.n_head % hp.n_head_kv)
        throw ModelError(g.path() + ": " + std::to_string(hp.n_head) + " query heads cannot share " +
                         std::to_string(hp.n_head_kv) + " key/value heads");
    if (count("attention.value_length", hp.head_dim) != hp.head_dim)
        throw ModelError(g.path() + ": key and value head sizes differ; saem does not run such models");
    if (hp.head_dim < 1 || hp.head_dim > 512)  // attention keeps a head's query on the stack
        throw ModelError(g.path() + ": heads of " + std::to_string(hp.head_dim) + " dimensions are not supported (at most 512)");
    if (hp.n_rot > hp.head_dim || hp.n_rot % 2) throw ModelError(g.path() + ": rope.dimension_count " + std::to_string(hp.n_rot) + " does not fit the head");
}

void read_common_tensors(const Gguf &g, DecoderWeights &w) {
    auto &hp = w.hp;
    const Tensor *embd = g.find_tensor("token_embd.weight");
    if (!embd) throw ModelError(g.path() + ": no tensor token_embd.weight");
    if (embd->shape.size() != 2 || embd->shape[1] != hp.n_embd)
        throw ModelError(g.path() + ": token_embd.weight is not [vocab, " + std::to_string(hp.n_embd) + "]");
    hp.n_vocab = int(embd->shape[0]);
    w.tok_embd = embd;
    w.output_norm = read_floats(g, "output_norm.weight", hp.n_embd);
    w.output = g.find_tensor("output.weight") ? &g.tensor("output.weight", {hp.n_vocab, hp.n_embd}) : embd;
    const int64_t q_dim = int64_t(hp.n_head) * hp.head_dim, kv_dim = int64_t(hp.n_head_kv) * hp.head_dim;
    // Each block has nine tensors: a block count the file cannot hold is refused before it sizes
    // anything (a hostile 1e9 would allocate before the first missing tensor is noticed).
    if (int64_t(hp.n_layer) * 9 > int64_t(g.tensors().size()))
        throw ModelError(g.path() + ": " + std::to_string(hp.n_layer) + " blocks declared but the file holds only " +
                         std::to_string(g.tensors().size()) + " tensors");
    w.layers.resize(size_t(hp.n_layer));
    for (int l = 0; l < hp.n_layer; ++l) {
        auto &L = w.layers[size_t(l)];
        std::string p = "blk." + std::to_string(l) + ".";
        L.attn_norm = read_floats(g, p + "attn_norm.weight", hp.n_embd);
        L.ffn_norm = read_floats(g, p + "ffn_norm.weight", hp.n_embd);
        L.wq = &g.tensor(p + "attn_q.weight", {q_dim, hp.n_embd});
        L.wk = &g.tensor(p + "attn_k.weight", {kv_dim, hp.n_embd});
        L.wv = &g.tensor(p + "attn_v.weight", {kv_dim, hp.n_embd});
        L.wo = &g.tensor(p + "attn_output.weight", {hp.n_embd, q_dim});
        L.gate = &g.tensor(p + "ffn_gate.weight", {hp.n_ff, hp.n_embd});
        L.up = &g.tensor(p + "ffn_up.weight", {hp.n_ff, hp.n_embd});
        L.down = &g.tensor(p + "ffn_down.weight", {hp.n_embd, hp.n_ff});
    }
}

namespace {

float round_f16(float x) { return half_to_float(float_to_half(x)); }

// The compute pool, sized by options.threads when this load is the first to start it.
ThreadPool &pool_for(const DecoderOptions &options) {
    if (options.threads > 0 && !set_compute_threads(options.threads))
        throw std::invalid_argument(std::to_string(options.threads) + " threads asked for, but the compute pool already runs " +
                                    std::to_string(compute_threads()) + ": set the thread count before any model runs");
    return compute_pool();
}

class LlamaDecoder final : public Decoder {
public:
    LlamaDecoder(const std::string &path, const DecoderOptions &options)
        : gguf_(path), bpe_(Bpe::from_gguf(gguf_)), k_(kernels()), pool_(pool_for(options)) {
        std::string arch = gguf_.get_string("general.architecture");
        if (arch == "llama") read_llama(gguf_, w_);
        else if (arch == "qwen2") read_qwen2(gguf_, w_);
        else throw ModelError(path + ": architecture '" + arch + "' is not supported (saem runs llama and qwen2 decoders)");
        w_.hp.arch = arch;
        const auto &hp = w_.hp;
        if (size_t(hp.n_vocab) != bpe_.vocab_size())
            throw ModelError(path + ": the vocabulary has " + std::to_string(bpe_.vocab_size()) + " tokens but token_embd.weight " +
                             std::to_string(hp.n_vocab) + " rows");
        for (auto &L : w_.layers)
            for (const Tensor **t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down}) *t = runnable(**t);
        w_.output = runnable(*w_.output);
        ctx_ = options.context > 0 ? std::min(options.context, hp.n_ctx_train) : hp.n_ctx_train;
        batch_ = std::max(1, options.batch);
        kv_dim_ = hp.n_head_kv * hp.head_dim;
        k_cache_.assign(size_t(hp.n_layer), std::vector<uint16_t>(size_t(ctx_) * size_t(kv_dim_)));
        v_cache_.assign(size_t(hp.n_layer), std::vector<uint16_t>(size_t(ctx_) * size_t(kv_dim_)));
        scores_.assign(size_t(pool_.size()), std::vector<float>(size_t(ctx_)));
        // Angles of the first rotation step, as ggml derives them: base^(-2/n_rot) multiplied up.
        theta_scale_ = std::pow(hp.rope_base, -2.0f / float(hp.n_rot));
    }

    const Bpe &tokenizer() const override { return bpe_; }
    std::string architecture() const override { return w_.hp.arch; }
    int vocab_size() const override { return w_.hp.n_vocab; }
    int context_length() const override { return ctx_; }
    int n_past() const override { return n_past_; }
    void truncate(int n) override { n_past_ = std::clamp(n, 0, n_past_); }

    std::string describe() const override {
        const auto &hp = w_.hp;
        std::string types;
        auto note = [&](const Tensor *t) {
            std::string name = dtype_name(t->type);
            if (types.find(name) == std::string::npos) types += (types.empty() ? "" : "+") + name;
        };
        for (const auto &L : w_.layers)
            for (const Tensor *t : {L.wq, L.wk, L.wv, L.wo, L.gate, L.up, L.down}) note(t);
        note(w_.output);
        return hp.arch + " " + std::to_string(hp.n_layer) + " layers, " + std::to_string(hp.n_embd) + " wide, " +
               std::to_string(hp.n_head) + "/" + std::to_string(hp.n_head_kv) + " heads, vocab " + std::to_string(hp.n_vocab) +
               ", " + types + ", " + bpe_.pre_name() + " tokenizer, context " + std::to_string(ctx_) + " of " + std::to_string(hp.n_ctx_train) + ", " +
               k_.isa + " kernels, " + std::to_string(pool_.size()) + " threads";
    }

    using Decoder::eval;
    const float *eval(const int32_t *tokens, size_t n, size_t outputs) override {
        if (n == 0) throw std::invalid_argument("eval needs at least one token");
        if (outputs < 1 || outputs > n) throw std::invalid_argument("eval can return the logits of 1 to " + std::to_string(n) + " tokens, not " + std::to_string(outputs));
        if (size_t(n_past_) + n > size_t(ctx_))
            throw ContextError(std::to_string(n_past_) + " cached + " + std::to_string(n) + " new tokens exceed the context of " +
                               std::to_string(ctx_) + " tokens");
        for (size_t i = 0; i < n; ++i)
            if (tokens[i] < 0 || tokens[i] >= w_.hp.n_vocab) throw std::invalid_argument("token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
        const size_t vocab = size_t(w_.hp.n_vocab), first_output = n - outputs;
        if (logits_.size() < outputs * vocab) logits_.resize(outputs * vocab);
        for (size_t done = 0; done < n; done += size_t(batch_)) {
            size_t m = std::min(n - done, size_t(batch_));
            // Rows of this batch from `from` on are outputs; they land at their place among the outputs.
            const size_t from = std::clamp(first_output, done, done + m) - done;
            float *out = from < m ? logits_.data() + (done + from - first_output) * vocab : nullptr;  // none in this batch
            forward(tokens + done, int(m), int(from), out);
        }
        return logits_.data();
    }

private:
    // A weight the kernels cannot read directly is dequantised once, here, to F32.
    const Tensor *runnable(const Tensor &t) {
        row_bytes(t.type, t.shape.back());  // rows must be whole blocks
        if (has_kernel(t.type)) return &t;
        auto &data = converted_data_.emplace_back(size_t(t.elements()));
        for (int64_t r = 0; r < t.shape[0]; ++r) dequantize_row(t, r, data.data() + r * t.shape[1]);
        auto &copy = converted_.emplace_back(std::make_unique<Tensor>(t));
        copy->type = DType::F32;
        copy->data = reinterpret_cast<const uint8_t *>(data.data());
        copy->bytes = data.size() * 4;
        return copy.get();
    }

    // Rows [0, n) of element-wise work: over the threads for a prompt batch, on this thread for a
    // single token (where waking the pool costs more than the work).
    template <class Fn>
    void rows(int n, Fn &&fn) {
        if (n < 4) {
            for (int i = 0; i < n; ++i) fn(i);
            return;
        }
        pool_.run([&](int ith, int nth) {
            for (int i = n * ith / nth; i < n * (ith + 1) / nth; ++i) fn(i);
        });
    }

    void rms_norm_row(const float *x, const std::vector<float> &weight, float *out) const {
        const int d = w_.hp.n_embd;
        double sum = 0;
        for (int i = 0; i < d; ++i) sum += double(x[i]) * double(x[i]);
        const float scale = 1.0f / std::sqrt(float(sum / d) + w_.hp.rms_eps);
        for (int i = 0; i < d; ++i) out[i] = x[i] * scale * weight[size_t(i)];
    }

    // cos and sin of every rotated pair at positions p0 .. p0 + n - 1. The angle of pair i is
    // pos * base^(-2i/n_rot), built by repeated multiplication as ggml builds it.
    void set_angles(int p0, int n) {
        const auto &hp = w_.hp;
        const int half = hp.n_rot / 2;
        cos_.resize(size_t(n) * half);
        sin_.resize(size_t(n) * half);
        for (int t = 0; t < n; ++t) {
            float theta = float(p0 + t);
            for (int i = 0; i < half; ++i) {
                const float ff = w_.rope_freq_factors.empty() ? 1.0f : w_.rope_freq_factors[size_t(i)];
                const float angle = hp.rope_freq_scale * (theta / ff);
                cos_[size_t(t) * half + i] = std::cos(angle);
                sin_[size_t(t) * half + i] = std::sin(angle);
                theta *= theta_scale_;
            }
        }
    }

    void rope(float *x, int heads, int t) const {
        const auto &hp = w_.hp;
        const int half = hp.n_rot / 2;
        const float *c = cos_.data() + size_t(t) * half, *s = sin_.data() + size_t(t) * half;
        for (int h = 0; h < heads; ++h) {
            float *v = x + size_t(h) * size_t(hp.head_dim);
            for (int i = 0; i < half; ++i) {
                const int a = hp.rope_neox ? i : 2 * i, b = hp.rope_neox ? i + half : 2 * i + 1;
                const float x0 = v[a], x1 = v[b];
                v[a] = x0 * c[i] - x1 * s[i];
                v[b] = x0 * s[i] + x1 * c[i];
            }
        }
    }

    // Rows [first_output, n) of this batch leave their logits at `logits`, row after row (none when
    // first_output == n).
    void forward(const int32_t *tokens, int n, int first_output, float *logits) {
        const auto &hp = w_.hp;
        const int d = hp.n_embd, hd = hp.head_dim, q_dim = hp.n_head * hd, group = hp.n_head / hp.n_head_kv;
        const size_t ff = size_t(hp.n_ff);
        auto grow = [&](std::vector<float> &v, size_t size) {
            if (v.size() < size) v.resize(size);
        };
        grow(x_, size_t(n) * d);
        grow(xn_, size_t(n) * d);
        grow(q_, size_t(n) * q_dim);
        grow(k_buf_, size_t(n) * kv_dim_);
        grow(v_buf_, size_t(n) * kv_dim_);
        grow(att_, size_t(n) * q_dim);
        grow(tmp_, size_t(n) * d);
        grow(gate_, size_t(n) * ff);
        grow(up_, size_t(n) * ff);
        const int p0 = n_past_;
        const float kq_scale = 1.0f / std::sqrt(float(hd));
        set_angles(p0, n);
        rows(n, [&](int i) {
            dequantize_row(*w_.tok_embd, tokens[i], x_.data() + size_t(i) * d);
            rms_norm_row(x_.data() + size_t(i) * d, w_.layers[0].attn_norm, xn_.data() + size_t(i) * d);
        });

        for (int l = 0; l < hp.n_layer; ++l) {
            const auto &L = w_.layers[size_t(l)];
            matmul(pool_, k_, {{L.wq, q_.data()}, {L.wk, k_buf_.data()}, {L.wv, v_buf_.data()}}, xn_.data(), n, act_);
            auto &kc = k_cache_[size_t(l)];
            auto &vc = v_cache_[size_t(l)];
            rows(n, [&](int i) {
                float *q = q_.data() + size_t(i) * q_dim, *k = k_buf_.data() + size_t(i) * kv_dim_, *v = v_buf_.data() + size_t(i) * kv_dim_;
                if (!L.bq.empty()) {
                    for (int j = 0; j < q_dim; ++j) q[j] += L.bq[size_t(j)];
                    for (int j = 0; j < kv_dim_; ++j) k[j] += L.bk[size_t(j)], v[j] += L.bv[size_t(j)];
                }
                rope(q, hp.n_head, i);
                rope(k, hp.n_head_kv, i);
                uint16_t *kd = kc.data() + size_t(p0 + i) * kv_dim_, *vd = vc.data() + size_t(p0 + i) * kv_dim_;
                for (int j = 0; j < kv_dim_; ++j) kd[j] = float_to_half(k[j]), vd[j] = float_to_half(v[j]);
            });
            pool_.run([&](int ith, int nth) {
                std::vector<float> &scores = scores_[size_t(ith)];
                uint16_t q16[512];
                for (int task = ith; task < n * hp.n_head; task += nth) {
                    const int i = task / hp.n_head, h = task % hp.n_head, kvh = h / group, last = p0 + i;
                    // The query meets the f16 cache as f16, as in llama.cpp.
                    const float *q = q_.data() + size_t(i) * q_dim + size_t(h) * hd;
                    for (int j = 0; j < hd; ++j) q16[j] = float_to_half(q[j]);
                    float max = -INFINITY;
                    for (int j = 0; j <= last; ++j) {
                        scores[size_t(j)] = k_.f16.dot(hd, kc.data() + size_t(j) * kv_dim_ + size_t(kvh) * hd, q16) * kq_scale;
                        max = std::max(max, scores[size_t(j)]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= last; ++j) sum += (scores[size_t(j)] = std::exp(scores[size_t(j)] - max));
                    const float inv = float(1.0 / sum);
                    float *out = att_.data() + size_t(i) * q_dim + size_t(h) * hd;
                    std::fill(out, out + hd, 0.0f);
                    for (int j = 0; j <= last; ++j)
                        k_.axpy_f16(hd, round_f16(scores[size_t(j)] * inv), vc.data() + size_t(j) * kv_dim_ + size_t(kvh) * hd, out);
                }
            });
            matmul(pool_, k_, {{L.wo, tmp_.data()}}, att_.data(), n, act_);
            rows(n, [&](int i) {
                float *x = x_.data() + size_t(i) * d;
                const float *o = tmp_.data() + size_t(i) * d;
                for (int j = 0; j < d; ++j) x[j] += o[j];
                rms_norm_row(x, L.ffn_norm, xn_.data() + size_t(i) * d);
            });
            matmul(pool_, k_, {{L.gate, gate_.data()}, {L.up, up_.data()}}, xn_.data(), n, act_);
            rows(n, [&](int i) {
                float *g = gate_.data() + size_t(i) * ff;
                const float *u = up_.data() + size_t(i) * ff;
                for (size_t j = 0; j < ff; ++j) g[j] = g[j] / (1.0f + std::exp(-g[j])) * u[j];
            });
            matmul(pool_, k_, {{L.down, tmp_.data()}}, gate_.data(), n, act_);
            const std::vector<float> &next_norm = l + 1 < hp.n_layer ? w_.layers[size_t(l + 1)].attn_norm : w_.output_norm;
            rows(n, [&](int i) {
                float *x = x_.data() + size_t(i) * d;
                const float *o = tmp_.data() + size_t(i) * d;
                for (int j = 0; j < d; ++j) x[j] += o[j];
                // The next layer's input norm, or after the last layer the output norm of the rows
                // whose logits are wanted.
                if (l + 1 < hp.n_layer || i >= first_output) rms_norm_row(x, next_norm, xn_.data() + size_t(i) * d);
            });
        }
        n_past_ += n;
        if (first_output < n) matmul(pool_, k_, {{w_.output, logits}}, xn_.data() + size_t(first_output) * d, n - first_output, act_);
    }

    Gguf gguf_;
    Bpe bpe_;
    DecoderWeights w_;
    const KernelSet &k_;
    ThreadPool &pool_;  // compute_pool(): shared with every model in the process
    std::vector<std::unique_ptr<Tensor>> converted_;
    std::vector<std::vector<float>> converted_data_;
    int ctx_ = 0, batch_ = 512, kv_dim_ = 0, n_past_ = 0;
    float theta_scale_ = 1;
    std::vector<std::vector<uint16_t>> k_cache_, v_cache_;
    std::vector<std::vector<float>> scores_;
    std::vector<float> x_, xn_, q_, k_buf_, v_buf_, att_, tmp_, gate_, up_, logits_, cos_, sin_;
    std::vector<uint8_t> act_;
};

}  // namespace

std::unique_ptr<Decoder> Decoder::load(const std::string &path, const DecoderOptions &options) {
    return std::make_unique<LlamaDecoder>(path, options);
}

}  // namespace saem::nn
