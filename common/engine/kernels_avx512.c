/* The AVX-512 kernel set (F, BW, VL, DQ and VNNI). Compiled for those
 * instructions whatever the build's flags, and only called after
 * kernels_avx512_supported() said the CPU (and the OS) run them.
 *
 * 4-bit groups: 64 bytes of q_weight hold 4 groups of 32. Their low nibbles
 * are the even elements and the high nibbles the odd ones, so the
 * activations are quantized to int8 in the matching order (per group: 16
 * even, then 16 odd) and VPDPBUSD multiplies the unsigned nibbles by them,
 * four products to a 32-bit lane: lanes 4i..4i+3 hold group i. The lanes
 * are scaled by the weight's and the activation's scales (for 16 groups at
 * once, spread to their lanes), and each group's offset, -max_int · Σ
 * activation, is added once per row times the weight's scale (NK; the KN
 * layout starts each group's sum with it). 3-bit groups and everything
 * else are float32 FMAs. */
#if defined(__x86_64__)
#if !defined(__clang__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")
#endif

#include <immintrin.h>
#include <math.h>

#include "common/engine/kernels.h"
#include "common/engine/kernels_impl.h"

#if defined(__clang__) /* (clang ignores GCC's pragma: the same, its way) */
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c"))), \
                             apply_to = function)
#endif

#define INLINE static inline __attribute__((always_inline))

/* bytes of a scale (the scale dtype is a constant where this is used) */
#define SIZE_OF(t) ((t) == DT_F32 ? (size_t)4 : (size_t)2)

bool kernels_avx512_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
}

INLINE __mmask16 mask16(int64_t n)
{
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

INLINE __mmask64 mask64(int64_t n)
{
    return n >= 64 ? ~(__mmask64)0 : n <= 0 ? 0 : (((__mmask64)1 << n) - 1);
}

/* n (≤ 16) halves or floats at p as 16 float lanes, zero beyond n */
INLINE __m512 load16(enum dtype t, const void *p, int64_t n)
{
    __mmask16 m = mask16(n);
    if (t == DT_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    if (t == DT_BF16)
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
    return _mm512_maskz_loadu_ps(m, p);
}

INLINE __m512 exp512(__m512 x)
{
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), _mm512_set1_ps(-87.3365478515625f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* tanh(x) = 1 - 2 / (e^2x + 1): saturates to ±1 where exp512 clamps */
INLINE __m512 tanh512(__m512 x)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = exp512(_mm512_add_ps(x, x));
    return _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
}

/* ---- int8 activations ---- */

/* 32 values (n of them real) → int8 with one scale: the even elements to
 * even[0..16), the odd ones to odd[0..16); returns the scale and Σ q. */
INLINE float quantize32(const float *x, int64_t n, int8_t *even, int8_t *odd, int32_t *sum)
{
    const __m512 a = _mm512_maskz_loadu_ps(mask16(n), x), b = _mm512_maskz_loadu_ps(mask16(n - 16), x + 16);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
    float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, vid)), qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, vid));
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    _mm_storeu_si128((__m128i *)even, _mm512_cvtsepi32_epi8(_mm512_permutex2var_epi32(qa, ie, qb)));
    _mm_storeu_si128((__m128i *)odd, _mm512_cvtsepi32_epi8(_mm512_permutex2var_epi32(qa, io, qb)));
    *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qa, qb));
    return d;
}

/* NK 4-bit activations, per superblock of 16 groups (512 elements, 640
 * bytes): for each block of 4 groups, 64 even then 64 odd int8 (group i of
 * the block at 16i); then the 16 groups' activation scales, then each
 * group's -max_int · Σ q · scale, the nibbles' offset, which the weight's
 * group scale multiplies. Fewer loads per weight block than a scale and
 * an offset per block: two of int8, and two per superblock. */
#define Q4_SUPER 640

static size_t q4nk_act_bytes(const struct kmat *w)
{
    return (size_t)((kmat_groups(w) + 15) / 16) * Q4_SUPER;
}

static void q4nk_prepare(const struct kmat *w, const float *x, unsigned char *act)
{
    const int64_t K = w->cols, G = kmat_groups(w), supers = (G + 15) / 16;
    const int max_int = w->scheme->max_int;
    memset(act, 0, (size_t)supers * Q4_SUPER);
    for (int64_t g = 0; g < G; g++) {
        unsigned char *s = act + (g / 16) * Q4_SUPER, *b = s + (g % 16 / 4) * 128;
        int i = (int)(g % 4);
        int32_t sum;
        float d = quantize32(x + g * 32, K - g * 32, (int8_t *)b + 16 * i, (int8_t *)b + 64 + 16 * i, &sum);
        float offset = (float)(-max_int * sum) * d;
        memcpy(s + 512 + 4 * (g % 16), &d, 4);
        memcpy(s + 576 + 4 * (g % 16), &offset, 4);
    }
}

/* Block j (4 groups) of superblock s, W weight rows against R activation
 * rows, into acc[i * R + r]. */
