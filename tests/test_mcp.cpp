// MCP (api/mcp.h) as the protocol says: JSON-RPC errors, version negotiation, tool errors as
// results, resources, and the Streamable HTTP transport's sessions, status codes and
// cancellation. The official SDK's view is tests/clients/mcp.mjs.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "api/api.h"
#include "generator/remote.h"
#include "helpers.h"
#include "ingest/ingest.h"
#include "serving.h"

#include <set>

using nlohmann::json;
using namespace saem;

namespace {

json rpc(int id, const std::string &method, json params = json::object()) {
    return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
}

const json init_params = {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()}, {"clientInfo", {{"name", "t"}, {"version", "1"}}}};

// A Server used without HTTP, as `saem mcp` uses it.
struct Direct {
    TempDir dir;
    std::unique_ptr<Server> server;
    mcp::Session session;
    explicit Direct(bool read_only = false) {
        ServerOptions o;
        o.db = dir / "m.db";
        o.read_only = read_only;
        o.chunking.max_tokens = 16;
        o.chunking.overlap_tokens = 8;
        server = std::make_unique<Server>(o);
    }
    json call(const json &message) {
        auto reply = server->mcp(message.dump(), session);
        REQUIRE(reply);
        return json::parse(*reply);
    }
};

// An index of one short document.
std::string bm25_index(const TempDir &dir) {
    std::string db = dir / "one.db";
    Store store(db);
    index_document(store, "kb/bm25.md", "# BM25\n\nThe parameter b controls length normalisation.", "md", {}, {});
    return db;
}

