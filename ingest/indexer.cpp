#include "ingest/ingest.h"
#include "retrieval/pipeline.h"

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <iomanip>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <unordered_set>

namespace saem {

namespace fs = std::filesystem;

namespace {
// The store's record of a loaded document.
DocumentInput document_input(const LoadedDocument &doc, const std::string &path, std::string hash, int64_t size,
                             int64_t mtime_ns) {
    DocumentInput in;
    in.path = path;
    in.hash = std::move(hash);
    in.title = doc.title;
    in.format = doc.format;
    in.size = size;
    in.mtime_ns = mtime_ns;
    in.metadata = doc.metadata;
    return in;
}
}  // namespace

std::vector<float> embed_chunks(const nn::Embedder &embedder, const std::vector<ChunkInput> &chunks) {
    std::vector<std::string> texts;
    texts.reserve(chunks.size());
    for (const auto &c : chunks) texts.push_back(embedding_text(c.heading, c.text));
    std::vector<float> out(texts.size() * size_t(embedder.dim()));
    if (!texts.empty()) embedder.embed(texts, out.data());
    return out;
}

size_t embed_missing(Store &store, const nn::Embedder &embedder, const std::string &embedder_path) {
    store.use_encoder({embedder.identity(), embedder_path, embedder.dim()});
    size_t total = 0;
    for (;;) {
        auto batch = store.chunks_without_vectors(256);
        if (batch.empty()) break;
        std::vector<int64_t> ids;
        std::vector<std::string> texts;
        for (auto &[id, text] : batch) {
            ids.push_back(id);
            texts.push_back(std::move(text));
        }
        std::vector<float> vectors(texts.size() * size_t(embedder.dim()));
        embedder.embed(texts, vectors.data());
        store.put_vectors(ids, vectors);
        total += ids.size();
    }
    return total;
}

PreparedDocument prepare_document(const std::string &path, std::string_view bytes, const std::string &format,
                                  const nlohmann::json &metadata, const ChunkOptions &options, const nn::Embedder *embedder,
                                  int64_t size, int64_t mtime_ns) {
    LoadedDocument doc = load_document(bytes, format, path);
    PreparedDocument out;
    out.input = document_input(doc, path, content_hash(bytes), size ? size : int64_t(bytes.size()), mtime_ns);
    if (metadata.is_object()) out.input.metadata.update(metadata);
    ChunkOptions opt = options;
    if (embedder && !opt.counter) opt.counter = &embedder->token_counter();
    out.chunks = chunk_document(doc, opt);
    if (embedder) out.vectors = embed_chunks(*embedder, out.chunks);
    return out;
}

int64_t store_document(Store &store, const PreparedDocument &doc) {
    return store.put_document(doc.input, doc.chunks, doc.vectors);
}

int64_t index_document(Store &store, const std::string &path, std::string_view bytes, const std::string &format,
                       const nlohmann::json &metadata, const ChunkOptions &options, const nn::Embedder *embedder,
                       int64_t size, int64_t mtime_ns) {
    return store_document(store, prepare_document(path, bytes, format, metadata, options, embedder, size, mtime_ns));
}

namespace {

struct Candidate {
    std::string path, format;
    std::string source;  // what is read: path, or the checked target of a followed link
    int64_t size = 0, mtime_ns = 0;
    // filled by the loader threads
    bool needs_write = false;
    std::string hash, error;
    DocumentInput input;
    std::vector<ChunkInput> chunks;
    std::vector<float> vectors;
    int64_t touch_id = 0;  // unchanged content, new mtime
};

bool matches_any(const std::vector<std::string> &globs, const std::string &rel) {
    for (const auto &g : globs) {
        if (fnmatch(g.c_str(), rel.c_str(), 0) == 0) return true;
        // A glob without a slash also matches the file name alone, as in .gitignore.
        if (g.find('/') == std::string::npos &&
            fnmatch(g.c_str(), fs::path(rel).filename().c_str(), 0) == 0) return true;
    }
    return false;
}

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw LoadError(std::string("cannot read: ") + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw LoadError("read error");
    return std::move(ss).str();
}

void load_candidate(Candidate &c, const std::optional<FileState> &state, const ChunkOptions &opt) {
    try {
        std::string bytes = read_file(c.source.empty() ? c.path : c.source);
        c.hash = content_hash(bytes);
        if (state && state->hash == c.hash) {
            c.touch_id = state->id;
            return;
        }
        LoadedDocument doc = load_document(bytes, c.format, c.path);
        c.input = document_input(doc, c.path, c.hash, c.size, c.mtime_ns);
        c.chunks = chunk_document(doc, opt);
        c.needs_write = true;
    } catch (const std::exception &e) {
        c.error = e.what();
    }
}

// The vectors of the loaded files' chunks, in one embed() call: the embedder shares the texts over
// nn::compute_pool(). If that fails, file by file, so the file at fault is skipped with the reason.
void embed_loaded(const nn::Embedder &embedder, std::vector<Candidate> &files, const std::vector<size_t> &todo) {
    std::vector<Candidate *> loaded;
    std::vector<std::string> texts;
    for (size_t i : todo) {
        if (!files[i].needs_write) continue;
        loaded.push_back(&files[i]);
        for (const auto &chunk : files[i].chunks) texts.push_back(embedding_text(chunk.heading, chunk.text));
    }
    const size_t dim = size_t(embedder.dim());
    std::vector<float> vectors(texts.size() * dim);
    try {
        if (!texts.empty()) embedder.embed(texts, vectors.data());
    } catch (const std::exception &) {
        for (Candidate *c : loaded) {
            try {
                c->vectors = embed_chunks(embedder, c->chunks);
            } catch (const std::exception &e) {
                c->error = e.what();
            }
        }
        return;
    }
    size_t at = 0;
    for (Candidate *c : loaded) {
        c->vectors.assign(vectors.begin() + ptrdiff_t(at * dim), vectors.begin() + ptrdiff_t((at + c->chunks.size()) * dim));
        at += c->chunks.size();
    }
}

class Progress {
public:
    Progress(std::ostream &log, bool bar, size_t total) : log_(log), bar_(bar), total_(total) {}
    void update(size_t done) {
        if (total_ == 0) return;
        if (bar_) {
            size_t width = 30, filled = done * width / total_;
            log_ << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << done << '/'
                 << total_ << " files" << std::flush;
            if (done == total_) log_ << '\n';
        } else {
            size_t step = std::max<size_t>(total_ / 10, 1);
            if (done / step != last_ / step || done == total_) log_ << "indexed " << done << '/' << total_ << " files\n";
        }
        last_ = done;
    }

private:
    std::ostream &log_;
    bool bar_;
    size_t total_, last_ = 0;
};

}  // namespace

IndexSummary index_folder(Store &store, const fs::path &folder, const IndexOptions &opt, std::ostream &log) {
    auto t0 = std::chrono::steady_clock::now();
    IndexSummary sum;
    std::error_code ec;
    fs::path root = fs::weakly_canonical(fs::absolute(folder), ec);
    if (ec || !fs::is_directory(root)) throw LoadError("not a folder: " + folder.string());
    ChunkOptions chunking = opt.chunking;
    if (opt.embedder) {
        store.use_encoder({opt.embedder->identity(), opt.embedder_path, opt.embedder->dim()});
        if (!chunking.counter) chunking.counter = &opt.embedder->token_counter();
    }

    std::vector<Candidate> files;
    size_t ignored = 0;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        const fs::path &p = it->path();
        if (p.filename().string().front() == '.') {  // hidden files and folders (.git, editor state)
            if (it->is_directory(ec)) it.disable_recursion_pending();
            continue;
        }
        // Links are not followed unless asked, and then only to files inside the root: a link
        // to ~/.aws/credentials must not put that file in front of every client. Folder links are
        // never descended (their files are either inside the root already, or outside it).
        std::string source;
        if (it->is_symlink(ec)) {
            if (!format_for_path(p)) continue;
            if (!opt.follow_symlinks) {
                sum.skipped.emplace_back(p.string(), "a symbolic link (saem index follows links only with --follow-symlinks)");
                continue;
            }
            std::error_code lec;
            fs::path target = fs::canonical(p, lec);
            if (lec) {
                sum.skipped.emplace_back(p.string(), "a broken symbolic link");
                continue;
            }
            auto rel_target = target.lexically_relative(root);
            if (rel_target.empty() || *rel_target.begin() == "..") {
                sum.skipped.emplace_back(p.string(), "a symbolic link to " + target.string() + ", outside the indexed folder");
                continue;
            }
            source = target.string();
        }
        if (!fs::is_regular_file(source.empty() ? p : fs::path(source), ec)) continue;
        std::string rel = fs::relative(p, root, ec).generic_string();
        if (!opt.include.empty() && !matches_any(opt.include, rel)) continue;
        if (matches_any(opt.exclude, rel)) continue;
        auto format = format_for_path(p);
        if (!format) { ++ignored; continue; }
        struct stat st {};
        if (::stat((source.empty() ? p.string() : source).c_str(), &st) != 0) {
            sum.skipped.emplace_back(p.string(), std::string("cannot stat: ") + std::strerror(errno));
            continue;
        }
        // Checked here, not recorded as a skip in the store: a later run with a larger limit reads it.
        if (int64_t(st.st_size) > opt.max_file_bytes) {
            sum.skipped.emplace_back(p.string(), "the file is " + std::to_string(st.st_size >> 20) + " MiB; the limit is " +
                                                     std::to_string(opt.max_file_bytes >> 20) + " MiB (--max-file-mb)");
            continue;
        }
        Candidate c;
        c.path = p.string();
        c.source = source;
        c.format = *format;
        c.size = st.st_size;
        c.mtime_ns = int64_t(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
        files.push_back(std::move(c));
    }
    if (ec) throw LoadError("cannot walk " + root.string() + ": " + ec.message());
    std::sort(files.begin(), files.end(), [](const Candidate &a, const Candidate &b) { return a.path < b.path; });

    // Files that are gone, or now filtered out, leave the index.
    std::unordered_set<std::string> seen;
    for (const auto &c : files) seen.insert(c.path);
    for (const auto &path : store.paths_under(root.string() + "/")) {
        if (!seen.count(path)) {
            store.remove_path(path);
            ++sum.removed;
        }
    }

    Progress progress(log, opt.progress_bar, files.size());
    unsigned threads = opt.threads > 0 ? unsigned(opt.threads) : std::max(1u, std::thread::hardware_concurrency());
    const size_t batch_size = 64;
    size_t done = 0;
    for (size_t batch = 0; batch < files.size(); batch += batch_size) {
        size_t batch_end = std::min(files.size(), batch + batch_size);
        // Decide on the writer thread (it owns the connection) which files must be read.
        std::vector<size_t> todo;
        std::vector<std::optional<FileState>> states(batch_end - batch);
        for (size_t i = batch; i < batch_end; ++i) {
            Candidate &c = files[i];
            states[i - batch] = store.file_state(c.path);
            const auto &s = states[i - batch];
            if (s && s->size == c.size && s->mtime_ns == c.mtime_ns) { ++sum.unchanged; continue; }
            if (!s) {
                if (auto sk = store.skipped_state(c.path); sk && sk->first.size == c.size && sk->first.mtime_ns == c.mtime_ns) {
                    sum.skipped.emplace_back(c.path, sk->second);
                    continue;
                }
            }
            todo.push_back(i);
        }
        std::atomic<size_t> next{0};
        auto worker = [&] {
            for (size_t k; (k = next++) < todo.size();) load_candidate(files[todo[k]], states[todo[k] - batch], chunking);
        };
        std::vector<std::thread> pool;
        for (unsigned t = 1; t < std::min<size_t>(threads, todo.size()); ++t) pool.emplace_back(worker);
        worker();
        for (auto &t : pool) t.join();
        // Embedding is not the loaders' job: they would each start the encoder's parallel work.
        if (opt.embedder) embed_loaded(*opt.embedder, files, todo);

        for (size_t i : todo) {
            Candidate &c = files[i];
            const auto &s = states[i - batch];
            if (!c.error.empty()) {
                store.put_skipped(c.path, c.size, c.mtime_ns, c.error);
                sum.skipped.emplace_back(c.path, c.error);
            } else if (c.touch_id) {
                store.touch_document(c.touch_id, c.size, c.mtime_ns);
                ++sum.unchanged;
            } else if (c.needs_write) {
                store.put_document(c.input, c.chunks, c.vectors);
                sum.chunks_written += c.chunks.size();
                sum.vectors_written += c.vectors.size() / size_t(opt.embedder ? opt.embedder->dim() : 1);
                ++(s ? sum.updated : sum.added);
            }
            c.chunks = {};
            c.vectors = {};
        }
        done = batch_end;
        progress.update(done);
    }

    // Chunks indexed before this encoder was configured get their vectors now.
    if (opt.embedder) sum.vectors_written += embed_missing(store, *opt.embedder, opt.embedder_path);
    if (opt.embedder) build_vector_index(store);
    sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Stats stats = store.stats();
    log << "added " << sum.added << ", updated " << sum.updated << ", removed " << sum.removed << ", unchanged "
        << sum.unchanged << ", skipped " << sum.skipped.size();
    if (ignored) log << ", ignored " << ignored << " of other types";
    log << "; " << sum.chunks_written << " chunks written, " << stats.chunks << " in the index ("
        << stats.documents << " documents)";
    if (opt.embedder) log << "; " << sum.vectors_written << " vectors written (" << opt.embedder->identity() << ")";
    log << "; " << std::fixed << std::setprecision(2) << sum.seconds << " s\n";
    log.unsetf(std::ios::fixed);
    for (const auto &[path, reason] : sum.skipped) log << "skipped " << path << ": " << reason << '\n';
    return sum;
}

}  // namespace saem
