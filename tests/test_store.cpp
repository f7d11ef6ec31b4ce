#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "helpers.h"
#include "ingest/ingest.h"

#include <sqlite3.h>

using namespace saem;

namespace {

int64_t add(Store &s, const std::string &path, const std::string &text, const nlohmann::json &meta = nlohmann::json::object()) {
    return index_document(s, path, text, format_for_path(path).value_or("txt"), meta, {});
}

}  // namespace

TEST_CASE("a new index has the current schema, and reopening keeps the data") {
    TempDir dir;
    {
        Store s(dir / "i.db");
        CHECK(scalar(s, "PRAGMA user_version") == Store::schema_version);
        CHECK(scalar(s, "PRAGMA journal_mode='wal'") >= -1);
        add(s, "a.txt", "Aquifers hold groundwater.");
    }
    Store s(dir / "i.db");
    CHECK(s.stats().documents == 1);
    CHECK(search(s, "groundwater").size() == 1);
}

TEST_CASE("an index from a newer saem is refused with a clear error") {
    TempDir dir;
    {
        Store s(dir / "i.db");
        Sql(s.path()).exec("PRAGMA user_version=99");
    }
    CHECK_THROWS_WITH_AS(Store(dir / "i.db"), doctest::Contains("newer than this saem"), StoreError);
}

TEST_CASE("a file that is not SQLite is refused with its name in the error") {
    TempDir dir;
    write_bytes(dir.path / "junk.db", std::string(4096, 'j'));
    CHECK_THROWS_WITH_AS(Store(dir / "junk.db"), doctest::Contains("junk.db"), StoreError);
}

TEST_CASE("replacing a document keeps its id, replaces its chunks and never reuses chunk ids") {
    TempDir dir;
    Store s(dir / "i.db");
    int64_t id = add(s, "doc.md", "# One\n\nOld text about pumps.\n\n# Two\n\nMore about pumps.");
    int64_t max_chunk = scalar(s, "SELECT max(id) FROM chunks");
    CHECK(scalar(s, "SELECT count(*) FROM chunks") == 2);
    CHECK(add(s, "doc.md", "New text about valves.") == id);
    CHECK(scalar(s, "SELECT count(*) FROM chunks") == 1);
    CHECK(scalar(s, "SELECT min(id) FROM chunks") > max_chunk);
    CHECK(search(s, "pumps").empty());
    CHECK(search(s, "valves").size() == 1);
    CHECK(s.document(id)->chunks == 1);
    REQUIRE(s.remove_document(id));
    CHECK_FALSE(s.remove_document(id));
    CHECK(scalar(s, "SELECT count(*) FROM chunks") == 0);
    CHECK(search(s, "valves").empty());
    // FTS5's own consistency check over the external-content index.
    CHECK(s.check().empty());
}

TEST_CASE("search: stemming, stopwords, heading boost, Korean, snippets, filters") {
    TempDir dir;
    Store s(dir / "i.db");
    add(s, "/docs/en/conn.md", "# Connections\n\nThe server connected to three clients.", {{"lang", "en"}, {"year", 2024}});
    add(s, "/docs/en/other.md", "# Other\n\nA note mentioning connections once, among many other words here.", {{"lang", "en"}});
    add(s, "/docs/ko/seoul.md", read_bytes(data_file("korean.md")), {{"lang", "ko"}});

    auto hits = search(s, "connecting");  // stems to connect
    REQUIRE(hits.size() == 2);
    CHECK(hits[0].path == "/docs/en/conn.md");  // title/heading match ranks first
    CHECK(hits[0].score > hits[1].score);
    CHECK(hits[0].snippet.find("[connected]") != std::string::npos);

    CHECK(search(s, "the of and").empty());  // only stopwords

    for (const char *q : {"서울", "수도", "한강이", "김치는 무엇으로 만드나", "서울은"}) {
        CAPTURE(q);
        auto k = search(s, q);
        REQUIRE_FALSE(k.empty());
        CHECK(k[0].path == "/docs/ko/seoul.md");
    }
    // A hard line wrap inside a Korean word (as in Debian's debian-faq.ko.txt) does not split it.
    add(s, "/docs/ko/wrapped.txt", "수정된 버전을 배\n    포하면 됩니다.");
    auto wrapped = search(s, "배포");
    REQUIRE(wrapped.size() == 1);
    CHECK(wrapped[0].path == "/docs/ko/wrapped.txt");
    auto food = search(s, "배추");
    REQUIRE(food.size() == 1);
    CHECK(food[0].heading == "한국어 문서 › 음식");
    CHECK(search(s, "배").size() == 2);  // a lone syllable matches as a prefix: 배추, 배포

    SearchRequest only_ko;
    only_ko.filter.path_prefix = "/docs/ko/";
    CHECK(search(s, "connections 서울", only_ko).size() == 1);
    SearchRequest by_meta;
    by_meta.filter.metadata = {{"lang", "en"}, {"year", 2024}};
    auto m = search(s, "connections", by_meta);
    REQUIRE(m.size() == 1);
    CHECK(m[0].path == "/docs/en/conn.md");
    SearchRequest bad_key;
    bad_key.filter.metadata = {{"x') OR 1=1 --", "en"}};
    CHECK_THROWS_AS(search(s, "connections", bad_key), RequestError);
}
