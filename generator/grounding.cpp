#include "generator/grounding.h"
#include "nn/text.h"
#include "retrieval/terms.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <regex>
#include <set>

namespace saem {

namespace {

std::string lower(std::string s) {
    for (char &c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// Numbers as written ("494", "1,200", "0.75"), with thousands separators dropped.
std::vector<std::string> numbers_in(const std::string &text) {
    static const std::regex number(R"(\d+(?:[.,]\d+)*)");
    std::vector<std::string> out;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), number); it != std::sregex_iterator(); ++it) {
        std::string n = it->str();
        n.erase(std::remove(n.begin(), n.end(), ','), n.end());
        out.push_back(n);
    }
    return out;
}

// "Seoul's" is "Seoul" for finding it in a source.
std::string without_possessive(std::string w) {
    if (w.size() > 2 && (w.compare(w.size() - 2, 2, "'s") == 0 || w.compare(w.size() - 2, 2, "'S") == 0)) w.resize(w.size() - 2);
    return w;
}

// Capitalised words other than the sentence's first (ASCII letters: names in Latin script).
std::vector<std::string> names_in(const std::string &text) {
    static const std::regex word(R"([A-Za-z][A-Za-z'-]*)");
    std::vector<std::string> out;
    bool first = true;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), word); it != std::sregex_iterator(); ++it) {
        const std::string w = without_possessive(it->str());
        if (!first && std::isupper(static_cast<unsigned char>(w[0])) && w.size() > 1) out.push_back(lower(w));
        first = false;
    }
    return out;
}

struct Source {
    std::set<std::string> terms, numbers, words;
};

Source source_of(const std::string &text) {
    Source s;
    for (auto &t : analyze(text)) s.terms.insert(std::move(t));
    for (auto &n : numbers_in(text)) s.numbers.insert(std::move(n));
    static const std::regex word(R"([A-Za-z][A-Za-z'-]*)");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), word); it != std::sregex_iterator(); ++it)
        s.words.insert(lower(without_possessive(it->str())));
    return s;
}

}  // namespace

