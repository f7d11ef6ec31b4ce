#include "api/api.h"
#include "api/fields.h"

#include <algorithm>
#include <stdexcept>
#include <string_view>

namespace saem {

using nlohmann::json;

json to_json(const Hit &h) {
    return {{"chunk_id", h.chunk_id}, {"document_id", h.document_id}, {"path", h.path}, {"title", h.title},
            {"heading", h.heading}, {"page", h.page}, {"ordinal", h.ordinal}, {"score", h.score},
            {"snippet", h.snippet}, {"text", h.text}};
}

json to_json(const Answer &a) {
    json citations = json::array(), sentences = json::array();
    for (const auto &c : a.citations)
        citations.push_back({{"number", c.number}, {"path", c.path}, {"title", c.title}, {"heading", c.heading},
                             {"page", c.page}, {"document_id", c.document_id}, {"chunk_id", c.chunk_id}, {"text", c.text}});
    for (const auto &s : a.sentences)
        sentences.push_back({{"text", s.text}, {"citation", s.citation}, {"citations", s.citations}, {"score", s.score},
                             {"supported", s.supported}, {"support", s.support}});
    json out = {{"found", a.found}, {"answer", a.text}, {"method", a.method}, {"note", a.note},
                {"sentences", sentences}, {"citations", citations}};
    if (a.method == "generated") {
        out["model"] = a.model;
        out["usage"] = {{"prompt_tokens", a.prompt_tokens}, {"completion_tokens", a.completion_tokens},
                        {"total_tokens", a.prompt_tokens + a.completion_tokens}};
        out["stop_reason"] = a.stop_reason;
    }
    if (!a.route.empty()) {
        out["route"] = a.route;
        out["route_reason"] = a.route_reason;
    }
    return out;
}

json to_json(const DocumentInfo &d) {
    return {{"id", d.id}, {"path", d.path}, {"title", d.title}, {"format", d.format}, {"hash", d.hash},
            {"size", d.size}, {"mtime_ns", d.mtime_ns}, {"indexed_at", d.indexed_at}, {"chunks", d.chunks},
            {"metadata", d.metadata}};
}

json to_json(const Stats &s) {
    return {{"documents", s.documents}, {"chunks", s.chunks}, {"skipped_files", s.skipped}, {"vectors", s.vectors},
            {"encoder", s.encoder}, {"vector_index", s.vector_index}, {"db_bytes", s.db_bytes},
            {"schema_version", s.schema_version}};
}

namespace {
[[noreturn]] void invalid(const std::string &message) { throw RequestError("invalid_field", message); }
}  // namespace

namespace fields {

const json *find(const json &body, const char *field) {
    auto it = body.find(field);
    return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::string required_string(const json &body, const char *field) {
    const json *v = find(body, field);
    if (!v) throw RequestError("missing_field", std::string("'") + field + "' is required");
    if (!v->is_string()) invalid(std::string("'") + field + "' must be a string");
    return v->get<std::string>();
}

std::string bounded_string(const json &body, const char *field, size_t max_bytes) {
    std::string s = required_string(body, field);
    if (s.size() > max_bytes)
        invalid(std::string("'") + field + "' is " + std::to_string(s.size()) + " bytes; the limit is " + std::to_string(max_bytes));
    return s;
}

int bounded_int(const json &body, const char *field, int fallback, int lo, int hi) {
    const json *v = find(body, field);
    if (!v) return fallback;
    if (!v->is_number_integer() || v->get<int64_t>() < lo || v->get<int64_t>() > hi)
        invalid(std::string("'") + field + "' must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    return int(v->get<int64_t>());
}

double bounded_number(const json &body, const char *field, double fallback, double lo, double hi) {
    const json *v = find(body, field);
    if (!v) return fallback;
    if (!v->is_number() || v->get<double>() < lo || v->get<double>() > hi)
        invalid(std::string("'") + field + "' must be a number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return v->get<double>();
}

bool optional_bool(const json &body, const char *field, bool fallback) {
    const json *v = find(body, field);
    if (!v) return fallback;
    if (!v->is_boolean()) invalid(std::string("'") + field + "' must be true or false");
    return v->get<bool>();
}

}  // namespace fields

Filter filter_from_json(const json &j) {
    Filter f;
    if (j.is_null()) return f;
    if (!j.is_object()) invalid("'filter' must be an object");
    for (const auto &[key, value] : j.items()) {
        if (key == "path_prefix") {
            if (!value.is_string()) invalid("'filter.path_prefix' must be a string");
            f.path_prefix = value.get<std::string>();
        } else if (key == "metadata") {
            if (!value.is_object()) invalid("'filter.metadata' must be an object");
            for (const auto &[mk, mv] : value.items()) f.metadata.emplace_back(mk, mv);
        } else {
            invalid("unknown filter field '" + key + "' (path_prefix, metadata)");
        }
    }
    return f;
}

SearchRequest search_request_from_json(const json &body, const char *text_field, int default_k, int max_k, size_t max_text) {
    SearchRequest r;
    r.query = fields::bounded_string(body, text_field, max_text);
    r.k = fields::bounded_int(body, "k", default_k, 1, max_k);
    if (const json *mode = fields::find(body, "mode")) {
        if (!mode->is_string()) invalid("'mode' must be lexical, dense or hybrid");
        r.mode = parse_mode(mode->get<std::string>());
    }
    if (const json *filter = fields::find(body, "filter")) r.filter = filter_from_json(*filter);
    if (const json *m = fields::find(body, "mmr"); m && *m != false) {
        if (*m == true) r.mmr_lambda = default_mmr_lambda;
        else if (m->is_number() && m->get<double>() >= 0 && m->get<double>() <= 1) r.mmr_lambda = m->get<double>();
        else invalid("'mmr' must be true or a lambda from 0 (diverse) to 1 (relevant)");
    }
    r.rerank = fields::optional_bool(body, "rerank", false);
    return r;
}

SearchRequest for_answers(SearchRequest r) {
    r.snippets = false;
    r.term_idf = true;
    return r;
}

}  // namespace saem
