// generator: answers a question from retrieved chunks.
//
// Until a decoder model is configured the answer is extractive: the sentences of the top chunks
// that best cover the question's terms, quoted verbatim, each with a numbered citation.
#pragma once

#include "retrieval/retrieval.h"

#include <string>
#include <vector>

namespace saem {

struct Citation {
    int number = 0;  // [n] in the answer text
    std::string path, title, heading;
    int page = 0;
    int64_t document_id = 0, chunk_id = 0;
};

struct AnswerSentence {
    std::string text;
    int citation = 0;
    double score = 0;  // share of the question's weighted terms the sentence contains
};

struct Answer {
    bool found = false;
    std::string text;  // sentences with [n] markers, or a plain statement that nothing was found
    std::vector<AnswerSentence> sentences;
    std::vector<Citation> citations;
    std::string method = "extractive";
    std::string note;  // what a generator model would add
};

struct AnswerOptions {
    int k = 5;                 // chunks to draw sentences from
    int max_sentences = 3;
    double min_coverage = 0.3;  // below this share of the question's weight a sentence is not an answer
    Filter filter;
    SearchMode mode = SearchMode::lexical;
    const nn::Embedder *embedder = nullptr;
    const nn::Reranker *reranker = nullptr;
};

Answer answer_extractive(Store &store, const std::string &question, const AnswerOptions &options = {});

}  // namespace saem
