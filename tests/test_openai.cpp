// The OpenAI-compatible chat route, collections, remote generation and the router, over HTTP.
// Two saem servers stand in for the small local model and the large remote one (both run
// stories260K; their names tell whose answer it is).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include "api/api.h"
#include "generator/remote.h"
#include "helpers.h"
#include "serving.h"
#include "ingest/ingest.h"

#include <httplib.h>

#include <atomic>
#include <functional>
#include <thread>

using nlohmann::json;
using namespace saem;

namespace {

// A streamed chat completion: its pieces joined, and its chunks.
struct Streamed {
    std::string text;
    std::vector<json> chunks;
};
Streamed stream_chat(httplib::Client &c, json body) {
    body["stream"] = true;
    auto r = c.Post("/v1/chat/completions", body.dump(), "application/json");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type").find("text/event-stream") == 0);
    Streamed s;
    s.chunks = sse_data(r->body);
    REQUIRE(s.chunks.size() >= 3);
    CHECK(s.chunks.back() == "[DONE]");
    for (size_t i = 0; i + 1 < s.chunks.size(); ++i) {
        const json &c = s.chunks[i];
        REQUIRE_MESSAGE(c.contains("choices"), c.dump());
        CHECK(c["object"] == "chat.completion.chunk");
        CHECK(c["id"] == s.chunks[0]["id"]);
        if (c["choices"].empty()) continue;  // the usage chunk
        const json &delta = c["choices"][0]["delta"];
        if (delta.contains("content")) s.text += delta["content"].get<std::string>();
    }
    CHECK(s.chunks[0]["choices"][0]["delta"]["role"] == "assistant");
    return s;
}

std::string samples_index(const TempDir &dir, const std::string &name = "s.db") {
    std::string db = dir / name;
    Store store(db);
    std::ostringstream log;
    index_folder(store, std::string(SAEM_SOURCE_DIR) + "/samples", IndexOptions{}, log);
    return db;
}

// Two short documents: prompts with them fit stories260K's 512-token context.
std::string small_index(const TempDir &dir) {
    std::string db = dir / "small.db";
    Store store(db);
    index_document(store, "kb/wal.md", "# WAL\n\nIn WAL mode readers do not block writers.", "md", {}, {});
    index_document(store, "kb/bm25.md", "# BM25\n\nThe parameter b controls length normalisation.", "md", {}, {});
    return db;
}

std::shared_ptr<nn::Decoder> stories_decoder() {
    nn::DecoderOptions o;
    o.context = 512;
    return nn::Decoder::load(stories().path, o);
}

std::shared_ptr<ChatModel> remote_at(const std::string &url, const std::string &model, int retries = 2) {
    RemoteOptions ro;
    ro.url = url;
    ro.model = model;
    ro.context_tokens = 512;
    ro.retries = retries;
    ro.connect_timeout = 1;
    ro.read_timeout = 20;
    return std::make_shared<RemoteChat>(ro);
}

}  // namespace

