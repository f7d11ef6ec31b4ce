#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "api/api.h"
#include "helpers.h"

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <fcntl.h>
#include <random>
#include <set>

using namespace saem;

namespace {

const std::string potion = std::string(SAEM_SHARED) + "/models/potion-base-4M-int8";

std::set<int64_t> chunk_ids(Store &s) {
    std::set<int64_t> ids;
    Sql c(s.path());
    sqlite3_stmt *st = nullptr;
    sqlite3_prepare_v2(c.db, "SELECT id FROM chunks", -1, &st, nullptr);
    while (sqlite3_step(st) == SQLITE_ROW) ids.insert(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    return ids;
}

// Every id FAISS can return, via a dense search for everything.
std::set<int64_t> faiss_ids(Store &s, const nn::Embedder &e) {
    SearchRequest so;
    so.mode = SearchMode::dense;
    so.k = 1000000;
    so.snippets = false;
    std::set<int64_t> ids;
    for (const auto &h : search(s, "anything at all", so, &e)) ids.insert(h.chunk_id);
    return ids;
}

}  // namespace

TEST_CASE("dense search finds meaning without shared words; hybrid keeps lexical hits") {
    TempDir dir;
    Store s(dir / "v.db");
    auto enc = nn::load_embedder(potion);
    s.use_encoder({enc->identity(), potion, enc->dim()});
    index_document(s, "dogs.txt", "Dogs are loyal pets. They bark at strangers and love long walks.", "txt", {}, {}, enc.get());
    index_document(s, "market.txt", "The stock market fell sharply as investors sold shares.", "txt", {}, {}, enc.get());
    index_document(s, "rain.txt", "Heavy rainfall flooded the valley and the river burst its banks.", "txt", {}, {}, enc.get());
    CHECK(s.stats().vectors == 3);

    SearchRequest lexical;
    CHECK(search(s, "puppy", lexical).empty());
    SearchRequest dense;
    dense.mode = SearchMode::dense;
    auto hits = search(s, "puppy", dense, enc.get());
    REQUIRE(hits.size() == 3);
    CHECK(hits[0].path == "dogs.txt");
    CHECK(hits[0].score > hits[1].score);
    CHECK_FALSE(hits[0].snippet.empty());
    hits = search(s, "equity trading losses", dense, enc.get());
    CHECK(hits[0].path == "market.txt");

    SearchRequest hybrid = dense;
    hybrid.mode = SearchMode::hybrid;
    hits = search(s, "river", hybrid, enc.get());
    REQUIRE_FALSE(hits.empty());
    CHECK(hits[0].path == "rain.txt");
    CHECK(hits[0].snippet.find("[river]") != std::string::npos);

    SearchRequest no_encoder;
    no_encoder.mode = SearchMode::dense;
    CHECK_THROWS_WITH_AS(search(s, "puppy", no_encoder), doctest::Contains("needs an encoder"), RequestError);
}

TEST_CASE("an index refuses vectors from another encoder, and reembed replaces them") {
    TempDir dir;
    Store s(dir / "v.db");
    auto enc = nn::load_embedder(potion);
    s.use_encoder({enc->identity(), potion, enc->dim()});
    index_document(s, "a.txt", "Springs feed rivers.", "txt", {}, {}, enc.get());
    TableEmbedder other(8, "test:other:8");
    CHECK_THROWS_WITH_AS(s.use_encoder({other.identity(), "/models/other", 8}), doctest::Contains("saem reembed"), StoreError);
    CHECK(s.encoder()->identity == enc->identity());
    s.clear_vectors();
    CHECK(embed_missing(s, other, "/models/other") == 1);
    CHECK(s.encoder()->identity == "test:other:8");
    CHECK(scalar(s, "SELECT length(embedding) FROM chunk_vectors") == 8 * 4);
}

TEST_CASE("FAISS never returns a chunk that is gone, however its cache file is") {
    TempDir dir;
    std::string db = dir / "v.db";
    auto enc = nn::load_embedder(potion);
    {
        Store s(db);
        s.use_encoder({enc->identity(), potion, enc->dim()});
        for (int i = 0; i < 20; ++i)
            index_document(s, "d" + std::to_string(i) + ".txt", "Document number " + std::to_string(i) + " about wells.",
                           "txt", {}, {}, enc.get());
        build_vector_index(s);
        CHECK(std::filesystem::exists(db + ".faiss"));
        CHECK(faiss_ids(s, *enc) == chunk_ids(s));
        int64_t gen = s.vector_generation();
        REQUIRE(s.remove_document(s.document_by_path("d3.txt")->id));
        CHECK(s.vector_generation() > gen);
        CHECK(faiss_ids(s, *enc) == chunk_ids(s));  // the in-memory index follows
        CHECK(chunk_ids(s).size() == 19);
    }
    // A damaged cache file is rebuilt, not trusted.
    write_bytes(db + ".faiss", "SAEMVEC1garbage");
    Store s(db);
    CHECK(faiss_ids(s, *enc) == chunk_ids(s));
}

TEST_CASE("kill -9 of a dense index run: FAISS and SQLite agree on reopen" * doctest::test_suite("slow")) {
    TempDir dir;
    fs::path docs = dir.path / "docs";
    for (int i = 0; i < 40; ++i)
        write_bytes(docs / ("f" + std::to_string(i) + ".md"), "# Note " + std::to_string(i) + "\n\nMarker uniq" +
                                                                  std::to_string(i) + "x about springs and wells.");
    std::string db = dir / "v.db";
    auto run = [&](const char *crash_at) {
        pid_t pid = fork();
        if (pid == 0) {
            if (crash_at) setenv("SAEM_CRASH_AT", crash_at, 1);
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, STDERR_FILENO);
            execl(SAEM_BINARY, SAEM_BINARY, "index", docs.c_str(), "--db", db.c_str(), "--encoder", potion.c_str(), nullptr);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        return status;
    };
    auto enc = nn::load_embedder(potion);
    for (const char *point : {"file.chunks_written:7", "file.committed:20"}) {
        CAPTURE(point);
        int status = run(point);
        REQUIRE(WIFSIGNALED(status));
        {
            Store s(db);
            CHECK(scalar(s, "SELECT count(*) FROM chunks") == scalar(s, "SELECT count(*) FROM chunk_vectors"));
            CHECK(s.check().empty());
            CHECK(faiss_ids(s, *enc) == chunk_ids(s));
        }
    }
    REQUIRE(run(nullptr) == 0);
    Store s(db);
    CHECK(s.stats().documents == 40);
    CHECK(faiss_ids(s, *enc) == chunk_ids(s));
    SearchRequest dense;
    dense.mode = SearchMode::dense;
    CHECK(search(s, "springs", dense, enc.get()).size() == 10);
}

TEST_CASE("100,000 random 384-d vectors: flat is exact, HNSW recall@10 >= 0.95" * doctest::test_suite("slow")) {
    // Random vectors drawn around 1,000 random centres, then normalised. Embeddings have this kind
    // of structure; vectors uniform on the 384-d sphere have none (a point's 10 nearest are barely
    // nearer than the rest), and no graph index finds them short of a full scan: FAISS's HNSW
    // reaches recall@10 0.72 there at efSearch 2048 (bench/README.md).
    const int n = 100000, dim = 384, queries = 50, centres = 1000;
    std::mt19937 rng(3);
    std::normal_distribution<float> normal;
    std::vector<float> centre(size_t(centres) * dim);
    for (float &x : centre) x = normal(rng);
    auto unit = [&] {
        std::vector<float> v(dim);
        const float *c = &centre[size_t(rng() % centres) * dim];
        double norm = 0;
        for (int k = 0; k < dim; ++k) { v[size_t(k)] = c[k] + 0.5f * normal(rng); norm += double(v[size_t(k)]) * v[size_t(k)]; }
        for (float &x : v) x = float(x / std::sqrt(norm));
        return v;
    };
    std::vector<float> data;
    data.reserve(size_t(n) * dim);
    for (int i = 0; i < n; ++i) {
        auto v = unit();
        data.insert(data.end(), v.begin(), v.end());
    }
    TableEmbedder emb(dim, "test:random:384");
    std::vector<std::vector<float>> qs;
    for (int q = 0; q < queries; ++q) {
        qs.push_back(unit());
        emb.table["q" + std::to_string(q)] = qs.back();
    }
    for (auto kind : {VectorIndexKind::flat, VectorIndexKind::hnsw}) {
        CAPTURE(int(kind));
        TempDir dir;
        Store s(dir / "v.db");
        s.set_vector_index_kind(kind);
        s.use_encoder({emb.identity(), "", dim});
        put_vectors_document(s, "random", data, n);
        int64_t first_id = scalar(s, "SELECT min(id) FROM chunks");
        double recall = 0;
        for (int q = 0; q < queries; ++q) {
            // Brute force over the same vectors.
            std::vector<std::pair<float, int64_t>> all(n);
            for (int i = 0; i < n; ++i) {
                float dot = 0;
                for (int k = 0; k < dim; ++k) dot += data[size_t(i) * dim + size_t(k)] * qs[size_t(q)][size_t(k)];
                all[size_t(i)] = {dot, first_id + i};
            }
            std::partial_sort(all.begin(), all.begin() + 10, all.end(), std::greater<>());
            std::set<int64_t> truth;
            for (int k = 0; k < 10; ++k) truth.insert(all[size_t(k)].second);
            SearchRequest so;
            so.mode = SearchMode::dense;
            so.snippets = false;
            auto hits = search(s, "q" + std::to_string(q), so, &emb);
            REQUIRE(hits.size() == 10);
            size_t found = 0;
            for (const auto &h : hits) found += truth.count(h.chunk_id);
            if (kind == VectorIndexKind::flat) {  // exact: the same ten, with the same scores in order
                CHECK(found == 10);
                for (int k = 0; k < 10; ++k) CHECK(hits[size_t(k)].score == doctest::Approx(all[size_t(k)].first).epsilon(1e-4));
            }
            recall += double(found) / 10;
        }
        recall /= queries;
        MESSAGE("recall@10 " << recall << (kind == VectorIndexKind::hnsw ? " (HNSW)" : " (flat)"));
        CHECK(recall >= (kind == VectorIndexKind::flat ? 1.0 : 0.95));
    }
}

TEST_CASE("MMR trades a near-duplicate for a different relevant chunk") {
    auto enc = nn::load_embedder(potion);
    for (bool vectors : {true, false}) {
        CAPTURE(vectors);
        TempDir dir;
        Store s(dir / "m.db");
        const nn::Embedder *e = vectors ? enc.get() : nullptr;
        if (e) s.use_encoder({enc->identity(), potion, enc->dim()});
        index_document(s, "a.txt", "Dogs bark at night and dogs guard the farm house.", "txt", {}, {}, e);
        index_document(s, "b.txt", "Dogs bark at night and dogs guard the farm house too.", "txt", {}, {}, e);
        index_document(s, "c.txt", "Trained dogs help shepherds move sheep across hills.", "txt", {}, {}, e);
        SearchRequest plain;
        plain.k = 2;
        plain.mode = vectors ? SearchMode::hybrid : SearchMode::lexical;
        auto top = search(s, "dogs bark at night", plain, e);
        REQUIRE(top.size() == 2);
        CHECK(std::set<std::string>{top[0].path, top[1].path} == std::set<std::string>{"a.txt", "b.txt"});
        SearchRequest diverse = plain;
        diverse.mmr_lambda = 0.3;
        auto mmr = search(s, "dogs bark at night", diverse, e);
        REQUIRE(mmr.size() == 2);
        CHECK(mmr[0].path == top[0].path);  // the most relevant stays first
        CHECK(mmr[1].path == "c.txt");
    }
}

namespace {

// A BertForSequenceClassification folder (ms-marco cross-encoder layout, tiny sizes, real vocab,
// random weights).
void write_cross_encoder(const fs::path &dir) {
    const int H = 32, I = 64, L = 2, V = 30522, P = 512;
    fs::create_directories(dir);
    fs::copy_file(std::string(SAEM_SHARED) + "/models/all-MiniLM-L6-v2/vocab.txt", dir / "vocab.txt");
    nlohmann::json cfg = {{"architectures", {"BertForSequenceClassification"}}, {"model_type", "bert"},
                          {"hidden_size", H}, {"intermediate_size", I}, {"num_hidden_layers", L},
                          {"num_attention_heads", 2}, {"vocab_size", V}, {"max_position_embeddings", P},
                          {"type_vocab_size", 2}, {"layer_norm_eps", 1e-12}, {"hidden_act", "gelu"}};
    write_bytes(dir / "config.json", cfg.dump());
    write_bytes(dir / "tokenizer_config.json", R"({"do_lower_case": true})");
    std::vector<std::pair<std::string, std::vector<int64_t>>> shapes = {
        {"bert.embeddings.word_embeddings.weight", {V, H}}, {"bert.embeddings.position_embeddings.weight", {P, H}},
        {"bert.embeddings.token_type_embeddings.weight", {2, H}}, {"bert.embeddings.LayerNorm.weight", {H}},
        {"bert.embeddings.LayerNorm.bias", {H}}, {"bert.pooler.dense.weight", {H, H}}, {"bert.pooler.dense.bias", {H}},
        {"classifier.weight", {1, H}}, {"classifier.bias", {1}}};
    for (int l = 0; l < L; ++l) {
        std::string b = "bert.encoder.layer." + std::to_string(l) + ".";
        for (const char *n : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
            shapes.push_back({b + n + ".weight", {H, H}});
            shapes.push_back({b + n + ".bias", {H}});
        }
        shapes.push_back({b + "intermediate.dense.weight", {I, H}});
        shapes.push_back({b + "intermediate.dense.bias", {I}});
        shapes.push_back({b + "output.dense.weight", {H, I}});
        shapes.push_back({b + "output.dense.bias", {H}});
        for (const char *n : {"attention.output.LayerNorm", "output.LayerNorm"}) {
            shapes.push_back({b + n + ".weight", {H}});
            shapes.push_back({b + n + ".bias", {H}});
        }
    }
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.f, 0.5f);
    nlohmann::json header = nlohmann::json::object();
    std::string data;
    for (auto &[name, shape] : shapes) {
        int64_t n = 1;
        for (auto d : shape) n *= d;
        bool ln = name.find("LayerNorm.weight") != std::string::npos;
        header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {data.size(), data.size() + size_t(n) * 4}}};
        for (int64_t i = 0; i < n; ++i) {
            float x = ln ? 1.f : normal(rng);
            data.append(reinterpret_cast<const char *>(&x), 4);
        }
    }
    std::string h = header.dump();
    uint64_t hn = h.size();
    write_bytes(dir / "model.safetensors", std::string(reinterpret_cast<const char *>(&hn), 8) + h + data);
}

}  // namespace

