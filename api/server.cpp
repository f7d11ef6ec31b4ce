#include "api/api.h"
#include "api/fields.h"
#include "api/metrics.h"
#include "api/openai.h"
#include "api/mcp.h"
#include "api/page.h"
#include "generator/poller.h"
#include "generator/remote.h"
#include "generator/queue.h"

#include <httplib.h>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <charconv>
#include <random>
#include <regex>
#include <tuple>

namespace saem {

using nlohmann::json;

namespace {

struct HttpError {
    int status;
    std::string code, message;
};

std::string dump(const json &j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response &res, int status, const json &body) {
    res.status = status;
    res.set_content(dump(body), "application/json");
}

// One error shape for every route, and it is OpenAI's: {"error": {"message", "type", "param",
// "code"}}, so the OpenAI-compatible routes and their clients read saem's errors as they read
// OpenAI's. code is saem's stable code; type is OpenAI's class of it.
void send_error(httplib::Response &res, int status, const std::string &code, const std::string &message) {
    const char *type = status == 401 ? "authentication_error"
                       : status == 403 ? "permission_error"
                       : status == 429 ? "rate_limit_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    send_json(res, status, {{"error", {{"code", code}, {"message", message}, {"type", type}, {"param", nullptr}}}});
}

// RFC 4648 base64 of bytes: the OpenAI embeddings "base64" encoding of little-endian float32s.
std::string base64(const void *data, size_t n) {
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto *b = static_cast<const uint8_t *>(data);
    std::string out;
    out.reserve((n + 2) / 3 * 4);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = uint32_t(b[i]) << 16 | (i + 1 < n ? uint32_t(b[i + 1]) << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
        out += digits[v >> 18 & 63];
        out += digits[v >> 12 & 63];
        out += i + 1 < n ? digits[v >> 6 & 63] : '=';
        out += i + 2 < n ? digits[v & 63] : '=';
    }
    return out;
}

// A request body read under the size limit: JSON text, or the parts of a multipart form.
struct Body {
    std::string text;
    bool multipart = false;
    std::vector<httplib::MultipartFormData> parts;
    const httplib::MultipartFormData *part(const std::string &name) const {
        for (const auto &p : parts)
            if (p.name == name) return &p;
        return nullptr;
    }
};

// Reads the body through cpp-httplib's content reader, which de-chunks and inflates
// (gzip, deflate, br), counting the bytes it delivers: the limit holds after inflation and for
// chunked bodies, which cpp-httplib 0.11 itself reads whole whatever their size.
Body read_body(const httplib::Request &req, httplib::Response &res, const httplib::ContentReader &reader, size_t limit) {
    Body body;
    size_t total = 0;
    bool too_big = false;
    auto count = [&](size_t n) {
        total += n;
        too_big = too_big || total > limit;
        return !too_big;
    };
    bool ok;
    if (req.is_multipart_form_data()) {
        body.multipart = true;
        ok = reader(
            [&](const httplib::MultipartFormData &part) {
                if (body.parts.size() >= 16) return false;
                body.parts.push_back(part);
                return count(part.name.size() + part.filename.size());
            },
            [&](const char *data, size_t n) {
                if (body.parts.empty() || !count(n)) return false;
                body.parts.back().content.append(data, n);
                return true;
            });
    } else {
        ok = reader([&](const char *data, size_t n) {
            if (!count(n)) return false;
            body.text.append(data, n);
            return true;
        });
    }
    // cpp-httplib counts against the same limit itself where it can (res.status 413).
    if (too_big || (!ok && res.status == 413))
        throw HttpError{413, "payload_too_large", "the request body is larger than this server accepts (" + std::to_string(limit) +
                                                      " bytes after decompression)"};
    if (!ok) throw HttpError{400, "invalid_request", "the request body could not be read (malformed chunking, compression or form)"};
    return body;
}

json parse_body(const std::string &text, int max_depth) {
    if (int depth = nn::json_depth(text); depth > max_depth)
        throw HttpError{400, "invalid_json", "the request body nests " + std::to_string(depth) + " levels deep; the limit is " +
                                                 std::to_string(max_depth)};
    json body = json::parse(text, nullptr, false);
    if (body.is_discarded()) throw HttpError{400, "invalid_json", "the request body is not valid JSON (UTF-8)"};
    if (!body.is_object()) throw HttpError{400, "invalid_request", "the request body must be a JSON object"};
    return body;
}

// The socket of the connection req arrived on, or -1. cpp-httplib 0.11 gives handlers no socket,
// yet a handler waiting for a generation must notice its client hanging up. A connection is served
// start to end by one worker thread, so the socket whose two ends are req's addresses is its own.
int connection_socket(const httplib::Request &req) {
    auto numeric = [](const sockaddr_storage &a, socklen_t len, std::string &host, int &port) {
        char h[NI_MAXHOST], p[NI_MAXSERV];
        if (getnameinfo(reinterpret_cast<const sockaddr *>(&a), len, h, sizeof h, p, sizeof p, NI_NUMERICHOST | NI_NUMERICSERV)) return false;
        host = h;
        port = std::atoi(p);
        return true;
    };
    std::error_code ec;
    for (const auto &entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
        int fd = std::atoi(entry.path().filename().c_str());
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
        sockaddr_storage peer{}, local{};
        socklen_t pl = sizeof peer, ll = sizeof local;
        if (getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &pl) != 0) continue;
        if (getsockname(fd, reinterpret_cast<sockaddr *>(&local), &ll) != 0) continue;
        std::string ph, lh;
        int pp = 0, lp = 0;
        if (numeric(peer, pl, ph, pp) && numeric(local, ll, lh, lp) && pp == req.remote_port && ph == req.remote_addr &&
            lp == req.local_port && lh == req.local_addr)
            return fd;
    }
    return -1;
}

// True once the client has closed its end (or the connection failed). A client sends its whole
// request before waiting for the answer, so readable data other than end-of-stream is left alone.
// A client that only shuts down its sending side after the request looks the same as one that
// left (TCP cannot tell them apart without writing), and counts as gone.
bool client_gone(int fd) {
    if (fd < 0) return false;
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return true;
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

// What a generated answer streams to its HTTP worker: pieces as they are final, then the answer.
struct AnswerStream {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::string> pieces;
    std::optional<Answer> answer;
    void push(std::string piece) {
        std::lock_guard lock(mutex);
        pieces.push_back(std::move(piece));
        ready.notify_one();
    }
    void finish(Answer a) {
        std::lock_guard lock(mutex);
        answer = std::move(a);
        ready.notify_one();
    }
    // Waits up to timeout for a piece or the end; takes the pieces that came.
    std::deque<std::string> take(std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex);
        ready.wait_for(lock, timeout, [&] { return !pieces.empty() || answer; });
        return std::exchange(pieces, {});
    }
};

using fields::bounded_int;
using fields::bounded_number;
using fields::optional_bool;
using fields::required_string;

// Route patterns, for telling a wrong method (405) from an unknown path (404).
const std::vector<std::regex> &known_routes() {
    static const std::vector<std::regex> routes = {
        std::regex("/"), std::regex("/page.js"), std::regex("/healthz"), std::regex("/v1/stats"), std::regex("/v1/search"), std::regex("/v1/ask"),
        std::regex("/v1/documents"), std::regex("/v1/documents/[0-9]+"), std::regex("/v1/embeddings"), std::regex("/v1/models"),
        std::regex("/v1/rerank"), std::regex("/metrics"),
        std::regex("/v1/chat/completions"), std::regex("/v1/collections"), std::regex("/mcp")};
    return routes;
}

}  // namespace

struct Server::Impl {
    ServerOptions opt;
    bool loopback = false;  // bound to a loopback address: Host must name it
    Retriever retriever;
    httplib::Server http;
    struct Collection {
        std::string name, db;
        std::mutex write_mutex;  // held only while a document is written, never while it is parsed or embedded
    };
    std::vector<std::unique_ptr<Collection>> collections;  // the first is the default
    std::unique_ptr<GenerationQueue> generations;          // when there is a decoder
    std::atomic<size_t> remote_running{0};                 // remote generations under way
    std::atomic<bool> stopping{false};                     // stop() was called: remote answers end
    Metrics metrics;

    Collection *find_collection(const std::string &name) {
        for (auto &c : collections)
            if (c->name == name) return c.get();
        return nullptr;
    }
    Collection &collection_named(const std::string &name) {
        if (name.empty()) return *collections.front();
        if (Collection *c = find_collection(name)) return *c;
        throw HttpError{404, "collection_not_found", "no collection '" + name.substr(0, 200) + "' (GET /v1/collections lists them)"};
    }
    // The collection a JSON body names in "collection", else the default.
    Collection &collection_of(const json &body) {
        const json *c = fields::find(body, "collection");
        if (c && !c->is_string()) throw HttpError{400, "invalid_field", "'collection' must be a string"};
        return collection_named(c ? c->get<std::string>() : "");
    }
    // The collection ?collection= names, else the default.
    Collection &collection_of(const httplib::Request &req) { return collection_named(req.get_param_value("collection")); }

