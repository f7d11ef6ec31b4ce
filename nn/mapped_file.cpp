#include "nn/nn.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace saem::nn {

MappedFile::MappedFile(const std::string &path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw ModelError(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw ModelError(path + ": not a regular file");
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {
        void *p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            ::close(fd);
            throw ModelError(path + ": cannot map: " + std::strerror(errno));
        }
        data_ = static_cast<const uint8_t *>(p);
    }
    ::close(fd);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t *>(data_), size_);
}

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
    case DType::Q8_0: case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: return 32;
    case DType::Q4_K: case DType::Q5_K: case DType::Q6_K: return 256;
    default: return 1;
    }
}

size_t block_bytes(DType t) {
    switch (t) {
    case DType::Q8_0: return 34;   // f16 scale, 32 x int8
    case DType::Q4_0: return 18;   // f16 scale, 32 x 4 bits
    case DType::Q4_1: return 20;   // f16 scale and min, 32 x 4 bits
    case DType::Q5_0: return 22;   // f16 scale, 32 high bits, 32 x 4 bits
    case DType::Q5_1: return 24;   // f16 scale and min, 32 high bits, 32 x 4 bits
    case DType::Q4_K: return 144;  // f16 d and dmin, 12 bytes of 6-bit scales/mins, 256 x 4 bits
    case DType::Q5_K: return 176;  // as Q4_K plus 32 bytes of high bits
    case DType::Q6_K: return 210;  // 128 low nibbles, 64 high 2-bits, 16 int8 scales, f16 d
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

int64_t Tensor::elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

// With F16C (any x86 build for a CPU that has it) the conversions are one instruction each; the
// portable versions below round the same way (to nearest, ties to even).
float half_to_float(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#endif
    uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exp = 127 - 15 + 1;
            while (!(mant & 0x400)) { mant <<= 1; --exp; }
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
}

uint16_t float_to_half(float f) {
#if defined(__F16C__)
    return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
#endif
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
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // round to nearest even
    return uint16_t(half);
}

namespace {

float f16_at(const uint8_t *p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return half_to_float(h);
}

void scale_min_k4(int j, const uint8_t *q, uint8_t &d, uint8_t &m) {
    if (j < 4) {
        d = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

// One block of a quantised type to its floats (ggml's reference dequantisation).
void dequantize_block(DType t, const uint8_t *b, float *y) {
    switch (t) {
    case DType::Q8_0: {
        float d = f16_at(b);
        const int8_t *q = reinterpret_cast<const int8_t *>(b + 2);
        for (int j = 0; j < 32; ++j) y[j] = d * float(q[j]);
        break;
    }
    case DType::Q4_0: {
        float d = f16_at(b);
        const uint8_t *q = b + 2;
        for (int j = 0; j < 16; ++j) {
            y[j] = d * float((q[j] & 0xF) - 8);
            y[j + 16] = d * float((q[j] >> 4) - 8);
        }
        break;
    }
    case DType::Q4_1: {
        float d = f16_at(b), m = f16_at(b + 2);
        const uint8_t *q = b + 4;
        for (int j = 0; j < 16; ++j) {
            y[j] = d * float(q[j] & 0xF) + m;
            y[j + 16] = d * float(q[j] >> 4) + m;
        }
        break;
    }
    case DType::Q5_0: case DType::Q5_1: {
        bool has_min = t == DType::Q5_1;
        float d = f16_at(b), m = has_min ? f16_at(b + 2) : 0;
        uint32_t qh;
        std::memcpy(&qh, b + (has_min ? 4 : 2), 4);
        const uint8_t *q = b + (has_min ? 8 : 6);
        for (int j = 0; j < 16; ++j) {
            int h0 = int(((qh >> j) << 4) & 0x10), h1 = int((qh >> (j + 12)) & 0x10);
            int x0 = (q[j] & 0xF) | h0, x1 = (q[j] >> 4) | h1;
            if (has_min) {
                y[j] = d * float(x0) + m;
                y[j + 16] = d * float(x1) + m;
            } else {
                y[j] = d * float(x0 - 16);
                y[j + 16] = d * float(x1 - 16);
            }
        }
        break;
    }
    case DType::Q4_K: case DType::Q5_K: {
        bool five = t == DType::Q5_K;
        float d = f16_at(b), dmin = f16_at(b + 2);
        const uint8_t *scales = b + 4, *qh = b + 16, *ql = b + (five ? 48 : 16);
        int is = 0;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < 256; j += 64) {
            uint8_t sc, mn;
            scale_min_k4(is, scales, sc, mn);
            float d1 = d * sc, m1 = dmin * mn;
            scale_min_k4(is + 1, scales, sc, mn);
            float d2 = d * sc, m2 = dmin * mn;
            for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + (five && (qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + (five && (qh[l] & u2) ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 = uint8_t(u1 << 2);
            u2 = uint8_t(u2 << 2);
        }
        break;
    }
    case DType::Q6_K: {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = reinterpret_cast<const int8_t *>(b + 192);
        float d = f16_at(b + 208);
        for (int n = 0; n < 256; n += 128) {
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
        break;
    }
    default: break;
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
    const uint8_t *p = t.data + size_t(row) * row_bytes(t.type, n);
    for (int64_t i = 0; i < n; i += int64_t(be), p += block_bytes(t.type)) dequantize_block(t.type, p, out + i);
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
        return half_to_float(h);
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
        float block[256];
        dequantize_block(t.type, t.data + size_t(i) / be * block_bytes(t.type), block);
        return block[size_t(i) % be];
    }
    }
}

}  // namespace saem::nn
