// The lexical analyser behind saem's FTS5 index: the same code splits documents at index time and
// user text at query time, so a query term always matches the form it was indexed in.
//
// Words (letters, digits, combining marks) are NFKC-casefolded with accents stripped; English
// stopwords are dropped and the rest Snowball-stemmed. Runs of CJK characters (Hangul, Han, kana)
// have no spaces to split on and carry particles glued to words (Korean 검색은, 검색을), so they
// are indexed as overlapping character bigrams: any two-character query piece finds them.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace saem::lexer {

// A piece of the input as written, before normalisation: a word, or one bigram (or a lone
// character) of a CJK run.
struct Piece {
    size_t begin, end;  // byte offsets in the input
    bool cjk;
};

void segment(std::string_view text, const std::function<void(const Piece &)> &on_piece);

// The index term for a piece: empty when the piece is a stopword or too long to be useful.
std::string term(std::string_view text, const Piece &piece);

}  // namespace saem::lexer
