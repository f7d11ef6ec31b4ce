// generator/router.h: which model writes an answer when the server has two, the small local one
// (fast, private, a short context) and a large remote one (generator/remote.h).
//
// `auto` decides per question from what saem measures before any model runs:
//   - confidence: the share of the question's weighted terms (idf, as the extractive answer weighs
//     them) that the best source holds. A small model given weak sources guesses.
//   - sources needed: the fewest retrieved sources that together hold `source_cover` of what all
//     of them hold. Joining facts from several passages is where small models fail.
//   - question length and form: long questions and reasoning cues ("why", "compare", "explain").
//   - the local context: whether the needed sources, the question and the answer fit it.
// Any hard signal sends the question to the remote model; otherwise it stays local. The decision
// names the signal, with its value and threshold, as the answer's route_reason.
//
// Threads: pure functions (any thread).
#pragma once

#include "retrieval/hit.h"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace saem {

enum class RoutePolicy { local, remote, automatic };

struct RouterOptions {
    RoutePolicy policy = RoutePolicy::automatic;
    double min_confidence = 0.6;      // below: remote
    int max_local_sources = 2;        // more needed: remote
    int max_local_question_words = 25;
    double source_cover = 0.9;
    std::vector<std::string> reasoning_cues = {"why",     "explain",   "compare",    "comparison", "difference", "differences",
                                               "versus",  "vs",        "contrast",   "analyze",    "analyse",    "evaluate",
                                               "summarize", "summarise", "implications", "tradeoffs", "trade-offs", "pros",
                                               "how does", "how do",   "what if",    "should i"};
};

// RoutePolicy from "local", "remote", "auto"; throws std::invalid_argument.
RoutePolicy parse_route_policy(const std::string &name);
// The config file's "router" object over the defaults: {"policy", "min_confidence",
// "max_local_sources", "max_local_question_words", "source_cover", "reasoning_cues"}. Throws
// std::invalid_argument naming a field of the wrong type or range, or an unknown one.
RouterOptions router_options_from_json(const nlohmann::json &j, RouterOptions base = {});

struct RouteSignals {
    double confidence = 0;
    int sources_needed = 0;
    int question_words = 0;
    std::string cue;  // the first reasoning cue found, or ""
};

// The signals of a question and what retrieval found for it (retrieved.term_idf weighs terms).
RouteSignals route_signals(const RouterOptions &options, const std::string &question, const Retrieved &retrieved);

struct RouteDecision {
    bool remote = false;
    std::string reason;
    RouteSignals signals;
};

// local_fits: the sources needed, the question and the answer fit the local model's context.
RouteDecision choose_route(const RouterOptions &options, const RouteSignals &signals, bool local_fits);

}  // namespace saem
