#include "api/api.h"

#include <httplib.h>

#include <mutex>
#include <regex>

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

void send_error(httplib::Response &res, int status, const std::string &code, const std::string &message) {
    send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
}

json parse_body(const httplib::Request &req) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) throw HttpError{400, "invalid_json", "the request body is not valid JSON (UTF-8)"};
    if (!body.is_object()) throw HttpError{400, "invalid_request", "the request body must be a JSON object"};
    return body;
}

std::string required_string(const json &body, const char *field) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) throw HttpError{400, "missing_field", std::string("'") + field + "' is required"};
    if (!it->is_string()) throw HttpError{400, "invalid_field", std::string("'") + field + "' must be a string"};
    return it->get<std::string>();
}

double bounded_number(const json &body, const char *field, double fallback, double lo, double hi) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return fallback;
    if (!it->is_number() || it->get<double>() < lo || it->get<double>() > hi)
        throw HttpError{400, "invalid_field",
                        std::string("'") + field + "' must be a number from " + std::to_string(lo) + " to " + std::to_string(hi)};
    return it->get<double>();
}

bool optional_bool(const json &body, const char *field, bool fallback) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw HttpError{400, "invalid_field", std::string("'") + field + "' must be true or false"};
    return it->get<bool>();
}

int bounded_int(const json &body, const char *field, int fallback, int lo, int hi) {
    auto it = body.find(field);
    if (it == body.end() || it->is_null()) return fallback;
    if (!it->is_number_integer() || it->get<int64_t>() < lo || it->get<int64_t>() > hi)
        throw HttpError{400, "invalid_field",
                        std::string("'") + field + "' must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi)};
    return int(it->get<int64_t>());
}

// Route patterns, for telling a wrong method (405) from an unknown path (404).
const std::vector<std::regex> &known_routes() {
    static const std::vector<std::regex> routes = {
        std::regex("/healthz"), std::regex("/v1/stats"), std::regex("/v1/search"), std::regex("/v1/ask"),
        std::regex("/v1/documents"), std::regex("/v1/documents/[0-9]+")};
    return routes;
}

}  // namespace

struct Server::Impl {
    ServerOptions opt;
    Retriever retriever;
    httplib::Server http;
    std::mutex write_mutex;
    std::mutex decoder_mutex;  // the decoder holds one sequence

    // Wraps a route: JSON errors with a stable shape whatever goes wrong inside.
    httplib::Server::Handler route(std::function<void(const httplib::Request &, httplib::Response &)> fn) {
        return [fn](const httplib::Request &req, httplib::Response &res) {
            try {
                fn(req, res);
            } catch (const HttpError &e) {
                send_error(res, e.status, e.code, e.message);
            } catch (const RequestError &e) {
                send_error(res, 400, e.code, e.what());
            } catch (const LoadError &e) {
                send_error(res, 422, "unprocessable_document", e.what());
            } catch (const StoreError &e) {
                send_error(res, 400, "invalid_request", e.what());
            } catch (const nn::ContextError &e) {
                send_error(res, 400, "context_exceeded", e.what());
            } catch (const std::exception &e) {
                send_error(res, 500, "internal", e.what());
            }
        };
    }

