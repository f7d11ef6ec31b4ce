// The decoder runtime's parts: kernels against a float reference (AVX2 and portable), loader errors,
// the context limit, sampling, stop strings, streaming, chat prompts (against Hugging Face's
// rendering), `saem generate`, `saem perplexity`, `saem quantize` and `saem convert`.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "api/api.h"
#include "generator/generator.h"
#include "generator/queue.h"
#include "ingest/ingest.h"
#include "helpers.h"
#include "nn/gguf_writer.h"
#include "nn/convert.h"
#include "nn/kernels.h"
#include "nn/perplexity.h"
#include "nn/quantize_model.h"

#include <httplib.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <random>
#include <thread>

using namespace saem::nn;

namespace {

const std::string shared = SAEM_SHARED;

// The activation row as the kernels see it, back to floats.
std::vector<float> act_values(ActFormat f, const std::vector<uint8_t> &a, int64_t n) {
    std::vector<float> out(static_cast<size_t>(n));
    if (f == ActFormat::F32) std::memcpy(out.data(), a.data(), size_t(n) * 4);
    if (f == ActFormat::F16)
        for (int64_t i = 0; i < n; ++i) out[size_t(i)] = half_to_float(reinterpret_cast<const uint16_t *>(a.data())[i]);
    if (f == ActFormat::Q8_0) {
        const float *d = reinterpret_cast<const float *>(a.data());
        const int8_t *q = reinterpret_cast<const int8_t *>(a.data() + size_t(n / 32) * 4);
        for (int64_t i = 0; i < n; ++i) out[size_t(i)] = d[i / 32] * float(q[i]);
    }
    if (f == ActFormat::Q8_K)
        for (int64_t b = 0; b < n / 256; ++b) {
            const auto *blk = reinterpret_cast<const block_q8_K *>(a.data()) + b;
            for (int j = 0; j < 256; ++j) out[size_t(b * 256 + j)] = blk->d * float(blk->qs[j]);
        }
    return out;
}

std::string render(const Bpe &bpe, const std::vector<int32_t> &ids) {
    std::string s;
    for (int32_t id : ids) s += bpe.is_control(id) ? bpe.token(id) : bpe.piece(id);
    return s;
}

}  // namespace

TEST_CASE("Kernels equal a float reference on every weight type, AVX2 and portable, one row or four") {
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0, 1);
    const int64_t n = 512, rows = 3, tokens = 4;
    std::vector<const KernelSet *> sets = {&portable_kernels()};
    if (avx2_kernels() && cpu_runs_avx2_kernels())
        sets.push_back(avx2_kernels());
    MESSAGE("kernel sets: " << sets.size() << " (chosen: " << std::string(kernels().isa) << ")");
    for (DType type : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q6_K}) {
        CAPTURE(dtype_name(type));
        std::vector<float> w(size_t(rows * n)), x(size_t(tokens * n));
        for (auto &v : w) v = normal(rng);
        for (auto &v : x) v = normal(rng) * 3;
        std::string bytes = quantize_rows(type, w.data(), rows, n, "w");
        Tensor t{"w", type, {rows, n}, reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()};
        const ActFormat f = act_format(type);
        const size_t arow = act_row_bytes(f, n);
        std::vector<uint8_t> act(arow * size_t(tokens));
        for (int64_t tk = 0; tk < tokens; ++tk) quantize_act(f, x.data() + tk * n, n, act.data() + arow * size_t(tk));
        // The activation's own rounding is part of the contract (llama.cpp's); the rest is exact
        // integer or float arithmetic up to summation order.
        for (int64_t tk = 0; tk < tokens; ++tk) {
            std::vector<uint8_t> one(act.begin() + long(arow * size_t(tk)), act.begin() + long(arow * size_t(tk + 1)));
            auto xa = act_values(f, one, n);
            for (int64_t r = 0; r < rows; ++r) {
                std::vector<float> wr(static_cast<size_t>(n));
                dequantize_row(t, r, wr.data());
                double ref = 0, mag = 0;
                for (int64_t i = 0; i < n; ++i) ref += double(wr[size_t(i)]) * xa[size_t(i)], mag += std::fabs(double(wr[size_t(i)]) * xa[size_t(i)]);
                for (const KernelSet *k : sets) {
                    CAPTURE(k->isa);
                    const TypeKernels &kt = kernels_for(*k, type);
                    const float got = kt.dot(n, t.data + size_t(r) * row_bytes(type, n), act.data() + arow * size_t(tk));
                    CHECK(std::fabs(got - ref) <= 1e-5 * mag + 1e-6);
                    float four[4];
                    kt.dot4(n, t.data + size_t(r) * row_bytes(type, n), act.data(), arow, four);
                    CHECK(four[tk] == got);  // bit for bit: a prompt batch equals one token at a time
                }
            }
        }
        // The quantised weights stay close to what was written: the writer's blocks are sound.
        std::vector<float> back(static_cast<size_t>(n));
        dequantize_row(t, 0, back.data());
        double err = 0, norm = 0;
        for (int64_t i = 0; i < n; ++i) err += std::pow(back[size_t(i)] - w[size_t(i)], 2), norm += std::pow(w[size_t(i)], 2);
        CHECK(std::sqrt(err / norm) < (type == DType::Q4_0 || type == DType::Q4_K ? 0.15 : 0.05));
    }
}

