/* The AVX2 kernel set (with FMA and F16C): the AVX-512 set's algorithms
 * (kernels_avx512.c) eight lanes wide. Without VNNI, 4-bit groups meet
 * their int8 activations in VPMADDUBSW (nibble times int8, pairs summed to
 * 16 bits: at most 2 · 15 · 127, no saturation) and VPMADDWD. Compiled
 * for those instructions whatever the build's flags, and only called after
 * kernels_avx2_supported(). */
#if defined(__x86_64__)
#if !defined(__clang__)
#pragma GCC target("avx2,fma,f16c")
#endif

#include <cpuid.h>
#include <immintrin.h>
#include <math.h>

#include "common/engine/kernels.h"
#include "common/engine/cpu_kernels.h"
#include "common/engine/kernels_impl.h"

#if defined(__clang__) /* (clang ignores GCC's pragma: the same, its way) */
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#endif

#define INLINE static inline __attribute__((always_inline))

/* bytes of a scale (the scale dtype is a constant where this is used) */
#define SIZE_OF(t) ((t) == DT_F32 ? (size_t)4 : (size_t)2)

bool kernels_avx2_supported(void)
{
    /* F16C from cpuid itself: not every compiler's __builtin_cpu_supports
     * knows it */
    unsigned a, b, c, d;
    bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}

/* dword-granular load mask: the first n of 8 lanes */
INLINE __m256i lanes(int64_t n)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 8 ? (n < 0 ? 0 : n) : 8)), idx);
}

/* n (≤ 8) elements of t at p as 8 floats, zero beyond n */
INLINE __m256 load8(enum dtype t, const void *p, int64_t n)
{
    if (t == DT_F32) return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes(n));
    __m128i h;
    if (n >= 8) {
        h = _mm_loadu_si128(p);
    } else {
        uint16_t tmp[8] = {0};
        memcpy(tmp, p, (size_t)(n > 0 ? n : 0) * 2);
        h = _mm_loadu_si128((const __m128i *)tmp);
    }
    if (t == DT_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

INLINE float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE float hmax(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE __m256 exp256(__m256 x)
{
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.3365478515625f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* tanh(x) = 1 - 2 / (e^2x + 1): saturates to ±1 where exp256 clamps */
INLINE __m256 tanh256(__m256 x)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = exp256(_mm256_add_ps(x, x));
    return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
}

/* ---- int8 activations ---- */

/* 32 values (n real) → int8, even elements to even[0..16), odd ones to
 * odd[0..16); returns the scale and Σ q. */
static float quantize32(const float *x, int64_t n, int8_t *even, int8_t *odd, int32_t *sum)
{
    __m256 v[4], amax = _mm256_setzero_ps();
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int i = 0; i < 4; i++) {
        v[i] = load8(DT_F32, x + 8 * i, n - 8 * i);
        amax = _mm256_max_ps(amax, _mm256_and_ps(v[i], absmask));
    }
    float m = hmax(amax), d = m / 127.0f, id = m > 0 ? 127.0f / m : 0.0f;
    __m256i q[4], s = _mm256_setzero_si256();
    for (int i = 0; i < 4; i++) {
        q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], _mm256_set1_ps(id)));
        s = _mm256_add_epi32(s, q[i]);
    }
    /* int32 → int16 → int8 in element order, then even/odd apart */
    __m256i a = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xd8);
    __m256i b = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2], q[3]), 0xd8);
    __m256i c = _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xd8);
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12,
                                           14, 1, 3, 5, 7, 9, 11, 13, 15);
    __m256i e = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(c, split), 0xd8);
    _mm_storeu_si128((__m128i *)even, _mm256_castsi256_si128(e));
    _mm_storeu_si128((__m128i *)odd, _mm256_extracti128_si256(e, 1));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    *sum = _mm_cvtsi128_si32(t);
    return d;
}

/* NK 4-bit, per 2 groups, 128 bytes: 32 even int8, 32 odd int8, 8 int32
 * lanes of -max_int · Σ q (lane 4i for group i), 8 float lanes of the
 * activation scales (4i..4i+3). */
#define Q4_BLOCK 128