    // /v1/ask: extractive without a decoder (or with "method": "extractive"), else generated from
    // the retrieved sources; "stream": true sends the generated answer as server-sent events:
    // "data: {"text": piece}" per piece, then "event: done" with the whole answer's JSON (or
    // "event: error" with the error's).
    void ask(const httplib::Request &req, httplib::Response &res) {
        json body = parse_body(req);
        SearchRequest sr = for_answers(search_request_from_json(body, "question", 5, 100));
        const std::string question = sr.query;
        std::string method = opt.decoder ? "generated" : "extractive";
        if (body.contains("method") && !body["method"].is_null()) {
            if (!body["method"].is_string()) throw HttpError{400, "invalid_field", "'method' must be \"generated\" or \"extractive\""};
            method = body["method"].get<std::string>();
        }
        if (method != "generated" && method != "extractive")
            throw HttpError{400, "invalid_field", "'method' must be \"generated\" or \"extractive\""};
        if (method == "generated" && !opt.decoder)
            throw HttpError{400, "no_generator", "the server has no decoder model (start it with --model FILE.gguf)"};
        GeneratedAnswerOptions go;
        go.chat_template = opt.chat_template;
        go.generation.max_tokens = bounded_int(body, "max_tokens", opt.max_answer_tokens, 1, 8192);
        auto &sampling = go.generation.sampling;
        sampling.temperature = float(bounded_number(body, "temperature", 0.0, 0.0, 100.0));  // greedy unless asked
        sampling.seed = uint64_t(bounded_int(body, "seed", 0, 0, 2147483647));
        const bool stream = optional_bool(body, "stream", false);
        if (stream && method != "generated") throw HttpError{400, "invalid_field", "'stream' needs a generated answer"};
        Retrieved retrieved;
        {
            Store store(opt.db);
            retrieved = retriever.search(store, sr);
        }
        if (method == "extractive") {
            json out = to_json(answer_extractive(question, retrieved));
            out["question"] = question;
            out["mode"] = mode_name(retrieved.mode);
            if (opt.decoder) out["note"] = "Extractive, as asked: the most relevant sentences, quoted verbatim.";
            return send_json(res, 200, out);
        }
        if (!stream) {
            std::lock_guard<std::mutex> lock(decoder_mutex);
            json out = to_json(answer_generated(*opt.decoder, question, retrieved, go));
            out["question"] = question;
            out["mode"] = mode_name(retrieved.mode);
            return send_json(res, 200, out);
        }
        res.set_header("Cache-Control", "no-cache");
        auto shared = std::make_shared<const Retrieved>(std::move(retrieved));
        res.set_chunked_content_provider("text/event-stream", [this, shared, question, go](size_t, httplib::DataSink &sink) {
            auto event = [&](const char *name, const json &data) {
                std::string e = (name ? std::string("event: ") + name + "\n" : std::string()) + "data: " + dump(data) + "\n\n";
                return sink.write(e.data(), e.size());
            };
            try {
                std::lock_guard<std::mutex> lock(decoder_mutex);
                // A client that goes away cancels the generation at the next piece.
                Answer a = answer_generated(*opt.decoder, question, *shared, go,
                                            [&](std::string_view piece) { return event(nullptr, {{"text", std::string(piece)}}); });
                json out = to_json(a);
                out["question"] = question;
                out["mode"] = mode_name(shared->mode);
                event("done", out);
            } catch (const std::exception &e) {
                event("error", {{"error", {{"code", dynamic_cast<const nn::ContextError *>(&e) ? "context_exceeded" : "internal"},
                                           {"message", e.what()}}}});
            }
            sink.done();
            return true;
        });
    }

