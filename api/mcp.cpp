#include "api/mcp.h"
#include "nn/text.h"
#include "retrieval/pipeline.h"

namespace saem::mcp {

using nlohmann::json;

namespace {

constexpr int parse_error = -32700, invalid_request = -32600, method_not_found = -32601, invalid_params = -32602,
              internal_error = -32603, resource_not_found = -32002;

struct RpcError {
    int code;
    std::string message;
};

json filter_schema() {
    return {{"type", "object"},
            {"description", "Only chunks of documents whose path starts with path_prefix and whose metadata has these values"},
            {"properties", {{"path_prefix", {{"type", "string"}}}, {"metadata", {{"type", "object"}}}}},
            {"additionalProperties", false}};
}

json collection_schema() { return {{"type", "string"}, {"description", "The collection (index) to use; the server's first when absent"}}; }

json tool(const char *name, const char *title, const char *description, json properties, std::vector<std::string> required,
          bool read_only_hint, bool destructive = false) {
    return {{"name", name},
            {"title", title},
            {"description", description},
            {"inputSchema", {{"type", "object"}, {"properties", std::move(properties)}, {"required", required}, {"additionalProperties", false}}},
            {"annotations", {{"readOnlyHint", read_only_hint}, {"destructiveHint", destructive}, {"openWorldHint", false}}}};
}

// The text a model reads beside the structured result.
std::string text_of(const std::string &name, const json &r) {
    if (name == "search") {
        std::string t;
        int n = 0;
        for (const auto &h : r["hits"]) {
            t += "[" + std::to_string(++n) + "] " + h["path"].get<std::string>();
            if (!h["heading"].get<std::string>().empty()) t += " — " + h["heading"].get<std::string>();
            if (h["page"].get<int>() > 0) t += ", page " + std::to_string(h["page"].get<int>());
            t += " (document " + std::to_string(h["document_id"].get<int64_t>()) + ")\n" + h["text"].get<std::string>() + "\n\n";
        }
        return n ? t : "No document matches the query.";
    }
    if (name == "ask") {
        std::string t = r["answer"].get<std::string>();
        if (!r["citations"].empty()) t += "\n\nSources:";
        for (const auto &c : r["citations"]) {
            t += "\n[" + std::to_string(c["number"].get<int>()) + "] " + c["path"].get<std::string>();
            if (!c["heading"].get<std::string>().empty()) t += " — " + c["heading"].get<std::string>();
            t += ": " + c["text"].get<std::string>();
        }
        return t;
    }
    if (name == "get_document" && r.contains("text")) return r["path"].get<std::string>() + "\n\n" + r["text"].get<std::string>();
    return r.dump(2);
}

json call_tool(const json &params, const Backend &backend, const Call &call) {
    if (!params.contains("name") || !params["name"].is_string()) throw RpcError{invalid_params, "tools/call needs a tool 'name'"};
    const std::string name = params["name"];
    bool known = false;
    for (const auto &t : tools(backend.read_only)) known |= t["name"] == name;
    if (!known) throw RpcError{invalid_params, "no tool '" + name.substr(0, 100) + "'" + (backend.read_only ? " (the server is read-only)" : "")};
    json args = params.contains("arguments") && !params["arguments"].is_null() ? params["arguments"] : json::object();
    if (!args.is_object()) throw RpcError{invalid_params, "'arguments' must be an object"};
    ToolContext context;
    context.cancel = call.cancel;
    const json token = params.contains("_meta") && params["_meta"].is_object() ? params["_meta"].value("progressToken", json()) : json();
    // Each notification carries the new piece as its message and the bytes written so far as its
    // progress (so a client can rebuild the answer, and nothing is sent twice).
    double progress = 0;
    if (call.notify && (token.is_string() || token.is_number_integer()))
        context.on_text = [&](std::string_view piece) {
            progress += double(piece.size());
            call.notify({{"jsonrpc", "2.0"},
                         {"method", "notifications/progress"},
                         {"params", {{"progressToken", token}, {"progress", progress}, {"message", piece}}}});
        };
    try {
        json result = backend.call(name, args, context);
        return {{"content", json::array({{{"type", "text"}, {"text", text_of(name, result)}}})}, {"structuredContent", result}, {"isError", false}};
    } catch (const ToolError &e) {
        return {{"content", json::array({{{"type", "text"}, {"text", e.what()}}})}, {"isError", true}};
    } catch (const RequestError &e) {
        return {{"content", json::array({{{"type", "text"}, {"text", e.what()}}})}, {"isError", true}};
    }
}

json dispatch(const std::string &method, const json &params, Session &session, const Backend &backend, const Call &call) {
    if (method == "initialize") {
        std::string asked = params.contains("protocolVersion") && params["protocolVersion"].is_string() ? params["protocolVersion"] : "";
        bool known = std::find(protocol_versions.begin(), protocol_versions.end(), asked) != protocol_versions.end();
        session.protocol_version = known ? asked : protocol_versions.front();
        return {{"protocolVersion", session.protocol_version},
                {"capabilities", {{"tools", {{"listChanged", false}}}, {"resources", {{"listChanged", false}, {"subscribe", false}}}}},
                {"serverInfo", {{"name", "saem"}, {"title", "saem knowledge base"}, {"version", "0.1.0"}}},
                {"instructions", "saem searches and answers from the user's indexed documents, with numbered citations. Use "
                                 "search for passages, ask for an answer with its sources; documents are also resources "
                                 "(saem://COLLECTION/documents/ID)."}};
    }
    if (method == "ping") return json::object();
    if (method == "tools/list") return {{"tools", tools(backend.read_only)}};
    if (method == "tools/call") return call_tool(params, backend, call);
    if (method == "resources/list") {
        std::string cursor = params.contains("cursor") && params["cursor"].is_string() ? params["cursor"] : "";
        return backend.list_resources(cursor);
    }
    if (method == "resources/templates/list")
        return {{"resourceTemplates", json::array({{{"uriTemplate", "saem://{collection}/documents/{id}"},
                                                    {"name", "document"},
                                                    {"title", "An indexed document"},
                                                    {"mimeType", "text/plain"}}})}};
    if (method == "resources/read") {
        if (!params.contains("uri") || !params["uri"].is_string()) throw RpcError{invalid_params, "resources/read needs a 'uri'"};
        auto content = backend.read_resource(params["uri"]);
        if (!content) throw RpcError{resource_not_found, "no resource " + params["uri"].get<std::string>().substr(0, 200)};
        return {{"contents", json::array({*content})}};
    }
    throw RpcError{method_not_found, "no method '" + method.substr(0, 100) + "'"};
}

json error_reply(const json &id, int code, const std::string &message) {
    return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

}  // namespace

json tools(bool read_only) {
    json k = {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}, {"description", "How many passages (default 5)"}};
    json mode = {{"type", "string"}, {"enum", {"lexical", "dense", "hybrid"}}, {"description", "Retrieval mode (default: hybrid when the index has vectors)"}};
    json id = {{"type", "integer"}, {"description", "The document's id (from search, ask or list_documents)"}};
    json list = json::array();
    list.push_back(tool("search", "Search the documents",
                        "Search the indexed documents (BM25 with stemming and Korean bigrams, fused with dense vectors when "
                        "the index has them). Returns passages with path, heading, page and document id.",
                        {{"query", {{"type", "string"}, {"description", "What to look for, in any words"}}},
                         {"k", k},
                         {"mode", mode},
                         {"filter", filter_schema()},
                         {"collection", collection_schema()}},
                        {"query"}, true));
    list.push_back(tool("ask", "Answer from the documents",
                        "Answer a question from the indexed documents only, with numbered citations [n] and the cited passages. "
                        "found is false when the documents do not answer it.",
                        {{"question", {{"type", "string"}}},
                         {"k", k},
                         {"mode", mode},
                         {"filter", filter_schema()},
                         {"strict", {{"type", "boolean"}, {"description", "Remove generated sentences their sources do not support"}}},
                         {"collection", collection_schema()}},
                        {"question"}, true));
    if (!read_only)
        list.push_back(tool("add_document", "Add a document",
                            "Store a text document (plain text, Markdown or HTML) under a path label such as notes/meeting.md; "
                            "a document with the same path is replaced.",
                            {{"path", {{"type", "string"}, {"description", "A relative label, such as notes/meeting.md"}}},
                             {"text", {{"type", "string"}}},
                             {"format", {{"type", "string"}, {"enum", {"txt", "md", "html"}}, {"description", "Default: from the path's extension, else txt"}}},
                             {"metadata", {{"type", "object"}, {"description", "Values to filter searches by"}}},
                             {"collection", collection_schema()}},
                            {"path", "text"}, false));
    list.push_back(tool("get_document", "Read a document", "A document's details and its whole text as indexed.",
                        {{"id", id}, {"collection", collection_schema()}}, {"id"}, true));
    list.push_back(tool("list_documents", "List the documents", "The documents of a collection, by path.",
                        {{"prefix", {{"type", "string"}, {"description", "Only paths that start with this"}}},
                         {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000}}},
                         {"offset", {{"type", "integer"}, {"minimum", 0}}},
                         {"collection", collection_schema()}},
                        {}, true));
    if (!read_only)
        list.push_back(tool("delete_document", "Delete a document", "Remove a document and its passages from the index.",
                            {{"id", id}, {"collection", collection_schema()}}, {"id"}, false, true));
    return list;
}

