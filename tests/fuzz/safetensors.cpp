// safetensors files: the header (length, JSON, dtypes, shapes, offsets) and a dequantised row of
// each tensor it admits.
#include "fuzz.h"
#include "nn/weights.h"

#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    using namespace saem::nn;
    try {
        SafeTensors st(fuzz::as_file(fuzz::bytes(data, size), ".safetensors"));
        for (const auto &t : st.tensors()) {
            std::vector<float> row(size_t(t.shape.empty() ? 1 : t.shape.back()));
            if (t.elements() > 0 && row.size() <= (1u << 20)) dequantize_row(t, 0, row.data());
        }
    } catch (const std::exception &) {
    }
    return 0;
}
