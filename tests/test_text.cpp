#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "nn/text.h"

using namespace saem::nn;

TEST_CASE("UTF-8 validation finds the first bad byte") {
    struct Case { std::string text; size_t bad; };
    const Case cases[] = {
        {"plain ascii", std::string::npos},
        {"한국어 and café", std::string::npos},
        {"emoji 🙂 ok", std::string::npos},
        {"bad \xff byte", 4},
        {"truncated \xe2\x82", 10},
        {"overlong \xc0\xaf", 9},
        {"surrogate \xed\xa0\x80", 10},
        {"too big \xf4\x90\x80\x80", 8},
    };
    for (const auto &c : cases) {
        CAPTURE(c.text);
        CHECK(find_invalid_utf8(c.text) == c.bad);
    }
}

TEST_CASE("sentences split at end punctuation, CJK stops and blank lines, not inside numbers") {
    std::string text = "Its temperature was 9.5 degrees. Really? Yes!\n\nNew paragraph without a stop\nstill same. 서울이다。끝";
    auto spans = split_sentences(text);
    std::vector<std::string> got;
    for (auto [b, e] : spans) got.push_back(text.substr(b, e - b));
    std::vector<std::string> want = {"Its temperature was 9.5 degrees.", "Really?", "Yes!",
                                     "New paragraph without a stop\nstill same.", "서울이다。", "끝"};
    CHECK(got == want);
    CHECK(split_sentences("   \n\n  ").empty());
}

TEST_CASE("approximate token counts grow with words, punctuation and CJK characters") {
    ApproxTokenCounter c;
    CHECK(c.count("") == 0);
    CHECK(c.count("the cat sat") == 3);
    CHECK(c.count("the cat, sat.") == 5);
    CHECK(c.count("internationalisation") == 4);  // 20 letters: a long word is several pieces
    CHECK(c.count("서울") == 2);
}
