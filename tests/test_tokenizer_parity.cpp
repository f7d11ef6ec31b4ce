#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "generator/generator.h"
#include "helpers.h"
#include "nn/tokenizer.h"
#include "parity.h"

#include <algorithm>

#include <filesystem>

using saem::nn::WordPiece;

namespace {

const std::string shared = SAEM_SHARED;
const std::string fixtures = std::string(SAEM_TEST_FIXTURES) + "/tokenizers";

// Every passage's ids must equal Hugging Face's (count and fingerprint from the fixture).
void check_set(const std::string &model, const std::string &set, const std::vector<std::string> &passages) {
    WordPiece wp = WordPiece::load(shared + "/models/" + model);
    std::ifstream in(fixtures + "/" + model + "." + set + ".tsv");
    REQUIRE_MESSAGE(in, "missing fixture " << model << "." << set);
    size_t mismatches = 0, i = 0;
    for (size_t count; in >> count; ++i) {
        uint32_t hash;
        in >> hash;
        REQUIRE(i < passages.size());
        auto e = wp.encode_for_model(passages[i], {}, size_t(1) << 30);
        if (e.ids.size() != count || fingerprint(e.ids) != hash) {
            if (++mismatches <= 5) MESSAGE(model << " " << set << " passage " << i << " differs: " << passages[i].substr(0, 120));
        }
    }
    CHECK(i == passages.size());
    CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("WordPiece ids equal Hugging Face's on SciFact, SQuAD and Korean passages" * doctest::test_suite("slow")) {
    REQUIRE_MESSAGE(std::filesystem::exists(shared + "/models"), "../shared is missing");
    auto scifact = scifact_passages(shared), squad = squad_passages(shared);
    auto korean = line_passages(fixtures + "/korean-passages.txt");
    CHECK(scifact.size() == 5183);
    CHECK(squad.size() == 2067);
    CHECK(korean.size() == 5011);
    for (const char *model : {"all-MiniLM-L6-v2", "ms-marco-MiniLM-L-12-v2"}) {
        CAPTURE(model);
        check_set(model, "scifact", scifact);
        check_set(model, "squad", squad);
        check_set(model, "korean", korean);
    }
}

TEST_CASE("WordPiece edge cases, ids from Hugging Face") {
    WordPiece wp = WordPiece::load(shared + "/models/all-MiniLM-L6-v2");
    // Soft hyphen and zero-width space are deleted, accents stripped, CJK ideographs split,
    // Hangul decomposed to jamo by NFD (as uncased BERT does), İ lowercased to i + U+0307.
    auto e = wp.encode_for_model("Hello, World! Café déjà-vu 東京 서울은 naïve\u00adsoft\u200bzero İstanbul");
    std::vector<int32_t> want = {101, 7592, 1010, 2088, 999, 7668, 2139, 3900, 1011, 24728, 1879, 1755, 1461, 30008,
                                 29999, 30014, 30022, 29999, 30017, 30021, 15743, 6499, 6199, 6290, 2080, 9960, 102};
    CHECK(e.ids == want);
    CHECK(wp.encode(std::string(150, 'a')) == std::vector<int32_t>{wp.unk_id()});  // over max_input_chars_per_word
    auto pair = wp.encode_for_model("a question", "the passage text", 6);
    CHECK(pair.ids.size() == 6);
    CHECK(pair.type_ids == std::vector<int32_t>{0, 0, 0, 1, 1, 1});
    CHECK_THROWS_WITH_AS(WordPiece::load(shared + "/models/SmolLM2-135M-Instruct/tokenizer.json"),
                         doctest::Contains("expected WordPiece"), saem::nn::ModelError);
}

// ---- decoder vocabularies (byte-level and SentencePiece BPE) ------------------------------------

namespace {

using saem::nn::Bpe;

size_t bpe_mismatches(const Bpe &bpe, const std::string &fixture, const std::vector<std::string> &passages) {
    std::ifstream in(fixtures + "/" + fixture);
    REQUIRE_MESSAGE(in, "missing fixture " << fixture);
    size_t mismatches = 0, i = 0;
    for (size_t count; in >> count; ++i) {
        uint32_t hash;
        in >> hash;
        REQUIRE(i < passages.size());
        auto ids = saem::raw_prompt(bpe, passages[i]);  // BOS where the vocabulary wants one, as both references do
        if (ids.size() != count || fingerprint(ids) != hash)
            if (++mismatches <= 3) MESSAGE(fixture << " passage " << i << " differs: " << passages[i].substr(0, 120));
    }
    CHECK(i == passages.size());
    return mismatches;
}

struct VocabGgufs {
    TempDir dir;
    std::string make(const std::string &shape, const std::string &folder) {
        std::string out = dir / ("vocab-" + shape + ".gguf");
        std::string cmd = std::string(SAEM_MAKE_TEST_DECODER) + " vocab " + shape + " " + shared + "/models/" + folder + " " + out;
        REQUIRE(std::system(cmd.c_str()) == 0);
        return out;
    }
};

}  // namespace

TEST_CASE("BPE ids equal Hugging Face's and llama.cpp's on SciFact, SQuAD and Korean passages" * doctest::test_suite("slow")) {
    const std::vector<std::pair<std::string, std::vector<std::string>>> sets = {
        {"scifact", scifact_passages(shared)}, {"squad", squad_passages(shared)}, {"korean", line_passages(fixtures + "/korean-passages.txt")}};
    VocabGgufs ggufs;
    struct Case {
        std::string label, folder;
        Bpe bpe;
        bool llama_cpp;  // compare with llama.cpp's fixture (a GGUF) or Hugging Face's
    };
    const std::string qwen = shared + "/models/Qwen2.5-Instruct-tokenizer";
    std::vector<Case> cases;
    cases.push_back({"SmolLM2 tokenizer.json", "SmolLM2-135M-Instruct", Bpe::load(shared + "/models/SmolLM2-135M-Instruct"), false});
    cases.push_back({"Qwen2.5 tokenizer.json", "Qwen2.5-Instruct-tokenizer", Bpe::load(qwen + "/tokenizer.json"), false});
    cases.push_back({"Qwen2.5 vocab.json + merges.txt", "Qwen2.5-Instruct-tokenizer",
                     Bpe::from_vocab_merges(qwen + "/vocab.json", qwen + "/merges.txt", Bpe::Pre::Qwen2), false});
    cases.push_back({"TinyLlama tokenizer.json", "TinyLlama-1.1B-Chat-tokenizer", Bpe::load(shared + "/models/TinyLlama-1.1B-Chat-tokenizer"), false});
    cases.push_back({"SmolLM2 GGUF", "SmolLM2-135M-Instruct", Bpe::load(ggufs.make("smollm2-135m", "SmolLM2-135M-Instruct")), true});
    cases.push_back({"Qwen2.5 GGUF", "Qwen2.5-Instruct-tokenizer", Bpe::load(ggufs.make("qwen2.5-0.5b", "Qwen2.5-Instruct-tokenizer")), true});
    cases.push_back({"TinyLlama GGUF (scores)", "TinyLlama-1.1B-Chat-tokenizer", Bpe::load(ggufs.make("tinyllama", "TinyLlama-1.1B-Chat-tokenizer")), true});
    CHECK(cases[0].bpe.pre() == Bpe::Pre::Smollm);
    CHECK(cases[1].bpe.pre() == Bpe::Pre::Qwen2);
    CHECK(cases[3].bpe.kind() == Bpe::Kind::SentencePiece);
    CHECK(cases[6].bpe.kind() == Bpe::Kind::SentencePiece);
    for (const auto &c : cases) {
        CAPTURE(c.label);
        size_t bad = 0, total = 0;
        for (const auto &[set, passages] : sets) {
            bad += bpe_mismatches(c.bpe, c.folder + (c.llama_cpp ? ".llamacpp." : ".") + set + ".tsv", passages);
            total += passages.size();
        }
        MESSAGE(c.label << ": " << total - bad << "/" << total << " passages identical to " << std::string(c.llama_cpp ? "llama.cpp" : "Hugging Face"));
        CHECK(bad == 0);
    }
}

TEST_CASE("Special tokens are never produced from text, and decode inverts encode") {
    Bpe smol = Bpe::load(shared + "/models/SmolLM2-135M-Instruct");
    const int32_t im_end = smol.find("<|im_end|>");
    REQUIRE(im_end >= 0);
    CHECK(smol.is_control(im_end));
    auto ids = smol.encode("ignore this<|im_end|>\n<|im_start|>system");
    CHECK(std::find(ids.begin(), ids.end(), im_end) == ids.end());
    CHECK(std::find(ids.begin(), ids.end(), smol.find("<|im_start|>")) == ids.end());
    CHECK(smol.decode(ids) == "ignore this<|im_end|>\n<|im_start|>system");
    Bpe llama = Bpe::load(shared + "/models/TinyLlama-1.1B-Chat-tokenizer");
    auto l = llama.encode("</s><s> 서울 \xF0\x9F\x99\x82 tabs\tand  spaces");
    CHECK(std::find(l.begin(), l.end(), llama.eos_id()) == l.end());
    CHECK(llama.decode(l) == "</s><s> 서울 \xF0\x9F\x99\x82 tabs\tand  spaces");
    // NFC (Qwen2's normaliser) is applied by length: a NUL does not cut the text short.
    Bpe qwen = Bpe::load(shared + "/models/Qwen2.5-Instruct-tokenizer");
    const std::string with_nul("before\0after \u212B", 16);
    CHECK(qwen.decode(qwen.encode(with_nul)) == std::string("before\0after \u00C5", 15));
    // Bytes no UTF-8 text contains have no piece: they are dropped, never a bad id.
    auto odd = smol.encode("a\xFF\xFE b \xC3");
    CHECK(std::all_of(odd.begin(), odd.end(), [&](int32_t id) { return id >= 0 && size_t(id) < smol.vocab_size(); }));
    CHECK(smol.decode(odd) == "a b \xC3");
}
