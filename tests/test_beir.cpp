// End-to-end retrieval quality on BEIR SciFact (../shared/data/scifact), against published and
// independently computed figures.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "api/api.h"
#include "helpers.h"

using namespace saem;

namespace {
const std::string scifact = std::string(SAEM_SHARED) + "/data/scifact";
const std::string potion = std::string(SAEM_SHARED) + "/models/potion-base-4M-int8";

BeirResult run(const std::string &db, SearchMode mode, const nn::Embedder *enc, int chunk_tokens = 256) {
    BeirOptions o;
    o.db = db;
    o.mode = mode;
    o.embedder = borrow(enc);
    o.embedder_path = potion;
    o.chunking.max_tokens = chunk_tokens;
    if (chunk_tokens > 256) o.chunking.overlap_tokens = 0;
    std::ostringstream log;
    return eval_beir(scifact, o, log);
}
}  // namespace

TEST_CASE("BM25 reaches the published baseline") {
    TempDir dir;
    BeirResult r = run(dir / "lex.db", SearchMode::lexical, nullptr);
    CHECK(r.queries == 300);
    CHECK(r.documents == 5183);
    MESSAGE("lexical nDCG@10 " << r.ndcg10 << " Recall@100 " << r.recall100);
    CHECK(r.ndcg10 >= 0.68);  // published BM25 0.6874
    CHECK(r.recall100 >= 0.90);
}

TEST_CASE("potion-base-4M dense retrieval matches an independent implementation") {
    // Whole documents (title + text, one chunk each), as the reference embedded them: this
    // checks tokenizer, truncation and pooling end to end. Reference: nDCG@10 0.4598.
    auto enc = nn::load_embedder(potion);
    TempDir dir;
    BeirResult r = run(dir / "doc.db", SearchMode::dense, enc.get(), 8192);
    MESSAGE("dense (whole documents) nDCG@10 " << r.ndcg10 << " Recall@100 " << r.recall100);
    CHECK(r.ndcg10 == doctest::Approx(0.4598).epsilon(0.002 / 0.4598));
    CHECK(r.recall100 == doctest::Approx(0.8282).epsilon(0.005 / 0.8282));
}

TEST_CASE("hybrid keeps lexical precision and adds dense recall") {
    auto enc = nn::load_embedder(potion);
    TempDir dir;
    std::string db = dir / "hyb.db";
    BeirResult lexical = run(db, SearchMode::lexical, enc.get());
    BeirResult dense = run(db, SearchMode::dense, enc.get());
    BeirResult hybrid = run(db, SearchMode::hybrid, enc.get());
    MESSAGE("chunked: lexical " << lexical.ndcg10 << "/" << lexical.recall100 << ", dense " << dense.ndcg10 << "/"
                                << dense.recall100 << ", hybrid " << hybrid.ndcg10 << "/" << hybrid.recall100);
    CHECK(hybrid.ndcg10 >= lexical.ndcg10 - 0.005);
    CHECK(hybrid.recall100 > lexical.recall100 + 0.01);
    CHECK(hybrid.recall100 > dense.recall100);
}
