// The element types: their tables (names, block sizes), and reading any tensor's elements back as
// floats (ggml's reference dequantisation, block by block, on the layouts of nn/blocks.h).
#include "nn/weights.h"

#include "nn/blocks.h"

#include <cstring>

namespace saem::nn {

const char *dtype_name(DType t) {
    switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I8: return "I8";
    case DType::Q8_0: return "Q8_0";
    case DType::Q4_0: return "Q4_0";
    case DType::Q4_1: return "Q4_1";
    case DType::Q5_0: return "Q5_0";
    case DType::Q5_1: return "Q5_1";
    case DType::Q4_K: return "Q4_K";
    case DType::Q5_K: return "Q5_K";
    case DType::Q6_K: return "Q6_K";
    }
    return "?";
}

size_t dtype_size(DType t) {
    switch (t) {
    case DType::F32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I8: return 1;
    default: return 0;
    }
}

size_t block_elements(DType t) {
    switch (t) {
    case DType::Q8_0: return QK8_0;
    case DType::Q4_0: return QK4_0;
    case DType::Q4_1: return QK4_1;
    case DType::Q5_0: return QK5_0;
    case DType::Q5_1: return QK5_1;
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return QK_K;
    default: return 1;
    }
}

size_t block_bytes(DType t) {
    switch (t) {
    case DType::Q8_0: return sizeof(block_q8_0);
    case DType::Q4_0: return sizeof(block_q4_0);
    case DType::Q4_1: return sizeof(block_q4_1);
    case DType::Q5_0: return sizeof(block_q5_0);
    case DType::Q5_1: return sizeof(block_q5_1);
    case DType::Q4_K: return sizeof(block_q4_K);
    case DType::Q5_K: return sizeof(block_q5_K);
    case DType::Q6_K: return sizeof(block_q6_K);
    default: return dtype_size(t);
    }
}

size_t row_bytes(DType t, int64_t n) {
    size_t be = block_elements(t);
    if (n < 0 || size_t(n) % be != 0)
        throw ModelError(std::string("a row of ") + std::to_string(n) + " elements is not whole " + dtype_name(t) + " blocks of " +
                         std::to_string(be));
    return size_t(n) / be * block_bytes(t);
}

float half_to_float(uint16_t h) { return fp16_to_fp32(h); }
uint16_t float_to_half(float f) { return fp32_to_fp16(f); }

namespace {

void dequantize(const block_q8_0 &b, float *y) {
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < QK8_0; ++j) y[j] = d * float(b.qs[j]);
}

void dequantize(const block_q4_0 &b, float *y) {
    const float d = fp16_to_fp32(b.d);
    for (int j = 0; j < QK4_0 / 2; ++j) {
        y[j] = d * float((b.qs[j] & 0xF) - 8);
        y[j + QK4_0 / 2] = d * float((b.qs[j] >> 4) - 8);
    }
}

void dequantize(const block_q4_1 &b, float *y) {
    const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
    for (int j = 0; j < QK4_1 / 2; ++j) {
        y[j] = d * float(b.qs[j] & 0xF) + m;
        y[j + QK4_1 / 2] = d * float(b.qs[j] >> 4) + m;
    }
}

// The fifth bits of element j (low nibble) and j + 16 (high nibble) of a Q5_0/Q5_1 block, as 0x10.
inline int fifth_bit_lo(uint32_t qh, int j) { return int(((qh >> j) << 4) & 0x10); }
inline int fifth_bit_hi(uint32_t qh, int j) { return int((qh >> (j + 12)) & 0x10); }

void dequantize(const block_q5_0 &b, float *y) {
    const float d = fp16_to_fp32(b.d);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < QK5_0 / 2; ++j) {
        y[j] = d * float(((b.qs[j] & 0xF) | fifth_bit_lo(qh, j)) - 16);
        y[j + QK5_0 / 2] = d * float(((b.qs[j] >> 4) | fifth_bit_hi(qh, j)) - 16);
    }
}

void dequantize(const block_q5_1 &b, float *y) {
    const float d = fp16_to_fp32(b.d), m = fp16_to_fp32(b.m);
    uint32_t qh;
    std::memcpy(&qh, b.qh, 4);
    for (int j = 0; j < QK5_1 / 2; ++j) {
        y[j] = d * float((b.qs[j] & 0xF) | fifth_bit_lo(qh, j)) + m;
        y[j + QK5_1 / 2] = d * float((b.qs[j] >> 4) | fifth_bit_hi(qh, j)) + m;
    }
}

