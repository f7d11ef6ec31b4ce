// The store: one SQLite file (WAL) per index.
//
// Invariants. Every write below keeps these true at every instant a crash can hit, and
// Store::check() (`saem stats --check`) verifies each one on a live file:
//  1. A document row, its chunk rows and their FTS5 entries change together in one transaction
//     (put_document, remove_document, remove_path): no chunk without its document, no FTS entry
//     without its chunk, no document with half its chunks (documents.chunk_count = its chunks).
//  2. A document row's size, mtime and hash are written in the same transaction as its chunks, so
//     a row whose size and mtime match the file on disk describes exactly the chunks stored for it.
//     The indexer may therefore skip such a file without reading it.
//  3. Paths are UNIQUE: a document is replaced in place (same id), never inserted twice.
//  4. Chunk ids are AUTOINCREMENT and never reused, so an id held by a cache (a vector index, a
//     client) can never name a different chunk later.
//  5. A skipped-file row is written only after its document row, if any, is gone (in the same
//     transaction), so a path is never both indexed and skipped.
//  6. A chunk's vector is inserted in the chunk's transaction and deleted with it (ON DELETE
//     CASCADE); every vector is dim floats of the recorded encoder. Every vector insert or delete
//     bumps settings.vector_generation by one and logs the chunk id at that generation in
//     vector_log, in that same transaction (triggers): the log's rows are consecutive
//     generations ending at the current one. A FAISS cache stamped with generation g (vectors.h)
//     is brought to the current one by re-reading exactly the chunks logged after g; when the
//     log no longer reaches back to g it is rebuilt.
//  7. settings.database_id is a random id written when the file is created and never changed, so
//     a cache made for another index file is never taken for this one's.
//
// States of one file while it is re-indexed (crash points named for SAEM_CRASH_AT):
//  A. committed old version (or absent)                -- "file.before_txn"
//  B. write transaction open: old chunks deleted, new document row and chunks inserted, invisible
//     to readers                                        -- "file.chunks_written"
//  C. committed new version                             -- "file.committed"
// A crash in A or B leaves A (SQLite rolls the journal back on the next open); the next run sees a
// size/mtime that does not match and redoes the file. A crash in C loses nothing.
#include "retrieval/store.h"
#include "retrieval/lexer.h"
#include "retrieval/sqlite.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <unordered_map>

namespace saem {

namespace {

const char *migrations[] = {
    // 1: documents, chunks, FTS5 over chunks (external content, kept in sync by triggers).
    R"sql(
CREATE TABLE documents(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  path TEXT NOT NULL UNIQUE,
  hash TEXT NOT NULL,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  title TEXT NOT NULL DEFAULT '',
  format TEXT NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
  indexed_at INTEGER NOT NULL,
  chunk_count INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE chunks(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  ordinal INTEGER NOT NULL,
  text TEXT NOT NULL,
  heading TEXT NOT NULL DEFAULT '',
  page INTEGER NOT NULL DEFAULT 0,
  char_begin INTEGER NOT NULL,
  char_end INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  UNIQUE(document_id, ordinal)
);
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, heading, content='chunks', content_rowid='id',
                                          tokenize='saem');
CREATE TRIGGER chunks_ai AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
END;
CREATE TRIGGER chunks_ad AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text, heading) VALUES ('delete', old.id, old.text, old.heading);
END;
CREATE VIRTUAL TABLE chunks_vocab USING fts5vocab(chunks_fts, 'row');
CREATE TABLE skipped(
  path TEXT PRIMARY KEY,
  size INTEGER NOT NULL,
  mtime_ns INTEGER NOT NULL,
  reason TEXT NOT NULL
);
)sql",
    // 2: embedding vectors beside their chunks, and the settings that describe them.
    R"sql(
CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO settings(key, value) VALUES ('vector_generation', '0'), ('vector_index', 'flat');
CREATE TABLE chunk_vectors(
  chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
  embedding BLOB NOT NULL
);
CREATE TRIGGER chunk_vectors_ai AFTER INSERT ON chunk_vectors BEGIN
  UPDATE settings SET value = value + 1 WHERE key = 'vector_generation';
END;
CREATE TRIGGER chunk_vectors_ad AFTER DELETE ON chunk_vectors BEGIN
  UPDATE settings SET value = value + 1 WHERE key = 'vector_generation';
END;
)sql",
    // 3: the database's identity, and the log of vector changes that lets a FAISS cache catch up
    // instead of being rebuilt. The log keeps the last 200,000 changes (three integers each).
    R"sql(
