// safetensors files: the header (length, JSON, dtypes, shapes, offsets) and a dequantised row of
// each tensor it admits.
#include "fuzz.h"
#include "nn/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    using namespace saem::nn;
    try {
        fuzz::read_first_rows(SafeTensors(fuzz::as_file(fuzz::bytes(data, size), ".safetensors")).tensors());
    } catch (const std::exception &) {
    }
    return 0;
}
