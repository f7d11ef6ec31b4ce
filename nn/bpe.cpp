// Byte-pair encoding for decoders: vocabularies from GGUF, tokenizer.json or vocab.json + merges.txt,
// and one merge loop for both families. A merge is a pair of adjacent symbols (token ids) with a
// priority: the merge rank for byte-level BPE and tokenizer.json, minus the merged piece's score for
// SentencePiece vocabularies that carry scores instead of merges (GGUF "llama", llama2.c). Lowest
// priority merges first, leftmost among equals, as both Hugging Face and llama.cpp do.
#include "nn/tokenizer.h"

#include "nn/internal.h"
#include "nn/pretokenize.h"

#include <utf8proc.h>

#include <charconv>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <queue>

namespace fs = std::filesystem;

namespace saem::nn {

namespace {

const char *kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's space

std::string utf8(int32_t cp) {
    utf8proc_uint8_t buf[4];
    auto n = utf8proc_encode_char(cp, buf);
    return std::string(reinterpret_cast<char *>(buf), size_t(n));
}

// GPT-2's printable stand-ins for bytes: printable Latin-1 bytes stand for themselves, the rest are
// numbered from U+0100 up.
struct ByteMap {
    std::string to_char[256];
    std::unordered_map<int32_t, uint8_t> to_byte;
    ByteMap() {
        int next = 256;
        for (int b = 0; b < 256; ++b) {
            bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
            int32_t cp = printable ? b : next++;
            to_char[b] = utf8(cp);
            to_byte[cp] = uint8_t(b);
        }
    }
};
const ByteMap &byte_map() {
    static const ByteMap m;
    return m;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
    for (size_t at = 0; (at = s.find(from, at)) != std::string::npos; at += to.size()) s.replace(at, from.size(), to);
    return s;
}

Bpe::Pre pre_from_name(const std::string &name, const std::string &file) {
    if (name == "gpt2" || name == "gpt-2" || name == "default") return Bpe::Pre::Gpt2;
    if (name == "llama-bpe" || name == "llama3") return Bpe::Pre::Llama3;
    if (name == "qwen2") return Bpe::Pre::Qwen2;
    if (name == "smollm") return Bpe::Pre::Smollm;
    throw ModelError(file + ": pre-tokenizer '" + name + "' is not supported (gpt2, llama-bpe, qwen2, smollm)");
}

const char *kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char *kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// tokenizer.json's pre_tokenizer, recognised by shape.
Bpe::Pre pre_from_json(const nlohmann::json &p, const std::string &file) {
    if (p.is_null()) return Bpe::Pre::None;
    std::string type = p.value("type", "");
    if (type == "ByteLevel") return p.value("use_regex", true) ? Bpe::Pre::Gpt2 : Bpe::Pre::None;
    if (type == "Split" && p.contains("pattern") && field(p, "pattern").contains("Regex")) {
        std::string re = field(field(p, "pattern"), "Regex");
        if (re == kLlama3Pattern) return Bpe::Pre::Llama3;
        if (re == kQwen2Pattern) return Bpe::Pre::Qwen2;
        throw ModelError(file + ": pre-tokenizer pattern " + re + " is not one saem knows (gpt2, llama3, qwen2, smollm)");
    }
    if (type == "Metaspace") return Bpe::Pre::None;
    if (type == "Sequence") {
        const auto &list = field(p, "pretokenizers");
        bool digits = false;
        Bpe::Pre found = Bpe::Pre::None;
        for (const auto &item : list) {
            if (item.value("type", "") == "Digits" && item.value("individual_digits", false)) digits = true;
            else if (Bpe::Pre inner = pre_from_json(item, file); inner != Bpe::Pre::None) found = inner;
        }
        if (digits && found == Bpe::Pre::Gpt2) return Bpe::Pre::Smollm;
        if (!digits) return found;
    }
    throw ModelError(file + ": pre-tokenizer " + p.dump().substr(0, 200) + " is not one saem knows (gpt2, llama3, qwen2, smollm)");
}

std::string token_text(const nlohmann::json &v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content")) return field(v, "content").get<std::string>();
    return {};
}

}  // namespace

// ---- building -----------------------------------------------------------------------------------

void Bpe::add_merge(int32_t left, int32_t right, int32_t merged, float priority) {
    if (left < 0 || right < 0 || merged < 0) return;
    uint64_t key = uint64_t(uint32_t(left)) << 32 | uint32_t(right);
    auto [it, fresh] = merges_.try_emplace(key, Merge{priority, merged});
    if (!fresh && priority < it->second.priority) it->second = Merge{priority, merged};
}

void Bpe::index() {
    ids_.clear();
    ids_.reserve(tokens_.size());
    types_.resize(tokens_.size(), 1);
    for (size_t i = 0; i < tokens_.size(); ++i) ids_.emplace(tokens_[i], int32_t(i));
    std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
    for (int b = 0; b < 256; ++b) {
        if (kind_ == Kind::ByteLevel) {
            byte_ids_[b] = find(byte_map().to_char[b]);
        } else {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            byte_ids_[b] = find(name);
        }
    }
}

// After the special token ids are known (GGUF keys or tokenizer_config.json).
void Bpe::find_end_tokens() {
    end_ids_.clear();
    for (int32_t id : {eos_id_, eot_id_}) if (id >= 0) end_ids_.push_back(id);
    for (const char *name : {"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>", "<|end_of_text|>", "</s>"}) {
        int32_t id = find(name);
        if (id >= 0 && is_control(id)) end_ids_.push_back(id);
    }
}

namespace {

// Token ids from a vocabulary file, checked before they index anything: a negative or huge id in
// a tokenizer.json must be an error, not a write out of bounds or a 2^31-entry table.
constexpr int64_t max_vocab = int64_t(1) << 24;

int32_t token_id(const nlohmann::json &v, const std::string &file) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= max_vocab)
        throw ModelError(file + ": token id " + v.dump() + " is not an integer from 0 to " + std::to_string(max_vocab - 1));
    return int32_t(v.get<int64_t>());
}

