// The generation loop: prompt in one batched pass, then one token at a time, sampled as llama.cpp's
// default chain does (repetition penalty, top-k, top-p, min-p, temperature, draw), with text
// released to the caller as soon as no stop string can still begin in it.
#include "generator/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>

namespace saem {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

class Sampler {
public:
    explicit Sampler(const SamplingOptions &o) : o_(o), rng_(o.seed ? o.seed : std::random_device{}()) {}

    int32_t sample(const float *logits, int vocab, const std::vector<int32_t> &history) {
        if (o_.greedy || o_.temperature <= 0) return int32_t(std::max_element(logits, logits + vocab) - logits);
        cand_.clear();
        for (int i = 0; i < vocab; ++i) cand_.push_back({i, logits[i]});
        if (o_.repeat_penalty != 1.0f && o_.repeat_last_n > 0) {
            size_t from = history.size() > size_t(o_.repeat_last_n) ? history.size() - size_t(o_.repeat_last_n) : 0;
            seen_.assign(size_t(vocab), false);
            for (size_t i = from; i < history.size(); ++i) seen_[size_t(history[i])] = true;
            for (auto &c : cand_)
                if (seen_[size_t(c.id)]) c.logit = c.logit > 0 ? c.logit / o_.repeat_penalty : c.logit * o_.repeat_penalty;
        }
        auto by_logit = [](const Cand &a, const Cand &b) { return a.logit > b.logit; };
        size_t keep = o_.top_k > 0 ? std::min(cand_.size(), size_t(o_.top_k)) : cand_.size();
        std::partial_sort(cand_.begin(), cand_.begin() + long(keep), cand_.end(), by_logit);
        cand_.resize(keep);
        softmax(1.0f);
        if (o_.top_p < 1.0f) {
            double sum = 0;
            size_t n = 0;
            while (n < cand_.size() && sum < o_.top_p) sum += cand_[n++].p;
            cand_.resize(std::max<size_t>(1, n));
        }
        if (o_.min_p > 0) {
            const float floor = cand_[0].p * o_.min_p;
            size_t n = 1;
            while (n < cand_.size() && cand_[n].p >= floor) ++n;
            cand_.resize(n);
        }
        softmax(o_.temperature);
        std::uniform_real_distribution<double> u(0, 1);
        double r = u(rng_), acc = 0;
        for (const auto &c : cand_)
            if ((acc += c.p) >= r) return c.id;
        return cand_.back().id;
    }

private:
    struct Cand {
        int32_t id;
        float logit, p = 0;
    };
    void softmax(float temperature) {
        const float max = cand_[0].logit;
        double sum = 0;
        for (auto &c : cand_) sum += (c.p = std::exp((c.logit - max) / temperature));
        for (auto &c : cand_) c.p = float(c.p / sum);
    }
    SamplingOptions o_;
    std::mt19937_64 rng_;
    std::vector<Cand> cand_;
    std::vector<bool> seen_;
};

// Bytes at the end of s that start a UTF-8 character not yet complete.
size_t incomplete_tail(const std::string &s) {
    for (size_t back = 1; back <= std::min<size_t>(3, s.size()); ++back) {
        unsigned char c = uint8_t(s[s.size() - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
        size_t need = nn::utf8_length(c);
        return need > back ? back : 0;
    }
    return 0;
}

}  // namespace

double Generation::generation_tokens_per_second() const {
    // The first generated token comes out of the prompt pass; every later one is a timed step. An
    // end token was sampled but is not in tokens.
    size_t steps = tokens.size() + (stop_reason == "end" ? 1 : 0);
    return generation_seconds > 0 && steps > 1 ? double(steps - 1) / generation_seconds : 0;
}

std::vector<int32_t> raw_prompt(const nn::Bpe &bpe, std::string_view text) {
    std::vector<int32_t> ids;
    if (bpe.add_bos() && bpe.bos_id() >= 0) ids.push_back(bpe.bos_id());
    auto body = bpe.encode(text);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
}

Generation generate(nn::Decoder &decoder, const std::vector<int32_t> &prompt, const GenerateOptions &options,
                    const TextSink &on_text, const StepSink &on_step) {
    if (prompt.empty()) throw std::invalid_argument("the prompt has no tokens");
    const nn::Bpe &bpe = decoder.tokenizer();
    const int vocab = decoder.vocab_size();
    if (int(prompt.size()) >= decoder.context_length())
        throw nn::ContextError("the prompt is " + std::to_string(prompt.size()) + " tokens; the context holds " +
                               std::to_string(decoder.context_length()) + " (use a shorter prompt or a larger --context)");
    Generation g;
    g.prompt_tokens = int(prompt.size());
    auto cancelled = [&] { return options.cancel && options.cancel->load(std::memory_order_relaxed); };
    if (cancelled()) {
        g.stop_reason = "cancelled";
        return g;
    }
    decoder.truncate(0);
    auto t0 = Clock::now();
    const float *logits = decoder.eval(prompt.data(), prompt.size());
    g.prompt_seconds = seconds_since(t0);
    auto t1 = Clock::now();

    Sampler sampler(options.sampling);
    std::vector<int32_t> history(prompt);
    size_t longest_stop = 0;
    for (const auto &s : options.stop) longest_stop = std::max(longest_stop, s.size());
    std::string text;
    size_t emitted = 0;
    auto emit = [&](size_t upto) {
        if (upto <= emitted) return true;
        bool go = !on_text || on_text(std::string_view(text).substr(emitted, upto - emitted));
        emitted = upto;
        return go;
    };
    g.stop_reason = "length";
    for (int step = 0; step < options.max_tokens; ++step) {
        if (cancelled()) {
            g.stop_reason = "cancelled";
            break;
        }
        int32_t token = sampler.sample(logits, vocab, history);
        if (on_step) on_step(token, logits);
        if (bpe.ends_generation(token)) {
            g.stop_reason = "end";
            break;
        }
        g.tokens.push_back(token);
        history.push_back(token);
        std::string piece = bpe.piece(token);
        size_t before = text.size();
        text += piece;
        if (!options.stop.empty()) {
            size_t search_from = before > longest_stop ? before - longest_stop : 0;
            size_t hit = std::string::npos;
            for (const auto &s : options.stop) {
                if (s.empty()) continue;
                size_t at = text.find(s, search_from);
                if (at != std::string::npos) hit = std::min(hit, at);
            }
            if (hit != std::string::npos) {
                text.resize(hit);
                g.stop_reason = "stop";
                break;
            }
        }
        size_t safe = text.size() - incomplete_tail(text);
        if (longest_stop > 1) safe = std::min(safe, text.size() > longest_stop - 1 ? text.size() - (longest_stop - 1) : 0);
        while (safe > emitted && safe < text.size() && (uint8_t(text[safe]) & 0xC0) == 0x80) --safe;
        if (!emit(safe)) {
            g.stop_reason = "cancelled";
            break;
        }
        if (step + 1 == options.max_tokens) break;
        if (decoder.n_past() + 1 > decoder.context_length()) {
            g.stop_reason = "length";
            break;
        }
        logits = decoder.eval(&token, 1);
    }
    if (g.stop_reason != "cancelled") emit(text.size());
    g.generation_seconds = seconds_since(t1);
    g.completion_tokens = int(g.tokens.size());
    g.text = std::move(text);
    return g;
}

}  // namespace saem
