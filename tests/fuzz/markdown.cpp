// markdown documents: load_document, then chunking (documents.h).
#include "documents.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return fuzz_document(data, size, "md"); }
