// The AVX2 + FMA + F16C kernel set. This file alone is compiled with those instructions enabled;
// kernels() picks it only on CPUs that report them. Integer blocks use the usual x86 idiom:
// maddubs (unsigned x signed bytes -> 16-bit pair sums), then madd by a scale -> 32-bit sums.
#include "nn/kernels.h"

#include "nn/blocks.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include <cstring>

namespace saem::nn {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

float dot_f32(int64_t n, const void *w, const void *a) {
    const float *x = static_cast<const float *>(w), *y = static_cast<const float *>(a);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
    }
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; ++i) sum += x[i] * y[i];
    return sum;
}

float dot_f16(int64_t n, const void *w, const void *a) {
    const uint16_t *x = static_cast<const uint16_t *>(w), *y = static_cast<const uint16_t *>(a);
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    auto load = [](const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))); };
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(load(x + i), load(y + i), s0);
        s1 = _mm256_fmadd_ps(load(x + i + 8), load(y + i + 8), s1);
        s2 = _mm256_fmadd_ps(load(x + i + 16), load(y + i + 16), s2);
        s3 = _mm256_fmadd_ps(load(x + i + 24), load(y + i + 24), s3);
    }
    float sum = hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; ++i) sum += fp16_to_fp32(x[i]) * fp16_to_fp32(y[i]);
    return sum;
}

inline __m256i load256(const void *p) { return _mm256_loadu_si256(static_cast<const __m256i *>(p)); }

// The quantised kernels are written once for NT activation rows (1 or 4): a weight block is
// unpacked once and multiplied into every row, and each row sees exactly the arithmetic of NT = 1,
// so a prompt batch gives the same numbers as one token at a time.

// Blocks of 32 with one f16 scale (Q8_0, Q4_0, Q5_0) against Q8_0 rows. unpack gives the block's
// 32 values as signed bytes.
template <int NT, class Block, class Unpack>
inline void blocks32(int64_t n, const Block *w, const uint8_t *a, size_t stride, float *out, Unpack unpack) {
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / 32; ++b, ++w) {
        const __m256i q = unpack(*w), aq = _mm256_sign_epi8(q, q);
        const __m256 dw = _mm256_set1_ps(fp16_to_fp32(w->d));
        for (int t = 0; t < NT; ++t) {
            // Activation rows (kernels.h): the float scales, then the int8 blocks.
            const uint8_t *row = a + size_t(t) * stride;
            const __m256i pairs = _mm256_maddubs_epi16(aq, _mm256_sign_epi8(load256(act_q8_0_quants(row, n) + 32 * b), q));
            const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
            const __m256 d = _mm256_mul_ps(dw, _mm256_broadcast_ss(reinterpret_cast<const float *>(row) + b));
            acc[t] = _mm256_fmadd_ps(d, p, acc[t]);
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = hsum(acc[t]);
}

// Sixteen bytes of packed nibbles to 32 bytes: low nibbles (elements 0-15) then high (16-31).
inline __m256i nibbles(const uint8_t *q) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i *>(q));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

// Bit i of 32 to byte i: 0xFF where set.
inline __m256i bits_to_bytes(uint32_t bits) {
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(int(bits)),
        _mm256_setr_epi64x(0x0000000000000000, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303));
    const __m256i select = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
    return _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select);
}

template <int NT>
void rows_q8_0(int64_t n, const void *w, const void *a, size_t stride, float *out) {
    blocks32<NT>(n, static_cast<const block_q8_0 *>(w), static_cast<const uint8_t *>(a), stride, out,
                 [](const block_q8_0 &x) { return load256(x.qs); });
}

template <int NT>
void rows_q4_0(int64_t n, const void *w, const void *a, size_t stride, float *out) {
    blocks32<NT>(n, static_cast<const block_q4_0 *>(w), static_cast<const uint8_t *>(a), stride, out,
                 [](const block_q4_0 &x) { return _mm256_sub_epi8(nibbles(x.qs), _mm256_set1_epi8(8)); });
}

template <int NT>
void rows_q5_0(int64_t n, const void *w, const void *a, size_t stride, float *out) {
    blocks32<NT>(n, static_cast<const block_q5_0 *>(w), static_cast<const uint8_t *>(a), stride, out, [](const block_q5_0 &x) {
        uint32_t qh;
        std::memcpy(&qh, x.qh, 4);
        // nibble + 16 * bit - 16: a clear fifth bit is the nibble with 0xF0 set (nibble - 16 as int8).
        return _mm256_or_si256(nibbles(x.qs), _mm256_andnot_si256(bits_to_bytes(qh), _mm256_set1_epi8(char(0xF0))));
    });
}

inline const block_q8_K *q8k(const void *a, size_t stride, int t, int64_t b) {
    return reinterpret_cast<const block_q8_K *>(static_cast<const uint8_t *>(a) + size_t(t) * stride) + b;
}

