// nn/tokenizer.h: the tokenizers: WordPiece for BERT encoders (and the token counter built on it)
// and byte-pair encoding for decoders. Each is built by its static loaders and keeps its settings
// private; what callers need to see is read through accessors.
//
// Threads: a loaded WordPiece or Bpe never changes: encode(), decode() and every other const member
// may be called from any number of threads at once.
#pragma once

#include "nn/text.h"
#include "nn/weights.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace saem::nn {

// WordPiece with Hugging Face BertTokenizer semantics: BertNormalizer (text cleaning, CJK
// ideographs split, accent stripping and lowercasing for uncased models), BertPreTokenizer
// (whitespace and punctuation), greedy longest-match pieces with a "##" prefix, [UNK] for words
// that cannot be pieced or are over max_input_chars_per_word.
class WordPiece {
public:
    // tokenizer.json (model.type WordPiece), or a folder holding it or vocab.txt.
    static WordPiece load(const std::string &path);
    static WordPiece from_tokenizer_json(const std::string &path);
    static WordPiece from_vocab_txt(const std::string &path, bool lowercase);
    // llama.cpp's GGUF vocabulary for BERT ("phantom space": word starts carry U+2581, continuation
    // pieces are bare, [specials] as they are).
    static WordPiece from_gguf(const Gguf &gguf);

    // Token ids without special tokens.
    std::vector<int32_t> encode(std::string_view text) const;
    struct Encoding {
        std::vector<int32_t> ids, type_ids;
    };
    // [CLS] a [SEP] (b [SEP]), truncated longest-first to max_tokens in all.
    Encoding encode_for_model(std::string_view a, std::string_view b = {}, size_t max_tokens = 512) const;

    size_t vocab_size() const { return tokens_.size(); }
    const std::string &token(int32_t id) const { return tokens_.at(size_t(id)); }
    int32_t id_of(const std::string &token) const;  // -1 when absent
    int32_t unk_id() const { return unk_id_; }
    int32_t cls_id() const { return cls_id_; }
    int32_t sep_id() const { return sep_id_; }
    int32_t pad_id() const { return pad_id_; }

private:
    void index();
    std::string normalise(std::string_view text) const;
    void word_pieces(std::string_view word, std::vector<int32_t> &out) const;
    std::vector<std::string> tokens_;
    std::unordered_map<std::string, int32_t> ids_;
    int32_t unk_id_ = -1, cls_id_ = -1, sep_id_ = -1, pad_id_ = 0;
    bool lowercase_ = true, strip_accents_ = true, clean_text_ = true, split_cjk_ = true;
    size_t max_chars_per_word_ = 100;
    std::string prefix_ = "##";
};

// Counts tokens with a model's tokenizer, for the chunker. Holds a reference: the WordPiece must
// outlive it.
struct WordPieceCounter final : TokenCounter {
    explicit WordPieceCounter(const WordPiece &wp) : wordpiece(wp) {}
    size_t count(std::string_view text) const override { return wordpiece.encode(text).size(); }
    const WordPiece &wordpiece;
};

// Byte-pair encoding for decoder models, in the two families GGUF declares with
// tokenizer.ggml.model:
//  - "gpt2": byte-level BPE. Text is split by the model's pre-tokenizer (tokenizer.ggml.pre: gpt2,
//    llama-bpe, qwen2, smollm), each piece's bytes are mapped to printable characters and merged by
//    rank.
//  - "llama": SentencePiece BPE. Spaces become U+2581 ("▁") with one prepended, pieces are merged by
//    score (or merge rank, from tokenizer.json), and a character no piece covers becomes its UTF-8
//    bytes as <0xXX> pieces.
// Control and added tokens are matched by name only (find()), never produced from text, so a user
// cannot smuggle "<|im_end|>" into a prompt.
class Bpe {
public:
    enum class Kind { ByteLevel, SentencePiece };
    enum class Pre { None, Gpt2, Llama3, Qwen2, Smollm };
    // A GGUF file's vocabulary.
    static Bpe from_gguf(const Gguf &gguf);
    // tokenizer.json (model.type BPE) with tokenizer_config.json beside it when present.
    static Bpe from_tokenizer_json(const std::string &path);
    // vocab.json + merges.txt (byte-level) with the given pre-tokenizer (load() takes it from
    // tokenizer_config.json's tokenizer_class: Qwen2Tokenizer, else GPT2Tokenizer's gpt2).
    static Bpe from_vocab_merges(const std::string &vocab_json, const std::string &merges_txt, Pre pre);
    // A .gguf file, a tokenizer.json, or a folder holding tokenizer.json or vocab.json + merges.txt.
    static Bpe load(const std::string &path);
    // True when path holds a BPE vocabulary (as opposed to WordPiece).
    static bool is_bpe(const std::string &path);