int32_t token_id(const std::string &key, const std::string &file) {
    int64_t v = -1;
    auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), v);
    if (ec != std::errc() || end != key.data() + key.size() || v < 0 || v >= max_vocab)
        throw ModelError(file + ": token id '" + key + "' is not an integer from 0 to " + std::to_string(max_vocab - 1));
    return int32_t(v);
}

// Ids index a table of that size: a few entries claiming id 16,000,000 must not allocate it.
void check_dense(int64_t size, size_t entries, const std::string &file) {
    if (size > 2 * int64_t(entries) + 1024)
        throw ModelError(file + ": token ids reach " + std::to_string(size - 1) + " but only " + std::to_string(entries) +
                         " tokens are listed");
}

}  // namespace

Bpe Bpe::from_gguf(const Gguf &g) {
    Bpe b;
    std::string model = g.get_string("tokenizer.ggml.model");
    if (model == "gpt2") b.kind_ = Kind::ByteLevel;
    else if (model == "llama") b.kind_ = Kind::SentencePiece;
    else throw ModelError(g.path() + ": tokenizer model '" + model + "' is not a BPE vocabulary saem reads (gpt2, llama)");
    b.tokens_ = g.get_strings("tokenizer.ggml.tokens");
    const size_t n = b.tokens_.size();
    if (const auto *types = g.find("tokenizer.ggml.token_type")) {
        if (types->numbers.size() != n) throw ModelError(g.path() + ": token_type has " + std::to_string(types->numbers.size()) + " entries for " + std::to_string(n) + " tokens");
        for (double t : types->numbers) b.types_.push_back(t >= 0 && t <= 6 ? uint8_t(t) : 0);  // 0: undefined
    } else {
        b.types_.assign(n, 1);  // all normal
    }
    if (const auto *scores = g.find("tokenizer.ggml.scores")) {
        if (scores->numbers.size() != n) throw ModelError(g.path() + ": scores has " + std::to_string(scores->numbers.size()) + " entries for " + std::to_string(n) + " tokens");
        for (double s : scores->numbers) b.scores_.push_back(float(s));
    }
    if (b.kind_ == Kind::ByteLevel) {
        const auto *pre = g.find("tokenizer.ggml.pre");
        b.pre_ = pre_from_name(pre ? pre->text : "default", g.path());
        b.ignore_merges_ = b.pre_ == Pre::Llama3;
    } else {
        b.pre_ = Pre::None;
        b.add_space_prefix_ = g.get_number("tokenizer.ggml.add_space_prefix", 1) != 0;
    }
    auto id = [&](const char *key) { return gguf_token_id(g, key, -1, n); };
    b.bos_id_ = id("tokenizer.ggml.bos_token_id");
    b.eos_id_ = id("tokenizer.ggml.eos_token_id");
    b.eot_id_ = id("tokenizer.ggml.eot_token_id");
    b.unk_id_ = id("tokenizer.ggml.unknown_token_id");
    b.add_bos_ = g.get_number("tokenizer.ggml.add_bos_token", b.kind_ == Kind::SentencePiece ? 1 : 0) != 0;
    if (const auto *t = g.find("tokenizer.chat_template")) b.chat_template_ = t->text;
    b.index();
    b.find_end_tokens();
    if (b.kind_ == Kind::ByteLevel) {
        const auto &merges = g.get_strings("tokenizer.ggml.merges");
        for (size_t r = 0; r < merges.size(); ++r) {
            size_t sp = merges[r].find(' ', 1);
            if (sp == std::string::npos) throw ModelError(g.path() + ": merge " + std::to_string(r) + " '" + merges[r] + "' is not 'left right'");
            std::string l = merges[r].substr(0, sp), rt = merges[r].substr(sp + 1);
            b.add_merge(b.find(l), b.find(rt), b.find(l + rt), float(r));
        }
    } else {
        if (b.scores_.empty()) throw ModelError(g.path() + ": a SentencePiece vocabulary needs tokenizer.ggml.scores");
        // Every split of every normal piece into two pieces is a merge, ranked by the piece's score.
        for (size_t t = 0; t < n; ++t) {
            if (b.types_[t] != 1 && b.types_[t] != 4) continue;
            const std::string &s = b.tokens_[t];
            for (size_t cut = utf8_length(uint8_t(s[0])); cut < s.size(); cut += utf8_length(uint8_t(s[cut]))) {
                int32_t l = b.find(s.substr(0, cut)), r = b.find(s.substr(cut));
                if (l >= 0 && r >= 0 && (b.types_[size_t(l)] == 1 || b.types_[size_t(l)] == 4) && (b.types_[size_t(r)] == 1 || b.types_[size_t(r)] == 4))
                    b.add_merge(l, r, int32_t(t), -b.scores_[t]);
            }
        }
    }
    return b;
}

