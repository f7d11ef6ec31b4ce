// The retrieval pipeline's contracts: the FAISS cache stamp and its incremental updates, the
// encoder an index was made with, store invariants checked by the store, and the CLI's option
// tables.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "api/api.h"
#include "helpers.h"
#include "retrieval/vectors.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

using namespace saem;

namespace {

std::vector<float> axis(int dim, int i) {
    std::vector<float> v(size_t(dim), 0.f);
    v[size_t(i)] = 1.f;
    return v;
}

// One chunk per document, with the given vector.
void put(Store &s, const std::string &path, const std::vector<float> &v) {
    DocumentInput doc;
    doc.path = path;
    doc.format = "txt";
    ChunkInput c;
    c.text = "text of " + path;
    c.end = int64_t(c.text.size());
    s.put_document(doc, {c}, v);
}

// An encoder whose query "qI" is the I-th axis, and an index of documents dI, one per axis.
TableEmbedder axes_encoder(int dim) {
    TableEmbedder e(dim, "test:table:" + std::to_string(dim));
    for (int i = 0; i < dim; ++i) e.table["q" + std::to_string(i)] = axis(dim, i);
    return e;
}

void put_axes(Store &s, const TableEmbedder &e, int n) {
    s.use_encoder({e.identity(), "", e.dim()});
    for (int i = 0; i < n; ++i) put(s, "d" + std::to_string(i), axis(e.dim(), i));
}

std::string dense_top(Store &s, const TableEmbedder &e, const std::string &query) {
    SearchRequest r;
    r.mode = SearchMode::dense;
    r.k = 1;
    auto hits = search(s, query, r, &e);
    return hits.empty() ? "" : hits[0].path;
}

void remove_db(const std::string &db) {
    for (const char *suffix : {"", "-wal", "-shm"}) std::remove((db + suffix).c_str());
}

struct Command {
    int status;
    std::string out, err;
};

Command saem_cli(const TempDir &dir, const std::string &args) {
    std::string out = dir / "out.txt", err = dir / "err.txt";
    int rc = std::system((std::string(SAEM_BINARY) + " " + args + " > " + out + " 2> " + err).c_str());
    return {WEXITSTATUS(rc), read_bytes(out), read_bytes(err)};
}

}  // namespace

TEST_CASE("a FAISS cache made for another database at the same path is never served") {
    TempDir dir;
    std::string db = dir / "v.db";
    TableEmbedder e(4, "test:table:4");
    e.table["q"] = axis(4, 0);
    {
        Store s(db);
        s.use_encoder({e.identity(), "", 4});
        put(s, "first-a", axis(4, 0));
        put(s, "first-b", axis(4, 1));
        CHECK(dense_top(s, e, "q") == "first-a");
        CHECK(fs::exists(db + ".faiss"));
    }
    // Deleted and built again: same path, same chunk ids, same number of vector changes (so the
    // same generation), other vectors. The old <db>.faiss stays behind.
    remove_db(db);
    Store s(db);
    s.use_encoder({e.identity(), "", 4});
    put(s, "second-a", axis(4, 1));
    put(s, "second-b", axis(4, 0));
    CHECK(dense_top(s, e, "q") == "second-b");
    CHECK(current_vector_index(s)->stamp().database_id == s.database_id());
}

TEST_CASE("the cache follows the index kind: flat, then HNSW on an unchanged index") {
    TempDir dir;
    Store s(dir / "v.db");
    put_axes(s, axes_encoder(4), 4);
    CHECK(current_vector_index(s)->stamp().kind == VectorIndexKind::flat);
    s.set_vector_index_kind(VectorIndexKind::hnsw);
    CHECK(current_vector_index(s)->stamp().kind == VectorIndexKind::hnsw);
    CHECK(s.stats().vector_index == "hnsw");
    // Another encoder of the same dimension is another source too.
    s.clear_vectors();
    TableEmbedder other(4, "test:other:4");
    CHECK(embed_missing(s, other, "") == 4);
    CHECK(current_vector_index(s)->stamp().encoder == "test:other:4");
}