TEST_CASE("collections: one server, several indexes; every route takes the collection") {
    TempDir dir;
    ServerOptions o;
    o.collections = {{"notes", dir / "notes.db"}, {"samples", samples_index(dir)}};
    Serving s(o);
    auto c = s.client();

    json added = post(c, "/v1/documents", {{"path", "kb/pumps.md"}, {"text", "# Pumps\n\nZzpumps move water uphill."}}, 201);
    CHECK(added["collection"] == "notes");  // the first collection is the default
    post(c, "/v1/documents", {{"collection", "samples"}, {"path", "kb/geysers.md"}, {"text", "Geysers erupt hot water."}}, 201);

    json hits = post(c, "/v1/search", {{"query", "zzpumps"}});
    CHECK(hits["collection"] == "notes");
    CHECK(hits["hits"].size() == 1);
    CHECK(post(c, "/v1/search", {{"query", "zzpumps"}, {"collection", "samples"}})["hits"].empty());
    CHECK(post(c, "/v1/search", {{"query", "geysers"}, {"collection", "samples"}})["hits"].size() == 1);
    json missing = post(c, "/v1/search", {{"query", "x"}, {"collection", "nowhere"}}, 404);
    CHECK(missing["error"]["code"] == "collection_not_found");
    CHECK(post(c, "/v1/search", {{"query", "x"}, {"collection", 3}}, 400)["error"]["code"] == "invalid_field");

    auto r = c.Get("/v1/documents?collection=samples");
    REQUIRE(r);
    CHECK(json::parse(r->body)["total"] == 6);
    r = c.Get("/v1/collections");
    json list = json::parse(r->body);
    REQUIRE(list["collections"].size() == 2);
    CHECK(list["default"] == "notes");
    CHECK(list["collections"][0]["name"] == "notes");
    CHECK(list["collections"][0]["documents"] == 1);
    CHECK(list["collections"][1]["documents"] == 6);
    r = c.Get("/v1/stats?collection=samples");
    CHECK(json::parse(r->body)["collection"] == "samples");
    CHECK(c.Get("/v1/stats?collection=nope")->status == 404);
    int64_t id = added["id"];
    CHECK(c.Delete("/v1/documents/" + std::to_string(id) + "?collection=notes")->status == 200);
    r = c.Get("/metrics");
    CHECK(r->body.find("saem_documents{collection=\"samples\"} 6") != std::string::npos);
    CHECK(r->body.find("saem_documents{collection=\"notes\"} 0") != std::string::npos);

    json models = json::parse(c.Get("/v1/models")->body);
    std::vector<std::string> ids;
    for (const auto &m : models["data"]) ids.push_back(m["id"]);
    CHECK(ids == std::vector<std::string>{"notes", "samples"});

    // Names are checked at start.
    ServerOptions bad;
    bad.collections = {{"a b", dir / "x.db"}};
    CHECK_THROWS_AS(Server{bad}, std::invalid_argument);
    bad.collections = {{"a", dir / "x.db"}, {"a", dir / "y.db"}};
    CHECK_THROWS_AS(Server{bad}, std::invalid_argument);
}