// Q4_K, and Q5_K when qh is given: per 64 elements two sub-blocks, the low nibbles then the high.
void dequantize_k4(uint16_t d16, uint16_t dmin16, const uint8_t *scales, const uint8_t *qh, const uint8_t *ql, float *y) {
    const float d = fp16_to_fp32(d16), dmin = fp16_to_fp32(dmin16);
    uint8_t sc[8], mn[8];
    unpack_scales_k4(scales, sc, mn);
    uint8_t u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2) {
        const float d1 = d * sc[is], m1 = dmin * mn[is], d2 = d * sc[is + 1], m2 = dmin * mn[is + 1];
        for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + (qh && (qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + (qh && (qh[l] & u2) ? 16 : 0)) - m2;
        ql += 32;
        u1 = uint8_t(u1 << 2);
        u2 = uint8_t(u2 << 2);
    }
}

void dequantize(const block_q4_K &b, float *y) { dequantize_k4(b.d, b.dmin, b.scales, nullptr, b.qs, y); }
void dequantize(const block_q5_K &b, float *y) { dequantize_k4(b.d, b.dmin, b.scales, b.qh, b.qs, y); }

void dequantize(const block_q6_K &b, float *y) {
    const float d = fp16_to_fp32(b.d);
    const uint8_t *ql = b.ql, *qh = b.qh;
    const int8_t *sc = b.scales;
    for (int n = 0; n < QK_K; n += 128) {
        for (int l = 0; l < 32; ++l) {
            int is = l / 16;
            int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * sc[is] * float(q1);
            y[l + 32] = d * sc[is + 2] * float(q2);
            y[l + 64] = d * sc[is + 4] * float(q3);
            y[l + 96] = d * sc[is + 6] * float(q4);
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

template <class Block>
void dequantize_blocks(const uint8_t *p, int64_t blocks, int64_t elements_per_block, float *y) {
    const Block *b = reinterpret_cast<const Block *>(p);
    for (int64_t i = 0; i < blocks; ++i) dequantize(b[i], y + i * elements_per_block);
}

// blocks consecutive blocks of a quantised type at p to floats.
void dequantize_blocks(DType t, const uint8_t *p, int64_t blocks, float *y) {
    const int64_t be = int64_t(block_elements(t));
    switch (t) {
    case DType::Q8_0: return dequantize_blocks<block_q8_0>(p, blocks, be, y);
    case DType::Q4_0: return dequantize_blocks<block_q4_0>(p, blocks, be, y);
    case DType::Q4_1: return dequantize_blocks<block_q4_1>(p, blocks, be, y);
    case DType::Q5_0: return dequantize_blocks<block_q5_0>(p, blocks, be, y);
    case DType::Q5_1: return dequantize_blocks<block_q5_1>(p, blocks, be, y);
    case DType::Q4_K: return dequantize_blocks<block_q4_K>(p, blocks, be, y);
    case DType::Q5_K: return dequantize_blocks<block_q5_K>(p, blocks, be, y);
    case DType::Q6_K: return dequantize_blocks<block_q6_K>(p, blocks, be, y);
    default: return;
    }
}

}  // namespace

void dequantize_row(const Tensor &t, int64_t row, float *out) {
    int64_t n = t.shape.empty() ? 1 : t.shape.back();
    size_t be = block_elements(t.type);
    if (be == 1) {
        for (int64_t i = 0; i < n; ++i) out[i] = element(t, row * n + i);
        return;
    }
    dequantize_blocks(t.type, t.data + size_t(row) * row_bytes(t.type, n), n / int64_t(be), out);
}

float element(const Tensor &t, int64_t i) {
    switch (t.type) {
    case DType::F32: {
        float f;
        std::memcpy(&f, t.data + 4 * i, 4);
        return f;
    }
    case DType::F16: {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        return fp16_to_fp32(h);
    }
    case DType::BF16: {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        uint32_t bits = uint32_t(h) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
    }
    case DType::I8: return float(reinterpret_cast<const int8_t *>(t.data)[i]);
    default: {
        size_t be = block_elements(t.type);
        float block[QK_K];
        dequantize_blocks(t.type, t.data + size_t(i) / be * block_bytes(t.type), 1, block);
        return block[size_t(i) % be];
    }
    }
}

}  // namespace saem::nn
