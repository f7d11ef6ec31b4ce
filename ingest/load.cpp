#include "ingest/loaders.h"

#include <utf8proc.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace saem {

std::optional<std::string> format_for_path(const std::filesystem::path &path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (ext == ".txt" || ext == ".text") return "txt";
    if (ext == ".md" || ext == ".markdown") return "md";
    if (ext == ".html" || ext == ".htm" || ext == ".xhtml") return "html";
    if (ext == ".pdf") return "pdf";
    return std::nullopt;
}

std::string content_hash(std::string_view bytes) {
    XXH128_hash_t h = XXH3_128bits(bytes.data(), bytes.size());
    char buf[33];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                  static_cast<unsigned long long>(h.low64));
    return buf;
}

LoadedDocument load_document(std::string_view bytes, const std::string &format, const std::string &name) {
    if (bytes.empty()) throw LoadError("empty file");
    LoadedDocument doc;
    if (format == "pdf") {
        doc = loaders::pdf(bytes);
    } else {
        if (bytes.substr(0, std::min<size_t>(bytes.size(), 8192)).find('\0') != std::string_view::npos)
            throw LoadError("binary content (NUL bytes), not " + format + " text");
        size_t bad = nn::find_invalid_utf8(bytes);
        if (bad != std::string_view::npos)
            throw LoadError("invalid UTF-8 at byte " + std::to_string(bad) + " (saem reads UTF-8 text only)");
        std::string text = loaders::normalise(bytes);
        if (format == "txt") doc = loaders::text(text);
        else if (format == "md") doc = loaders::markdown(text);
        else if (format == "html") doc = loaders::html(text);
        else throw LoadError("unsupported format '" + format + "' (txt, md, html, pdf)");
    }
    doc.format = format;
    if (doc.title.empty()) doc.title = std::filesystem::path(name).filename().string();
    if (doc.blocks.empty()) throw LoadError("no text content");
    return doc;
}

namespace loaders {

std::string normalise(std::string_view utf8) {
    if (utf8.substr(0, 3) == "\xEF\xBB\xBF") utf8.remove_prefix(3);
    std::string out;
    out.reserve(utf8.size());
    bool ascii = true;
    for (size_t i = 0; i < utf8.size(); ++i) {
        char c = utf8[i];
        if (c == '\r') {
            if (i + 1 < utf8.size() && utf8[i + 1] == '\n') continue;
            c = '\n';
        }
        unsigned char u = static_cast<unsigned char>(c);
        if (u < 0x20 && c != '\n' && c != '\t') continue;
        if (u == 0x7f) continue;
        ascii &= u < 0x80;
        out += c;
    }
    if (ascii) return out;
    utf8proc_uint8_t *nfc = nullptr;
    auto opts = utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(out.data()),
                                      utf8proc_ssize_t(out.size()), &nfc, opts);
    if (n < 0) throw LoadError(std::string("text normalisation failed: ") + utf8proc_errmsg(n));
    std::string result(reinterpret_cast<char *>(nfc), size_t(n));
    std::free(nfc);
    // C1 controls survive NFC; drop them as the ASCII controls above.
    std::string clean;
    clean.reserve(result.size());
    for (size_t i = 0; i < result.size(); ++i) {
        if (static_cast<unsigned char>(result[i]) == 0xC2 && i + 1 < result.size() &&
            static_cast<unsigned char>(result[i + 1]) >= 0x80 && static_cast<unsigned char>(result[i + 1]) <= 0x9F) {
            ++i;
            continue;
        }
        clean += result[i];
    }
    return clean;
}

void add_paragraphs(LoadedDocument &doc, std::string_view text, const std::string &heading, int page) {
    auto is_blank = [](std::string_view line) {
        return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t'; });
    };
    std::string para;
    auto flush = [&] {
        size_t b = para.find_first_not_of(" \t\n"), e = para.find_last_not_of(" \t\n");
        if (b != std::string::npos) doc.blocks.push_back({para.substr(b, e - b + 1), heading, page});
        para.clear();
    };
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (is_blank(line)) {
            flush();
        } else {
            if (!para.empty()) para += '\n';
            para += line;
        }
        if (nl == std::string_view::npos) break;
        pos = nl + 1;
    }
    flush();
}

LoadedDocument text(std::string_view utf8) {
    LoadedDocument doc;
    add_paragraphs(doc, utf8, "");
    return doc;
}

}  // namespace loaders
}  // namespace saem
