// Byte-level BPE pre-tokenizers, hand-written from the regular expressions the models publish (as
// llama.cpp does, since std::regex has no \p{..} classes). Alternatives are tried in order at each
// position, each quantifier greedy, exactly as the regex engine would:
//
//   gpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   llama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   qwen2   the llama3 pattern with \p{N} for \p{N}{1,3}
//   smollm  every \p{N} split off on its own first (llama.cpp; Hugging Face's Digits pre-tokenizer
//           splits ASCII digits only), then gpt2 on the rest
//
// \s is Unicode White_Space.
#include "nn/pretokenize.h"

#include <utf8proc.h>

namespace saem::nn {

namespace {

enum Class : uint8_t { Letter, Number, Space, Other };

struct Cp {
    int32_t cp;
    uint32_t at;  // byte offset
    Class cls;
};

bool is_white_space(int32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

Class classify(int32_t c) {
    if (is_white_space(c)) return Space;
    if (c < 0) return Other;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT: case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return Letter;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return Number;
    default: return Other;
    }
}

struct Rules {
    bool fold_contractions;  // (?i:...)
    bool any_letter_prefix;  // [^\r\n\p{L}\p{N}]?\p{L}+ rather than " ?\p{L}+"
    int max_digits;          // 0: unbounded with an optional leading space (gpt2)
    bool punct_newlines;     // [\r\n]* after punctuation, and the \s*[\r\n]+ alternative
};

bool newline(int32_t c) { return c == '\r' || c == '\n'; }

// Length in code points of the match at i within [i, end), under rules r.
size_t match_at(const std::vector<Cp> &s, size_t i, size_t end, const Rules &r) {
    auto cls = [&](size_t k) { return k < end ? s[k].cls : Other; };
    auto cp = [&](size_t k) { return k < end ? s[k].cp : -1; };
    // contractions
    if (cp(i) == '\'' && i + 1 < end) {
        auto low = [&](int32_t c) { return r.fold_contractions && c >= 'A' && c <= 'Z' ? c + 32 : c; };
        int32_t a = low(cp(i + 1)), b = i + 2 < end ? low(cp(i + 2)) : -1;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    }
    // letters, with an optional one-character prefix
    {
        size_t j = i;
        if (r.any_letter_prefix) {
            if (cls(j) != Letter && cls(j) != Number && !newline(cp(j)) && cls(j + 1) == Letter) ++j;
        } else if (cp(j) == ' ' && cls(j + 1) == Letter) {
            ++j;
        }
        if (cls(j) == Letter) {
            while (cls(j) == Letter) ++j;
            return j - i;
        }
    }
    // numbers
    if (r.max_digits == 0) {
        size_t j = i + (cp(i) == ' ' && cls(i + 1) == Number ? 1 : 0);
        if (cls(j) == Number) {
            while (cls(j) == Number) ++j;
            return j - i;
        }
    } else if (cls(i) == Number) {
        size_t j = i;
        while (cls(j) == Number && int(j - i) < r.max_digits) ++j;
        return j - i;
    }
    // punctuation and symbols, with an optional leading space
    {
        size_t j = i + (cp(i) == ' ' && cls(i + 1) == Other ? 1 : 0);
        if (cls(j) == Other && j < end) {
            while (j < end && cls(j) == Other) ++j;
            if (r.punct_newlines)
                while (newline(cp(j))) ++j;
            return j - i;
        }
    }
    if (cls(i) == Space) {
        size_t e = i;
        while (e < end && cls(e) == Space) ++e;
        if (r.punct_newlines) {  // \s*[\r\n]+ : up to the last line break of the run
            size_t last = e;
            for (size_t k = i; k < e; ++k)
                if (newline(cp(k))) last = k;
            if (last != e) return last + 1 - i;
        }
        if (e == end || e - i == 1) return e - i;  // \s+(?!\S) cannot leave one behind, so \s+
        return e - i - 1;                          // leave the last space to the next word
    }
    return 1;
}

}  // namespace

void pretokenize(Bpe::Pre pre, bool ascii_digits, std::string_view text, std::vector<std::string_view> &out) {
    std::vector<Cp> s;
    s.reserve(text.size());
    const auto *bytes = reinterpret_cast<const utf8proc_uint8_t *>(text.data());
    for (size_t i = 0; i < text.size();) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(bytes + i, utf8proc_ssize_t(text.size() - i), &c);
        if (n <= 0) n = 1, c = -1;  // a stray byte: punctuation-like, kept whole by the byte-level model
        s.push_back({c, uint32_t(i), classify(c)});
        i += size_t(n);
    }
    auto offset = [&](size_t k) { return k < s.size() ? s[k].at : uint32_t(text.size()); };
    if (pre == Bpe::Pre::None) {
        if (!text.empty()) out.push_back(text);
        return;
    }
    Rules r{false, false, 0, false};
    if (pre == Bpe::Pre::Llama3) r = {true, true, 3, true};
    if (pre == Bpe::Pre::Qwen2) r = {true, true, 1, true};
    auto run = [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end;) {
            size_t n = match_at(s, i, end, r);
            out.push_back(text.substr(offset(i), offset(i + n) - offset(i)));
            i += n;
        }
    };
    if (pre != Bpe::Pre::Smollm) {
        run(0, s.size());
        return;
    }
    size_t begin = 0;
    for (size_t k = 0; k < s.size(); ++k) {
        if (ascii_digits ? !(s[k].cp >= '0' && s[k].cp <= '9') : s[k].cls != Number) continue;
        run(begin, k);
        run(k, k + 1);
        begin = k + 1;
    }
    run(begin, s.size());
}

}  // namespace saem::nn