TEST_CASE("a cross-encoder reorders the top hits by its own scores") {
    TempDir dir;
    write_cross_encoder(dir.path / "ce");
    auto reranker = nn::load_reranker(dir / "ce");
    CHECK_THROWS_WITH_AS(nn::load_reranker(potion), doctest::Contains("cross-encoder"), nn::ModelError);
    Store s(dir / "r.db");
    const char *texts[] = {"Wells draw water from aquifers.", "Springs are where aquifers reach the surface.",
                           "Rivers carry water from springs to the sea.", "Aquifers refill slowly after droughts.",
                           "Water tables fall when wells pump too much water."};
    for (int i = 0; i < 5; ++i) index_document(s, "d" + std::to_string(i) + ".txt", texts[i], "txt", {}, {});
    SearchRequest so;
    so.k = 5;
    so.rerank = true;
    auto hits = search(s, "water aquifers", so, nullptr, reranker.get());
    REQUIRE(hits.size() == 5);
    std::vector<std::string> passages;
    for (const auto &h : hits) passages.push_back(embedding_text(h.heading, h.text));
    auto scores = reranker->score("water aquifers", passages);
    for (size_t i = 0; i + 1 < hits.size(); ++i) {
        CHECK(scores[i] >= scores[i + 1]);
        CHECK(hits[i].score == doctest::Approx(scores[i]));
    }
    // Pairs, not the passage alone: the same passage scores differently for another query.
    CHECK(reranker->score("volcanoes", {passages[0]})[0] != doctest::Approx(scores[0]));
}