// The loading steps that set a Bpe's private settings from outside a loader.
struct Bpe::Loader {
    static void read_config(Bpe &b, const fs::path &folder, const nlohmann::json &post_processor);
};

// Special tokens and add_bos from tokenizer_config.json (when beside the vocabulary).
void Bpe::Loader::read_config(Bpe &b, const fs::path &folder, const nlohmann::json &post_processor) {
    auto config = read_json(folder / "tokenizer_config.json");
    bool has_add_bos = false;
    if (config.is_object()) {
        if (config.contains("bos_token")) b.bos_id_ = b.find(token_text(field(config, "bos_token")));
        if (config.contains("eos_token")) b.eos_id_ = b.find(token_text(field(config, "eos_token")));
        if (config.contains("unk_token")) b.unk_id_ = b.find(token_text(field(config, "unk_token")));
        if (config.contains("add_bos_token") && field(config, "add_bos_token").is_boolean()) {
            b.add_bos_ = field(config, "add_bos_token").get<bool>();
            has_add_bos = true;
        }
        if (config.contains("chat_template") && field(config, "chat_template").is_string()) b.chat_template_ = field(config, "chat_template");
    }
    if (!has_add_bos && post_processor.is_object() && post_processor.value("type", "") == "TemplateProcessing") {
        const auto &single = field(post_processor, "single");
        b.add_bos_ = !single.empty() && single[0].contains("SpecialToken");
    }
}

