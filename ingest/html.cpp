// HTML via gumbo (an HTML5-conformant parser: entities decoded, broken markup repaired as browsers
// do). Kept: title, headings (as heading paths), text of block elements as paragraphs, <pre>
// verbatim. Dropped: script, style, templates and navigation: <nav>, role="navigation", and the
// navheader/navfooter blocks of DocBook output that most Debian documentation is.
#include "ingest/loaders.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include <gumbo.h>

#include <cstring>
#include <memory>

namespace saem::loaders {

namespace {

bool has_class(const GumboElement &el, const char *name) {
    const GumboAttribute *cls = gumbo_get_attribute(&el.attributes, "class");
    if (!cls) return false;
    std::string_view v = cls->value;
    size_t n = std::strlen(name), pos = 0;
    while ((pos = v.find(name, pos)) != std::string_view::npos) {
        bool start = pos == 0 || v[pos - 1] == ' ';
        bool end = pos + n == v.size() || v[pos + n] == ' ';
        if (start && end) return true;
        pos += n;
    }
    return false;
}

bool skipped(const GumboElement &el) {
    switch (el.tag) {
    case GUMBO_TAG_SCRIPT: case GUMBO_TAG_STYLE: case GUMBO_TAG_NOSCRIPT: case GUMBO_TAG_TEMPLATE:
    case GUMBO_TAG_NAV: case GUMBO_TAG_HEAD: case GUMBO_TAG_SVG: case GUMBO_TAG_MATH: case GUMBO_TAG_IFRAME:
    case GUMBO_TAG_OBJECT: case GUMBO_TAG_BUTTON: case GUMBO_TAG_SELECT: case GUMBO_TAG_TEXTAREA:
        return true;
    default: break;
    }
    const GumboAttribute *role = gumbo_get_attribute(&el.attributes, "role");
    if (role && std::strcmp(role->value, "navigation") == 0) return true;
    return has_class(el, "navheader") || has_class(el, "navfooter");
}

int heading_level(GumboTag tag) {
    switch (tag) {
    case GUMBO_TAG_H1: return 1;
    case GUMBO_TAG_H2: return 2;
    case GUMBO_TAG_H3: return 3;
    case GUMBO_TAG_H4: return 4;
    case GUMBO_TAG_H5: return 5;
    case GUMBO_TAG_H6: return 6;
    default: return 0;
    }
}

bool is_block(GumboTag tag) {
    switch (tag) {
    case GUMBO_TAG_P: case GUMBO_TAG_DIV: case GUMBO_TAG_LI: case GUMBO_TAG_UL: case GUMBO_TAG_OL:
    case GUMBO_TAG_DL: case GUMBO_TAG_DT: case GUMBO_TAG_DD: case GUMBO_TAG_TABLE: case GUMBO_TAG_TR:
    case GUMBO_TAG_BLOCKQUOTE: case GUMBO_TAG_SECTION: case GUMBO_TAG_ARTICLE: case GUMBO_TAG_MAIN:
    case GUMBO_TAG_HEADER: case GUMBO_TAG_FOOTER: case GUMBO_TAG_ASIDE: case GUMBO_TAG_FIGURE:
    case GUMBO_TAG_FIGCAPTION: case GUMBO_TAG_ADDRESS: case GUMBO_TAG_HR: case GUMBO_TAG_BODY:
    case GUMBO_TAG_CAPTION: case GUMBO_TAG_FORM: case GUMBO_TAG_FIELDSET: case GUMBO_TAG_DETAILS:
    case GUMBO_TAG_SUMMARY: case GUMBO_TAG_TBODY: case GUMBO_TAG_THEAD: case GUMBO_TAG_TFOOT:
        return true;
    default: return false;
    }
}

// Collapses runs of whitespace (HTML's rendering rule) outside <pre>.
void append_text(std::string &out, std::string_view text, bool pre) {
    if (pre) { out += text; return; }
    for (char c : text) {
        bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f';
        if (space) {
            if (!out.empty() && out.back() != ' ' && out.back() != '\n') out += ' ';
        } else {
            out += c;
        }
    }
}

struct Walker {
    LoadedDocument &doc;
    std::vector<std::string> path;
    std::string para;
    std::string section;  // paragraphs since the last heading, separated by blank lines