INSERT OR IGNORE INTO settings(key, value) VALUES ('database_id', lower(hex(randomblob(16))));
CREATE TABLE vector_log(generation INTEGER PRIMARY KEY, chunk_id INTEGER NOT NULL);
DROP TRIGGER chunk_vectors_ai;
DROP TRIGGER chunk_vectors_ad;
CREATE TRIGGER chunk_vectors_ai AFTER INSERT ON chunk_vectors BEGIN
  UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vector_generation';
  INSERT INTO vector_log(generation, chunk_id)
    SELECT CAST(value AS INTEGER), new.chunk_id FROM settings WHERE key = 'vector_generation';
  DELETE FROM vector_log WHERE generation <= (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'vector_generation') - 200000;
END;
CREATE TRIGGER chunk_vectors_ad AFTER DELETE ON chunk_vectors BEGIN
  UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'vector_generation';
  INSERT INTO vector_log(generation, chunk_id)
    SELECT CAST(value AS INTEGER), old.chunk_id FROM settings WHERE key = 'vector_generation';
  DELETE FROM vector_log WHERE generation <= (SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'vector_generation') - 200000;
END;
)sql",
};
constexpr int migration_count = int(sizeof(migrations) / sizeof(migrations[0]));
static_assert(migration_count == Store::schema_version);

int fts_tokenizer_create(void *, const char **, int, Fts5Tokenizer **out) {
    static int instance;  // the tokenizer is stateless: every table shares one handle
    *out = reinterpret_cast<Fts5Tokenizer *>(&instance);
    return SQLITE_OK;
}

void fts_tokenizer_delete(Fts5Tokenizer *) {}

int fts_tokenize(Fts5Tokenizer *, void *ctx, int, const char *text, int n,
                 int (*emit)(void *, int, const char *, int, int, int)) {
    if (!text || n <= 0) return SQLITE_OK;
    int rc = SQLITE_OK;
    try {
        std::string_view sv(text, size_t(n));
        lexer::segment(sv, [&](const lexer::Piece &piece) {
            if (rc != SQLITE_OK) return;
            std::string t = lexer::term(sv, piece);
            if (!t.empty()) rc = emit(ctx, 0, t.data(), int(t.size()), int(piece.begin), int(piece.end));
        });
    } catch (...) {
        return SQLITE_NOMEM;
    }
    return rc;
}

void register_tokenizer(sqlite3 *db) {
    fts5_api *api = nullptr;
    sqlite3_stmt *st = nullptr;
    if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &st, nullptr) != SQLITE_OK)
        sql::fail(db, "this SQLite has no FTS5");
    sqlite3_bind_pointer(st, 1, &api, "fts5_api_ptr", nullptr);
    sqlite3_step(st);
    sqlite3_finalize(st);
    if (!api || api->iVersion < 2) throw StoreError("this SQLite's FTS5 is too old");
    fts5_tokenizer tok = {fts_tokenizer_create, fts_tokenizer_delete, fts_tokenize};
    if (api->xCreateTokenizer(api, "saem", nullptr, &tok, nullptr) != SQLITE_OK)
        sql::fail(db, "registering the FTS5 tokenizer");
}

int64_t now_seconds() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch()).count();
}

DocumentInfo read_document(const sql::Stmt &st) {
    DocumentInfo d;
    d.id = st.i64(0);
    d.path = st.str(1);
    d.hash = st.str(2);
    d.size = st.i64(3);
    d.mtime_ns = st.i64(4);
    d.title = st.str(5);
    d.format = st.str(6);
    d.metadata = nlohmann::json::parse(st.str(7), nullptr, false);
    d.indexed_at = st.i64(8);
    d.chunks = int(st.i64(9));
    return d;
}

constexpr const char *document_columns =
    "SELECT id, path, hash, size, mtime_ns, title, format, metadata, indexed_at, chunk_count FROM documents ";

}  // namespace

void crash_point(const char *name) {
    static const char *spec = std::getenv("SAEM_CRASH_AT");
    if (!spec) return;
    static const std::string target = [] {
        std::string s = spec;
        return s.substr(0, s.find(':'));
    }();
    static long remaining = [] {
        const char *colon = std::strchr(spec, ':');
        return colon ? std::strtol(colon + 1, nullptr, 10) : 1L;
    }();
    if (target == name && --remaining <= 0) std::raise(SIGKILL);
}

