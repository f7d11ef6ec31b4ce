// tokenizer.json files as WordPiece and as BPE, then an encoding with what was built.
#include "fuzz.h"
#include "nn/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    using namespace saem::nn;
    const std::string path = fuzz::as_file(fuzz::bytes(data, size), ".json");
    try {
        auto wp = WordPiece::load(path);
        wp.encode_for_model("Tokenizers split words, 단어, and ## pieces.", "second", 16);
    } catch (const std::exception &) {
    }
    try {
        auto bpe = Bpe::load(path);
        auto ids = bpe.encode("Tokenizers merge bytes: 단어 <|im_start|> \xF0\x9F\x98\x80 end.");
        bpe.decode(ids);
    } catch (const std::exception &) {
    }
    return 0;
}
