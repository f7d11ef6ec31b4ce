// Block quantisers for writing GGUF files (saem quantize, test models). The 32-element types are
// rounded to nearest against the block's largest magnitude (Q8_0, Q4_0, Q5_0) or its range (Q5_1),
// as llama.cpp's reference quantisers do; the K types search their scales (below). Each block is
// filled in as its nn/blocks.h struct.
#include "nn/gguf_writer.h"

#include "nn/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace saem::nn {

namespace {

template <class Block>
void put(std::string &out, const Block &b) {
    out.append(reinterpret_cast<const char *>(&b), sizeof b);
}

// The value of largest magnitude, with its sign.
float signed_max(const float *x, int n) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; ++i)
        if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), max = x[i];
    return max;
}

int clamp(int v, int lo, int hi) { return std::max(lo, std::min(hi, v)); }

void q8_0(const float *x, std::string &out) {
    float amax = 0;
    for (int k = 0; k < QK8_0; ++k) amax = std::max(amax, std::fabs(x[k]));
    float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    block_q8_0 b;
    b.d = fp32_to_fp16(d);
    for (int k = 0; k < QK8_0; ++k) b.qs[k] = int8_t(std::round(x[k] * id));
    put(out, b);
}

// Q4_0 / Q5_0: the signed maximum maps to -8 / -16, so the asymmetric range is used in full.
void q4_0(const float *x, std::string &out) {
    float d = signed_max(x, QK4_0) / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
    block_q4_0 b;
    b.d = fp32_to_fp16(d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
        int lo = clamp(int(std::round(x[j] * id)) + 8, 0, 15), hi = clamp(int(std::round(x[j + 16] * id)) + 8, 0, 15);
        b.qs[j] = uint8_t(lo | (hi << 4));
    }
    put(out, b);
}

void q5_0(const float *x, std::string &out) {
    float d = signed_max(x, QK5_0) / -16.0f, id = d != 0 ? 1.0f / d : 0.0f;
    block_q5_0 b;
    b.d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_0 / 2; ++j) {
        int lo = clamp(int(std::round(x[j] * id)) + 16, 0, 31), hi = clamp(int(std::round(x[j + 16] * id)) + 16, 0, 31);
        b.qs[j] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
        qh |= uint32_t(lo >> 4) << j;
        qh |= uint32_t(hi >> 4) << (j + 16);
    }
    std::memcpy(b.qh, &qh, 4);
    put(out, b);
}

void q5_1(const float *x, std::string &out) {
    const float lo = *std::min_element(x, x + QK5_1), hi = *std::max_element(x, x + QK5_1);
    const float d = (hi - lo) / 31.0f, id = d != 0 ? 1.0f / d : 0.0f;
    block_q5_1 b;
    b.d = fp32_to_fp16(d);
    b.m = fp32_to_fp16(lo);
    uint32_t qh = 0;
    for (int j = 0; j < QK5_1 / 2; ++j) {
        const int a = int((x[j] - lo) * id + 0.5f), c = int((x[j + 16] - lo) * id + 0.5f);
        b.qs[j] = uint8_t((a & 0xF) | ((c & 0xF) << 4));
        qh |= uint32_t((a >> 4) & 1) << j;
        qh |= uint32_t((c >> 4) & 1) << (j + 16);
    }
    std::memcpy(b.qh, &qh, 4);
    put(out, b);
}

// The K types search each sub-block's scale as llama.cpp's reference quantisers do (without an
// importance matrix), so a file saem writes is as close to the weights as one llama-quantize
// writes: the integer grid is tried at several stretches and the one with the least weighted
// squared error kept.

// Halves to even, as ggml's nearest_int.
int nearest(float v) { return int(std::nearbyint(v)); }

constexpr float group_max_eps = 1e-15f;

