/* ggml's tensor types as float32 (see gguf.h). Each block layout is read
 * byte by byte in little-endian order, so the code does not depend on the
 * host's struct packing. The arithmetic follows ggml's reference
 * dequantizers: the scale is a float16 widened to float32, and every
 * product is a float32 product. */
#include "formats/gguf.h"

#include <string.h>

#include "formats/dtype.h"

static float half(const unsigned char *p)
{
    return f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

/* Q8_0: 32 values = d (f16) x int8. 34 bytes. */
static void q8_0(const unsigned char *b, float *y)
{
    float d = half(b);
    for (int j = 0; j < 32; j++) y[j] = d * (float)(int8_t)b[2 + j];
}

/* Q4_0: 32 values = d (f16) x (nibble - 8); byte j holds value j in its low
 * nibble and value j + 16 in its high one. 18 bytes. */
static void q4_0(const unsigned char *b, float *y)
{
    float d = half(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 0x0F) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}

/* The 6-bit scale and min of sub-block j of a Q4_K block, packed in 12
 * bytes: sub-blocks 0-3 in the low six bits of bytes 0-3 and 4-7, 4-7 in
 * bytes 8-11 with their top two bits borrowed from bytes 0-7. */
static void k4_scale_min(int j, const unsigned char *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0F) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Q4_K: 256 values in 8 sub-blocks of 32, value = d*scale*nibble - dmin*min.
 * d, dmin (f16), scales[12], qs[128]: each 32 bytes of qs hold two
 * sub-blocks, the first in the low nibbles. 144 bytes. */
static void q4_k(const unsigned char *b, float *y)
{
    float d = half(b), dmin = half(b + 2);
    const unsigned char *scales = b + 4, *q = b + 16;
    for (int j = 0; j < 8; j += 2) {
        int sc, m;
        k4_scale_min(j, scales, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        k4_scale_min(j + 1, scales, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0x0F) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
        q += 32;
    }
}

/* Q6_K: 256 values in 16 sub-blocks of 16, value = d*scale*(q - 32) with q
 * six bits: the low four in ql[128], the high two in qh[64]; then int8
 * scales[16] and d (f16). 210 bytes. */
static void q6_k(const unsigned char *b, float *y)
{
    const unsigned char *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = half(b + 208);
    for (int n = 0; n < 256; n += 128) {
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0x0F) | ((qh[l] >> 0 & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0x0F) | ((qh[l] >> 2 & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | ((qh[l] >> 4 & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6 & 3) << 4)) - 32;
            y[l] = d * (float)sc[is + 0] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

bool ggml_supported(enum ggml_type t)
{
    switch (t) {
    case GGML_F32: case GGML_F16: case GGML_BF16: case GGML_Q8_0: case GGML_Q4_0: case GGML_Q4_K: case GGML_Q6_K:
        return true;
    default: return false;
    }
}

bool ggml_is_quantized(enum ggml_type t)
{
    uint64_t block, bytes;
    return ggml_type_block(t, &block, &bytes) && block > 1;
}

bool ggml_to_f32(enum ggml_type t, const void *src, float *dst, uint64_t n)
{
    const unsigned char *p = src;
    void (*block_fn)(const unsigned char *, float *) = NULL;
    uint64_t block = 1, bytes = 0;
    switch (t) {
    case GGML_F32: memcpy(dst, src, n * 4); return true;
    case GGML_F16:
        for (uint64_t i = 0; i < n; i++) dst[i] = half(p + 2 * i);
        return true;
    case GGML_BF16:
        for (uint64_t i = 0; i < n; i++) dst[i] = bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return true;
    case GGML_Q8_0: block_fn = q8_0; break;
    case GGML_Q4_0: block_fn = q4_0; break;
    case GGML_Q4_K: block_fn = q4_k; break;
    case GGML_Q6_K: block_fn = q6_k; break;
    default: return false;
    }
    ggml_type_block(t, &block, &bytes);
    for (uint64_t i = 0; i < n / block; i++) block_fn(p + i * bytes, dst + i * block);
    return true;
}