TEST_CASE("chat completions without a generator: the extractive answer, with citations, streamed or not") {
    TempDir dir;
    ServerOptions o;
    o.collections = {{"samples", samples_index(dir)}};
    Serving s(o);
    auto c = s.client();
    json q = {{"model", "samples"}, {"messages", {{{"role", "user"}, {"content", "What does the parameter b control?"}}}}};
    json a = post(c, "/v1/chat/completions", q);
    CHECK(a["object"] == "chat.completion");
    CHECK(a["model"] == "samples");
    CHECK(a["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
    const std::string text = a["choices"][0]["message"]["content"];
    CHECK(text.find("The parameter b controls how much a long document is penalised.") != std::string::npos);
    CHECK(a["choices"][0]["finish_reason"] == "stop");
    CHECK(a["saem"]["method"] == "extractive");
    REQUIRE(!a["citations"].empty());
    CHECK(a["citations"][0]["path"].get<std::string>().find("ranking.html") != std::string::npos);
    CHECK(a["citations"][0]["text"].get<std::string>().find("parameter b") != std::string::npos);

    Streamed st = stream_chat(c, q);
    CHECK(st.text == text);
    const json &last = st.chunks[st.chunks.size() - 2];
    CHECK(last["choices"][0]["finish_reason"] == "stop");
    CHECK(!last["citations"].empty());

    // Text parts, a developer message, and retrieval options in the "saem" extension.
    json parts = {{"model", "samples"},
                  {"saem", {{"k", 1}, {"filter", {{"path_prefix", "/nowhere"}}}}},
                  {"messages", {{{"role", "developer"}, {"content", "Be brief."}},
                                {{"role", "user"}, {"content", {{{"type", "text"}, {"text", "What does the parameter b control?"}}}}}}}};
    CHECK(post(c, "/v1/chat/completions", parts)["saem"]["found"] == false);  // the filter left nothing

    auto refused = [&](json body, int status, const std::string &code) {
        json e = post(c, "/v1/chat/completions", body, status);
        CHECK(e["error"]["code"] == code);
        CHECK(e["error"]["type"].is_string());
    };
    refused({{"model", "samples"}}, 400, "missing_field");
    refused({{"model", "nope"}, {"messages", q["messages"]}}, 404, "model_not_found");
    refused({{"model", "samples"}, {"n", 2}, {"messages", q["messages"]}}, 400, "invalid_field");
    refused({{"model", "samples"}, {"tools", {{{"type", "function"}}}}, {"messages", q["messages"]}}, 400, "invalid_field");
    refused({{"model", "samples"}, {"messages", {{{"role", "tool"}, {"content", "x"}}}}}, 400, "invalid_field");
    refused({{"model", "samples"}, {"messages", {{{"role", "assistant"}, {"content", "x"}}}}}, 400, "invalid_field");
    refused({{"model", "samples"}, {"messages", q["messages"]}, {"saem", {{"method", "generated"}}}}, 400, "no_generator");
    refused({{"model", "samples"}, {"messages", q["messages"]}, {"stop", {"a", "b", "c", "d", "e"}}}, 400, "invalid_field");
}

TEST_CASE("chat completions with a local decoder: answers from a collection, plain chat by the decoder's name") {
    TempDir dir;
    ServerOptions o;
    o.collections = {{"samples", samples_index(dir)}};
    o.decoder = stories_decoder();
    o.decoder_name = "stories";
    o.max_answer_tokens = 24;
    Serving s(o);
    auto c = s.client();
    json q = {{"model", "samples"}, {"temperature", 0}, {"messages", {{{"role", "user"}, {"content", "How does BM25 rank documents?"}}}}};
    json a = post(c, "/v1/chat/completions", q);
    CHECK(a["saem"]["method"] == "generated");
    CHECK(a["saem"]["route"] == "local");
    CHECK(!a["citations"].empty());
    CHECK(a["usage"]["completion_tokens"].get<int>() <= 24);
    CHECK(a["usage"]["completion_tokens"].get<int>() > 0);
    CHECK(a["usage"]["prompt_tokens"].get<int>() > 20);
    CHECK(a["usage"]["total_tokens"] == a["usage"]["prompt_tokens"].get<int>() + a["usage"]["completion_tokens"].get<int>());
    // Greedy: the streamed pieces add up to the same answer.
    json with_usage = q;
    with_usage["stream_options"] = {{"include_usage", true}};
    Streamed st = stream_chat(c, with_usage);
    CHECK(st.text == a["choices"][0]["message"]["content"].get<std::string>());
    const json &usage = st.chunks[st.chunks.size() - 2];
    CHECK(usage["choices"].empty());
    for (size_t i = 0; i + 2 < st.chunks.size(); ++i) CHECK(st.chunks[i]["usage"].is_null());  // present, null
    CHECK(usage["usage"] == a["usage"]);

    // Plain chat by the decoder's id: no retrieval, no citations; max_tokens and stop apply.
    json chat = {{"model", "stories"}, {"temperature", 0}, {"max_tokens", 8}, {"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}}};
    json p = post(c, "/v1/chat/completions", chat);
    CHECK(p["saem"]["method"] == "chat");
    CHECK(p["citations"].empty());
    CHECK(p["usage"]["completion_tokens"] == 8);
    CHECK(p["choices"][0]["finish_reason"] == "length");
    chat["max_completion_tokens"] = 40;
    const std::string longer = post(c, "/v1/chat/completions", chat)["choices"][0]["message"]["content"];
    REQUIRE(longer.size() > 12);
    chat["stop"] = longer.substr(6, 4);
    json stopped = post(c, "/v1/chat/completions", chat);
    CHECK(stopped["choices"][0]["message"]["content"] == longer.substr(0, longer.find(longer.substr(6, 4))));
    CHECK(stopped["choices"][0]["finish_reason"] == "stop");
    // A seed repeats a sampled answer.
    chat.erase("stop");
    chat["temperature"] = 1.0;
    chat["seed"] = 7;
    const json seven = post(c, "/v1/chat/completions", chat)["choices"][0]["message"];
    CHECK(seven == post(c, "/v1/chat/completions", chat)["choices"][0]["message"]);
    chat["seed"] = 8;
    CHECK(seven != post(c, "/v1/chat/completions", chat)["choices"][0]["message"]);
    // A collection may not take the decoder's name.
    ServerOptions clash = o;
    clash.collections = {{"stories", dir / "s.db"}};
    CHECK_THROWS_AS(Server{clash}, std::invalid_argument);
}

TEST_CASE("remote generation: another server writes the answer; route auto sends it the hard questions") {
    TempDir dir;
    const std::string db = small_index(dir);
    ServerOptions large_o;
    large_o.db = dir / "empty.db";
    large_o.decoder = stories_decoder();
    large_o.decoder_name = "large";
    Serving large(large_o);

    ServerOptions small_o;
    small_o.collections = {{"samples", db}};
    small_o.decoder = stories_decoder();
    small_o.decoder_name = "small";
    small_o.max_answer_tokens = 16;
    small_o.remote = remote_at(large.url(), "large");
    Serving small(small_o);
    auto c = small.client();

    auto ask = [&](const std::string &question) {
        return post(c, "/v1/chat/completions", {{"model", "samples"}, {"temperature", 0}, {"messages", {{{"role", "user"}, {"content", question}}}}});
    };
    json easy = ask("What does the parameter b control?");
    CHECK(easy["saem"]["route"] == "local");
    CHECK(easy["saem"]["route_reason"].get<std::string>().find("short factual question") != std::string::npos);
    json hard = ask("Why do readers not block writers in WAL mode?");
    CHECK(hard["saem"]["route"] == "remote");
    CHECK(hard["saem"]["route_reason"].get<std::string>().find("reasoning ('why')") != std::string::npos);
    CHECK(hard["saem"]["note"].get<std::string>().find("Generated by large") != std::string::npos);
    CHECK(!hard["citations"].empty());
    CHECK(hard["usage"]["completion_tokens"].get<int>() > 0);  // the remote server's count
    // The large server saw the request: the answer came from it.
    std::string metrics = large.client().Get("/metrics")->body;
    CHECK(metrics.find(R"(saem_requests_total{route="/v1/chat/completions",status="200"} 1)") != std::string::npos);

    // Streamed through as it arrives: the same text as unstreamed (greedy).
    Streamed st = stream_chat(c, {{"model", "samples"}, {"temperature", 0}, {"messages", {{{"role", "user"}, {"content", "Why do readers not block writers in WAL mode?"}}}}});
    CHECK(st.text == hard["choices"][0]["message"]["content"].get<std::string>());
    CHECK(st.chunks[st.chunks.size() - 2]["saem"]["route"] == "remote");

    // /v1/ask reports the route too; a plain chat names the remote model.
    json asked = post(c, "/v1/ask", {{"question", "Why do readers not block writers in WAL mode?"}, {"collection", "samples"}});
    CHECK(asked["route"] == "remote");
    CHECK(asked["model"] == "large");
    json plain = post(c, "/v1/chat/completions", {{"model", "large"}, {"max_tokens", 5}, {"messages", {{{"role", "user"}, {"content", "Once"}}}}});
    CHECK(plain["saem"]["route"] == "remote");
    CHECK(plain["usage"]["completion_tokens"] == 5);
    // /metrics: retrieval and generation stages, tokens by route.
    metrics = c.Get("/metrics")->body;
    auto value = [&](const std::string &sample) {
        size_t at = metrics.find(sample + " ");
        return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + sample.size() + 1));
    };
    CHECK(value(R"(saem_stage_seconds_count{stage="lexical"})") >= 4);
    CHECK(value(R"(saem_stage_seconds_count{stage="read"})") >= 4);
    CHECK(value(R"(saem_stage_seconds_count{stage="prompt"})") >= 4);
    CHECK(value(R"(saem_stage_seconds_count{stage="generation"})") >= 4);
    CHECK(value(R"(saem_stage_seconds_count{stage="dense"})") == -1);  // no encoder: no dense stage ran
    CHECK(value(R"(saem_tokens_total{route="local",kind="generated"})") == easy["usage"]["completion_tokens"].get<double>());
    CHECK(value(R"(saem_tokens_total{route="remote",kind="generated"})") >= hard["usage"]["completion_tokens"].get<double>() + 5);
    CHECK(value(R"(saem_tokens_total{route="remote",kind="prompt"})") > 0);

    json models = json::parse(c.Get("/v1/models")->body);
    bool listed = false;
    for (const auto &m : models["data"]) listed |= m["id"] == "large" && m["saem_role"] == "remote_decoder";
    CHECK(listed);
}

TEST_CASE("a failing remote server: bounded retries, then the local model or the extractive answer, never a 500") {
    TempDir dir;
    const std::string db = small_index(dir);
    // A server that answers every chat completion with 503, counting the attempts.
    std::atomic<int> attempts{0};
    httplib::Server broken;
    broken.Post("/v1/chat/completions", [&](const httplib::Request &, httplib::Response &res) {
        ++attempts;
        res.status = 503;
        res.set_content(R"({"error": {"message": "overloaded", "type": "server_error"}})", "application/json");
    });
    int broken_port = broken.bind_to_any_port("127.0.0.1");
    std::thread broken_thread([&] { broken.listen_after_bind(); });
    const std::string broken_url = "http://127.0.0.1:" + std::to_string(broken_port) + "/v1";
    json question = {{"question", "What does the parameter b control?"}};

    {
        ServerOptions o;
        o.db = db;
        o.max_answer_tokens = 16;
        o.remote = remote_at(broken_url, "large", 2);
        Serving s(o);
        json a = post(s.client(), "/v1/ask", question);
        CHECK(attempts == 3);  // the first try and two retries
        CHECK(a["route"] == "extractive");
        CHECK(a["route_reason"].get<std::string>().find("503: overloaded") != std::string::npos);
        CHECK(a["found"] == true);
        CHECK(a["answer"].get<std::string>().find("The parameter b controls length normalisation.") == 0);
        // Streamed, the fallback answer arrives the same way.
        auto r = s.client().Post("/v1/ask", json{{"question", "What does the parameter b control?"}, {"stream", true}}.dump(), "application/json");
        REQUIRE(r);
        auto events = sse_data(r->body);
        REQUIRE(!events.empty());
        CHECK(events.back()["route"] == "extractive");
    }
    {
        // Nothing listens: the local model answers.
        ServerOptions o;
        o.db = db;
        o.decoder = stories_decoder();
        o.max_answer_tokens = 8;
        o.remote = remote_at("http://127.0.0.1:1/v1", "large", 1);
        o.router.policy = RoutePolicy::remote;
        Serving s(o);
        json a = post(s.client(), "/v1/ask", question);
        CHECK(a["route"] == "local");
        CHECK(a["route_reason"].get<std::string>().find("route remote (configured); the remote model failed") == 0);
        CHECK(a["route_reason"].get<std::string>().find("the local model answered") != std::string::npos);
        CHECK(a["method"] == "generated");
        // A plain chat with the remote model has no fallback but the local model's.
        json p = post(s.client(), "/v1/chat/completions", {{"model", "large"}, {"max_tokens", 4}, {"messages", {{{"role", "user"}, {"content", "Once"}}}}});
        CHECK(p["saem"]["route"] == "local");
    }
    {
        // A plain chat with a remote model that fails and no local one: 502, not 500.
        ServerOptions o;
        o.db = db;
        o.remote = remote_at(broken_url, "large", 0);
        Serving s(o);
        json e = post(s.client(), "/v1/chat/completions", {{"model", "large"}, {"messages", {{{"role", "user"}, {"content", "Once"}}}}}, 502);
        CHECK(e["error"]["code"] == "remote_failed");
    }
    // A 4xx is the remote's answer to this request: not retried.
    attempts = 0;
    RemoteOptions ro;
    ro.url = broken_url;
    httplib::Server refusing;
    refusing.Post("/v1/chat/completions", [&](const httplib::Request &, httplib::Response &res) {
        ++attempts;
        res.status = 400;
        res.set_content(R"({"error": {"message": "bad model"}})", "application/json");
    });
    int refusing_port = refusing.bind_to_any_port("127.0.0.1");
    std::thread refusing_thread([&] { refusing.listen_after_bind(); });
    ro.url = "http://127.0.0.1:" + std::to_string(refusing_port) + "/v1";
    RemoteChat remote(ro);
    CHECK_THROWS_WITH_AS(remote.chat({{"user", "hi"}}, {}, {}), doctest::Contains("400: bad model"), RemoteError);
    CHECK(attempts == 1);
    RemoteOptions ftp;
    ftp.url = "ftp://x";
    CHECK_THROWS_AS(RemoteChat{ftp}, std::invalid_argument);
    refusing.stop();
    refusing_thread.join();
    broken.stop();
    broken_thread.join();
}

TEST_CASE("a remote answer ends when its client hangs up or the server stops, even while the remote is silent; a broken stream") {
    TempDir dir;
    const std::string db = small_index(dir);
    // A remote server that sends its headers and then nothing until released, noting when its
    // client (saem) goes away.
    std::atomic<bool> release{false}, abandoned{false};
    std::atomic<int> requests{0};
    FakeRemote silent([&](const httplib::Request &, httplib::Response &res) {
        ++requests;
        res.set_chunked_content_provider("text/event-stream", [&](size_t, httplib::DataSink &sink) {
            for (int i = 0; i < 200 && !release; ++i) {
                if (!sink.is_writable()) {
                    abandoned = true;
                    return false;
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
            sink.done();
            return true;
        });
    });
    const json question = {{"question", "What does the parameter b control?"}};
    {
        ServerOptions o;
        o.db = db;
        o.max_answer_tokens = 16;
        o.remote = remote_at(silent.url(), "large", 0);
        Serving s(o);
        // The client gives up after 1 s; saem lets go of the remote request at once.
        httplib::Client impatient("127.0.0.1", s.port);
        impatient.set_read_timeout(1, 0);
        CHECK_FALSE(impatient.Post("/v1/ask", question.dump(), "application/json"));
        for (int i = 0; i < 40 && !abandoned; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        CHECK(abandoned);
        CHECK(requests == 1);
        // stop() ends an answer the remote has not started: the server stops in well under the
        // remote's silence (10 s).
        abandoned = false;
        std::thread waiting([&] { s.client().Post("/v1/ask", question.dump(), "application/json"); });
        for (int i = 0; i < 40 && requests < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        REQUIRE(requests == 2);
        auto t0 = std::chrono::steady_clock::now();
        s.server->stop();
        s.thread.join();
        s.thread = std::thread([] {});  // ~Serving stops and joins again: harmless
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3));
        waiting.join();
    }
    release = true;

    // A stream that breaks after its first piece: unstreamed, nobody saw the piece and the answer
    // falls back; streamed, the client has it and the stream ends in an error event.
    FakeRemote breaking([&](const httplib::Request &, httplib::Response &res) {
        res.set_content("data: {\"choices\":[{\"delta\":{\"content\":\"Partly\"},\"finish_reason\":null}]}\n\n"
                        "data: {\"error\": {\"message\": \"the GPU fell over\"}}\n\n",
                        "text/event-stream");
    });
    ServerOptions o;
    o.db = db;
    o.max_answer_tokens = 16;
    o.remote = remote_at(breaking.url(), "large", 2);
    Serving s(o);
    json a = post(s.client(), "/v1/ask", question);
    CHECK(a["route"] == "extractive");
    CHECK(a["route_reason"].get<std::string>().find("the GPU fell over") != std::string::npos);
    auto r = s.client().Post("/v1/ask", json{{"question", "What does the parameter b control?"}, {"stream", true}}.dump(), "application/json");
    REQUIRE(r);
    CHECK(r->body.find("data: {\"text\":\"Partly\"}") != std::string::npos);
    CHECK(r->body.find("event: error\ndata: {\"error\":{\"code\":\"remote_failed\"") != std::string::npos);
    CHECK(r->body.find("event: done") == std::string::npos);
}
