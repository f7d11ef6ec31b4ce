#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "helpers.h"
#include "ingest/ingest.h"

#include <set>

using namespace saem;

namespace {

// The invariants every chunking must keep, whatever the document.
void check_invariants(const LoadedDocument &doc, const std::vector<ChunkInput> &chunks, const ChunkOptions &opt) {
    nn::ApproxTokenCounter counter;
    std::string text = document_text(doc);
    int64_t covered_to = 0;
    for (const auto &c : chunks) {
        CAPTURE(c.text);
        CHECK_FALSE(c.text.empty());
        CHECK(c.text.find_first_not_of(" \n\t") != std::string::npos);
        REQUIRE(c.begin >= 0);
        REQUIRE(c.end <= int64_t(text.size()));
        CHECK(text.substr(size_t(c.begin), size_t(c.end - c.begin)) == c.text);  // spans are exact
        CHECK(nn::find_invalid_utf8(c.text) == std::string::npos);               // never cut in a character
        CHECK(c.tokens == int(counter.count(c.text)));
        CHECK(c.tokens <= opt.max_tokens);
        CHECK(c.heading.rfind(doc.title, 0) == 0);
        // Chunks move forward and leave no gap but whitespace.
        CHECK(c.begin >= 0);
        if (c.begin > covered_to) {
            std::string gap = text.substr(size_t(covered_to), size_t(c.begin - covered_to));
            CHECK(gap.find_first_not_of(" \n\t") == std::string::npos);
        }
        covered_to = std::max(covered_to, c.end);
    }
    std::string tail = text.substr(size_t(covered_to));
    CHECK(tail.find_first_not_of(" \n\t") == std::string::npos);
}

LoadedDocument doc_of(const std::string &text, const std::string &format = "txt") {
    return load_document(text, format, "doc." + format);
}

std::string sentences(int n, const std::string &word = "water") {
    std::string s;
    for (int i = 0; i < n; ++i) s += "Sentence " + std::to_string(i) + " talks about " + word + " and rivers. ";
    return s;
}

}  // namespace

TEST_CASE("short documents are one chunk per section") {
    auto doc = load_document(read_bytes(data_file("guide.md")), "md", "guide.md");
    ChunkOptions opt;
    auto chunks = chunk_document(doc, opt);
    check_invariants(doc, chunks, opt);
    std::set<std::string> headings;
    for (const auto &c : chunks) headings.insert(c.heading);
    CHECK(headings.count("Pump Guide › Installation › Operation › Faults"));
    CHECK(chunks.size() == headings.size());
}

TEST_CASE("long text is packed to the budget with sentence overlap") {
    auto doc = doc_of(sentences(200));
    ChunkOptions opt;
    opt.max_tokens = 64;
    opt.overlap_tokens = 16;
    auto chunks = chunk_document(doc, opt);
    check_invariants(doc, chunks, opt);
    REQUIRE(chunks.size() > 10);
    size_t overlapping = 0;
    for (size_t i = 1; i < chunks.size(); ++i) {
        if (i + 1 < chunks.size()) CHECK(chunks[i].tokens > opt.max_tokens / 2);  // packed, not one sentence each
        overlapping += chunks[i].begin < chunks[i - 1].end;
    }
    CHECK(overlapping == chunks.size() - 1);
}

TEST_CASE("no overlap when asked for none") {
    auto doc = doc_of(sentences(100));
    ChunkOptions opt;
    opt.max_tokens = 50;
    opt.overlap_tokens = 0;
    auto chunks = chunk_document(doc, opt);
    check_invariants(doc, chunks, opt);
    for (size_t i = 1; i < chunks.size(); ++i) CHECK(chunks[i].begin >= chunks[i - 1].end);
}

TEST_CASE("over-long sentences, words and CJK runs are split without breaking characters") {
    std::string no_stops;
    for (int i = 0; i < 500; ++i) no_stops += "word" + std::to_string(i) + " ";
    std::string huge_word(3000, 'x');
    std::string hangul;
    for (int i = 0; i < 800; ++i) hangul += "샘물";
    std::string mixed = "é🙂한" + std::string(10, 'a');
    for (const std::string &text : {no_stops, huge_word, hangul, mixed + hangul + huge_word}) {
        auto doc = doc_of(text);
        ChunkOptions opt;
        opt.max_tokens = 40;
        opt.overlap_tokens = 8;
        auto chunks = chunk_document(doc, opt);
        check_invariants(doc, chunks, opt);
        CHECK(chunks.size() > 1);
    }
}

TEST_CASE("pages and headings are never mixed in one chunk") {
    auto doc = load_document(read_bytes(data_file("report.pdf")), "pdf", "report.pdf");
    auto chunks = chunk_document(doc);
    check_invariants(doc, chunks, {});
    REQUIRE(chunks.size() == 2);
    CHECK(chunks[0].page == 1);
    CHECK(chunks[1].page == 2);
}

TEST_CASE("a custom token counter sets the budget") {
    struct ByteCounter : nn::TokenCounter {
        size_t count(std::string_view t) const override { return t.size(); }
    } bytes;
    auto doc = doc_of(sentences(30));
    ChunkOptions opt;
    opt.max_tokens = 200;
    opt.overlap_tokens = 0;
    opt.counter = &bytes;
    auto chunks = chunk_document(doc, opt);
    for (const auto &c : chunks) CHECK(c.text.size() <= 200);
    CHECK(chunks.size() >= sentences(30).size() / 200);
}
