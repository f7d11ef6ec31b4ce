// saem's side of bench/run-decoder: prompt processing (one pass over a 512-token prompt) and
// generation (128 tokens, one forward pass each, greedy) tokens per second on a GGUF, as llama.cpp's
// llama-bench measures pp512 / tg128. Best of three runs; the model is loaded and warmed first.
//   saem-bench-decoder MODEL.gguf [THREADS]
#include "nn/decoder.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

int main(int argc, char **argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: saem-bench-decoder MODEL.gguf [THREADS]\n");
        return 2;
    }
    saem::nn::DecoderOptions o;
    o.threads = argc > 2 ? std::stoi(argv[2]) : 2;
    o.context = 1024;  // capped at the model's own
    auto d = saem::nn::Decoder::load(argv[1], o);
    std::vector<int32_t> prompt(512);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(3 + (i * 7919) % 500);
    using clock = std::chrono::steady_clock;
    auto seconds = [](clock::time_point a) { return std::chrono::duration<double>(clock::now() - a).count(); };
    d->eval(prompt.data(), 16);  // page the weights in
    double pp = 0, tg = 0;
    for (int run = 0; run < 3; ++run) {
        d->truncate(0);
        auto t0 = clock::now();
        const float *logits = d->eval(prompt.data(), prompt.size());
        pp = std::max(pp, double(prompt.size()) / seconds(t0));
        d->truncate(0);
        logits = d->eval(prompt.data(), 1);
        auto t1 = clock::now();
        for (int i = 0; i < 128; ++i) {
            int32_t next = int32_t(std::max_element(logits, logits + d->vocab_size()) - logits);
            logits = d->eval(&next, 1);
        }
        tg = std::max(tg, 128.0 / seconds(t1));
    }
    std::printf("{\"pp512\": %.2f, \"tg128\": %.2f, \"threads\": %d, \"describe\": \"%s\"}\n", pp, tg, o.threads, d->describe().c_str());
    return 0;
}
