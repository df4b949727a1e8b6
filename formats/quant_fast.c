/* Fast versions of the quant.h arithmetic: AVX2 + F16C code compiled with
 * __attribute__((target)) and chosen at run time, so the binary still runs
 * (on the scalar reference) on CPUs without them. Every function must give
 * the reference's bits exactly; tests/unit/test_quant.c checks that on random
 * and adversarial inputs. */
#include "formats/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

static int simd_state = -1; /* -1 unknown, 0 off, 1 on */

bool quant_simd_active(void)
{
    int s = __atomic_load_n(&simd_state, __ATOMIC_RELAXED);
    if (s < 0) {
        s = 0;
#if HAVE_X86
        __builtin_cpu_init();
        /* F16C through cpuid: clang's __builtin_cpu_supports has no name for it */
        unsigned a, b, c, d;
        s = __builtin_cpu_supports("avx2") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
#endif
        const char *env = getenv("MLC_QUANT_SIMD");
        if (env && !strcmp(env, "0")) s = 0;
        __atomic_store_n(&simd_state, s, __ATOMIC_RELAXED);
    }
    return s == 1;
}

/* ---- reductions shared by both paths ---- */

void quant_maxabs_part(const float *w, size_t n, struct quant_maxabs_part *out)
{
    out->has_nan = false;
    out->last_is_nan = false;
    float acc = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        float v = fabsf(w[i]);
        if (isnan(v)) {
            out->has_nan = true;
            acc = -INFINITY;
            out->last_is_nan = (i + 1 == n);
            continue;
        }
        if (v > acc) acc = v;
    }
    out->max_after_nan = acc;
}

/* The sequential reduction acc = acc > v ? acc : v restarts after a NaN
 * (NaN > v is false), so only what follows the last NaN counts, and a NaN
 * in the final position is the result. */
float quant_maxabs_merge(enum dtype model, const struct quant_maxabs_part *parts, size_t nparts)
{
    float acc = quant_maxabs_ref(model, NULL, 0); /* the reduction's identity */
    for (size_t i = 0; i < nparts; i++) {
        if (parts[i].has_nan) acc = parts[i].last_is_nan ? NAN : parts[i].max_after_nan;
        else acc = acc > parts[i].max_after_nan ? acc : parts[i].max_after_nan;
    }
    return acc;
}

