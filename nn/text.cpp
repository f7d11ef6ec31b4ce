// UTF-8 checks, sentence boundaries and the approximate token count (nn/text.h).
#include "nn/text.h"

#include <utf8proc.h>

#include <algorithm>

namespace saem::nn {

size_t find_invalid_utf8(std::string_view text) {
    size_t i = 0;
    const auto *s = reinterpret_cast<const utf8proc_uint8_t *>(text.data());
    while (i < text.size()) {
        if (s[i] < 0x80) { ++i; continue; }
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(s + i, utf8proc_ssize_t(text.size() - i), &cp);
        if (n <= 0) return i;
        i += size_t(n);
    }
    return std::string_view::npos;
}

static bool is_cjk(utf8proc_int32_t cp) {
    return (cp >= 0x1100 && cp <= 0x11FF) || (cp >= 0x2E80 && cp <= 0x9FFF) ||
           (cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0xF900 && cp <= 0xFAFF) ||
           (cp >= 0x20000 && cp <= 0x2FA1F);
}

std::vector<std::pair<size_t, size_t>> split_sentences(std::string_view text) {
    std::vector<std::pair<size_t, size_t>> out;
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
    auto push = [&](size_t b, size_t e) {
        while (b < e && is_space(text[b])) ++b;
        while (e > b && is_space(text[e - 1])) --e;
        if (e > b) out.emplace_back(b, e);
    };
    size_t start = 0, i = 0;
    while (i < text.size()) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            size_t j = i + 1;
            while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r')) ++j;
            if (j < text.size() && text[j] == '\n') {  // blank line: paragraph boundary
                push(start, i);
                start = i = j;
                continue;
            }
            ++i;
            continue;
        }
        if (c == '.' || c == '!' || c == '?') {
            size_t j = i + 1;
            while (j < text.size() && (text[j] == '"' || text[j] == '\'' || text[j] == ')' || text[j] == ']')) ++j;
            // A decimal point or an abbreviation glued to the next word is not a boundary.
            if (j == text.size() || is_space(text[j])) {
                push(start, j);
                start = i = j;
                continue;
            }
            i = j;
            continue;
        }
        if (c >= 0x80) {
            size_t n = utf8_length(c);
            utf8proc_int32_t cp = -1;
            utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t *>(text.data() + i),
                             utf8proc_ssize_t(std::min(n, text.size() - i)), &cp);
            if (cp == 0x3002 || cp == 0xFF01 || cp == 0xFF1F || cp == 0xFF0E) {  // 。！？．
                push(start, i + n);
                start = i + n;
            }
            i += n;
            continue;
        }
        ++i;
    }
    push(start, text.size());
    return out;
}

size_t ApproxTokenCounter::count(std::string_view text) const {
    size_t tokens = 0, word = 0;
    auto flush = [&] {
        if (word) tokens += word <= 6 ? 1 : (word + 5) / 6;
        word = 0;
    };
    const auto *s = reinterpret_cast<const utf8proc_uint8_t *>(text.data());
    size_t i = 0;
    while (i < text.size()) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(s + i, utf8proc_ssize_t(text.size() - i), &cp);
        if (n <= 0) { ++i; flush(); ++tokens; continue; }
        i += size_t(n);
        if (is_cjk(cp)) { flush(); ++tokens; continue; }
        auto cat = utf8proc_category(cp);
        bool alnum = (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO);
        if (alnum) { ++word; continue; }
        flush();
        if (cat != UTF8PROC_CATEGORY_ZS && cat != UTF8PROC_CATEGORY_CC) ++tokens;
    }
    flush();
    return tokens;
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

}  // namespace saem::nn