TEST_CASE("encoder discovery: flag, then the index's own encoder, then the config file, then model folders") {
    TempDir dir;
    unsetenv("SAEM_ENCODER");
    setenv("SAEM_MODELS", (dir / "no-such-folder").c_str(), 1);
    setenv("SAEM_CONFIG", (dir / "config.json").c_str(), 1);
    CHECK_FALSE(find_encoder("", nullptr).embedder);  // nothing configured, nothing found
    write_bytes(dir.path / "config.json", nlohmann::json{{"encoder", potion}}.dump());
    auto from_config = find_encoder("", nullptr);
    REQUIRE(from_config.embedder);
    CHECK(from_config.reason.find("config file") != std::string::npos);
    // An index built with another encoder keeps using it.
    write_cross_encoder(dir.path / "ce");  // not an encoder: skipped in folders, refused when named
    CHECK_THROWS_AS(find_encoder(dir / "ce", nullptr), nn::ModelError);
    Store s(dir / "d.db");
    s.use_encoder({from_config.embedder->identity(), from_config.path, from_config.embedder->dim()});
    CHECK(find_encoder("", &s).reason.find("built with") != std::string::npos);
    // Model folders, from the config file.
    write_bytes(dir.path / "config.json", nlohmann::json{{"model_folders", {std::string(SAEM_SHARED) + "/models"}}}.dump());
    auto found = find_encoder("", nullptr);
    REQUIRE(found.embedder);
    CHECK(found.path.find("potion-base-4M-int8") != std::string::npos);
    unsetenv("SAEM_CONFIG");
    unsetenv("SAEM_MODELS");
}
