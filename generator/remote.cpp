// The client side of OpenAI's chat completions, streamed as server-sent events
// (https://html.spec.whatwg.org/multipage/server-sent-events.html):
//   data: {"choices":[{"delta":{"content":"..."},"finish_reason":null}]}  ... data: [DONE]
#include "generator/remote.h"
#include "generator/poller.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

namespace saem {

using nlohmann::json;

namespace {

// A failure that may be retried when no text has been passed on yet.
struct Attempt {
    bool ok = false, retryable = false;
    std::string error;
};

// Server-sent events from bytes as they arrive: lines end in CRLF, LF or CR; an event's data lines
// are joined with LF and dispatched at a blank line (or at the end of the stream).
class EventStream {
public:
    explicit EventStream(std::function<bool(const std::string &data)> on_event) : on_event_(std::move(on_event)) {}
    bool feed(const char *p, size_t n) {
        for (size_t i = 0; i < n; ++i) {
            char c = p[i];
            if (after_cr_ && c == '\n') {  // the LF of a CRLF
                after_cr_ = false;
                continue;
            }
            after_cr_ = c == '\r';
            if (c == '\r' || c == '\n') {
                if (!line_end()) return false;
            } else if (line_.size() < (16u << 20)) {
                line_ += c;
            }
        }
        return true;
    }
    bool finish() { return (line_.empty() || line_end()) && dispatch(); }

private:
    bool line_end() {
        std::string line = std::exchange(line_, {});
        if (line.empty()) return dispatch();
        if (line.rfind("data", 0) != 0 || (line.size() > 4 && line[4] != ':')) return true;  // comments, other fields
        std::string value = line.size() > 5 ? line.substr(5) : "";
        if (!value.empty() && value[0] == ' ') value.erase(0, 1);
        if (has_data_) data_ += '\n';
        data_ += value;
        has_data_ = true;
        return true;
    }
    bool dispatch() {
        if (!has_data_) return true;
        has_data_ = false;
        return on_event_(std::exchange(data_, {}));
    }
    std::function<bool(const std::string &)> on_event_;
    std::string line_, data_;
    bool has_data_ = false, after_cr_ = false;
};

std::string finish_to_stop(const std::string &finish) {
    if (finish == "length") return "length";
    return "end";  // stop, and what OpenAI adds (content_filter, tool_calls): the model ended
}

std::string error_message(const json &e) {
    if (e.is_object() && e.contains("message") && e["message"].is_string()) return e["message"];
    return e.is_string() ? e.get<std::string>() : e.dump();
}

}  // namespace

RemoteChat::RemoteChat(RemoteOptions options) : options_(std::move(options)) {
    const std::string &url = options_.url;
    size_t scheme_end = url.find("://");
    std::string scheme = scheme_end == std::string::npos ? "" : url.substr(0, scheme_end);
    if (scheme != "http" && scheme != "https")
        throw std::invalid_argument("the generator URL must start with http:// or https://, not '" + url + "'");
    size_t path_at = url.find('/', scheme_end + 3);
    origin_ = url.substr(0, path_at);
    path_ = path_at == std::string::npos ? "" : url.substr(path_at);
    while (!path_.empty() && path_.back() == '/') path_.pop_back();
    if (origin_.size() <= scheme.size() + 3) throw std::invalid_argument("the generator URL '" + url + "' names no host");
}

std::string RemoteChat::name() const { return options_.model.empty() ? origin_ + path_ : options_.model; }

int RemoteChat::prompt_tokens(const std::vector<ChatMessage> &messages) const {
    size_t bytes = 0;
    for (const auto &m : messages) bytes += m.content.size() + m.role.size() + 4;
    return int(bytes / 3 + 1);
}

Generation RemoteChat::chat(const std::vector<ChatMessage> &messages, const GenerateOptions &options, const TextSink &on_text) {
    json body = {{"stream", true}, {"max_tokens", options.max_tokens}, {"stream_options", {{"include_usage", true}}}};
    if (!options_.model.empty()) body["model"] = options_.model;
    json msgs = json::array();
    for (const auto &m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
    body["messages"] = msgs;
    const SamplingOptions &s = options.sampling;
    body["temperature"] = s.greedy ? 0.0f : s.temperature;
    if (!s.greedy) body["top_p"] = s.top_p;
    if (s.seed) body["seed"] = int64_t(s.seed);  // OpenAI's seed is a signed 64-bit integer
    if (!options.stop.empty()) body["stop"] = options.stop;
    const std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);

    Generation g;
    auto cancelled = [&] { return options.cancel && options.cancel->load(std::memory_order_relaxed); };
    bool passed_on = false;  // some text reached on_text: no more retries
    int pieces = 0;
    auto t0 = std::chrono::steady_clock::now();
    auto attempt = [&]() -> Attempt {
        httplib::Client client(origin_);
        auto seconds = [](double s, auto set) { set(time_t(s), time_t((s - double(time_t(s))) * 1e6)); };
        seconds(options_.connect_timeout, [&](time_t a, time_t b) { client.set_connection_timeout(a, b); });
        seconds(options_.read_timeout, [&](time_t a, time_t b) { client.set_read_timeout(a, b); });
        client.set_write_timeout(10, 0);
        if (std::filesystem::exists("/etc/ssl/certs/ca-certificates.crt")) client.set_ca_cert_path("/etc/ssl/certs/ca-certificates.crt");
        httplib::Request req;
        req.method = "POST";
        req.path = path_ + "/chat/completions";
        req.set_header("Accept", "text/event-stream");
        if (!options_.api_key.empty()) req.set_header("Authorization", "Bearer " + options_.api_key);
        req.body = payload;
        req.set_header("Content-Type", "application/json");
        int status = 0;
        std::string error_body;
        bool done = false, stream_error = false;
        std::string finish;
        req.response_handler = [&](const httplib::Response &r) {
            status = r.status;
            return true;
        };
        EventStream events([&](const std::string &data) {
            if (data == "[DONE]") {
                done = true;
                return true;
            }
            json chunk = json::parse(data, nullptr, false);
            if (chunk.is_discarded() || !chunk.is_object()) return true;
            if (const auto e = chunk.find("error"); e != chunk.end() && !e->is_null()) {
                stream_error = true;
                error_body = error_message(*e);
                return false;
            }
            if (const auto u = chunk.find("usage"); u != chunk.end() && u->is_object()) {
                if (u->contains("prompt_tokens") && (*u)["prompt_tokens"].is_number_integer()) g.prompt_tokens = (*u)["prompt_tokens"];
                if (u->contains("completion_tokens") && (*u)["completion_tokens"].is_number_integer())
                    g.completion_tokens = (*u)["completion_tokens"];
            }
            const auto choices = chunk.find("choices");
            if (choices == chunk.end() || !choices->is_array() || choices->empty() || !(*choices)[0].is_object()) return true;
            const json &c = (*choices)[0];
            if (c.contains("finish_reason") && c["finish_reason"].is_string()) finish = c["finish_reason"];
            if (c.contains("delta") && c["delta"].is_object() && c["delta"].contains("content") && c["delta"]["content"].is_string()) {
                std::string piece = c["delta"]["content"];
                if (piece.empty()) return true;
                if (g.text.empty()) g.prompt_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                g.text += piece;
                ++pieces;
                passed_on = true;
                if (on_text && !on_text(piece)) return false;
            }
            return true;
        });
        req.content_receiver = [&](const char *data, size_t n, uint64_t, uint64_t) {
            if (cancelled()) return false;
            if (status != 200) {
                if (error_body.size() < 65536) error_body.append(data, std::min<size_t>(n, 65536 - error_body.size()));
                return true;
            }
            return events.feed(data, n);
        };
        httplib::Response res;
        httplib::Error err = httplib::Error::Success;
        bool sent;
        {
            // Once cancel is set, client.stop() (safe from another thread) aborts the request,
            // even while the server is silent.
            std::optional<Poller> watchdog;
            if (options.cancel)
                watchdog.emplace(
                    [&client, cancel = options.cancel] {
                        if (!cancel->load()) return false;
                        client.stop();
                        return true;
                    },
                    std::chrono::milliseconds(50));
            sent = client.send(req, res, err);
        }
        if (sent && status == 200 && !stream_error && !cancelled()) events.finish();
        if (cancelled() || (!sent && err == httplib::Error::Canceled && !stream_error)) {  // asked to stop
            g.stop_reason = "cancelled";
            return {true, false, {}};
        }
        // An error the server sends in its stream is its answer to this request, not a transient fault.
        if (stream_error) return {false, false, "the server reported an error: " + error_body};
        if (!sent) return {false, true, "no answer from " + origin_ + ": " + httplib::to_string(err)};
        if (status != 200) {
            std::string message = error_body;
            json e = json::parse(error_body, nullptr, false);
            if (e.is_object() && e.contains("error")) message = error_message(e["error"]);
            if (message.size() > 300) message = message.substr(0, 300) + "...";
            return {false, status >= 500 || status == 429 || status == 408,
                    origin_ + " answered " + std::to_string(status) + (message.empty() ? "" : ": " + message)};
        }
        if (!done && finish.empty()) return {false, true, "the stream from " + origin_ + " ended before the answer did"};
        g.stop_reason = finish_to_stop(finish);
        return {true, false, {}};
    };
    for (int i = 0; i <= options_.retries; ++i) {
        if (cancelled()) {
            g.stop_reason = "cancelled";
            return g;
        }
        if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 << std::min(i - 1, 4)));
        Attempt a = attempt();
        if (a.ok) break;
        if (passed_on) {  // the caller has part of the answer: end it there, and say why
            g.stop_reason = "error";
            g.error = a.error;
            break;
        }
        if (!a.retryable || i == options_.retries)
            throw RemoteError(a.error + (i > 0 ? " (after " + std::to_string(i + 1) + " attempts)" : ""));
        g = Generation{};
    }
    // A server that does not report usage (it ignored stream_options): saem's estimate of the
    // prompt, and the pieces it sent (each at least one token).
    if (g.prompt_tokens == 0) g.prompt_tokens = prompt_tokens(messages);
    if (g.completion_tokens == 0) g.completion_tokens = pieces;
    g.generation_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() - g.prompt_seconds;
    return g;
}

}  // namespace saem
