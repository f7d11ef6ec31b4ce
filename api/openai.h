// api/openai.h: the shapes of OpenAI's chat completions API, as saem reads and writes them
// (https://platform.openai.com/docs/api-reference/chat). Pure functions: any thread.
#pragma once

#include "generator/generator.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace saem::openai {

struct ChatRequest {
    std::string model;                  // "" when the request names none
    std::vector<ChatMessage> messages;  // roles system (and "developer"), user, assistant
    bool stream = false, include_usage = false;
    GenerateOptions generation;  // max_tokens / max_completion_tokens, temperature, top_p, seed, stop
    nlohmann::json saem = nlohmann::json::object();  // saem's extension: retrieval options, "method"
};

// Throws RequestError (invalid_field, missing_field) for what saem cannot honour: n other than 1,
// tools, a message with a role or content part it does not take.
ChatRequest parse_chat_request(const nlohmann::json &body, int default_max_tokens);

// OpenAI's finish_reason of a Generation::stop_reason.
const char *finish_reason(const std::string &stop_reason);
std::string completion_id();  // "chatcmpl-" and 24 random hex digits

// saem's fields beside the standard ones: "citations" (numbered, with the cited passage) and
// "saem" (found, method, route, route_reason, note, collection, mode).
void add_extension(nlohmann::json &out, const Answer &answer, const std::string &collection, const std::string &mode);
// A whole chat.completion for answer.
nlohmann::json completion(const std::string &id, int64_t created, const std::string &model, const Answer &answer);
// One chat.completion.chunk with this delta and finish_reason (null while the answer goes on).
nlohmann::json chunk(const std::string &id, int64_t created, const std::string &model, const nlohmann::json &delta,
                     const nlohmann::json &finish_reason);
nlohmann::json usage(const Answer &answer);

// The answer of a plain chat (no retrieval) from the model's generation.
Answer chat_answer(const Generation &g, const std::string &model);

}  // namespace saem::openai