std::optional<json> handle(const json &message, Session &session, const Backend &backend, const Call &call) {
    const auto version = message.is_object() ? message.find("jsonrpc") : message.end();
    if (!message.is_object() || version == message.end() || *version != "2.0")
        return error_reply(nullptr, invalid_request, "a JSON-RPC 2.0 message object is expected (batches are not part of MCP)");
    const bool request = message.contains("id") && !message["id"].is_null();
    if (!message.contains("method")) return std::nullopt;  // a response to nothing saem asked: ignored
    if (!message["method"].is_string()) return request ? std::optional(error_reply(message["id"], invalid_request, "'method' must be a string")) : std::nullopt;
    const std::string method = message["method"];
    if (!request) return std::nullopt;  // notifications: initialized, cancelled (the transport's), others ignored
    const json &id = message["id"];
    if (!id.is_string() && !id.is_number_integer()) return error_reply(nullptr, invalid_request, "'id' must be a string or an integer");
    json params = message.contains("params") && !message["params"].is_null() ? message["params"] : json::object();
    if (!params.is_object()) return error_reply(id, invalid_params, "'params' must be an object");
    if (method != "initialize" && method != "ping" && session.protocol_version.empty())
        return error_reply(id, invalid_request, "send initialize first");
    try {
        return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", dispatch(method, params, session, backend, call)}};
    } catch (const RpcError &e) {
        return error_reply(id, e.code, e.message);
    } catch (const std::invalid_argument &e) {
        return error_reply(id, invalid_params, e.what());
    } catch (const std::exception &e) {
        return error_reply(id, internal_error, e.what());
    }
}