Bpe Bpe::from_tokenizer_json(const std::string &path) {
    auto j = read_json(path);
    if (!j.is_object()) throw ModelError(path + ": cannot read tokenizer.json");
    const auto &model = field(j, "model");
    if (model.value("type", "") != "BPE") throw ModelError(path + ": model type '" + model.value("type", "") + "' is not BPE");
    Bpe b;
    const auto &pre = field(j, "pre_tokenizer"), &norm = field(j, "normalizer"), &dec = field(j, "decoder");
    bool byte_level = dec.dump().find("\"ByteLevel\"") != std::string::npos || pre.dump().find("\"ByteLevel\"") != std::string::npos;
    b.kind_ = byte_level ? Kind::ByteLevel : Kind::SentencePiece;
    b.pre_ = byte_level ? pre_from_json(pre, path) : Pre::None;
    if (byte_level && b.pre_ == Pre::None) throw ModelError(path + ": a byte-level tokenizer without a splitting pre-tokenizer is not supported");
    b.nfc_ = norm.is_object() && norm.value("type", "") == "NFC";
    b.ascii_digits_ = true;
    b.ignore_merges_ = model.value("ignore_merges", false);
    if (!byte_level) {
        std::string n = norm.dump(), p = pre.dump();
        b.add_space_prefix_ = n.find("\"Prepend\"") != std::string::npos || p.find("\"first\"") != std::string::npos ||
                             p.find("\"always\"") != std::string::npos || p.find("\"add_prefix_space\":true") != std::string::npos;
    }
    int32_t size = 0;
    for (const auto &[tok, id] : field(model, "vocab").items()) size = std::max(size, token_id(id, path) + 1);
    for (const auto &a : field(j, "added_tokens")) size = std::max(size, token_id(field(a, "id"), path) + 1);
    check_dense(size, field(model, "vocab").size() + field(j, "added_tokens").size(), path);
    b.tokens_.assign(size_t(size), "");
    b.types_.assign(size_t(size), 5);
    for (const auto &[tok, id] : field(model, "vocab").items()) {
        b.tokens_[size_t(token_id(id, path))] = tok;
        b.types_[size_t(token_id(id, path))] = 1;
    }
    for (const auto &a : field(j, "added_tokens")) {
        size_t id = size_t(token_id(field(a, "id"), path));
        b.tokens_[id] = field(a, "content").get<std::string>();
        b.types_[id] = a.value("special", false) ? 3 : 4;
    }
    if (!byte_level)
        for (size_t i = 0; i < b.tokens_.size(); ++i)
            if (b.tokens_[i].size() == 6 && b.tokens_[i].rfind("<0x", 0) == 0 && b.tokens_[i][5] == '>') b.types_[i] = 6;
    b.index();
    if (model.contains("unk_token") && field(model, "unk_token").is_string()) b.unk_id_ = b.find(field(model, "unk_token"));
    Loader::read_config(b, fs::path(path).parent_path(), field(j, "post_processor"));
    float rank = 0;
    for (const auto &m : field(model, "merges")) {
        std::string l, r;
        if (m.is_array() && m.size() == 2) {
            l = m[0];
            r = m[1];
        } else {
            std::string s = m;
            size_t sp = s.find(' ', 1);
            if (sp == std::string::npos) throw ModelError(path + ": merge '" + s + "' is not 'left right'");
            l = s.substr(0, sp);
            r = s.substr(sp + 1);
        }
        b.add_merge(b.find(l), b.find(r), b.find(l + r), rank++);
    }
    b.find_end_tokens();
    return b;
}

Bpe Bpe::from_vocab_merges(const std::string &vocab_json, const std::string &merges_txt, Pre pre) {
    auto vocab = read_json(vocab_json);
    if (!vocab.is_object()) throw ModelError(vocab_json + ": cannot read vocab.json");
    Bpe b;
    b.kind_ = Kind::ByteLevel;
    b.pre_ = pre;
    b.nfc_ = pre == Pre::Qwen2;  // Qwen2Tokenizer normalises to NFC
    b.ascii_digits_ = true;
    int32_t size = 0;
    for (const auto &[tok, id] : vocab.items()) size = std::max(size, token_id(id, vocab_json) + 1);
    auto config = read_json(fs::path(vocab_json).parent_path() / "tokenizer_config.json");
    if (config.is_object() && config.contains("added_tokens_decoder"))
        for (const auto &[id, t] : field(config, "added_tokens_decoder").items()) size = std::max(size, token_id(id, vocab_json) + 1);
    check_dense(size, vocab.size() + (config.is_object() && config.contains("added_tokens_decoder") ? field(config, "added_tokens_decoder").size() : 0),
                vocab_json);
    b.tokens_.assign(size_t(size), "");
    b.types_.assign(size_t(size), 5);
    for (const auto &[tok, id] : vocab.items()) {
        b.tokens_[size_t(token_id(id, vocab_json))] = tok;
        b.types_[size_t(token_id(id, vocab_json))] = 1;
    }
    if (config.is_object() && config.contains("added_tokens_decoder"))
        for (const auto &[id, t] : field(config, "added_tokens_decoder").items()) {
            b.tokens_[size_t(token_id(id, vocab_json))] = t.value("content", "");
            b.types_[size_t(token_id(id, vocab_json))] = t.value("special", false) ? 3 : 4;
        }
    b.index();
    Loader::read_config(b, fs::path(vocab_json).parent_path(), nullptr);
    std::ifstream in(merges_txt);
    if (!in) throw ModelError(merges_txt + ": cannot read merges.txt");
    std::string line;
    float rank = 0;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line.rfind("#version", 0) == 0) continue;
        size_t sp = line.find(' ', 1);
        if (sp == std::string::npos) throw ModelError(merges_txt + ": line '" + line + "' is not 'left right'");
        std::string l = line.substr(0, sp), r = line.substr(sp + 1);
        b.add_merge(b.find(l), b.find(r), b.find(l + r), rank++);
    }
    b.find_end_tokens();
    return b;
}

