// Shared by the suites that talk HTTP to a Server: one on a free port, a stand-in remote server,
// and small request helpers.
#pragma once

#include "api/api.h"

#include <doctest/doctest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

// A stand-in remote server: an httplib::Server on a free port, on its own thread.
struct FakeRemote {
    httplib::Server http;
    std::thread thread;
    int port = 0;
    explicit FakeRemote(const std::function<void(const httplib::Request &, httplib::Response &)> &chat) {
        http.Post("/v1/chat/completions", chat);
        port = http.bind_to_any_port("127.0.0.1");
        thread = std::thread([this] { http.listen_after_bind(); });
    }
    ~FakeRemote() {
        http.stop();
        thread.join();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }
};

// A server on a free port, listening on its own thread until destroyed.
struct Serving {
    std::unique_ptr<saem::Server> server;
    std::thread thread;
    int port = 0;
    explicit Serving(saem::ServerOptions o) : server(std::make_unique<saem::Server>(std::move(o))) {
        port = server->bind("127.0.0.1", 0);
        REQUIRE(port > 0);
        thread = std::thread([this] { server->listen(); });
    }
    ~Serving() {
        server->stop();
        thread.join();
    }
    httplib::Client client() const {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(60, 0);
        return c;
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1"; }
};

nlohmann::json post(httplib::Client &c, const std::string &path, const nlohmann::json &body, int status = 200) {
    auto r = c.Post(path, body.dump(), "application/json");
    REQUIRE(r);
    CAPTURE(r->body);
    CHECK(r->status == status);
    nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    return j;
}

nlohmann::json post(httplib::Client &&c, const std::string &path, const nlohmann::json &body, int status = 200) { return post(c, path, body, status); }

// The data: lines of a server-sent event stream, parsed; "[DONE]" as the string "[DONE]".
std::vector<nlohmann::json> sse_data(const std::string &body) {
    std::vector<nlohmann::json> out;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("data: ", 0) != 0) continue;
        std::string d = line.substr(6);
        out.push_back(d == "[DONE]" ? nlohmann::json("[DONE]") : nlohmann::json::parse(d));
    }
    return out;
}

}  // namespace