INLINE void q4nk_block(const unsigned char *const *q, int64_t s, const int j, int valid, const unsigned char *act,
                       size_t stride, const __m512 *scale, __m512 *acc, const int W, const int R)
{
    const __m512i low = _mm512_set1_epi8(0x0f);
    const __m512i spread = _mm512_setr_epi32(4 * j, 4 * j, 4 * j, 4 * j, 4 * j + 1, 4 * j + 1, 4 * j + 1, 4 * j + 1,
                                             4 * j + 2, 4 * j + 2, 4 * j + 2, 4 * j + 2, 4 * j + 3, 4 * j + 3, 4 * j + 3,
                                             4 * j + 3);
    const int64_t b = 4 * s + j;
#pragma GCC unroll 8
    for (int i = 0; i < W; i++) {
        __m512i wv = valid - 4 * j >= 4 ? _mm512_loadu_si512(q[i] + 64 * b)
                                        : _mm512_maskz_loadu_epi8(mask64(16 * (valid - 4 * j)), q[i] + 64 * b);
        __m512i lo = _mm512_and_si512(wv, low), hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), low);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const unsigned char *a = act + (size_t)r * stride + (size_t)s * Q4_SUPER + 128 * j;
            __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(a));
            p = _mm512_dpbusd_epi32(p, hi, _mm512_load_si512(a + 64));
            acc[i * R + r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_permutexvar_ps(spread, scale[i * R + r]),
                                             acc[i * R + r]);
        }
    }
}

/* Superblock s of W weight rows (q[i], their scales sc[i]) against R
 * activation rows: each loaded weight block serves every activation row,
 * and each (weight row, activation row) pair, accumulated in even[i * R +
 * r] and odd[i * R + r], runs the same operations in the same order
 * whatever W and R are. Blocks alternate between the two accumulators, so
 * that a single pair is not held up by one chain of dependent FMAs. The
 * weight scales times the activation scales, one lane per group, are
 * spread to the four lanes of each group's products by a permutation. */
INLINE void q4nk_super(const unsigned char *const *q, const char *const *sc, int64_t s, int64_t G,
                       const unsigned char *act, size_t stride, __m512 *even, __m512 *odd, const int W, const int R,
                       const enum dtype sd)
{
    const int valid = G - 16 * s >= 16 ? 16 : (int)(G - 16 * s);
    __m512 scale[8];
#pragma GCC unroll 8
    for (int i = 0; i < W; i++) {
        __m512 ws = load16(sd, sc[i] + (size_t)(16 * s) * SIZE_OF(sd), valid);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const unsigned char *a = act + (size_t)r * stride + (size_t)s * Q4_SUPER;
            scale[i * R + r] = _mm512_mul_ps(ws, _mm512_load_ps(a + 512));
            even[i * R + r] = _mm512_fmadd_ps(ws, _mm512_load_ps(a + 576), even[i * R + r]);
        }
    }
    q4nk_block(q, s, 0, valid, act, stride, scale, even, W, R);
    if (valid > 4) q4nk_block(q, s, 1, valid, act, stride, scale, odd, W, R);
    if (valid > 8) q4nk_block(q, s, 2, valid, act, stride, scale, even, W, R);
    if (valid > 12) q4nk_block(q, s, 3, valid, act, stride, scale, odd, W, R);
}

/* Weight rows n[0..W) against R activation rows, into y[i][r * ldy]. */
INLINE void q4nk_tile(const struct kmat *w, const int64_t *n, const unsigned char *act, size_t stride, float *const *y,
                      int64_t ldy, const int W, const int R, const enum dtype sd)
{
    const int64_t G = kern_groups(w), supers = (G + 15) / 16;
    const unsigned char *q[2];
    const char *sc[2];
    __m512 even[8], odd[8];
#pragma GCC unroll 8
    for (int i = 0; i < W; i++) {
        q[i] = (const unsigned char *)w->data + n[i] * G * 16;
        sc[i] = (const char *)w->scales + (size_t)(n[i] * G) * SIZE_OF(sd);
    }
#pragma GCC unroll 8
    for (int i = 0; i < W * R; i++) even[i] = odd[i] = _mm512_setzero_ps();
    for (int64_t s = 0; s < supers; s++) q4nk_super(q, sc, s, G, act, stride, even, odd, W, R, sd);
#pragma GCC unroll 8
    for (int i = 0; i < W; i++)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) y[i][r * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(even[i * R + r], odd[i * R + r]));
}

INLINE void q4nk_rows(const struct kmat *w, int64_t n, const unsigned char *act, size_t stride, float *y,
                      int64_t ldy, const int R, const enum dtype sd)
{
    q4nk_tile(w, &n, act, stride, &y, ldy, 1, R, sd);
}

/* A decode step (one activation row) is bound by memory: rows from the two
 * halves of a range side by side keep two weight streams in flight. */
static void q4nk_pairs(const struct kmat *w, int64_t n0, int64_t n1, const unsigned char *act, float *y)
{
    int64_t half = (n1 - n0) / 2;
    for (int64_t i = 0; i < half; i++) {
        int64_t n[2] = {n0 + i, n0 + half + i};
        float *yy[2] = {y + i, y + half + i};
        if (w->scale_dtype == DT_F16) q4nk_tile(w, n, act, 0, yy, 0, 2, 1, DT_F16);
        else if (w->scale_dtype == DT_BF16) q4nk_tile(w, n, act, 0, yy, 0, 2, 1, DT_BF16);
        else q4nk_tile(w, n, act, 0, yy, 0, 2, 1, DT_F32);
    }
    if ((n1 - n0) % 2) {
        int64_t n = n1 - 1;
        if (w->scale_dtype == DT_F16) q4nk_rows(w, n, act, 0, y + (n - n0), 0, 1, DT_F16);
        else if (w->scale_dtype == DT_BF16) q4nk_rows(w, n, act, 0, y + (n - n0), 0, 1, DT_BF16);
        else q4nk_rows(w, n, act, 0, y + (n - n0), 0, 1, DT_F32);
    }
}

