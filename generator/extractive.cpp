#include "generator/generator.h"
#include "nn/text.h"
#include "retrieval/terms.h"

#include <algorithm>
#include <map>
#include <set>

namespace saem {

namespace {

struct Candidate {
    std::string text;
    size_t hit;
    double score;
};

// The sentences of the retrieved chunks that cover at least min_coverage of the question's
// weighted terms, best first. Term weights: retrieved.term_idf (1 when the search did not measure
// it); terms in nearly every chunk still count a little, so that a question made only of common
// words can still be answered.
std::vector<Candidate> rank_sentences(const std::string &question, const Retrieved &retrieved, const ExtractiveOptions &opt) {
    const std::vector<Hit> &hits = retrieved.hits;
    std::map<std::string, double> idf(retrieved.term_idf.begin(), retrieved.term_idf.end());
    std::map<std::string, double> weight;
    double total = 0;
    for (const auto &t : analyze(question)) {
        if (weight.count(t)) continue;
        auto it = idf.find(t);
        double w = std::max(it == idf.end() ? 1.0 : it->second, 0.1);
        weight[t] = w;
        total += w;
    }
    std::vector<Candidate> candidates;
    if (hits.empty() || total <= 0) return candidates;
    for (size_t h = 0; h < hits.size(); ++h) {
        const std::string &text = hits[h].text;
        for (auto [b, e] : nn::split_sentences(text)) {
            std::string sentence = text.substr(b, e - b);
            std::set<std::string> terms;
            for (auto &t : analyze(sentence)) terms.insert(std::move(t));
            double covered = 0;
            for (const auto &[t, w] : weight)
                if (terms.count(t)) covered += w;
            double coverage = covered / total;
            if (coverage < opt.min_coverage) continue;
            // Prefer sentences from better-ranked chunks, and not fragments or walls of text.
            double rank_factor = 1.0 / (1.0 + 0.15 * double(h));
            double length_factor = terms.size() < 3 ? 0.6 : terms.size() > 60 ? 0.8 : 1.0;
            for (char &c : sentence)
                if (c == '\n') c = ' ';
            candidates.push_back({std::move(sentence), h, coverage * rank_factor * length_factor});
        }
    }
    std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate &a, const Candidate &b) { return a.score > b.score; });
    return candidates;
}

}  // namespace

Citation citation_of(int number, const Hit &h) { return {number, h.path, h.title, h.heading, h.page, h.document_id, h.chunk_id, h.text}; }

double answer_support(const std::string &question, const Retrieved &retrieved, const ExtractiveOptions &options) {
    auto candidates = rank_sentences(question, retrieved, options);
    return candidates.empty() ? 0 : candidates.front().score;
}

Answer answer_extractive(const std::string &question, const Retrieved &retrieved, const ExtractiveOptions &opt) {
    Answer answer;
    answer.note = "No generator model is configured, so this answer quotes the most relevant sentences verbatim. "
                  "A generator model would compose a direct answer from the same cited sources.";
    const std::vector<Hit> &hits = retrieved.hits;
    if (hits.empty()) {
        answer.text = "Nothing relevant to the question was found in the index.";
        return answer;
    }
    std::vector<Candidate> candidates = rank_sentences(question, retrieved, opt);
    if (!candidates.empty() && candidates.front().score < opt.min_support) {
        answer.text = "The documents do not answer the question: the best passage supports it too weakly.";
        answer.note = "Abstained: the best sentence's support is below the threshold (ExtractiveOptions::min_support).";
        return answer;
    }

    std::map<std::pair<int64_t, std::string>, int> number_of;  // (document, heading) -> [n]
    std::set<std::string> used;
    for (const Candidate &c : candidates) {
        if (int(answer.sentences.size()) >= opt.max_sentences) break;
        if (!used.insert(c.text).second) continue;
        const Hit &hit = hits[c.hit];
        auto key = std::make_pair(hit.document_id, hit.heading + "#" + std::to_string(hit.page));
        auto it = number_of.find(key);
        if (it == number_of.end()) {
            Citation cite = citation_of(int(answer.citations.size()) + 1, hit);
            answer.citations.push_back(cite);
            it = number_of.emplace(key, cite.number).first;
        }
        AnswerSentence sentence;
        sentence.text = c.text;
        sentence.citation = it->second;
        sentence.citations = {it->second};
        sentence.score = c.score;
        sentence.support = c.score;
        answer.sentences.push_back(std::move(sentence));
    }
    if (answer.sentences.empty()) {
        answer.text = "Nothing in the index answers the question: the closest passages share too few of its terms.";
        return answer;
    }
    answer.found = true;
    for (const auto &s : answer.sentences) {
        if (!answer.text.empty()) answer.text += ' ';
        answer.text += s.text + " [" + std::to_string(s.citation) + "]";
    }
    return answer;
}

}  // namespace saem
