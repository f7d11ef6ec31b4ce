#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "helpers.h"
#include "ingest/ingest.h"

#include <random>

using namespace saem;

namespace {

struct Fixture {
    TempDir dir;
    Store store{dir / "q.db"};
    Fixture() {
        index_document(store, "a.txt", "Spring water flows from the ground.", "txt", {}, {});
        index_document(store, "b.txt", "샘물은 맑고 차갑다.", "txt", {}, {});
    }
};

}  // namespace

TEST_CASE("hostile query table: no input is an FTS5 syntax error") {
    Fixture f;
    std::ifstream in(std::string(SAEM_TEST_CASES) + "/hostile_queries.txt");
    REQUIRE(in);
    std::string line;
    int cases = 0;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#') continue;
        auto tab = line.rfind('\t');
        REQUIRE(tab != std::string::npos);
        std::string query = line.substr(0, tab), expect = line.substr(tab + 1);
        CAPTURE(query);
        std::vector<Hit> hits;
        CHECK_NOTHROW(hits = search(f.store, query));
        if (expect != "any") CHECK(hits.size() == size_t(std::stoi(expect)));
        ++cases;
    }
    CHECK(cases >= 30);
}

TEST_CASE("the sanitiser quotes every term and ORs them") {
    CHECK(fts_query("Water AND spring") == R"("Water" OR "spring")");
    CHECK(fts_query("the of a") == "");
    CHECK(fts_query("water water Water waters") == R"("water")");  // one term per stem
    CHECK(fts_query("샘물") == R"("샘물")");
    CHECK(fts_query("샘") == R"("샘"*)");
    CHECK(fts_query("맑은샘물") == R"("맑은" OR "은샘" OR "샘물")");
}

TEST_CASE("random bytes never break a search") {
    Fixture f;
    std::mt19937 rng(42);
    const std::string alphabet = "\"'()*:^-+{}ANDORNEAR wa\xff\xfe\xc3\xa9\xea\xb0\x80\x00\n\t\\";
    for (int i = 0; i < 2000; ++i) {
        std::string q;
        size_t len = rng() % 40;
        for (size_t j = 0; j < len; ++j)
            q += (rng() % 4 == 0) ? char(rng() % 256) : alphabet[rng() % alphabet.size()];
        CAPTURE(q);
        CHECK_NOTHROW(search(f.store, q));
    }
}

TEST_CASE("a very long query is accepted and bounded") {
    Fixture f;
    std::string q;
    for (int i = 0; i < 5000; ++i) q += "term" + std::to_string(i) + " ";
    q += "water";
    CHECK_NOTHROW(search(f.store, q));
    std::string match = fts_query(q);
    CHECK(std::count(match.begin(), match.end(), '"') == 2 * 64);
}