static size_t q4nk_act_bytes(const struct kmat *w)
{
    return kern_round64((size_t)((kmat_groups(w) + 1) / 2) * Q4_BLOCK);
}

static void q4nk_prepare(const struct kmat *w, const float *x, unsigned char *act)
{
    const int64_t K = w->cols, G = kmat_groups(w);
    memset(act, 0, q4nk_act_bytes(w));
    for (int64_t g = 0; g < G; g++) {
        unsigned char *b = act + (g / 2) * Q4_BLOCK;
        int i = (int)(g % 2);
        int32_t sum;
        float d = quantize32(x + g * 32, K - g * 32, (int8_t *)b + 16 * i, (int8_t *)b + 32 + 16 * i, &sum);
        int32_t bias = -w->scheme->max_int * sum;
        memcpy(b + 64 + 16 * i, &bias, 4);
        for (int l = 0; l < 4; l++) memcpy(b + 96 + 16 * i + 4 * l, &d, 4);
    }
}

/* 2 scales (n real) of consecutive groups, each in 4 lanes */
INLINE __m256 scales2(enum dtype t, const void *p, int n)
{
    const __m256i idx = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
    __m128 s;
    if (t == DT_F32) {
        float two[2] = {0, 0};
        if (n == 2) memcpy(two, p, 8);
        else memcpy(two, p, 4);
        s = _mm_setr_ps(two[0], two[1], 0, 0);
    } else {
        uint32_t two = 0;
        if (n == 2) memcpy(&two, p, 4);
        else memcpy(&two, p, 2);
        __m128i h = _mm_cvtsi32_si128((int)two);
        s = t == DT_F16 ? _mm_cvtph_ps(h) : _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), h));
    }
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s), idx);
}

INLINE __m256i dot_nibbles(__m256i lo, __m256i hi, const unsigned char *a)
{
    __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_load_si256((const __m256i *)a)),
                                 _mm256_maddubs_epi16(hi, _mm256_load_si256((const __m256i *)(a + 32))));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* One 2-group block of weight row n against R activation rows. */
INLINE void q4nk_block(const unsigned char *q, const char *sc, int64_t b, int valid, const unsigned char *act,
                       size_t stride, __m256 *acc, const int R, const enum dtype sd)
{
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i wv = valid == 2 ? _mm256_loadu_si256((const __m256i *)(q + 32 * b))
                            : _mm256_maskload_epi32((const int *)(const void *)(q + 32 * b), lanes(4));
    __m256i lo = _mm256_and_si256(wv, low), hi = _mm256_and_si256(_mm256_srli_epi16(wv, 4), low);
    __m256 ws = scales2(sd, sc + (size_t)(2 * b) * SIZE_OF(sd), valid);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) {
        const unsigned char *a = act + (size_t)r * stride + (size_t)b * Q4_BLOCK;
        __m256i s = _mm256_add_epi32(dot_nibbles(lo, hi, a), _mm256_load_si256((const __m256i *)(a + 64)));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(ws, _mm256_load_ps((const float *)(const void *)(a + 96))),
                                 acc[r]);
    }
}

/* Weight row n against R activation rows, even and odd blocks in separate
 * accumulators (as in kernels_avx512.c). */
INLINE void q4nk_rows(const struct kmat *w, int64_t n, const unsigned char *act, size_t stride, float *y,
                      int64_t ldy, const int R, const enum dtype sd)
{
    const int64_t G = kern_groups(w), blocks = (G + 1) / 2;
    const unsigned char *q = (const unsigned char *)w->data + n * G * 16;
    const char *sc = (const char *)w->scales + (size_t)(n * G) * SIZE_OF(sd);
    __m256 even[4], odd[4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) even[r] = odd[r] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 2 <= blocks; b += 2) {
        q4nk_block(q, sc, b, G - 2 * b >= 2 ? 2 : 1, act, stride, even, R, sd);
        q4nk_block(q, sc, b + 1, G - 2 * (b + 1) >= 2 ? 2 : 1, act, stride, odd, R, sd);
    }
    if (b < blocks) q4nk_block(q, sc, b, (int)(G - 2 * b), act, stride, even, R, sd);
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) y[r * ldy] = hsum(_mm256_add_ps(even[r], odd[r]));
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