#define BY_ROWS(fn, R, ...)                                                                                          \
    do {                                                                                                             \
        switch (R) {                                                                                                 \
        case 1: fn(__VA_ARGS__, 1); break;                                                                           \
        case 2: fn(__VA_ARGS__, 2); break;                                                                           \
        case 3: fn(__VA_ARGS__, 3); break;                                                                           \
        default: fn(__VA_ARGS__, 4); break;                                                                          \
        }                                                                                                            \
    } while (0)

/* Prefill and batched decode: each weight row against up to Q4_ROWS
 * activation rows at once, every loaded weight block serving them all (6
 * keeps the accumulators and scales in registers: measured 15-25% faster
 * prefill than 8; two weight rows per tile gained nothing). */
#define Q4_ROWS 6

INLINE void q4nk_tiles(const struct kmat *w, int64_t n0, int64_t n1, const unsigned char *act, size_t st, int64_t rows,
                       float *y, int64_t ldy, const enum dtype sd)
{
    for (int64_t r0 = 0; r0 < rows; r0 += Q4_ROWS) {
        const int R = rows - r0 < Q4_ROWS ? (int)(rows - r0) : Q4_ROWS;
        const unsigned char *a = act + (size_t)r0 * st;
        for (int64_t n = n0; n < n1; n++) {
            float *yr = y + r0 * ldy + (n - n0);
            switch (R) {
            case 1: q4nk_rows(w, n, a, st, yr, ldy, 1, sd); break;
            case 2: q4nk_rows(w, n, a, st, yr, ldy, 2, sd); break;
            case 3: q4nk_rows(w, n, a, st, yr, ldy, 3, sd); break;
            case 4: q4nk_rows(w, n, a, st, yr, ldy, 4, sd); break;
            case 5: q4nk_rows(w, n, a, st, yr, ldy, 5, sd); break;
            default: q4nk_rows(w, n, a, st, yr, ldy, 6, sd); break;
            }
        }
    }
}

static void q4nk_tiles_any(const struct kmat *w, int64_t n0, int64_t n1, const unsigned char *act, size_t st,
                           int64_t rows, float *y, int64_t ldy)
{
    if (w->scale_dtype == DT_F16) q4nk_tiles(w, n0, n1, act, st, rows, y, ldy, DT_F16);
    else if (w->scale_dtype == DT_BF16) q4nk_tiles(w, n0, n1, act, st, rows, y, ldy, DT_BF16);
    else q4nk_tiles(w, n0, n1, act, st, rows, y, ldy, DT_F32);
}

/* 4 scales (n real) of consecutive groups, each in 4 lanes */
INLINE __m512 scales4(enum dtype t, const void *p, int n)
{
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    __m128 s;
    __mmask8 m = (__mmask8)((1u << n) - 1);
    if (t == DT_F16) s = _mm_cvtph_ps(_mm_maskz_loadu_epi16(m, p));
    else if (t == DT_BF16) s = _mm_castsi128_ps(_mm_slli_epi32(_mm_cvtepu16_epi32(_mm_maskz_loadu_epi16(m, p)), 16));
    else s = _mm_maskz_loadu_ps(m, p);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s));
}

/* ---- 3-bit NK: ten elements to a word, groups of 40 (4 words) ----
 * Per 16 words (4 groups, 160 elements), 704 bytes of float activations:
 * for each of the 10 positions s in a word, the 16 words' element s, then
 * 16 lanes of -max_int · Σ x (lane 4i for group i). */
#define Q3_BLOCK 176 /* floats */

static size_t q3nk_act_bytes(const struct kmat *w)
{
    return (size_t)((kmat_groups(w) + 3) / 4) * Q3_BLOCK * sizeof(float);
}

static void q3nk_prepare(const struct kmat *w, const float *x, float *act)
{
    const int64_t K = w->cols, G = kmat_groups(w), blocks = (G + 3) / 4;
    const int max_int = w->scheme->max_int;
    memset(act, 0, (size_t)blocks * Q3_BLOCK * sizeof(float));
    for (int64_t b = 0; b < blocks; b++) {
        float *a = act + b * Q3_BLOCK;
        for (int wd = 0; wd < 16; wd++)
#pragma GCC unroll 10
            for (int s = 0; s < 10; s++) {
                int64_t k = b * 160 + 10 * wd + s;
                a[16 * s + wd] = k < K ? x[k] : 0.0f;
            }
        for (int i = 0; i < 4; i++) {
            float sum = 0;
            for (int64_t k = b * 160 + 40 * i; k < b * 160 + 40 * (i + 1) && k < K; k++) sum += x[k];
            a[160 + 4 * i] = -(float)max_int * sum;
        }
    }
}