    void install() {
        http.set_payload_max_length(opt.max_body_bytes);
        // cpp-httplib 0.11 enforces the body limit only on Content-Length; a chunked body would be
        // read whole, however large. Such requests are refused before their body is read.
        http.set_pre_routing_handler([](const httplib::Request &req, httplib::Response &res) {
            if (req.get_header_value("Transfer-Encoding").find("chunked") == std::string::npos)
                return httplib::Server::HandlerResponse::Unhandled;
            send_error(res, 411, "length_required", "send the body with a Content-Length (chunked bodies are not accepted)");
            res.set_header("Connection", "close");
            return httplib::Server::HandlerResponse::Handled;
        });
        http.Get("/healthz", route([](const auto &, auto &res) { send_json(res, 200, {{"status", "ok"}}); }));

        http.Get("/v1/stats", route([this](const auto &, auto &res) {
            Store store(opt.db);
            send_json(res, 200, to_json(store.stats()));
        }));

        http.Post("/v1/search", route([this](const auto &req, auto &res) {
            SearchRequest sr = search_request_from_json(parse_body(req), "query", 10, 1000);
            Store store(opt.db);
            Retrieved r = retriever.search(store, sr);
            json hits = json::array();
            for (const auto &h : r.hits) hits.push_back(to_json(h));
            send_json(res, 200, {{"query", sr.query}, {"mode", mode_name(r.mode)}, {"hits", hits}});
        }));

        http.Post("/v1/ask", route([this](const auto &req, auto &res) { ask(req, res); }));

        http.Post("/v1/documents", route([this](const auto &req, auto &res) { add_document(req, res); }));

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
            Store store(opt.db);
            json docs = json::array();
            for (const auto &d : store.list_documents(req.get_param_value("prefix"), limit, offset)) docs.push_back(to_json(d));
            send_json(res, 200, {{"documents", docs}, {"limit", limit}, {"offset", offset}, {"total", store.stats().documents}});
        }));

        http.Get(R"(/v1/documents/(\d+))", route([this](const auto &req, auto &res) {
            Store store(opt.db);
            auto doc = store.document(parse_id(req.matches[1]));
            if (!doc) throw HttpError{404, "not_found", "no document with id " + std::string(req.matches[1])};
            send_json(res, 200, to_json(*doc));
        }));

        http.Delete(R"(/v1/documents/(\d+))", route([this](const auto &req, auto &res) {
            int64_t id = parse_id(req.matches[1]);
            std::lock_guard lock(write_mutex);
            Store store(opt.db);
            if (!store.remove_document(id)) throw HttpError{404, "not_found", "no document with id " + std::to_string(id)};
            send_json(res, 200, {{"deleted", id}});
        }));

        http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request &req, httplib::Response &res) {
            if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
            switch (res.status) {
            case 413:
                send_error(res, 413, "payload_too_large", "the request body is larger than this server accepts");
                break;
            case 404:
                for (const auto &r : known_routes())
                    if (std::regex_match(req.path, r)) {
                        send_error(res, 405, "method_not_allowed", req.method + " is not supported on " + req.path);
                        return httplib::Server::HandlerResponse::Handled;
                    }
                send_error(res, 404, "not_found", "no route " + req.method + " " + req.path);
                break;
            default:
                send_error(res, res.status, "http_" + std::to_string(res.status), "request failed");
            }
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

    void add_document(const httplib::Request &req, httplib::Response &res) {
        std::string path, text, format;
        json metadata = json::object();
        if (req.is_multipart_form_data()) {
            if (!req.has_file("file")) throw HttpError{400, "missing_field", "multipart upload needs a 'file' part"};
            const auto &file = req.get_file_value("file");
            text = file.content;
            path = req.has_file("path") ? req.get_file_value("path").content : file.filename;
            if (req.has_file("format")) format = req.get_file_value("format").content;
            if (req.has_file("metadata")) {
                metadata = json::parse(req.get_file_value("metadata").content, nullptr, false);
                if (!metadata.is_object()) throw HttpError{400, "invalid_field", "'metadata' must be a JSON object"};
            }
        } else {
            json body = parse_body(req);
            path = required_string(body, "path");
            text = required_string(body, "text");
            if (body.contains("format")) format = required_string(body, "format");
            if (body.contains("metadata")) {
                metadata = body["metadata"];
                if (!metadata.is_object()) throw HttpError{400, "invalid_field", "'metadata' must be an object"};
            }
        }
        if (path.empty() || path.size() > 4096 || path.find('\0') != std::string::npos)
            throw HttpError{400, "invalid_field", "'path' must be 1 to 4096 bytes with no NUL"};
        if (format.empty()) format = format_for_path(path).value_or("txt");
        if (format != "txt" && format != "md" && format != "html" && format != "pdf")
            throw HttpError{400, "invalid_field", "'format' must be txt, md, html or pdf"};
        std::lock_guard lock(write_mutex);
        Store store(opt.db);
        bool replaced = store.file_state(path).has_value();
        if (opt.embedder) store.use_encoder({opt.embedder->identity(), opt.embedder_path, opt.embedder->dim()});
        int64_t id = index_document(store, path, text, format, metadata, opt.chunking, opt.embedder.get());
        auto doc = store.document(id);
        json out = to_json(*doc);
        out["replaced"] = replaced;
        send_json(res, replaced ? 200 : 201, out);
    }
};

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->opt = std::move(options);
    impl_->retriever = Retriever({impl_->opt.embedder, impl_->opt.reranker});
    // Fail at start, not at the first request, on a bad index file or another encoder's index.
    Store check(impl_->opt.db);
    impl_->retriever.check_encoder(check);
    impl_->install();
}

Server::~Server() = default;

int Server::bind(const std::string &host, int port) {
    if (port == 0) return impl_->http.bind_to_any_port(host);
    return impl_->http.bind_to_port(host, port) ? port : -1;
}

bool Server::listen() { return impl_->http.listen_after_bind(); }

void Server::stop() { impl_->http.stop(); }

}  // namespace saem