static void q4nk_any(const struct kmat *w, int64_t n, const unsigned char *a, size_t st, float *y, int64_t ldy, int R)
{
    switch (w->scale_dtype) {
#define CALL(w, n, a, st, y, ldy, R) q4nk_rows(w, n, a, st, y, ldy, R, DT_F16)
    case DT_F16: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
#define CALL(w, n, a, st, y, ldy, R) q4nk_rows(w, n, a, st, y, ldy, R, DT_BF16)
    case DT_BF16: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
#define CALL(w, n, a, st, y, ldy, R) q4nk_rows(w, n, a, st, y, ldy, R, DT_F32)
    default: BY_ROWS(CALL, R, w, n, a, st, y, ldy); break;
#undef CALL
    }
}

/* ---- 3-bit NK: per 8 words (2 groups, 80 elements), 88 floats: for each
 * position s in a word the 8 words' element s, then 8 lanes of
 * -max_int · Σ x (lane 4i for group i) ---- */
#define Q3_BLOCK 88

static size_t q3nk_act_bytes(const struct kmat *w)
{
    return kern_round64((size_t)((kmat_groups(w) + 1) / 2) * Q3_BLOCK * sizeof(float));
}

static void q3nk_prepare(const struct kmat *w, const float *x, float *act)
{
    const int64_t K = w->cols, G = kmat_groups(w), blocks = (G + 1) / 2;
    memset(act, 0, q3nk_act_bytes(w));
    for (int64_t b = 0; b < blocks; b++) {
        float *a = act + b * Q3_BLOCK;
        for (int wd = 0; wd < 8; wd++)
#pragma GCC unroll 10
            for (int s = 0; s < 10; s++) {
                int64_t k = b * 80 + 10 * wd + s;
                a[8 * s + wd] = k < K ? x[k] : 0.0f;
            }
        for (int i = 0; i < 2; i++) {
            float sum = 0;
            for (int64_t k = b * 80 + 40 * i; k < b * 80 + 40 * (i + 1) && k < K; k++) sum += x[k];
            a[80 + 4 * i] = -(float)w->scheme->max_int * sum;
        }
    }
}

INLINE void q3nk_rows(const struct kmat *w, int64_t n, const unsigned char *act, size_t stride, float *y,
                      int64_t ldy, const int R, const enum dtype sd)
{
    const int64_t G = kern_groups(w), blocks = (G + 1) / 2;
    const uint32_t *q = (const uint32_t *)w->data + n * G * 4;
    const char *sc = (const char *)w->scales + (size_t)(n * G) * SIZE_OF(sd);
    const __m256i seven = _mm256_set1_epi32(7);
    __m256 acc[4];
#pragma GCC unroll 10
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; b++) {
        int valid = G - 2 * b >= 2 ? 2 : 1;
        __m256i wv = _mm256_maskload_epi32((const int *)(q + 8 * b), lanes(4 * valid));
        __m256 part[4];
#pragma GCC unroll 10
        for (int r = 0; r < R; r++)
            part[r] = _mm256_loadu_ps((const float *)(const void *)(act + (size_t)r * stride) + b * Q3_BLOCK + 80);
#pragma GCC unroll 10
        for (int s = 0; s < 10; s++) {
            __m256 v = _mm256_cvtepi32_ps(_mm256_and_si256(wv, seven));
            wv = _mm256_srli_epi32(wv, 3);
#pragma GCC unroll 10
            for (int r = 0; r < R; r++)
                part[r] = _mm256_fmadd_ps(v, _mm256_loadu_ps((const float *)(const void *)(act + (size_t)r * stride) + b * Q3_BLOCK + 8 * s),
                                          part[r]);
        }
        __m256 ws = scales2(sd, sc + (size_t)(2 * b) * SIZE_OF(sd), valid);
#pragma GCC unroll 10
        for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(part[r], ws, acc[r]);
    }
#pragma GCC unroll 10
    for (int r = 0; r < R; r++) y[r * ldy] = hsum(acc[r]);
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