    // A search in a collection, its stages timed for /metrics.
    Retrieved search(const Collection &col, const SearchRequest &sr) {
        Store store(col.db, opt.busy_timeout_ms);
        Retrieved r = retriever.search(store, sr);
        for (const auto &[stage, seconds] : r.stage_seconds) metrics.stage(stage, seconds);
        return r;
    }

    // Runs a route: JSON errors with a stable shape whatever goes wrong inside.
    static void guarded(httplib::Response &res, const std::function<void()> &fn) {
            try {
                fn();
            } catch (const HttpError &e) {
                send_error(res, e.status, e.code, e.message);
                // A body left unread (too large, malformed) leaves the connection unusable.
                if (e.status == 413 || e.status == 400) res.set_header("Connection", "close");
            } catch (const RequestError &e) {
                send_error(res, 400, e.code, e.what());
            } catch (const LoadError &e) {
                send_error(res, 422, "unprocessable_document", e.what());
            } catch (const QueueFull &e) {
                send_error(res, 429, "too_many_requests", e.what());
                res.set_header("Retry-After", std::to_string(e.retry_after_seconds));
            } catch (const QueueClosed &e) {
                send_error(res, 503, "shutting_down", e.what());
            } catch (const GenerationCancelled &e) {
                send_error(res, 503, "shutting_down", e.what());
            } catch (const StoreBusy &e) {
                send_error(res, 503, "busy", std::string("the index is busy, try again: ") + e.what());
                res.set_header("Retry-After", "1");
            } catch (const StoreError &e) {
                send_error(res, 500, "storage_error", e.what());
            } catch (const nn::ContextError &e) {
                send_error(res, 400, "context_exceeded", e.what());
            } catch (const std::exception &e) {
                send_error(res, 500, "internal", e.what());
            }
    }