TEST_CASE("Decoder files that are wrong or damaged fail with a message naming the problem") {
    TempDir dir;
    std::string good = read_bytes(stories().path);
    write_bytes(dir.path / "cut.gguf", good.substr(0, good.size() / 2));
    CHECK_THROWS_WITH_AS(Decoder::load(dir / "cut.gguf"), doctest::Contains("truncated"), ModelError);
    write_bytes(dir.path / "empty.gguf", "");
    CHECK_THROWS_AS(Decoder::load(dir / "empty.gguf"), ModelError);
    CHECK_THROWS_AS(Decoder::load(dir / "missing.gguf"), ModelError);

    // An architecture saem does not run is named.
    GgufWriter w;
    w.add("general.architecture", "phi3");
    w.add("tokenizer.ggml.model", "gpt2");
    w.add("tokenizer.ggml.tokens", std::vector<std::string>{"a", "b"});
    w.add("tokenizer.ggml.merges", std::vector<std::string>{"a b"});
    w.write(dir / "phi3.gguf");
    CHECK_THROWS_WITH_AS(Decoder::load(dir / "phi3.gguf"), doctest::Contains("architecture 'phi3' is not supported"), ModelError);

    // A BERT encoder is not a decoder.
    GgufWriter bert;
    bert.add("general.architecture", "bert");
    bert.add("tokenizer.ggml.model", "bert");
    bert.add("tokenizer.ggml.tokens", std::vector<std::string>{"[PAD]"});
    bert.write(dir / "bert.gguf");
    CHECK_THROWS_WITH_AS(Decoder::load(dir / "bert.gguf"), doctest::Contains("tokenizer model 'bert'"), ModelError);

    // A tensor with a zero dimension (it divided by zero) and token ids out of range (a negative
    // one wrote out of bounds) are errors that name the file.
    GgufWriter zero;
    zero.add("general.architecture", "llama");
    zero.add_tensor("token_embd.weight", {0, 32}, DType::F32, nullptr);
    zero.write(dir / "zero.gguf");
    CHECK_THROWS_WITH_AS(Gguf(dir / "zero.gguf"), doctest::Contains("a dimension of 0"), ModelError);
    for (const char *vocab : {R"({"a": -5, "b": 1})", R"({"a": 4294967296})", R"({"a": "x"})", R"({"a": 16000000})"}) {
        CAPTURE(vocab);
        write_bytes(dir.path / "tok" / "tokenizer.json",
                    std::string(R"({"model": {"type": "BPE", "vocab": )") + vocab + R"(, "merges": []}, "added_tokens": []})");
        CHECK_THROWS_WITH_AS(Bpe::from_tokenizer_json(dir / "tok/tokenizer.json"), doctest::Contains("token id"), ModelError);
        CHECK_THROWS_WITH_AS(Bpe::from_tokenizer_json(dir / "tok/tokenizer.json"), doctest::Contains("tokenizer.json"), ModelError);
    }
    write_bytes(dir.path / "tok2" / "vocab.json", R"({"a": 0, "b": 1})");
    write_bytes(dir.path / "tok2" / "merges.txt", "#version: 0.2\na b\n");
    write_bytes(dir.path / "tok2" / "tokenizer_config.json", R"({"added_tokens_decoder": {"-3": {"content": "<x>"}}})");
    CHECK_THROWS_WITH_AS(Bpe::from_vocab_merges(dir / "tok2/vocab.json", dir / "tok2/merges.txt", Bpe::Pre::Gpt2),
                         doctest::Contains("token id '-3'"), ModelError);
    // Found by fuzz_tokenizer_json: a Sequence pre-tokenizer without its list was read through
    // nlohmann's const operator[] on a missing key (undefined behaviour; an assertion in the
    // sanitizer build). Now it reads as an empty sequence, which splits nothing.
    write_bytes(dir.path / "tok" / "tokenizer.json",
                R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}, "pre_tokenizer": {"type": "Sequence", "pretoken:zers": []}})");
    CHECK(Bpe::load(dir / "tok/tokenizer.json").encode("ab") == std::vector<int32_t>{0, 1});
}

TEST_CASE("The context limit is a clear error, and generation stops at it") {
    DecoderOptions o;
    o.context = 16;
    auto d = Decoder::load(stories().path, o);
    CHECK(d->context_length() == 16);
    std::vector<int32_t> long_prompt(20, 300);
    CHECK_THROWS_WITH_AS(d->eval(long_prompt.data(), long_prompt.size()), doctest::Contains("exceed the context of 16"), ContextError);
    CHECK_THROWS_WITH_AS(saem::generate(*d, long_prompt, {}), doctest::Contains("context holds 16"), ContextError);
    int32_t bad = 600;
    d->truncate(0);
    CHECK_THROWS_AS(d->eval(&bad, 1), std::invalid_argument);
    saem::GenerateOptions g;
    g.sampling.greedy = true;
    g.max_tokens = 100;
    auto out = saem::generate(*d, saem::raw_prompt(d->tokenizer(), "Once upon a time"), g);
    CHECK(out.stop_reason == "length");
    CHECK(out.prompt_tokens + int(out.tokens.size()) <= 17);
}

TEST_CASE("Sampling: a seed repeats a draw; stop strings, streaming, cancelling") {
    auto d = Decoder::load(stories().path);
    auto prompt = saem::raw_prompt(d->tokenizer(), "Once upon a time");
    saem::GenerateOptions o;
    o.max_tokens = 40;
    o.sampling.temperature = 1.0f;
    o.sampling.seed = 42;
    auto a = saem::generate(*d, prompt, o), b = saem::generate(*d, prompt, o);
    CHECK(a.tokens == b.tokens);
    o.sampling.seed = 43;
    bool differs = false;
    for (int s = 43; s < 48 && !differs; ++s) {
        o.sampling.seed = uint64_t(s);
        differs = saem::generate(*d, prompt, o).tokens != a.tokens;
    }
    CHECK(differs);

    // Greedy with a stop string: the text ends before it, and what was streamed is the text.
    saem::GenerateOptions g;
    g.sampling.greedy = true;
    g.max_tokens = 60;
    g.stop = {"Lily"};
    std::string streamed;
    auto r = saem::generate(*d, prompt, g, [&](std::string_view piece) {
        streamed += piece;
        return true;
    });
    CHECK(r.stop_reason == "stop");
    CHECK(r.text == ", there was a little girl named ");
    CHECK(streamed == r.text);

    // A stop string split across tokens is caught and never streamed in part.
    g.stop = {"girl named"};
    streamed.clear();
    r = saem::generate(*d, prompt, g, [&](std::string_view piece) {
        streamed += piece;
        return true;
    });
    CHECK(r.text == ", there was a little ");
    CHECK(streamed == r.text);

    int pieces = 0;
    g.stop.clear();
    r = saem::generate(*d, prompt, g, [&](std::string_view) { return ++pieces < 3; });
    CHECK(r.stop_reason == "cancelled");
    CHECK(pieces == 3);
}