/* ---- KN (transposed) groups, 8 output columns at a time (layouts as in
 * kernels_avx512.c) ---- */
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
        for (int wr = 0; wr < 4; wr++)
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
    const __m256i low = _mm256_set1_epi32(0x0f0f0f0f), ones = _mm256_set1_epi16(1);
    for (int64_t nb = n0; nb < n1; nb += 8) {
        __m256i m = lanes(n1 - nb);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t g = 0; g < G; g++) {
            const int32_t *a = (const int32_t *)(const void *)(act + g * 64);
            __m256i s = _mm256_set1_epi32(a[8]);
            for (int wr = 0; wr < 4; wr++) {
                __m256i wv = _mm256_maskload_epi32((const int *)(q + (g * 4 + wr) * N + nb), m);
                __m256i p = _mm256_add_epi16(
                    _mm256_maddubs_epi16(_mm256_and_si256(wv, low), _mm256_set1_epi32(a[2 * wr])),
                    _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi32(wv, 4), low), _mm256_set1_epi32(a[2 * wr + 1])));
                s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
            }
            float d;
            memcpy(&d, a + 9, 4);
            __m256 ws = load8(sd, (const char *)w->scales + (size_t)(g * N + nb) * SIZE_OF(sd), n1 - nb);
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(ws, _mm256_set1_ps(d)), acc);
        }
        _mm256_maskstore_ps(y + (nb - n0), m, acc);
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
    const __m256i seven = _mm256_set1_epi32(7);
    for (int64_t nb = n0; nb < n1; nb += 8) {
        __m256i m = lanes(n1 - nb);
        __m256 acc = _mm256_setzero_ps();
        for (int64_t g = 0; g < G; g++) {
            __m256 part = _mm256_set1_ps(act[G * 40 + g]);
            for (int wr = 0; wr < 4; wr++) {
                __m256i wv = _mm256_maskload_epi32((const int *)(q + (g * 4 + wr) * N + nb), m);
#pragma GCC unroll 10
                for (int s = 0; s < 10; s++) {
                    part = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(wv, seven)),
                                           _mm256_set1_ps(act[g * 40 + wr * 10 + s]), part);
                    wv = _mm256_srli_epi32(wv, 3);
                }
            }
            __m256 ws = load8(sd, (const char *)w->scales + (size_t)(g * N + nb) * SIZE_OF(sd), n1 - nb);
            acc = _mm256_fmadd_ps(part, ws, acc);
        }
        _mm256_maskstore_ps(y + (nb - n0), m, acc);
    }
}

/* ---- float rows ---- */

INLINE __m256 load_row8(enum kfmt f, const void *row, int64_t k, int64_t n)
{
    if (f == KF_F32) return load8(DT_F32, (const float *)row + k, n);
    if (f == KF_F16) return load8(DT_F16, (const uint16_t *)row + k, n);
    if (f == KF_BF16) return load8(DT_BF16, (const uint16_t *)row + k, n);
    /* FP8 as float16 bits */
    const uint8_t *b = (const uint8_t *)row + k;
    __m128i v;
    if (n >= 8) {
        v = _mm_loadl_epi64((const __m128i *)b);
    } else {
        uint8_t tmp[8] = {0};
        memcpy(tmp, b, (size_t)(n > 0 ? n : 0));
        v = _mm_loadl_epi64((const __m128i *)tmp);
    }
    __m128i h = _mm_cvtepu8_epi16(v);
    if (f == KF_E5M2) h = _mm_slli_epi16(h, 8);
    else h = _mm_or_si128(_mm_slli_epi16(_mm_and_si128(h, _mm_set1_epi16(0x80)), 8),
                          _mm_slli_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7f)), 7));
    return _mm256_cvtph_ps(h);
}