    // Runs fn guarded, and times it for /metrics.
    void timed(const httplib::Request &req, httplib::Response &res, const std::function<void()> &fn) {
        auto start = std::chrono::steady_clock::now();
        guarded(res, fn);
        const std::string route = Metrics::route_of(req.path);
        metrics.time(route, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        metrics.count(route, res.status == -1 ? 200 : res.status);
    }

    httplib::Server::Handler route(std::function<void(const httplib::Request &, httplib::Response &)> fn) {
        return [this, fn](const httplib::Request &req, httplib::Response &res) { timed(req, res, [&] { fn(req, res); }); };
    }

    // A route with a body: read under the limit (after de-chunking and inflation) before fn runs.
    httplib::Server::HandlerWithContentReader with_body(std::function<void(const httplib::Request &, httplib::Response &, const Body &)> fn) {
        return [this, fn](const httplib::Request &req, httplib::Response &res, const httplib::ContentReader &reader) {
            timed(req, res, [&] { fn(req, res, read_body(req, res, reader, opt.max_body_bytes)); });
        };
    }

    json parse_json(const Body &body) const {
        if (body.multipart) throw HttpError{415, "unsupported_media_type", "this route takes a JSON body (application/json)"};
        return parse_body(body.text, opt.max_json_depth);
    }

    // Access and framing, decided from the request line and headers before any body is read:
    // header count, Host (on loopback: DNS rebinding), Origin (a web page the user visits),
    // the API key, the body's framing and its media type.
    bool refuse(const httplib::Request &req, httplib::Response &res) {
        auto fail = [&](int status, const char *code, const std::string &message) {
            send_error(res, status, code, message);
            res.set_header("Connection", "close");
            return true;
        };
        if (req.headers.size() > opt.max_headers)
            return fail(431, "headers_too_large", "more than " + std::to_string(opt.max_headers) + " request headers");
        if (loopback && req.has_header("Host")) {
            std::string host = req.get_header_value("Host");
            if (host.empty()) return fail(403, "forbidden_host", "an empty Host header");
            if (host.front() == '[') host = host.substr(0, host.find(']') + 1);
            else host = host.substr(0, host.find(':'));
            for (char &c : host) c = char(std::tolower(static_cast<unsigned char>(c)));
            if (host != "localhost" && host != "127.0.0.1" && host != "[::1]")
                return fail(403, "forbidden_host", "this server listens on a loopback address and answers only to localhost, not '" +
                                                       host + "'");
        }
        // The server's own page (/) calls it from its own origin, which needs no CORS. A page whose
        // DNS name was rebound to this server has an origin equal to its Host too, so the own
        // origin is trusted only where that cannot pass: on loopback (its Host was checked above)
        // or where every request needs a key (the rebound page has none). Elsewhere the page needs
        // --cors-origin like any other.
        const std::string origin = req.get_header_value("Origin"), host = req.get_header_value("Host");
        const bool same_origin = (loopback || !opt.api_keys.empty()) && !host.empty() &&
                                 (origin == "http://" + host || origin == "https://" + host);
        if (req.has_header("Origin") && !same_origin) {
            if (std::find(opt.cors_origins.begin(), opt.cors_origins.end(), origin) == opt.cors_origins.end())
                return fail(403, "forbidden_origin", "requests from pages of '" + origin + "' are not allowed (saem serve --cors-origin)");
            res.set_header("Access-Control-Allow-Origin", origin);
            res.set_header("Access-Control-Expose-Headers", "Mcp-Session-Id, Retry-After");
            res.set_header("Vary", "Origin");
            if (req.method == "OPTIONS") {  // preflight
                res.status = 204;
                res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE");
                res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID");
                res.set_header("Access-Control-Max-Age", "600");
                return true;
            }
        }
        if (!opt.api_keys.empty() && req.path != "/healthz" && req.path != "/" && req.path != "/page.js" && !authorized(req.get_header_value("Authorization"))) {
            fail(401, "unauthorized", "send a valid API key: Authorization: Bearer KEY");
            res.set_header("WWW-Authenticate", "Bearer");
            return true;
        }
        // Only the routes that read their body through read_body() may have one: cpp-httplib reads
        // any other request's body whole, chunked or compressed, without a limit.
        const bool body_route = req.method == "POST" && (req.path == "/v1/search" || req.path == "/v1/ask" || req.path == "/v1/documents" ||
                                                                req.path == "/v1/embeddings" || req.path == "/v1/rerank" ||
                                                                req.path == "/v1/chat/completions" || req.path == "/mcp");
        const bool has_body = req.has_header("Transfer-Encoding") ||
                              (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
        if (has_body && !body_route) {
            bool known = std::any_of(known_routes().begin(), known_routes().end(), [&](const std::regex &r) { return std::regex_match(req.path, r); });
            if (!known) return fail(404, "not_found", "no route " + req.method + " " + req.path);
            return fail(405, "method_not_allowed", req.method + " " + req.path + " takes no body");
        }
        if (body_route) {
            std::string te = req.get_header_value("Transfer-Encoding");
            for (char &c : te) c = char(std::tolower(static_cast<unsigned char>(c)));
            if (!te.empty() && te != "chunked")
                return fail(501, "not_implemented", "Transfer-Encoding '" + req.get_header_value("Transfer-Encoding") + "' is not supported");
            if (te.empty() && !req.has_header("Content-Length"))
                return fail(411, "length_required", "send the body with a Content-Length or chunked");
            if (te.empty()) {
                const std::string length = req.get_header_value("Content-Length");
                char *end = nullptr;
                unsigned long long n = std::strtoull(length.c_str(), &end, 10);
                if (length.empty() || *end || length[0] == '-' || n > opt.max_body_bytes)
                    return fail(413, "payload_too_large", "the request body is larger than this server accepts (" +
                                                              std::to_string(opt.max_body_bytes) + " bytes)");
            }
            std::string type = req.get_header_value("Content-Type");
            type = type.substr(0, type.find(';'));
            for (char &c : type) c = char(std::tolower(static_cast<unsigned char>(c)));
            while (!type.empty() && type.back() == ' ') type.pop_back();
            bool json_type = type == "application/json";
            bool form = type == "multipart/form-data" && req.path == "/v1/documents";
            if (!json_type && !form)
                return fail(415, "unsupported_media_type",
                            "send application/json" + std::string(req.path == "/v1/documents" ? " or multipart/form-data" : "") +
                                (type.empty() ? "" : ", not " + type));
        }
        return false;
    }

    // Any configured key, compared in time independent of where a guess first differs.
    bool authorized(const std::string &header) const {
        static const std::string scheme = "bearer ";
        if (header.size() <= scheme.size()) return false;
        for (size_t i = 0; i < scheme.size(); ++i)  // the scheme is case-insensitive (RFC 7235)
            if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return false;
        std::string_view given = std::string_view(header).substr(scheme.size());
        bool ok = false;
        for (const auto &key : opt.api_keys) {
            unsigned char diff = key.size() == given.size() ? 0 : 1;
            for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ key[i % std::max<size_t>(key.size(), 1)]);
            ok |= diff == 0;
        }
        return ok;
    }

    // ---- Generated answers, local or remote -------------------------------------------------------

    std::string decoder_id() const { return opt.decoder_name.empty() ? opt.decoder->architecture() : opt.decoder_name; }
    bool can_generate() const { return opt.decoder || opt.remote; }

    // What one generated answer needs, whichever model writes it.
    using Work = std::function<Answer(ChatModel &, const std::atomic<bool> *cancel, const TextSink &)>;
    struct ClientGone {};  // the client hung up: its answer was cancelled and nothing is sent
    using Gone = std::function<bool()>;  // true once the client has gone (polled while it waits)

    // A generated answer's plan: which model, why, and its admission (a place in the local queue,
    // or a remote slot), taken before the response starts so that refusals are still a 429.
    struct Plan {
        Work work;
        bool remote = false;
        std::string reason;
        std::shared_ptr<AnswerStream> out;
        std::shared_ptr<GenerationQueue::Ticket> ticket;
        std::shared_ptr<void> remote_slot;
        std::function<Answer()> extractive;  // the last fallback; null: none (a plain chat)
        bool streamed = false;               // some of the remote answer was passed on
    };

    std::shared_ptr<GenerationQueue::Ticket> submit_local(const Work &work, const std::shared_ptr<AnswerStream> &out) {
        return generations->submit([this, work, out](nn::Decoder &decoder, const GenerationQueue::Ticket &t) {
            LocalChat model(decoder, opt.chat_template, decoder_id());
            Answer a = work(model, &t.cancel_flag(), [&](std::string_view piece) {
                out->push(std::string(piece));
                return !t.cancelled();
            });
            // A cancelled answer is not passed off as a whole one.
            if (t.cancelled()) throw GenerationCancelled("the answer was cancelled: the server is stopping");
            out->finish(std::move(a));
        });
    }

    std::shared_ptr<Plan> plan(Work work, bool remote, std::string reason, std::function<Answer()> extractive) {
        auto p = std::make_shared<Plan>();
        p->work = std::move(work);
        p->remote = remote;
        p->reason = std::move(reason);
        p->extractive = std::move(extractive);
        if (remote) {
            if (remote_running.fetch_add(1) >= opt.generation_queue) {
                remote_running.fetch_sub(1);
                throw QueueFull("the remote generator has " + std::to_string(opt.generation_queue) + " answers under way; try again shortly", 1);
            }
            p->remote_slot = std::shared_ptr<void>(nullptr, [this](void *) { remote_running.fetch_sub(1); });
        } else {
            p->out = std::make_shared<AnswerStream>();
            p->ticket = submit_local(p->work, p->out);
        }
        return p;
    }

    // Waits for a local answer on this worker, passing its pieces to emit and watching the client.
    static Answer wait_local(GenerationQueue::Ticket &ticket, AnswerStream &out, const TextSink &emit, const Gone &gone) {
        for (;;) {
            bool ended = ticket.wait_for(std::chrono::milliseconds(0));
            for (const auto &piece : out.take(std::chrono::milliseconds(ended ? 0 : 100)))
                if (emit && !emit(piece)) {
                    ticket.cancel();
                    throw ClientGone{};
                }
            if (ended) break;
            if (gone()) {
                ticket.cancel();
                throw ClientGone{};
            }
        }
        ticket.rethrow_if_failed();
        if (!out.answer) throw GenerationCancelled("the server stopped before the answer was generated");
        return *out.answer;
    }

    // Produces the planned answer on this worker (produce()), and counts its times and tokens.
    Answer run(Plan &p, const TextSink &emit, const Gone &gone) {
        Answer a = produce(p, emit, gone);
        if (a.method != "extractive" && a.prompt_tokens > 0) {  // a model was asked
            metrics.stage("prompt", a.prompt_seconds);
            metrics.stage("generation", a.generation_seconds);
            metrics.tokens(a.route, a.prompt_tokens, a.completion_tokens);
        }
        return a;
    }

    // A remote failure before its answer started falls back to the local model, else to the
    // extractive answer, and the answer's route_reason says so.
    Answer produce(Plan &p, const TextSink &emit, const Gone &gone) {
        if (!p.remote) {
            Answer a = wait_local(*p.ticket, *p.out, emit, gone);
            a.route = "local";
            a.route_reason = p.reason;
            return a;
        }
        // The remote answer is read on this worker; a poller cancels it when the client hangs up
        // or the server stops, even while the remote server is silent.
        std::atomic<bool> cancel{false}, left{false};
        Poller poller([&] {
            if (stopping || gone()) {
                left = !stopping;
                cancel = true;
            }
            return cancel.load();
        }, std::chrono::milliseconds(100));
        try {
            Answer a = p.work(*opt.remote, &cancel, [&](std::string_view piece) {
                p.streamed = true;
                if (emit && !emit(piece)) left = cancel = true;
                return !cancel;
            });
            poller.stop();
            if (left) throw ClientGone{};
            if (cancel) throw GenerationCancelled("the answer was cancelled: the server is stopping");
            // Part of the answer came, then the remote failed. Unstreamed, nobody has seen it: fall
            // back as for any failure. Streamed, the client has it: the stream ends in an error.
            if (a.stop_reason == "error") throw RemoteError(a.note);
            a.route = "remote";
            a.route_reason = p.reason;
            return a;
        } catch (const RemoteError &e) {
            poller.stop();
            if (emit && p.streamed) throw;  // the client has part of this answer: no second one
            std::string why = p.reason + "; the remote model failed (" + e.what() + "), so ";
            if (generations) {
                p.out = std::make_shared<AnswerStream>();
                p.ticket = submit_local(p.work, p.out);
                Answer a = wait_local(*p.ticket, *p.out, emit, gone);
                a.route = "local";
                a.route_reason = why + "the local model answered";
                return a;
            }
            if (!p.extractive) throw HttpError{502, "remote_failed", std::string("the remote model failed: ") + e.what()};
            Answer a = p.extractive();
            a.note = "The remote model failed, so this answer quotes the most relevant sentences verbatim.";
            a.route = "extractive";
            a.route_reason = why + "the answer is extractive";
            if (emit) emit(a.text);
            return a;
        }
    }

    // Which generator answers a question with these sources (generator/router.h).
    std::pair<bool, std::string> route_for(const std::string &question, const Retrieved &r, int max_tokens) const {
        if (!opt.remote) return {false, "the local model is the only generator"};
        if (!opt.decoder) return {true, "the remote model is the only generator"};
        RouteSignals s = route_signals(opt.router, question, r);
        bool fits = true;
        if (opt.router.policy == RoutePolicy::automatic && !r.hits.empty()) {
            std::string sources;
            for (int i = 0; i < std::max(s.sources_needed, 1) && i < int(r.hits.size()); ++i) sources += source_block(i + 1, r.hits[size_t(i)]);
            LocalChat local(*opt.decoder, opt.chat_template);
            fits = local.prompt_tokens(rag_messages(question, sources, {})) + max_tokens <= opt.decoder->context_length();
        }
        RouteDecision d = choose_route(opt.router, s, fits);
        return {d.remote, d.reason};
    }

    // A retrieval-augmented answer's plan over these sources.
    std::shared_ptr<Plan> plan_answer(const std::string &question, std::shared_ptr<const Retrieved> sources, GeneratedAnswerOptions go) {
        auto [remote, reason] = route_for(question, *sources, go.generation.max_tokens);
        Work work = [question, sources, go](ChatModel &model, const std::atomic<bool> *cancel, const TextSink &sink) {
            GeneratedAnswerOptions options = go;
            options.generation.cancel = cancel;
            return answer_generated(model, question, *sources, options, sink);
        };
        return plan(std::move(work), remote, std::move(reason), [question, sources] { return answer_extractive(question, *sources); });
    }

    // "method": "generated" (the default when the server has a generator) or "extractive".
    std::string answer_method(const json &body) const {
        std::string method = can_generate() ? "generated" : "extractive";
        if (const json *m = fields::find(body, "method")) {
            if (!m->is_string() || (*m != "generated" && *m != "extractive"))
                throw HttpError{400, "invalid_field", "'method' must be \"generated\" or \"extractive\""};
            method = m->get<std::string>();
        }
        if (method == "generated" && !can_generate())
            throw HttpError{400, "no_generator", "the server has no generator model (start it with --model FILE.gguf or --generator-url URL)"};
        return method;
    }

    // An answer to /v1/ask's body, up to where it is generated: done (extractive), or planned.
    struct Asking {
        std::optional<json> done;
        std::shared_ptr<Plan> plan;
        std::function<json(const Answer &)> to_response;
        bool stream = false;
        bool strict = false;  // the checked answer is sent whole: its pieces are not streamed
    };

    Asking prepare_ask(const json &body) {
        Collection &col = collection_of(body);
        SearchRequest sr = for_answers(search_request_from_json(body, "question", 5, 100, opt.max_query_bytes));
        const std::string question = sr.query;
        const std::string method = answer_method(body);
        GeneratedAnswerOptions go;
        go.chat_template = opt.chat_template;
        go.generation.max_tokens = bounded_int(body, "max_tokens", opt.max_answer_tokens, 1, 8192);
        auto &sampling = go.generation.sampling;
        sampling.temperature = float(bounded_number(body, "temperature", 0.0, 0.0, 100.0));  // greedy unless asked
        sampling.seed = uint64_t(bounded_int(body, "seed", 0, 0, 2147483647));
        go.grounding.strict = optional_bool(body, "strict", false);
        go.min_support = bounded_number(body, "min_support", go.min_support, 0, 1);
        Asking out;
        out.stream = optional_bool(body, "stream", false);
        if (out.stream && method != "generated") throw HttpError{400, "invalid_field", "'stream' needs a generated answer"};
        out.strict = go.grounding.strict;
        // A full local queue refuses before retrieval is paid for, when the answer can only be local.
        if (method == "generated" && !opt.remote) generations->check_room();
        Retrieved retrieved = search(col, sr);
        out.to_response = [question, mode = retrieved.mode, name = col.name](const Answer &a) {
            json j = to_json(a);
            j["question"] = question;
            j["mode"] = mode_name(mode);
            j["collection"] = name;
            return j;
        };
        if (method == "extractive") {
            out.done = out.to_response(answer_extractive(question, retrieved));
            if (can_generate()) (*out.done)["note"] = "Extractive, as asked: the most relevant sentences, quoted verbatim.";
        } else {
            out.plan = plan_answer(question, std::make_shared<const Retrieved>(std::move(retrieved)), go);
        }
        return out;
    }

    // The whole answer to /v1/ask's body (the route unstreamed, MCP's ask tool).
    json ask_json(const json &body, const Gone &gone, const TextSink &emit = {}) {
        Asking a = prepare_ask(body);
        if (a.done) return *a.done;
        try {
            return a.to_response(run(*a.plan, emit, gone));
        } catch (const ClientGone &) {
            throw HttpError{503, "cancelled", "the client closed the connection; its answer was cancelled"};
        }
    }

    // /v1/ask: extractive without a generator (or with "method": "extractive"), else generated
    // from the retrieved sources; "stream": true sends the generated answer as server-sent events:
    // "data: {"text": piece}" per piece, then "event: done" with the whole answer's JSON (or
    // "event: error" with the error's).
    void ask(const httplib::Request &req, httplib::Response &res, const Body &raw) {
        json body = parse_json(raw);
        const Gone gone = [socket = connection_socket(req)] { return client_gone(socket); };
        if (!optional_bool(body, "stream", false)) {
            try {
                return send_json(res, 200, ask_json(body, gone));
            } catch (const HttpError &e) {
                if (e.code == "cancelled") res.set_header("Connection", "close");
                throw;
            }
        }
        Asking asking = prepare_ask(body);
        auto p = asking.plan;
        auto to_response = asking.to_response;
        const bool strict = asking.strict;
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [this, p, gone, to_response, strict](size_t, httplib::DataSink &sink) {
                auto event = [&](const char *name, const json &data) {
                    std::string e = (name ? std::string("event: ") + name + "\n" : std::string()) + "data: " + dump(data) + "\n\n";
                    return sink.write(e.data(), e.size());
                };
                try {
                    // Strict: the pieces would show sentences the check then removes; the checked
                    // text goes as one piece.
                    TextSink emit = [&](std::string_view piece) { return event(nullptr, {{"text", piece}}); };
                    Answer a = run(*p, strict ? TextSink{} : emit, gone);
                    if (strict) event(nullptr, {{"text", a.text}});
                    event("done", to_response(a));
                } catch (const ClientGone &) {
                    return false;
                } catch (const std::exception &e) {
                    event("error", {{"error", {{"code", stream_error_code(e)}, {"message", e.what()}}}});
                } catch (const HttpError &e) {
                    event("error", {{"error", {{"code", e.code}, {"message", e.message}}}});
                }
                sink.done();
                return true;
            },
            [p](bool) {
                if (p->ticket) p->ticket->cancel();  // a response never sent still frees its place
            });
    }

