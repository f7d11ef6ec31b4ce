// One loader's target: parse the bytes as the format, then chunk what it gave, as indexing does;
// each chunk's text must be the span of the document text it claims.
#pragma once

#include "fuzz.h"
#include "ingest/ingest.h"

inline int fuzz_document(const uint8_t *data, size_t size, const char *format) {
    try {
        auto doc = saem::load_document(fuzz::bytes(data, size), format, "fuzzed");
        saem::ChunkOptions o;
        o.max_tokens = 64;
        o.overlap_tokens = 8;
        const std::string text = saem::document_text(doc);
        for (const auto &c : saem::chunk_document(doc, o))
            fuzz::require(c.begin <= c.end && size_t(c.end) <= text.size() && text.compare(size_t(c.begin), size_t(c.end - c.begin), c.text) == 0,
                          "a chunk is its span of the document text");
    } catch (const saem::LoadError &) {
    }
    return 0;
}