INLINE __m256 round_f16(__m256 v)
{
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

INLINE void float_rows(const struct kmat *w, int64_t n, const unsigned char *act, size_t stride, float *y, int64_t ldy,
                       const int R, const enum kfmt f)
{
    const int64_t K = w->cols;
    size_t esize = f == KF_F32 ? 4 : f == KF_F16 || f == KF_BF16 ? 2 : 1;
    const void *row = (const char *)w->data + (size_t)(n * K) * esize;
    __m256 a0[4], a1[4];
#pragma GCC unroll 10
    for (int r = 0; r < R; r++) a0[r] = a1[r] = _mm256_setzero_ps();
    const bool rounds = kern_fp8_rounds(w);
    const __m256 ws = _mm256_set1_ps(rounds ? kern_fp8_scale(w) : 1.0f);
    int64_t k = 0;
    for (; k + 16 <= K; k += 16) {
        __m256 w0 = load_row8(f, row, k, 8), w1 = load_row8(f, row, k + 8, 8);
        if (rounds) w0 = round_f16(_mm256_mul_ps(w0, ws)), w1 = round_f16(_mm256_mul_ps(w1, ws));
#pragma GCC unroll 10
        for (int r = 0; r < R; r++) {
            const float *x = (const float *)(const void *)(act + (size_t)r * stride);
            a0[r] = _mm256_fmadd_ps(w0, _mm256_load_ps(x + k), a0[r]);
            a1[r] = _mm256_fmadd_ps(w1, _mm256_load_ps(x + k + 8), a1[r]);
        }
    }
    for (; k < K; k += 8) {
        __m256 w0 = load_row8(f, row, k, K - k);
        if (rounds) w0 = round_f16(_mm256_mul_ps(w0, ws));
#pragma GCC unroll 10
        for (int r = 0; r < R; r++)
            a0[r] = _mm256_fmadd_ps(w0, _mm256_load_ps((const float *)(const void *)(act + (size_t)r * stride) + k), a0[r]);
    }
    float s = (f == KF_E4M3 || f == KF_E5M2) && !rounds ? kern_fp8_scale(w) : 1.0f;
#pragma GCC unroll 10
    for (int r = 0; r < R; r++) y[r * ldy] = hsum(_mm256_add_ps(a0[r], a1[r])) * s;
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

static size_t y_act_bytes(const struct kmat *w)
{
    switch (w->fmt) {
    case KF_Q4_NK: return q4nk_act_bytes(w);
    case KF_Q3_NK: return q3nk_act_bytes(w);
    case KF_Q4_KN: return q4kn_act_bytes(w);
    case KF_Q3_KN: return q3kn_act_bytes(w);
    default: return kern_round64(sizeof(float) * (size_t)w->cols);
    }
}

static void y_act_prepare(const struct kmat *w, const float *x, void *act)
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

static size_t y_scratch_bytes(const struct kmat *w)
{
    (void)w;
    return 64;
}

typedef void rows_fn(const struct kmat *w, int64_t n, const unsigned char *a, size_t st, float *y, int64_t ldy, int R);

static void y_matmul(const struct kmat *w, int64_t n0, int64_t n1, const void *act, size_t stride, int64_t rows,
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
    rows_fn *fn = w->fmt == KF_Q4_NK ? q4nk_any : w->fmt == KF_Q3_NK ? q3nk_any : float_any;
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
        int R = rows - r0 < 4 ? (int)(rows - r0) : 4;
        for (int64_t n = n0; n < n1; n++) fn(w, n, a + (size_t)r0 * stride, stride, y + r0 * ldy + (n - n0), ldy, R);
    }
}

/* ---- attention (as kernels_avx512.c, eight lanes) ---- */

INLINE void y_scores(const struct attn_piece *p, int h0, const int H)
{
    const int d = p->d;
    const size_t es = SIZE_OF(p->kv_dtype);
    const int64_t o = p->first % KV_BLOCK, blocks = (o + p->n + KV_BLOCK - 1) / KV_BLOCK;
    const char *k0 = (const char *)p->k + (size_t)(p->first / KV_BLOCK) * (size_t)d * KV_BLOCK * es;
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t b = 0; b < blocks; b++) {
        const char *kb = k0 + (size_t)b * (size_t)d * KV_BLOCK * es;
        int64_t lo = b ? 0 : o, hi = o + p->n - b * KV_BLOCK;
        for (int half = 0; half < KV_BLOCK; half += 8) {
            if (hi <= half || lo >= half + 8) continue;
            __m256 acc[8];
#pragma GCC unroll 8
            for (int h = 0; h < H; h++) acc[h] = _mm256_setzero_ps();
            for (int k = 0; k < d; k++) {
                __m256 kv = load8(p->kv_dtype, kb + (size_t)(k * KV_BLOCK + half) * es, 8);
#pragma GCC unroll 8
                for (int h = 0; h < H; h++) acc[h] = _mm256_fmadd_ps(_mm256_set1_ps(p->q[(int64_t)(h0 + h) * d + k]), kv, acc[h]);
            }
            /* lanes of slots inside the run */
            __m256i m = _mm256_and_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(hi - half)), idx),
                                         _mm256_cmpgt_epi32(idx, _mm256_set1_epi32((int)(lo - half - 1))));
