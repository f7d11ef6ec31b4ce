// WordPiece with the semantics of Hugging Face's BertNormalizer + BertPreTokenizer + WordPiece
// model (the Rust tokenizers crate, which the Python and JS ports follow).
#include "nn/tokenizer.h"

#include "nn/weights.h"
#include "nn/internal.h"

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <filesystem>
#include <fstream>

namespace saem::nn {

namespace {

bool is_rust_whitespace(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Unicode "Other" (Cc, Cf, Cn, Co, Cs), except the three whitespace controls. This is what makes
// text cleaning delete soft hyphens, zero-width spaces, direction marks and C1 controls.
bool is_control(int32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return false;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_CS:
        return true;
    default:
        return false;
    }
}

bool is_punctuation(int32_t c) {
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
    auto cat = utf8proc_category(c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

// BERT's "Chinese character" blocks (CJK ideographs; not Hangul or kana).
bool is_cjk_ideograph(int32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void append_utf8(std::string &out, int32_t c) {
    utf8proc_uint8_t buf[4];
    utf8proc_ssize_t n = utf8proc_encode_char(c, buf);
    out.append(reinterpret_cast<char *>(buf), size_t(n));
}

std::vector<int32_t> decode(std::string_view text) {
    std::vector<int32_t> cps;
    cps.reserve(text.size());
    const auto *s = reinterpret_cast<const utf8proc_uint8_t *>(text.data());
    size_t i = 0;
    while (i < text.size()) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(s + i, utf8proc_ssize_t(text.size() - i), &c);
        if (n <= 0) { cps.push_back(0xFFFD); ++i; continue; }  // cleaned away like any U+FFFD
        cps.push_back(c);
        i += size_t(n);
    }
    return cps;
}

}  // namespace

std::string WordPiece::normalise(std::string_view text) const {
    std::vector<int32_t> cps = decode(text), stage;
    stage.reserve(cps.size());
    for (int32_t c : cps) {
        if (clean_text_) {
            if (c == 0 || c == 0xFFFD || is_control(c)) continue;
            if (is_rust_whitespace(c)) c = ' ';
        }
        if (split_cjk_ && is_cjk_ideograph(c)) {
            stage.push_back(' ');
            stage.push_back(c);
            stage.push_back(' ');
        } else {
            stage.push_back(c);
        }
    }
    std::string out;
    out.reserve(stage.size());
    utf8proc_int32_t decomposed[32];
    for (int32_t c : stage) {
        int n = 1;
        if (strip_accents_ && c >= 0x80) {
            int last = 0;
            auto r = utf8proc_decompose_char(c, decomposed, 32, UTF8PROC_DECOMPOSE, &last);
            n = r > 0 ? int(r) : 1;
            if (r <= 0) decomposed[0] = c;
        } else {
            decomposed[0] = c;
        }
        for (int k = 0; k < n; ++k) {
            int32_t d = decomposed[k];
            if (strip_accents_ && utf8proc_category(d) == UTF8PROC_CATEGORY_MN) continue;
            if (lowercase_) {
                if (d == 0x130) {  // İ: the one unconditional multi-character lowercase mapping
                    out += 'i';
                    append_utf8(out, 0x307);
                    continue;
                }
                d = d < 0x80 ? (d >= 'A' && d <= 'Z' ? d + 32 : d) : utf8proc_tolower(d);
            }
            append_utf8(out, d);
        }
    }
    return out;
}

void WordPiece::word_pieces(std::string_view word, std::vector<int32_t> &out) const {
    // Character boundaries of the word.
    std::vector<size_t> bounds;
    for (size_t i = 0; i < word.size(); i += utf8_length(static_cast<unsigned char>(word[i]))) bounds.push_back(i);
    bounds.push_back(word.size());
    size_t chars = bounds.size() - 1;
    if (chars > max_chars_per_word_) { out.push_back(unk_id_); return; }
    size_t mark = out.size();
    std::string candidate;
    for (size_t start = 0; start < chars;) {
        int32_t found = -1;
        size_t end = chars;
        for (; end > start; --end) {
            candidate.clear();
            if (start > 0) candidate = prefix_;
            candidate.append(word.substr(bounds[start], bounds[end] - bounds[start]));
            auto it = ids_.find(candidate);
            if (it != ids_.end()) { found = it->second; break; }
        }
        if (found < 0) {  // any unmatched piece makes the whole word unknown
            out.resize(mark);
            out.push_back(unk_id_);
            return;
        }
        out.push_back(found);
        start = end;
    }
}

std::vector<int32_t> WordPiece::encode(std::string_view text) const {
    std::string norm = normalise(text);
    std::vector<int32_t> ids;
    std::vector<int32_t> cps;
    size_t word_start = std::string::npos;
    const auto *s = reinterpret_cast<const utf8proc_uint8_t *>(norm.data());
    size_t i = 0;
    while (i < norm.size()) {
        utf8proc_int32_t c;
        utf8proc_ssize_t n = utf8proc_iterate(s + i, utf8proc_ssize_t(norm.size() - i), &c);
        if (n <= 0) n = 1, c = 0xFFFD;
        bool space = is_rust_whitespace(c), punct = !space && is_punctuation(c);
        if (space || punct) {
            if (word_start != std::string::npos) word_pieces(std::string_view(norm).substr(word_start, i - word_start), ids);
            word_start = std::string::npos;
            if (punct) word_pieces(std::string_view(norm).substr(i, size_t(n)), ids);
        } else if (word_start == std::string::npos) {
            word_start = i;
        }
        i += size_t(n);
    }
    if (word_start != std::string::npos) word_pieces(std::string_view(norm).substr(word_start), ids);
    return ids;
}

WordPiece::Encoding WordPiece::encode_for_model(std::string_view a, std::string_view b, size_t max_tokens) const {
    std::vector<int32_t> ia = encode(a), ib = b.empty() ? std::vector<int32_t>{} : encode(b);
    size_t specials = b.empty() ? 2 : 3;
    size_t budget = max_tokens > specials ? max_tokens - specials : 0;
    while (ia.size() + ib.size() > budget) {  // longest first, as Hugging Face truncates pairs
        if (ia.size() >= ib.size()) ia.pop_back();
        else ib.pop_back();
    }
    Encoding e;
    e.ids.push_back(cls_id_);
    e.ids.insert(e.ids.end(), ia.begin(), ia.end());
    e.ids.push_back(sep_id_);
    e.type_ids.assign(e.ids.size(), 0);
    if (!b.empty()) {
        e.ids.insert(e.ids.end(), ib.begin(), ib.end());
        e.ids.push_back(sep_id_);
        e.type_ids.resize(e.ids.size(), 1);
    }
    return e;
}

int32_t WordPiece::id_of(const std::string &token) const {
    auto it = ids_.find(token);
    return it == ids_.end() ? -1 : it->second;
}

void WordPiece::index() {
    ids_.clear();
    ids_.reserve(tokens_.size());
    for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], int32_t(i));
    unk_id_ = id_of("[UNK]");
    cls_id_ = id_of("[CLS]");
    sep_id_ = id_of("[SEP]");
    pad_id_ = std::max(0, id_of("[PAD]"));
    if (unk_id_ < 0) throw ModelError("WordPiece vocabulary has no [UNK] token");
}

WordPiece WordPiece::from_tokenizer_json(const std::string &path) {
    auto j = read_json(path);
    if (j.is_null()) throw ModelError(path + ": cannot read");
    if (!j.is_object() || !j.contains("model")) throw ModelError(path + ": not a tokenizer.json (no \"model\")");
    const auto &model = field(j, "model");
    std::string type = model.value("type", "");
    if (type != "WordPiece")
        throw ModelError(path + ": tokenizer model is " + (type.empty() ? "unspecified" : type) + ", expected WordPiece");
    WordPiece wp;
    const auto &vocab = field(model, "vocab");
    if (!vocab.is_object() || vocab.empty()) throw ModelError(path + ": model.vocab is missing or empty");
    wp.tokens_.resize(vocab.size());
    for (const auto &[tok, id] : vocab.items()) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || uint64_t(id.get<int64_t>()) >= wp.tokens_.size())
            throw ModelError(path + ": token id " + id.dump() + " of '" + tok + "' is not an integer from 0 to " +
                             std::to_string(wp.tokens_.size() - 1));
        int64_t i = id.get<int64_t>();
        wp.tokens_[size_t(i)] = tok;
    }
    wp.prefix_ = model.value("continuing_subword_prefix", "##");
    wp.max_chars_per_word_ = size_t(json_int(model, "max_input_chars_per_word", 100, 1, 1 << 20, path));
    const auto &norm = field(j, "normalizer");
    if (norm.is_object()) {
        if (norm.value("type", "") != "BertNormalizer")
            throw ModelError(path + ": normalizer " + norm.value("type", "?") + " is not supported (BertNormalizer)");
        wp.clean_text_ = norm.value("clean_text", true);
        wp.split_cjk_ = norm.value("handle_chinese_chars", true);
        wp.lowercase_ = norm.value("lowercase", true);
        wp.strip_accents_ = field(norm, "strip_accents").is_boolean() ? field(norm, "strip_accents").get<bool>() : wp.lowercase_;
    } else {
        wp.clean_text_ = wp.split_cjk_ = wp.lowercase_ = wp.strip_accents_ = false;
    }
    wp.index();
    std::string unk = model.value("unk_token", "[UNK]");
    wp.unk_id_ = wp.id_of(unk);
    if (wp.unk_id_ < 0) throw ModelError(path + ": unk_token " + unk + " is not in the vocabulary");
    return wp;
}