INLINE void q3nk_rows(const struct kmat *w, int64_t n, const unsigned char *act, size_t stride, float *y,
                      int64_t ldy, const int R, const enum dtype sd)
{
    const int64_t G = kern_groups(w), blocks = (G + 3) / 4;
    const uint32_t *q = (const uint32_t *)w->data + n * G * 4;
    const char *sc = (const char *)w->scales + (size_t)(n * G) * SIZE_OF(sd);
    const __m512i seven = _mm512_set1_epi32(7);
    __m512 acc[4];
#pragma GCC unroll 10
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        int valid = G - 4 * b >= 4 ? 4 : (int)(G - 4 * b);
        __m512i wv = _mm512_maskz_loadu_epi32(mask16(4 * valid), q + 16 * b);
        __m512 part[4];
#pragma GCC unroll 10
        for (int r = 0; r < R; r++)
            part[r] = _mm512_load_ps((const float *)(const void *)(act + (size_t)r * stride) + b * Q3_BLOCK + 160);
#pragma GCC unroll 10
        for (int s = 0; s < 10; s++) {
            __m512 v = _mm512_cvtepi32_ps(_mm512_and_si512(wv, seven));
            wv = _mm512_srli_epi32(wv, 3);
#pragma GCC unroll 10
            for (int r = 0; r < R; r++)
                part[r] = _mm512_fmadd_ps(v, _mm512_load_ps((const float *)(const void *)(act + (size_t)r * stride) + b * Q3_BLOCK + 16 * s),
                                          part[r]);
        }
        __m512 ws = scales4(sd, sc + (size_t)(4 * b) * SIZE_OF(sd), valid);
#pragma GCC unroll 10
        for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(part[r], ws, acc[r]);
    }
#pragma GCC unroll 10
    for (int r = 0; r < R; r++) y[r * ldy] = _mm512_reduce_add_ps(acc[r]);
}

static void q3nk_any(const struct kmat *w, int64_t n, const unsigned char *a, size_t st, float *y, int64_t ldy, int R)
{
    switch (w->scale_dtype) {
#define CALL(w, n, a, st, y, ldy, R) q3nk_rows(w, n, a, st, y, ldy, R, DT_F16)
    case DT_F16: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
#define CALL(w, n, a, st, y, ldy, R) q3nk_rows(w, n, a, st, y, ldy, R, DT_BF16)
    case DT_BF16: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
#define CALL(w, n, a, st, y, ldy, R) q3nk_rows(w, n, a, st, y, ldy, R, DT_F32)
    default: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
    }
}

/* ---- KN (transposed) groups: 16 output columns at a time ----
 * 4-bit, per group, 64 bytes of activations: for each of its 4 word rows
 * the int8 of elements 0,2,4,6 and 1,3,5,7 (two 32-bit words), then the
 * group's -max_int · Σ q and its scale. 3-bit: the floats, then per group
 * -max_int · Σ x. */
static size_t q4kn_act_bytes(const struct kmat *w)
{
    return (size_t)kmat_groups(w) * 64;
}

static void q4kn_prepare(const struct kmat *w, const float *x, unsigned char *act)
{
    const int64_t K = w->cols, G = kmat_groups(w);
    memset(act, 0, (size_t)G * 64);
    for (int64_t g = 0; g < G; g++) {
        int8_t even[16], odd[16];
        int32_t sum;
        float d = quantize32(x + g * 32, K - g * 32, even, odd, &sum);
        unsigned char *a = act + g * 64;
        for (int wr = 0; wr < 4; wr++) /* word wr holds elements 8wr..8wr+7 */
            for (int j = 0; j < 4; j++) {
                a[8 * wr + j] = (unsigned char)even[4 * wr + j];
                a[8 * wr + 4 + j] = (unsigned char)odd[4 * wr + j];
            }
        int32_t bias = -w->scheme->max_int * sum;
        memcpy(a + 32, &bias, 4);
        memcpy(a + 36, &d, 4);
    }
}

INLINE void q4kn_cols(const struct kmat *w, int64_t n0, int64_t n1, const unsigned char *act, float *y, const enum dtype sd)
{
    const int64_t G = kern_groups(w), N = w->rows;
    const uint32_t *q = w->data;
    const __m512i low = _mm512_set1_epi32(0x0f0f0f0f);
    for (int64_t nb = n0; nb < n1; nb += 16) {
        __mmask16 m = mask16(n1 - nb);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t g = 0; g < G; g++) {
            const int32_t *a = (const int32_t *)(const void *)(act + g * 64);
            __m512i s = _mm512_set1_epi32(a[8]);
            for (int wr = 0; wr < 4; wr++) {
                __m512i wv = _mm512_maskz_loadu_epi32(m, q + (g * 4 + wr) * N + nb);
                s = _mm512_dpbusd_epi32(s, _mm512_and_si512(wv, low), _mm512_set1_epi32(a[2 * wr]));
                s = _mm512_dpbusd_epi32(s, _mm512_and_si512(_mm512_srli_epi32(wv, 4), low), _mm512_set1_epi32(a[2 * wr + 1]));
            }
            float d;
            memcpy(&d, a + 9, 4);
            __m512 ws = load16(sd, (const char *)w->scales + (size_t)(g * N + nb) * SIZE_OF(sd), n1 - nb);
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(ws, _mm512_set1_ps(d)), acc);
        }
        _mm512_mask_storeu_ps(y + (nb - n0), m, acc);
    }
}

static size_t q3kn_act_bytes(const struct kmat *w)
{
    return kern_round64(sizeof(float) * (size_t)(kmat_groups(w) * 41));
}

static void q3kn_prepare(const struct kmat *w, const float *x, float *act)
{
    const int64_t K = w->cols, G = kmat_groups(w);
    for (int64_t k = 0; k < G * 40; k++) act[k] = k < K ? x[k] : 0.0f;
    for (int64_t g = 0; g < G; g++) {
        float sum = 0;
        for (int k = 0; k < 40; k++) sum += act[g * 40 + k];
        act[G * 40 + g] = -(float)w->scheme->max_int * sum;
    }
}

