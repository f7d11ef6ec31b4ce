#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "helpers.h"
#include "ingest/ingest.h"

#include <sqlite3.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <set>
#include <thread>

using namespace saem;

namespace {

IndexSummary run(Store &s, const fs::path &dir, IndexOptions opt = {}) {
    std::ostringstream log;
    return index_folder(s, dir, opt, log);
}

// A folder of n markdown files, each with a word found in no other file.
void make_corpus(const fs::path &dir, int n) {
    for (int i = 0; i < n; ++i) {
        std::string body = "# File " + std::to_string(i) + "\n\nUnique marker uniq" + std::to_string(i) + "x.\n\n";
        for (int p = 0; p < 20; ++p) body += "Paragraph " + std::to_string(p) + " about springs, wells and rivers. ";
        write_bytes(dir / ("sub" + std::to_string(i % 7)) / ("f" + std::to_string(i) + ".md"), body);
    }
}

// What must hold after any crash: the store's own invariants (Store::check: no orphans, whole
// chunk sets, FTS consistent, one row per path, indexed or skipped).
void check_consistent(Store &s) {
    std::string problems;
    for (const auto &p : s.check()) problems += p + "\n";
    CHECK(problems == "");
}

void check_all_searchable(Store &s, const fs::path &dir, int n) {
    for (int i = 0; i < n; ++i) {
        auto hits = search(s, "uniq" + std::to_string(i) + "x");
        CAPTURE(i);
        REQUIRE(hits.size() == 1);
        CHECK(hits[0].path.find("/f" + std::to_string(i) + ".md") != std::string::npos);
    }
}

// Runs `saem index` in a child process; returns its wait status.
int run_saem(const fs::path &dir, const std::string &db, const char *crash_at, int kill_after_ms = -1) {
    pid_t pid = fork();
    if (pid == 0) {
        if (crash_at) setenv("SAEM_CRASH_AT", crash_at, 1);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        execl(SAEM_BINARY, SAEM_BINARY, "index", dir.c_str(), "--db", db.c_str(), nullptr);
        _exit(127);
    }
    if (kill_after_ms >= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
        kill(pid, SIGKILL);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

}  // namespace

TEST_CASE("re-indexing: unchanged files are not read, changed ones are, deleted ones leave") {
    TempDir dir;
    fs::path docs = dir.path / "docs";
    make_corpus(docs, 30);
    write_bytes(docs / "bad.txt", "ok \xff not utf8");
    write_bytes(docs / "image.png", "\x89PNG");
    write_bytes(docs / ".hidden/secret.md", "# Secret\n\nhidden words");
    Store s(dir / "i.db");

    auto first = run(s, docs);
    CHECK(first.added == 30);
    REQUIRE(first.skipped.size() == 1);
    CHECK(first.skipped[0].second.find("invalid UTF-8") != std::string::npos);
    CHECK(search(s, "hidden").empty());
    check_all_searchable(s, docs, 30);

    // Unchanged size and mtime: the file is not read. Proven by swapping its content behind the
    // same size and mtime: the index keeps the old text.
    auto f0 = docs / "sub0" / "f0.md";
    auto mtime = fs::last_write_time(f0);
    std::string original = read_bytes(f0);
    std::string same_size(original.size(), 'z');
    write_bytes(f0, same_size);
    fs::last_write_time(f0, mtime);
    auto second = run(s, docs);
    CHECK(second.added + second.updated + second.removed == 0);
    CHECK(second.unchanged == 30);
    CHECK(second.skipped.size() == 1);
    CHECK(search(s, "uniq0x").size() == 1);  // the stale content is still what is indexed

    // Changed content (new mtime) is re-chunked; touched-only files are not.
    write_bytes(f0, "# File 0\n\nNow about aqueducts.");
    auto f1 = docs / "sub1" / "f1.md";
    fs::last_write_time(f1, fs::last_write_time(f1) + std::chrono::seconds(5));
    fs::remove(docs / "sub2" / "f2.md");
    write_bytes(docs / "bad.txt", "now valid text about cisterns");
    auto third = run(s, docs);
    CHECK(third.updated == 1);
    CHECK(third.added == 1);  // bad.txt, fixed
    CHECK(third.removed == 1);
    CHECK(third.unchanged == 28);
    CHECK(third.skipped.empty());
    CHECK(search(s, "uniq0x").empty());
    CHECK(search(s, "aqueducts").size() == 1);
    CHECK(search(s, "uniq2x").empty());
    CHECK(search(s, "cisterns").size() == 1);
    check_consistent(s);
}

TEST_CASE("include and exclude globs; excluded files leave the index") {
    TempDir dir;
    fs::path docs = dir.path / "docs";
    make_corpus(docs, 14);
    Store s(dir / "i.db");
    IndexOptions only_sub1;
    only_sub1.include = {"sub1/*"};
    CHECK(run(s, docs, only_sub1).added == 2);
    IndexOptions not_sub1;
    not_sub1.exclude = {"sub1/*", "f13.md"};
    auto r = run(s, docs, not_sub1);
    CHECK(r.added == 11);
    CHECK(r.removed == 2);
    CHECK(s.stats().documents == 11);
}

TEST_CASE("kill -9 at every crash point, then a new run: consistent and complete" * doctest::test_suite("slow")) {
    const int n = 40;
    for (const char *point : {"file.before_txn:5", "file.chunks_written:5", "file.committed:5", "file.chunks_written:1"}) {
        CAPTURE(point);
        TempDir dir;
        fs::path docs = dir.path / "docs";
        make_corpus(docs, n);
        std::string db = dir / "i.db";
        int status = run_saem(docs, db, point);
        REQUIRE(WIFSIGNALED(status));
        CHECK(WTERMSIG(status) == SIGKILL);
        {
            Store s(db);
            check_consistent(s);
            CHECK(s.stats().documents < n);
        }
        REQUIRE(run_saem(docs, db, nullptr) == 0);
        Store s(db);
        check_consistent(s);
        CHECK(s.stats().documents == n);
        check_all_searchable(s, docs, n);
    }
}

TEST_CASE("kill -9 at random moments during a re-index with changes" * doctest::test_suite("slow")) {
    const int n = 300;
    TempDir dir;
    fs::path docs = dir.path / "docs";
    make_corpus(docs, n);
    std::string db = dir / "i.db";
    REQUIRE(run_saem(docs, db, nullptr) == 0);
    std::mt19937 rng(7);
    for (int round = 0; round < 6; ++round) {
        // Change a third of the files so the run has real work to be killed in.
        for (int i = round % 3; i < n; i += 3) {
            auto p = docs / ("sub" + std::to_string(i % 7)) / ("f" + std::to_string(i) + ".md");
            std::string body = read_bytes(p);
            write_bytes(p, body + "\n\nRevision " + std::to_string(round) + " of the text.");
        }
        run_saem(docs, db, nullptr, int(rng() % 60));
        Store s(db);
        check_consistent(s);
    }
    REQUIRE(run_saem(docs, db, nullptr) == 0);
    Store s(db);
    check_consistent(s);
    CHECK(s.stats().documents == n);
    check_all_searchable(s, docs, n);
    SearchRequest all;
    all.k = 1000;
    size_t latest = 0;
    for (const auto &h : search(s, "revision", all)) latest += h.text.find("Revision 5 of") != std::string::npos;
    CHECK(latest == size_t(n / 3));  // files 2, 5, 8, ... were changed last
}

TEST_CASE("a hostile or oversized file is a recorded skip with its reason; the run goes on") {
    TempDir dir;
    fs::path docs = dir.path / "docs";
    // 300,000 nested elements: gumbo alone took minutes on this, and freeing its tree recursed.
    {
        std::string deep = "<html><body>";
        for (int i = 0; i < 300000; ++i) deep += "<div>";
        deep += "text";
        for (int i = 0; i < 300000; ++i) deep += "</div>";
        write_bytes(docs / "deep.html", deep + "</body></html>");
    }
    // Ways around a naive tag count: "/>" on a div, stray end tags, empty comments, upper-case
    // raw text, a quote holding '>'.
    auto repeat = [](const std::string &piece, int n) {
        std::string out;
        for (int i = 0; i < n; ++i) out += piece;
        return out;
    };
    write_bytes(docs / "selfclosed.html", "<body>" + repeat("<div/>", 200000) + "x</body>");
    write_bytes(docs / "stray.html", "<body>" + repeat("<div></x>", 150000) + "x</body>");
    write_bytes(docs / "comment.html", "<body><!--><!---><SCRIPT>a</SCRIPT><b title='>'>" + repeat("<div>", 200000) + "x</body>");
    // Sloppy but shallow pages are not refused: misnested end tags, unclosed anchors, "<3".
    write_bytes(docs / "sloppy.html", "<body>" + repeat("<div><span>i <3 wells</div><a name=x>", 5000) + "</body>");
    // A long page of unclosed paragraphs and list items is not deep.
    std::string flat = "<html><head><title>Flat</title><script>if (a < b) { x = '<div>'; }</script></head><body><ul>";
    for (int i = 0; i < 5000; ++i) flat += "<li><p>Item " + std::to_string(i) + " about wells<br>";
    write_bytes(docs / "flat.html", flat + "</ul></body></html>");
    write_bytes(docs / "big.txt", std::string(5 << 20, 'a'));
    write_bytes(docs / "ok.txt", "A normal file about springs.");
    Store s(dir / "i.db");
    IndexOptions opt;
    opt.max_file_bytes = 4 << 20;
    auto t0 = std::chrono::steady_clock::now();
    auto sum = run(s, docs, opt);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
    CHECK(sum.added == 3);
    std::map<std::string, std::string> skipped;
    for (const auto &[path, reason] : sum.skipped) skipped[fs::path(path).filename().string()] = reason;
    CAPTURE(skipped.size());
    REQUIRE(skipped.size() == 5);
    for (const char *f : {"selfclosed.html", "stray.html", "comment.html"}) {
        CAPTURE(f);
        CHECK(skipped[f].find("nests elements more than 1000 deep") != std::string::npos);
    }
    CAPTURE(skipped["deep.html"]);
    CHECK(skipped["deep.html"].find("nests elements more than 1000 deep") != std::string::npos);
    CHECK(skipped["big.txt"].find("the limit is 4 MiB") != std::string::npos);
    CHECK(search(s, "springs").size() == 1);
    CHECK(search(s, "wells").size() >= 1);
    CHECK(s.check().empty());
    opt.max_file_bytes = 8 << 20;  // a larger limit: the big file is read now
    CHECK(run(s, docs, opt).added == 1);
}

TEST_CASE("symbolic links: skipped by default; followed on request only while the target stays inside") {
    TempDir dir;
    fs::path docs = dir.path / "docs", outside = dir.path / "secret";
    write_bytes(outside / "credentials.txt", "aws_secret_access_key = hunter2");
    write_bytes(docs / "real.txt", "Springs feed the river.");
    fs::create_symlink(outside / "credentials.txt", docs / "notes.txt");
    fs::create_symlink(docs / "real.txt", docs / "alias.txt");
    fs::create_symlink(docs / "gone.txt", docs / "broken.txt");
    fs::create_directory_symlink(outside, docs / "linked-folder");
    auto reasons = [](const IndexSummary &sum) {
        std::map<std::string, std::string> out;
        for (const auto &[path, reason] : sum.skipped) out[fs::path(path).filename().string()] = reason;
        return out;
    };
    {
        Store s(dir / "a.db");
        auto sum = run(s, docs);
        CHECK(sum.added == 1);
        CHECK(search(s, "hunter2").empty());
        auto r = reasons(sum);
        CHECK(r["notes.txt"].find("--follow-symlinks") != std::string::npos);
        CHECK(r["alias.txt"].find("--follow-symlinks") != std::string::npos);
    }
    Store s(dir / "b.db");
    IndexOptions follow;
    follow.follow_symlinks = true;
    auto sum = run(s, docs, follow);
    CHECK(sum.added == 2);  // real.txt and alias.txt
    CHECK(search(s, "hunter2").empty());
    CHECK(search(s, "springs").size() == 2);
    auto r = reasons(sum);
    CHECK(r["notes.txt"].find("outside the indexed folder") != std::string::npos);
    CHECK(r["broken.txt"].find("broken") != std::string::npos);
    CHECK(s.check().empty());
}
