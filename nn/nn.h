// nn: the model runtime shared by the encoder and the decoder: text units (UTF-8 checks, sentence
// boundaries, token counting), weight files, tokenizers and embedders. The chunker counts tokens
// through TokenCounter so that a model's tokenizer replaces the approximation when one is set.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace saem::nn {

// Byte offset of the first invalid UTF-8 sequence (overlong forms, surrogates and code points
// above U+10FFFF are invalid), or npos when the whole text is valid.
size_t find_invalid_utf8(std::string_view text);

// Length in bytes of the UTF-8 sequence that starts with lead byte c (1 for a stray byte).
inline size_t utf8_length(unsigned char c) {
    return c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 1;
}

// Sentence spans [begin, end) in byte offsets, trailing whitespace excluded, covering every
// non-blank part of text. Boundaries: . ! ? (plus closing quotes/brackets) followed by space,
// CJK full stops, and blank lines.
std::vector<std::pair<size_t, size_t>> split_sentences(std::string_view text);

// Counts the tokens a model would see for a piece of text.
struct TokenCounter {
    virtual ~TokenCounter() = default;
    virtual size_t count(std::string_view text) const = 0;
};

// Stand-in used until an encoder is configured: roughly what a WordPiece vocabulary produces
// (one token per short word, more for long ones, one per punctuation mark and per CJK character).
struct ApproxTokenCounter final : TokenCounter {
    size_t count(std::string_view text) const override;
};

}  // namespace saem::nn

// ---- Weight files -------------------------------------------------------------------------------

#include <cstdint>
#include <memory>
#include <stdexcept>

namespace saem::nn {

// A model file that is missing, truncated, corrupt or of a kind saem does not support. The
// message names the file and, where it applies, the tensor and what was expected.
struct ModelError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Element types. The quantised ones are ggml's blocks: BLOCK elements stored in block_bytes.
enum class DType : uint8_t { F32, F16, BF16, I8, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K };
const char *dtype_name(DType type);
size_t dtype_size(DType type);        // bytes per element of the unquantised types, 0 otherwise
size_t block_elements(DType type);    // 1 for the unquantised types
size_t block_bytes(DType type);
size_t row_bytes(DType type, int64_t elements);  // throws ModelError if elements is not whole blocks

// A tensor inside a mapped file. Row-major; shape[0] is the outermost dimension (safetensors
// order, the reverse of GGUF's ne[]).
struct Tensor {
    std::string name;
    DType type = DType::F32;
    std::vector<int64_t> shape;
    const uint8_t *data = nullptr;
    size_t bytes = 0;
    int64_t elements() const;
};

// A read-only memory map of a whole file.
class MappedFile {
public:
    explicit MappedFile(const std::string &path);
    ~MappedFile();
    MappedFile(const MappedFile &) = delete;
    MappedFile &operator=(const MappedFile &) = delete;
    const uint8_t *data() const { return data_; }
    size_t size() const { return size_; }
    const std::string &path() const { return path_; }

private:
    std::string path_;
    const uint8_t *data_ = nullptr;
    size_t size_ = 0;
};

// Hugging Face safetensors: an 8-byte header length, a JSON header, then the tensor bytes.
class SafeTensors {
public:
    explicit SafeTensors(const std::string &path);
    const Tensor *find(const std::string &name) const;
    // The named tensor, checked against the expected shape (-1: any size in that dimension).
    const Tensor &get(const std::string &name, const std::vector<int64_t> &shape) const;
    const std::vector<Tensor> &tensors() const { return tensors_; }
    const std::string &path() const { return file_.path(); }

private:
    MappedFile file_;
    std::vector<Tensor> tensors_;
    std::unordered_map<std::string, std::string> unreadable_;  // name -> dtype saem does not read
};

// Element i of a tensor of any supported type, as float.
float element(const Tensor &t, int64_t i);
// Row r of a tensor (the innermost dimension, contiguous) dequantised to float.
void dequantize_row(const Tensor &t, int64_t row, float *out);
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

// llama.cpp's GGUF (versions 2 and 3): typed metadata, then tensor infos, then aligned data.
// Tensors are mapped, not copied.
class Gguf {
public:
    explicit Gguf(const std::string &path);
    struct Value {
        enum Type : uint32_t { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 } type = U32;
        Type element_type = U32;  // of an ARRAY
        double number = 0;        // every numeric and bool scalar
        std::string text;         // STRING
        std::vector<double> numbers;       // numeric and bool arrays
        std::vector<std::string> strings;  // string arrays
    };
    const Value *find(const std::string &key) const;
    std::string get_string(const std::string &key) const;      // throws ModelError naming the key
    double get_number(const std::string &key) const;
    double get_number(const std::string &key, double fallback) const;
    const std::vector<std::string> &get_strings(const std::string &key) const;
    const Tensor *find_tensor(const std::string &name) const;
    const Tensor &tensor(const std::string &name, const std::vector<int64_t> &shape) const;
    const std::vector<Tensor> &tensors() const { return tensors_; }
    const std::string &path() const { return file_.path(); }
    uint32_t version() const { return version_; }

private:
    MappedFile file_;
    uint32_t version_ = 0;
    std::unordered_map<std::string, Value> meta_;
    std::vector<Tensor> tensors_;
};

// Writes GGUF v3 files: test tooling and converters.
class GgufWriter {
public:
    void add(const std::string &key, const std::string &value);
    void add(const std::string &key, const char *value) { add(key, std::string(value)); }
    void add_u32(const std::string &key, uint32_t value);
    void add_f32(const std::string &key, float value);
    void add_bool(const std::string &key, bool value);
    void add(const std::string &key, const std::vector<std::string> &values);
    void add_i32s(const std::string &key, const std::vector<int32_t> &values);
    void add_f32s(const std::string &key, const std::vector<float> &values);
    // shape outermost first; data row-major floats, stored as type (F32, F16, Q8_0, Q4_0, Q5_0, Q4_K, Q6_K).
    void add_tensor(const std::string &name, const std::vector<int64_t> &shape, DType type, const float *data);
    void write(const std::string &path) const;

private:
    std::string meta_;
    uint64_t meta_count_ = 0;
    struct Pending {
        std::string name;
        std::vector<int64_t> shape;
        DType type;
        std::string bytes;
    };
    std::vector<Pending> tensors_;
};

// ---- Tokenizers ---------------------------------------------------------------------------------

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
    int32_t unk_id = -1, cls_id = -1, sep_id = -1, pad_id = 0;
    bool lowercase = true, strip_accents = true, clean_text = true, split_cjk = true;
    size_t max_chars_per_word = 100;
    std::string prefix = "##";

private:
    void index();
    std::string normalise(std::string_view text) const;
    void word_pieces(std::string_view word, std::vector<int32_t> &out) const;
    std::vector<std::string> tokens_;
    std::unordered_map<std::string, int32_t> ids_;
};

