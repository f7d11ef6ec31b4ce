// nn/blocks.h: ggml's quantised block layouts as typed structs, and the decoding steps that more
// than one file needs: fp16 <-> float, and the packed 6-bit scales of Q4_K/Q5_K. The kernels
// (portable and AVX2), dequantisation and the quantisers all read and write blocks through these.
//
// Data-layout contract (this header owns it). A quantised row of n elements is n / QK consecutive
// blocks with nothing between them, byte for byte as ggml lays them out in GGUF (ggml-common.h);
// fp16 fields are IEEE half precision, little-endian; x is an element, q its stored integer:
//
//   block_q8_0  d, qs[32] int8                          x = d * q
//   block_q4_0  d, qs[16]: byte j holds element j in its low nibble, element j + 16 in its high
//                                                       x = d * (q - 8)
//   block_q4_1  d, m, qs[16] as Q4_0                    x = d * q + m
//   block_q5_0  d, qh[4], qs[16]: Q4_0's nibbles, and bit j of qh (little-endian u32) is element
//               j's fifth bit                           x = d * (q - 16)
//   block_q5_1  d, m, qh[4], qs[16] as Q5_0             x = d * q + m
//   block_q4_K  256 elements in 8 sub-blocks of 32: d, dmin, scales[12] (eight 6-bit scales and
//               eight 6-bit mins, packed: unpack_scales_k4), qs[128]: bytes 32k .. 32k + 31 hold
//               sub-block 2k in their low nibbles and 2k + 1 in their high
//                                                       x = d * sc[j] * q - dmin * mn[j]
//   block_q5_K  as Q4_K with qh[32] before qs: bit s of qh[l] is the fifth bit of element l of
//               sub-block s                             x = d * sc[j] * q - dmin * mn[j]
//   block_q6_K  256 elements in 16 sub-blocks of 16: ql[128] low nibbles, qh[64] high 2-bit pairs,
//               scales[16] int8, d last. In each half h of 128 elements, element l (0-31) + 32i is
//               ql[64h + l + 32(i & 1)] (low nibble for i < 2, high for i >= 2) with bits 2i, 2i+1
//               of qh[32h + l] above it                x = d * scales[e / 16] * (q - 32)
//   block_q8_K  the activation partner of the K types (never in a file): float d, qs[256] int8,
//               bsums[16], the sums of each 16 qs     x = d * q
//
// Every struct's size is asserted, so a layout cannot drift from the file format. Blocks are read
// in place from the mapped file: GGUF aligns tensor data to 32 bytes and every block size is even,
// so the 2-byte alignment of the fp16 fields holds.
//
// Threads: everything here is a pure function of its arguments; any thread may call it.
//
// The functions are `static inline` on purpose: kernels_avx2.cpp, compiled for AVX2 alone, includes
// this header, and the linker could keep that file's out-of-line copy of an ordinary inline
// function for every caller, putting AVX2 instructions on the portable path.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace saem::nn {

constexpr int QK4_0 = 32, QK4_1 = 32, QK5_0 = 32, QK5_1 = 32, QK8_0 = 32;
constexpr int QK_K = 256;          // elements of a K-type super-block
constexpr int K_SCALE_SIZE = 12;   // bytes of Q4_K/Q5_K's packed scales and mins

struct block_q8_0 {
    uint16_t d;
    int8_t qs[QK8_0];
};
static_assert(sizeof(block_q8_0) == 2 + QK8_0, "wrong q8_0 block size");

struct block_q4_0 {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 2 + QK4_0 / 2, "wrong q4_0 block size");

struct block_q4_1 {
    uint16_t d, m;
    uint8_t qs[QK4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 4 + QK4_1 / 2, "wrong q4_1 block size");

struct block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[QK5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 2 + 4 + QK5_0 / 2, "wrong q5_0 block size");

struct block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[QK5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 4 + 4 + QK5_1 / 2, "wrong q5_1 block size");

struct block_q4_K {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 4 + K_SCALE_SIZE + QK_K / 2, "wrong q4_K block size");

struct block_q5_K {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 4 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2, "wrong q5_K block size");

struct block_q6_K {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
};
static_assert(sizeof(block_q6_K) == QK_K / 2 + QK_K / 4 + QK_K / 16 + 2, "wrong q6_K block size");

struct block_q8_K {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};
static_assert(sizeof(block_q8_K) == 4 + QK_K + QK_K / 16 * 2, "wrong q8_K block size");

// IEEE half to float. With F16C (kernels_avx2.cpp, and any build for a CPU that has it) one
// instruction; the portable version gives the same bits (the conversion is exact).
static inline float fp16_to_fp32(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) {
                mant <<= 1;
                --exp;
            }
            bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000 | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
#endif
}

// Float to IEEE half, rounded to nearest, ties to even (as F16C's _MM_FROUND_TO_NEAREST_INT).
static inline uint16_t fp32_to_fp16(float f) {
#if defined(__F16C__)
    return uint16_t(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
#else
    uint32_t x;
    std::memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, mant = x & 0x7fffff;
    int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
    if (((x >> 23) & 0xff) == 0xff) return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));
    if (exp >= 31) return uint16_t(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return uint16_t(sign);
        mant |= 0x800000;
        uint32_t shift = uint32_t(14 - exp);
        uint32_t half = mant >> shift, rest = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (half & 1))) ++half;
        return uint16_t(sign | half);
    }
    uint32_t half = sign | (uint32_t(exp) << 10) | (mant >> 13), rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;
    return uint16_t(half);
#endif
}

// Q4_K/Q5_K's twelve scale bytes to the eight 6-bit scales and mins of its sub-blocks. Sub-blocks
// 0-3 keep theirs in the low six bits of bytes 0-3 (scales) and 4-7 (mins); sub-blocks 4-7 have
// their low four bits in the nibbles of bytes 8-11 (scale low, min high) and their top two bits in
// the top bits of bytes 0-3 (scales) and 4-7 (mins).
static inline void unpack_scales_k4(const uint8_t *packed, uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; ++j) {
        sc[j] = packed[j] & 63;
        mn[j] = packed[j + 4] & 63;
        sc[j + 4] = uint8_t((packed[j + 8] & 0xF) | ((packed[j] >> 6) << 4));
        mn[j + 4] = uint8_t((packed[j + 8] >> 4) | ((packed[j + 4] >> 6) << 4));
    }
}

// The inverse of unpack_scales_k4, for the quantiser; sc and mn must fit in six bits.
static inline void pack_scales_k4(const uint8_t sc[8], const uint8_t mn[8], uint8_t *packed) {
    for (int j = 0; j < 4; ++j) {
        packed[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
        packed[j + 4] = uint8_t(mn[j] | ((mn[j + 4] >> 4) << 6));
        packed[j + 8] = uint8_t((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
}

}  // namespace saem::nn