Store::Store(const std::string &path, int busy_timeout_ms) : path_(path) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
        std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        throw StoreError("cannot open index '" + path + "': " + msg);
    }
    try {
        sqlite3_busy_timeout(db_, busy_timeout_ms);
        register_tokenizer(db_);
        // WAL lets readers run while the indexer writes; NORMAL sync keeps every committed
        // transaction across a process crash (only an OS crash can lose the last ones).
        sql::exec(db_, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
        migrate();
    } catch (const StoreError &e) {
        sqlite3_close(db_);
        db_ = nullptr;
        if (dynamic_cast<const StoreBusy *>(&e)) throw StoreBusy("index '" + path + "': " + e.what());
        throw StoreError("index '" + path + "': " + e.what());
    }
}

Store::~Store() { sqlite3_close(db_); }

void Store::migrate() {
    int version = 0;
    {
        sql::Stmt st(db_, "PRAGMA user_version");
        if (st.step()) version = int(st.i64(0));
    }
    if (version == migration_count) return;
    if (version > migration_count)
        throw StoreError("schema version " + std::to_string(version) + " is newer than this saem (" +
                         std::to_string(migration_count) + "); upgrade saem");
    sql::WriteTxn txn(db_);
    {
        sql::Stmt st(db_, "PRAGMA user_version");  // re-read: another process may have migrated
        if (st.step()) version = int(st.i64(0));
    }
    for (int v = version; v < migration_count; ++v) sql::exec(db_, migrations[v]);
    sql::exec(db_, ("PRAGMA user_version=" + std::to_string(migration_count)).c_str());
    txn.commit();
}

std::optional<FileState> Store::file_state(const std::string &path) {
    sql::Stmt st(db_, "SELECT id, size, mtime_ns, hash FROM documents WHERE path = ?");
    st.bind(1, path);
    if (!st.step()) return std::nullopt;
    return FileState{st.i64(0), st.i64(1), st.i64(2), st.str(3)};
}

int64_t Store::put_document(const DocumentInput &doc, const std::vector<ChunkInput> &chunks,
                            const std::vector<float> &vectors) {
    size_t dim = chunks.empty() ? 0 : vectors.size() / chunks.size();
    if (!vectors.empty() && dim * chunks.size() != vectors.size())
        throw StoreError("put_document: " + std::to_string(vectors.size()) + " floats for " + std::to_string(chunks.size()) + " chunks");
    crash_point("file.before_txn");
    sql::WriteTxn txn(db_);
    int64_t id = 0;
    {
        sql::Stmt st(db_, "SELECT id FROM documents WHERE path = ?");
        st.bind(1, doc.path);
        if (st.step()) id = st.i64(0);
    }
    std::string metadata = doc.metadata.is_object() ? doc.metadata.dump() : "{}";
    if (id) {
        sql::Stmt(db_, "DELETE FROM chunks WHERE document_id = ?").bind(1, id).run();
        sql::Stmt st(db_, "UPDATE documents SET hash=?, size=?, mtime_ns=?, title=?, format=?, metadata=?, "
                          "indexed_at=?, chunk_count=? WHERE id=?");
        st.bind(1, doc.hash).bind(2, doc.size).bind(3, doc.mtime_ns).bind(4, doc.title).bind(5, doc.format)
          .bind(6, metadata).bind(7, now_seconds()).bind(8, int64_t(chunks.size())).bind(9, id).run();
    } else {
        sql::Stmt st(db_, "INSERT INTO documents(path, hash, size, mtime_ns, title, format, metadata, "
                          "indexed_at, chunk_count) VALUES (?,?,?,?,?,?,?,?,?)");
        st.bind(1, doc.path).bind(2, doc.hash).bind(3, doc.size).bind(4, doc.mtime_ns).bind(5, doc.title)
          .bind(6, doc.format).bind(7, metadata).bind(8, now_seconds()).bind(9, int64_t(chunks.size())).run();
        id = sqlite3_last_insert_rowid(db_);
    }
    sql::Stmt(db_, "DELETE FROM skipped WHERE path = ?").bind(1, doc.path).run();
    sql::Stmt ins(db_, "INSERT INTO chunks(document_id, ordinal, text, heading, page, char_begin, char_end, tokens) "
                       "VALUES (?,?,?,?,?,?,?,?)");
    sql::Stmt vec(db_, "INSERT INTO chunk_vectors(chunk_id, embedding) VALUES (?, ?)");
    for (size_t i = 0; i < chunks.size(); ++i) {
        const ChunkInput &c = chunks[i];
        ins.bind(1, id).bind(2, int64_t(i)).bind(3, c.text).bind(4, c.heading).bind(5, c.page)
           .bind(6, c.begin).bind(7, c.end).bind(8, c.tokens).run();
        ins.reset();
        if (!vectors.empty()) {
            vec.bind(1, int64_t(sqlite3_last_insert_rowid(db_))).bind_blob(2, vectors.data() + i * dim, dim * sizeof(float)).run();
            vec.reset();
        }
    }
    crash_point("file.chunks_written");
    txn.commit();
    crash_point("file.committed");
    return id;
}