// Counts tokens with a model's tokenizer, for the chunker.
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
    // EOS, EOT and the end-of-turn markers of the chat formats saem knows.
    bool ends_generation(int32_t id) const;
    size_t vocab_size() const { return tokens_.size(); }
    const std::string &token(int32_t id) const { return tokens_.at(size_t(id)); }
    const char *pre_name() const;  // "smollm", "qwen2", ..., "sentencepiece"

    Kind kind = Kind::ByteLevel;
    Pre pre = Pre::Gpt2;
    int32_t bos_id = -1, eos_id = -1, eot_id = -1, unk_id = -1;
    bool add_bos = false, add_space_prefix = true, nfc = false, ignore_merges = false;
    // Each source is read with its publisher's semantics: Hugging Face's Digits pre-tokenizer splits
    // ASCII digits (tokenizer.json), llama.cpp's smollm regex every \p{N} (GGUF); Hugging Face
    // applies Qwen2's NFC normaliser, llama.cpp does not.
    bool ascii_digits = false;
    std::string chat_template;

private:
    void index();
    void find_end_tokens();
    void add_merge(int32_t left, int32_t right, int32_t merged, float priority);
    void merge_word(std::string_view word, std::vector<int32_t> &out) const;
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

// ---- Decoders -----------------------------------------------------------------------------------

// A model's context would overflow: the message says how many tokens were asked for and the limit.
struct ContextError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct DecoderOptions {
    int threads = 0;        // 0: every hardware thread
    int context = 4096;     // tokens the cache holds; capped at the model's trained context; 0: the model's
    int batch = 512;        // prompt tokens per forward pass
};

// A llama-family decoder from a GGUF file (architectures llama and qwen2), run on the quantised
// weights as they are mapped. One sequence at a time: eval() appends tokens to the key/value cache.
class Decoder {
public:
    static std::unique_ptr<Decoder> load(const std::string &path, const DecoderOptions &options = {});
    virtual ~Decoder() = default;
    virtual const Bpe &tokenizer() const = 0;
    virtual std::string architecture() const = 0;
    // One line: architecture, sizes, tensor types, tokenizer, context, kernels, threads.
    virtual std::string describe() const = 0;
    virtual int vocab_size() const = 0;
    virtual int context_length() const = 0;
    virtual int n_past() const = 0;
    // Runs tokens at the positions after n_past() and returns the logits of the last one
    // (vocab_size() floats, valid until the next call). Throws ContextError when they do not fit.
    virtual const float *eval(const int32_t *tokens, size_t n) = 0;
    // Forgets cached positions from n on.
    virtual void truncate(int n) = 0;
};

// ---- Embedders ----------------------------------------------------------------------------------

// Turns texts into unit-length (when the model normalises) float vectors of dim() floats each,
// written row-major to out.
class Embedder {
public:
    virtual ~Embedder() = default;
    virtual int dim() const = 0;
    // Name, weights hash, dimension and pooling: two stores agree on vectors only if this does.
    virtual std::string identity() const = 0;
    virtual void embed(const std::vector<std::string> &texts, float *out) const = 0;
    virtual const TokenCounter &token_counter() const = 0;
    // Texts are cut to this many tokens ([CLS]/[SEP] included for transformers).
    virtual size_t max_tokens() const = 0;
    virtual void set_max_tokens(size_t n) = 0;
};

// Cross-encoder rerankers (e.g. ms-marco-MiniLM): one relevance logit per (query, passage) pair,
// higher is more relevant.
class Reranker {
public:
    virtual ~Reranker() = default;
    virtual std::vector<float> score(const std::string &query, const std::vector<std::string> &passages) const = 0;
    virtual std::string identity() const = 0;
};

// A Hugging Face BertForSequenceClassification folder with one label (config.json,
// model.safetensors, tokenizer.json or vocab.txt).
std::unique_ptr<Reranker> load_reranker(const std::string &path);

// Loads an embedder from a model folder or file. Supported: Model2Vec static models (config.json
// model_type "model2vec", or a sentence-transformers StaticEmbedding folder); BERT encoders as a
// GGUF file (llama.cpp's "bert" architecture) or a sentence-transformers / Hugging Face folder
// (config.json, model.safetensors, tokenizer.json or vocab.txt, 1_Pooling, Normalize).
std::unique_ptr<Embedder> load_embedder(const std::string &path);

}  // namespace saem::nn
