#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "generator/generator.h"
#include "generator/router.h"
#include "helpers.h"
#include "retrieval/pipeline.h"
#include "ingest/ingest.h"

#include <fstream>
#include <sstream>

using namespace saem;

namespace {
// What `saem ask` does without a model: retrieve five chunks, quote from them.
Answer ask(Store &s, const std::string &question) {
    SearchRequest r;
    r.query = question;
    r.k = 5;
    r.snippets = false;
    r.term_idf = true;
    return answer_extractive(question, Retriever().search(s, r));
}
}  // namespace

TEST_CASE("extractive answers quote supporting sentences with citations that resolve") {
    TempDir dir;
    Store s(dir / "i.db");
    index_document(s, "/kb/wal.md",
                   "# WAL\n\n## Concurrency\n\nIn WAL mode readers do not block writers. Checkpoints copy pages back.\n\n"
                   "## Other\n\nThe log file grows until a checkpoint runs.",
                   "md", {}, {});
    index_document(s, "/kb/report.pdf", read_bytes(data_file("report.pdf")), "pdf", {}, {});
    index_document(s, "/kb/noise.txt", "Writers of novels rarely read manuals.", "txt", {}, {});

    Answer a = ask(s, "Do readers block writers in WAL mode?");
    REQUIRE(a.found);
    REQUIRE_FALSE(a.sentences.empty());
    CHECK(a.sentences[0].text == "In WAL mode readers do not block writers.");
    CHECK(a.text.rfind("In WAL mode readers do not block writers. [1]", 0) == 0);
    REQUIRE(a.citations.size() >= 1);
    CHECK(a.citations[0].number == 1);
    CHECK(a.citations[0].path == "/kb/wal.md");
    CHECK(a.citations[0].heading == "WAL › Concurrency");
    CHECK(a.note.find("No generator model") != std::string::npos);
    for (const auto &sent : a.sentences) {
        CHECK(sent.citation >= 1);
        CHECK(sent.citation <= int(a.citations.size()));
    }

    Answer p = ask(s, "When were the sand filters replaced?");
    REQUIRE(p.found);
    CHECK(p.sentences[0].text.find("sand filters in April") != std::string::npos);
    CHECK(p.citations[p.sentences[0].citation - 1].page == 2);
}

TEST_CASE("says plainly when nothing relevant is found") {
    TempDir dir;
    Store s(dir / "i.db");
    index_document(s, "a.txt", "Pumps move water uphill.", "txt", {}, {});
    for (const char *q : {"volcanic eruptions in Iceland", "the of and", ""}) {
        CAPTURE(q);
        Answer a = ask(s, q);
        CHECK_FALSE(a.found);
        CHECK(a.citations.empty());
        CHECK(a.text.find("Nothing") == 0);
    }
}

TEST_CASE("the router's auto decision, a table of questions over the samples") {
    TempDir dir;
    Store s(dir / "i.db");
    std::ostringstream log;
    index_folder(s, std::string(SAEM_SOURCE_DIR) + "/samples", IndexOptions{}, log);
    std::ifstream in(std::string(SAEM_TEST_CASES) + "/routes.txt");
    REQUIRE(in);
    int cases = 0;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        auto t1 = line.find('\t'), t2 = line.rfind('\t');
        REQUIRE(t1 != t2);
        std::string question = line.substr(0, t1), route = line.substr(t1 + 1, t2 - t1 - 1), reason = line.substr(t2 + 1);
        CAPTURE(question);
        SearchRequest r;
        r.query = question;
        r.k = 5;
        r.snippets = false;
        r.term_idf = true;
        RouterOptions o;
        RouteSignals sig = route_signals(o, question, Retriever().search(s, r));
        RouteDecision d = choose_route(o, sig, true);
        CAPTURE(d.reason);
        CHECK((d.remote ? "remote" : "local") == route);
        CHECK(d.reason.find(reason) != std::string::npos);
        ++cases;
    }
    CHECK(cases >= 10);

    // The local context is its own signal; the configured policies override every signal.
    RouteSignals easy;
    easy.confidence = 1;
    easy.sources_needed = 1;
    easy.question_words = 5;
    CHECK_FALSE(choose_route({}, easy, true).remote);
    CHECK(choose_route({}, easy, false).remote);
    CHECK(choose_route({}, easy, false).reason.find("context") != std::string::npos);
    RouterOptions forced;
    forced.policy = RoutePolicy::remote;
    CHECK(choose_route(forced, easy, true).remote);
    forced.policy = RoutePolicy::local;
    CHECK_FALSE(choose_route(forced, easy, false).remote);

    // Thresholds come from the config file's "router" object; mistakes are named.
    RouterOptions c = router_options_from_json(nlohmann::json::parse(R"({"min_confidence": 0.9, "max_local_sources": 1, "policy": "remote"})"));
    CHECK(c.min_confidence == 0.9);
    CHECK(c.max_local_sources == 1);
    CHECK(c.policy == RoutePolicy::remote);
    CHECK_THROWS_WITH_AS(router_options_from_json(nlohmann::json::parse(R"({"min_confidense": 0.9})")),
                         doctest::Contains("min_confidense"), std::invalid_argument);
    CHECK_THROWS_AS(router_options_from_json(nlohmann::json::parse(R"({"min_confidence": 2})")), std::invalid_argument);
    CHECK_THROWS_AS(parse_route_policy("sometimes"), std::invalid_argument);
}
