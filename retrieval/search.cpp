#include "retrieval/lexer.h"
#include "retrieval/retrieval.h"
#include "retrieval/sqlite.h"

#include <algorithm>
#include <unordered_set>

namespace saem {

namespace {
// A query longer than this many distinct terms is cut: BM25 cost grows with every OR-ed term and
// a pasted page of text gains nothing from its 200th word.
constexpr size_t max_query_terms = 64;

bool valid_metadata_key(const std::string &key) {
    return !key.empty() && key.size() <= 128 &&
           std::all_of(key.begin(), key.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
           });
}
}  // namespace

std::string fts_query(std::string_view text) {
    std::string out;
    std::unordered_set<std::string> seen;
    lexer::segment(text, [&](const lexer::Piece &piece) {
        if (seen.size() >= max_query_terms) return;
        std::string term = lexer::term(text, piece);
        if (term.empty() || !seen.insert(term).second) return;
        if (!out.empty()) out += " OR ";
        // Pieces hold only letters, digits and marks, so quoting needs no escaping; "" keeps that
        // true should segmentation ever change.
        out += '"';
        for (char c : piece.cjk ? std::string_view(term) : text.substr(piece.begin, piece.end - piece.begin)) {
            if (c == '"') out += '"';
            out += c;
        }
        out += '"';
        // A lone CJK character is indexed only inside bigrams: match it as their prefix.
        if (piece.cjk && term.size() <= 4) out += '*';
    });
    return out;
}

std::vector<std::string> analyze(std::string_view text) {
    std::vector<std::string> terms;
    lexer::segment(text, [&](const lexer::Piece &piece) {
        std::string term = lexer::term(text, piece);
        if (!term.empty()) terms.push_back(std::move(term));
    });
    return terms;
}

std::vector<Hit> Store::search(std::string_view query, const SearchOptions &opt) {
    std::string match = fts_query(query);
    if (match.empty() || opt.k <= 0) return {};
    // Rank first, touching only what filters need; chunk text is read for the top k alone.
    std::string ranked = "SELECT chunks_fts.rowid AS id, bm25(chunks_fts, 1.0, ?2) AS score FROM chunks_fts";
    bool filtered = !opt.filter.path_prefix.empty() || !opt.filter.metadata.empty();
    if (filtered)
        ranked += " JOIN chunks fc ON fc.id = chunks_fts.rowid JOIN documents fd ON fd.id = fc.document_id";
    ranked += " WHERE chunks_fts MATCH ?1";
    int next = 4;
    if (!opt.filter.path_prefix.empty()) ranked += " AND substr(fd.path, 1, length(?3)) = ?3";
    for (const auto &[key, value] : opt.filter.metadata) {
        if (!valid_metadata_key(key))
            throw StoreError("metadata filter key '" + key + "' must be letters, digits, '_', '-' or '.'");
        if (!(value.is_string() || value.is_number() || value.is_boolean()))
            throw StoreError("metadata filter '" + key + "' must be a string, number or boolean");
        ranked += " AND json_extract(fd.metadata, '$.\"" + key + "\"') = ?" + std::to_string(next++);
    }
    ranked += " ORDER BY score LIMIT ?" + std::to_string(next);
    std::string sql = "SELECT c.id, c.document_id, c.ordinal, c.page, c.heading, c.text, d.path, d.title, top.score "
                      "FROM (" + ranked + ") AS top JOIN chunks c ON c.id = top.id "
                      "JOIN documents d ON d.id = c.document_id ORDER BY top.score";

    sql::Stmt st(db_, sql);
    st.bind(1, match).bind(2, opt.heading_weight);
    if (!opt.filter.path_prefix.empty()) st.bind(3, opt.filter.path_prefix);
    int i = 4;
    for (const auto &[key, value] : opt.filter.metadata) {
        if (value.is_string()) st.bind(i++, value.get<std::string>());
        else if (value.is_boolean()) st.bind(i++, int64_t(value.get<bool>()));
        else if (value.is_number_integer()) st.bind(i++, value.get<int64_t>());
        else st.bind(i++, value.get<double>());
    }
    st.bind(next, opt.k);

    std::vector<Hit> hits;
    while (st.step()) {
        Hit h;
        h.chunk_id = st.i64(0);
        h.document_id = st.i64(1);
        h.ordinal = int(st.i64(2));
        h.page = int(st.i64(3));
        h.heading = st.str(4);
        h.text = st.str(5);
        h.path = st.str(6);
        h.title = st.str(7);
        h.score = -st.f64(8);  // FTS5's bm25() is negated so that ORDER BY ascending ranks best first
        hits.push_back(std::move(h));
    }
    if (opt.snippets && !hits.empty()) {
        sql::Stmt sn(db_, "SELECT snippet(chunks_fts, 0, ?2, ?3, '…', 24) FROM chunks_fts "
                          "WHERE chunks_fts MATCH ?1 AND rowid = ?4");
        for (Hit &h : hits) {
            sn.bind(1, match).bind(2, opt.mark_open).bind(3, opt.mark_close).bind(4, h.chunk_id);
            if (sn.step()) h.snippet = sn.str(0);
            sn.reset();
        }
    }
    return hits;
}

}  // namespace saem
