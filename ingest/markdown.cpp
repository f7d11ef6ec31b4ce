// Markdown: heading paths from ATX (#) and setext (===, ---) headings, fenced code kept verbatim
// and never read as headings, YAML-style front matter (flat "key: value" lines) as metadata.
#include "ingest/loaders.h"

#include <vector>

namespace saem::loaders {

namespace {

std::string trim(std::string_view s) {
    size_t b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
    return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> lines;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        if (nl == std::string_view::npos) { lines.push_back(text.substr(pos)); break; }
        lines.push_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    return lines;
}

// Level 1-6 and the heading text if line is an ATX heading.
int atx_level(std::string_view line, std::string &title) {
    size_t indent = line.find_first_not_of(' ');
    if (indent == std::string_view::npos || indent > 3) return 0;
    line.remove_prefix(indent);
    int level = 0;
    while (level < int(line.size()) && line[size_t(level)] == '#') ++level;
    if (level == 0 || level > 6) return 0;
    if (size_t(level) < line.size() && line[size_t(level)] != ' ' && line[size_t(level)] != '\t') return 0;
    std::string t = trim(line.substr(size_t(level)));
    size_t closing = t.find_last_not_of('#');  // optional closing sequence "## Title ##"
    if (closing != std::string::npos && closing + 1 < t.size() && (t[closing] == ' ' || t[closing] == '\t'))
        t = trim(std::string_view(t).substr(0, closing));
    title = t;
    return level;
}

bool is_fence(std::string_view line, std::string_view &fence) {
    std::string t = trim(line);
    if (t.size() < 3) return false;
    if (t.compare(0, 3, "```") == 0) { fence = "```"; return true; }
    if (t.compare(0, 3, "~~~") == 0) { fence = "~~~"; return true; }
    return false;
}

bool all_of_char(std::string_view line, char c) {
    std::string t = trim(line);
    return !t.empty() && t.find_first_not_of(c) == std::string::npos;
}

}  // namespace

LoadedDocument markdown(std::string_view utf8) {
    LoadedDocument doc;
    std::vector<std::string_view> lines = lines_of(utf8);
    size_t i = 0;
    if (!lines.empty() && trim(lines[0]) == "---") {
        for (size_t j = 1; j < lines.size(); ++j) {
            if (trim(lines[j]) == "---" || trim(lines[j]) == "...") {
                for (size_t k = 1; k < j; ++k) {
                    size_t colon = lines[k].find(':');
                    if (colon == std::string_view::npos) continue;
                    std::string key = trim(lines[k].substr(0, colon)), value = trim(lines[k].substr(colon + 1));
                    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
                        value = value.substr(1, value.size() - 2);
                    if (!key.empty() && !value.empty()) doc.metadata[key] = value;
                }
                if (doc.metadata.contains("title")) doc.title = doc.metadata["title"].get<std::string>();
                i = j + 1;
                break;
            }
        }
    }

    std::vector<std::string> path;  // heading text per level
    auto heading_path = [&] {
        std::string h;
        for (const auto &p : path) {
            if (p.empty()) continue;
            if (!h.empty()) h += " › ";
            h += p;
        }
        return h;
    };
    auto set_heading = [&](int level, const std::string &text) {
        path.resize(size_t(level));
        path[size_t(level) - 1] = text;
        if (level == 1 && doc.title.empty()) doc.title = text;
    };

    std::string section;  // text since the last heading
    auto flush = [&] {
        add_paragraphs(doc, section, heading_path());
        section.clear();
    };
    std::string_view fence;
    bool in_fence = false;
    for (; i < lines.size(); ++i) {
        std::string_view line = lines[i];
        std::string_view f;
        if (in_fence) {
            section += line;
            section += '\n';
            if (is_fence(line, f) && f == fence) in_fence = false;
            continue;
        }
        if (is_fence(line, f)) {
            in_fence = true;
            fence = f;
            section += line;
            section += '\n';
            continue;
        }
        std::string title;
        if (int level = atx_level(line, title)) {
            flush();
            set_heading(level, title);
            continue;
        }
        // Setext: a text line underlined by === (level 1) or --- (level 2).
        bool prev_text = !section.empty() && section.back() == '\n' && section.size() >= 2 && section[section.size() - 2] != '\n';
        if (prev_text && (all_of_char(line, '=') || all_of_char(line, '-'))) {
            size_t start = section.find_last_of('\n', section.size() - 2);
            start = start == std::string::npos ? 0 : start + 1;
            std::string text = trim(std::string_view(section).substr(start, section.size() - 1 - start));
            section.resize(start);
            if (!text.empty()) {
                flush();
                set_heading(all_of_char(line, '=') ? 1 : 2, text);
                continue;
            }
        }
        section += line;
        section += '\n';
    }
    flush();
    return doc;
}

}  // namespace saem::loaders
