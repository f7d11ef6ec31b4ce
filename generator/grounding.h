// generator/grounding.h: checks a generated answer against its sources, sentence by sentence.
//
// A model can write what its sources do not say. Each sentence of the answer is checked against
// the sources it cites ([n]), or against every source given when it cites none: its content
// words (index terms: stemmed, stopwords dropped), its numbers and its names (capitalised words
// after the first) must be found there. support = the share of them found; a sentence is
// supported when support reaches min_support and every number and name is found (a wrong figure
// or a wrong name is the commonest hallucination, and one word of many). A sentence of at most
// one content word and no number or name ("Yes.") cannot be checked and counts as supported.
//
// A citation number that names no source given ([7] with 3 sources) is removed from the text and
// reported. With strict, unsupported sentences are removed from the answer and the note says how
// many.
//
// Threads: pure functions (any thread).
#pragma once

#include "generator/generator.h"

namespace saem {

// Fills answer.sentences (text, citations, support, supported) from answer.text, whose [n] name
// the sources in `given` (1-based), and rewrites answer.text, answer.citations and answer.note as
// described above.
void ground_answer(Answer &answer, const std::vector<const Hit *> &given, const GroundingOptions &options);

}  // namespace saem
