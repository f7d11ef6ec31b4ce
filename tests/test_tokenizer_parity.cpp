#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "nn/nn.h"
#include "parity.h"

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

TEST_CASE("WordPiece ids equal Hugging Face's on SciFact, SQuAD and Korean passages") {
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
    CHECK(wp.encode(std::string(150, 'a')) == std::vector<int32_t>{wp.unk_id});  // over max_input_chars_per_word
    auto pair = wp.encode_for_model("a question", "the passage text", 6);
    CHECK(pair.ids.size() == 6);
    CHECK(pair.type_ids == std::vector<int32_t>{0, 0, 0, 1, 1, 1});
    CHECK_THROWS_WITH_AS(WordPiece::load(shared + "/models/SmolLM2-135M-Instruct/tokenizer.json"),
                         doctest::Contains("expected WordPiece"), saem::nn::ModelError);
}