TEST_CASE("documents added and removed update FAISS in place; HNSW rebuilds only to remove") {
    TempDir dir;
    std::string db = dir / "v.db";
    TableEmbedder e = axes_encoder(8);
    for (auto kind : {VectorIndexKind::flat, VectorIndexKind::hnsw}) {
        CAPTURE(vector_index_name(kind));
        remove_db(db);
        drop_vector_cache(db);
        Store s(db);
        s.set_vector_index_kind(kind);
        put_axes(s, e, 4);
        auto before = current_vector_index(s);
        REQUIRE(before);
        CHECK(before->size() == 4);
        put(s, "d4", axis(8, 4));
        put(s, "d5", axis(8, 5));
        auto added = current_vector_index(s);
        CHECK(added.get() == before.get());  // the same index, brought forward
        CHECK(added->size() == 6);
        CHECK(dense_top(s, e, "q5") == "d5");
        // Replacing a document removes its old chunk's vector and adds the new one.
        put(s, "d1", axis(8, 6));
        auto replaced = current_vector_index(s);
        CHECK(replaced->size() == 6);
        CHECK(dense_top(s, e, "q6") == "d1");
        if (kind == VectorIndexKind::flat) CHECK(replaced.get() == before.get());
        else CHECK(replaced.get() != before.get());  // HNSW cannot remove: rebuilt
        REQUIRE(s.remove_document(s.document_by_path("d2")->id));
        CHECK(current_vector_index(s)->size() == 5);
        CHECK(dense_top(s, e, "q2") != "d2");
        CHECK(current_vector_index(s)->stamp().generation == s.vector_generation());
    }
}

TEST_CASE("a new process catches up from <db>.faiss through the vector log") {
    TempDir dir;
    std::string db = dir / "v.db";
    TableEmbedder e = axes_encoder(8);
    {
        Store s(db);
        put_axes(s, e, 6);
        build_vector_index(s);
        put(s, "d6", axis(8, 6));  // one change after the file was written
    }
    // Another spelling of the same path is another in-memory entry: what a new process sees.
    Store s(dir.path.string() + "/./v.db");
    auto index = current_vector_index(s);
    REQUIRE(index);
    CHECK(index->size() == 7);
    CHECK(index->stamp().generation == s.vector_generation());
    CHECK(dense_top(s, e, "q6") == "d6");
    REQUIRE(s.vector_changes_since(0).has_value());
    CHECK(s.vector_changes_since(0)->size() == 7);
    // A log that no longer reaches back to the file's generation means a rebuild, not a gap.
    put(s, "d7", axis(8, 7));
    Sql(db).exec("DELETE FROM vector_log WHERE generation < " + std::to_string(s.vector_generation()));
    CHECK_FALSE(s.vector_changes_since(0).has_value());
    Store fresh(dir.path.string() + "/././v.db");
    CHECK(current_vector_index(fresh)->size() == 8);
    CHECK(dense_top(fresh, e, "q7") == "d7");
}

TEST_CASE("an index answers dense queries only with the encoder that made its vectors") {
    TempDir dir;
    Store s(dir / "v.db");
    TableEmbedder made(4, "test:made:4"), other(4, "test:other:4");
    s.use_encoder({made.identity(), "/models/made", 4});
    put(s, "a", axis(4, 0));
    SearchRequest r;
    r.query = "text";
    for (std::optional<SearchMode> mode : {std::optional<SearchMode>(), std::optional(SearchMode::dense), std::optional(SearchMode::hybrid)}) {
        r.mode = mode;
        try {
            Retriever({borrow<nn::Embedder>(&other), nullptr}).search(s, r);
            FAIL("a search with another encoder was answered");
        } catch (const RequestError &e) {
            CHECK(e.code == "encoder_mismatch");
            CHECK(std::string(e.what()).find("test:made:4") != std::string::npos);
            CHECK(std::string(e.what()).find("test:other:4") != std::string::npos);
        }
    }
    r.mode = SearchMode::lexical;  // asked for: no vectors involved
    CHECK(Retriever({borrow<nn::Embedder>(&other), nullptr}).search(s, r).hits.size() == 1);
    CHECK(Retriever({borrow<nn::Embedder>(&made), nullptr}).search(s, r).mode == SearchMode::lexical);
    r.mode.reset();
    CHECK(Retriever({borrow<nn::Embedder>(&made), nullptr}).search(s, r).mode == SearchMode::hybrid);
    // The server refuses to start with it.
    ServerOptions so;
    so.db = s.path();
    so.embedder = borrow<nn::Embedder>(&other);
    CHECK_THROWS_AS(Server{so}, RequestError);
}

