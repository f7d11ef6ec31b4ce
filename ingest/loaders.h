// Format loaders, private to ingest. Each gets bytes already checked by load_document.
#pragma once

#include "ingest/ingest.h"

namespace saem::loaders {

LoadedDocument text(std::string_view utf8);
LoadedDocument markdown(std::string_view utf8);
LoadedDocument html(std::string_view utf8);
LoadedDocument pdf(std::string_view bytes);

// NFC, LF line ends, no BOM, no control characters other than tab and newline.
std::string normalise(std::string_view utf8);
// Appends the blank-line-separated paragraphs of text as blocks.
void add_paragraphs(LoadedDocument &doc, std::string_view text, const std::string &heading, int page = 0);

}  // namespace saem::loaders
