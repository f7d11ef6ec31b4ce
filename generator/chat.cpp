// Chat prompts for the two formats the common small models use. saem does not run Jinja: it
// recognises the template by its markers and lays the turns out as the template would, encoding
// the markers as their special tokens and everything between them as plain text (what Hugging
// Face's apply_chat_template followed by tokenisation produces).
//   ChatML  <|im_start|>role\ncontent<|im_end|>\n ... <|im_start|>assistant\n
//   Llama 3 <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> ...
//           <|start_header_id|>assistant<|end_header_id|>\n\n
#include "generator/generator.h"

#include <stdexcept>

namespace saem {

namespace {

// The system prompt a ChatML template writes when the conversation has none: the first
// '<|im_start|>system\n...<|im_end|>' whose text is a literal.
std::string builtin_system_prompt(const std::string &tpl) {
    for (const std::string head : {"<|im_start|>system\\n", "<|im_start|>system\n"}) {
        for (size_t at = tpl.find(head); at != std::string::npos; at = tpl.find(head, at + 1)) {
            size_t begin = at + head.size(), end = tpl.find("<|im_end|>", begin);
            if (end == std::string::npos) continue;
            std::string text = tpl.substr(begin, end - begin);
            if (text.empty() || text.find_first_of("'\"{}+") != std::string::npos) continue;
            for (size_t k = 0; (k = text.find("\\n", k)) != std::string::npos;) text.replace(k, 2, "\n");
            return text;
        }
    }
    return {};
}

struct Builder {
    const nn::Bpe &bpe;
    std::vector<int32_t> ids;
    void special(const char *name) {
        int32_t id = bpe.find(name);
        if (id < 0) throw std::invalid_argument(std::string("the vocabulary has no ") + name + " token for this chat format");
        ids.push_back(id);
    }
    void text(const std::string &t) {
        auto e = bpe.encode(t);
        ids.insert(ids.end(), e.begin(), e.end());
    }
};

}  // namespace

const char *chat_format_name(ChatFormat f) { return f == ChatFormat::chatml ? "chatml" : "llama3"; }

ChatFormat chat_format(const nn::Bpe &bpe, const std::string &name) {
    if (name == "chatml") return ChatFormat::chatml;
    if (name == "llama3") return ChatFormat::llama3;
    if (!name.empty()) throw std::invalid_argument("chat template '" + name + "' is not one saem knows (chatml, llama3)");
    const std::string &t = bpe.chat_template();
    if (t.find("<|im_start|>") != std::string::npos) return ChatFormat::chatml;
    if (t.find("<|start_header_id|>") != std::string::npos) return ChatFormat::llama3;
    if (t.empty()) throw std::invalid_argument("the model has no chat template; choose one with --template chatml or --template llama3");
    throw std::invalid_argument("the model's chat template is not one saem recognises (it starts: " + t.substr(0, 80) +
                                "); choose one with --template chatml or --template llama3");
}

std::vector<int32_t> chat_prompt(const nn::Bpe &bpe, ChatFormat format, const std::vector<ChatMessage> &messages) {
    Builder b{bpe, {}};
    bool has_system = !messages.empty() && messages[0].role == "system";
    if (format == ChatFormat::chatml) {
        if (bpe.add_bos() && bpe.bos_id() >= 0) b.ids.push_back(bpe.bos_id());
        if (!has_system)
            if (std::string sys = builtin_system_prompt(bpe.chat_template()); !sys.empty()) {
                b.special("<|im_start|>");
                b.text("system\n" + sys);
                b.special("<|im_end|>");
                b.text("\n");
            }
        for (const auto &m : messages) {
            b.special("<|im_start|>");
            b.text(m.role + "\n" + m.content);
            b.special("<|im_end|>");
            b.text("\n");
        }
        b.special("<|im_start|>");
        b.text("assistant\n");
    } else {
        b.special("<|begin_of_text|>");
        for (const auto &m : messages) {
            b.special("<|start_header_id|>");
            b.text(m.role);
            b.special("<|end_header_id|>");
            b.text("\n\n" + m.content);
            b.special("<|eot_id|>");
        }
        b.special("<|start_header_id|>");
        b.text("assistant");
        b.special("<|end_header_id|>");
        b.text("\n\n");
    }
    return b.ids;
}

}  // namespace saem
