// The BERT encoder against llama.cpp, on a model in the exact all-MiniLM-L6-v2 shape (real vocab,
// random weights from tools/make_test_encoder), and the GGUF against the same weights as a
// sentence-transformers folder. Expected outputs: fixtures/encoder, from scripts/parity/encoder.mjs.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "helpers.h"
#include "nn/embedder.h"
#include "nn/convert.h"
#include "nn/quantize_model.h"
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

TEST_CASE("saem quantize on a BERT GGUF: the encoder loads each type and its embeddings stay near the F16 ones") {
    auto passages = scifact_passages(shared);
    passages.resize(50);
    auto f16 = load_embedder(models().base + ".f16.gguf");
    const int dim = f16->dim();
    std::vector<float> want(passages.size() * size_t(dim)), got(want.size());
    f16->embed(passages, want.data());
    // The least cosine each type keeps over 50 passages on these random weights (measured: Q8_0
    // 0.99999, Q6_K 0.99997, Q5_K_M 0.9996, Q4_K_M 0.9994, Q4_0 0.9976).
    for (auto [type, least] : {std::pair{"q8_0", 0.9999}, {"q6_k", 0.9998}, {"q5_k_m", 0.999}, {"q4_k_m", 0.998}, {"q4_0", 0.995}}) {
        CAPTURE(type);
        const std::string out = models().base + "-saem-" + type + ".gguf";  // not make_test_encoder's own .q8_0.gguf
        quantize_model(models().base + ".f16.gguf", out, parse_quant_type(type));
        auto q = load_embedder(out);
        q->embed(passages, got.data());
        double worst = 1;
        for (size_t i = 0; i < passages.size(); ++i) worst = std::min(worst, cosine(&want[i * size_t(dim)], &got[i * size_t(dim)], dim));
        MESSAGE(std::string(type) << ": least cosine to F16 " << worst);
        CHECK(worst >= least);
    }
}

