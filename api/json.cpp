#include "api/api.h"

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
                             {"page", c.page}, {"document_id", c.document_id}, {"chunk_id", c.chunk_id}});
    for (const auto &s : a.sentences) sentences.push_back({{"text", s.text}, {"citation", s.citation}, {"score", s.score}});
    return {{"found", a.found}, {"answer", a.text}, {"method", a.method}, {"note", a.note},
            {"sentences", sentences}, {"citations", citations}};
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
    auto field = [&](const char *name) -> const json * {
        auto it = body.find(name);
        return it == body.end() || it->is_null() ? nullptr : &*it;
    };
    const json *text = field(text_field);
    if (!text) throw RequestError("missing_field", std::string("'") + text_field + "' is required");
    if (!text->is_string()) invalid(std::string("'") + text_field + "' must be a string");
    r.query = text->get<std::string>();
    if (r.query.size() > max_text)
        invalid(std::string("'") + text_field + "' is " + std::to_string(r.query.size()) + " bytes; the limit is " +
                std::to_string(max_text));
    r.k = default_k;
    if (const json *k = field("k")) {
        if (!k->is_number_integer() || k->get<int64_t>() < 1 || k->get<int64_t>() > max_k)
            invalid("'k' must be an integer from 1 to " + std::to_string(max_k));
        r.k = int(k->get<int64_t>());
    }
    if (const json *mode = field("mode")) {
        if (!mode->is_string()) invalid("'mode' must be lexical, dense or hybrid");
        r.mode = parse_mode(mode->get<std::string>());
    }
    if (const json *filter = field("filter")) r.filter = filter_from_json(*filter);
    if (const json *m = field("mmr"); m && *m != false) {
        if (*m == true) r.mmr_lambda = 0.7;
        else if (m->is_number() && m->get<double>() >= 0 && m->get<double>() <= 1) r.mmr_lambda = m->get<double>();
        else invalid("'mmr' must be true or a lambda from 0 (diverse) to 1 (relevant)");
    }
    if (const json *rr = field("rerank")) {
        if (!rr->is_boolean()) invalid("'rerank' must be true or false");
        r.rerank = rr->get<bool>();
    }
    return r;
}

SearchRequest for_answers(SearchRequest r) {
    r.snippets = false;
    r.term_idf = true;
    return r;
}

int json_depth(std::string_view text) {
    int depth = 0, deepest = 0;
    bool in_string = false, escaped = false;
    for (char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
    return deepest;
}

}  // namespace saem