std::optional<json> handle_text(const std::string &text, Session &session, const Backend &backend, const Call &call) {
    if (nn::json_depth(text) > 64) return error_reply(nullptr, invalid_request, "the message nests deeper than 64 levels");
    json message = json::parse(text, nullptr, false);
    if (message.is_discarded()) return error_reply(nullptr, parse_error, "the message is not valid JSON");
    try {
        return handle(message, session, backend, call);
    } catch (const std::exception &e) {  // handle() answers what it can; nothing else may escape
        return error_reply(nullptr, internal_error, e.what());
    }
}

json progress_token(const json &message) {
    if (!message.is_object() || !message.contains("params") || !message["params"].is_object()) return nullptr;
    const json &params = message["params"];
    if (!params.contains("_meta") || !params["_meta"].is_object()) return nullptr;
    return params["_meta"].value("progressToken", json());
}

std::string document_uri(const std::string &collection, int64_t id) { return "saem://" + collection + "/documents/" + std::to_string(id); }

std::optional<std::pair<std::string, int64_t>> parse_document_uri(const std::string &uri) {
    const std::string scheme = "saem://";
    if (uri.rfind(scheme, 0) != 0) return std::nullopt;
    size_t slash = uri.find("/documents/", scheme.size());
    if (slash == std::string::npos || slash == scheme.size()) return std::nullopt;
    std::string digits = uri.substr(slash + 11);
    if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::pair{uri.substr(scheme.size(), slash - scheme.size()), std::stoll(digits)};
}

}  // namespace saem::mcp