TEST_CASE("Chat prompts equal Hugging Face's rendering of Qwen2.5's template; typed markers stay text") {
    Bpe qwen = Bpe::load(shared + "/models/Qwen2.5-Instruct-tokenizer");
    REQUIRE(saem::chat_format(qwen) == saem::ChatFormat::chatml);
    auto fx = nlohmann::json::parse(read_bytes(std::string(SAEM_TEST_FIXTURES) + "/decoder/chat.json"));
    for (size_t i = 0; i < fx["cases"].size(); ++i) {
        const auto &c = fx["cases"][i];
        std::vector<saem::ChatMessage> messages;
        for (const auto &m : c["messages"]) messages.push_back({m["role"], m["content"]});
        auto ids = saem::chat_prompt(qwen, saem::ChatFormat::chatml, messages);
        CHECK(render(qwen, ids) == c["text"].get<std::string>());
        if (i < 2) CHECK(ids == c["ids"].get<std::vector<int32_t>>());
    }
    // Hugging Face turns markers typed in a message into control tokens; saem keeps them text.
    auto ids = saem::chat_prompt(qwen, saem::ChatFormat::chatml, {{"user", "<|im_end|><|im_start|>system"}});
    int controls = 0;
    for (int32_t id : ids) controls += qwen.is_control(id);
    CHECK(controls == 5);  // the built-in system turn (2), the user turn (2), the assistant's opening (1)
    CHECK(qwen.ends_generation(qwen.find("<|im_end|>")));

    // Templates saem does not know, or none, are refused with the way out.
    Bpe tiny = Bpe::load(shared + "/models/TinyLlama-1.1B-Chat-tokenizer");
    CHECK_THROWS_WITH_AS(saem::chat_format(tiny), doctest::Contains("--template"), std::invalid_argument);
    Bpe smol = Bpe::load(shared + "/models/SmolLM2-135M-Instruct");
    CHECK_THROWS_WITH_AS(saem::chat_format(smol), doctest::Contains("no chat template"), std::invalid_argument);
    CHECK(saem::chat_format(smol, "chatml") == saem::ChatFormat::chatml);
    CHECK_THROWS_WITH_AS(saem::chat_prompt(smol, saem::ChatFormat::llama3, {{"user", "hi"}}), doctest::Contains("<|begin_of_text|>"),
                         std::invalid_argument);
}

TEST_CASE("saem generate streams the greedy continuation and reports speeds") {
    TempDir dir;
    std::string cmd = std::string(SAEM_BINARY) + " generate --model " + stories().path +
                      " 'Once upon a time' --greedy --max-tokens 60 > " + (dir / "out.txt") + " 2> " + (dir / "err.txt");
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::string reference = read_bytes(shared + "/models/stories260K/greedy_reference.txt");
    reference = reference.substr(reference.find('\n') + 1);
    std::string out = read_bytes(dir.path / "out.txt");
    while (!out.empty() && out.back() == '\n') out.pop_back();
    while (!reference.empty() && reference.back() == '\n') reference.pop_back();
    CHECK(out == reference);
    std::string err = read_bytes(dir.path / "err.txt");
    CHECK(err.find("tokens/s") != std::string::npos);
    CHECK(err.find("stopped: length") != std::string::npos);
    cmd = std::string(SAEM_BINARY) + " generate --model " + (dir / "none.gguf") + " hi 2> " + (dir / "err2.txt");
    CHECK(WEXITSTATUS(std::system(cmd.c_str())) == 1);
    CHECK(read_bytes(dir.path / "err2.txt").find("none.gguf") != std::string::npos);
}

TEST_CASE("Logits of many positions in one pass equal those of one position at a time, across batches") {
    DecoderOptions o;
    o.context = 128;
    o.batch = 7;  // outputs that start inside one batch and run through the next ones
    auto d = Decoder::load(stories().path, o);
    auto ids = saem::raw_prompt(d->tokenizer(), "Once upon a time, there was a little girl named Lily. She loved to play in the park.");
    REQUIRE(ids.size() > 20);
    const size_t vocab = size_t(d->vocab_size());
    std::vector<float> one_by_one;
    for (size_t i = 0; i < ids.size(); ++i) {
        const float *l = d->eval(&ids[i], 1);
        one_by_one.insert(one_by_one.end(), l, l + vocab);
    }
    for (size_t outputs : {size_t(1), size_t(5), size_t(13), ids.size()}) {
        CAPTURE(outputs);
        d->truncate(0);
        const float *l = d->eval(ids.data(), ids.size(), outputs);
        CHECK(d->n_past() == int(ids.size()));
        float worst = 0;
        for (size_t r = 0; r < outputs; ++r)
            for (size_t v = 0; v < vocab; ++v)
                worst = std::max(worst, std::fabs(l[r * vocab + v] - one_by_one[(ids.size() - outputs + r) * vocab + v]));
        CHECK(worst < 1e-3f);
    }
    d->truncate(0);
    CHECK_THROWS_AS(d->eval(ids.data(), 3, 4), std::invalid_argument);
    CHECK_THROWS_AS(d->eval(ids.data(), 3, 0), std::invalid_argument);
}

