// The BERT encoder against llama.cpp, on a model in the exact all-MiniLM-L6-v2 shape (real vocab,
// random weights from tools/make_test_encoder), and the GGUF against the same weights as a
// sentence-transformers folder. Expected outputs: fixtures/encoder, from scripts/parity/encoder.mjs.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "helpers.h"
#include "nn/embedder.h"
#include "nn/weights.h"
#include "parity.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <iomanip>

using namespace saem::nn;

namespace {

const std::string shared = SAEM_SHARED;
const std::string fixtures = std::string(SAEM_TEST_FIXTURES) + "/encoder";

struct Models {
    TempDir dir;
    std::string base = dir / "minilm";
    Models() {
        std::string cmd = std::string(SAEM_MAKE_TEST_ENCODER) + " " + shared + "/models/all-MiniLM-L6-v2 " + base + " 1234 > /dev/null";
        REQUIRE(std::system(cmd.c_str()) == 0);
    }
};

Models &models() {
    static Models m;
    return m;
}

double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; ++i) {
        ab += double(a[i]) * b[i];
        aa += double(a[i]) * a[i];
        bb += double(b[i]) * b[i];
    }
    return ab / std::sqrt(aa * bb);
}

std::vector<float> read_floats(const std::string &path) {
    std::string bytes = read_bytes(path);
    std::vector<float> v(bytes.size() / 4);
    std::memcpy(v.data(), bytes.data(), v.size() * 4);
    return v;
}

}  // namespace

TEST_CASE("BERT GGUF embeddings equal llama.cpp's on 500 SciFact passages (F32, F16, Q8_0)" * doctest::test_suite("slow")) {
    auto meta = nlohmann::json::parse(read_bytes(fixtures + "/meta.json"));
    const int n = meta["passages"], dim = meta["dim"];
    auto passages = scifact_passages(shared);
    passages.resize(size_t(n));
    for (const char *type : {"f32", "f16", "q8_0"}) {
        CAPTURE(type);
        std::string file = models().base + "." + type + ".gguf";
        // The same file llama.cpp embedded with: same bytes out of the same seeded generator.
        REQUIRE(fs::file_size(file) == meta["files"][type]["bytes"].get<uintmax_t>());
        auto enc = load_embedder(file);
        REQUIRE(enc->dim() == dim);
        enc->set_max_tokens(meta["max_tokens"]);
        std::vector<float> ours(size_t(n) * dim);
        enc->embed(passages, ours.data());
        auto theirs = read_floats(fixtures + "/minilm-random." + type + ".bin");
        REQUIRE(theirs.size() == ours.size());
        double worst = 1;
        for (int i = 0; i < n; ++i) worst = std::min(worst, cosine(&ours[size_t(i) * dim], &theirs[size_t(i) * dim], dim));
        MESSAGE(std::string(type) << ": lowest cosine to llama.cpp over " << n << " passages: " << std::setprecision(9) << worst);
        CHECK(worst >= 0.9999);
    }
}

TEST_CASE("the same weights as a sentence-transformers folder give the GGUF's embeddings") {
    auto passages = scifact_passages(shared);
    passages.resize(100);
    auto gguf = load_embedder(models().base + ".f32.gguf");
    auto folder = load_embedder(models().base + "-st");
    CHECK(folder->max_tokens() == 256);  // sentence_bert_config.json's max_seq_length
    gguf->set_max_tokens(128);
    folder->set_max_tokens(128);
    const int dim = gguf->dim();
    REQUIRE(folder->dim() == dim);
    std::vector<float> a(passages.size() * size_t(dim)), b(a.size());
    gguf->embed(passages, a.data());
    folder->embed(passages, b.data());
    for (size_t i = 0; i < passages.size(); ++i) CHECK(cosine(&a[i * size_t(dim)], &b[i * size_t(dim)], dim) >= 0.999999);
}

TEST_CASE("broken model files fail with a message naming the file and what is wrong") {
    std::string good = models().base + ".f16.gguf";
    std::string bytes = read_bytes(good);
    TempDir dir;
    struct Case { std::string name, content, expect; };
    const Case cases[] = {
        {"truncated.gguf", bytes.substr(0, bytes.size() / 2), "runs past the end"},
        {"header-only.gguf", bytes.substr(0, 100), "truncated or corrupt GGUF"},
        {"not.gguf", "GGML" + bytes.substr(4, 1000), "not a GGUF file"},
        {"empty.gguf", "", "truncated or corrupt GGUF"},
        {"v1.gguf", std::string("GGUF\x01\0\0\0", 8) + bytes.substr(8, 100), "version 1 is not supported"},
    };
    for (const auto &c : cases) {
        CAPTURE(c.name);
        write_bytes(dir.path / c.name, c.content);
        try {
            load_embedder(dir / c.name);
            FAIL("expected a ModelError");
        } catch (const ModelError &e) {
            std::string msg = e.what();
            CHECK(msg.find(c.name) != std::string::npos);
            CHECK(msg.find(c.expect) != std::string::npos);
        }
    }
    // A truncated safetensors names the tensor that does not fit.
    fs::create_directories(dir.path / "st");
    for (const auto &f : fs::directory_iterator(models().base + "-st"))
        if (f.is_regular_file()) fs::copy_file(f.path(), dir.path / "st" / f.path().filename());
    fs::copy(models().base + "-st/1_Pooling", dir.path / "st" / "1_Pooling");
    std::string st = read_bytes(dir.path / "st" / "model.safetensors");
    fs::permissions(dir.path / "st" / "model.safetensors", fs::perms::owner_write, fs::perm_options::add);
    write_bytes(dir.path / "st" / "model.safetensors", st.substr(0, st.size() - 1000));
    CHECK_THROWS_WITH_AS(load_embedder(dir / "st"), doctest::Contains("truncated file"), ModelError);
}
