// BEIR evaluation: index a BEIR folder, run its queries, score with trec_eval's definitions.
#include "api/api.h"
#include "retrieval/metrics.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <unordered_set>

namespace saem {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char *doc_prefix = "beir/";

std::ifstream open_input(const fs::path &p) {
    std::ifstream in(p);
    if (!in) throw std::runtime_error("cannot read " + p.string());
    return in;
}

// Removes the temporary index however eval_beir leaves.
struct TempIndex {
    std::string path;
    ~TempIndex() {
        if (path.empty()) return;
        for (const char *suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
        drop_vector_cache(path);
    }
};

}  // namespace

BeirResult eval_beir(const std::string &dir, const BeirOptions &opt, std::ostream &log) {
    using clock = std::chrono::steady_clock;
    BeirResult r;
    TempIndex temp;
    std::string db = opt.db;
    if (db.empty()) {
        temp.path = (fs::temp_directory_path() / ("saem-beir-" + std::to_string(::getpid()) + ".db")).string();
        db = temp.path;
    }
    Store store(db);
    ChunkOptions chunking = opt.chunking;
    if (opt.embedder) {
        store.use_encoder({opt.embedder->identity(), opt.embedder_path, opt.embedder->dim()});
        if (!chunking.counter) chunking.counter = &opt.embedder->token_counter();
    }
    if (opt.mode != SearchMode::lexical && !opt.embedder)
        throw std::invalid_argument(std::string("--mode ") + mode_name(opt.mode) + " needs an encoder (--encoder PATH)");

    auto t0 = clock::now();
    {
        auto in = open_input(fs::path(dir) / "corpus.jsonl");
        std::string line;
        size_t line_no = 0, written = 0;
        while (std::getline(in, line)) {
            ++line_no;
            if (line.empty()) continue;
            json j = json::parse(line, nullptr, false);
            if (j.is_discarded() || !j.contains("_id"))
                throw std::runtime_error("corpus.jsonl line " + std::to_string(line_no) + ": not a BEIR document");
            std::string id = j["_id"].get<std::string>();
            std::string title = j.value("title", ""), text = j.value("text", "");
            std::string path = doc_prefix + id;
            std::string hash = content_hash(title + '\0' + text);
            ++r.documents;
            if (auto state = store.file_state(path); state && state->hash == hash) continue;
            LoadedDocument doc = load_document(text.empty() ? title : text, "txt", path);
            doc.title = title;
            DocumentInput in_doc;
            in_doc.path = path;
            in_doc.hash = hash;
            in_doc.title = title;
            in_doc.format = "txt";
            in_doc.size = int64_t(title.size() + text.size());
            in_doc.metadata = {{"beir_id", id}};
            auto chunks = chunk_document(doc, chunking);
            store.put_document(in_doc, chunks, opt.embedder ? embed_chunks(*opt.embedder, chunks) : std::vector<float>{});
            ++written;
        }
        if (opt.embedder) {
            embed_missing(store, *opt.embedder, opt.embedder_path);
            build_vector_index(store);
        }
        log << "corpus: " << r.documents << " documents (" << written << " indexed now)\n";
    }
    r.index_seconds = std::chrono::duration<double>(clock::now() - t0).count();

    std::map<std::string, std::string> queries;
    {
        auto in = open_input(fs::path(dir) / "queries.jsonl");
        std::string line;
        while (std::getline(in, line)) {
            json j = json::parse(line, nullptr, false);
            if (!j.is_discarded() && j.contains("_id")) queries[j["_id"].get<std::string>()] = j.value("text", "");
        }
    }
    std::map<std::string, Qrels> qrels;
    {
        auto in = open_input(fs::path(dir) / "qrels" / (opt.split + ".tsv"));
        std::string line;
        bool first = true;
        while (std::getline(in, line)) {
            std::istringstream ls(line);
            std::string q, d, s;
            if (!(ls >> q >> d >> s)) continue;
            if (first && q == "query-id") { first = false; continue; }
            first = false;
            qrels[q].emplace_back(d, std::stoi(s));
        }
    }

    auto t1 = clock::now();
    Retriever retriever({opt.embedder, nullptr});
    SearchRequest request;
    request.k = 1000;  // chunks; several may belong to one document
    request.mode = opt.mode;
    request.fusion = opt.fusion;
    request.snippets = false;
    request.heading_weight = opt.heading_weight;
    double ndcg = 0, recall = 0, mrr = 0;
    for (const auto &[qid, judged] : qrels) {
        auto q = queries.find(qid);
        if (q == queries.end()) throw std::runtime_error("query " + qid + " is judged in qrels but not in queries.jsonl");
        std::vector<std::string> ranked;
        std::unordered_set<std::string> seen;
        request.query = q->second;
        for (const Hit &h : retriever.search(store, request).hits) {
            std::string id = h.path.substr(std::string(doc_prefix).size());
            if (opt.ignore_identical_ids && id == qid) continue;
            if (seen.insert(id).second) ranked.push_back(id);
            if (ranked.size() == 100) break;
        }
        ndcg += ndcg_at(ranked, judged, 10);
        recall += recall_at(ranked, judged, 100);
        mrr += mrr_at(ranked, judged, 10);
    }
    r.search_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    r.queries = qrels.size();
    r.mode = mode_name(opt.mode);
    if (r.queries) {
        r.ndcg10 = ndcg / double(r.queries);
        r.recall100 = recall / double(r.queries);
        r.mrr10 = mrr / double(r.queries);
    }
    return r;
}

}  // namespace saem