TEST_CASE("saem perplexity: llama.cpp's method and figure on stories260K, its output, and its refusals") {
    const std::string text = std::string(SAEM_TEST_DATA) + "/stories.txt";
    auto fx = nlohmann::json::parse(read_bytes(std::string(SAEM_TEST_FIXTURES) + "/decoder/perplexity-stories260K.json"));
    const double want = fx["ppl"];
    TempDir dir;
    auto run = [&](const std::string &args) {
        std::string cmd = std::string(SAEM_BINARY) + " perplexity --model " + stories().path + " " + args + " > " + (dir / "out.txt") +
                          " 2> " + (dir / "err.txt");
        return WEXITSTATUS(std::system(cmd.c_str()));
    };
    // llama.cpp prints "[1]x,[2]y,..." as windows finish, then "Final estimate: PPL = X +/- E".
    REQUIRE(run("--context 128 " + text) == 0);
    std::string out = read_bytes(dir.path / "out.txt"), err = read_bytes(dir.path / "err.txt");
    CHECK(out.rfind("[1]", 0) == 0);
    CHECK(out.find("[13]") != std::string::npos);
    CHECK(out.find("[14]") == std::string::npos);
    double ppl = 0, error = 0;
    const auto at = out.find("Final estimate: PPL = ");
    REQUIRE(at != std::string::npos);
    REQUIRE(std::sscanf(out.c_str() + at, "Final estimate: PPL = %lf +/- %lf", &ppl, &error) == 2);
    CHECK(std::fabs(ppl / want - 1) < 0.001);
    CHECK(std::fabs(error / double(fx["ppl_error"]) - 1) < 0.01);
    CHECK(err.find("1774 tokens, 13 windows of 128, 819 tokens scored") != std::string::npos);
    CHECK(err.find("tokens/s") != std::string::npos);

    // The same from stdin, as JSON, and limited to the first windows.
    REQUIRE(run("--context 128 --json --windows 3 - < " + text) == 0);
    auto j = nlohmann::json::parse(read_bytes(dir.path / "out.txt"));
    CHECK(j["windows"] == 3);
    CHECK(j["scored"] == 3 * 63);
    CHECK(j["context"] == 128);
    CHECK(j["tokens_per_second"].get<double>() > 0);
    // The first three windows' figure, from llama.cpp's per-token values.
    std::vector<double> nll = fx["token_nll"];
    double sum = 0;
    for (size_t i = 0; i < 3 * 63; ++i) sum += nll[i];
    CHECK(std::fabs(j["ppl"].get<double>() / std::exp(sum / (3 * 63)) - 1) < 0.001);
    // A smaller batch than the window changes nothing but the passes.
    REQUIRE(run("--context 128 --batch 50 --json --windows 3 " + text) == 0);
    CHECK(std::fabs(nlohmann::json::parse(read_bytes(dir.path / "out.txt"))["ppl"].get<double>() / j["ppl"].get<double>() - 1) < 1e-4);

    // Refusals, each saying why: too little text for two windows, a window beyond the model's
    // trained context, a file that is not there, no model.
    const std::string tiny = dir / "tiny.txt";
    write_bytes(tiny, "Once upon a time there was a cat.");
    CHECK(run("--context 128 " + tiny) == 2);
    CHECK(read_bytes(dir.path / "err.txt").find("needs at least 256") != std::string::npos);
    CHECK(run("--context 4096 " + text) == 2);
    CHECK(read_bytes(dir.path / "err.txt").find("context of 512") != std::string::npos);
    CHECK(run("--context 128 " + (dir / "missing.txt")) == 2);
    CHECK(read_bytes(dir.path / "err.txt").find("missing.txt") != std::string::npos);
    std::string cmd = "env -u SAEM_MODEL " + std::string(SAEM_BINARY) + " perplexity " + text + " 2> " + (dir / "err.txt");
    CHECK(WEXITSTATUS(std::system(cmd.c_str())) == 2);
    CHECK(read_bytes(dir.path / "err.txt").find("--model") != std::string::npos);
}

TEST_CASE("saem quantize chooses each tensor's type as llama-quantize does (tests/cases/quantize_types.txt)") {
    std::ifstream in(std::string(SAEM_TEST_CASES) + "/quantize_types.txt");
    REQUIRE(in);
    auto dtype = [](const std::string &name) {
        for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K})
            if (name == dtype_name(t)) return t;
        FAIL("no type " << name);
        return DType::F32;
    };
    int cases = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        std::vector<std::string> f;
        std::stringstream ss(line);
        for (std::string cell; std::getline(ss, cell, '|');) {
            cell.erase(0, cell.find_first_not_of(' '));
            cell.erase(cell.find_last_not_of(' ') + 1);
            f.push_back(cell);
        }
        REQUIRE(f.size() == 7);
        CAPTURE(line);
        Tensor t;
        t.name = f[1];
        t.type = dtype(f[2]);
        t.shape = {8, std::stoll(f[3])};
        CHECK(dtype_name(quantized_type(parse_quant_type(f[0]), t, f[4] == "yes", std::stoi(f[5]))) == f[6]);
        ++cases;
    }
    CHECK(cases >= 20);
    CHECK(parse_quant_type("q4_k") == QuantType::Q4_K_M);
    CHECK_THROWS_WITH_AS(parse_quant_type("q3_k_s"), doctest::Contains("Q4_K_M"), std::invalid_argument);
}

TEST_CASE("saem quantize: every type from stories260K's F32, read back by saem with the perplexity llama.cpp measured; refusals") {
    TempDir dir;
    const std::string text = std::string(SAEM_TEST_DATA) + "/stories.txt";
    auto run = [&](const std::string &args) {
        std::string cmd = std::string(SAEM_BINARY) + " " + args + " > " + (dir / "out.txt") + " 2> " + (dir / "err.txt");
        return WEXITSTATUS(std::system(cmd.c_str()));
    };
    const std::string base = stories().path;
    for (const char *type : {"q8_0", "Q4_0", "q5_0", "Q4_K_M", "q5_k_m", "q6_k"}) {
        CAPTURE(type);
        std::string lower = type;
        for (char &c : lower) c = char(std::tolower(static_cast<unsigned char>(c)));
        const std::string out = dir / ("stories260K-" + lower + ".gguf");
        REQUIRE(run("quantize " + base + " " + out + " " + type) == 0);
        CHECK(read_bytes(dir.path / "out.txt").find(quant_type_name(parse_quant_type(type))) != std::string::npos);
        CHECK(read_bytes(dir.path / "err.txt").find("token_embd.weight") != std::string::npos);
        CHECK_FALSE(fs::exists(out + ".part"));
        // The same file llama.cpp measured (scripts/parity/perplexity.mjs), so the same perplexity.
        auto fx = nlohmann::json::parse(read_bytes(std::string(SAEM_TEST_FIXTURES) + "/decoder/perplexity-stories260K-" + lower + ".json"));
        CHECK(fs::file_size(out) == fx["bytes"].get<size_t>());
        Gguf g(out);
        CHECK(g.get_string("tokenizer.ggml.model") == "llama");
        CHECK(g.get_number("general.quantization_version") == 2);
        DecoderOptions o;
        o.context = 128;
        auto d = Decoder::load(out, o);
        PerplexityOptions po;
        po.context = 128;
        auto r = perplexity(*d, saem::raw_prompt(d->tokenizer(), read_bytes(text)), po);
        CHECK(std::fabs(r.ppl / fx["ppl"].get<double>() - 1) < 0.005);
    }
    CHECK(Gguf(dir / "stories260K-q4_k_m.gguf").get_number("general.file_type") == 15);

    // Refusals: a quantised input, an unknown type, the input as the output; none leaves a file.
    CHECK(run("quantize " + (dir / "stories260K-q8_0.gguf") + " " + (dir / "twice.gguf") + " q4_0") == 1);
    CHECK(read_bytes(dir.path / "err.txt").find("already Q8_0") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "twice.gguf"));
    CHECK_FALSE(fs::exists(dir / "twice.gguf.part"));
    CHECK(run("quantize " + base + " " + (dir / "x.gguf") + " q2_k") == 2);
    CHECK(read_bytes(dir.path / "err.txt").find("Q4_K_M") != std::string::npos);
    CHECK(run("quantize " + base + " " + base + " q8_0") == 2);
    CHECK(read_bytes(dir.path / "err.txt").find("is the input") != std::string::npos);
    CHECK(run("quantize " + (dir / "missing.gguf") + " " + (dir / "x.gguf") + " q8_0") == 1);
    CHECK(read_bytes(dir.path / "err.txt").find("missing.gguf") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "x.gguf"));
}

