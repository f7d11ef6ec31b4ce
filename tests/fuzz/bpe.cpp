// Byte-level BPE encoding of any bytes with SmolLM2's and Qwen2.5's real vocabularies: ids in
// range, and decoding gives back the text (SmolLM2 normalises nothing, so exactly; special-token
// text stays text), less the bytes the vocabulary has no token for: SmolLM2 lacks 21 of the 256
// (0x04, 0x13, 0xC0, 0xFF, ...), which Hugging Face's tokenizers drop too.
#include "fuzz.h"
#include "nn/text.h"
#include "nn/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    using namespace saem::nn;
    static const Bpe smollm = Bpe::load(SAEM_SHARED "/models/SmolLM2-135M-Instruct");
    static const Bpe qwen = Bpe::load(SAEM_SHARED "/models/Qwen2.5-Instruct-tokenizer");
    static const std::string dropped = [] {
        std::string out;
        for (int b = 0; b < 256; ++b)
            if (smollm.encode(std::string(1, char(b))).empty()) out += char(b);
        return out;
    }();
    std::string_view text = fuzz::bytes(data, size);
    for (const Bpe *bpe : {&smollm, &qwen}) {
        auto ids = bpe->encode(text);
        for (int32_t id : ids) fuzz::require(id >= 0 && size_t(id) < bpe->vocab_size(), "ids inside the vocabulary");
        if (bpe == &smollm && find_invalid_utf8(text) == std::string_view::npos) {
            std::string kept;
            for (char c : text)
                if (dropped.find(c) == std::string::npos) kept += c;
            fuzz::require(bpe->decode(ids) == kept, "SmolLM2: decode(encode(text)) == text less the bytes it has no token for");
        }
    }
    return 0;
}