// An asymmetric sub-block, x ~ scale * L - offset with L in 0..nmax (Q4_K, Q5_K: llama.cpp's
// make_qkx2_quants): the range [min(x, 0), max(x)] mapped onto the grid, then nstep + 1 stretched
// grids ((nmax + rmin + rdelta * i) steps over the range), each fitted by weighted least squares
// for scale and offset; the best fit wins. Returns the scale; *offset >= 0.
float fit_asymmetric(int n, int nmax, const float *x, const float *w, uint8_t *L, float *offset, float rmin, float rdelta,
                     int nstep) {
    float lo = x[0], hi = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    lo = std::min(lo, 0.0f);
    if (hi == lo) {
        std::fill(L, L + n, uint8_t(0));
        *offset = -lo;
        return 0;
    }
    float iscale = float(nmax) / (hi - lo), scale = 1 / iscale, best = 0;
    for (int i = 0; i < n; ++i) {
        L[i] = uint8_t(clamp(nearest(iscale * (x[i] - lo)), 0, nmax));
        const float diff = scale * L[i] + lo - x[i];
        best += w[i] * diff * diff;
    }
    uint8_t trial[32];
    for (int step = 0; step <= nstep; ++step) {
        iscale = (rmin + rdelta * float(step) + float(nmax)) / (hi - lo);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            const int l = clamp(nearest(iscale * (x[i] - lo)), 0, nmax);
            trial[i] = uint8_t(l);
            sum_l += w[i] * float(l);
            sum_l2 += w[i] * float(l * l);
            sum_xl += w[i] * float(l) * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det <= 0) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < n; ++i) {
            const float diff = this_scale * trial[i] + this_min - x[i];
            err += w[i] * diff * diff;
        }
        if (err < best) {
            std::copy(trial, trial + n, L);
            best = err;
            scale = this_scale;
            lo = this_min;
        }
    }
    *offset = -lo;
    return scale;
}

