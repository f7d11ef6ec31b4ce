#include "api/openai.h"
#include "api/fields.h"

#include <random>

namespace saem::openai {

using nlohmann::json;

namespace {

[[noreturn]] void invalid(const std::string &message) { throw RequestError("invalid_field", message); }

// A message's text: a string, or an array of {"type": "text", "text": ...} parts joined.
std::string content_text(const json &content, size_t index) {
    if (content.is_null()) return {};
    if (content.is_string()) return content.get<std::string>();
    if (!content.is_array()) invalid("messages[" + std::to_string(index) + "].content must be a string or an array of text parts");
    std::string text;
    for (const auto &part : content) {
        const json *type = part.is_object() ? fields::find(part, "type") : nullptr;
        if (!type || *type != "text" || !part.contains("text") || !part["text"].is_string())
            invalid("messages[" + std::to_string(index) + "].content: saem reads text parts only ({\"type\": \"text\", \"text\": ...})");
        if (!text.empty()) text += "\n";
        text += part["text"].get<std::string>();
    }
    return text;
}

}  // namespace

ChatRequest parse_chat_request(const json &body, int default_max_tokens) {
    ChatRequest r;
    if (const json *m = fields::find(body, "model")) {
        if (!m->is_string()) invalid("'model' must be a string");
        r.model = m->get<std::string>();
    }
    const json *messages = fields::find(body, "messages");
    if (!messages) throw RequestError("missing_field", "'messages' is required: an array of {role, content}");
    if (!messages->is_array() || messages->empty() || messages->size() > 10000) invalid("'messages' must be an array of 1 to 10000 messages");
    for (size_t i = 0; i < messages->size(); ++i) {
        const json &m = (*messages)[i];
        const json *role = m.is_object() ? fields::find(m, "role") : nullptr;
        if (!role || !role->is_string()) invalid("messages[" + std::to_string(i) + "] must be an object with a string 'role'");
        std::string name = role->get<std::string>();
        if (name == "developer") name = "system";
        if (name != "system" && name != "user" && name != "assistant")
            invalid("messages[" + std::to_string(i) + "].role '" + name + "': saem takes system, developer, user and assistant messages");
        r.messages.push_back({name, content_text(m.contains("content") ? m["content"] : json(), i)});
    }
    if (const json *n = fields::find(body, "n"); n && *n != 1) invalid("'n' must be 1: saem writes one choice");
    if (const json *tools = fields::find(body, "tools"); tools && !(tools->is_array() && tools->empty()))
        invalid("'tools' is not supported: saem's models do not call tools");
    r.stream = fields::optional_bool(body, "stream", false);
    if (const json *so = fields::find(body, "stream_options")) {
        if (!so->is_object()) invalid("'stream_options' must be an object");
        r.include_usage = fields::optional_bool(*so, "include_usage", false);
    }
    GenerateOptions &g = r.generation;
    g.max_tokens = fields::bounded_int(body, "max_tokens", default_max_tokens, 1, 32768);
    g.max_tokens = fields::bounded_int(body, "max_completion_tokens", g.max_tokens, 1, 32768);
    g.sampling.temperature = float(fields::bounded_number(body, "temperature", g.sampling.temperature, 0, 2));
    g.sampling.greedy = g.sampling.temperature <= 0;
    g.sampling.top_p = float(fields::bounded_number(body, "top_p", g.sampling.top_p, 0, 1));
    if (const json *seed = fields::find(body, "seed")) {
        if (!seed->is_number_integer()) invalid("'seed' must be an integer");
        g.sampling.seed = uint64_t(seed->get<int64_t>());  // two's complement: negative seeds are seeds too
    }
    if (const json *stop = fields::find(body, "stop")) {
        if (stop->is_string()) g.stop.push_back(stop->get<std::string>());
        else if (stop->is_array() && stop->size() <= 4 && std::all_of(stop->begin(), stop->end(), [](const json &s) { return s.is_string(); }))
            g.stop = stop->get<std::vector<std::string>>();
        else invalid("'stop' must be a string or an array of up to 4 strings");
        for (const auto &s : g.stop)
            if (s.empty() || s.size() > 256) invalid("each 'stop' string must be 1 to 256 bytes");
    }
    if (const json *ext = fields::find(body, "saem")) {
        if (!ext->is_object()) invalid("'saem' must be an object (retrieval options: k, mode, filter, mmr, rerank, method)");
        r.saem = *ext;
    }
    return r;
}

const char *finish_reason(const std::string &stop_reason) { return stop_reason == "length" ? "length" : "stop"; }

std::string completion_id() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static const char hex[] = "0123456789abcdef";
    std::string id = "chatcmpl-";
    for (int i = 0; i < 24; ++i) id += hex[rng() & 15];
    return id;
}

void add_extension(json &out, const Answer &a, const std::string &collection, const std::string &mode) {
    json citations = json::array();
    for (const auto &c : a.citations)
        citations.push_back({{"number", c.number}, {"path", c.path}, {"title", c.title}, {"heading", c.heading}, {"page", c.page},
                             {"document_id", c.document_id}, {"chunk_id", c.chunk_id}, {"text", c.text}});
    out["citations"] = citations;
    json ext = {{"found", a.found}, {"method", a.method}, {"note", a.note}};
    if (!a.route.empty()) {
        ext["route"] = a.route;
        ext["route_reason"] = a.route_reason;
    }
    if (!collection.empty()) ext["collection"] = collection;
    if (!mode.empty()) ext["mode"] = mode;
    out["saem"] = ext;
}

json usage(const Answer &a) {
    return {{"prompt_tokens", a.prompt_tokens}, {"completion_tokens", a.completion_tokens},
            {"total_tokens", a.prompt_tokens + a.completion_tokens}};
}

json completion(const std::string &id, int64_t created, const std::string &model, const Answer &a) {
    return {{"id", id},
            {"object", "chat.completion"},
            {"created", created},
            {"model", model},
            {"choices", json::array({{{"index", 0},
                                      {"message", {{"role", "assistant"}, {"content", a.text}, {"refusal", nullptr}}},
                                      {"logprobs", nullptr},
                                      {"finish_reason", finish_reason(a.stop_reason)}}})},
            {"usage", usage(a)}};
}

json chunk(const std::string &id, int64_t created, const std::string &model, const json &delta, const json &finish) {
    return {{"id", id},
            {"object", "chat.completion.chunk"},
            {"created", created},
            {"model", model},
            {"choices", json::array({{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", finish}}})}};
}

Answer chat_answer(const Generation &g, const std::string &model) {
    Answer a;
    a.found = true;
    a.method = "chat";
    a.model = model;
    a.text = g.text;
    a.prompt_tokens = g.prompt_tokens;
    a.completion_tokens = g.completion_tokens;
    a.prompt_seconds = g.prompt_seconds;
    a.generation_seconds = g.generation_seconds;
    a.stop_reason = g.stop_reason;
    a.note = "Chat with " + model + ", no retrieval (stopped: " + g.stop_reason + (g.error.empty() ? "" : ": " + g.error) + ").";
    return a;
}

}  // namespace saem::openai
