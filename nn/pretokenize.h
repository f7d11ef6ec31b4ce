// nn/pretokenize.h: the pre-tokenizers of byte-level BPE models, the split of text into the words
// that Bpe merges one by one. Internal to nn (bpe.cpp).
//
// Threads: a pure function; any number of threads may call it at once.
#pragma once

#include "nn/tokenizer.h"

#include <string_view>
#include <vector>

namespace saem::nn {

// Splits text the way a byte-level BPE model's pre-tokenizer regex does (see pretokenize.cpp for
// the patterns), appending the pieces to out. Every byte of text lands in exactly one piece.
void pretokenize(Bpe::Pre pre, bool ascii_digits, std::string_view text, std::vector<std::string_view> &out);

}  // namespace saem::nn