INLINE void q3kn_cols(const struct kmat *w, int64_t n0, int64_t n1, const float *act, float *y, const enum dtype sd)
{
    const int64_t G = kern_groups(w), N = w->rows;
    const uint32_t *q = w->data;
    const __m512i seven = _mm512_set1_epi32(7);
    for (int64_t nb = n0; nb < n1; nb += 16) {
        __mmask16 m = mask16(n1 - nb);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t g = 0; g < G; g++) {
            __m512 part = _mm512_set1_ps(act[G * 40 + g]);
            for (int wr = 0; wr < 4; wr++) {
                __m512i wv = _mm512_maskz_loadu_epi32(m, q + (g * 4 + wr) * N + nb);
#pragma GCC unroll 10
                for (int s = 0; s < 10; s++) {
                    part = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(wv, seven)),
                                           _mm512_set1_ps(act[g * 40 + wr * 10 + s]), part);
                    wv = _mm512_srli_epi32(wv, 3);
                }
            }
            __m512 ws = load16(sd, (const char *)w->scales + (size_t)(g * N + nb) * SIZE_OF(sd), n1 - nb);
            acc = _mm512_fmadd_ps(part, ws, acc);
        }
        _mm512_mask_storeu_ps(y + (nb - n0), m, acc);
    }
}

/* ---- float rows: float32, float16, bfloat16, FP8 ---- */

INLINE __m512 round_f16(__m512 v)
{
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

INLINE __m512 load_row16(enum kfmt f, const void *row, int64_t k, int64_t n)
{
    __mmask16 m = mask16(n);
    switch (f) {
    case KF_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k));
    case KF_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)row + k)), 16));
    case KF_E5M2:
        return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, (const uint8_t *)row + k)), 8));
    case KF_E4M3: {
        __m256i b = _mm256_cvtepu8_epi16(_mm_maskz_loadu_epi8(m, (const uint8_t *)row + k));
        __m256i h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x80)), 8),
                                    _mm256_slli_epi16(_mm256_and_si256(b, _mm256_set1_epi16(0x7f)), 7));
        return _mm512_cvtph_ps(h);
    }
    default: return _mm512_maskz_loadu_ps(m, (const float *)row + k);
    }
}

INLINE void float_rows(const struct kmat *w, int64_t n, const unsigned char *act, size_t stride, float *y, int64_t ldy,
                       const int R, const enum kfmt f)
{
    const int64_t K = w->cols;
    size_t esize = f == KF_F32 ? 4 : f == KF_F16 || f == KF_BF16 ? 2 : 1;
    const void *row = (const char *)w->data + (size_t)(n * K) * esize;
    __m512 a0[4], a1[4];
#pragma GCC unroll 10
    for (int r = 0; r < R; r++) a0[r] = a1[r] = _mm512_setzero_ps();
    const bool rounds = kern_fp8_rounds(w);
    const __m512 ws = _mm512_set1_ps(rounds ? kern_fp8_scale(w) : 1.0f);
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
        __m512 w0 = load_row16(f, row, k, 16), w1 = load_row16(f, row, k + 16, 16);
        if (rounds) w0 = round_f16(_mm512_mul_ps(w0, ws)), w1 = round_f16(_mm512_mul_ps(w1, ws));
#pragma GCC unroll 10
        for (int r = 0; r < R; r++) {
            const float *x = (const float *)(const void *)(act + (size_t)r * stride);
            a0[r] = _mm512_fmadd_ps(w0, _mm512_load_ps(x + k), a0[r]);
            a1[r] = _mm512_fmadd_ps(w1, _mm512_load_ps(x + k + 16), a1[r]);
        }
    }
    for (; k < K; k += 16) {
        __m512 w0 = load_row16(f, row, k, K - k);
        if (rounds) w0 = round_f16(_mm512_mul_ps(w0, ws));
#pragma GCC unroll 10
        for (int r = 0; r < R; r++)
            a0[r] = _mm512_fmadd_ps(w0, _mm512_load_ps((const float *)(const void *)(act + (size_t)r * stride) + k), a0[r]);
    }
    float s = (f == KF_E4M3 || f == KF_E5M2) && !rounds ? kern_fp8_scale(w) : 1.0f;
#pragma GCC unroll 10
    for (int r = 0; r < R; r++) y[r * ldy] = _mm512_reduce_add_ps(_mm512_add_ps(a0[r], a1[r])) * s;
}

/* A decode step (one activation row) reads each weight row once: four
 * rows from the four quarters of the range side by side keep four weight
 * streams in flight, where one row at a time leaves the loads waiting at
 * every page boundary (measured on 1.1B q0f16, 4 KiB rows: 1.7 times the
 * tokens/s with the page cache in small pages). Each row's sums run in
 * float_rows's order, so results equal one row at a time bit for bit. */
