// GGUF files: the header, metadata and tensor table, then what the loaders build from them (a
// WordPiece or BPE vocabulary, a decoder, a BERT encoder) and a dequantised row of each tensor.
#include "fuzz.h"
#include "nn/decoder.h"
#include "nn/embedder.h"
#include "nn/tokenizer.h"
#include "nn/weights.h"

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    using namespace saem::nn;
    const std::string path = fuzz::as_file(fuzz::bytes(data, size), ".gguf");
    try {
        fuzz::read_first_rows(Gguf(path).tensors());
    } catch (const std::exception &) {
        return 0;
    }
    try {
        Bpe::from_gguf(Gguf(path));
    } catch (const std::exception &) {
    }
    try {
        WordPiece::from_gguf(Gguf(path));
    } catch (const std::exception &) {
    }
    try {
        DecoderOptions o;
        o.context = 64;
        auto d = Decoder::load(path, o);
        int32_t token = 0;
        d->eval(&token, 1);
    } catch (const std::exception &) {
    }
    try {
        auto e = load_embedder(path);
        std::vector<float> out(size_t(e->dim()));
        e->embed({"a fuzzed encoder"}, out.data());
    } catch (const std::exception &) {
    }
    return 0;
}