void Store::touch_document(int64_t id, int64_t size, int64_t mtime_ns) {
    sql::Stmt(db_, "UPDATE documents SET size=?, mtime_ns=? WHERE id=?").bind(1, size).bind(2, mtime_ns).bind(3, id).run();
}

bool Store::remove_document(int64_t id) {
    sql::WriteTxn txn(db_);
    sql::Stmt(db_, "DELETE FROM chunks WHERE document_id = ?").bind(1, id).run();
    sql::Stmt(db_, "DELETE FROM documents WHERE id = ?").bind(1, id).run();
    bool removed = sqlite3_changes(db_) > 0;
    txn.commit();
    return removed;
}

void Store::remove_path(const std::string &path) {
    sql::WriteTxn txn(db_);
    sql::Stmt(db_, "DELETE FROM chunks WHERE document_id = (SELECT id FROM documents WHERE path = ?)").bind(1, path).run();
    sql::Stmt(db_, "DELETE FROM documents WHERE path = ?").bind(1, path).run();
    sql::Stmt(db_, "DELETE FROM skipped WHERE path = ?").bind(1, path).run();
    txn.commit();
}

std::optional<DocumentInfo> Store::document(int64_t id) {
    sql::Stmt st(db_, std::string(document_columns) + "WHERE id = ?");
    st.bind(1, id);
    if (!st.step()) return std::nullopt;
    return read_document(st);
}

std::optional<DocumentInfo> Store::document_by_path(const std::string &path) {
    sql::Stmt st(db_, std::string(document_columns) + "WHERE path = ?");
    st.bind(1, path);
    if (!st.step()) return std::nullopt;
    return read_document(st);
}

std::vector<DocumentInfo> Store::list_documents(const std::string &prefix, int limit, int offset) {
    sql::Stmt st(db_, std::string(document_columns) +
                          "WHERE substr(path, 1, length(?1)) = ?1 ORDER BY path LIMIT ?2 OFFSET ?3");
    st.bind(1, prefix).bind(2, limit).bind(3, offset);
    std::vector<DocumentInfo> out;
    while (st.step()) out.push_back(read_document(st));
    return out;
}

std::optional<std::string> Store::document_text(int64_t id) {
    if (!document(id)) return std::nullopt;
    // A chunk is text[char_begin, char_end) of its document, and the next one may start inside
    // it (the overlap): each adds what lies past the text so far. Offsets that do not line up
    // (a chunk that is not such a slice) are joined as paragraphs.
    sql::Stmt st(db_, "SELECT text, char_begin, char_end FROM chunks WHERE document_id = ? ORDER BY ordinal");
    st.bind(1, id);
    std::string out;
    int64_t covered = -1;
    while (st.step()) {
        std::string text = st.str(0);
        int64_t begin = st.i64(1), end = st.i64(2);
        const bool slice = end - begin == int64_t(text.size());
        if (slice && covered >= begin && covered <= end) {
            out += text.substr(size_t(covered - begin));
        } else {
            if (!out.empty()) out += "\n\n";
            out += text;
        }
        covered = slice ? end : -1;
    }
    return out;
}

std::vector<std::string> Store::paths_under(const std::string &prefix) {
    sql::Stmt st(db_, "SELECT path FROM documents WHERE substr(path, 1, length(?1)) = ?1 "
                      "UNION SELECT path FROM skipped WHERE substr(path, 1, length(?1)) = ?1");
    st.bind(1, prefix);
    std::vector<std::string> out;
    while (st.step()) out.push_back(st.str(0));
    return out;
}

std::optional<std::pair<FileState, std::string>> Store::skipped_state(const std::string &path) {
    sql::Stmt st(db_, "SELECT size, mtime_ns, reason FROM skipped WHERE path = ?");
    st.bind(1, path);
    if (!st.step()) return std::nullopt;
    return std::make_pair(FileState{0, st.i64(0), st.i64(1), {}}, st.str(2));
}

