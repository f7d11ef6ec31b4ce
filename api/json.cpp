#include "api/api.h"

#include <stdexcept>

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
    return {{"documents", s.documents}, {"chunks", s.chunks}, {"skipped_files", s.skipped},
            {"db_bytes", s.db_bytes}, {"schema_version", s.schema_version}};
}

Filter filter_from_json(const json &j) {
    Filter f;
    if (j.is_null()) return f;
    if (!j.is_object()) throw std::invalid_argument("'filter' must be an object");
    for (const auto &[key, value] : j.items()) {
        if (key == "path_prefix") {
            if (!value.is_string()) throw std::invalid_argument("'filter.path_prefix' must be a string");
            f.path_prefix = value.get<std::string>();
        } else if (key == "metadata") {
            if (!value.is_object()) throw std::invalid_argument("'filter.metadata' must be an object");
            for (const auto &[mk, mv] : value.items()) f.metadata.emplace_back(mk, mv);
        } else {
            throw std::invalid_argument("unknown filter field '" + key + "' (path_prefix, metadata)");
        }
    }
    return f;
}

}  // namespace saem
