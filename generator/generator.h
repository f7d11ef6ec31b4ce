// generator: answers a question from retrieved chunks, and runs decoder models.
//
// It takes what retrieval found (Retrieved: plain hits) and never sees a store. Without a decoder
// model the answer is extractive: the sentences of the top chunks that best cover the question's
// terms, quoted verbatim, each with a numbered citation.
//
// Threads: answer_extractive is a pure function (any thread). A Decoder holds one sequence, so
// generate() and answer_generated() on one decoder are called by one thread at a time.
#pragma once

#include "nn/decoder.h"
#include "nn/tokenizer.h"
#include "retrieval/hit.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace saem {

struct Citation {
    int number = 0;  // [n] in the answer text
    std::string path, title, heading;
    int page = 0;
    int64_t document_id = 0, chunk_id = 0;
    std::string text;  // the cited passage: the chunk's text
};

// The citation [number] of a retrieved chunk.
Citation citation_of(int number, const Hit &hit);

struct AnswerSentence {
    std::string text;
    int citation = 0;          // the first of citations (0: none)
    std::vector<int> citations;
    double score = 0;          // extractive: share of the question's weighted terms the sentence contains; generated: support
    bool supported = true;     // generated: its content is in the sources it cites (generator/grounding.h)
    double support = 1;        // generated: the share of its content words, numbers and names found there
};

struct Answer {
    bool found = false;
    std::string text;  // sentences with [n] markers, or a plain statement that nothing was found
    std::vector<AnswerSentence> sentences;
    std::vector<Citation> citations;
    std::string method = "extractive";
    std::string note;  // what a generator model would add
    // Generated answers: the model that wrote it and what it used.
    std::string model;
    int prompt_tokens = 0, completion_tokens = 0;
    double prompt_seconds = 0, generation_seconds = 0;  // as Generation's
    std::string stop_reason;  // as Generation::stop_reason
    // Where the answer was generated ("local", "remote"; empty for extractive) and why
    // (generator/router.h), including any fallback.
    std::string route, route_reason;
};

struct ExtractiveOptions {
    int max_sentences = 3;
    double min_coverage = 0.3;  // below this share of the question's weight a sentence is not an answer
    // The best sentence's score (its coverage of the question's weighted terms, discounted for a
    // lower-ranked chunk and for fragments) must reach this, else the answer abstains
    // (found: false): the documents do not answer the question.
    double min_support = 0.35;
};

// The sentences of the retrieved chunks that best cover the question's terms, weighted by
// retrieved.term_idf (SearchRequest::term_idf; a term it lacks weighs 1), quoted verbatim with
// citations.
Answer answer_extractive(const std::string &question, const Retrieved &retrieved, const ExtractiveOptions &options = {});
// How well the retrieved chunks support an answer: the best sentence's score as
// answer_extractive ranks them (0 when none covers min_coverage of the question).
double answer_support(const std::string &question, const Retrieved &retrieved, const ExtractiveOptions &options = {});

// ---- Decoder generation -------------------------------------------------------------------------

struct SamplingOptions {
    bool greedy = false;       // argmax, ignoring everything below
    float temperature = 0.8f;  // <= 0 is greedy too
    int top_k = 40;            // 0: off
    float top_p = 0.95f;       // 1: off
    float min_p = 0.05f;       // 0: off; drops tokens below min_p times the best one's probability
    float repeat_penalty = 1.1f;  // 1: off; applied to the last repeat_last_n tokens
    int repeat_last_n = 64;
    uint64_t seed = 0;  // 0: a random seed
};

struct GenerateOptions {
    SamplingOptions sampling;
    int max_tokens = 256;
    std::vector<std::string> stop;  // generation ends before the first occurrence of any of these
    // When set, read before the prompt is run and before every step: true ends the generation with
    // stop_reason "cancelled" (another thread sets it: a client that left, a server stopping).
    const std::atomic<bool> *cancel = nullptr;
};

struct Generation {
    std::string text;                // without the stop string or end token that ended it
    std::vector<int32_t> tokens;     // generated tokens, the ending one excluded (local models)
    int prompt_tokens = 0;
    int completion_tokens = 0;       // tokens.size() locally; the server's count from a remote one
    double prompt_seconds = 0, generation_seconds = 0;
    std::string stop_reason;  // "end" (an end-of-generation token), "stop" (a stop string), "length", "cancelled",
                              // "error" (a remote server failed after part of the answer: error says how)
    std::string error;
    double prompt_tokens_per_second() const { return prompt_seconds > 0 ? prompt_tokens / prompt_seconds : 0; }
    double generation_tokens_per_second() const;
};

// Called with each piece of text once it is final (never half a UTF-8 character, never part of a
// stop string); returning false cancels.
using TextSink = std::function<bool(std::string_view)>;
// Called after every step with the chosen token and the logits it was chosen from (tests, traces).
using StepSink = std::function<void(int32_t token, const float *logits)>;