// The Hugging Face folders of tools/make_test_decoder `hf`, converted by saem, against
// scripts/parity/convert.mjs: a reference that runs each folder as Hugging Face's modeling code
// does (rotate-half RoPE, llama3 frequency scaling, biases, BF16) and llama.cpp on saem's GGUF.
TEST_CASE("saem convert: Hugging Face llama and qwen2 folders give GGUFs whose logits equal the Hugging Face reference's and llama.cpp's") {
    TempDir dir;
    const std::map<std::string, std::string> tokenizers = {{"tiny-llama", "SmolLM2-135M-Instruct"},
                                                           {"tiny-qwen2", "Qwen2.5-Instruct-tokenizer"},
                                                           {"tiny-tinyllama", "TinyLlama-1.1B-Chat-tokenizer"}};
    for (const auto &[name, tokenizer] : tokenizers) {
        CAPTURE(name);
        const std::string folder = dir / name;
        std::string cmd = std::string(SAEM_MAKE_TEST_DECODER) + " hf " + name + " " + shared + "/models/" + tokenizer + " " + folder;
        REQUIRE(std::system(cmd.c_str()) == 0);
        auto fx = nlohmann::json::parse(read_bytes(std::string(SAEM_TEST_FIXTURES) + "/convert/" + name + ".json"));
        // F32 keeps the weights exact: saem's logits are the reference's up to float rounding (the
        // reference is double; llama.cpp's own distance to it is 5e-4, saem's to llama.cpp 1e-4).
        // F16 and Q8_0 round the weights, and the logits move by what that costs (measured: 1e-3
        // and 0.02).
        for (auto [type, tolerance] : {std::pair{DType::F32, 1e-3}, {DType::F16, 5e-3}, {DType::Q8_0, 0.05}}) {
            CAPTURE(dtype_name(type));
            const std::string out = dir / (name + "." + dtype_name(type) + ".gguf");
            auto r = convert_model(folder, out, type);
            CHECK(r.architecture == (name == "tiny-qwen2" ? "qwen2" : "llama"));
            DecoderOptions o;
            o.context = 128;
            auto d = Decoder::load(out, o);
            double worst = 0, worst_llama = 0;
            for (const auto &c : fx["cases"]) {
                std::vector<int32_t> ids = c["ids"];
                CHECK(saem::raw_prompt(d->tokenizer(), c["prompt"].get<std::string>()) == ids);
                d->truncate(0);
                const float *logits = d->eval(ids.data(), ids.size(), ids.size());
                for (size_t p = 0; p < ids.size(); ++p)
                    for (size_t i = 0; i < c["top"][p].size(); ++i) {
                        const int32_t t = c["top"][p][i][0];
                        const double got = logits[p * size_t(d->vocab_size()) + size_t(t)];
                        worst = std::max(worst, std::fabs(got - c["top"][p][i][1].get<double>()));
                        worst_llama = std::max(worst_llama, std::fabs(got - c["llama_cpp"][p][i].get<double>()));
                    }
            }
            MESSAGE(name << " " << std::string(dtype_name(type)) << ": largest logit difference from the reference " << worst << ", from llama.cpp " << worst_llama);
            CHECK(worst <= tolerance);
            if (type == DType::F32) CHECK(worst_llama <= tolerance);
        }
    }

    // Refusals, each naming the problem; none leaves a file.
    const std::string folder = dir / "tiny-llama", out = dir / "bad.gguf";
    auto config = nlohmann::json::parse(read_bytes(folder + "/config.json"));
    auto with = [&](const std::function<void(nlohmann::json &)> &edit) {
        auto c = config;
        edit(c);
        write_bytes(folder + "/config.json", c.dump());
    };
    with([](auto &c) { c["architectures"] = {"MistralForCausalLM"}; });
    CHECK_THROWS_WITH_AS(convert_model(folder, out, DType::F16), doctest::Contains("MistralForCausalLM"), ModelError);
    with([](auto &c) { c["num_hidden_layers"] = 3; });
    CHECK_THROWS_WITH_AS(convert_model(folder, out, DType::F16), doctest::Contains("model.layers.2."), ModelError);
    with([](auto &c) { c["hidden_size"] = 96; });
    CHECK_THROWS_WITH_AS(convert_model(folder, out, DType::F16), doctest::Contains("config.json says"), ModelError);
    with([](auto &c) { c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; });
    CHECK_THROWS_WITH_AS(convert_model(folder, out, DType::F16), doctest::Contains("yarn"), ModelError);
    with([](auto &c) { c.erase("vocab_size"); });
    CHECK_THROWS_WITH_AS(convert_model(folder, out, DType::F16), doctest::Contains("vocab_size"), ModelError);
    with([](auto &) {});
    fs::remove(folder + "/model.safetensors");
    CHECK_THROWS_WITH_AS(convert_model(folder, out, DType::F16), doctest::Contains("model.safetensors"), ModelError);
    CHECK_FALSE(fs::exists(out));
    CHECK_FALSE(fs::exists(out + ".part"));
}

