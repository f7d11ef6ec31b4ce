// Block quantisers for writing GGUF files (test models, converters). Each block is scaled so its
// largest magnitude lands on the edge of the integer range and every value is rounded to nearest.
#include "nn/internal.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace saem::nn {

namespace {

void put_half(std::string &out, float f) {
    uint16_t h = float_to_half(f);
    out.append(reinterpret_cast<const char *>(&h), 2);
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
    for (int k = 0; k < 32; ++k) amax = std::max(amax, std::fabs(x[k]));
    float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    put_half(out, d);
    for (int k = 0; k < 32; ++k) out += char(int8_t(std::round(x[k] * id)));
}

// Q4_0 / Q5_0: the signed maximum maps to -8 / -16, so the asymmetric range is used in full.
void q4_0(const float *x, std::string &out) {
    float d = signed_max(x, 32) / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
    put_half(out, d);
    for (int j = 0; j < 16; ++j) {
        int lo = clamp(int(std::round(x[j] * id)) + 8, 0, 15), hi = clamp(int(std::round(x[j + 16] * id)) + 8, 0, 15);
        out += char(uint8_t(lo | (hi << 4)));
    }
}

void q5_0(const float *x, std::string &out) {
    float d = signed_max(x, 32) / -16.0f, id = d != 0 ? 1.0f / d : 0.0f;
    put_half(out, d);
    uint32_t qh = 0;
    uint8_t qs[16];
    for (int j = 0; j < 16; ++j) {
        int lo = clamp(int(std::round(x[j] * id)) + 16, 0, 31), hi = clamp(int(std::round(x[j + 16] * id)) + 16, 0, 31);
        qs[j] = uint8_t((lo & 0xF) | ((hi & 0xF) << 4));
        qh |= uint32_t(lo >> 4) << j;
        qh |= uint32_t(hi >> 4) << (j + 16);
    }
    out.append(reinterpret_cast<const char *>(&qh), 4);
    out.append(reinterpret_cast<const char *>(qs), 16);
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
    uint8_t s[12] = {};
    for (int j = 0; j < 8; ++j) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = uint8_t((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            s[j - 4] |= uint8_t((ls[j] >> 4) << 6);
            s[j] |= uint8_t((lm[j] >> 4) << 6);
        }
    }
    // Quantise against the scales as stored (f16 d, 6-bit sc) so the rounding is the reader's.
    float dh = half_to_float(float_to_half(d)), mh = half_to_float(float_to_half(dmin));
    uint8_t L[256];
    for (int j = 0; j < 8; ++j) {
        float dj = dh * ls[j], mj = mh * lm[j];
        for (int l = 0; l < 32; ++l) L[32 * j + l] = uint8_t(dj > 0 ? clamp(int(std::round((x[32 * j + l] + mj) / dj)), 0, 15) : 0);
    }
    put_half(out, d);
    put_half(out, dmin);
    out.append(reinterpret_cast<const char *>(s), 12);
    for (int j = 0; j < 256; j += 64)
        for (int l = 0; l < 32; ++l) out += char(uint8_t(L[j + l] | (L[j + l + 32] << 4)));
}

// Q6_K: 16 sub-blocks of 16, x = d*sc*(q - 32) with q in 0..63 and int8 sc.
void q6_K(const float *x, std::string &out) {
    float scale[16], max_scale = 0, amax = 0;
    for (int j = 0; j < 16; ++j) {
        scale[j] = signed_max(x + 16 * j, 16) / -32.0f;
        if (std::fabs(scale[j]) > amax) amax = std::fabs(scale[j]), max_scale = scale[j];
    }
    float d = max_scale / -127.0f;
    int8_t sc[16];
    for (int j = 0; j < 16; ++j) sc[j] = int8_t(d != 0 ? clamp(int(std::round(scale[j] / d)), -127, 127) : 0);
    float dh = half_to_float(float_to_half(d));
    uint8_t L[256];
    for (int j = 0; j < 16; ++j) {
        float dj = dh * sc[j];
        for (int l = 0; l < 16; ++l) L[16 * j + l] = uint8_t(dj != 0 ? clamp(int(std::round(x[16 * j + l] / dj)), -32, 31) + 32 : 32);
    }
    uint8_t ql[128] = {}, qh[64] = {};
    for (int h = 0; h < 2; ++h)
        for (int l = 0; l < 32; ++l) {
            const uint8_t *e = L + 128 * h;
            ql[64 * h + l] = uint8_t((e[l] & 0xF) | ((e[l + 64] & 0xF) << 4));
            ql[64 * h + l + 32] = uint8_t((e[l + 32] & 0xF) | ((e[l + 96] & 0xF) << 4));
            qh[32 * h + l] = uint8_t((e[l] >> 4) | ((e[l + 32] >> 4) << 2) | ((e[l + 64] >> 4) << 4) | ((e[l + 96] >> 4) << 6));
        }
    out.append(reinterpret_cast<const char *>(ql), 128);
    out.append(reinterpret_cast<const char *>(qh), 64);
    out.append(reinterpret_cast<const char *>(sc), 16);
    put_half(out, d);
}

}  // namespace

std::string quantize_rows(DType type, const float *x, int64_t rows, int64_t n, const std::string &name) {
    std::string out;
    const int64_t total = rows * n;
    switch (type) {
    case DType::F32: out.assign(reinterpret_cast<const char *>(x), size_t(total) * 4); return out;
    case DType::F16:
        out.reserve(size_t(total) * 2);
        for (int64_t i = 0; i < total; ++i) put_half(out, x[i]);
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