void Store::put_skipped(const std::string &path, int64_t size, int64_t mtime_ns, const std::string &reason) {
    sql::WriteTxn txn(db_);
    sql::Stmt(db_, "DELETE FROM chunks WHERE document_id = (SELECT id FROM documents WHERE path = ?)").bind(1, path).run();
    sql::Stmt(db_, "DELETE FROM documents WHERE path = ?").bind(1, path).run();
    sql::Stmt(db_, "INSERT OR REPLACE INTO skipped(path, size, mtime_ns, reason) VALUES (?,?,?,?)")
        .bind(1, path).bind(2, size).bind(3, mtime_ns).bind(4, reason).run();
    txn.commit();
}

namespace {

// " AND ..." conditions on documents d for a filter, and their bindings from ?first on.
std::string filter_sql(const Filter &f, int first) {
    std::string sql;
    if (!f.path_prefix.empty()) sql += " AND substr(d.path, 1, length(?" + std::to_string(first) + ")) = ?" + std::to_string(first);
    int next = first + 1;
    if (std::string problem = filter_problem(f); !problem.empty()) throw StoreError(problem);
    for (const auto &[key, value] : f.metadata) {
        sql += " AND json_extract(d.metadata, '$.\"" + key + "\"') = ?" + std::to_string(next++);
    }
    return sql;
}

void bind_filter(sql::Stmt &st, const Filter &f, int first) {
    if (!f.path_prefix.empty()) st.bind(first, f.path_prefix);
    int i = first + 1;
    for (const auto &[key, value] : f.metadata) {
        if (value.is_string()) st.bind(i++, value.get<std::string>());
        else if (value.is_boolean()) st.bind(i++, int64_t(value.get<bool>()));
        else if (value.is_number_integer()) st.bind(i++, value.get<int64_t>());
        else st.bind(i++, value.get<double>());
    }
}

}  // namespace

std::string filter_problem(const Filter &f) {
    for (const auto &[key, value] : f.metadata) {
        bool key_ok = !key.empty() && key.size() <= 128 && std::all_of(key.begin(), key.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
        });
        if (!key_ok) return "metadata filter key '" + key + "' must be letters, digits, '_', '-' or '.'";
        if (!(value.is_string() || value.is_number() || value.is_boolean()))
            return "metadata filter '" + key + "' must be a string, number or boolean";
    }
    return {};
}

Ranked Store::match_chunks(const std::string &match, const Filter &filter, double heading_weight, int limit) {
    // Rank touching only what filters need; chunk text is read later, for the winners alone.
    std::string sql = "SELECT chunks_fts.rowid, bm25(chunks_fts, 1.0, ?2) AS score FROM chunks_fts";
    if (!filter.empty()) sql += " JOIN chunks c ON c.id = chunks_fts.rowid JOIN documents d ON d.id = c.document_id";
    sql += " WHERE chunks_fts MATCH ?1" + filter_sql(filter, 4) + " ORDER BY score LIMIT ?3";
    sql::Stmt st(db_, sql);
    st.bind(1, match).bind(2, heading_weight).bind(3, limit);
    bind_filter(st, filter, 4);
    Ranked out;
    while (st.step()) out.emplace_back(st.i64(0), -st.f64(1));  // bm25() is negated: lower is better
    return out;
}

std::vector<int64_t> Store::filter_chunks(const std::vector<int64_t> &ids, const Filter &filter, size_t limit) {
    std::vector<int64_t> out;
    sql::Stmt st(db_, "SELECT 1 FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id = ?1" + filter_sql(filter, 2));
    for (int64_t id : ids) {
        if (out.size() >= limit) break;
        st.bind(1, id);
        bind_filter(st, filter, 2);
        if (st.step()) out.push_back(id);
        st.reset();
    }
    return out;
}

std::vector<Hit> Store::read_hits(const std::vector<int64_t> &ids) {
    if (ids.empty()) return {};
    // One statement for all of them (ids are integers, so inlining them is safe): a thousand
    // point lookups cost a third of a lexical search.
    std::unordered_map<int64_t, size_t> position;
    std::string list;
    for (size_t i = 0; i < ids.size(); ++i) {
        position.emplace(ids[i], i);
        list += (i ? "," : "") + std::to_string(ids[i]);
    }
    std::vector<Hit> hits(ids.size());
    sql::Stmt st(db_, "SELECT c.id, c.document_id, c.ordinal, c.page, c.heading, c.text, d.path, d.title "
                      "FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN (" + list + ")");
    while (st.step()) {
        Hit &h = hits[position.at(st.i64(0))];
        h.chunk_id = st.i64(0);
        h.document_id = st.i64(1);
        h.ordinal = int(st.i64(2));
        h.page = int(st.i64(3));
        h.heading = st.str(4);
        h.text = st.str(5);
        h.path = st.str(6);
        h.title = st.str(7);
    }
    hits.erase(std::remove_if(hits.begin(), hits.end(), [](const Hit &h) { return h.chunk_id == 0; }), hits.end());
    return hits;
}

