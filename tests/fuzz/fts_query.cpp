// The FTS5 query built from any user text must be one FTS5 accepts: run against a small index,
// a query is never an SQL error.
#include "fuzz.h"
#include "retrieval/store.h"
#include "retrieval/terms.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static saem::Store *store = [] {
        auto *s = new saem::Store(fuzz::as_file("", ".db"));
        saem::DocumentInput doc;
        doc.path = "notes.txt";
        doc.format = "txt";
        std::vector<saem::ChunkInput> chunks(2);
        chunks[0].text = "BM25 ranks documents by term frequency; 한국어 검색도 된다.";
        chunks[1].text = "Quantisation stores weights in blocks of 32 with one scale.";
        for (auto &c : chunks) c.end = int(c.text.size());
        s->put_document(doc, chunks);
        return s;
    }();
    const std::string query = saem::fts_query(fuzz::bytes(data, size));
    if (query.empty()) return 0;
    try {
        store->match_chunks(query, {}, 1.0, 10);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "FTS5 refused the built query %s: %s\n", query.c_str(), e.what());
        std::abort();
    }
    return 0;
}
