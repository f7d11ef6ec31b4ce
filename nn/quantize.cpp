// Block quantisers for writing GGUF files (test models, converters). Each block is scaled so its
// largest magnitude lands on the edge of the integer range and every value is rounded to nearest,
// then filled in as its nn/blocks.h struct.
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

// Q4_K: 8 sub-blocks of 32, each x = d*sc*q - dmin*m with q in 0..15 and 6-bit sc, m.
void q4_K(const float *x, std::string &out) {
    float scale[8], minv[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
        float lo = *std::min_element(x + 32 * j, x + 32 * j + 32), hi = *std::max_element(x + 32 * j, x + 32 * j + 32);
        minv[j] = std::max(0.0f, -lo);
        scale[j] = (hi + minv[j]) / 15.0f;
        max_scale = std::max(max_scale, scale[j]);
        max_min = std::max(max_min, minv[j]);
    }
    float d = max_scale / 63.0f, dmin = max_min / 63.0f;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; ++j) {
        ls[j] = uint8_t(d > 0 ? clamp(int(std::round(scale[j] / d)), 0, 63) : 0);
        lm[j] = uint8_t(dmin > 0 ? clamp(int(std::round(minv[j] / dmin)), 0, 63) : 0);
    }
    block_q4_K b;
    b.d = fp32_to_fp16(d);
    b.dmin = fp32_to_fp16(dmin);
    pack_scales_k4(ls, lm, b.scales);
    // Quantise against the scales as stored (f16 d, 6-bit sc) so the rounding is the reader's.
    float dh = fp16_to_fp32(b.d), mh = fp16_to_fp32(b.dmin);
    uint8_t L[QK_K];
    for (int j = 0; j < 8; ++j) {
        float dj = dh * ls[j], mj = mh * lm[j];
        for (int l = 0; l < 32; ++l) L[32 * j + l] = uint8_t(dj > 0 ? clamp(int(std::round((x[32 * j + l] + mj) / dj)), 0, 15) : 0);
    }
    for (int j = 0; j < QK_K; j += 64)
        for (int l = 0; l < 32; ++l) b.qs[j / 2 + l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
    put(out, b);
}

// Q6_K: 16 sub-blocks of 16, x = d*sc*(q - 32) with q in 0..63 and int8 sc.
void q6_K(const float *x, std::string &out) {
    float scale[16], max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
        scale[j] = signed_max(x + 16 * j, 16) / -32.0f;
        if (std::fabs(scale[j]) > amax) amax = std::fabs(scale[j]), max_scale = scale[j];
    }
    float d = max_scale / -127.0f;
    block_q6_K b;
    for (int j = 0; j < 16; ++j) b.scales[j] = int8_t(d != 0 ? clamp(int(std::round(scale[j] / d)), -127, 127) : 0);
    b.d = fp32_to_fp16(d);
    float dh = fp16_to_fp32(b.d);
    uint8_t L[QK_K];
    for (int j = 0; j < 16; ++j) {
        float dj = dh * b.scales[j];
        for (int l = 0; l < 16; ++l) L[16 * j + l] = uint8_t(dj != 0 ? clamp(int(std::round(x[16 * j + l] / dj)), -32, 31) + 32 : 32);
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
    case DType::Q4_K: block = q4_K; break;
    case DType::Q6_K: block = q6_K; break;
    default: throw ModelError(std::string("cannot write tensor '") + name + "' as " + dtype_name(type));
    }
    if (n % be) throw ModelError("tensor '" + name + "': rows of " + std::to_string(n) + " are not whole " + dtype_name(type) + " blocks");
    out.reserve(size_t(total / be) * block_bytes(type));
    for (int64_t i = 0; i < total; i += be) block(x + i, out);
    return out;
}

}  // namespace saem::nn