INLINE void float_quad(const struct kmat *w, const int64_t *n, const float *x, float *const *y, const enum kfmt f)
{
    const int64_t K = w->cols;
    size_t esize = f == KF_F32 ? 4 : f == KF_F16 || f == KF_BF16 ? 2 : 1;
    const void *row[4];
    __m512 a0[4], a1[4];
    for (int i = 0; i < 4; i++) {
        row[i] = (const char *)w->data + (size_t)(n[i] * K) * esize;
        a0[i] = a1[i] = _mm512_setzero_ps();
    }
    const bool rounds = kern_fp8_rounds(w);
    const __m512 ws = _mm512_set1_ps(rounds ? kern_fp8_scale(w) : 1.0f);
    int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
        const __m512 x0 = _mm512_load_ps(x + k), x1 = _mm512_load_ps(x + k + 16);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m512 w0 = load_row16(f, row[i], k, 16), w1 = load_row16(f, row[i], k + 16, 16);
            if (rounds) w0 = round_f16(_mm512_mul_ps(w0, ws)), w1 = round_f16(_mm512_mul_ps(w1, ws));
            a0[i] = _mm512_fmadd_ps(w0, x0, a0[i]);
            a1[i] = _mm512_fmadd_ps(w1, x1, a1[i]);
        }
    }
    for (; k < K; k += 16) {
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            __m512 w0 = load_row16(f, row[i], k, K - k);
            if (rounds) w0 = round_f16(_mm512_mul_ps(w0, ws));
            a0[i] = _mm512_fmadd_ps(w0, _mm512_load_ps(x + k), a0[i]);
        }
    }
    float s = (f == KF_E4M3 || f == KF_E5M2) && !rounds ? kern_fp8_scale(w) : 1.0f;
    for (int i = 0; i < 4; i++) y[i][0] = _mm512_reduce_add_ps(_mm512_add_ps(a0[i], a1[i])) * s;
}

INLINE void float_decode_fmt(const struct kmat *w, int64_t n0, int64_t n1, const float *x, float *y, const enum kfmt f)
{
    const int64_t quarter = (n1 - n0) / 4;
    for (int64_t i = 0; i < quarter; i++) {
        int64_t n[4] = {n0 + i, n0 + quarter + i, n0 + 2 * quarter + i, n0 + 3 * quarter + i};
        float *yy[4] = {y + i, y + quarter + i, y + 2 * quarter + i, y + 3 * quarter + i};
        float_quad(w, n, x, yy, f);
    }
    for (int64_t n = n0 + 4 * quarter; n < n1; n++) float_rows(w, n, (const unsigned char *)x, 0, y + (n - n0), 0, 1, f);
}

static void float_decode(const struct kmat *w, int64_t n0, int64_t n1, const float *x, float *y)
{
    switch (w->fmt) {
    case KF_F16: float_decode_fmt(w, n0, n1, x, y, KF_F16); break;
    case KF_BF16: float_decode_fmt(w, n0, n1, x, y, KF_BF16); break;
    case KF_E4M3: float_decode_fmt(w, n0, n1, x, y, KF_E4M3); break;
    case KF_E5M2: float_decode_fmt(w, n0, n1, x, y, KF_E5M2); break;
    default: float_decode_fmt(w, n0, n1, x, y, KF_F32); break;
    }
}

static void float_any(const struct kmat *w, int64_t n, const unsigned char *a, size_t st, float *y, int64_t ldy, int R)
{
    switch (w->fmt) {
#define CALL(w, n, a, st, y, ldy, R) float_rows(w, n, a, st, y, ldy, R, KF_F16)
    case KF_F16: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
#define CALL(w, n, a, st, y, ldy, R) float_rows(w, n, a, st, y, ldy, R, KF_BF16)
    case KF_BF16: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
#define CALL(w, n, a, st, y, ldy, R) float_rows(w, n, a, st, y, ldy, R, KF_E4M3)
    case KF_E4M3: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
#define CALL(w, n, a, st, y, ldy, R) float_rows(w, n, a, st, y, ldy, R, KF_E5M2)
    case KF_E5M2: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
#define CALL(w, n, a, st, y, ldy, R) float_rows(w, n, a, st, y, ldy, R, KF_F32)
    default: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
    }
}

/* ---- the matmul entry points ---- */

static size_t z_act_bytes(const struct kmat *w)
{
    switch (w->fmt) {
    case KF_Q4_NK: return q4nk_act_bytes(w);
    case KF_Q3_NK: return q3nk_act_bytes(w);
    case KF_Q4_KN: return q4kn_act_bytes(w);
    case KF_Q3_KN: return q3kn_act_bytes(w);
    default: return kern_round64(sizeof(float) * (size_t)w->cols);
    }
}

static void z_act_prepare(const struct kmat *w, const float *x, void *act)
{
    switch (w->fmt) {
    case KF_Q4_NK: q4nk_prepare(w, x, act); return;
    case KF_Q3_NK: q3nk_prepare(w, x, act); return;
    case KF_Q4_KN: q4kn_prepare(w, x, act); return;
    case KF_Q3_KN: q3kn_prepare(w, x, act); return;
    default: {
        size_t n = (size_t)w->cols;
        memcpy(act, x, sizeof(float) * n);
        memset((float *)act + n, 0, kern_round64(sizeof(float) * n) - sizeof(float) * n);
    }
    }
}

static size_t z_scratch_bytes(const struct kmat *w)
{
    (void)w;
    return 64;
}

typedef void rows_fn(const struct kmat *w, int64_t n, const unsigned char *a, size_t st, float *y, int64_t ldy, int R);

