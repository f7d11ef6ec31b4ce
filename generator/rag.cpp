// Retrieval-augmented answers: retrieved chunks become numbered sources inside the model's prompt,
// as many as fit the context, and the model answers from them with [n] citations. The model is a
// ChatModel: the local decoder or a remote server get the same messages.
#include "generator/generator.h"
#include "generator/grounding.h"

#include <cstdio>
#include <regex>
#include <set>

namespace saem {

namespace {

const char *kInstructions =
    "Answer the question using only the numbered sources below. Cite every source you use with its number in "
    "square brackets, like [1]. If the sources do not contain the answer, say that they do not.";

}  // namespace

std::string source_block(int number, const Hit &h) {
    std::string head = "[" + std::to_string(number) + "] " + (h.title.empty() ? h.path : h.title);
    if (!h.heading.empty() && h.heading != h.title) head += " — " + h.heading;
    return head + "\n" + h.text + "\n\n";
}

std::vector<ChatMessage> rag_messages(const std::string &question, const std::string &sources, const std::vector<ChatMessage> &history) {
    std::vector<ChatMessage> m{{"system", kInstructions}};
    m.insert(m.end(), history.begin(), history.end());
    m.push_back({"user", "Sources:\n\n" + sources + "Question: " + question});
    return m;
}

// ---- LocalChat

LocalChat::LocalChat(nn::Decoder &decoder, const std::string &chat_template, std::string name)
    : decoder_(decoder), name_(name.empty() ? decoder.architecture() : std::move(name)) {
    try {
        format_ = chat_format(decoder.tokenizer(), chat_template);
    } catch (const std::invalid_argument &) {
        if (!chat_template.empty()) throw;
        chat_ = false;  // a base model: the turns as plain text
    }
}

int LocalChat::context_length() const { return decoder_.context_length(); }

// A base model reads the system text, then each user turn, each assistant turn after "Answer:",
// and ends on "Answer:" for it to continue.
std::vector<int32_t> LocalChat::prompt(const std::vector<ChatMessage> &messages) const {
    if (chat_) return chat_prompt(decoder_.tokenizer(), format_, messages);
    std::string text;
    for (const auto &m : messages) {
        if (m.role == "assistant") text += "\nAnswer: " + m.content + "\n\n";
        else text += m.content + (m.role == "system" ? "\n\n" : "");
    }
    return raw_prompt(decoder_.tokenizer(), text + "\nAnswer:");
}

int LocalChat::prompt_tokens(const std::vector<ChatMessage> &messages) const { return int(prompt(messages).size()); }

Generation LocalChat::chat(const std::vector<ChatMessage> &messages, const GenerateOptions &options, const TextSink &on_text) {
    return generate(decoder_, prompt(messages), options, on_text);
}

// ---- answers

Answer answer_generated(ChatModel &model, const std::string &question, const Retrieved &retrieved,
                        const GeneratedAnswerOptions &options, const TextSink &on_text) {
    Answer answer;
    answer.method = "generated";
    answer.model = model.name();
    const std::vector<Hit> &hits = retrieved.hits;
    if (hits.empty()) {
        answer.text = "Nothing relevant to the question was found in the index.";
        answer.note = "No source matched, so the model was not asked.";
        return answer;
    }
    if (options.min_support > 0) {
        ExtractiveOptions support;
        support.min_support = options.min_support;
        if (double found = answer_support(question, retrieved, support); found < options.min_support) {
            answer.text = "The documents do not answer the question: the best passage supports it too weakly.";
            char why[160];
            std::snprintf(why, sizeof why, "Abstained without asking the model: the best passage's support %.2f is below %.2f.", found,
                          options.min_support);
            answer.note = why;
            return answer;
        }
    }
    // Sources in rank order while the prompt leaves room for the answer; the conversation's oldest
    // turns give way when even the best source does not fit with them.
    const int budget = model.context_length() - options.generation.max_tokens;
    std::vector<ChatMessage> history = options.history;
    std::string sources;
    std::vector<const Hit *> given;
    for (;;) {
        for (const Hit &h : hits) {
            std::string more = sources + source_block(int(given.size()) + 1, h);
            if (model.prompt_tokens(rag_messages(question, more, history)) > budget) break;
            sources = std::move(more);
            given.push_back(&h);
        }
        if (!given.empty() || history.empty()) break;
        history.erase(history.begin());
    }
    if (given.empty())
        throw nn::ContextError("the question and the best source do not fit the model's context of " +
                               std::to_string(model.context_length()) + " tokens with room for " +
                               std::to_string(options.generation.max_tokens) + " answer tokens");
    Generation g = model.chat(rag_messages(question, sources, history), options.generation, on_text);
    answer.found = true;
    answer.text = g.text;
    answer.prompt_tokens = g.prompt_tokens;
    answer.completion_tokens = g.completion_tokens;
    answer.prompt_seconds = g.prompt_seconds;
    answer.generation_seconds = g.generation_seconds;
    answer.stop_reason = g.stop_reason;
    std::set<int> cited;
    static const std::regex marker(R"(\[(\d{1,3})\])");
    for (auto it = std::sregex_iterator(g.text.begin(), g.text.end(), marker); it != std::sregex_iterator(); ++it) {
        int n = std::stoi((*it)[1]);
        if (n >= 1 && n <= int(given.size())) cited.insert(n);
    }
    for (size_t i = 0; i < given.size(); ++i) {
        if (!cited.empty() && !cited.count(int(i) + 1)) continue;
        const Hit &h = *given[i];
        answer.citations.push_back(citation_of(int(i) + 1, h));
    }
    answer.note = "Generated by " + model.name() + " from " + std::to_string(given.size()) + " of " +
                  std::to_string(hits.size()) + " retrieved sources (" + std::to_string(g.prompt_tokens) + " prompt tokens, " +
                  std::to_string(answer.completion_tokens) + " generated, stopped: " + g.stop_reason + ")" +
                  (history.size() < options.history.size()
                       ? "; the " + std::to_string(options.history.size() - history.size()) + " oldest turns were left out to fit"
                       : "") +
                  (cited.empty() ? "; the answer cites no source, so every source given is listed." : ".") +
                  (g.error.empty() ? "" : " The model failed after part of the answer: " + g.error);
    ground_answer(answer, given, options.grounding);
    return answer;
}

Answer answer_generated(nn::Decoder &decoder, const std::string &question, const Retrieved &retrieved,
                        const GeneratedAnswerOptions &options, const TextSink &on_text) {
    LocalChat model(decoder, options.chat_template);
    return answer_generated(model, question, retrieved, options, on_text);
}

}  // namespace saem