    std::string heading_path() const {
        std::string h;
        for (const auto &p : path) {
            if (p.empty()) continue;
            if (!h.empty()) h += " › ";
            h += p;
        }
        return h;
    }
    void end_paragraph() {
        size_t b = para.find_first_not_of(" \n"), e = para.find_last_not_of(" \n");
        if (b != std::string::npos) {
            section += para.substr(b, e - b + 1);
            section += "\n\n";
        }
        para.clear();
    }
    void end_section() {
        end_paragraph();
        add_paragraphs(doc, section, heading_path());
        section.clear();
    }

    static void text_of(const GumboNode *node, std::string &out) {
        if (node->type == GUMBO_NODE_TEXT || node->type == GUMBO_NODE_CDATA || node->type == GUMBO_NODE_WHITESPACE) {
            append_text(out, node->v.text.text, false);
        } else if (node->type == GUMBO_NODE_ELEMENT && !skipped(node->v.element)) {
            const GumboVector &ch = node->v.element.children;
            for (unsigned i = 0; i < ch.length; ++i) text_of(static_cast<const GumboNode *>(ch.data[i]), out);
        }
    }

    void walk(const GumboNode *node, bool pre) {
        if (node->type == GUMBO_NODE_TEXT || node->type == GUMBO_NODE_CDATA || node->type == GUMBO_NODE_WHITESPACE) {
            append_text(para, node->v.text.text, pre);
            return;
        }
        if (node->type != GUMBO_NODE_ELEMENT && node->type != GUMBO_NODE_TEMPLATE) return;
        const GumboElement &el = node->v.element;
        if (skipped(el)) return;
        if (int level = heading_level(el.tag)) {
            std::string text;
            text_of(node, text);
            size_t b = text.find_first_not_of(' '), e = text.find_last_not_of(' ');
            text = b == std::string::npos ? "" : text.substr(b, e - b + 1);
            end_section();
            path.resize(size_t(level));
            path[size_t(level) - 1] = text;
            if (doc.title.empty() && level == 1) doc.title = text;
            return;
        }
        if (el.tag == GUMBO_TAG_BR) { para += '\n'; return; }
        bool block = is_block(el.tag) || el.tag == GUMBO_TAG_PRE;
        if (block) end_paragraph();
        else if (el.tag == GUMBO_TAG_TD || el.tag == GUMBO_TAG_TH) append_text(para, " ", false);
        for (unsigned i = 0; i < el.children.length; ++i)
            walk(static_cast<const GumboNode *>(el.children.data[i]), pre || el.tag == GUMBO_TAG_PRE);
        if (block) end_paragraph();
    }
};

const GumboNode *find(const GumboNode *node, GumboTag tag) {
    if (node->type != GUMBO_NODE_ELEMENT) return nullptr;
    if (node->v.element.tag == tag) return node;
    const GumboVector &ch = node->v.element.children;
    for (unsigned i = 0; i < ch.length; ++i)
        if (const GumboNode *found = find(static_cast<const GumboNode *>(ch.data[i]), tag)) return found;
    return nullptr;
}

// Elements a page may nest before it is refused. Real pages nest a few dozen deep; gumbo's tree
// building slows with depth (300,000 nested <div>s take minutes) and freeing its tree recurses.
constexpr int max_html_depth = 1000;

bool tag_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == ':'; }

bool starts_with_ci(std::string_view s, size_t at, std::string_view prefix) {
    if (s.size() - std::min(s.size(), at) < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(s[at + i])) != prefix[i]) return false;
    return true;
}