std::vector<std::string> Store::snippets(const std::string &match, const std::vector<int64_t> &ids, const std::string &open,
                                         const std::string &close) {
    std::vector<std::string> out(ids.size());
    sql::Stmt st(db_, "SELECT snippet(chunks_fts, 0, ?2, ?3, '…', 24) FROM chunks_fts WHERE chunks_fts MATCH ?1 AND rowid = ?4");
    for (size_t i = 0; i < ids.size(); ++i) {
        st.bind(1, match).bind(2, open).bind(3, close).bind(4, ids[i]);
        if (st.step()) out[i] = st.str(0);
        st.reset();
    }
    return out;
}

std::vector<std::vector<float>> Store::chunk_vectors(const std::vector<int64_t> &ids) {
    std::vector<std::vector<float>> out(ids.size());
    sql::Stmt st(db_, "SELECT embedding FROM chunk_vectors WHERE chunk_id = ?");
    for (size_t i = 0; i < ids.size(); ++i) {
        st.bind(1, ids[i]);
        if (st.step()) {
            const float *f = static_cast<const float *>(st.blob(0));
            out[i].assign(f, f + st.bytes(0) / sizeof(float));
        }
        st.reset();
    }
    return out;
}

std::vector<double> Store::idf(const std::vector<std::string> &terms) {
    std::vector<double> out;
    if (terms.empty()) return out;
    int64_t n = 0;
    {
        sql::Stmt st(db_, "SELECT count(*) FROM chunks");
        if (st.step()) n = st.i64(0);
    }
    sql::Stmt st(db_, "SELECT doc FROM chunks_vocab WHERE term = ?");
    for (const auto &term : terms) {
        int64_t df = 0;
        st.bind(1, term);
        if (st.step()) df = st.i64(0);
        st.reset();
        // A term in no chunk weighs as one in a single chunk: its absence says the index lacks
        // that word, not that the word matters more than the rarest one it has. (In a small
        // index the difference is large: log(2N+1) against log((N-0.5)/1.5).)
        df = std::max<int64_t>(df, 1);
        double v = std::log((double(n - df) + 0.5) / (double(df) + 0.5));
        out.push_back(v > 0 ? v : 0);
    }
    return out;
}

std::optional<EncoderInfo> Store::encoder() {
    sql::Stmt st(db_, "SELECT value FROM settings WHERE key = 'encoder'");
    if (!st.step()) return std::nullopt;
    auto j = nlohmann::json::parse(st.str(0), nullptr, false);
    if (!j.is_object()) return std::nullopt;
    return EncoderInfo{j.value("identity", ""), j.value("path", ""), j.value("dim", 0)};
}

void Store::use_encoder(const EncoderInfo &info) {
    sql::WriteTxn txn(db_);
    auto current = encoder();
    int64_t vectors = 0;
    {
        sql::Stmt st(db_, "SELECT count(*) FROM chunk_vectors");
        if (st.step()) vectors = st.i64(0);
    }
    if (current && current->identity != info.identity && vectors > 0)
        throw StoreError("this index holds " + std::to_string(vectors) + " vectors made by " + current->identity +
                         ", not by " + info.identity + " (" + info.path + "); vectors of different encoders cannot be "
                         "mixed. Re-embed every chunk with: saem reembed --db " + path_ + " --encoder " + info.path);
    nlohmann::json j = {{"identity", info.identity}, {"path", info.path}, {"dim", info.dim}};
    sql::Stmt(db_, "INSERT OR REPLACE INTO settings(key, value) VALUES ('encoder', ?)").bind(1, j.dump()).run();
    txn.commit();
}

void Store::clear_vectors() {
    sql::WriteTxn txn(db_);
    sql::exec(db_, "DELETE FROM chunk_vectors; DELETE FROM settings WHERE key = 'encoder';");
    txn.commit();
}

std::vector<std::pair<int64_t, std::string>> Store::chunks_without_vectors(int limit) {
    sql::Stmt st(db_, "SELECT c.id, c.heading, c.text FROM chunks c LEFT JOIN chunk_vectors v ON v.chunk_id = c.id "
                      "WHERE v.chunk_id IS NULL ORDER BY c.id LIMIT ?");
    st.bind(1, limit);
    std::vector<std::pair<int64_t, std::string>> out;
    while (st.step()) out.emplace_back(st.i64(0), embedding_text(st.str(1), st.str(2)));
    return out;
}