WordPiece WordPiece::from_vocab_txt(const std::string &path, bool lowercase) {
    std::ifstream in(path);
    if (!in) throw ModelError(path + ": cannot read");
    WordPiece wp;
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        wp.tokens_.push_back(line);
    }
    if (wp.tokens_.empty()) throw ModelError(path + ": empty vocabulary");
    wp.lowercase_ = wp.strip_accents_ = lowercase;
    wp.index();
    return wp;
}

WordPiece WordPiece::from_gguf(const Gguf &g) {
    const auto &tokens = g.get_strings("tokenizer.ggml.tokens");
    WordPiece wp;
    wp.tokens_.reserve(tokens.size());
    const std::string phantom = "\u2581";
    for (const auto &t : tokens) {
        if (t.size() >= 2 && t.front() == '[' && t.back() == ']') wp.tokens_.push_back(t);
        else if (t.rfind(phantom, 0) == 0) wp.tokens_.push_back(t.substr(phantom.size()));
        else wp.tokens_.push_back("##" + t);
    }
    wp.index();
    const size_t n = wp.tokens_.size();
    auto id = [&](const char *key, int32_t fallback) { return gguf_token_id(g, key, fallback, n); };
    wp.unk_id_ = id("tokenizer.ggml.unknown_token_id", wp.unk_id_);
    wp.cls_id_ = id("tokenizer.ggml.cls_token_id", id("tokenizer.ggml.bos_token_id", wp.cls_id_));
    wp.sep_id_ = id("tokenizer.ggml.seperator_token_id", id("tokenizer.ggml.eos_token_id", wp.sep_id_));
    wp.pad_id_ = std::max(0, id("tokenizer.ggml.padding_token_id", wp.pad_id_));
    // Every encoding holds [CLS] and [SEP], and words not in the vocabulary become [UNK].
    if (wp.unk_id_ < 0 || wp.cls_id_ < 0 || wp.sep_id_ < 0)
        throw ModelError(g.path() + ": the vocabulary lacks [UNK], [CLS] or [SEP] (or their token ids)");
    return wp;
}

WordPiece WordPiece::load(const std::string &path) {
    return with_model_errors(path, [&]() -> WordPiece {
        namespace fs = std::filesystem;
        if (fs::is_directory(path)) {
            if (fs::exists(fs::path(path) / "tokenizer.json")) return from_tokenizer_json((fs::path(path) / "tokenizer.json").string());
            if (fs::exists(fs::path(path) / "vocab.txt")) {
                bool lower = true;
                if (auto j = read_json(fs::path(path) / "tokenizer_config.json"); j.is_object()) lower = j.value("do_lower_case", true);
                return from_vocab_txt((fs::path(path) / "vocab.txt").string(), lower);
            }
            throw ModelError(path + ": no tokenizer.json or vocab.txt in this folder");
        }
        if (fs::path(path).extension() == ".txt") return from_vocab_txt(path, true);
        return from_tokenizer_json(path);
    });
}

}  // namespace saem::nn
