// nn/text.h: text units shared by the loaders, the chunker and the tokenizers: UTF-8 checks,
// sentence boundaries and token counting. The chunker counts tokens through TokenCounter so that a
// model's tokenizer replaces the approximation when one is set.
//
// Threads: every function here is a pure function of its arguments, and TokenCounter::count is
// const: any number of threads may call them at once.
#pragma once

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

namespace saem::nn {

// Byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code points
// above U+10FFFF are invalid), or npos when the whole text is valid.
size_t find_invalid_utf8(std::string_view text);

// The deepest nesting of arrays and objects in a JSON text, counted without parsing (and so
// without recursion): a request body or a model file can be refused before any parser, copy or
// dump walks it.
int json_depth(std::string_view text);

// Length in bytes of the UTF-8 sequence that starts with lead byte c (1 for a stray byte).
inline size_t utf8_length(unsigned char c) {
    return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
}

// Sentence spans [begin, end) in byte offsets, trailing whitespace excluded, covering every
// non-blank part of text. Boundaries: . ! ? (plus closing quotes/brackets) followed by space,
// CJK full stops, and blank lines.
std::vector<std::pair<size_t, size_t>> split_sentences(std::string_view text);

// Counts the tokens a model would see for a piece of text.
struct TokenCounter {
    virtual ~TokenCounter() = default;
    virtual size_t count(std::string_view text) const = 0;
};

// Stand-in used until an encoder is configured: roughly what a WordPiece vocabulary produces
// (one token per short word, more for long ones, one per punctuation mark and per CJK character).
struct ApproxTokenCounter final : TokenCounter {
    size_t count(std::string_view text) const override;
};

}  // namespace saem::nn
