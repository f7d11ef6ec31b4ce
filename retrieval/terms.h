// Text as the index sees it: the same analyser splits documents at index time and user text at
// query time (lexer.h), so a query term always matches the form it was indexed in. Pure
// functions: any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace saem {

// The FTS5 MATCH expression for arbitrary user text: every searchable word as a quoted term,
// OR-ed, so no input can be an FTS5 syntax error. Empty when nothing in the text is searchable.
std::string fts_query(std::string_view user_text);

// The index terms of a text, in order (stemmed, stopwords dropped, CJK bigrams).
std::vector<std::string> analyze(std::string_view text);

}  // namespace saem
