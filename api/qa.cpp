// QA evaluation on SQuAD-format files: index every paragraph, answer every question the way
// `saem ask` does without a model (extractive), and score the answers against the gold ones.
// SQuAD's own normalisation (lower case, no punctuation, no articles, single spaces) is used for
// exact match, F1 and containment.
#include "api/api.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

namespace saem {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string normalize(const std::string &s) {
    std::string lower;
    for (unsigned char c : s) {
        if (std::ispunct(c)) continue;
        lower += char(std::tolower(c));
    }
    std::istringstream words(lower);
    std::string out, w;
    while (words >> w) {
        if (w == "a" || w == "an" || w == "the") continue;
        if (!out.empty()) out += ' ';
        out += w;
    }
    return out;
}

std::vector<std::string> tokens(const std::string &normalized) {
    std::istringstream in(normalized);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

double f1(const std::string &prediction, const std::string &gold) {
    auto p = tokens(prediction), g = tokens(gold);
    if (p.empty() || g.empty()) return p == g ? 1 : 0;
    std::map<std::string, int> count;
    for (const auto &w : g) ++count[w];
    int common = 0;
    for (const auto &w : p)
        if (count[w]-- > 0) ++common;
    if (common == 0) return 0;
    double precision = double(common) / double(p.size()), recall = double(common) / double(g.size());
    return 2 * precision * recall / (precision + recall);
}

// The answer's text without its [n] markers (a marker's digits are not part of any answer).
std::string without_markers(const std::string &text) {
    static const std::regex marker(R"(\s*\[\d{1,3}\])");
    return std::regex_replace(text, marker, "");
}

struct TempIndex {
    std::string path;
    ~TempIndex() {
        if (path.empty()) return;
        for (const char *suffix : {"", "-wal", "-shm"}) std::remove((path + suffix).c_str());
    }
};

bool sampled(size_t i, const std::string &sample) { return sample == "all" || (sample == "even") == (i % 2 == 0); }

}  // namespace

QaResult eval_qa(const std::string &file, const QaOptions &opt, std::ostream &log) {
    using clock = std::chrono::steady_clock;
    if (opt.sample != "all" && opt.sample != "even" && opt.sample != "odd")
        throw std::invalid_argument("--sample is all, even or odd, not '" + opt.sample + "'");
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read " + file);
    json squad = json::parse(in, nullptr, false);
    if (squad.is_discarded() || !squad.contains("data") || !squad["data"].is_array())
        throw std::runtime_error(file + ": not a SQuAD file ({\"data\": [{\"title\", \"paragraphs\": [{\"context\", \"qas\"}]}]})");

    QaResult r;
    TempIndex temp;
    std::string db = opt.db;
    if (db.empty()) {
        temp.path = (fs::temp_directory_path() / ("saem-qa-" + std::to_string(::getpid()) + ".db")).string();
        db = temp.path;
    }
    struct Question {
        std::string text;
        std::vector<std::string> gold;
    };
    std::vector<Question> questions;
    auto t0 = clock::now();
    {
        Store store(db);
        size_t written = 0;
        for (size_t a = 0; a < squad["data"].size(); ++a) {
            const json &article = squad["data"][a];
            const std::string title = article.value("title", "");
            const json &paragraphs = article.contains("paragraphs") ? article["paragraphs"] : json::array();
            for (size_t p = 0; p < paragraphs.size(); ++p) {
                const json &para = paragraphs[p];
                const std::string context = para.value("context", "");
                if (context.empty()) continue;
                ++r.paragraphs;
                // Keyed by content: another file's paragraphs in the same --db are other documents.
                const std::string path = "squad/" + content_hash(title + '\n' + context);
                if (!store.file_state(path)) {
                    PreparedDocument doc = prepare_document(path, context, "txt", {{"title", title}}, opt.chunking, nullptr);
                    store_document(store, doc);
                    ++written;
                }
                for (const auto &qa : para.value("qas", json::array())) {
                    Question q{qa.value("question", ""), {}};
                    for (const auto &g : qa.value("answers", json::array()))
                        if (g.contains("text") && g["text"].is_string()) q.gold.push_back(g["text"]);
                    if (!q.text.empty() && !q.gold.empty()) questions.push_back(std::move(q));
                }
            }
        }
        log << "paragraphs: " << r.paragraphs << " (" << written << " indexed now), questions: " << questions.size() << '\n';
    }
    r.index_seconds = std::chrono::duration<double>(clock::now() - t0).count();

    Store store(db);
    Retriever retriever;
    // The answer as it would be with no threshold, and its support: the threshold's answer is
    // that one when the support reaches it, else an abstention (answer_extractive's rule), and
    // --scan can vary the threshold over the same runs.
    ExtractiveOptions open = opt.extractive;
    open.min_support = 0;
    auto answer = [&](const std::string &question) {
        SearchRequest sr;
        sr.query = question;
        sr.k = opt.k;
        Retrieved found = retriever.search(store, for_answers(sr));
        return std::pair{answer_extractive(question, found, open), answer_support(question, found, open)};
    };
    auto holds = [](const std::string &normalized_text, const std::vector<std::string> &gold) {
        for (const auto &g : gold) {
            const std::string ng = normalize(g);
            if (!ng.empty() && (" " + normalized_text + " ").find(" " + ng + " ") != std::string::npos) return true;
        }
        return false;
    };
    auto t1 = clock::now();
    double em = 0, f1_sum = 0, contained = 0, cited_right = 0;
    size_t found = 0;
    for (size_t i = 0; i < questions.size(); ++i) {
        if (!sampled(i, opt.sample)) continue;
        if (opt.limit && r.questions >= opt.limit) break;
        const Question &q = questions[i];
        auto [a, support] = answer(q.text);
        ++r.questions;
        const std::string text = normalize(without_markers(a.text));
        const bool gold_held = a.found && holds(text, q.gold);
        r.answerable_scores.push_back({a.found ? support : 0.0, gold_held});
        if (!a.found || support < opt.extractive.min_support) continue;  // abstained: nothing to score
        ++found;
        double best_em = 0, best_f1 = 0;
        for (const auto &g : q.gold) {
            const std::string ng = normalize(g);
            best_em = std::max(best_em, text == ng ? 1.0 : 0.0);
            best_f1 = std::max(best_f1, f1(text, ng));
        }
        bool in_cited = false;
        for (const auto &c : a.citations) in_cited = in_cited || holds(normalize(c.text), q.gold);
        em += best_em;
        f1_sum += best_f1;
        contained += gold_held;
        cited_right += in_cited;
    }
    size_t abstained = 0;
    for (size_t i = 0; i < opt.unanswerable.size(); ++i) {
        if (!sampled(i, opt.sample)) continue;
        auto [a, support] = answer(opt.unanswerable[i]);
        ++r.unanswerable;
        abstained += !a.found || support < opt.extractive.min_support;
        r.unanswerable_scores.push_back(a.found ? support : 0.0);
    }
    r.answer_seconds = std::chrono::duration<double>(clock::now() - t1).count();
    auto share = [](double x, size_t n) { return n ? x / double(n) : 0.0; };
    r.exact_match = share(em, r.questions);
    r.f1 = share(f1_sum, r.questions);
    r.gold_in_answer = share(contained, r.questions);
    r.answered = share(double(found), r.questions);
    r.citation_accuracy = share(cited_right, found);
    r.abstain_rate = share(double(abstained), r.unanswerable);
    return r;
}

}  // namespace saem