template <int NT>
void rows_q4_K(int64_t n, const void *w, const void *a, size_t stride, float *out) {
    const block_q4_K *x = static_cast<const block_q4_K *>(w);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    __m256 acc[NT];
    float acc_min[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps(), acc_min[t] = 0;
    for (int64_t b = 0; b < n / QK_K; ++b, ++x) {
        const uint8_t *q = x->qs;
        uint8_t sc[8], mn[8];
        unpack_scales_k4(x->scales, sc, mn);
        __m256i sumi[NT];
        for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
        for (int j = 0; j < 4; ++j) {
            const __m256i bits = load256(q + 32 * j);
            const __m256i lo = _mm256_and_si256(bits, low4), hi = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4);
            const __m256i s0 = _mm256_set1_epi16(int16_t(sc[2 * j])), s1 = _mm256_set1_epi16(int16_t(sc[2 * j + 1]));
            for (int t = 0; t < NT; ++t) {
                const block_q8_K *y = q8k(a, stride, t, b);
                const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(y->qs + 64 * j)), s0);
                const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(y->qs + 64 * j + 32)), s1);
                sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p0, p1));
            }
        }
        for (int t = 0; t < NT; ++t) {
            const block_q8_K *y = q8k(a, stride, t, b);
            int summ = 0;
            for (int j = 0; j < 8; ++j) summ += mn[j] * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * fp16_to_fp32(x->d)), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            acc_min[t] += y->d * fp16_to_fp32(x->dmin) * float(summ);
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = hsum(acc[t]) - acc_min[t];
}

template <int NT>
void rows_q6_K(int64_t n, const void *w, const void *a, size_t stride, float *out) {
    const block_q6_K *x = static_cast<const block_q6_K *>(w);
    const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(0x03);
    __m256 acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < n / QK_K; ++b, ++x) {
        const uint8_t *ql = x->ql, *qh = x->qh;
        const int8_t *sc = x->scales;
        __m256i sumi[NT];
        for (int t = 0; t < NT; ++t) sumi[t] = _mm256_setzero_si256();
        for (int h = 0; h < 2; ++h, ql += 64, qh += 32) {
            const __m256i la = load256(ql), lb = load256(ql + 32), hb = load256(qh);
            __m256i e[4];
            e[0] = _mm256_or_si256(_mm256_and_si256(la, low4), _mm256_slli_epi16(_mm256_and_si256(hb, low2), 4));
            e[1] = _mm256_or_si256(_mm256_and_si256(lb, low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2), low2), 4));
            e[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 4), low2), 4));
            e[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), low4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 6), low2), 4));
            for (int k = 0; k < 4; ++k) {
                const int s = 8 * h + 2 * k;  // sub-blocks of 16 covered by this 32
                const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[s + 1]), _mm_set1_epi16(sc[s]));
                for (int t = 0; t < NT; ++t) {
                    const __m256i p = _mm256_maddubs_epi16(e[k], load256(q8k(a, stride, t, b)->qs + 128 * h + 32 * k));
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, scale));
                }
            }
        }
        for (int t = 0; t < NT; ++t) {
            const block_q8_K *y = q8k(a, stride, t, b);
            int offset = 0;  // the stored values are q + 32
            for (int j = 0; j < 16; ++j) offset += sc[j] * y->bsums[j];
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(y->d * fp16_to_fp32(x->d)),
                                     _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[t], _mm256_setr_epi32(32 * offset, 0, 0, 0, 0, 0, 0, 0))), acc[t]);
        }
    }
    for (int t = 0; t < NT; ++t) out[t] = hsum(acc[t]);
}

template <void (*Rows)(int64_t, const void *, const void *, size_t, float *)>
float one(int64_t n, const void *w, const void *a) {
    float out;
    Rows(n, w, a, 0, &out);
    return out;
}

void axpy_f16(int64_t n, float a, const uint16_t *x, float *y) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, v, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}

const KernelSet avx2{"avx2",
                     {dot_f32, rows4<dot_f32>},
                     {dot_f16, rows4<dot_f16>},
                     {one<rows_q8_0<1>>, rows_q8_0<4>},
                     {one<rows_q4_0<1>>, rows_q4_0<4>},
                     {one<rows_q5_0<1>>, rows_q5_0<4>},
                     {one<rows_q4_K<1>>, rows_q4_K<4>},
                     {one<rows_q6_K<1>>, rows_q6_K<4>},
                     axpy_f16};

}  // namespace

const KernelSet *avx2_kernels() { return &avx2; }

}  // namespace saem::nn

#else

namespace saem::nn {
const KernelSet *avx2_kernels() { return nullptr; }
}  // namespace saem::nn

#endif
