// api/mcp.h: the Model Context Protocol (https://modelcontextprotocol.io/specification), the
// server side, over any transport: one JSON-RPC 2.0 message in, its reply out. `saem mcp` carries
// it over stdio (a message per line), `saem serve` over Streamable HTTP at /mcp; both take the
// tools and resources from Server (api.h), whose JSON they return, so a tool call answers what
// the HTTP API would.
//
// Methods: initialize (protocol versions below; the client's when saem speaks it, else the
// newest), ping, tools/list, tools/call, resources/list (paged), resources/read,
// notifications/initialized and notifications/cancelled (the transport turns the latter into the
// cancel flag of the request it names). A tool that fails on its input or its subject (a missing
// document) answers a result with isError; an unknown method, tool or resource is a JSON-RPC error.
//
// Threads: handle() is reentrant; a Session is used by one request at a time or under the
// transport's lock (it changes only at initialize).
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace saem::mcp {

// Newest first. (2025-03-26 is not among them: it required JSON-RPC batches, which later revisions
// dropped and saem does not take.)
inline const std::vector<std::string> protocol_versions = {"2025-11-25", "2025-06-18"};

struct Session {
    std::string protocol_version;  // set by initialize
};

// A tool's failure that the model should see (isError), not a protocol error.
struct ToolError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// What a transport gives one request: its cancel flag (set by notifications/cancelled or a client
// that left), and where notifications about it go (null: none can be sent).
struct Call {
    using Notify = std::function<void(const nlohmann::json &notification)>;
    const std::atomic<bool> *cancel = nullptr;
    Notify notify;
};

// What a tool call may use: the cancel flag, and a sink for the answer's text as it is written
// (null unless the client asked for progress with _meta.progressToken).
struct ToolContext {
    const std::atomic<bool> *cancel = nullptr;
    std::function<void(std::string_view piece)> on_text;
};

// What the server does behind the protocol.
struct Backend {
    bool read_only = false;  // add_document and delete_document are neither listed nor callable
    // Runs a tool with its arguments; returns its structured result. Throws ToolError (or
    // RequestError) for the model to read, anything else for an internal error.
    std::function<nlohmann::json(const std::string &tool, const nlohmann::json &arguments, const ToolContext &context)> call;
    // {"resources": [...], "nextCursor"?} from cursor ("" : the first page).
    std::function<nlohmann::json(const std::string &cursor)> list_resources;
    // {"uri", "mimeType", "text"} of a saem://COLLECTION/documents/ID, or nullopt.
    std::function<std::optional<nlohmann::json>(const std::string &uri)> read_resource;
};

// The tool definitions (name, title, description, inputSchema with JSON Schemas).
nlohmann::json tools(bool read_only);

// Handles one message; nullopt for a notification or a response (nothing to send back). A
// tools/call with _meta.progressToken sends notifications/progress through call.notify as the
// answer is written: each one's message is the next piece, its progress the bytes so far.
std::optional<nlohmann::json> handle(const nlohmann::json &message, Session &session, const Backend &backend, const Call &call = {});
// handle() for message text: a parse error is answered as JSON-RPC says (-32700).
std::optional<nlohmann::json> handle_text(const std::string &message, Session &session, const Backend &backend, const Call &call = {});
// The progress token of a request, or null.
nlohmann::json progress_token(const nlohmann::json &message);

// The resource URI of a document, and its parts back (nullopt when uri is not one).
std::string document_uri(const std::string &collection, int64_t id);
std::optional<std::pair<std::string, int64_t>> parse_document_uri(const std::string &uri);

}  // namespace saem::mcp