void Store::put_vectors(const std::vector<int64_t> &ids, const std::vector<float> &vectors) {
    if (ids.empty()) return;
    size_t dim = vectors.size() / ids.size();
    sql::WriteTxn txn(db_);
    sql::Stmt st(db_, "INSERT OR REPLACE INTO chunk_vectors(chunk_id, embedding) "
                      "SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM chunks WHERE id = ?1)");
    for (size_t i = 0; i < ids.size(); ++i) {
        st.bind(1, ids[i]).bind_blob(2, vectors.data() + i * dim, dim * sizeof(float)).run();
        st.reset();
    }
    txn.commit();
}

bool Store::has_vectors() {
    sql::Stmt st(db_, "SELECT EXISTS (SELECT 1 FROM chunk_vectors)");
    return st.step() && st.i64(0) != 0;
}

int64_t Store::vector_generation() {
    sql::Stmt st(db_, "SELECT value FROM settings WHERE key = 'vector_generation'");
    return st.step() ? st.i64(0) : 0;
}

const char *vector_index_name(VectorIndexKind kind) {
    return kind == VectorIndexKind::hnsw ? "hnsw" : kind == VectorIndexKind::ivfpq ? "ivfpq" : "flat";
}

VectorIndexKind parse_vector_index(const std::string &name) {
    if (name == "flat") return VectorIndexKind::flat;
    if (name == "hnsw") return VectorIndexKind::hnsw;
    if (name == "ivfpq") return VectorIndexKind::ivfpq;
    throw StoreError("unknown vector index '" + name + "' (flat, hnsw, ivfpq)");
}

VectorIndexKind Store::vector_index_kind() {
    sql::Stmt st(db_, "SELECT value FROM settings WHERE key = 'vector_index'");
    std::string v = st.step() ? st.str(0) : "flat";
    return v == "hnsw" ? VectorIndexKind::hnsw : v == "ivfpq" ? VectorIndexKind::ivfpq : VectorIndexKind::flat;
}

void Store::set_vector_index_kind(VectorIndexKind kind) {
    sql::Stmt(db_, "INSERT OR REPLACE INTO settings(key, value) VALUES ('vector_index', ?)").bind(1, vector_index_name(kind)).run();
}

std::string Store::database_id() {
    sql::Stmt st(db_, "SELECT value FROM settings WHERE key = 'database_id'");
    return st.step() ? st.str(0) : std::string();
}

void Store::read_vectors(const std::function<void(int64_t, const float *, size_t)> &fn) {
    sql::Stmt st(db_, "SELECT chunk_id, embedding FROM chunk_vectors ORDER BY chunk_id");
    while (st.step()) fn(st.i64(0), static_cast<const float *>(st.blob(1)), st.bytes(1) / sizeof(float));
}

std::optional<std::vector<int64_t>> Store::vector_changes_since(int64_t after) {
    int64_t current = vector_generation();
    if (after == current) return std::vector<int64_t>{};
    if (after > current) return std::nullopt;  // a cache from the future: another file's
    sql::Stmt first(db_, "SELECT min(generation) FROM vector_log WHERE generation > ?");
    first.bind(1, after);
    if (!first.step() || first.is_null(0) || first.i64(0) != after + 1) return std::nullopt;
    sql::Stmt st(db_, "SELECT DISTINCT chunk_id FROM vector_log WHERE generation > ?1 AND generation <= ?2 ORDER BY chunk_id");
    st.bind(1, after).bind(2, current);
    std::vector<int64_t> ids;
    while (st.step()) ids.push_back(st.i64(0));
    return ids;
}

Store::Snapshot::Snapshot(Store &store) : db_(store.db_) {
    // Inside another snapshot (or a write) this one adds nothing: that transaction already fixes
    // what is read.
    if (!sqlite3_get_autocommit(db_)) db_ = nullptr;
    else sql::exec(db_, "BEGIN");
}

Store::Snapshot::~Snapshot() {
    if (db_) sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
}

std::string embedding_text(const std::string &heading, const std::string &text) {
    return heading.empty() ? text : heading + "\n" + text;
}

Stats Store::stats() {
    Stats s;
    {
        sql::Stmt st(db_, "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks), "
                          "(SELECT count(*) FROM skipped)");
        if (st.step()) { s.documents = st.i64(0); s.chunks = st.i64(1); s.skipped = st.i64(2); }
    }
    {
        sql::Stmt st(db_, "SELECT count(*) FROM chunk_vectors");
        if (st.step()) s.vectors = st.i64(0);
    }
    if (auto e = encoder()) s.encoder = e->identity;
    s.vector_index = vector_index_name(vector_index_kind());
    std::error_code ec;
    auto bytes = std::filesystem::file_size(path_, ec);
    s.db_bytes = ec ? 0 : int64_t(bytes);
    auto wal = std::filesystem::file_size(path_ + "-wal", ec);
    if (!ec) s.db_bytes += int64_t(wal);
    s.schema_version = schema_version;
    return s;
}

