#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "generator/generator.h"
#include "helpers.h"
#include "retrieval/pipeline.h"
#include "ingest/ingest.h"

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