// A symmetric sub-block, x ~ scale * (L - nmax) with L in 0..2nmax-1 (Q6_K: llama.cpp's
// make_qx_quants with x^2 weights): the signed maximum mapped to -nmax, then 18 stretched grids
// around it; the fit with the largest explained weighted energy wins. Returns the (signed) scale.
float fit_symmetric(int n, int nmax, const float *x, uint8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; ++i)
        if (std::fabs(x[i]) > amax) amax = std::fabs(x[i]), max = x[i];
    if (amax < group_max_eps) {
        std::fill(L, L + n, uint8_t(0));
        return 0;
    }
    auto fit = [&](float iscale, float &sumlx, float &suml2) {
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            const int l = clamp(nearest(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * float(l);
            suml2 += w * float(l * l);
        }
    };
    auto assign = [&](float iscale) {
        for (int i = 0; i < n; ++i) L[i] = uint8_t(nmax + clamp(nearest(iscale * x[i]), -nmax, nmax - 1));
    };
    float sumlx, suml2, iscale = -float(nmax) / max;
    fit(iscale, sumlx, suml2);
    assign(iscale);
    float scale = sumlx / suml2, best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(float(nmax) + 0.1f * float(is)) / max;
        fit(iscale, sumlx, suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            assign(iscale);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Q4_K (nmax 15) and Q5_K (nmax 31): eight sub-blocks of 32 fitted one by one (weights: the
// sub-block's RMS plus |x|), their scales and offsets quantised to 6 bits against the block's
// largest, then every element re-rounded against the scales as stored.
template <int nmax>
void k_asymmetric(const float *x, uint16_t &d_out, uint16_t &dmin_out, uint8_t *scales, uint8_t L[QK_K]) {
    float scale[8], offset[8], w[32], max_scale = 0, max_offset = 0;
    for (int j = 0; j < 8; ++j) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
        const float av = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) w[l] = av + std::fabs(xs[l]);
        scale[j] = nmax == 15 ? fit_asymmetric(32, nmax, xs, w, L + 32 * j, &offset[j], -1.0f, 0.1f, 20)
                              : fit_asymmetric(32, nmax, xs, w, L + 32 * j, &offset[j], -0.5f, 0.1f, 15);
        max_scale = std::max(max_scale, scale[j]);
        max_offset = std::max(max_offset, offset[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f, inv_offset = max_offset > 0 ? 63.0f / max_offset : 0.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        ls[j] = uint8_t(std::min(63, nearest(inv_scale * scale[j])));
        lm[j] = uint8_t(std::min(63, nearest(inv_offset * offset[j])));
    }
    pack_scales_k4(ls, lm, scales);
    d_out = fp32_to_fp16(max_scale / 63.0f);
    dmin_out = fp32_to_fp16(max_offset / 63.0f);
    const float dh = fp16_to_fp32(d_out), mh = fp16_to_fp32(dmin_out);
    for (int j = 0; j < 8; ++j) {
        const float dj = dh * ls[j], mj = mh * lm[j];
        if (dj == 0) continue;
        for (int l = 0; l < 32; ++l) L[32 * j + l] = uint8_t(clamp(nearest((x[32 * j + l] + mj) / dj), 0, nmax));
    }
}

void q4_K(const float *x, std::string &out) {
    block_q4_K b;
    uint8_t L[QK_K];
    k_asymmetric<15>(x, b.d, b.dmin, b.scales, L);
    for (int j = 0; j < QK_K; j += 64)
        for (int l = 0; l < 32; ++l) b.qs[j / 2 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
    put(out, b);
}

void q5_K(const float *x, std::string &out) {
    block_q5_K b;
    uint8_t L[QK_K];
    k_asymmetric<31>(x, b.d, b.dmin, b.scales, L);
    std::memset(b.qh, 0, sizeof b.qh);
    for (int j = 0, pair = 0; j < QK_K; j += 64, ++pair)
        for (int l = 0; l < 32; ++l) {
            const int lo = L[j + l], hi = L[j + l + 32];
            b.qs[j / 2 + l] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
            b.qh[l] |= uint8_t(((lo >> 4) << (2 * pair)) | ((hi >> 4) << (2 * pair + 1)));
        }
    put(out, b);
}

// Q6_K: 16 sub-blocks of 16 fitted one by one, their scales quantised to int8 against the largest
// (which maps to -128), then every element re-rounded against the scales as stored.
void q6_K(const float *x, std::string &out) {
    float scale[16], max_scale = 0, max_abs = 0;
    uint8_t L[QK_K];
    for (int j = 0; j < 16; ++j) {
        scale[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
        if (std::fabs(scale[j]) > max_abs) max_abs = std::fabs(scale[j]), max_scale = scale[j];
    }
    block_q6_K b;
    if (max_abs < group_max_eps) {
        std::memset(&b, 0, sizeof b);
        put(out, b);
        return;
    }
    const float iscale = -128.0f / max_scale;
    b.d = fp32_to_fp16(1 / iscale);
    for (int j = 0; j < 16; ++j) b.scales[j] = int8_t(std::min(127, nearest(iscale * scale[j])));
    const float dh = fp16_to_fp32(b.d);
    for (int j = 0; j < 16; ++j) {
        const float dj = dh * b.scales[j];
        if (dj == 0) continue;
        for (int l = 0; l < 16; ++l) L[16 * j + l] = uint8_t(clamp(nearest(x[16 * j + l] / dj), -32, 31) + 32);
    }
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
            const uint8_t *e = L + 128 * h;
            b.ql[64 * h + l] = uint8_t((e[l] & 0xF) | ((e[l + 64] & 0xF) << 4));
            b.ql[64 * h + l + 32] = uint8_t((e[l + 32] & 0xF) | ((e[l + 96] & 0xF) << 4));
            b.qh[32 * h + l] = uint8_t((e[l] >> 4) | ((e[l + 32] >> 4) << 2) | ((e[l + 64] >> 4) << 4) | ((e[l + 96] >> 4) << 6));
        }
    put(out, b);
}

}  // namespace

std::string quantize_rows(DType type, const float *x, int64_t rows, int64_t n, const std::string &name) {
    std::string out;
    const int64_t total = rows * n;
    switch (type) {
    case DType::F32: out.assign(reinterpret_cast<const char *>(x), size_t(total) * 4); return out;
    case DType::F16:
        out.reserve(size_t(total) * 2);
        for (int64_t i = 0; i < total; ++i) {
            uint16_t h = fp32_to_fp16(x[i]);
            out.append(reinterpret_cast<const char *>(&h), 2);
        }
        return out;
    default: break;
    }
    const int64_t be = int64_t(block_elements(type));
    void (*block)(const float *, std::string &) = nullptr;
    switch (type) {
    case DType::Q8_0: block = q8_0; break;
    case DType::Q4_0: block = q4_0; break;
    case DType::Q5_0: block = q5_0; break;
    case DType::Q5_1: block = q5_1; break;
    case DType::Q4_K: block = q4_K; break;
    case DType::Q5_K: block = q5_K; break;
    case DType::Q6_K: block = q6_K; break;
    default: throw ModelError(std::string("cannot write tensor '") + name + "' as " + dtype_name(type));
    }
    if (n % be) throw ModelError("tensor '" + name + "': rows of " + std::to_string(n) + " are not whole " + dtype_name(type) + " blocks");
    out.reserve(size_t(total / be) * block_bytes(type));
    for (int64_t i = 0; i < total; i += be) block(x + i, out);
    return out;
}

}  // namespace saem::nn
