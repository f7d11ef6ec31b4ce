// PDF via poppler-cpp: text per page in reading order; each page's paragraphs keep its number.
#include "ingest/loaders.h"

#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include <memory>
#include <mutex>

namespace saem::loaders {

namespace {

// PDF text has line breaks but no paragraph marks. A short line that ends without punctuation
// and is followed by a capitalised line is a heading or a caption: give it a paragraph of its own,
// so it is not read as the start of the next sentence.
std::string separate_heading_lines(const std::string &text) {
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string::npos) nl = text.size();
        std::string_view line(text.data() + pos, nl - pos);
        out += line;
        if (nl < text.size()) {
            out += '\n';
            size_t end = line.find_last_not_of(" \t");
            char last = end == std::string_view::npos ? '.' : line[end];
            char next = nl + 1 < text.size() ? text[nl + 1] : '\n';
            bool bare = std::string_view(".!?:;,-").find(last) == std::string_view::npos;
            if (bare && line.size() < 60 && ((next >= 'A' && next <= 'Z') || (next >= '0' && next <= '9')))
                out += '\n';
        }
        pos = nl + 1;
    }
    return out;
}

}  // namespace

LoadedDocument pdf(std::string_view bytes) {
    static std::once_flag quiet;
    // Poppler prints parse warnings to stderr; a damaged PDF is reported once, as a LoadError.
    std::call_once(quiet, [] { poppler::set_debug_error_function([](const std::string &, void *) {}, nullptr); });
    if (bytes.substr(0, 5) != "%PDF-") throw LoadError("not a PDF file (no %PDF- header)");
    std::unique_ptr<poppler::document> pdf(poppler::document::load_from_raw_data(bytes.data(), int(bytes.size())));
    if (!pdf) throw LoadError("damaged or unreadable PDF");
    if (pdf->is_locked()) throw LoadError("encrypted PDF (password required)");
    LoadedDocument doc;
    poppler::ustring title = pdf->get_title();
    if (!title.empty()) {
        auto utf8 = title.to_utf8();
        doc.title = normalise(std::string_view(utf8.data(), utf8.size()));
    }
    int pages = pdf->pages();
    doc.metadata["pages"] = pages;
    for (int i = 0; i < pages; ++i) {
        std::unique_ptr<poppler::page> page(pdf->create_page(i));
        if (!page) continue;
        auto utf8 = page->text().to_utf8();
        std::string_view raw(utf8.data(), utf8.size());
        if (nn::find_invalid_utf8(raw) != std::string_view::npos) continue;
        add_paragraphs(doc, separate_heading_lines(normalise(raw)), "", i + 1);
    }
    return doc;
}

}  // namespace saem::loaders