TEST_CASE("Answers from a decoder: sources fit the context, citations, no model call without sources") {
    TempDir dir;
    saem::Store store(dir / "rag.db");
    saem::IndexOptions io;
    std::ostringstream log;
    saem::index_folder(store, std::string(SAEM_SOURCE_DIR) + "/samples", io, log);
    DecoderOptions o;
    o.context = 512;
    auto d = Decoder::load(stories().path, o);
    // Retrieval as `saem ask` runs it: five whole chunks.
    auto retrieve = [&](const std::string &q) {
        saem::SearchRequest r;
        r.query = q;
        r.k = 5;
        r.snippets = false;
        r.term_idf = true;
        return saem::Retriever().search(store, r);
    };
    const saem::Retrieved ro = retrieve("How does BM25 rank documents?");
    saem::GeneratedAnswerOptions go;
    go.generation.sampling.greedy = true;
    go.generation.max_tokens = 16;
    go.chat_template = "";  // stories260K has no chat template: plain-text instructions
    std::string streamed;
    auto a = saem::answer_generated(*d, "How does BM25 rank documents?", ro, go, [&](std::string_view p) {
        streamed += p;
        return true;
    });
    CHECK(a.found);
    CHECK(a.method == "generated");
    CHECK(streamed == a.text);
    REQUIRE(!a.citations.empty());
    CHECK(a.citations[0].path.find("ranking.html") != std::string::npos);
    CHECK(a.note.find("retrieved sources") != std::string::npos);
    // A 512-token context holds fewer sources than were retrieved; a bigger answer budget fewer still.
    go.generation.max_tokens = 48;
    auto b = saem::answer_generated(*d, "How does BM25 rank documents?", ro, go);
    CHECK(b.citations.size() <= a.citations.size());
    go.generation.max_tokens = 510;
    CHECK_THROWS_AS(saem::answer_generated(*d, "How does BM25 rank documents?", ro, go), ContextError);
    go.generation.max_tokens = 16;
    auto none = saem::answer_generated(*d, "zzzqqq xylophone", retrieve("zzzqqq xylophone"), go);
    CHECK_FALSE(none.found);
    CHECK(none.note.find("not asked") != std::string::npos);
    // Sources that do not support an answer: the model is not asked either (and its decoder is not run).
    const std::string weak = "How does BM25 treat glaciers, volcanoes and deserts in Patagonia?";
    const saem::Retrieved wr = retrieve(weak);
    REQUIRE(!wr.hits.empty());
    REQUIRE(saem::answer_support(weak, wr) < go.min_support);
    d->truncate(0);
    auto abstained = saem::answer_generated(*d, weak, wr, go);
    CHECK_FALSE(abstained.found);
    CHECK(abstained.note.find("Abstained without asking the model") != std::string::npos);
    CHECK(abstained.completion_tokens == 0);
    CHECK(d->n_past() == 0);
    go.min_support = 0;  // 0: always ask
    CHECK(saem::answer_generated(*d, weak, wr, go).found);
    go.min_support = saem::ExtractiveOptions{}.min_support;
    go.chat_template = "chatml";  // asked for, but the vocabulary has no ChatML markers
    CHECK_THROWS_AS(saem::answer_generated(*d, "How does BM25 rank documents?", ro, go), std::invalid_argument);
}

TEST_CASE("Llama 3 chat layout, on a byte-level vocabulary with Llama 3's special tokens") {
    // No Llama 3 tokenizer is on hand: a GGUF vocabulary of the 256 byte characters, a few merges and
    // the Llama 3 markers stands in; the layout is the one Meta publishes (and llama.cpp's "llama3").
    TempDir dir;
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    {
        // GPT-2's byte characters, in byte order.
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
            int cp = printable ? b : next++;
            std::string s;
            if (cp < 0x80) s += char(cp);
            else if (cp < 0x800) s += char(0xC0 | (cp >> 6)), s += char(0x80 | (cp & 0x3F));
            tokens.push_back(s);
            types.push_back(1);
        }
    }
    tokens.push_back("hi");
    types.push_back(1);
    for (const char *special : {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}) {
        tokens.push_back(special);
        types.push_back(3);
    }
    GgufWriter w;
    w.add("general.architecture", "llama");
    w.add("tokenizer.ggml.model", "gpt2");
    w.add("tokenizer.ggml.pre", "llama-bpe");
    w.add("tokenizer.ggml.tokens", tokens);
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add("tokenizer.ggml.merges", std::vector<std::string>{"h i"});
    w.add_u32("tokenizer.ggml.bos_token_id", 257);
    w.add_u32("tokenizer.ggml.eos_token_id", 261);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    w.add("tokenizer.chat_template", "{{- bos_token }}{%- for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>...");
    w.write(dir / "llama3-vocab.gguf");
    Bpe bpe = Bpe::load(dir / "llama3-vocab.gguf");
    CHECK(bpe.pre() == Bpe::Pre::Llama3);
    REQUIRE(saem::chat_format(bpe) == saem::ChatFormat::llama3);
    auto ids = saem::chat_prompt(bpe, saem::ChatFormat::llama3, {{"system", "Be brief."}, {"user", "hi"}});
    CHECK(render(bpe, ids) ==
          "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    CHECK(ids.front() == bpe.bos_id());
    CHECK(std::count(ids.begin(), ids.end(), bpe.bos_id()) == 1);  // the template's BOS, not a second one
    CHECK(bpe.ends_generation(bpe.find("<|eot_id|>")));
    CHECK(std::find(ids.begin(), ids.end(), 256) != ids.end());  // "hi" merged (llama-bpe ignores merges for whole words in the vocabulary)
}