// The element nesting a page reaches, estimated by scanning its tags the way a tree builder
// treats them, without building a tree: a stack of open element names. Void elements never
// open; "/>" closes only inside svg and math (HTML ignores it on other elements); an end tag
// closes back to the nearest open element of its name and is ignored when none is open;
// elements whose end tag HTML lets authors leave out (p, li, td, ...) are not counted, so a page
// of unclosed paragraphs is not mistaken for a deep one; comments and raw text (script, style,
// textarea, title) hold no tags. Stops as soon as the depth passes `limit`.
int markup_depth(std::string_view s, int limit) {
    static const char *flat[] = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
                                 "track", "wbr", "keygen", "p", "li", "dt", "dd", "tr", "td", "th", "option", "thead", "tbody",
                                 "tfoot", "colgroup", "caption", "html", "head", "body"};
    auto is_flat = [](const std::string &name) {
        for (const char *f : flat)
            if (name == f) return true;
        return false;
    };
    std::vector<std::string> open;
    int foreign = 0;  // open svg/math elements
    int deepest = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '<') continue;
        if (s.compare(i, 4, "<!--") == 0) {
            if (s.compare(i + 4, 1, ">") == 0 || s.compare(i + 4, 2, "->") == 0) continue;  // <!--> and <!---> are whole
            size_t end = s.find("-->", i + 4);
            if (end == std::string_view::npos) break;
            i = end + 2;
            continue;
        }
        bool closing = i + 1 < s.size() && s[i + 1] == '/';
        size_t b = i + (closing ? 2 : 1), e = b;
        if (b >= s.size() || !std::isalpha(static_cast<unsigned char>(s[b]))) continue;  // "<3", "<!DOCTYPE", "<?xml"
        while (e < s.size() && tag_char(s[e])) ++e;
        std::string name(s.substr(b, e - b));
        for (char &c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
        // The tag ends at the first '>' outside a quoted attribute value.
        size_t gt = e;
        for (char quote = 0; gt < s.size(); ++gt) {
            if (quote) { if (s[gt] == quote) quote = 0; }
            else if (s[gt] == '"' || s[gt] == '\'') quote = s[gt];
            else if (s[gt] == '>') break;
        }
        if (gt >= s.size()) break;
        bool self_closed = s[gt - 1] == '/';
        i = gt;
        if (closing) {
            for (size_t k = open.size(); k-- > 0;)
                if (open[k] == name) {
                    for (size_t j = k; j < open.size(); ++j) foreign -= open[j] == "svg" || open[j] == "math";
                    open.resize(k);
                    break;
                }
            continue;
        }
        if (is_flat(name) || (self_closed && foreign > 0)) continue;
        if (name == "a")  // a new link closes the one still open
            for (size_t k = open.size(); k-- > 0;)
                if (open[k] == "a") { open.resize(k); break; }
        open.push_back(name);
        foreign += name == "svg" || name == "math";
        deepest = std::max(deepest, int(open.size()));
        if (deepest > limit) return deepest;
        if (name == "script" || name == "style" || name == "textarea" || name == "title" || name == "xmp") {
            size_t end = i;  // raw text: no tags inside, until its end tag in any case
            while ((end = s.find("</", end + 1)) != std::string_view::npos && !starts_with_ci(s, end + 2, name)) {}
            if (end == std::string_view::npos) break;
            i = end - 1;
        }
    }
    return deepest;
}

// The depth of gumbo's tree, walked without recursion: the recursive walks below run only on
// trees this deep or less.
int tree_depth(const GumboNode *root) {
    int deepest = 0;
    std::vector<std::pair<const GumboNode *, int>> stack{{root, 1}};
    while (!stack.empty()) {
        auto [node, depth] = stack.back();
        stack.pop_back();
        deepest = std::max(deepest, depth);
        if (node->type != GUMBO_NODE_ELEMENT && node->type != GUMBO_NODE_TEMPLATE) continue;
        const GumboVector &children = node->v.element.children;
        for (unsigned i = 0; i < children.length; ++i)
            stack.emplace_back(static_cast<const GumboNode *>(children.data[i]), depth + 1);
    }
    return deepest;
}

}  // namespace

LoadedDocument html(std::string_view utf8) {
    auto too_deep = [](int) {
        return LoadError("HTML nests elements more than " + std::to_string(max_html_depth) + " deep (the limit)");
    };
    if (int depth = markup_depth(utf8, max_html_depth); depth > max_html_depth) throw too_deep(depth);
    std::unique_ptr<GumboOutput, void (*)(GumboOutput *)> out(
        gumbo_parse_with_options(&kGumboDefaultOptions, utf8.data(), utf8.size()),
        [](GumboOutput *o) { gumbo_destroy_output(&kGumboDefaultOptions, o); });
    if (!out) throw LoadError("HTML parser failed");
    if (int depth = tree_depth(out->root); depth > max_html_depth + 3) throw too_deep(depth);
    LoadedDocument doc;
    if (const GumboNode *title = find(out->root, GUMBO_TAG_TITLE)) {
        std::string t;
        Walker::text_of(title, t);
        size_t b = t.find_first_not_of(' '), e = t.find_last_not_of(' ');
        if (b != std::string::npos) doc.title = t.substr(b, e - b + 1);
    }
    Walker w{doc, {}, {}, {}};
    if (const GumboNode *body = find(out->root, GUMBO_TAG_BODY)) w.walk(body, false);
    w.end_section();
    return doc;
}

}  // namespace saem::loaders