    static const char *stream_error_code(const std::exception &e) {
        return dynamic_cast<const nn::ContextError *>(&e)      ? "context_exceeded"
               : dynamic_cast<const GenerationCancelled *>(&e) ? "shutting_down"
               : dynamic_cast<const QueueFull *>(&e)           ? "too_many_requests"
               : dynamic_cast<const RemoteError *>(&e)         ? "remote_failed"
                                                                : "internal";
    }

    // OpenAI's chat completions. "model" names a collection (the last user message is answered
    // from it, earlier turns kept as history, citations in the "citations" extension field), or the
    // local or remote generator (a plain chat, no retrieval). The "saem" extension object takes
    // the retrieval options of /v1/ask (k, mode, filter, mmr, rerank) and "method".
    void chat_completions(const httplib::Request &req, httplib::Response &res, const Body &raw) {
        json body = parse_json(raw);
        openai::ChatRequest cr = openai::parse_chat_request(body, opt.max_answer_tokens);
        Collection *col = cr.model.empty() ? collections.front().get() : find_collection(cr.model);
        const bool local_chat = !col && opt.decoder && cr.model == decoder_id();
        const bool remote_chat = !col && !local_chat && opt.remote && cr.model == opt.remote->name();
        if (!col && !local_chat && !remote_chat)
            throw HttpError{404, "model_not_found", "the model '" + cr.model.substr(0, 200) +
                                                        "' does not exist here: name a collection or a generator from GET /v1/models"};
        const std::string id = openai::completion_id(), model = col ? col->name : cr.model;
        const int64_t created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        std::optional<Answer> ready;  // an answer that needs no generator
        std::shared_ptr<Plan> p;
        std::string mode;
        bool strict = false;
        if (col) {
            if (cr.messages.back().role != "user") throw HttpError{400, "invalid_field", "the last message must be the user's question"};
            json q = cr.saem;
            q["question"] = cr.messages.back().content;
            const std::string method = answer_method(q);
            SearchRequest sr = for_answers(search_request_from_json(q, "question", 5, 100, opt.max_query_bytes));
            if (method == "generated" && !opt.remote) generations->check_room();
            Retrieved retrieved;
            {
                retrieved = search(*col, sr);
            }
            mode = mode_name(retrieved.mode);
            if (method == "extractive") {
                ready = answer_extractive(sr.query, retrieved);
            } else {
                GeneratedAnswerOptions go;
                go.chat_template = opt.chat_template;
                go.generation = cr.generation;
                go.history.assign(cr.messages.begin(), cr.messages.end() - 1);
                go.grounding.strict = optional_bool(cr.saem, "strict", false);
                strict = go.grounding.strict;
                // A follow-up ("and how wide is it?") leans on the conversation: its support
                // cannot be judged from its own words.
                go.min_support = go.history.empty() ? bounded_number(cr.saem, "min_support", go.min_support, 0, 1) : 0;
                p = plan_answer(sr.query, std::make_shared<const Retrieved>(std::move(retrieved)), go);
            }
        } else {
            Work work = [messages = cr.messages, gen = cr.generation](ChatModel &m, const std::atomic<bool> *cancel, const TextSink &sink) {
                GenerateOptions g = gen;
                g.cancel = cancel;
                return openai::chat_answer(m.chat(messages, g, sink), m.name());
            };
            p = plan(std::move(work), remote_chat, remote_chat ? "the remote model, named by the request" : "the local model, named by the request", nullptr);
        }
        const Gone gone = [socket = connection_socket(req)] { return client_gone(socket); };
        const std::string collection = col ? col->name : "";
        if (!cr.stream) {
            Answer a;
            try {
                a = ready ? *ready : run(*p, {}, gone);
            } catch (const ClientGone &) {
                res.set_header("Connection", "close");
                throw HttpError{503, "cancelled", "the client closed the connection; its answer was cancelled"};
            }
            // A plain chat names the model that answered (the local one, after a remote failure).
            json out = openai::completion(id, created, col ? model : a.model, a);
            openai::add_extension(out, a, collection, mode);
            return send_json(res, 200, out);
        }
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [this, p, ready, gone, id, created, model, collection, mode, strict, usage = cr.include_usage](size_t, httplib::DataSink &sink) {
                auto data = [&](const json &j) {
                    std::string e = "data: " + dump(j) + "\n\n";
                    return sink.write(e.data(), e.size());
                };
                // With include_usage every chunk carries "usage": null but the last, as OpenAI's do.
                auto chunk = [&](const json &delta, const json &finish) {
                    json c = openai::chunk(id, created, model, delta, finish);
                    if (usage) c["usage"] = nullptr;
                    return c;
                };
                auto piece = [&](std::string_view text) { return data(chunk({{"content", text}}, nullptr)); };
                if (!data(chunk({{"role", "assistant"}, {"content", ""}}, nullptr))) return false;
                try {
                    Answer a;
                    if (ready) {
                        a = *ready;
                        piece(a.text);
                    } else if (strict) {  // the checked answer, whole (see /v1/ask)
                        a = run(*p, {}, gone);
                        piece(a.text);
                    } else {
                        a = run(*p, piece, gone);
                    }
                    json last = chunk(json::object(), openai::finish_reason(a.stop_reason));
                    openai::add_extension(last, a, collection, mode);
                    data(last);
                    if (usage) {
                        json u = openai::chunk(id, created, model, json::object(), nullptr);
                        u["choices"] = json::array();
                        u["usage"] = openai::usage(a);
                        data(u);
                    }
                } catch (const ClientGone &) {
                    return false;
                } catch (const std::exception &e) {
                    data({{"error", {{"code", stream_error_code(e)}, {"message", e.what()}, {"type", "server_error"}, {"param", nullptr}}}});
                } catch (const HttpError &e) {
                    data({{"error", {{"code", e.code}, {"message", e.message}, {"type", "server_error"}, {"param", nullptr}}}});
                }
                static const std::string done = "data: [DONE]\n\n";
                sink.write(done.data(), done.size());
                sink.done();
                return true;
            },
            [p](bool) {
                if (p && p->ticket) p->ticket->cancel();
            });
    }

    void install() {
        // A Content-Length over the limit is refused by cpp-httplib before reading (413); chunked
        // and compressed bodies are counted as they are read (read_body).
        http.set_payload_max_length(opt.max_body_bytes);
        http.set_read_timeout(opt.read_timeout_seconds, 0);
        // One request per connection. cpp-httplib 0.11 cannot close a connection from a handler:
        // after a refused request (403, 413, ...) its unread body would be parsed as the next
        // request, one that carries no Origin and any Host a web page chooses.
        http.set_keep_alive_max_count(1);
        http.set_write_timeout(opt.write_timeout_seconds, 0);
        // Workers: enough that generations (at most generation_queue of them wait in workers) never
        // take the last one from /healthz, searches and uploads.
        http.new_task_queue = [n = opt.http_threads] { return new httplib::ThreadPool(n); };
        // Every answer is counted for /metrics before it is sent (so a client's next request sees
        // it): refusals here, routes in timed(), and what the error handler answers.
        http.set_pre_routing_handler([this](const httplib::Request &req, httplib::Response &res) {
            if (!refuse(req, res)) return httplib::Server::HandlerResponse::Unhandled;
            metrics.count(Metrics::route_of(req.path), res.status);
            return httplib::Server::HandlerResponse::Handled;
        });
        http.Get("/healthz", route([](const auto &, auto &res) { send_json(res, 200, {{"status", "ok"}}); }));

        // The web page: static, open without a key (it asks for one, and every call it makes
        // carries it). Only its own script runs (no inline script: markup injected into it could
        // not run), it may talk to this server only, and nothing may frame it.
        http.Get("/", route([](const auto &, auto &res) {
            res.status = 200;
            res.set_header("Content-Security-Policy",
                           "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
            res.set_header("X-Content-Type-Options", "nosniff");
            res.set_header("Referrer-Policy", "no-referrer");
            res.set_content(page_html, "text/html; charset=utf-8");
        }));
        http.Get("/page.js", route([](const auto &, auto &res) {
            res.status = 200;
            res.set_header("X-Content-Type-Options", "nosniff");
            res.set_content(page_script, "text/javascript; charset=utf-8");
        }));

        // Prometheus text format: requests and latency (metrics.h), the index's size, the generation queue.
        http.Get("/metrics", route([this](const auto &, auto &res) {
            std::string documents = "# HELP saem_documents Documents in the index.\n# TYPE saem_documents gauge\n",
                        chunks = "# HELP saem_chunks Chunks in the index.\n# TYPE saem_chunks gauge\n";
            for (const auto &c : collections) {
                Store store(c->db, opt.busy_timeout_ms);
                Stats st = store.stats();
                documents += "saem_documents{collection=\"" + c->name + "\"} " + std::to_string(st.documents) + "\n";
                chunks += "saem_chunks{collection=\"" + c->name + "\"} " + std::to_string(st.chunks) + "\n";
            }
            std::string extra = documents + chunks;
            if (generations) {
                auto g = generations->stats();
                extra += "# HELP saem_generation_queue Generated answers admitted, by state.\n# TYPE saem_generation_queue gauge\n"
                         "saem_generation_queue{state=\"running\"} " + std::to_string(g.running) +
                         "\nsaem_generation_queue{state=\"waiting\"} " + std::to_string(g.waiting) +
                         "\n# HELP saem_generations_total Generated answers by outcome.\n# TYPE saem_generations_total counter\n";
                for (auto [outcome, n] : {std::pair{"completed", g.completed}, {"cancelled", g.cancelled}, {"failed", g.failed}, {"refused", g.refused}})
                    extra += std::string("saem_generations_total{outcome=\"") + outcome + "\"} " + std::to_string(n) + "\n";
            }
            res.status = 200;
            res.set_content(metrics.render(extra), "text/plain; version=0.0.4");
        }));

        http.Get("/v1/stats", route([this](const auto &req, auto &res) {
            Collection &col = collection_of(req);
            Store store(col.db, opt.busy_timeout_ms);
            json out = to_json(store.stats());
            out["collection"] = col.name;
            if (generations) {
                auto g = generations->stats();
                out["generation"] = {{"capacity", g.capacity},   {"running", g.running},     {"waiting", g.waiting},
                                     {"completed", g.completed}, {"cancelled", g.cancelled}, {"failed", g.failed},
                                     {"refused", g.refused},     {"mean_seconds", g.mean_seconds}};
            }
            send_json(res, 200, out);
        }));

        http.Post("/v1/search", with_body([this](const auto &, auto &res, const Body &body) {
            send_json(res, 200, search_json(parse_json(body), 10, 1000));
        }));

        // OpenAI's embeddings route: "input" a string or up to 2,048 strings, "encoding_format"
        // "float" (default) or "base64" (little-endian float32s, what the official clients ask for),
        // "model" any name (the server has one encoder), "dimensions" only its own.
        http.Post("/v1/embeddings", with_body([this](const auto &, auto &res, const Body &raw) {
            json body = parse_json(raw);
            if (!opt.embedder) throw HttpError{400, "no_encoder", "the server has no encoder (start it with --encoder PATH)"};
            std::vector<std::string> texts;
            const json *input = fields::find(body, "input");
            if (!input) throw HttpError{400, "missing_field", "'input' is required: a string or an array of strings"};
            if (input->is_string()) texts.push_back(input->get<std::string>());
            else if (input->is_array() && !input->empty() && input->size() <= 2048 &&
                     std::all_of(input->begin(), input->end(), [](const json &v) { return v.is_string(); }))
                for (const auto &v : *input) texts.push_back(v.get<std::string>());
            else throw HttpError{400, "invalid_field", "'input' must be a string or an array of 1 to 2048 strings (token arrays are not taken)"};
            for (const auto &t : texts)
                if (t.empty()) throw HttpError{400, "invalid_field", "'input' holds an empty string"};
            std::string format = "float";
            if (const json *f = fields::find(body, "encoding_format")) {
                format = f->is_string() ? f->get<std::string>() : "";
                if (format != "float" && format != "base64") throw HttpError{400, "invalid_field", "'encoding_format' must be \"float\" or \"base64\""};
            }
            const int dim = opt.embedder->dim();
            if (body.contains("dimensions") && !(body["dimensions"].is_number_integer() && body["dimensions"].get<int64_t>() == dim))
                throw HttpError{400, "invalid_field", "'dimensions' can only be this encoder's " + std::to_string(dim)};
            std::string model = fields::find(body, "model") && body["model"].is_string() ? body["model"].get<std::string>() : opt.embedder->identity();
            std::vector<float> vectors(texts.size() * size_t(dim));
            opt.embedder->embed(texts, vectors.data());
            json data = json::array();
            size_t tokens = 0;
            for (size_t i = 0; i < texts.size(); ++i) {
                const float *v = vectors.data() + i * size_t(dim);
                json item = {{"object", "embedding"}, {"index", i}};
                if (format == "base64") item["embedding"] = base64(v, size_t(dim) * sizeof(float));
                else item["embedding"] = std::vector<float>(v, v + dim);
                data.push_back(std::move(item));
                tokens += std::min(opt.embedder->token_counter().count(texts[i]), opt.embedder->max_tokens());
            }
            send_json(res, 200, {{"object", "list"}, {"data", data}, {"model", model},
                                 {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
        }));

        // The rerank route of llama.cpp's server and Jina: "query", "documents" (strings, or
        // {"text"} objects; up to 1,000), "top_n", "return_documents"; results best first, each
        // with its index in "documents" and the cross-encoder's relevance logit.
        http.Post("/v1/rerank", with_body([this](const auto &, auto &res, const Body &raw) {
            json body = parse_json(raw);
            if (!opt.reranker) throw HttpError{400, "no_reranker", "the server has no reranker (start it with --rerank PATH)"};
            const std::string query = fields::bounded_string(body, "query", opt.max_query_bytes);
            const json *docs = fields::find(body, "documents");
            if (!docs || !docs->is_array() || docs->empty() || docs->size() > 1000)
                throw HttpError{400, docs ? "invalid_field" : "missing_field", "'documents' must be an array of 1 to 1000 texts"};
            std::vector<std::string> texts;
            for (const auto &d : *docs) {
                const json *text = d.is_object() ? fields::find(d, "text") : &d;
                if (!text || !text->is_string()) throw HttpError{400, "invalid_field", "each document is a string or {\"text\": string}"};
                texts.push_back(text->get<std::string>());
            }
            const int top_n = bounded_int(body, "top_n", int(texts.size()), 1, int(texts.size()));
            const bool with_text = optional_bool(body, "return_documents", false);
            std::vector<float> scores = opt.reranker->score(query, texts);
            std::vector<size_t> order(texts.size());
            for (size_t i = 0; i < order.size(); ++i) order[i] = i;
            std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
            json results = json::array();
            for (size_t k = 0; k < size_t(top_n); ++k) {
                json r = {{"index", order[k]}, {"relevance_score", scores[order[k]]}};
                if (with_text) r["document"] = {{"text", texts[order[k]]}};
                results.push_back(std::move(r));
            }
            send_json(res, 200, {{"object", "list"}, {"model", opt.reranker->identity()}, {"results", results}});
        }));

        // OpenAI's model list: the models the server runs, and its collections (a chat completion
        // with a collection as its model answers from that collection).
        http.Get("/v1/models", route([this](const auto &, auto &res) {
            json data = json::array();
            auto add = [&](const std::string &id, const char *role) {
                data.push_back({{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "saem"}, {"saem_role", role}});
            };
            if (opt.embedder) add(opt.embedder->identity(), "encoder");
            if (opt.reranker) add(opt.reranker->identity(), "reranker");
            if (opt.decoder) add(decoder_id(), "decoder");
            if (opt.remote) add(opt.remote->name(), "remote_decoder");
            for (const auto &c : collections) add(c->name, "collection");
            send_json(res, 200, {{"object", "list"}, {"data", data}});
        }));

        http.Post("/v1/ask", with_body([this](const auto &req, auto &res, const Body &body) { ask(req, res, body); }));
        http.Post("/v1/chat/completions",
                  with_body([this](const auto &req, auto &res, const Body &body) { chat_completions(req, res, body); }));

        http.Get("/v1/collections", route([this](const auto &, auto &res) {
            json list = json::array();
            for (const auto &c : collections) {
                Store store(c->db, opt.busy_timeout_ms);
                json j = to_json(store.stats());
                j["name"] = c->name;
                list.push_back(std::move(j));
            }
            send_json(res, 200, {{"collections", list}, {"default", collections.front()->name}});
        }));

        http.Post("/v1/documents", with_body([this](const auto &, auto &res, const Body &body) { add_document(res, body); }));

        http.Get("/v1/documents", route([this](const auto &req, auto &res) {
            auto param_int = [&](const char *name, int fallback, int lo, int hi) {
                if (!req.has_param(name)) return fallback;
                try {
                    int v = std::stoi(req.get_param_value(name));
                    if (v >= lo && v <= hi) return v;
                } catch (...) {
                }
                throw HttpError{400, "invalid_field", std::string("'") + name + "' must be an integer from " +
                                                          std::to_string(lo) + " to " + std::to_string(hi)};
            };
            int limit = param_int("limit", 100, 1, 1000), offset = param_int("offset", 0, 0, 1 << 30);
            send_json(res, 200, list_documents_json(collection_of(req), req.get_param_value("prefix"), limit, offset));
        }));

        http.Get(R"(/v1/documents/(\d+))", route([this](const auto &req, auto &res) {
            send_json(res, 200, document_json(collection_of(req), parse_id(req.matches[1]), false));
        }));

        http.Delete(R"(/v1/documents/(\d+))", route([this](const auto &req, auto &res) {
            send_json(res, 200, delete_document_json(collection_of(req), parse_id(req.matches[1])));
        }));

        // MCP over Streamable HTTP (api/mcp.h): a POST carries one JSON-RPC message and gets its
        // reply as JSON (202 for a notification); initialize opens a session whose id
        // (Mcp-Session-Id) every later request carries, and DELETE ends it. There is no
        // server-initiated stream: GET is 405.
        http.Post("/mcp", with_body([this](const auto &req, auto &res, const Body &body) { mcp_http(req, res, body); }));
        http.Get("/mcp", route([](const auto &, auto &res) {
            res.set_header("Allow", "POST, DELETE");
            throw HttpError{405, "method_not_allowed", "this server sends no stream of its own: POST requests to /mcp"};
        }));
        http.Delete("/mcp", route([this](const auto &req, auto &res) {
            std::lock_guard lock(mcp_mutex);
            if (!mcp_sessions.erase(req.get_header_value("Mcp-Session-Id")))
                throw HttpError{404, "session_not_found", "no MCP session with that Mcp-Session-Id"};
            res.status = 204;
        }));

        http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request &req, httplib::Response &res) {
            if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // a route's error, counted there
            if (res.status == 413) {
                send_error(res, 413, "payload_too_large", "the request body is larger than this server accepts");
            } else if (res.status == 404) {
                bool known = std::any_of(known_routes().begin(), known_routes().end(), [&](const auto &r) { return std::regex_match(req.path, r); });
                if (known) send_error(res, 405, "method_not_allowed", req.method + " is not supported on " + req.path);
                else send_error(res, 404, "not_found", "no route " + req.method + " " + req.path);
            } else {
                send_error(res, res.status, "http_" + std::to_string(res.status), "request failed");
            }
            metrics.count(Metrics::route_of(req.path), res.status);
            return httplib::Server::HandlerResponse::Handled;
        }));
        http.set_exception_handler([](const httplib::Request &, httplib::Response &res, std::exception_ptr) {
            send_error(res, 500, "internal", "unexpected server error");
        });
    }

    static int64_t parse_id(const std::string &s) {
        try {
            return std::stoll(s);
        } catch (...) {
            throw HttpError{404, "not_found", "no document with id " + s};
        }
    }

    void add_document(httplib::Response &res, const Body &raw) {
        std::string path, text, format;
        json metadata = json::object();
        Collection *col = nullptr;
        if (raw.multipart) {
            col = &collection_named(raw.part("collection") ? raw.part("collection")->content : "");
            const auto *file = raw.part("file");
            if (!file) throw HttpError{400, "missing_field", "multipart upload needs a 'file' part"};
            text = file->content;
            path = raw.part("path") ? raw.part("path")->content : file->filename;
            if (raw.part("format")) format = raw.part("format")->content;
            if (const auto *m = raw.part("metadata")) {
                if (nn::json_depth(m->content) > opt.max_json_depth) throw HttpError{400, "invalid_field", "'metadata' nests too deep"};
                metadata = json::parse(m->content, nullptr, false);
                if (!metadata.is_object()) throw HttpError{400, "invalid_field", "'metadata' must be a JSON object"};
            }
        } else {
            json body = parse_json(raw);
            col = &collection_of(body);
            std::tie(path, text, format, metadata) = document_fields(body);
        }
        bool replaced = false;
        json out = add_document_json(*col, path, text, format, metadata, replaced);
        send_json(res, replaced ? 200 : 201, out);
    }

    // The fields of a JSON document upload (the route and MCP's add_document).
    static std::tuple<std::string, std::string, std::string, json> document_fields(const json &body) {
        std::string path = required_string(body, "path"), text = required_string(body, "text"), format;
        json metadata = json::object();
        if (fields::find(body, "format")) format = required_string(body, "format");
        if (fields::find(body, "metadata")) {
            metadata = body["metadata"];
            if (!metadata.is_object()) throw HttpError{400, "invalid_field", "'metadata' must be an object"};
        }
        return {path, text, format, metadata};
    }

    json add_document_json(Collection &col, const std::string &path, const std::string &text, std::string format, const json &metadata,
                           bool &replaced) {
        if (opt.read_only) throw HttpError{403, "read_only", "this server is read-only (saem serve --read-only)"};
        if (path.empty() || path.size() > 4096 || path.find('\0') != std::string::npos)
            throw HttpError{400, "invalid_field", "'path' must be 1 to 4096 bytes with no NUL"};
        // Two namespaces: indexed files are absolute paths, API documents relative labels. An
        // upload can then never replace an indexed file, and `saem index DIR`, which removes what
        // is gone under DIR's absolute path, never removes an upload.
        if (path.front() == '/')
            throw HttpError{400, "invalid_field", "'path' is a label such as \"notes/meeting.md\": absolute paths belong to "
                                                  "indexed folders"};
        if (format.empty()) format = format_for_path(path).value_or("txt");
        if (format != "txt" && format != "md" && format != "html" && format != "pdf")
            throw HttpError{400, "invalid_field", "'format' must be txt, md, html or pdf"};
        // Parse and embed first, outside the write lock: a large upload does not hold up the others.
        PreparedDocument prepared = prepare_document(path, text, format, metadata, opt.chunking, opt.embedder.get());
        std::lock_guard lock(col.write_mutex);
        Store store(col.db, opt.busy_timeout_ms);
        replaced = store.file_state(path).has_value();
        if (opt.embedder) store.use_encoder({opt.embedder->identity(), opt.embedder_path, opt.embedder->dim()});
        int64_t id = store_document(store, prepared);
        auto doc = store.document(id);
        json out = to_json(*doc);
        out["replaced"] = replaced;
        out["collection"] = col.name;
        return out;
    }

    json search_json(const json &body, int default_k, int max_k) {
        Collection &col = collection_of(body);
        SearchRequest sr = search_request_from_json(body, "query", default_k, max_k, opt.max_query_bytes);
        Retrieved r = search(col, sr);
        json hits = json::array();
        for (const auto &h : r.hits) hits.push_back(to_json(h));
        return {{"query", sr.query}, {"collection", col.name}, {"mode", mode_name(r.mode)}, {"hits", hits}};
    }

    json list_documents_json(const Collection &col, const std::string &prefix, int limit, int offset) {
        Store store(col.db, opt.busy_timeout_ms);
        json docs = json::array();
        for (const auto &d : store.list_documents(prefix, limit, offset)) docs.push_back(to_json(d));
        return {{"documents", docs}, {"limit", limit}, {"offset", offset}, {"total", store.stats().documents}, {"collection", col.name}};
    }

    json document_json(const Collection &col, int64_t id, bool with_text) {
        Store store(col.db, opt.busy_timeout_ms);
        auto doc = store.document(id);
        if (!doc) throw HttpError{404, "not_found", "no document with id " + std::to_string(id) + " in collection '" + col.name + "'"};
        json out = to_json(*doc);
        out["collection"] = col.name;
        if (with_text) {
            out["text"] = store.document_text(id).value_or("");
            out["uri"] = mcp::document_uri(col.name, id);
        }
        return out;
    }

    json delete_document_json(Collection &col, int64_t id) {
        if (opt.read_only) throw HttpError{403, "read_only", "this server is read-only (saem serve --read-only)"};
        std::lock_guard lock(col.write_mutex);
        Store store(col.db, opt.busy_timeout_ms);
        if (!store.remove_document(id)) throw HttpError{404, "not_found", "no document with id " + std::to_string(id) + " in collection '" + col.name + "'"};
        return {{"deleted", id}, {"collection", col.name}};
    }

    // ---- MCP (api/mcp.h) ----------------------------------------------------------------------

    // The tools and resources behind MCP: the JSON functions of the HTTP routes.
    mcp::Backend mcp_backend() {
        mcp::Backend b;
        b.read_only = opt.read_only;
        b.call = [this](const std::string &tool, const json &args, const mcp::ToolContext &context) -> json {
            try {
                if (tool == "search") return search_json(args, 5, 100);
                if (tool == "ask") {
                    json body = args;
                    body.erase("stream");
                    const std::atomic<bool> *cancel = context.cancel;
                    TextSink emit;
                    if (context.on_text) emit = [&context](std::string_view piece) {
                        context.on_text(piece);
                        return true;
                    };
                    return ask_json(body, [cancel] { return cancel && cancel->load(); }, emit);
                }
                if (tool == "add_document") {
                    auto [path, text, format, metadata] = document_fields(args);
                    if (format == "pdf") throw mcp::ToolError("add_document takes text (txt, md or html), not pdf");
                    bool replaced = false;
                    return add_document_json(collection_of(args), path, text, format, metadata, replaced);
                }
                auto id = [&] {
                    const json *v = fields::find(args, "id");
                    if (!v || !v->is_number_integer()) throw mcp::ToolError("'id' must be a document id (an integer)");
                    return v->get<int64_t>();
                };
                if (tool == "get_document") return document_json(collection_of(args), id(), true);
                if (tool == "delete_document") return delete_document_json(collection_of(args), id());
                if (tool == "list_documents") {
                    const json *prefix = fields::find(args, "prefix");
                    if (prefix && !prefix->is_string()) throw mcp::ToolError("'prefix' must be a string");
                    return list_documents_json(collection_of(args), prefix ? prefix->get<std::string>() : "",
                                               bounded_int(args, "limit", 100, 1, 1000), bounded_int(args, "offset", 0, 0, 1 << 30));
                }
                throw std::logic_error("tool " + tool + " has no implementation");
            } catch (const HttpError &e) {
                if (e.status >= 500 && e.status != 503) throw std::runtime_error(e.message);
                throw mcp::ToolError(e.message);
            } catch (const LoadError &e) {
                throw mcp::ToolError(e.what());
            } catch (const nn::ContextError &e) {
                throw mcp::ToolError(e.what());
            } catch (const QueueFull &e) {
                throw mcp::ToolError(e.what());
            }
        };
        // Every collection's documents, 100 a page; the cursor is "COLLECTION_INDEX:OFFSET".
        b.list_resources = [this](const std::string &cursor) {
            size_t c = 0;
            int offset = 0;
            if (!cursor.empty()) {
                const char *end = cursor.data() + cursor.size();
                auto [p, e1] = std::from_chars(cursor.data(), end, c);
                auto [q, e2] = e1 == std::errc() && p != end && *p == ':' ? std::from_chars(p + 1, end, offset) : std::from_chars_result{p, std::errc::invalid_argument};
                if (e2 != std::errc() || q != end || offset < 0) throw std::invalid_argument("the cursor is not one resources/list returned");
            }
            json resources = json::array();
            constexpr int page = 100;
            for (; c < collections.size(); ++c, offset = 0) {
                Store store(collections[c]->db, opt.busy_timeout_ms);
                auto docs = store.list_documents("", page - int(resources.size()) + 1, offset);
                for (const auto &d : docs) {
                    if (int(resources.size()) == page)
                        return json{{"resources", resources}, {"nextCursor", std::to_string(c) + ":" + std::to_string(offset)}};
                    resources.push_back({{"uri", mcp::document_uri(collections[c]->name, d.id)},
                                         {"name", d.path},
                                         {"title", d.title.empty() ? d.path : d.title},
                                         {"description", "A " + d.format + " document of collection " + collections[c]->name + ", " +
                                                             std::to_string(d.chunks) + " chunks"},
                                         {"mimeType", "text/plain"}});
                    ++offset;
                }
            }
            return json{{"resources", resources}};
        };
        b.read_resource = [this](const std::string &uri) -> std::optional<json> {
            auto parsed = mcp::parse_document_uri(uri);
            if (!parsed) return std::nullopt;
            Collection *col = find_collection(parsed->first);
            if (!col) return std::nullopt;
            Store store(col->db, opt.busy_timeout_ms);
            auto text = store.document_text(parsed->second);
            if (!text) return std::nullopt;
            return json{{"uri", uri}, {"mimeType", "text/plain"}, {"text", *text}};
        };
        return b;
    }

    struct McpHttpSession {
        mcp::Session session;
        std::map<std::string, std::shared_ptr<std::atomic<bool>>> in_flight;  // request id (dumped) -> its cancel flag
        std::chrono::steady_clock::time_point last_used;
    };
    std::mutex mcp_mutex;
    std::map<std::string, McpHttpSession> mcp_sessions;

    static std::string random_session_id() {
        static thread_local std::random_device device;
        static const char hex[] = "0123456789abcdef";
        std::string id;
        for (int i = 0; i < 8; ++i) {
            uint32_t v = device();
            for (int k = 0; k < 8; ++k, v >>= 4) id += hex[v & 15];
        }
        return id;
    }

    void mcp_http(const httplib::Request &req, httplib::Response &res, const Body &raw) {
        const std::string version = req.get_header_value("MCP-Protocol-Version");
        if (!version.empty() && std::find(mcp::protocol_versions.begin(), mcp::protocol_versions.end(), version) == mcp::protocol_versions.end())
            throw HttpError{400, "unsupported_protocol_version", "MCP-Protocol-Version " + version.substr(0, 40) + " is not one saem speaks"};
        json message = parse_json(raw);
        const bool initialize = message.value("method", json()) == "initialize";
        std::string sid = req.get_header_value("Mcp-Session-Id");
        mcp::Session session;
        std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
        const std::string request_id = message.contains("id") ? message["id"].dump() : "";
        {
            std::lock_guard lock(mcp_mutex);
            if (initialize) {
                // Sessions idle for an hour end; past 1,000 the longest idle makes room.
                const auto now = std::chrono::steady_clock::now();
                std::erase_if(mcp_sessions, [&](const auto &kv) { return now - kv.second.last_used > std::chrono::hours(1); });
                while (mcp_sessions.size() >= 1000) {
                    auto oldest = std::min_element(mcp_sessions.begin(), mcp_sessions.end(),
                                                   [](const auto &a, const auto &b) { return a.second.last_used < b.second.last_used; });
                    mcp_sessions.erase(oldest);
                }
                sid = random_session_id();
                mcp_sessions[sid].last_used = std::chrono::steady_clock::now();
            } else {
                if (sid.empty()) throw HttpError{400, "missing_session", "send the Mcp-Session-Id that initialize returned"};
                auto it = mcp_sessions.find(sid);
                if (it == mcp_sessions.end()) throw HttpError{404, "session_not_found", "no MCP session with that Mcp-Session-Id: initialize again"};
                it->second.last_used = std::chrono::steady_clock::now();
                session = it->second.session;
                // A cancellation names a request of this session under way.
                if (message.value("method", json()) == "notifications/cancelled" && message.contains("params") && message["params"].is_object() &&
                    message["params"].contains("requestId")) {
                    auto f = it->second.in_flight.find(message["params"]["requestId"].dump());
                    if (f != it->second.in_flight.end()) *f->second = true;
                }
                if (!request_id.empty()) it->second.in_flight[request_id] = cancel;
            }
        }
        const Gone gone = [socket = connection_socket(req)] { return client_gone(socket); };
        // Answers the message; the tool call's cancel flag is set by a cancellation notification or
        // the client hanging up. Then forgets the request.
        auto answer = [this, message, session, sid, request_id, cancel, gone, initialize](const mcp::Call::Notify &notify) mutable {
            std::atomic<bool> stop_flag{false};
            Poller poller([&] {
                if (*cancel || gone()) stop_flag = true;
                return stop_flag.load();
            }, std::chrono::milliseconds(100));
            std::optional<json> reply;
            try {
                reply = mcp::handle(message, session, mcp_backend(), {&stop_flag, notify});
            } catch (...) {
                forget(sid, request_id, nullptr);
                throw;
            }
            poller.stop();
            forget(sid, request_id, initialize ? &session : nullptr);
            return reply;
        };
        // A tool call that asks for progress, from a client that takes a stream, gets server-sent
        // events: its notifications/progress as the answer is written, then the response.
        const bool sse = !initialize && !request_id.empty() && !mcp::progress_token(message).is_null() &&
                         req.get_header_value("Accept").find("text/event-stream") != std::string::npos;
        if (!sse) {
            std::optional<json> reply = answer({});
            if (initialize) {
                if (reply && reply->contains("result")) {
                    res.set_header("Mcp-Session-Id", sid);
                } else {  // a refused initialize opens no session
                    std::lock_guard lock(mcp_mutex);
                    mcp_sessions.erase(sid);
                }
            }
            if (!reply) {
                res.status = 202;
                return;
            }
            return send_json(res, 200, *reply);
        }
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider(
            "text/event-stream",
            [answer, id = message["id"]](size_t, httplib::DataSink &sink) mutable {
                auto event = [&](const json &m) {
                    std::string e = "event: message\ndata: " + dump(m) + "\n\n";
                    return sink.write(e.data(), e.size());
                };
                // cpp-httplib calls a content provider outside its own try: nothing may escape.
                try {
                    std::optional<json> reply = answer([&](const json &notification) { event(notification); });
                    if (reply) event(*reply);
                } catch (const std::exception &e) {
                    event({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32603}, {"message", e.what()}}}});
                } catch (...) {
                    event({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32603}, {"message", "internal error"}}}});
                }
                sink.done();
                return true;
            },
            [this, sid, request_id](bool) { forget(sid, request_id, nullptr); });  // also when the stream never started
    }

    // Ends a request's life in its session (and stores what initialize negotiated).
    void forget(const std::string &sid, const std::string &request_id, const mcp::Session *negotiated) {
        std::lock_guard lock(mcp_mutex);
        auto it = mcp_sessions.find(sid);
        if (it == mcp_sessions.end()) return;
        if (negotiated) it->second.session = *negotiated;
        if (!request_id.empty()) it->second.in_flight.erase(request_id);
    }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->opt = std::move(options);
    auto &o = impl_->opt;
    // Each generator admits generation_queue answers, each holding the worker that waits for it.
    const size_t generating = o.generation_queue * ((o.decoder ? 1 : 0) + (o.remote ? 1 : 0));
    if (o.http_threads == 0) o.http_threads = std::max<size_t>(8, generating + 4);
    if (o.http_threads <= generating)
        throw std::invalid_argument("the HTTP workers (" + std::to_string(o.http_threads) + ") must outnumber the answers that may be "
                                    "generated at once (" + std::to_string(generating) + ")");
    if (o.decoder) impl_->generations = std::make_unique<GenerationQueue>(o.decoder, o.generation_queue);
    impl_->retriever = Retriever({impl_->opt.embedder, impl_->opt.reranker});
    if (o.collections.empty()) o.collections.push_back({"default", o.db});
    static const std::regex name_rule("[A-Za-z0-9._-]{1,64}");
    for (const auto &c : o.collections) {
        if (!std::regex_match(c.name, name_rule))
            throw std::invalid_argument("collection name '" + c.name + "': use 1 to 64 letters, digits, '.', '_' or '-'");
        if (impl_->find_collection(c.name)) throw std::invalid_argument("two collections are named '" + c.name + "'");
        if ((o.decoder && c.name == impl_->decoder_id()) || (o.remote && c.name == o.remote->name()))
            throw std::invalid_argument("collection '" + c.name + "' has a generator's name: the OpenAI routes could not tell them apart");
        // Fail at start, not at the first request, on a bad index file or another encoder's index.
        Store check(c.db);
        impl_->retriever.check_encoder(check);
        auto col = std::make_unique<Impl::Collection>();
        col->name = c.name;
        col->db = c.db;
        impl_->collections.push_back(std::move(col));
    }
    impl_->install();
}

Server::~Server() = default;

int Server::bind(const std::string &host, int port) {
    impl_->loopback = host == "127.0.0.1" || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
    if (port == 0) return impl_->http.bind_to_any_port(host);
    return impl_->http.bind_to_port(host, port) ? port : -1;
}

bool Server::listen() { return impl_->http.listen_after_bind(); }

void Server::stop() {
    // No new answers, and those under way end at their next token: the workers waiting on them
    // return, so the HTTP server's shutdown (which joins its workers) is not held up.
    impl_->stopping = true;
    if (impl_->generations) impl_->generations->close();
    impl_->http.stop();
}

bool Server::running() const { return impl_->http.is_running(); }

std::optional<std::string> Server::mcp(const std::string &message, mcp::Session &session, const mcp::Call &call) {
    auto reply = mcp::handle_text(message, session, impl_->mcp_backend(), call);
    if (!reply) return std::nullopt;
    return dump(*reply);
}

}  // namespace saem