// A remote generator that answers with silence until released (or 10 s), counting the requests:
// an ask tool call waits on it until cancelled.
struct SilentGenerator {
    std::atomic<bool> release{false};
    std::atomic<int> asked{0};
    FakeRemote http{[this](const httplib::Request &, httplib::Response &res) {
        ++asked;
        res.set_chunked_content_provider("text/event-stream", [this](size_t, httplib::DataSink &sink) {
            for (int i = 0; i < 200 && !release && sink.is_writable(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
            sink.done();
            return true;
        });
    }};
    ~SilentGenerator() { release = true; }
    std::shared_ptr<ChatModel> model() const {
        RemoteOptions ro;
        ro.url = http.url();
        ro.context_tokens = 4096;
        ro.retries = 0;
        return std::make_shared<RemoteChat>(ro);
    }
    bool wait_asked() const {
        for (int i = 0; i < 100 && asked == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return asked == 1;
    }
};

}  // namespace

TEST_CASE("MCP messages: JSON-RPC errors, initialize first, version negotiation, tools, resources") {
    Direct d;
    // Before initialize only ping works; malformed messages get JSON-RPC's codes.
    CHECK(d.call(rpc(1, "tools/list"))["error"]["code"] == -32600);
    CHECK(d.call(rpc(2, "ping"))["result"] == json::object());
    CHECK(json::parse(*d.server->mcp("{not json", d.session))["error"]["code"] == -32700);
    CHECK(json::parse(*d.server->mcp("[1, 2]", d.session))["error"]["code"] == -32600);  // no batches in MCP
    CHECK(json::parse(*d.server->mcp(R"({"jsonrpc": "1.0", "id": 1, "method": "ping"})", d.session))["error"]["code"] == -32600);
    CHECK(json::parse(*d.server->mcp(R"({"jsonrpc": 2, "id": 1, "method": "ping"})", d.session))["error"]["code"] == -32600);
    CHECK(json::parse(*d.server->mcp(R"({"id": 1, "method": "ping"})", d.session))["error"]["code"] == -32600);
    CHECK(json::parse(*d.server->mcp(std::string(100, '[') + std::string(100, ']'), d.session))["error"]["code"] == -32600);
    // Notifications and responses get no reply.
    CHECK_FALSE(d.server->mcp(R"({"jsonrpc": "2.0", "method": "notifications/initialized"})", d.session));
    CHECK_FALSE(d.server->mcp(R"({"jsonrpc": "2.0", "id": 9, "result": {}})", d.session));

    // The client's version when saem speaks it, else saem's newest.
    json init = d.call(rpc(3, "initialize", init_params));
    CHECK(init["result"]["protocolVersion"] == "2025-06-18");
    CHECK(init["result"]["serverInfo"]["name"] == "saem");
    CHECK(init["result"]["capabilities"].contains("tools"));
    CHECK(init["result"]["capabilities"].contains("resources"));
    json future = init_params;
    future["protocolVersion"] = "2099-01-01";
    mcp::Session other;
    CHECK(json::parse(*d.server->mcp(rpc(4, "initialize", future).dump(), other))["result"]["protocolVersion"] == mcp::protocol_versions.front());

    CHECK(d.call(rpc(5, "no/such"))["error"]["code"] == -32601);
    CHECK(d.call(rpc(6, "tools/call", {{"name", "no_such_tool"}}))["error"]["code"] == -32602);
    CHECK(d.call(rpc(7, "tools/call", {{"name", "search"}, {"arguments", 3}}))["error"]["code"] == -32602);
    CHECK(d.call(rpc(8, "resources/read", {{"uri", "saem://default/documents/77"}}))["error"]["code"] == -32002);
    CHECK(d.call(rpc(9, "resources/read", {{"uri", "file:///etc/passwd"}}))["error"]["code"] == -32002);
    CHECK(d.call(rpc(10, "resources/list", {{"cursor", "garbage"}}))["error"]["code"] == -32602);

    // Tool failures are results the model reads (isError), not protocol errors.
    auto tool = [&](int id, const std::string &name, json args) { return d.call(rpc(id, "tools/call", {{"name", name}, {"arguments", args}}))["result"]; };
    json bad = tool(11, "search", json::object());
    CHECK(bad["isError"] == true);
    CHECK(bad["content"][0]["text"].get<std::string>().find("'query'") != std::string::npos);
    CHECK(tool(12, "get_document", {{"id", 1}})["isError"] == true);
    CHECK(tool(13, "get_document", {{"id", "one"}})["isError"] == true);
    CHECK(tool(14, "search", {{"query", "x"}, {"collection", "elsewhere"}})["isError"] == true);
    CHECK(tool(15, "add_document", {{"path", "/etc/x"}, {"text", "t"}})["isError"] == true);
    CHECK(tool(16, "add_document", {{"path", "r.pdf"}, {"text", "t"}, {"format", "pdf"}})["isError"] == true);

    // A document of several overlapping chunks reads back whole, each sentence once.
    std::string text;
    for (int i = 0; i < 12; ++i) text += "Sentence number " + std::to_string(i) + " talks about springs and wells. ";
    json added = tool(17, "add_document", {{"path", "notes/long.txt"}, {"text", text}});
    REQUIRE(added["isError"] == false);
    CHECK(added["structuredContent"]["chunks"].get<int>() >= 3);
    int64_t id = added["structuredContent"]["id"];
    json read = d.call(rpc(18, "resources/read", {{"uri", "saem://default/documents/" + std::to_string(id)}}));
    const std::string back = read["result"]["contents"][0]["text"];
    for (int i = 0; i < 12; ++i) {
        std::string sentence = "Sentence number " + std::to_string(i) + " talks";
        CAPTURE(sentence);
        CHECK(back.find(sentence) != std::string::npos);
        CHECK(back.find(sentence) == back.rfind(sentence));
    }
    json doc = tool(19, "get_document", {{"id", id}});
    CHECK(doc["structuredContent"]["text"] == back);
    CHECK(doc["structuredContent"]["uri"] == "saem://default/documents/" + std::to_string(id));
    // Paged: 150 documents come in two pages, the cursor leading to the rest.
    for (int i = 0; i < 149; ++i) REQUIRE(tool(100 + i, "add_document", {{"path", "n/" + std::to_string(i) + ".txt"}, {"text", "w"}})["isError"] == false);
    json page1 = d.call(rpc(20, "resources/list"))["result"];
    REQUIRE(page1["resources"].size() == 100);
    REQUIRE(page1.contains("nextCursor"));
    json page2 = d.call(rpc(21, "resources/list", {{"cursor", page1["nextCursor"]}}))["result"];
    CHECK(page2["resources"].size() == 50);
    CHECK_FALSE(page2.contains("nextCursor"));
    std::set<std::string> uris;
    for (const auto &page : {page1, page2})
        for (const auto &r : page["resources"]) uris.insert(r["uri"]);
    CHECK(uris.size() == 150);
    for (const char *bad : {"0:", ":5", "0:-1", "0:5x", "99999999999999999999:0"})
        CHECK_MESSAGE(d.call(rpc(22, "resources/list", {{"cursor", bad}}))["error"]["code"] == -32602, bad);
}

TEST_CASE("MCP --read-only: no write tools listed or callable; HTTP writes refused") {
    Direct d(true);
    d.call(rpc(1, "initialize", init_params));
    std::vector<std::string> names;
    const json listed = d.call(rpc(2, "tools/list"));
    for (const auto &t : listed["result"]["tools"]) names.push_back(t["name"]);
    CHECK(names == std::vector<std::string>{"search", "ask", "get_document", "list_documents"});
    CHECK(d.call(rpc(3, "tools/call", {{"name", "add_document"}, {"arguments", {{"path", "a.md"}, {"text", "x"}}}}))["error"]["code"] == -32602);

    ServerOptions o;
    o.db = d.dir / "m.db";
    o.read_only = true;
    Serving s(o);
    json e = post(s.client(), "/v1/documents", {{"path", "a.md"}, {"text", "x"}}, 403);
    CHECK(e["error"]["code"] == "read_only");
    CHECK(s.client().Delete("/v1/documents/1")->status == 403);
}

TEST_CASE("MCP over Streamable HTTP: sessions, status codes, and a cancellation that ends a tool call") {
    TempDir dir;
    SilentGenerator silent;
    ServerOptions o;
    o.db = bm25_index(dir);
    o.max_answer_tokens = 16;
    o.remote = silent.model();
    Serving s(o);
    auto c = s.client();
    // A client of its own per call: one httplib::Client sends one request at a time.
    auto send = [&](const json &message, const std::string &session, int status) {
        httplib::Headers h;
        if (!session.empty()) h.emplace("Mcp-Session-Id", session);
        auto r = s.client().Post("/mcp", h, message.dump(), "application/json");
        REQUIRE(r);
        CAPTURE(r->body);
        CHECK(r->status == status);
        return r;
    };
    auto r = send(rpc(1, "initialize", init_params), "", 200);
    const std::string sid = r->get_header_value("Mcp-Session-Id");
    CHECK(sid.size() == 64);
    CHECK(send(json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, sid, 202)->body.empty());
    CHECK(json::parse(send(rpc(2, "tools/list"), sid, 200)->body)["result"]["tools"].size() == 6);
    CHECK(json::parse(send(rpc(3, "tools/list"), "", 400)->body)["error"]["code"] == "missing_session");
    CHECK(json::parse(send(rpc(4, "tools/list"), "nope", 404)->body)["error"]["code"] == "session_not_found");
    CHECK(c.Post("/mcp", {{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "1999-01-01"}}, rpc(5, "ping").dump(), "application/json")->status == 400);
    CHECK(c.Get("/mcp")->status == 405);

    // A tool call under way ends when the client cancels it.
    std::thread caller([&] {
        auto t0 = std::chrono::steady_clock::now();
        auto reply = send(rpc(6, "tools/call", {{"name", "ask"}, {"arguments", {{"question", "What does the parameter b control?"}}}}), sid, 200);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
        json j = json::parse(reply->body);
        CHECK(j["result"]["isError"] == true);
    });
    REQUIRE(silent.wait_asked());
    send(json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"}, {"params", {{"requestId", 6}, {"reason", "user"}}}}, sid, 202);
    caller.join();

    CHECK(c.Delete("/mcp", {{"Mcp-Session-Id", sid}})->status == 204);
    CHECK(c.Delete("/mcp", {{"Mcp-Session-Id", sid}})->status == 404);
    send(rpc(7, "tools/list"), sid, 404);
}

TEST_CASE("MCP without HTTP (saem mcp's path): a cancel flag ends a tool call waiting on a silent generator") {
    TempDir dir;
    SilentGenerator silent;
    ServerOptions o;
    o.db = bm25_index(dir);
    o.max_answer_tokens = 16;
    o.remote = silent.model();
    Server server(o);
    mcp::Session session;
    REQUIRE(server.mcp(rpc(1, "initialize", init_params).dump(), session));
    std::atomic<bool> cancel{false};
    std::optional<std::string> reply;
    auto t0 = std::chrono::steady_clock::now();
    std::thread call([&] {
        reply = server.mcp(rpc(2, "tools/call", {{"name", "ask"}, {"arguments", {{"question", "What does b control?"}}}}).dump(), session,
                           {&cancel, {}});
    });
    REQUIRE(silent.wait_asked());
    cancel = true;
    call.join();
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
    REQUIRE(reply);
    CHECK(json::parse(*reply)["result"]["isError"] == true);
}