Bpe Bpe::load(const std::string &path) {
    return with_model_errors(path, [&]() -> Bpe {
        fs::path p(path);
        if (fs::is_directory(p)) {
            if (fs::exists(p / "tokenizer.json")) return from_tokenizer_json((p / "tokenizer.json").string());
            if (fs::exists(p / "vocab.json") && fs::exists(p / "merges.txt")) {
                auto config = read_json(p / "tokenizer_config.json");
                std::string cls = config.is_object() ? config.value("tokenizer_class", "") : "";
                Pre pre = cls.rfind("Qwen2", 0) == 0 ? Pre::Qwen2 : Pre::Gpt2;
                return from_vocab_merges((p / "vocab.json").string(), (p / "merges.txt").string(), pre);
            }
            throw ModelError(path + ": no tokenizer.json or vocab.json + merges.txt");
        }
        if (p.extension() == ".gguf") return from_gguf(Gguf(path));
        return from_tokenizer_json(path);
    });
}

bool Bpe::is_bpe(const std::string &path) {
    return with_model_errors(path, [&]() -> bool {
        fs::path p(path);
        if (fs::is_directory(p)) {
            if (fs::exists(p / "tokenizer.json")) return is_bpe((p / "tokenizer.json").string());
            return fs::exists(p / "vocab.json") && fs::exists(p / "merges.txt");
        }
        if (p.extension() == ".gguf") {
            const auto *model = Gguf(path).find("tokenizer.ggml.model");
            return model && (model->text == "gpt2" || model->text == "llama");
        }
        auto j = read_json(p);
        return j.is_object() && j.contains("model") && field(j, "model").value("type", "") == "BPE";
    });
}

// ---- encoding -----------------------------------------------------------------------------------

int32_t Bpe::find(const std::string &token) const {
    auto it = ids_.find(token);
    return it == ids_.end() ? -1 : it->second;
}

bool Bpe::is_control(int32_t id) const { return id >= 0 && size_t(id) < types_.size() && types_[size_t(id)] == 3; }

bool Bpe::ends_generation(int32_t id) const { return std::find(end_ids_.begin(), end_ids_.end(), id) != end_ids_.end(); }

const char *Bpe::pre_name() const {
    switch (pre_) {
    case Pre::None: return kind_ == Kind::SentencePiece ? "sentencepiece" : "none";
    case Pre::Gpt2: return "gpt2";
    case Pre::Llama3: return "llama-bpe";
    case Pre::Qwen2: return "qwen2";
    case Pre::Smollm: return "smollm";
    }
    return "";
}