// tools/make_test_encoder writes the same weights both as a sentence-transformers folder and, on
// its own, as the GGUFs llama.cpp's converter makes (which the slow case above checks against
// llama.cpp's embeddings): saem convert of the folder must give those GGUFs.
TEST_CASE("saem convert of a sentence-transformers BERT folder gives llama.cpp's converter layout, tensor for tensor") {
    for (auto [type, suffix] : {std::pair{DType::F32, ".f32.gguf"}, {DType::F16, ".f16.gguf"}, {DType::Q8_0, ".q8_0.gguf"}}) {
        CAPTURE(suffix);
        const std::string out = models().base + "-converted" + suffix;
        auto r = convert_model(models().base + "-st", out, type);
        CHECK(r.architecture == "bert");
        Gguf got(out), want(models().base + suffix);
        CHECK(got.metadata().size() == want.metadata().size());
        for (const auto &[key, v] : want.metadata()) {
            CAPTURE(key);
            const auto *g = got.find(key);
            REQUIRE(g);
            if (key == "general.name") continue;  // the folder's name
            CHECK(g->type == v.type);
            CHECK(g->number == v.number);
            CHECK(g->text == v.text);
            CHECK(g->numbers == v.numbers);
            CHECK(g->strings == v.strings);
        }
        REQUIRE(got.tensors().size() == want.tensors().size());
        for (size_t i = 0; i < want.tensors().size(); ++i) {
            const Tensor &a = got.tensors()[i], &b = want.tensors()[i];
            CAPTURE(b.name);
            CHECK(a.name == b.name);
            CHECK(a.type == b.type);
            CHECK(a.shape == b.shape);
            CHECK((a.bytes == b.bytes && std::memcmp(a.data, b.data, a.bytes) == 0));
        }
    }
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

namespace {

// The sentence-transformers folder with one file changed by edit (a fresh copy each time).
struct EditedFolder {
    TempDir dir;
    fs::path path = dir.path / "model";
    EditedFolder() {
        fs::copy(models().base + "-st", path, fs::copy_options::recursive);
        for (const auto &f : fs::recursive_directory_iterator(path)) fs::permissions(f.path(), fs::perms::owner_write, fs::perm_options::add);
    }
    nlohmann::json json_of(const std::string &file) const { return nlohmann::json::parse(read_bytes(path / file)); }
    void put(const std::string &file, const std::string &bytes) const { write_bytes(path / file, bytes); }
    // The safetensors header, edited, in front of the same data; extra JSON text is put before
    // its closing brace.
    void edit_safetensors_header(const std::function<void(nlohmann::json &)> &edit, const std::string &extra = {}) const {
        std::string st = read_bytes(path / "model.safetensors");
        uint64_t n;
        std::memcpy(&n, st.data(), 8);
        auto header = nlohmann::json::parse(st.substr(8, n));
        edit(header);
        std::string h = header.dump();
        if (!extra.empty()) h = h.substr(0, h.size() - 1) + ", " + extra + "}";
        uint64_t hn = h.size();
        put("model.safetensors", std::string(reinterpret_cast<const char *>(&hn), 8) + h + st.substr(8 + n));
    }
};

std::string nested(int depth) { return std::string(size_t(depth), '[') + std::string(size_t(depth), ']'); }

}  // namespace

TEST_CASE("hostile model folders: every size, shape and id is checked before use") {
    struct Case {
        const char *what;
        std::function<void(const EditedFolder &)> edit;
        const char *expect;
    };
    auto config = [](std::function<void(nlohmann::json &)> f) {
        return [f](const EditedFolder &m) {
            auto j = m.json_of("config.json");
            f(j);
            m.put("config.json", j.dump());
        };
    };
    const Case cases[] = {
        {"a size of the wrong JSON type", config([](auto &j) { j["hidden_size"] = "384"; }), "hidden_size is \"384\", not an integer"},
        {"a setting of the wrong JSON type", config([](auto &j) { j["hidden_act"] = 5; }), "unexpected JSON type"},
        {"a word table smaller than the vocabulary", config([](auto &j) { j["vocab_size"] = 100; }), "smaller than the tokenizer's"},
        {"no room for [CLS] and [SEP]", config([](auto &j) { j["max_position_embeddings"] = 1; }), "position count is 1"},
        {"no attention heads", config([](auto &j) { j["num_attention_heads"] = 0; }), "head count is 0"},
        {"a negative layer count", config([](auto &j) { j["num_hidden_layers"] = -3; }), "layer count is -3"},
        {"config.json nested 100,000 deep",
         [](const EditedFolder &m) { m.put("config.json", R"({"model_type": "bert", "x": )" + nested(100000) + "}"); }, "nested deeper"},
        {"tokenizer.json nested 100,000 deep",
         [](const EditedFolder &m) { m.put("tokenizer.json", R"({"model": )" + nested(100000) + "}"); }, "nested deeper"},
        {"a negative token id",
         [](const EditedFolder &m) {
             auto j = m.json_of("tokenizer.json");
             j["model"]["vocab"]["the"] = -5;
             m.put("tokenizer.json", j.dump());
         },
         "token id -5 of 'the'"},
        {"a token id that is text",
         [](const EditedFolder &m) {
             auto j = m.json_of("tokenizer.json");
             j["model"]["vocab"]["the"] = "7";
             m.put("tokenizer.json", j.dump());
         },
         "is not an integer"},
        {"a shape whose element count wraps 64 bits",
         [](const EditedFolder &m) {
             m.edit_safetensors_header([](auto &h) { h["embeddings.word_embeddings.weight"]["shape"] = {uint64_t(1) << 40, uint64_t(1) << 40}; });
         },
         "more than 2^48 elements"},
        {"a negative shape size",
         [](const EditedFolder &m) { m.edit_safetensors_header([](auto &h) { h["embeddings.word_embeddings.weight"]["shape"] = {-1, 384}; }); },
         "not an integer from 0 to 2^48"},
        {"a dtype that is a number",
         [](const EditedFolder &m) { m.edit_safetensors_header([](auto &h) { h["embeddings.word_embeddings.weight"]["dtype"] = 5; }); },
         "dtype is not a string"},
        {"data offsets that are text",
         [](const EditedFolder &m) { m.edit_safetensors_header([](auto &h) { h["embeddings.word_embeddings.weight"]["data_offsets"] = {"0", "8"}; }); },
         "data_offsets is not two byte offsets"},
        {"a safetensors header nested 100,000 deep",
         [](const EditedFolder &m) { m.edit_safetensors_header([](auto &) {}, R"("deep": )" + nested(100000)); },
         "nested deeper"},
    };
    for (const auto &c : cases) {
        std::string what = c.what;
        CAPTURE(what);
        EditedFolder m;
        c.edit(m);
        try {
            load_embedder(m.path.string());
            FAIL("loaded");
        } catch (const ModelError &e) {
            CHECK_MESSAGE(std::string(e.what()).find(c.expect) != std::string::npos, std::string(e.what()));
        }
    }
}