#pragma GCC unroll 8
            for (int h = 0; h < H; h++)
                _mm256_maskstore_ps(p->scores + (int64_t)(h0 + h) * ATTN_SCORES + b * KV_BLOCK + half, m,
                                    _mm256_mul_ps(acc[h], _mm256_set1_ps(p->scale)));
        }
    }
}

INLINE void y_values(const struct attn_piece *p, int h0, int c0, const int H, const int C)
{
    const int d = p->d;
    const size_t es = SIZE_OF(p->kv_dtype);
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) acc[h][c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < p->n; i++) {
        const char *vr = (const char *)p->v + (size_t)(i * p->v_stride + c0) * es;
        __m256 v[4];
#pragma GCC unroll 4
        for (int c = 0; c < C; c++) v[c] = load8(p->kv_dtype, vr + (size_t)(8 * c) * es, d - c0 - 8 * c);
#pragma GCC unroll 4
        for (int h = 0; h < H; h++) {
            __m256 pw = _mm256_set1_ps(p->scores[(int64_t)(h0 + h) * ATTN_SCORES + p->first % KV_BLOCK + i]);
#pragma GCC unroll 4
            for (int c = 0; c < C; c++) acc[h][c] = _mm256_fmadd_ps(pw, v[c], acc[h][c]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 4
        for (int c = 0; c < C; c++)
            _mm256_maskstore_ps(p->out + (int64_t)(h0 + h) * d + c0 + 8 * c, lanes(d - c0 - 8 * c), acc[h][c]);
}

static void y_attend(const struct attn_piece *p)
{
    const int G = p->heads, d = p->d;
    const int64_t n = p->n;
    for (int h0 = 0; h0 < G; h0 += 8) {
        switch (G - h0 < 8 ? G - h0 : 8) {
        case 1: y_scores(p, h0, 1); break;
        case 2: y_scores(p, h0, 2); break;
        case 3: y_scores(p, h0, 3); break;
        case 4: y_scores(p, h0, 4); break;
        case 5: y_scores(p, h0, 5); break;
        case 6: y_scores(p, h0, 6); break;
        case 7: y_scores(p, h0, 7); break;
        default: y_scores(p, h0, 8); break;
        }
    }
    for (int h = 0; h < G; h++) {
        float *sc = p->scores + (int64_t)h * ATTN_SCORES + p->first % KV_BLOCK;
        if (p->softcap > 0) {
            const __m256 c = _mm256_set1_ps(p->softcap), ic = _mm256_set1_ps(1.0f / p->softcap);
            int64_t i = 0;
            for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(sc + i, _mm256_mul_ps(tanh256(_mm256_mul_ps(_mm256_loadu_ps(sc + i), ic)), c));
            if (i < n) {
                __m256i msk = lanes(n - i);
                _mm256_maskstore_ps(sc + i, msk, _mm256_mul_ps(tanh256(_mm256_mul_ps(_mm256_maskload_ps(sc + i, msk), ic)), c));
            }
        }
        float m = -INFINITY;
        for (int64_t i = 0; i < n; i++) m = sc[i] > m ? sc[i] : m;
        __m256 sum = _mm256_setzero_ps(), vm = _mm256_set1_ps(m);
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(sc + i), vm));
            _mm256_storeu_ps(sc + i, e);
            sum = _mm256_add_ps(sum, e);
        }
        if (i < n) {
            __m256i msk = lanes(n - i);
            __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(sc + i, msk), vm)), _mm256_castsi256_ps(msk));
            _mm256_maskstore_ps(sc + i, msk, e);
            sum = _mm256_add_ps(sum, e);
        }
        p->max[h] = m;
        p->sum[h] = hsum(sum);
    }
    /* four heads and up to 32 dimensions at a time */
    for (int c0 = 0; c0 < d; c0 += 32) {
        int C = (d - c0 + 7) / 8 < 4 ? (d - c0 + 7) / 8 : 4;
        for (int h0 = 0; h0 < G; h0 += 4) {
            int H = G - h0 < 4 ? G - h0 : 4;
            if (H == 4 && C == 4) y_values(p, h0, c0, 4, 4);
            else if (H == 4 && C == 1) y_values(p, h0, c0, 4, 1);
            else
                for (int h = h0; h < h0 + H; h++)
                    for (int c = c0; c < c0 + 8 * C; c += 8) y_values(p, h, c, 1, 1);
        }
    }
}

