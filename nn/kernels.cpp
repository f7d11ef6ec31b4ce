// Portable kernels, activation quantisation, kernel choice and the matrix product driver. The AVX2
// set lives in kernels_avx2.cpp, compiled for that ISA alone.
#include "nn/kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "nn/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace saem::nn {

namespace {

// A float to a quant in lo..hi. NaN (a model file's NaN weights reach the activations) becomes 0
// rather than the undefined behaviour of converting it; infinities are clamped.
inline int to_quant(float v, int lo, int hi) {
    if (!(v == v)) return 0;
    return int(std::nearbyint(std::clamp(v, float(lo), float(hi))));
}

float dot_f32(int64_t n, const void *w, const void *a) {
    const float *x = static_cast<const float *>(w), *y = static_cast<const float *>(a);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(x[i]) * double(y[i]);
    return float(sum);
}

float dot_f16(int64_t n, const void *w, const void *a) {
    const uint16_t *x = static_cast<const uint16_t *>(w), *y = static_cast<const uint16_t *>(a);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += double(fp16_to_fp32(x[i])) * double(fp16_to_fp32(y[i]));
    return float(sum);
}

// A Q8_0 activation row (kernels.h): nb float scales (the f16-rounded values, as ggml stores them),
// then nb blocks of 32 int8.
struct ActQ8 {
    const float *d;
    const int8_t *q;
    ActQ8(const void *a, int64_t n) : d(static_cast<const float *>(a)), q(act_q8_0_quants(a, n)) {}
};

float dot_q8_0(int64_t n, const void *w, const void *a) {
    const block_q8_0 *x = static_cast<const block_q8_0 *>(w);
    const ActQ8 y(a, n);
    float sum = 0;
    for (int64_t b = 0; b < n / QK8_0; ++b) {
        const int8_t *qy = y.q + QK8_0 * b;
        int s = 0;
        for (int j = 0; j < QK8_0; ++j) s += x[b].qs[j] * qy[j];
        sum += fp16_to_fp32(x[b].d) * y.d[b] * float(s);
    }
    return sum;
}

float dot_q4_0(int64_t n, const void *w, const void *a) {
    const block_q4_0 *x = static_cast<const block_q4_0 *>(w);
    const ActQ8 y(a, n);
    float sum = 0;
    for (int64_t b = 0; b < n / QK4_0; ++b) {
        const uint8_t *qx = x[b].qs;
        const int8_t *qy = y.q + QK4_0 * b;
        int s = 0;
        for (int j = 0; j < QK4_0 / 2; ++j) s += ((qx[j] & 0xF) - 8) * qy[j] + ((qx[j] >> 4) - 8) * qy[j + 16];
        sum += fp16_to_fp32(x[b].d) * y.d[b] * float(s);
    }
    return sum;
}

float dot_q5_0(int64_t n, const void *w, const void *a) {
    const block_q5_0 *x = static_cast<const block_q5_0 *>(w);
    const ActQ8 y(a, n);
    float sum = 0;
    for (int64_t b = 0; b < n / QK5_0; ++b) {
        uint32_t qh;
        std::memcpy(&qh, x[b].qh, 4);
        const uint8_t *qx = x[b].qs;
        const int8_t *qy = y.q + QK5_0 * b;
        int s = 0;
        for (int j = 0; j < QK5_0 / 2; ++j) {
            int lo = int((qx[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16;
            int hi = int((qx[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16;
            s += lo * qy[j] + hi * qy[j + 16];
        }
        sum += fp16_to_fp32(x[b].d) * y.d[b] * float(s);
    }
    return sum;
}

float dot_q4_K(int64_t n, const void *w, const void *a) {
    const block_q4_K *x = static_cast<const block_q4_K *>(w);
    const block_q8_K *y = static_cast<const block_q8_K *>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / QK_K; ++b, ++x, ++y) {
        uint8_t sc[8], mn[8];
        unpack_scales_k4(x->scales, sc, mn);
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; ++j) {
            summ += mn[j] * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
            const uint8_t *qj = x->qs + (j / 2) * 32;
            const int8_t *yj = y->qs + j * 32;
            int s = 0;
            for (int l = 0; l < 32; ++l) s += (j % 2 ? qj[l] >> 4 : qj[l] & 0xF) * yj[l];
            sumi += sc[j] * s;
        }
        sum += y->d * (fp16_to_fp32(x->d) * float(sumi) - fp16_to_fp32(x->dmin) * float(summ));
    }
    return sum;
}

float dot_q6_K(int64_t n, const void *w, const void *a) {
    const block_q6_K *x = static_cast<const block_q6_K *>(w);
    const block_q8_K *y = static_cast<const block_q8_K *>(a);
    float sum = 0;
    for (int64_t b = 0; b < n / QK_K; ++b, ++x, ++y) {
        const uint8_t *ql = x->ql, *qh = x->qh;
        int q[QK_K];
        for (int h = 0; h < 2; ++h) {
            for (int l = 0; l < 32; ++l) {
                q[128 * h + l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                q[128 * h + l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                q[128 * h + l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                q[128 * h + l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            }
            ql += 64;
            qh += 32;
        }
        int sumi = 0;
        for (int j = 0; j < 16; ++j) {
            int s = 0;
            for (int l = 0; l < 16; ++l) s += q[16 * j + l] * y->qs[16 * j + l];
            sumi += x->scales[j] * s;
        }
        sum += fp16_to_fp32(x->d) * y->d * float(sumi);
    }
    return sum;
}

void axpy_f16(int64_t n, float a, const uint16_t *x, float *y) {
    for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

const KernelSet portable{"portable",
                         {dot_f32, rows4<dot_f32>},
                         {dot_f16, rows4<dot_f16>},
                         {dot_q8_0, rows4<dot_q8_0>},
                         {dot_q4_0, rows4<dot_q4_0>},
                         {dot_q5_0, rows4<dot_q5_0>},
                         {dot_q4_K, rows4<dot_q4_K>},
                         {dot_q6_K, rows4<dot_q6_K>},
                         axpy_f16};

}  // namespace

bool has_kernel(DType w) {
    switch (w) {
    case DType::F32: case DType::F16: case DType::Q8_0: case DType::Q4_0: case DType::Q5_0: case DType::Q4_K:
    case DType::Q6_K: return true;
    default: return false;
    }
}

ActFormat act_format(DType w) {
    switch (w) {
    case DType::F16: return ActFormat::F16;
    case DType::Q8_0: case DType::Q4_0: case DType::Q5_0: return ActFormat::Q8_0;
    case DType::Q4_K: case DType::Q6_K: return ActFormat::Q8_K;
    default: return ActFormat::F32;
    }
}

size_t act_row_bytes(ActFormat f, int64_t n) {
    switch (f) {
    case ActFormat::F32: return size_t(n) * 4;
    case ActFormat::F16: return size_t(n) * 2;
    case ActFormat::Q8_0: return size_t(n / QK8_0) * (sizeof(float) + QK8_0);
    case ActFormat::Q8_K: return size_t(n / QK_K) * sizeof(block_q8_K);
    }
    return 0;
}

// Rounding is to nearest, ties to even, as ggml's vector code and its nearest_int do.
void quantize_act(ActFormat f, const float *x, int64_t n, void *out) {
    switch (f) {
    case ActFormat::F32: std::memcpy(out, x, size_t(n) * 4); return;
    case ActFormat::F16: {
        uint16_t *o = static_cast<uint16_t *>(out);
        for (int64_t i = 0; i < n; ++i) o[i] = fp32_to_fp16(x[i]);
        return;
    }
    case ActFormat::Q8_0: {
        float *d = static_cast<float *>(out);
        int8_t *q = act_q8_0_quants(out, n);
        for (int64_t b = 0; b < n; b += 32) {
            float amax = 0;
            for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b + j]));
            float id = amax != 0 ? 127.0f / amax : 0.0f;
            d[b / 32] = fp16_to_fp32(fp32_to_fp16(amax / 127.0f));
            for (int j = 0; j < 32; ++j) q[b + j] = int8_t(to_quant(x[b + j] * id, -127, 127));
        }
        return;
    }
    case ActFormat::Q8_K: {
        block_q8_K *o = static_cast<block_q8_K *>(out);
        for (int64_t b = 0; b < n; b += 256, ++o) {
            float amax = 0, max = 0;
            for (int j = 0; j < 256; ++j)
                if (std::fabs(x[b + j]) > amax) amax = std::fabs(x[b + j]), max = x[b + j];
            if (amax == 0) {
                std::memset(o, 0, sizeof(*o));
                continue;
            }
            float iscale = -127.0f / max;
            for (int j = 0; j < 256; ++j) o->qs[j] = int8_t(to_quant(iscale * x[b + j], -128, 127));
            for (int j = 0; j < 16; ++j) {
                int s = 0;
                for (int l = 0; l < 16; ++l) s += o->qs[16 * j + l];
                o->bsums[j] = int16_t(s);
            }
            o->d = 1 / iscale;
        }
        return;
    }
    }
}

const KernelSet &portable_kernels() { return portable; }

bool cpu_runs_avx2_kernels() {
#if defined(__x86_64__) || defined(__i386__)
    // F16C from CPUID (leaf 1, ECX bit 29): clang 16's __builtin_cpu_supports does not know it.
    unsigned a, b, c, d;
    bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
    return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
}

const KernelSet &kernels() {
    static const KernelSet *chosen = [] {
        const char *env = std::getenv("SAEM_KERNELS");
        if (env && std::string_view(env) == "portable") return &portable;
#if defined(__x86_64__) || defined(__i386__)
        if (avx2_kernels() && cpu_runs_avx2_kernels()) return avx2_kernels();
#endif
        return &portable;
    }();
    return *chosen;
}

const TypeKernels &kernels_for(const KernelSet &k, DType w) {
    switch (w) {
    case DType::F16: return k.f16;
    case DType::Q8_0: return k.q8_0;
    case DType::Q4_0: return k.q4_0;
    case DType::Q5_0: return k.q5_0;
    case DType::Q4_K: return k.q4_K;
    case DType::Q6_K: return k.q6_K;
    default: return k.f32;  // the loader converts every other type to F32
    }
}

// ---- matrix products -------------------------------------------------------------------------

void matmul(ThreadPool &pool, const KernelSet &k, std::initializer_list<MatmulTarget> targets, const float *x,
            int64_t n_tokens, std::vector<uint8_t> &act) {
    const int64_t n = targets.begin()->w->shape[1];
    // One activation region per format the targets need.
    ActFormat formats[4];
    size_t offsets[4], arow[4], total = 0;
    int nf = 0;
    for (const auto &tg : targets) {
        ActFormat f = act_format(tg.w->type);
        bool seen = false;
        for (int i = 0; i < nf; ++i) seen |= formats[i] == f;
        if (seen) continue;
        formats[nf] = f;
        arow[nf] = act_row_bytes(f, n);
        offsets[nf] = total;
        total += arow[nf] * size_t(n_tokens);
        ++nf;
    }
    if (act.size() < total) act.resize(total);
    auto quantize = [&](int ith, int nth) {
        for (int64_t t = ith; t < n_tokens; t += nth)
            for (int i = 0; i < nf; ++i) quantize_act(formats[i], x + t * n, n, act.data() + offsets[i] + arow[i] * size_t(t));
    };
    if (n_tokens >= 8) pool.run(quantize);
    else quantize(0, 1);
    // Cache blocking: a tile of weight rows (about 16 KB) stays in L1 while a chunk of tokens
    // (about 256 KB of activations) stays in L2 and passes over it. Threads take contiguous runs
    // of tiles; every thread walks the token chunks in the same order.
    int64_t items = 0;
    auto tile_rows = [&](const Tensor &w) { return std::max<int64_t>(4, std::min<int64_t>(64, 16384 / int64_t(row_bytes(w.type, n)))); };
    for (const auto &tg : targets) items += (tg.w->shape[0] + tile_rows(*tg.w) - 1) / tile_rows(*tg.w);
    size_t widest = 0;
    for (int i = 0; i < nf; ++i) widest = std::max(widest, arow[i]);
    const int64_t chunk = std::max<int64_t>(4, int64_t(262144 / widest) / 4 * 4);
    pool.run([&](int ith, int nth) {
        const int64_t first = items * ith / nth, last = items * (ith + 1) / nth;
        for (int64_t t0 = 0; t0 < n_tokens; t0 += chunk) {
            const int64_t t1 = std::min(n_tokens, t0 + chunk);
            int64_t base = 0;
            for (const auto &tg : targets) {
                const Tensor &w = *tg.w;
                const int64_t rows = w.shape[0], tile = tile_rows(w), tiles = (rows + tile - 1) / tile;
                const int64_t lo = std::max(first, base), hi = std::min(last, base + tiles);
                base += tiles;
                if (lo >= hi) continue;
                const TypeKernels &kern = kernels_for(k, w.type);
                const size_t wrow = row_bytes(w.type, n);
                int fi = 0;
                while (formats[fi] != act_format(w.type)) ++fi;
                const uint8_t *a = act.data() + offsets[fi];
                const size_t stride = arow[fi];
                float *y = tg.y;
                for (int64_t it = lo; it < hi; ++it) {
                    const int64_t rt = (it - (base - tiles)) * tile, re = std::min(rows, rt + tile);
                    int64_t t = t0;
                    for (float four[4]; t + 4 <= t1; t += 4)
                        for (int64_t r = rt; r < re; ++r) {
                            kern.dot4(n, w.data + wrow * size_t(r), a + stride * size_t(t), stride, four);
                            for (int j = 0; j < 4; ++j) y[(t + j) * rows + r] = four[j];
                        }
                    for (; t < t1; ++t) {
                        const uint8_t *at = a + stride * size_t(t);
                        float *yt = y + t * rows;
                        for (int64_t r = rt; r < re; ++r) yt[r] = kern.dot(n, w.data + wrow * size_t(r), at);
                    }
                }
            }
        }
    });
}

}  // namespace saem::nn
