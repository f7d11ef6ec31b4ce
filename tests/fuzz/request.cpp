// HTTP request bodies as the server reads them: the nesting limit before any parse, then the JSON
// parse and the search fields (query, k, mode, filter, mmr, rerank) as /v1/search and /v1/ask take
// them. The first byte picks the text field ("query" or "question").
#include "api/api.h"
#include "fuzz.h"
#include "nn/text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    std::string_view text = fuzz::bytes(data + 1, size - 1);
    if (saem::nn::json_depth(text) > 64) return 0;  // the server's 400, before parsing
    auto body = nlohmann::json::parse(text, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return 0;
    try {
        auto request = saem::search_request_from_json(body, data[0] & 1 ? "question" : "query", 5, 100, 8192);
        fuzz::require(request.k >= 1 && request.k <= 100, "k within its bounds");
        fuzz::require(request.query.size() <= 8192, "query within its limit");
        saem::for_answers(request);
    } catch (const saem::RequestError &) {
    }
    return 0;
}