/* ---- the rest of the step ---- */

static void y_rms_norm(const float *x, const float *w, int64_t n, double eps, float *y)
{
    __m256 ss = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        ss = _mm256_fmadd_ps(v, v, ss);
    }
    float tail = 0;
    for (int64_t j = i; j < n; j++) tail += x[j] * x[j];
    float scale = (float)(1.0 / sqrt((double)(hsum(ss) + tail) / (double)n + eps));
    __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

static void y_add_rms_norm(const float *a, const float *b, const float *w, int64_t n, double eps, float *sum, float *y)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(sum + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) sum[i] = a[i] + b[i];
    y_rms_norm(sum, w, n, eps, y);
}

static void y_silu_mul(const float *g, const float *u, int64_t n, float *out)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* gelu_tanh(x) = x · sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3)), the same
 * function as 0.5 x (1 + tanh(...)) without the cancellation near -1 */
static void y_gelu_mul(const float *g, const float *u, int64_t n, float *out)
{
    const __m256 one = _mm256_set1_ps(1.0f), k2 = _mm256_set1_ps(-2.0f * 0.7978845608028654f),
                 c = _mm256_set1_ps(0.044715f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 x = _mm256_loadu_ps(g + i);
        __m256 z = _mm256_mul_ps(k2, _mm256_fmadd_ps(_mm256_mul_ps(c, x), _mm256_mul_ps(x, x), x));
        __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp256(z)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) out[i] = k_gelu_tanh(g[i]) * u[i];
}

static void y_store(enum dtype t, const float *x, int64_t n, void *out, int64_t stride)
{
    if (t != DT_F16) {
        for (int64_t i = 0; i < n; i++) quant_store(t, out, (size_t)(i * stride), x[i]);
        return;
    }
    uint16_t *o = out;
    for (int64_t i = 0; i < n; i += 8) {
        uint16_t tmp[8];
        _mm_storeu_si128((__m128i *)tmp, _mm256_cvtps_ph(load8(DT_F32, x + i, n - i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        for (int64_t j = 0; j < 8 && i + j < n; j++) o[(i + j) * stride] = tmp[j];
    }
}

static uint64_t y_read_sum(const void *p, size_t n)
{
    const char *c = p;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        s0 = _mm256_add_epi64(s0, _mm256_load_si256((const __m256i *)(c + i)));
        s1 = _mm256_add_epi64(s1, _mm256_load_si256((const __m256i *)(c + i + 32)));
        s2 = _mm256_add_epi64(s2, _mm256_load_si256((const __m256i *)(c + i + 64)));
        s3 = _mm256_add_epi64(s3, _mm256_load_si256((const __m256i *)(c + i + 96)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
    uint64_t lanes4[4];
    _mm256_storeu_si256((__m256i *)lanes4, s);
    return lanes4[0] + lanes4[1] + lanes4[2] + lanes4[3];
}

const struct kernel_set kernels_avx2 = {
    .name = "avx2",
    .act_bytes = y_act_bytes,
    .act_prepare = y_act_prepare,
    .scratch_bytes = y_scratch_bytes,
    .matmul = y_matmul,
    .attend = y_attend,
    .rms_norm = y_rms_norm,
    .add_rms_norm = y_add_rms_norm,
    .silu_mul = y_silu_mul,
    .gelu_mul = y_gelu_mul,
    .store = y_store,
    .read_sum = y_read_sum,
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