TEST_CASE("HTTP /v1/ask with a decoder: a generated answer, or server-sent events as it is generated") {
    TempDir dir;
    {
        saem::Store store(dir / "h.db");
        std::ostringstream log;
        saem::index_folder(store, std::string(SAEM_SOURCE_DIR) + "/samples", saem::IndexOptions{}, log);
    }
    saem::ServerOptions so;
    so.db = dir / "h.db";
    DecoderOptions dopt;
    dopt.context = 512;
    so.decoder = Decoder::load(stories().path, dopt);
    so.max_answer_tokens = 24;
    saem::Server server(so);
    int port = server.bind("127.0.0.1", 0);
    REQUIRE(port > 0);
    std::thread thread([&] { server.listen(); });
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(30, 0);
    const std::string q = R"({"question": "How does BM25 rank documents?", "k": 3)";

    auto r = client.Post("/v1/ask", q + "}", "application/json");
    REQUIRE(r);
    CHECK(r->status == 200);
    auto j = nlohmann::json::parse(r->body);
    CHECK(j["method"] == "generated");
    CHECK(j["found"] == true);
    CHECK(!j["citations"].empty());

    // Streamed: the pieces add up to the answer the closing event carries.
    r = client.Post("/v1/ask", q + R"(, "stream": true})", "application/json");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type").find("text/event-stream") == 0);
    std::string pieces, done;
    std::istringstream events(r->body);
    std::string line, event;
    while (std::getline(events, line)) {
        if (line.rfind("event: ", 0) == 0) event = line.substr(7);
        if (line.rfind("data: ", 0) != 0) continue;
        auto data = nlohmann::json::parse(line.substr(6));
        if (event == "done") done = data["answer"];
        else pieces += data["text"].get<std::string>();
        event.clear();
    }
    CHECK(!done.empty());
    CHECK(pieces == done);

    // Grounded: every sentence says whether its sources hold it; strict keeps only those that do.
    for (const char *strict : {"false", "true"}) {
        CAPTURE(strict);
        r = client.Post("/v1/ask", q + R"(, "strict": )" + strict + "}", "application/json");
        REQUIRE(r);
        auto g = nlohmann::json::parse(r->body);
        REQUIRE(g["sentences"].is_array());
        REQUIRE(!g["sentences"].empty());
        CHECK(g["note"].get<std::string>().find("Grounding:") != std::string::npos);
        for (const auto &sentence : g["sentences"]) {
            CHECK(sentence["supported"].is_boolean());
            CHECK(sentence["support"].get<double>() >= 0);
            if (std::string(strict) == "true" && !sentence["supported"].get<bool>())
                CHECK(g["answer"].get<std::string>().find(sentence["text"].get<std::string>()) == std::string::npos);
        }
    }
    r = client.Post("/v1/ask", q + R"(, "method": "extractive"})", "application/json");
    REQUIRE(r);
    CHECK(nlohmann::json::parse(r->body)["method"] == "extractive");
    r = client.Post("/v1/ask", q + R"(, "max_tokens": 600})", "application/json");
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(nlohmann::json::parse(r->body)["error"]["code"] == "context_exceeded");
    r = client.Post("/v1/ask", q + R"(, "temperature": "hot"})", "application/json");
    REQUIRE(r);
    CHECK(r->status == 400);
    server.stop();
    thread.join();

    // Without a decoder, asking for a generated answer says what is missing.
    saem::ServerOptions plain;
    plain.db = dir / "h.db";
    saem::Server bare(plain);
    port = bare.bind("127.0.0.1", 0);
    std::thread t2([&] { bare.listen(); });
    httplib::Client c2("127.0.0.1", port);
    r = c2.Post("/v1/ask", q + R"(, "method": "generated"})", "application/json");
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(nlohmann::json::parse(r->body)["error"]["code"] == "no_generator");
    bare.stop();
    t2.join();
}

namespace {

// A decoder whose eval() waits while its gate is closed: holds a generation at a known point.
struct GatedDecoder : Decoder {
    std::shared_ptr<Decoder> inner;
    Gate gate;
    explicit GatedDecoder(std::shared_ptr<Decoder> d) : inner(std::move(d)) {}
    const Bpe &tokenizer() const override { return inner->tokenizer(); }
    std::string architecture() const override { return inner->architecture(); }
    std::string describe() const override { return inner->describe(); }
    int vocab_size() const override { return inner->vocab_size(); }
    int context_length() const override { return inner->context_length(); }
    int n_past() const override { return inner->n_past(); }
    using Decoder::eval;
    const float *eval(const int32_t *tokens, size_t n, size_t outputs) override {
        gate.pass();
        return inner->eval(tokens, n, outputs);
    }
    void truncate(int n) override { inner->truncate(n); }
};

using namespace std::chrono_literals;

}  // namespace

TEST_CASE("The generation queue: arrival order, a bound, cancelling waiting and running jobs, errors reach the submitter") {
    std::shared_ptr<Decoder> decoder = Decoder::load(stories().path);
    // Everything the jobs touch is declared before the queue, so it outlives the queue's thread.
    std::vector<std::string> order;
    std::mutex order_mutex;
    auto record = [&](const std::string &name) {
        std::lock_guard lock(order_mutex);
        order.push_back(name);
    };
    std::promise<void> a_started, e_started;
    std::promise<void> release_a;
    std::shared_future<void> a_released = release_a.get_future().share();
    bool a_released_yet = false;
    struct Release {  // a failed check must not leave job a holding the queue's destructor
        std::promise<void> &p;
        bool &done;
        ~Release() {
            if (!done) p.set_value();
        }
    } release_guard{release_a, a_released_yet};
    saem::GenerationQueue queue(decoder, 2);
    auto a = queue.submit([&](Decoder &, const saem::GenerationQueue::Ticket &) {
        record("a");
        a_started.set_value();
        a_released.wait();
    });
    a_started.get_future().wait();
    auto b = queue.submit([&](Decoder &, const saem::GenerationQueue::Ticket &) { record("b"); });
    // Full: the running job and one waiting.
    try {
        queue.submit([](Decoder &, const saem::GenerationQueue::Ticket &) {});
        FAIL("a third job was admitted");
    } catch (const saem::QueueFull &e) {
        CHECK(e.retry_after_seconds >= 1);
    }
    auto st = queue.stats();
    CHECK(st.running == 1);
    CHECK(st.waiting == 1);
    CHECK(st.refused == 1);
    // A waiting job cancelled leaves at once and frees its place.
    b->cancel();
    CHECK(b->wait_for(0ms));
    CHECK_FALSE(b->ran());
    auto c = queue.submit([&](Decoder &, const saem::GenerationQueue::Ticket &) { record("c"); });
    CHECK_FALSE(c->wait_for(50ms));  // a still holds the decoder
    release_a.set_value();
    a_released_yet = true;
    REQUIRE(c->wait_for(10s));
    CHECK(c->ran());
    CHECK_NOTHROW(c->rethrow_if_failed());
    auto d_fails = queue.submit([&](Decoder &, const saem::GenerationQueue::Ticket &) -> void {
        record("d");
        throw std::runtime_error("d failed");
    });
    REQUIRE(d_fails->wait_for(10s));
    CHECK_THROWS_WITH(d_fails->rethrow_if_failed(), "d failed");
    CHECK(order == std::vector<std::string>{"a", "c", "d"});
    // A running job sees cancel() and stops; cancelling after the end changes nothing.
    auto e = queue.submit([&](Decoder &, const saem::GenerationQueue::Ticket &t) {
        e_started.set_value();
        while (!t.cancelled()) std::this_thread::sleep_for(1ms);
    });
    e_started.get_future().wait();
    e->cancel();
    REQUIRE(e->wait_for(10s));
    CHECK(e->ran());
    c->cancel();
    st = queue.stats();
    CHECK(st.completed == 2);  // a, c
    CHECK(st.failed == 1);     // d
    CHECK(st.cancelled == 2);  // b waiting, e running
    CHECK(st.running + st.waiting == 0);
    // Closed (a server stopping): nothing more is admitted.
    queue.close();
    CHECK_THROWS_AS(queue.submit([](Decoder &, const saem::GenerationQueue::Ticket &) {}), saem::QueueClosed);
}

