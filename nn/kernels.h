// nn/kernels.h: dot products straight on ggml's quantised blocks (nn/blocks.h), the activation
// formats they pair with, and the matrix product that shares them out over a thread pool. Internal
// to nn.
//
// Data-layout contract: a weight matrix is a Tensor of shape [rows, n], row-major, each row whole
// blocks of its type. Activations are float rows of n elements that are first converted to the
// format the weight type pairs with (ggml's "vec_dot_type"): F32 weights take F32 rows, F16 weights
// F16 rows, Q8_0/Q4_0/Q5_0 weights Q8_0 rows (32 per block, a scale rounded to f16 as ggml's; laid
// out as all the row's scales as floats, then all its int8 blocks, so the kernels read a scale
// without converting it: act_q8_0_quants), Q4_K/Q6_K weights rows of block_q8_K (256 per block, f32
// scale, 16 partial sums). Quantising the activation the way llama.cpp does is what makes saem's
// logits agree with llama.cpp's to float rounding.
//
// Threads: the kernels and quantize_act are pure functions; kernels() is chosen once, thread-safely.
// matmul runs on the pool it is given, from the one thread that owns the output and scratch.
#pragma once

#include "nn/blocks.h"
#include "nn/thread_pool.h"
#include "nn/weights.h"

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

namespace saem::nn {

enum class ActFormat : uint8_t { F32, F16, Q8_0, Q8_K };

// The int8 blocks of a Q8_0 activation row of n elements: after its n / 32 float scales, which
// start the row. (static: see nn/blocks.h.)
static inline int8_t *act_q8_0_quants(void *row, int64_t n) {
    return reinterpret_cast<int8_t *>(static_cast<uint8_t *>(row) + size_t(n / QK8_0) * sizeof(float));
}
static inline const int8_t *act_q8_0_quants(const void *row, int64_t n) { return act_q8_0_quants(const_cast<void *>(row), n); }

// Weight types with a kernel; anything else is dequantised to F32 when a model loads.
bool has_kernel(DType weight);
ActFormat act_format(DType weight);
size_t act_row_bytes(ActFormat f, int64_t n);
void quantize_act(ActFormat f, const float *x, int64_t n, void *out);

// One weight row times one activation row, n elements.
using DotFn = float (*)(int64_t n, const void *weight_row, const void *act_row);
// One weight row times four activation rows act_stride bytes apart: out[0..3]. Each result equals
// the DotFn's bit for bit; the weight block is unpacked once for the four.
using Dot4Fn = void (*)(int64_t n, const void *weight_row, const void *act, size_t act_stride, float *out);

struct TypeKernels {
    DotFn dot;
    Dot4Fn dot4;
};

// Four DotFn calls, for types without a four-row kernel.
template <DotFn Dot>
void rows4(int64_t n, const void *w, const void *a, size_t stride, float *out) {
    for (int t = 0; t < 4; ++t) out[t] = Dot(n, w, static_cast<const uint8_t *>(a) + size_t(t) * stride);
}

struct KernelSet {
    const char *isa;
    TypeKernels f32, f16, q8_0, q4_0, q5_0, q4_K, q6_K;
    // y += a * x for an f16 row x (attention's weighted sum of cached values).
    void (*axpy_f16)(int64_t n, float a, const uint16_t *x, float *y);
};
// AVX2+FMA+F16C when the CPU has them, the portable C++ set otherwise; SAEM_KERNELS=portable forces
// the portable one (tests compare both).
const KernelSet &kernels();
const TypeKernels &kernels_for(const KernelSet &k, DType weight);

const KernelSet &portable_kernels();
const KernelSet *avx2_kernels();  // null when not compiled in
bool cpu_runs_avx2_kernels();      // this CPU has AVX2, FMA and F16C

struct MatmulTarget {
    const Tensor *w;
    float *y;  // [n_tokens][w rows]
};
// y[t][r] = dot(row r of w, activation row t) for each target, over n_tokens rows x of
// w.shape[1] floats (the same for every target). The activations are converted once per format
// and the rows of all targets shared out over the threads in one job (q, k and v; gate and up).
// act is scratch the caller keeps (resized here only when it grows).
void matmul(ThreadPool &pool, const KernelSet &k, std::initializer_list<MatmulTarget> targets, const float *x,
            int64_t n_tokens, std::vector<uint8_t> &act);

}  // namespace saem::nn
