#include "generator/router.h"
#include "retrieval/terms.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>

namespace saem {

RoutePolicy parse_route_policy(const std::string &name) {
    if (name == "local") return RoutePolicy::local;
    if (name == "remote") return RoutePolicy::remote;
    if (name == "auto") return RoutePolicy::automatic;
    throw std::invalid_argument("route '" + name + "' is not local, remote or auto");
}

RouterOptions router_options_from_json(const nlohmann::json &j, RouterOptions o) {
    if (j.is_null()) return o;
    if (!j.is_object()) throw std::invalid_argument("\"router\" must be an object");
    auto number = [&](const std::string &key, double lo, double hi) {
        const auto &v = j.at(key);
        if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi)
            throw std::invalid_argument("router." + key + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi));
        return v.get<double>();
    };
    for (const auto &[key, value] : j.items()) {
        if (key == "policy") {
            if (!value.is_string()) throw std::invalid_argument("router.policy must be \"local\", \"remote\" or \"auto\"");
            o.policy = parse_route_policy(value.get<std::string>());
        } else if (key == "min_confidence") o.min_confidence = number(key, 0, 1);
        else if (key == "max_local_sources") o.max_local_sources = int(number(key, 0, 1000));
        else if (key == "max_local_question_words") o.max_local_question_words = int(number(key, 0, 100000));
        else if (key == "source_cover") o.source_cover = number(key, 0, 1);
        else if (key == "reasoning_cues") {
            if (!value.is_array() || !std::all_of(value.begin(), value.end(), [](const auto &v) { return v.is_string(); }))
                throw std::invalid_argument("router.reasoning_cues must be an array of strings");
            o.reasoning_cues = value.get<std::vector<std::string>>();
        } else {
            throw std::invalid_argument("unknown router setting '" + key +
                                        "' (policy, min_confidence, max_local_sources, max_local_question_words, source_cover, "
                                        "reasoning_cues)");
        }
    }
    return o;
}

RouteSignals route_signals(const RouterOptions &options, const std::string &question, const Retrieved &retrieved) {
    RouteSignals s;
    // Words, lower-cased, for length and cues (cues are matched as whole words or phrases).
    std::vector<std::string> words;
    std::string w;
    for (char c : question + " ") {
        unsigned char u = static_cast<unsigned char>(c);
        if (std::isalnum(u) || c == '-' || c == '\'' || u >= 0x80) w += char(std::tolower(u));
        else if (!w.empty()) words.push_back(std::exchange(w, {}));
    }
    s.question_words = int(words.size());
    std::string joined = " ";
    for (const auto &x : words) joined += x + " ";
    for (const auto &cue : options.reasoning_cues) {
        std::string c = cue;
        for (char &ch : c) ch = char(std::tolower(static_cast<unsigned char>(ch)));
        if (joined.find(" " + c + " ") != std::string::npos) {
            s.cue = cue;
            break;
        }
    }
    // Term weights as the extractive answer has them.
    std::map<std::string, double> idf(retrieved.term_idf.begin(), retrieved.term_idf.end()), weight;
    double total = 0;
    for (const auto &t : analyze(question)) {
        if (weight.count(t)) continue;
        auto it = idf.find(t);
        weight[t] = std::max(it == idf.end() ? 1.0 : it->second, 0.1);
        total += weight[t];
    }
    if (total <= 0 || retrieved.hits.empty()) return s;
    std::vector<std::set<std::string>> held;
    std::set<std::string> all;
    for (const auto &h : retrieved.hits) {
        std::set<std::string> terms;
        for (auto &t : analyze(h.text + " " + h.heading + " " + h.title))
            if (weight.count(t)) terms.insert(t);
        all.insert(terms.begin(), terms.end());
        held.push_back(std::move(terms));
    }
    auto mass = [&](const std::set<std::string> &terms) {
        double m = 0;
        for (const auto &t : terms) m += weight[t];
        return m;
    };
    s.confidence = mass(held[0]) / total;
    // Greedy cover: each next source adds the most weight not yet held.
    const double goal = options.source_cover * mass(all);
    std::set<std::string> covered;
    std::vector<bool> used(held.size());
    while (goal > 0 && mass(covered) < goal - 1e-9) {
        size_t best = held.size();
        double gain = 0;
        for (size_t i = 0; i < held.size(); ++i) {
            if (used[i]) continue;
            std::set<std::string> more = covered;
            more.insert(held[i].begin(), held[i].end());
            double g = mass(more) - mass(covered);
            if (g > gain + 1e-12) {
                gain = g;
                best = i;
            }
        }
        if (best == held.size()) break;
        used[best] = true;
        covered.insert(held[best].begin(), held[best].end());
        ++s.sources_needed;
    }
    return s;
}

RouteDecision choose_route(const RouterOptions &o, const RouteSignals &s, bool local_fits) {
    RouteDecision d;
    d.signals = s;
    auto pct = [](double x) { return std::to_string(int(x * 100 + 0.5)) + "%"; };
    auto remote = [&](std::string why) {
        d.remote = true;
        d.reason = std::move(why);
        return d;
    };
    if (o.policy == RoutePolicy::local) {
        d.reason = "route local (configured)";
        return d;
    }
    if (o.policy == RoutePolicy::remote) return remote("route remote (configured)");
    if (s.sources_needed == 0) {
        d.reason = "no retrieved source holds any of the question's terms";
        return d;
    }
    if (!local_fits)
        return remote("the " + std::to_string(std::max(s.sources_needed, 1)) + " sources it needs do not fit the local model's context");
    if (!s.cue.empty()) return remote("the question asks for reasoning ('" + s.cue + "')");
    if (s.sources_needed > o.max_local_sources)
        return remote("the answer needs " + std::to_string(s.sources_needed) + " sources (local: at most " +
                      std::to_string(o.max_local_sources) + ")");
    if (s.question_words > o.max_local_question_words)
        return remote("the question is " + std::to_string(s.question_words) + " words long (local: at most " +
                      std::to_string(o.max_local_question_words) + ")");
    if (s.confidence < o.min_confidence)
        return remote("retrieval is unsure: the best source holds " + pct(s.confidence) + " of the question (local: at least " +
                      pct(o.min_confidence) + ")");
    d.reason = "a short factual question (" + std::to_string(s.question_words) + " words) that " +
               std::to_string(std::max(s.sources_needed, 1)) + " source(s) answer, the best holding " + pct(s.confidence) +
               " of it";
    return d;
}

}  // namespace saem