// Runs prompt (which the caller has tokenised, BOS included when the model wants it) through the
// decoder from an empty cache, then samples up to max_tokens. Throws nn::ContextError when the
// prompt does not fit the context; stops with "length" when the context fills while generating.
Generation generate(nn::Decoder &decoder, const std::vector<int32_t> &prompt, const GenerateOptions &options,
                    const TextSink &on_text = {}, const StepSink &on_step = {});

// The prompt tokens of raw text: BOS when the vocabulary asks for it, then the text.
std::vector<int32_t> raw_prompt(const nn::Bpe &bpe, std::string_view text);

// ---- Chat templates -------------------------------------------------------------------------------

struct ChatMessage {
    std::string role;  // system, user, assistant
    std::string content;
};

enum class ChatFormat { chatml, llama3 };

// The format of a model's tokenizer.chat_template, or of name ("chatml", "llama3") when given.
// Throws std::invalid_argument naming what it found when it does not recognise the template.
ChatFormat chat_format(const nn::Bpe &bpe, const std::string &name = {});
const char *chat_format_name(ChatFormat f);

// Prompt tokens for messages followed by the assistant's turn. The template's markers are
// inserted as their special tokens; message text is encoded as plain text, so markers typed in a
// message stay text. A ChatML template's built-in system prompt is used when no system message is
// given.
std::vector<int32_t> chat_prompt(const nn::Bpe &bpe, ChatFormat format, const std::vector<ChatMessage> &messages);

// ---- Chat models: what generates an answer --------------------------------------------------------

// Something that continues a conversation: the local decoder (LocalChat) or an OpenAI-compatible
// server (generator/remote.h). Threads: as the implementation says.
class ChatModel {
public:
    virtual ~ChatModel() = default;
    virtual std::string name() const = 0;
    // Tokens the model's context holds, prompt and answer together.
    virtual int context_length() const = 0;
    // The prompt tokens messages take (exact for a local model, an estimate for a remote one):
    // sources are fitted to the context by it.
    virtual int prompt_tokens(const std::vector<ChatMessage> &messages) const = 0;
    // Generates the assistant's next turn. Throws nn::ContextError when the prompt does not fit.
    virtual Generation chat(const std::vector<ChatMessage> &messages, const GenerateOptions &options, const TextSink &on_text) = 0;
};

// The local decoder as a ChatModel: its chat template when it has one (or chat_template names
// one), else the turns as plain text (a base model). Threads: as the decoder (one at a time).
class LocalChat : public ChatModel {
public:
    LocalChat(nn::Decoder &decoder, const std::string &chat_template = {}, std::string name = {});
    std::string name() const override { return name_; }
    int context_length() const override;
    int prompt_tokens(const std::vector<ChatMessage> &messages) const override;
    Generation chat(const std::vector<ChatMessage> &messages, const GenerateOptions &options, const TextSink &on_text) override;
    std::vector<int32_t> prompt(const std::vector<ChatMessage> &messages) const;

private:
    nn::Decoder &decoder_;
    bool chat_ = true;
    ChatFormat format_ = ChatFormat::chatml;
    std::string name_;
};

// ---- Answers from a model ---------------------------------------------------------------------------

// How a generated answer is checked against its sources (generator/grounding.h).
struct GroundingOptions {
    double min_support = 0.6;  // a sentence with less of its content in its sources is unsupported
    bool strict = false;       // remove unsupported sentences from the answer
};

struct GeneratedAnswerOptions {
    GenerateOptions generation;
    GroundingOptions grounding;
    std::string chat_template;  // "", "chatml", "llama3": see chat_format()
    // Below this answer_support() the model is not asked and the answer abstains (found: false),
    // as the extractive answer does; 0: always ask.
    double min_support = ExtractiveOptions{}.min_support;
    // Earlier turns of the conversation (chat completions), oldest first: they go before the
    // question, and the oldest are left out when they would crowd out the best source.
    std::vector<ChatMessage> history;
};

// The messages that ask for an answer to question from sources (numbered "[n] title" blocks) only,
// with [n] citations, after the conversation's earlier turns.
std::vector<ChatMessage> rag_messages(const std::string &question, const std::string &sources, const std::vector<ChatMessage> &history);
// The numbered block of source `number` in rag_messages' sources.
std::string source_block(int number, const Hit &hit);

// Numbers the retrieved chunks as sources, puts as many as the model's context allows (after the
// question and max_tokens of answer) into a prompt that asks for an answer from those sources only
// with [n] citations, and streams the model's answer to on_text. Citations are the sources the
// answer cites ([n] markers), or every source given when it cites none. With no hits, or none that
// supports an answer (options.min_support), the model is not asked.
Answer answer_generated(ChatModel &model, const std::string &question, const Retrieved &retrieved,
                        const GeneratedAnswerOptions &options, const TextSink &on_text = {});
// The same with the local decoder (LocalChat with options.chat_template).
Answer answer_generated(nn::Decoder &decoder, const std::string &question, const Retrieved &retrieved,
                        const GeneratedAnswerOptions &options, const TextSink &on_text = {});

}  // namespace saem