void quant_to_model_ref(enum dtype src_t, const void *src, size_t n, enum dtype model, float *out)
{
    /* numpy's astype to the same dtype is a copy (NaN payloads kept) */
    if (src_t == model) {
        for (size_t i = 0; i < n; i++) out[i] = quant_load(src_t, src, i);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = quant_round(model, quant_load(src_t, src, i));
}

void quant_encode_ref(enum dtype model, const float *v, size_t n, void *out)
{
    uint16_t *o = out;
    for (size_t i = 0; i < n; i++) {
        if (model == DT_F16) o[i] = f32_to_f16(v[i]);
        else if (model == DT_BF16) o[i] = (uint16_t)(f32_bits(v[i]) >> 16);
        else o[i] = f32_to_bf16_storage(v[i]);
    }
}

#if HAVE_X86

#define TARGET __attribute__((target("avx2,f16c")))

TARGET static inline __m256 round_f16(__m256 x)
{
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* bf16 (upper 16 bits) → f32 for 8 values */
TARGET static inline __m256 load_bf16(const void *p)
{
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

TARGET static void to_model_avx2(enum dtype src_t, const void *src, size_t n, enum dtype model, float *out)
{
    size_t i = 0;
    /* bfloat16 results need ml_dtypes' NaN rule and f32 → bf16 rounding;
     * only the common paths are vectorised, the rest uses the reference. */
    if (model == DT_F16 || model == DT_F32 || (model == DT_BF16 && src_t == DT_BF16)) {
        for (; i + 8 <= n; i += 8) {
            __m256 x;
            if (src_t == DT_BF16) {
                x = load_bf16((const char *)src + 2 * i);
            } else if (src_t == DT_F16) {
                /* the hardware quiets signalling NaNs; the reference keeps
                 * them, so blocks with NaN or inf take the scalar path */
                __m128i h = _mm_loadu_si128((const __m128i *)((const char *)src + 2 * i));
                __m128i e = _mm_and_si128(h, _mm_set1_epi16(0x7c00));
                if (_mm_movemask_epi8(_mm_cmpeq_epi16(e, _mm_set1_epi16(0x7c00)))) {
                    quant_to_model_ref(src_t, (const char *)src + 2 * i, 8, model, out + i);
                    continue;
                }
                x = _mm256_cvtph_ps(h);
            }
            else x = _mm256_loadu_ps((const float *)src + i);
            if (model == DT_F16 && src_t != DT_F16) x = round_f16(x);
            _mm256_storeu_ps(out + i, x);
        }
    }
    if (i < n) {
        size_t size = dtype_size(src_t);
        quant_to_model_ref(src_t, (const char *)src + size * i, n - i, model, out + i);
    }
}

TARGET static void encode_avx2(enum dtype model, const float *v, size_t n, void *out)
{
    size_t i = 0;
    uint16_t *o = out;
    if (model == DT_F16) {
        for (; i + 8 <= n; i += 8) {
            __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(v + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            _mm_storeu_si128((__m128i *)(o + i), h);
        }
    }
    if (i < n) quant_encode_ref(model, v + i, n - i, o + i);
}

/* q values (0..2*max_int, as int32 lanes) of 8 consecutive weights */
TARGET static inline __m256i quant8(__m256 w, __m256 scale, __m256 max_int, __m256 top, int f16)
{
    __m256 t = _mm256_div_ps(w, scale);
    if (f16) t = round_f16(t);
    __m256 u = _mm256_add_ps(t, max_int);
    if (f16) u = round_f16(u);
    /* TVM: min(max(rint(u), 0), top). minps returns its second operand
     * when either is NaN, so min(top, u) keeps NaN and turns +inf into
     * top; the conversion rounds to nearest even (the default MXCSR mode)
     * and maps NaN and -inf to INT_MIN, which the integer max takes to 0:
     * the same q for every u */
    __m256i q = _mm256_cvtps_epi32(_mm256_min_ps(top, u));
    return _mm256_max_epi32(q, _mm256_setzero_si256());
}

/* One group through the reference (a NaN in it, or the padded last
 * group): it writes the group's words and scale at offset 0. */
static void group_by_reference(const struct quant_scheme *s, const float *x, size_t n, uint32_t *words_out,
                               void *scale_out)
{
    uint32_t words[8];
    unsigned char sc[4];
    quant_group_row_ref(s, x, n, words, sc);
    memcpy(words_out, words, (size_t)s->words_per_group * sizeof *words);
    memcpy(scale_out, sc, dtype_size(s->model_dtype));
}

/* Two passes over a row so that groups do not wait on each other: first
 * every group's max |w| and scale (eight groups per vector for the scale),
 * then the quantization of every group, whose dependency chains are
 * independent and overlap in the CPU. */
TARGET static void group_row_avx2(const struct quant_scheme *s, const float *w, size_t k,
                                  uint32_t *q_words, void *scales)
{
    const size_t gs = (size_t)s->group_size, full = k / gs, ss = dtype_size(s->model_dtype);
    const size_t wpg = (size_t)s->words_per_group, epw = (size_t)s->elems_per_word;
    const int f16 = s->model_dtype == DT_F16;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 max_int = _mm256_set1_ps((float)s->max_int);
    const __m256 top = _mm256_set1_ps((float)(2 * s->max_int));
    float maxabs_buf[256], scale_buf[256];
    unsigned char nan_buf[256];
    for (size_t g0 = 0; g0 < full; g0 += 256) {
        size_t n = full - g0 < 256 ? full - g0 : 256;
        /* pass 1: max |w| per group; a NaN sends the group to the
         * reference, whose order-dependent NaN rule a tree reduction
         * cannot reproduce */
        for (size_t g = 0; g < n; g++) {
            const float *x = w + (g0 + g) * gs;
            __m256 m = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
            size_t j = 0;
            for (; j + 8 <= gs; j += 8) {
                __m256 v = _mm256_and_ps(_mm256_loadu_ps(x + j), absmask);
                nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
                m = _mm256_max_ps(m, v);
            }
            __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
            m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
            float mx = _mm_cvtss_f32(m4);
            int has_nan = _mm256_movemask_ps(nan) != 0;
            for (; j < gs; j++) { /* group sizes that are not multiples of 8 */
                float v = fabsf(x[j]);
                if (isnan(v)) has_nan = 1;
                else if (v > mx) mx = v;
            }
            maxabs_buf[g] = mx;
            nan_buf[g] = (unsigned char)has_nan;
        }
        /* scales: maxabs / max_int rounded as stored (see quant.c) */
        size_t g = 0;
        if (f16) {
            for (; g + 8 <= n; g += 8) {
                __m256 v = _mm256_div_ps(_mm256_loadu_ps(maxabs_buf + g), max_int);
                __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
                _mm_storeu_si128((__m128i *)((uint16_t *)scales + g0 + g), h);
                _mm256_storeu_ps(scale_buf + g, _mm256_cvtph_ps(h));
            }
        }
        for (; g < n; g++) {
            float v = maxabs_buf[g] / (float)s->max_int;
            if (f16) {
                uint16_t h = f32_to_f16(v);
                memcpy((uint16_t *)scales + g0 + g, &h, 2);
                scale_buf[g] = f16_to_f32(h);
            } else if (s->model_dtype == DT_BF16) {
                uint32_t b = f32_bits(v);
                b += 0x7fff + ((b >> 16) & 1);
                uint16_t h = (uint16_t)(b >> 16);
                memcpy((uint16_t *)scales + g0 + g, &h, 2);
                scale_buf[g] = bf16_to_f32(h);
            } else {
                memcpy((float *)scales + g0 + g, &v, 4);
                scale_buf[g] = v;
            }
        }
        /* pass 2: quantize and pack */
        for (g = 0; g < n; g++) {
            const float *x = w + (g0 + g) * gs;
            uint32_t *out = q_words + (g0 + g) * wpg;
            if (nan_buf[g]) {
                group_by_reference(s, x, gs, out, (char *)scales + (g0 + g) * ss);
                continue;
            }
            const __m256 vs = _mm256_set1_ps(scale_buf[g]);
            if (s->bits == 4 && gs == 32) {
                const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
                __m256i q0 = _mm256_sllv_epi32(quant8(_mm256_loadu_ps(x), vs, max_int, top, f16), shifts);
                __m256i q1 = _mm256_sllv_epi32(quant8(_mm256_loadu_ps(x + 8), vs, max_int, top, f16), shifts);
                __m256i q2 = _mm256_sllv_epi32(quant8(_mm256_loadu_ps(x + 16), vs, max_int, top, f16), shifts);
                __m256i q3 = _mm256_sllv_epi32(quant8(_mm256_loadu_ps(x + 24), vs, max_int, top, f16), shifts);
                /* the nibbles do not overlap, so sums are ORs */
                __m256i a = _mm256_hadd_epi32(q0, q1), b = _mm256_hadd_epi32(q2, q3);
                __m256i c = _mm256_hadd_epi32(a, b);
                __m128i words = _mm_add_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
                _mm_storeu_si128((__m128i *)out, words);
            } else {
                int32_t q[64];
                size_t jj = 0;
                for (; jj + 8 <= gs; jj += 8)
                    _mm256_storeu_si256((__m256i *)(q + jj), quant8(_mm256_loadu_ps(x + jj), vs, max_int, top, f16));
                for (; jj < gs; jj++) { /* scalar tail with the same steps */
                    float t = x[jj] / scale_buf[g];
                    if (f16) t = f16_to_f32(f32_to_f16(t));
                    float u = t + (float)s->max_int;
                    if (f16) u = f16_to_f32(f32_to_f16(u));
                    float r = rintf(u);
                    r = r > 0.0f ? r : 0.0f;
                    r = r < (float)(2 * s->max_int) ? r : (float)(2 * s->max_int);
                    q[jj] = (int32_t)r;
                }
                for (size_t wi = 0; wi < wpg; wi++) {
                    uint32_t word = 0;
                    for (size_t r = 0; r < epw; r++) word |= (uint32_t)q[wi * epw + r] << (r * (size_t)s->bits);
                    out[wi] = word;
                }
            }
        }
    }
    if (full * gs < k) /* the last, padded group */
        group_by_reference(s, w + full * gs, k - full * gs, q_words + full * wpg, (char *)scales + full * ss);
}

TARGET static void fp8_avx2(const struct quant_scheme *s, const float *w, size_t n, float scale, uint8_t *out)
{
    /* The division is vectorised; the FP8 rounding is table-free scalar
     * code shared with the reference. */
    size_t i = 0;
    float buf[8];
    const __m256 vs = _mm256_set1_ps(scale);
    bool e4m3 = s->storage_dtype == DT_F8_E4M3;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(w + i);
        if (s->use_scale) v = _mm256_div_ps(v, vs);
        _mm256_storeu_ps(buf, v);
        for (int j = 0; j < 8; j++) out[i + j] = e4m3 ? fp8_e4m3_from_f32(buf[j]) : fp8_e5m2_from_f32(buf[j]);
    }
    if (i < n) quant_fp8_ref(s, w + i, n - i, scale, out + i);
}

#endif /* HAVE_X86 */

void quant_to_model(enum dtype src_t, const void *src, size_t n, enum dtype model, float *out)
{
#if HAVE_X86
    if (quant_simd_active()) {
        to_model_avx2(src_t, src, n, model, out);
        return;
    }
#endif
    quant_to_model_ref(src_t, src, n, model, out);
}

void quant_encode(enum dtype model, const float *v, size_t n, void *out)
{
#if HAVE_X86
    if (quant_simd_active()) {
        encode_avx2(model, v, n, out);
        return;
    }
#endif
    quant_encode_ref(model, v, n, out);
}

void quant_group_row(const struct quant_scheme *s, const float *w, size_t k, uint32_t *q_words, void *scales)
{
#if HAVE_X86
    if (quant_simd_active() && s->group_size <= 64 && s->words_per_group <= 8) {
        group_row_avx2(s, w, k, q_words, scales);
        return;
    }
#endif
    quant_group_row_ref(s, w, k, q_words, scales);
}

void quant_fp8(const struct quant_scheme *s, const float *w, size_t n, float scale, uint8_t *out)
{
#if HAVE_X86
    if (quant_simd_active()) {
        fp8_avx2(s, w, n, scale, out);
        return;
    }
#endif
    quant_fp8_ref(s, w, n, scale, out);
}
