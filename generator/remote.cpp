// The client side of OpenAI's chat completions, streamed (server-sent events):
//   data: {"choices":[{"delta":{"content":"..."},"finish_reason":null}]}  ... data: [DONE]
#include "generator/remote.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <thread>

namespace saem {

using nlohmann::json;

namespace {

// A failure that may be retried when no text has been passed on yet.
struct Attempt {
    bool ok = false, retryable = false;
    std::string error;
};

std::string finish_to_stop(const std::string &finish) {
    if (finish == "length") return "length";
    if (finish == "stop") return "end";
    return finish.empty() ? "end" : finish;
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
    if (s.seed) body["seed"] = s.seed;
    if (!options.stop.empty()) body["stop"] = options.stop;
    const std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);

    Generation g;
    auto cancelled = [&] { return options.cancel && options.cancel->load(std::memory_order_relaxed); };
    bool passed_on = false;  // some text reached on_text: no more retries
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
        std::string error_body, line;
        bool done = false, stream_error = false;
        std::string finish;
        req.response_handler = [&](const httplib::Response &r) {
            status = r.status;
            return true;
        };
        auto handle_line = [&](const std::string &l) {
            if (l.rfind("data:", 0) != 0) return true;  // comments, event names, ids
            std::string data = l.substr(5);
            if (!data.empty() && data[0] == ' ') data.erase(0, 1);
            if (data == "[DONE]") {
                done = true;
                return true;
            }
            json chunk = json::parse(data, nullptr, false);
            if (chunk.is_discarded() || !chunk.is_object()) return true;
            if (chunk.contains("error")) {
                stream_error = true;
                const json &e = chunk["error"];
                error_body = e.is_object() && e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : e.dump();
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
                passed_on = true;
                if (on_text && !on_text(piece)) return false;
            }
            return !cancelled();
        };
        req.content_receiver = [&](const char *data, size_t n, uint64_t, uint64_t) {
            if (status != 200) {
                if (error_body.size() < 65536) error_body.append(data, std::min<size_t>(n, 65536 - error_body.size()));
                return true;
            }
            for (size_t i = 0; i < n; ++i) {
                if (data[i] == '\n') {
                    if (!line.empty() && line.back() == '\r') line.pop_back();
                    bool go = handle_line(line);
                    line.clear();
                    if (!go) return false;
                } else if (line.size() < (16u << 20)) {
                    line += data[i];
                }
            }
            return true;
        };
        httplib::Response res;
        httplib::Error err = httplib::Error::Success;
        bool sent = client.send(req, res, err);
        if (cancelled()) {
            g.stop_reason = "cancelled";
            return {true, false, {}};
        }
        // An error the server sends in its stream is its answer to this request, not a transient fault.
        if (stream_error) return {false, false, "the server reported an error: " + error_body};
        if (!sent && err == httplib::Error::Canceled && passed_on) {  // on_text declined more
            g.stop_reason = "cancelled";
            return {true, false, {}};
        }
        if (!sent) return {false, true, "no answer from " + origin_ + ": " + httplib::to_string(err)};
        if (status != 200) {
            std::string message = error_body;
            json e = json::parse(error_body, nullptr, false);
            if (e.is_object() && e.contains("error")) {
                const json &x = e["error"];
                message = x.is_object() && x.contains("message") && x["message"].is_string() ? x["message"].get<std::string>() : x.dump();
            }
            if (message.size() > 300) message = message.substr(0, 300) + "...";
            return {false, status >= 500 || status == 429 || status == 408,
                    origin_ + " answered " + std::to_string(status) + (message.empty() ? "" : ": " + message)};
        }
        if (!done && finish.empty()) return {false, !passed_on, "the stream from " + origin_ + " ended before the answer did"};
        g.stop_reason = finish_to_stop(finish);
        return {true, false, {}};
    };
    std::string last;
    for (int i = 0; i <= options_.retries; ++i) {
        if (cancelled()) {
            g.stop_reason = "cancelled";
            return g;
        }
        if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(200 << std::min(i - 1, 4)));
        Attempt a = attempt();
        if (a.ok) break;
        last = a.error;
        if (passed_on) {  // the client has part of the answer: end it there
            g.stop_reason = "error";
            g.error = last;
            break;
        }
        if (!a.retryable || i == options_.retries)
            throw RemoteError(last + (i > 0 ? " (after " + std::to_string(i + 1) + " attempts)" : ""));
        g = Generation{};
    }
    g.generation_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() - g.prompt_seconds;
    return g;
}

}  // namespace saem
