// Shared by the libFuzzer targets (scripts/fuzz builds and runs them with ASan and UBSan).
//
// A target feeds one input to one parser the way saem meets untrusted bytes. A clean refusal (an
// exception: ModelError, LoadError, RequestError, ...) is the expected answer to bad input; a
// crash, a sanitizer report, a hang or a broken property (checked with require()) is a finding.
#pragma once

#include "nn/weights.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace fuzz {

inline std::string_view bytes(const uint8_t *data, size_t size) { return {reinterpret_cast<const char *>(data), size}; }

// The input as a file named with the given extension, for loaders that take a path (models are
// mapped, as saem maps them). One per process, rewritten for each input, in /dev/shm when there.
inline std::string as_file(std::string_view content, const std::string &extension) {
    static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string path = dir + "/saem-fuzz-" + std::to_string(getpid()) + extension;
    std::ofstream(path, std::ios::binary | std::ios::trunc).write(content.data(), std::streamsize(content.size()));
    return path;
}

// A property that must hold for every input: abort (a finding) when it does not.
inline void require(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "property broken: %s\n", what);
        std::abort();
    }
}

// Dequantises the first row of each tensor a loader admitted: its bytes must be where it says.
// A shape such as [0, 2^48] is admitted (it holds no bytes), so a row is sized only when there is one.
inline void read_first_rows(const std::vector<saem::nn::Tensor> &tensors) {
    for (const auto &t : tensors) {
        const int64_t n = t.shape.empty() ? 1 : t.shape.back();
        if (t.elements() <= 0 || n > (1 << 20)) continue;
        std::vector<float> row(static_cast<size_t>(n));
        saem::nn::dequantize_row(t, 0, row.data());
    }
}

}  // namespace fuzz