void ground_answer(Answer &answer, const std::vector<const Hit *> &given, const GroundingOptions &options) {
    static const std::regex marker(R"(\s*\[(\d{1,3})\])");
    std::vector<Source> sources;
    Source all;
    for (const Hit *h : given) {
        sources.push_back(source_of(h->title + "\n" + h->heading + "\n" + h->text));
        all.terms.insert(sources.back().terms.begin(), sources.back().terms.end());
        all.numbers.insert(sources.back().numbers.begin(), sources.back().numbers.end());
        all.words.insert(sources.back().words.begin(), sources.back().words.end());
    }
    std::set<int> removed_markers;
    std::string kept_text;
    int removed = 0;
    std::set<int> cited;
    answer.sentences.clear();
    // Sentences, with the markers a model writes after the full stop ("... long. [1] It ...")
    // given back to the sentence they close.
    static const std::regex leading(R"(^\s*\[\d{1,3}\])");
    std::vector<std::string> parts;
    const std::string text = answer.text;
    for (auto [b, e] : nn::split_sentences(text)) {
        std::string sentence = text.substr(b, e - b);
        std::smatch m;
        while (!parts.empty() && std::regex_search(sentence, m, leading)) {
            parts.back() += m.str();
            sentence.erase(0, size_t(m.length()));
        }
        if (sentence.find_first_not_of(" \t\n") != std::string::npos || parts.empty()) parts.push_back(sentence);
    }
    static const std::regex list_item(R"(^\s*(\d{1,3}[.)]|[-*•])(\s+|$))");
    for (const std::string &sentence : parts) {
        // Markers: valid ones stay (and name the sources checked), others go.
        AnswerSentence s;
        std::string clean, claim;
        size_t last = 0;
        for (auto it = std::sregex_iterator(sentence.begin(), sentence.end(), marker); it != std::sregex_iterator(); ++it) {
            const size_t at = size_t(it->position());
            clean += sentence.substr(last, at - last);
            claim += sentence.substr(last, at - last);
            last = at + size_t(it->length());
            const int n = std::stoi((*it)[1]);
            if (n >= 1 && n <= int(given.size())) {
                clean += it->str();
                if (std::find(s.citations.begin(), s.citations.end(), n) == s.citations.end()) s.citations.push_back(n);
            } else {
                removed_markers.insert(n);
            }
        }
        clean += sentence.substr(last);
        claim += sentence.substr(last);
        claim = std::regex_replace(claim, list_item, "");  // a list's "1." is layout, not a claim
        // What the sentence asserts, and where it is looked for.
        Source checked;
        if (s.citations.empty()) {
            checked = all;
        } else {
            for (int n : s.citations) {
                const Source &src = sources[size_t(n - 1)];
                checked.terms.insert(src.terms.begin(), src.terms.end());
                checked.numbers.insert(src.numbers.begin(), src.numbers.end());
                checked.words.insert(src.words.begin(), src.words.end());
            }
        }
        std::set<std::string> terms;
        for (auto &t : analyze(claim)) terms.insert(std::move(t));
        const auto numbers = numbers_in(claim), names = names_in(claim);
        size_t found = 0, missing_facts = 0;
        for (const auto &t : terms) found += checked.terms.count(t);
        for (const auto &n : numbers) {
            bool ok = checked.numbers.count(n) > 0;
            found += ok;
            missing_facts += !ok;
        }
        for (const auto &n : names) {
            bool ok = checked.words.count(n) > 0;
            found += ok;
            missing_facts += !ok;
        }
        const size_t total = terms.size() + numbers.size() + names.size();
        // One content word and no figure or name ("Yes.", "Correct.") cannot be checked.
        const bool checkable = total > 1 || !numbers.empty() || !names.empty();
        s.support = checkable ? double(found) / double(total) : 1.0;
        s.supported = !checkable || (s.support >= options.min_support && missing_facts == 0);
        s.citation = s.citations.empty() ? 0 : s.citations.front();
        s.score = s.support;
        s.text = clean;
        // Trim the sentence's surrounding whitespace for the list (the text keeps its spacing).
        size_t lb = s.text.find_first_not_of(" \t\n"), le = s.text.find_last_not_of(" \t\n");
        s.text = lb == std::string::npos ? "" : s.text.substr(lb, le - lb + 1);
        if (s.text.empty()) continue;
        if (options.strict && !s.supported) {
            ++removed;
            answer.sentences.push_back(std::move(s));
            continue;
        }
        cited.insert(s.citations.begin(), s.citations.end());
        if (!kept_text.empty()) kept_text += ' ';
        kept_text += answer.sentences.emplace_back(std::move(s)).text;
    }
    if (options.strict && removed) {
        // The removed sentences stay listed (supported: false) so that a client can show them.
        answer.text = kept_text;
        answer.note += " Strict: " + std::to_string(removed) + " unsupported sentence(s) removed.";
        if (kept_text.empty()) {
            answer.found = false;
            answer.text = "The answer the model wrote is not supported by the sources, so it was withheld.";
            answer.citations.clear();
        } else if (cited.empty()) {  // what is left cites nothing: every source given, as for any uncited answer
            answer.citations.clear();
            for (size_t i = 0; i < given.size(); ++i) answer.citations.push_back(citation_of(int(i) + 1, *given[i]));
        }
    } else if (!removed_markers.empty()) {
        std::string rebuilt;
        for (const auto &s : answer.sentences) rebuilt += (rebuilt.empty() ? "" : " ") + s.text;
        answer.text = rebuilt;
    }
    if (!removed_markers.empty()) {
        std::string list;
        for (int n : removed_markers) list += (list.empty() ? "[" : ", [") + std::to_string(n) + "]";
        answer.note += " Citation " + list + " named no source given (" + std::to_string(given.size()) + ") and was removed.";
    }
    // Citations: the sources the kept sentences cite; when they cite none, the list stays every
    // source given.
    if (!cited.empty()) {
        answer.citations.clear();
        for (int n : cited) answer.citations.push_back(citation_of(n, *given[size_t(n - 1)]));
    }
    int unsupported = 0;
    for (const auto &s : answer.sentences) unsupported += !s.supported;
    char line[120];
    std::snprintf(line, sizeof line, " Grounding: %zu sentence(s), %d not supported by their sources.", answer.sentences.size(), unsupported);
    answer.note += line;
}

}  // namespace saem