std::vector<std::string> Store::check() {
    std::vector<std::string> problems;
    // FTS5's own check is a write statement: run outside the read snapshot below (inside one it
    // would fail with SQLITE_BUSY_SNAPSHOT whenever another connection committed meanwhile).
    if (int rc = sqlite3_exec(db_, "INSERT INTO chunks_fts(chunks_fts, rank) VALUES ('integrity-check', 1)", nullptr, nullptr, nullptr);
        rc != SQLITE_OK) {
        problems.push_back(((rc & 0xff) == SQLITE_CORRUPT ? std::string("1. the FTS5 index does not match the chunks: ")
                                                           : std::string("the FTS5 index could not be checked: ")) +
                           sqlite3_errmsg(db_));
    }
    Snapshot snapshot(*this);
    auto count = [&](const char *sql) {
        sql::Stmt st(db_, sql);
        return st.step() ? st.i64(0) : 0;
    };
    auto expect_none = [&](const char *what, const char *sql) {
        if (int64_t n = count(sql)) problems.push_back(what + std::string(": ") + std::to_string(n));
    };
    {
        sql::Stmt st(db_, "PRAGMA quick_check");
        while (st.step())
            if (st.str(0) != "ok") problems.push_back("sqlite: " + st.str(0));
    }
    // 1: chunks belong to documents, chunk counts are whole, FTS holds exactly the chunks.
    expect_none("1. chunks without their document", "SELECT count(*) FROM chunks WHERE document_id NOT IN (SELECT id FROM documents)");
    expect_none("1. documents whose chunk_count is not their number of chunks",
                "SELECT count(*) FROM documents d WHERE chunk_count != (SELECT count(*) FROM chunks WHERE document_id = d.id)");
    expect_none("1. documents whose chunk ordinals are not 0..n-1",
                "SELECT count(*) FROM documents d WHERE chunk_count > 0 AND "
                "(SELECT max(ordinal) FROM chunks WHERE document_id = d.id) != chunk_count - 1");
    // 3: one document per path.
    expect_none("3. paths held by more than one document", "SELECT count(*) - count(DISTINCT path) FROM documents");
    // 4: no chunk id above the AUTOINCREMENT high-water mark (an id below it may never come back).
    expect_none("4. chunk ids above the AUTOINCREMENT sequence",
                "SELECT count(*) FROM chunks WHERE id > coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'chunks'), 0)");
    // 5: a path is indexed or skipped, never both.
    expect_none("5. paths both indexed and skipped", "SELECT count(*) FROM documents WHERE path IN (SELECT path FROM skipped)");
    // 6: vectors belong to chunks, have the encoder's size, and the log ends at the generation.
    expect_none("6. vectors without their chunk", "SELECT count(*) FROM chunk_vectors WHERE chunk_id NOT IN (SELECT id FROM chunks)");
    if (auto enc = encoder()) {
        sql::Stmt st(db_, "SELECT count(*) FROM chunk_vectors WHERE length(embedding) != ?");
        st.bind(1, int64_t(enc->dim) * int64_t(sizeof(float)));
        if (st.step() && st.i64(0))
            problems.push_back("6. vectors that are not " + std::to_string(enc->dim) + " floats of " + enc->identity + ": " +
                               std::to_string(st.i64(0)));
    } else {
        expect_none("6. vectors with no encoder recorded", "SELECT count(*) FROM chunk_vectors");
    }
    {
        sql::Stmt st(db_, "SELECT count(*), coalesce(min(generation), 0), coalesce(max(generation), 0) FROM vector_log");
        st.step();
        int64_t n = st.i64(0), lo = st.i64(1), hi = st.i64(2), generation = vector_generation();
        if (n > 0 && (hi != generation || hi - lo + 1 != n))
            problems.push_back("6. the vector log (" + std::to_string(n) + " changes, generations " + std::to_string(lo) + ".." +
                               std::to_string(hi) + ") is not the consecutive run ending at generation " + std::to_string(generation));
    }
    // 7: the database has its identity.
    if (database_id().size() != 32) problems.push_back("7. settings.database_id is missing or malformed");
    return problems;
}

}  // namespace saem
