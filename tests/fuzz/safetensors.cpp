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
            // A shape such as [0, 2^48] is admitted (it holds no bytes): size the row only when there is one.
            const int64_t n = t.shape.empty() ? 1 : t.shape.back();
            if (t.elements() <= 0 || n > (1 << 20)) continue;
            std::vector<float> row(static_cast<size_t>(n));
            dequantize_row(t, 0, row.data());
        }
    } catch (const std::exception &) {
    }
    return 0;
}