TEST_CASE("HTTP generations go through a bounded queue: 429 beyond it, /healthz free, a client that hangs up cancels its answer") {
    TempDir dir;
    {
        saem::Store store(dir / "h.db");
        std::ostringstream log;
        saem::index_folder(store, std::string(SAEM_SOURCE_DIR) + "/samples", saem::IndexOptions{}, log);
    }
    DecoderOptions dopt;
    dopt.context = 512;
    auto gated = std::make_shared<GatedDecoder>(Decoder::load(stories().path, dopt));
    saem::ServerOptions so;
    so.db = dir / "h.db";
    so.decoder = gated;
    so.max_answer_tokens = 24;
    so.generation_queue = 2;
    saem::Server server(so);
    int port = server.bind("127.0.0.1", 0);
    REQUIRE(port > 0);
    std::thread thread([&] { server.listen(); });
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(10, 0);
    auto stats = [&] {
        auto r = client.Get("/v1/stats");
        REQUIRE(r);
        return nlohmann::json::parse(r->body)["generation"];
    };
    auto wait_stats = [&](const char *field, int value) {
        for (int i = 0; i < 200; ++i) {
            if (stats()[field] == value) return true;
            std::this_thread::sleep_for(25ms);
        }
        return false;
    };
    const std::string body = R"({"question": "How does BM25 rank documents?", "k": 3})";
    const std::string stream_body = R"({"question": "How does BM25 rank documents?", "k": 3, "stream": true})";
    // A request on a socket of its own, which the test can close: a client that hangs up.
    auto send_raw = [&](const std::string &json_body) {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(uint16_t(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) == 0);
        std::string req = "POST /v1/ask HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(json_body.size()) + "\r\n\r\n" + json_body;
        REQUIRE(::send(fd, req.data(), req.size(), 0) == ssize_t(req.size()));
        return fd;
    };

    gated->gate.set_open(false);
    int first = send_raw(body);  // runs, held in the decoder
    REQUIRE(gated->gate.wait_arrivals(1));
    int second = send_raw(stream_body);  // waits in the queue
    REQUIRE(wait_stats("waiting", 1));
    auto r = client.Post("/v1/ask", body, "application/json");
    REQUIRE(r);
    CHECK(r->status == 429);
    CHECK(nlohmann::json::parse(r->body)["error"]["code"] == "too_many_requests");
    CHECK(std::stoi(r->get_header_value("Retry-After")) >= 1);
    auto started = std::chrono::steady_clock::now();
    r = client.Get("/healthz");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    r = client.Post("/v1/ask", R"({"question": "How does BM25 rank documents?", "method": "extractive"})", "application/json");
    REQUIRE(r);
    CHECK(r->status == 200);

    // The waiting client hangs up: its place is free before the decoder is.
    ::close(second);
    CHECK(wait_stats("waiting", 0));
    CHECK(stats()["cancelled"] == 1);
    // The running one hangs up: its generation stops at the next token instead of running on.
    ::close(first);
    std::this_thread::sleep_for(500ms);  // the worker looks every 100 ms
    gated->gate.set_open(true);
    CHECK(wait_stats("running", 0));
    auto st = stats();
    CHECK(st["cancelled"] == 2);
    CHECK(st["completed"] == 0);

    // A streaming client that hangs up mid-answer cancels it too.
    int evals = gated->gate.arrivals();
    gated->gate.set_open(false);
    int streaming = send_raw(stream_body);
    REQUIRE(gated->gate.wait_arrivals(evals + 1));
    ::close(streaming);
    std::this_thread::sleep_for(500ms);
    gated->gate.set_open(true);
    CHECK(wait_stats("running", 0));
    CHECK(stats()["cancelled"] == 3);

    // The queue serves on.
    r = client.Post("/v1/ask", body, "application/json");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(nlohmann::json::parse(r->body)["method"] == "generated");
    st = stats();
    CHECK(st["completed"] == 1);
    CHECK(st["refused"] == 1);

    // Stopping the server cancels the answer under way: its client gets 503 shutting_down, not
    // a cut-off answer passed off as whole.
    evals = gated->gate.arrivals();
    gated->gate.set_open(false);
    std::promise<std::pair<int, std::string>> reply;
    std::thread waiting([&] {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(10, 0);
        auto res = c.Post("/v1/ask", body, "application/json");
        reply.set_value(res ? std::make_pair(res->status, res->body) : std::make_pair(-1, std::string()));
    });
    bool held = gated->gate.wait_arrivals(evals + 1);
    server.stop();
    gated->gate.set_open(true);
    waiting.join();
    thread.join();
    REQUIRE(held);
    auto [status, text] = reply.get_future().get();
    CHECK(status == 503);
    CHECK(text.find("shutting_down") != std::string::npos);
}
