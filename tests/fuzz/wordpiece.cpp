// WordPiece encoding of any bytes with MiniLM's real vocabulary: ids in range, [CLS] ... [SEP],
// the length limit kept. The first byte splits the input into a query and a passage.
#include "fuzz.h"
#include "nn/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    using namespace saem::nn;
    static const WordPiece wp = WordPiece::load(SAEM_SHARED "/models/all-MiniLM-L6-v2");
    if (size == 0) return 0;
    std::string_view all = fuzz::bytes(data + 1, size - 1);
    size_t cut = std::min<size_t>(data[0], all.size());
    auto enc = wp.encode_for_model(all.substr(0, cut), all.substr(cut), 64);
    fuzz::require(enc.ids.size() <= 64 && enc.ids.size() == enc.type_ids.size(), "length limit and type ids");
    fuzz::require(!enc.ids.empty() && enc.ids.front() == wp.cls_id() && enc.ids.back() == wp.sep_id(), "[CLS] ... [SEP]");
    for (int32_t id : enc.ids) fuzz::require(id >= 0 && size_t(id) < wp.vocab_size(), "ids inside the vocabulary");
    return 0;
}