// Merges one pre-tokenized word (byte-level) or the whole normalised text (SentencePiece).
void Bpe::merge_word(std::string_view word, std::vector<int32_t> &out) const {
    struct Sym {
        int32_t id;
        int prev, next;
        uint32_t start, len;  // bytes of word, for byte fallback
    };
    std::vector<Sym> sym;
    if (kind_ == Kind::ByteLevel) {
        std::string mapped;
        for (unsigned char c : word) mapped += byte_map().to_char[c];
        if (ignore_merges_)
            if (int32_t whole = find(mapped); whole >= 0) {
                out.push_back(whole);
                return;
            }
        for (size_t i = 0; i < word.size(); ++i) sym.push_back({byte_ids_[uint8_t(word[i])], int(i) - 1, int(i) + 1, uint32_t(i), 1});
    } else {
        for (size_t i = 0; i < word.size();) {
            size_t n = std::min(utf8_length(uint8_t(word[i])), word.size() - i);
            int k = int(sym.size());
            sym.push_back({find(std::string(word.substr(i, n))), k - 1, k + 1, uint32_t(i), uint32_t(n)});
            i += n;
        }
    }
    if (sym.empty()) return;
    sym.back().next = -1;
    struct Cand {
        float priority;
        int left;
        int32_t lid, rid;
        bool operator>(const Cand &o) const { return priority != o.priority ? priority > o.priority : left > o.left; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> queue;
    auto consider = [&](int left) {
        if (left < 0) return;
        int right = sym[size_t(left)].next;
        if (right < 0) return;
        int32_t a = sym[size_t(left)].id, b = sym[size_t(right)].id;
        if (a < 0 || b < 0) return;
        auto it = merges_.find(uint64_t(uint32_t(a)) << 32 | uint32_t(b));
        if (it != merges_.end()) queue.push({it->second.priority, left, a, b});
    };
    for (int i = 0; i + 1 < int(sym.size()); ++i) consider(i);
    while (!queue.empty()) {
        Cand c = queue.top();
        queue.pop();
        Sym &l = sym[size_t(c.left)];
        if (l.len == 0 || l.id != c.lid || l.next < 0) continue;
        Sym &r = sym[size_t(l.next)];
        if (r.id != c.rid) continue;
        l.id = merges_.at(uint64_t(uint32_t(c.lid)) << 32 | uint32_t(c.rid)).merged;
        l.len += r.len;
        r.len = 0;
        l.next = r.next;
        if (l.next >= 0) sym[size_t(l.next)].prev = c.left;
        consider(l.prev);
        consider(c.left);
    }
    for (int i = 0; i >= 0; i = sym[size_t(i)].next) {
        const Sym &s = sym[size_t(i)];
        if (s.id >= 0) {
            out.push_back(s.id);
            continue;
        }
        // A byte the vocabulary has no piece for (0xFE in a byte-level vocabulary trained on UTF-8)
        // becomes the unknown token, or is dropped when there is none, as Hugging Face does.
        for (uint32_t k = 0; k < s.len; ++k) {
            int32_t byte = byte_ids_[uint8_t(word[s.start + k])];
            if (byte < 0) byte = unk_id_;
            if (byte >= 0) out.push_back(byte);
        }
    }
}

std::vector<int32_t> Bpe::encode(std::string_view text) const {
    std::vector<int32_t> out;
    std::string normalised;
    if (nfc_ && !text.empty()) {
        // By length, not as a C string: a NUL inside the text must not cut it short.
        utf8proc_uint8_t *composed = nullptr;
        auto len = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t *>(text.data()), utf8proc_ssize_t(text.size()), &composed,
                                utf8proc_option_t(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
        if (len >= 0) {  // invalid UTF-8 is encoded byte for byte as it is
            normalised.assign(reinterpret_cast<char *>(composed), size_t(len));
            text = normalised;
        }
        std::free(composed);
    }
    if (kind_ == Kind::SentencePiece) {
        if (text.empty()) return out;
        std::string s = (add_space_prefix_ ? std::string(" ") : std::string()) + std::string(text);
        merge_word(replace_all(std::move(s), " ", kSpace), out);
        return out;
    }
    std::vector<std::string_view> words;
    pretokenize(pre_, ascii_digits_, text, words);
    for (auto w : words) merge_word(w, out);
    return out;
}

std::string Bpe::piece(int32_t id) const {
    if (id < 0 || size_t(id) >= tokens_.size()) return {};
    const std::string &t = tokens_[size_t(id)];
    switch (types_[size_t(id)]) {
    case 3: case 5: return {};
    case 4: if (kind_ == Kind::SentencePiece) return t; break;
    case 6: if (kind_ == Kind::SentencePiece) return std::string(1, char(std::stoi(t.substr(3, 2), nullptr, 16))); break;
    default: break;
    }
    if (kind_ == Kind::SentencePiece) return replace_all(t, kSpace, " ");
    std::string out;
    const auto *s = reinterpret_cast<const utf8proc_uint8_t *>(t.data());
    for (size_t i = 0; i < t.size();) {
        utf8proc_int32_t cp;
        auto n = utf8proc_iterate(s + i, utf8proc_ssize_t(t.size() - i), &cp);
        if (n <= 0) {
            out += t[i++];
            continue;
        }
        auto it = byte_map().to_byte.find(cp);
        if (it != byte_map().to_byte.end()) out += char(it->second);
        else out.append(t, i, size_t(n));
        i += size_t(n);
    }
    return out;
}

std::string Bpe::decode(const std::vector<int32_t> &ids) const {
    std::string out;
    for (int32_t id : ids) out += piece(id);
    if (kind_ == Kind::SentencePiece && add_space_prefix_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
    return out;
}

}  // namespace saem::nn
