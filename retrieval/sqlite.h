// Small RAII helpers over the SQLite C API, private to retrieval.
#pragma once

#include "retrieval/store.h"

#include <sqlite3.h>

#include <string>
#include <string_view>

namespace saem::sql {

// StoreBusy when the database stayed locked (the caller may retry), StoreError otherwise.
[[noreturn]] inline void throw_for(int code, const std::string &message) {
    code &= 0xff;
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) throw StoreBusy(message);
    throw StoreError(message);
}

[[noreturn]] inline void fail(sqlite3 *db, const std::string &what) {
    throw_for(db ? sqlite3_extended_errcode(db) : SQLITE_NOMEM, what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

inline void exec(sqlite3 *db, const char *sql) {
    char *err = nullptr;
    if (int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err); rc != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        throw_for(rc, std::string("sqlite: ") + msg);
    }
}

class Stmt {
public:
    Stmt(sqlite3 *db, std::string_view sql) : db_(db) {
        if (sqlite3_prepare_v2(db, sql.data(), int(sql.size()), &st_, nullptr) != SQLITE_OK)
            fail(db, "prepare '" + std::string(sql.substr(0, 60)) + "'");
    }
    ~Stmt() { sqlite3_finalize(st_); }
    Stmt(const Stmt &) = delete;
    Stmt &operator=(const Stmt &) = delete;

    Stmt &bind(int i, int64_t v) { check(sqlite3_bind_int64(st_, i, v)); return *this; }
    Stmt &bind(int i, int v) { return bind(i, int64_t(v)); }
    Stmt &bind(int i, double v) { check(sqlite3_bind_double(st_, i, v)); return *this; }
    Stmt &bind(int i, std::string_view v) {
        check(sqlite3_bind_text(st_, i, v.data(), int(v.size()), SQLITE_TRANSIENT));
        return *this;
    }
    Stmt &bind(int i, const std::string &v) { return bind(i, std::string_view(v)); }
    Stmt &bind(int i, const char *v) { return bind(i, std::string_view(v)); }
    Stmt &bind_null(int i) { check(sqlite3_bind_null(st_, i)); return *this; }
    Stmt &bind_blob(int i, const void *data, size_t bytes) {
        check(sqlite3_bind_blob64(st_, i, data, sqlite3_uint64(bytes), SQLITE_TRANSIENT));
        return *this;
    }
    const void *blob(int c) const { return sqlite3_column_blob(st_, c); }
    size_t bytes(int c) const { return size_t(sqlite3_column_bytes(st_, c)); }

    // true while there is a row
    bool step() {
        int rc = sqlite3_step(st_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        fail(db_, "step");
    }
    void run() { while (step()) {} }
    void reset() { sqlite3_reset(st_); sqlite3_clear_bindings(st_); }

    int64_t i64(int c) const { return sqlite3_column_int64(st_, c); }
    double f64(int c) const { return sqlite3_column_double(st_, c); }
    std::string str(int c) const {
        auto *p = reinterpret_cast<const char *>(sqlite3_column_text(st_, c));
        return p ? std::string(p, size_t(sqlite3_column_bytes(st_, c))) : std::string();
    }
    bool is_null(int c) const { return sqlite3_column_type(st_, c) == SQLITE_NULL; }

private:
    void check(int rc) { if (rc != SQLITE_OK) fail(db_, "bind"); }
    sqlite3 *db_;
    sqlite3_stmt *st_ = nullptr;
};

// BEGIN IMMEDIATE ... COMMIT, rolled back if not committed.
class WriteTxn {
public:
    explicit WriteTxn(sqlite3 *db) : db_(db) { exec(db_, "BEGIN IMMEDIATE"); }
    ~WriteTxn() {
        if (!done_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    void commit() { exec(db_, "COMMIT"); done_ = true; }

private:
    sqlite3 *db_;
    bool done_ = false;
};

}  // namespace saem::sql