static void z_matmul(const struct kmat *w, int64_t n0, int64_t n1, const void *act, size_t stride, int64_t rows,
                     float *y, int64_t ldy, void *scratch)
{
    (void)scratch;
    const unsigned char *a = act;
    if (w->fmt == KF_Q4_KN || w->fmt == KF_Q3_KN) {
        for (int64_t r = 0; r < rows; r++) {
            const unsigned char *ar = a + (size_t)r * stride;
            float *yr = y + r * ldy;
            if (w->fmt == KF_Q4_KN) {
                if (w->scale_dtype == DT_F16) q4kn_cols(w, n0, n1, ar, yr, DT_F16);
                else if (w->scale_dtype == DT_BF16) q4kn_cols(w, n0, n1, ar, yr, DT_BF16);
                else q4kn_cols(w, n0, n1, ar, yr, DT_F32);
            } else {
                const float *af = (const float *)(const void *)ar;
                if (w->scale_dtype == DT_F16) q3kn_cols(w, n0, n1, af, yr, DT_F16);
                else if (w->scale_dtype == DT_BF16) q3kn_cols(w, n0, n1, af, yr, DT_BF16);
                else q3kn_cols(w, n0, n1, af, yr, DT_F32);
            }
        }
        return;
    }
    if (w->fmt == KF_Q4_NK && rows == 1) {
        q4nk_pairs(w, n0, n1, a, y);
        return;
    }
    if (w->fmt == KF_Q4_NK) {
        q4nk_tiles_any(w, n0, n1, a, stride, rows, y, ldy);
        return;
    }
    if (w->fmt != KF_Q3_NK && rows == 1) {
        float_decode(w, n0, n1, (const float *)act, y);
        return;
    }
    rows_fn *fn = float_any;
    int most = 4;
    if (w->fmt == KF_Q3_NK) {
        fn = q3nk_any;
    }
    /* up to `most` activation rows share each weight row while it is in registers */
    for (int64_t r0 = 0; r0 < rows; r0 += most) {
        int R = rows - r0 < most ? (int)(rows - r0) : most;
        for (int64_t n = n0; n < n1; n++) fn(w, n, a + (size_t)r0 * stride, stride, y + r0 * ldy + (n - n0), ldy, R);
    }
}

/* ---- attention ---- */

/* scores of H heads (h0..h0+H-1) for every slot of the piece, one key
 * block (KV_BLOCK = 16 slots, transposed) at a time: a dimension of 16
 * slots is one load, times each head's query value broadcast. Row
 * position j of a block holds slot `first - first % 16 + j`. */
INLINE void z_scores(const struct attn_piece *p, int h0, const int H)
{
    const int d = p->d;
    const size_t es = SIZE_OF(p->kv_dtype);
    const int64_t o = p->first % KV_BLOCK, blocks = (o + p->n + KV_BLOCK - 1) / KV_BLOCK;
    const char *k0 = (const char *)p->k + (size_t)(p->first / KV_BLOCK) * (size_t)d * KV_BLOCK * es;
    for (int64_t b = 0; b < blocks; b++) {
        const char *kb = k0 + (size_t)b * (size_t)d * KV_BLOCK * es;
        int64_t lo = b ? 0 : o, hi = o + p->n - b * KV_BLOCK;
        __mmask16 m = (__mmask16)(mask16(hi) & ~mask16(lo));
        __m512 acc[8];
#pragma GCC unroll 8
        for (int h = 0; h < H; h++) acc[h] = _mm512_setzero_ps();
        for (int k = 0; k < d; k++) {
            __m512 kv = load16(p->kv_dtype, kb + (size_t)k * KV_BLOCK * es, 16);
#pragma GCC unroll 8
            for (int h = 0; h < H; h++) acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(p->q[(int64_t)(h0 + h) * d + k]), kv, acc[h]);
        }
#pragma GCC unroll 8
        for (int h = 0; h < H; h++)
            _mm512_mask_storeu_ps(p->scores + (int64_t)(h0 + h) * ATTN_SCORES + b * KV_BLOCK, m,
                                  _mm512_mul_ps(acc[h], _mm512_set1_ps(p->scale)));
    }
}

/* Σ p · v for H heads and C chunks of 16 dimensions from c0, in registers */
INLINE void z_values(const struct attn_piece *p, int h0, int c0, const int H, const int C)
{
    const int d = p->d;
    const size_t es = SIZE_OF(p->kv_dtype);
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[h][c] = _mm512_setzero_ps();
    for (int64_t i = 0; i < p->n; i++) {
        const char *vr = (const char *)p->v + (size_t)(i * p->v_stride + c0) * es;
        __m512 v[4];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) v[c] = load16(p->kv_dtype, vr + (size_t)(16 * c) * es, d - c0 - 16 * c);
#pragma GCC unroll 4
        for (int h = 0; h < H; h++) {
            __m512 pw = _mm512_set1_ps(p->scores[(int64_t)(h0 + h) * ATTN_SCORES + p->first % KV_BLOCK + i]);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) acc[h][c] = _mm512_fmadd_ps(pw, v[c], acc[h][c]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            _mm512_mask_storeu_ps(p->out + (int64_t)(h0 + h) * d + c0 + 16 * c, mask16(d - c0 - 16 * c), acc[h][c]);
}

static void z_attend(const struct attn_piece *p)
{
    const int G = p->heads, d = p->d;
    const int64_t n = p->n;
    for (int h0 = 0; h0 < G; h0 += 8) {
        switch (G - h0 < 8 ? G - h0 : 8) {
        case 1: z_scores(p, h0, 1); break;
        case 2: z_scores(p, h0, 2); break;
        case 3: z_scores(p, h0, 3); break;
        case 4: z_scores(p, h0, 4); break;
        case 5: z_scores(p, h0, 5); break;
        case 6: z_scores(p, h0, 6); break;
        case 7: z_scores(p, h0, 7); break;
        default: z_scores(p, h0, 8); break;
        }
    }
    /* softmax, unnormalized */
    for (int h = 0; h < G; h++) {
        float *sc = p->scores + (int64_t)h * ATTN_SCORES + p->first % KV_BLOCK;
        if (p->softcap > 0) {
            const __m512 c = _mm512_set1_ps(p->softcap), ic = _mm512_set1_ps(1.0f / p->softcap);
            for (int64_t i = 0; i < n; i += 16) {
                __mmask16 msk = mask16(n - i);
                __m512 v = _mm512_maskz_loadu_ps(msk, sc + i);
                _mm512_mask_storeu_ps(sc + i, msk, _mm512_mul_ps(tanh512(_mm512_mul_ps(v, ic)), c));
            }
        }
        __m512 mx = _mm512_set1_ps(-INFINITY);
        for (int64_t i = 0; i < n; i += 16) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(mx, mask16(n - i), sc + i));
        float m = _mm512_reduce_max_ps(mx);
        __m512 sum = _mm512_setzero_ps(), vm = _mm512_set1_ps(m);
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 msk = mask16(n - i);
            __m512 e = _mm512_maskz_mov_ps(msk, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(msk, sc + i), vm)));
            _mm512_mask_storeu_ps(sc + i, msk, e);
            sum = _mm512_add_ps(sum, e);
        }
        p->max[h] = m;
        p->sum[h] = _mm512_reduce_add_ps(sum);
    }
    /* four heads and up to 64 dimensions at a time */
    for (int c0 = 0; c0 < d; c0 += 64) {
        int C = (d - c0 + 15) / 16 < 4 ? (d - c0 + 15) / 16 : 4;
        for (int h0 = 0; h0 < G; h0 += 4) {
            int H = G - h0 < 4 ? G - h0 : 4;
            if (H == 4 && C == 4) z_values(p, h0, c0, 4, 4);
            else if (H == 4 && C == 2) z_values(p, h0, c0, 4, 2);
            else if (H == 4 && C == 1) z_values(p, h0, c0, 4, 1);
            else
                for (int h = h0; h < h0 + H; h++) /* the rest one head at a time */
                    for (int c = c0; c < c0 + 16 * C; c += 16) z_values(p, h, c, 1, 1);
        }
    }
}

