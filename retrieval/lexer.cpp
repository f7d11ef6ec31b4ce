#include "retrieval/lexer.h"

#include <libstemmer.h>
#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace saem::lexer {

namespace {

bool is_cjk(utf8proc_int32_t cp) {
    return (cp >= 0x1100 && cp <= 0x11FF) ||   // Hangul Jamo
           (cp >= 0x3040 && cp <= 0x30FF) ||   // Hiragana, Katakana
           (cp >= 0x3130 && cp <= 0x318F) ||   // Hangul compatibility Jamo
           (cp >= 0x31F0 && cp <= 0x31FF) ||   // Katakana extensions
           (cp >= 0x3400 && cp <= 0x4DBF) ||   // Han extension A
           (cp >= 0x4E00 && cp <= 0x9FFF) ||   // Han
           (cp >= 0xAC00 && cp <= 0xD7AF) ||   // Hangul syllables
           (cp >= 0xF900 && cp <= 0xFAFF) ||   // Han compatibility
           (cp >= 0x20000 && cp <= 0x2FA1F);   // Han extensions B..
}

bool is_word_char(utf8proc_int32_t cp) {
    auto cat = utf8proc_category(cp);
    return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO;  // letters, marks, numbers
}

// English stopwords (the NLTK list that BEIR's BM25 baselines use).
const std::unordered_set<std::string> &stopwords() {
    static const std::unordered_set<std::string> words = {
        "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
        "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself",
        "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which",
        "who", "whom", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be",
        "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an",
        "the", "and", "but", "if", "or", "because", "as", "until", "while", "of", "at", "by",
        "for", "with", "about", "against", "between", "into", "through", "during", "before",
        "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off", "over",
        "under", "again", "further", "then", "once", "here", "there", "when", "where", "why",
        "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "no",
        "nor", "not", "only", "own", "same", "so", "than", "too", "very", "s", "t", "can", "will",
        "just", "don", "should", "now", "d", "ll", "m", "o", "re", "ve", "y"};
    return words;
}

struct StemmerDeleter {
    void operator()(sb_stemmer *s) const { sb_stemmer_delete(s); }
};

// Snowball stemmers keep per-call state, so each thread owns one.
sb_stemmer *english_stemmer() {
    thread_local std::unique_ptr<sb_stemmer, StemmerDeleter> stemmer(sb_stemmer_new("english", "UTF_8"));
    return stemmer.get();
}

constexpr size_t max_term_bytes = 64;

}  // namespace

void segment(std::string_view text, const std::function<void(const Piece &)> &on_piece) {
    const auto *s = reinterpret_cast<const utf8proc_uint8_t *>(text.data());
    size_t i = 0, word_begin = std::string_view::npos;
    std::vector<size_t> cjk_run;  // byte offsets of the run's characters, plus its end
    auto flush_word = [&](size_t end) {
        if (word_begin != std::string_view::npos) on_piece({word_begin, end, false});
        word_begin = std::string_view::npos;
    };
    auto flush_cjk = [&](size_t end) {
        if (cjk_run.empty()) return;
        cjk_run.push_back(end);
        if (cjk_run.size() == 2) on_piece({cjk_run[0], cjk_run[1], true});
        for (size_t k = 0; k + 2 < cjk_run.size(); ++k) on_piece({cjk_run[k], cjk_run[k + 2], true});
        cjk_run.clear();
    };
    while (i < text.size()) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(s + i, utf8proc_ssize_t(text.size() - i), &cp);
        if (n <= 0) {  // invalid byte: a separator, never part of a term
            flush_word(i);
            flush_cjk(i);
            ++i;
            continue;
        }
        // A line break inside a CJK run is a hard wrap, not a word boundary: Korean, Chinese and
        // Japanese text is often wrapped mid-word. Spaces alone still end the run (Korean words).
        if (!cjk_run.empty() && (cp == '\n' || cp == ' ' || cp == '\t' || cp == '\r')) {
            size_t j = i;
            bool newline = false;
            while (j < text.size() && (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r'))
                newline |= text[j++] == '\n';
            utf8proc_int32_t after = -1;
            if (newline && j < text.size())
                utf8proc_iterate(s + j, utf8proc_ssize_t(text.size() - j), &after);
            if (newline && after >= 0 && is_cjk(after)) {
                i = j;
                continue;
            }
        }
        if (is_cjk(cp)) {
            flush_word(i);
            cjk_run.push_back(i);
        } else if (is_word_char(cp)) {
            flush_cjk(i);
            if (word_begin == std::string_view::npos) word_begin = i;
        } else {
            flush_word(i);
            flush_cjk(i);
        }
        i += size_t(n);
    }
    flush_word(text.size());
    flush_cjk(text.size());
}

std::string term(std::string_view text, const Piece &piece) {
    std::string_view raw = text.substr(piece.begin, piece.end - piece.begin);
    if (piece.cjk) {  // a bigram may straddle a hard line wrap: the term is its two characters
        std::string t;
        for (char c : raw)
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') t += c;
        return t;
    }
    std::string folded;
    if (std::all_of(raw.begin(), raw.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
        folded.resize(raw.size());
        std::transform(raw.begin(), raw.end(), folded.begin(),
                       [](char c) { return char(c >= 'A' && c <= 'Z' ? c + 32 : c); });
    } else {
        utf8proc_uint8_t *out = nullptr;
        auto opts = utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                                      UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK);
        utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(raw.data()),
                                          utf8proc_ssize_t(raw.size()), &out, opts);
        if (n < 0) return {};
        folded.assign(reinterpret_cast<char *>(out), size_t(n));
        std::free(out);
    }
    if (folded.empty() || folded.size() > max_term_bytes || stopwords().count(folded)) return {};
    const sb_symbol *stem = sb_stemmer_stem(english_stemmer(),
                                            reinterpret_cast<const sb_symbol *>(folded.data()), int(folded.size()));
    if (!stem) return folded;
    return std::string(reinterpret_cast<const char *>(stem), size_t(sb_stemmer_length(english_stemmer())));
}

}  // namespace saem::lexer