    std::vector<int32_t> encode(std::string_view text) const;
    // The bytes a token stands for: "" for control tokens; "▁" as a space and <0xXX> as its byte for
    // SentencePiece; the byte-level characters mapped back to bytes.
    std::string piece(int32_t id) const;
    // Text of a token sequence; SentencePiece's prepended space is dropped at the start.
    std::string decode(const std::vector<int32_t> &ids) const;
    int32_t find(const std::string &token) const;  // -1 when absent
    bool is_control(int32_t id) const;
    // ggml's token type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    int token_type(int32_t id) const { return types_.at(size_t(id)); }
    // EOS, EOT and the end-of-turn markers of the chat formats saem knows.
    bool ends_generation(int32_t id) const;
    size_t vocab_size() const { return tokens_.size(); }
    const std::string &token(int32_t id) const { return tokens_.at(size_t(id)); }
    const char *pre_name() const;  // "smollm", "qwen2", ..., "sentencepiece"

    Kind kind() const { return kind_; }
    Pre pre() const { return pre_; }
    int32_t bos_id() const { return bos_id_; }  // -1 when the vocabulary has none
    int32_t eos_id() const { return eos_id_; }
    int32_t eot_id() const { return eot_id_; }
    int32_t unk_id() const { return unk_id_; }
    // The model expects BOS in front of a prompt.
    bool add_bos() const { return add_bos_; }
    // The Jinja chat template the vocabulary came with ("" when none).
    const std::string &chat_template() const { return chat_template_; }

private:
    struct Loader;  // bpe.cpp: the steps the loaders share
    void index();
    void find_end_tokens();
    void add_merge(int32_t left, int32_t right, int32_t merged, float priority);
    void merge_word(std::string_view word, std::vector<int32_t> &out) const;

    Kind kind_ = Kind::ByteLevel;
    Pre pre_ = Pre::Gpt2;
    int32_t bos_id_ = -1, eos_id_ = -1, eot_id_ = -1, unk_id_ = -1;
    bool add_bos_ = false, add_space_prefix_ = true, nfc_ = false, ignore_merges_ = false;
    // Each source is read with its publisher's semantics: Hugging Face's Digits pre-tokenizer splits
    // ASCII digits (tokenizer.json), llama.cpp's smollm regex every \p{N} (GGUF); Hugging Face
    // applies Qwen2's NFC normaliser, llama.cpp does not.
    bool ascii_digits_ = false;
    std::string chat_template_;
    std::vector<std::string> tokens_;
    std::vector<uint8_t> types_;  // ggml token types: 1 normal, 2 unknown, 3 control, 4 user, 5 unused, 6 byte
    std::vector<float> scores_;
    std::unordered_map<std::string, int32_t> ids_;
    struct Merge {
        float priority;  // lower merges first
        int32_t merged;
    };
    std::unordered_map<uint64_t, Merge> merges_;
    int32_t byte_ids_[256] = {};  // the token of each single byte (its <0xXX> or byte-level character)
    std::vector<int32_t> end_ids_;
};

}  // namespace saem::nn