/* ---- the rest of the step ---- */

static void z_rms_norm(const float *x, const float *w, int64_t n, double eps, float *y)
{
    __m512 ss = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __m512 v = _mm512_maskz_loadu_ps(mask16(n - i), x + i);
        ss = _mm512_fmadd_ps(v, v, ss);
    }
    __m512 scale = _mm512_set1_ps((float)(1.0 / sqrt((double)_mm512_reduce_add_ps(ss) / (double)n + eps)));
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), scale), _mm512_maskz_loadu_ps(m, w + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

static void z_add_rms_norm(const float *a, const float *b, const float *w, int64_t n, double eps, float *sum, float *y)
{
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        _mm512_mask_storeu_ps(sum + i, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
    z_rms_norm(sum, w, n, eps, y);
}

static void z_silu_mul(const float *g, const float *u, int64_t n, float *out)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 s = _mm512_div_ps(x, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

/* gelu_tanh(x) = x · sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)) */
static void z_gelu_mul(const float *g, const float *u, int64_t n, float *out)
{
    const __m512 one = _mm512_set1_ps(1.0f), k2 = _mm512_set1_ps(-2.0f * 0.7978845608028654f),
                 c = _mm512_set1_ps(0.044715f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i);
        __m512 z = _mm512_mul_ps(k2, _mm512_fmadd_ps(_mm512_mul_ps(c, x), _mm512_mul_ps(x, x), x));
        __m512 s = _mm512_div_ps(x, _mm512_add_ps(one, exp512(z)));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
    }
}

static void z_store(enum dtype t, const float *x, int64_t n, void *out, int64_t stride)
{
    if (t == DT_F32) {
        for (int64_t i = 0; i < n; i++) ((float *)out)[i * stride] = x[i];
        return;
    }
    uint16_t *o = out;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 m = mask16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m256i h;
        if (t == DT_F16) {
            h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        } else { /* round to nearest even; NaN stays a quiet NaN */
            __m512i b = _mm512_castps_si512(v);
            __m512i r = _mm512_add_epi32(b, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                                                            _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1))));
            __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            r = _mm512_mask_mov_epi32(r, nan, _mm512_set1_epi32(0x7fc00000));
            h = _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
        }
        if (stride == 1) {
            _mm256_mask_storeu_epi16(o + i, m, h);
        } else {
            uint16_t tmp[16];
            _mm256_storeu_si256((__m256i *)tmp, h);
            for (int64_t j = 0; j < 16 && i + j < n; j++) o[(i + j) * stride] = tmp[j];
        }
    }
}

static uint64_t z_read_sum(const void *p, size_t n)
{
    const char *c = p;
    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        s0 = _mm512_add_epi64(s0, _mm512_load_si512(c + i));
        s1 = _mm512_add_epi64(s1, _mm512_load_si512(c + i + 64));
        s2 = _mm512_add_epi64(s2, _mm512_load_si512(c + i + 128));
        s3 = _mm512_add_epi64(s3, _mm512_load_si512(c + i + 192));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3)));
}

const struct kernel_set kernels_avx512 = {
    .name = "avx512",
    .act_bytes = z_act_bytes,
    .act_prepare = z_act_prepare,
    .scratch_bytes = z_scratch_bytes,
    .matmul = z_matmul,
    .attend = z_attend,
    .rms_norm = z_rms_norm,
    .add_rms_norm = z_add_rms_norm,
    .silu_mul = z_silu_mul,
    .gelu_mul = z_gelu_mul,
    .store = z_store,
    .read_sum = z_read_sum,
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
