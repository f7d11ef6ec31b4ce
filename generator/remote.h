// generator/remote.h: an OpenAI-compatible chat server as a ChatModel (vLLM, llama.cpp's server,
// Ollama, another saem): retrieval stays here, generation runs on an existing serving engine.
//
// Each chat() is one POST {url}/chat/completions with "stream": true; the pieces are passed on as
// the server's chat.completion.chunk events arrive. A failure before the first piece (no
// connection, a timeout, a 5xx or 429 answer, a broken stream) is retried up to `retries` times
// with a short backoff; then RemoteError. A failure after text has been passed on is not retried
// (the client has that text): the generation ends there with stop_reason "error". Setting
// GenerateOptions::cancel aborts the request within 50 ms, even while the server is silent.
//
// Threads: any number of threads may call chat() at once; each call has its own connection.
#pragma once

#include "generator/generator.h"

#include <stdexcept>
#include <string>

namespace saem {

struct RemoteOptions {
    std::string url;      // base URL that /chat/completions is appended to, e.g. http://127.0.0.1:8000/v1
    std::string model;    // the "model" sent; "": none is sent (servers of one model, such as llama.cpp's, take that)
    std::string api_key;  // sent as Authorization: Bearer KEY when set
    int context_tokens = 8192;     // the remote model's context: sources are fitted to it
    double connect_timeout = 3;    // seconds to connect
    double read_timeout = 60;      // seconds of silence before a request is given up
    int retries = 2;               // further attempts after a failure before any text arrived
};

struct RemoteError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class RemoteChat : public ChatModel {
public:
    // Throws std::invalid_argument for a URL that is not http:// or https://.
    explicit RemoteChat(RemoteOptions options);
    std::string name() const override;
    int context_length() const override { return options_.context_tokens; }
    // An estimate: the remote tokenizer is not known here. One token per 3 bytes errs on the side
    // of fewer sources (English BPE averages about 4 bytes per token).
    int prompt_tokens(const std::vector<ChatMessage> &messages) const override;
    Generation chat(const std::vector<ChatMessage> &messages, const GenerateOptions &options, const TextSink &on_text) override;
    const RemoteOptions &options() const { return options_; }

private:
    RemoteOptions options_;
    std::string origin_, path_;  // scheme://host[:port] and the base path
};

}  // namespace saem