TEST_CASE("a temporary BEIR index leaves no cache file behind") {
    TempDir dir;
    fs::path beir = dir.path / "tiny";
    write_bytes(beir / "corpus.jsonl", R"({"_id": "d1", "title": "Wells", "text": "Wells draw groundwater."}
{"_id": "d2", "title": "Rivers", "text": "Rivers carry rain to the sea."}
)");
    write_bytes(beir / "queries.jsonl", R"({"_id": "q1", "text": "groundwater wells"}
)");
    write_bytes(beir / "qrels" / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n");
    TableEmbedder e(4, "test:table:4");
    BeirOptions o;
    o.mode = SearchMode::hybrid;
    o.embedder = borrow<nn::Embedder>(&e);
    std::ostringstream log;
    BeirResult r = eval_beir(beir.string(), o, log);
    CHECK(r.queries == 1);
    CHECK(r.ndcg10 == doctest::Approx(1.0));
    std::string temp = (fs::temp_directory_path() / ("saem-beir-" + std::to_string(::getpid()) + ".db")).string();
    for (const char *suffix : {"", "-wal", "-shm", ".faiss"}) CHECK_FALSE(fs::exists(temp + suffix));
}

TEST_CASE("Store::check finds broken invariants; saem stats --check reports them") {
    TempDir dir;
    std::string db = dir / "c.db";
    {
        Store s(db);
        TableEmbedder e(4, "test:table:4");
        s.use_encoder({e.identity(), "", 4});
        put(s, "a", axis(4, 0));
        put(s, "b", axis(4, 1));
        REQUIRE(s.remove_document(s.document_by_path("b")->id));
        CHECK(s.check().empty());
    }
    auto ok = saem_cli(dir, "stats --check --db " + db);
    CHECK(ok.status == 0);
    CHECK(ok.out.find("\"check\":\"ok\"") != std::string::npos);
    {
        Sql c(db);
        REQUIRE(c.exec("UPDATE documents SET chunk_count = 7") == SQLITE_OK);
        REQUIRE(c.exec("INSERT INTO skipped(path, size, mtime_ns, reason) VALUES ('a', 0, 0, 'planted')") == SQLITE_OK);
        REQUIRE(c.exec("DELETE FROM vector_log WHERE generation = (SELECT max(generation) FROM vector_log)") == SQLITE_OK);
    }
    Store s(db);
    auto problems = s.check();
    std::string all;
    for (const auto &p : problems) all += p + "\n";
    CAPTURE(all);
    CHECK(all.find("1. documents whose chunk_count") != std::string::npos);
    CHECK(all.find("5. paths both indexed and skipped") != std::string::npos);
    CHECK(all.find("6. the vector log") != std::string::npos);
    auto bad = saem_cli(dir, "stats --check --db " + db);
    CHECK(bad.status == 1);
    CHECK(bad.err.find("5. paths both indexed and skipped") != std::string::npos);
}

TEST_CASE("CLI options come from each command's table") {
    TempDir dir;
    std::string db = " --db " + (dir / "cli.db");
    struct Case {
        std::string args;
        int status;
        std::string says;  // on stderr (status != 0) or stdout
    };
    const std::vector<Case> cases = {
        {"search water --kk 3" + db, 2, "unknown option --kk for 'saem search'; did you mean --k?"},
        {"search water --mod dense" + db, 2, "did you mean --mode?"},
        {"search water --chunk-tokens 9" + db, 2, "unknown option --chunk-tokens for 'saem search'"},
        {"index /nonexistent --chunk 9" + db, 2, "did you mean --chunk-tokens?"},
        {"search water --k" + db.substr(0, 0), 2, "--k needs a value (N)"},
        {"search water --k 3 --k 4" + db, 2, "--k is given twice"},
        {"search water --k three" + db, 2, "--k must be an integer from 1 to 1000, not 'three'"},
        {"search water --json=yes" + db, 2, "--json takes no value"},
        {"search" + db, 2, "'saem search' takes \"QUERY\", got 0"},
        {"search two words" + db, 2, "got 2"},
        {"search water --mmr 1.5" + db, 2, "--mmr must be a number from 0 to 1"},
        {"search water --mode sparse" + db, 2, "unknown search mode 'sparse'"},
        {"serch water" + db, 2, "did you mean 'search'?"},
        {"help search", 0, "--mmr LAMBDA"},
        {"search --help", 0, "usage: saem search \"QUERY\" [options]"},
        {"ask --help", 0, "--temperature T"},
        {"help", 0, "saem help COMMAND"},
        {"search water --k=2" + db, 0, "no matches for: water"},
        {"search" + db + " -- --k", 0, "no matches for: --k"},
        {"search" + db + " -- --help", 0, "no matches for: --help"},
        {"search water --help" + db, 0, "usage: saem search"},
        {"search water --path --json" + db, 2, "--path needs a value (PREFIX), not the option --json"},
        {"search water --path=--json" + db, 0, "no matches for: water"},
        {"index /nonexistent --vector-index tree" + db, 2, "--vector-index is flat, hnsw or ivfpq, not 'tree'"},
    };
    for (const auto &c : cases) {
        CAPTURE(c.args);
        auto r = saem_cli(dir, c.args);
        CHECK(r.status == c.status);
        CHECK((c.status ? r.err : r.out).find(c.says) != std::string::npos);
    }
}

TEST_CASE("IVF-PQ: additions in place, a removal rebuilds, so no stale list label names a chunk") {
    TempDir dir;
    Store s(dir / "ivf.db");
    s.set_vector_index_kind(VectorIndexKind::ivfpq);
    const int dim = 16, n = 27000;  // enough for IVF-PQ to train (40 vectors per list)
    TableEmbedder e(dim, "test:random:16");
    std::mt19937 rng(5);
    std::normal_distribution<float> g;
    auto unit = [&] {
        std::vector<float> v(dim);
        float norm = 0;
        for (auto &x : v) x = g(rng), norm += x * x;
        for (auto &x : v) x /= std::sqrt(norm);
        return v;
    };
    s.use_encoder({e.identity(), "", dim});
    std::vector<float> data;
    for (int i = 0; i < n; ++i) {
        auto v = unit();
        data.insert(data.end(), v.begin(), v.end());
    }
    put_vectors_document(s, "bulk", data, n);
    auto built = current_vector_index(s);
    REQUIRE(built);
    CHECK(built->stamp().trained == n);
    std::vector<float> probe_a = unit(), probe_b = unit();
    e.table["a"] = probe_a;
    e.table["b"] = probe_b;
    put(s, "doc-a", probe_a);
    CHECK(current_vector_index(s).get() == built.get());  // added in place
    {
        // Product quantisation is approximate: among 27,000 the probe's own vector is near the top.
        SearchRequest r;
        r.mode = SearchMode::dense;
        r.k = 50;
        auto hits = search(s, "a", r, &e);
        CHECK(std::any_of(hits.begin(), hits.end(), [](const Hit &h) { return h.path == "doc-a"; }));
    }
    REQUIRE(s.remove_document(s.document_by_path("bulk")->id));
    put(s, "doc-b", probe_b);
    auto after = current_vector_index(s);
    CHECK(after.get() != built.get());  // removal: rebuilt
    CHECK(after->size() == 2);
    CHECK(dense_top(s, e, "a") == "doc-a");
    CHECK(dense_top(s, e, "b") == "doc-b");
}

TEST_CASE("a damaged FAISS payload behind a valid stamp is rebuilt, not trusted") {
    TempDir dir;
    std::string db = dir / "v.db";
    TableEmbedder e = axes_encoder(4);
    {
        Store s(db);
        put_axes(s, e, 4);
        build_vector_index(s);
    }
    std::string bytes = read_bytes(db + ".faiss");
    write_bytes(db + ".faiss", bytes.substr(0, bytes.size() - 40));  // header and stamp intact
    Store s(dir.path.string() + "/./v.db");
    CHECK(dense_top(s, e, "q2") == "d2");
    CHECK(current_vector_index(s)->size() == 4);
}

TEST_CASE("searches on several threads while documents are added and removed") {
    TempDir dir;
    std::string db = dir / "v.db";
    TableEmbedder e = axes_encoder(8);
    {
        Store s(db);
        put_axes(s, e, 8);
    }
    std::atomic<bool> done{false};
    std::atomic<int> searches{0}, wrong{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 3; ++t)
        readers.emplace_back([&] {
            Store s(db);
            while (!done) {
                // d0..d3 are never touched: each must stay its own probe's best hit.
                for (int i = 0; i < 4; ++i)
                    if (dense_top(s, e, "q" + std::to_string(i)) != "d" + std::to_string(i)) ++wrong;
                ++searches;
            }
        });
    {
        Store s(db);
        for (int round = 0; round < 60; ++round) {
            int i = 4 + round % 4;
            put(s, "d" + std::to_string(i), axis(8, i));  // replace: remove and add
            if (round % 7 == 0) REQUIRE(s.remove_document(s.document_by_path("d" + std::to_string(i))->id));
        }
    }
    done = true;
    for (auto &t : readers) t.join();
    CHECK(searches > 0);
    CHECK(wrong == 0);
    Store s(db);
    CHECK(current_vector_index(s)->stamp().generation == s.vector_generation());
    CHECK(s.check().empty());
}
