/* The generic kernel set: portable C that works on the stored layouts
 * directly (no dequantized row copies, no rounding through float16), with
 * float32 activations. It runs where no SIMD set does, and is the plain
 * model of what the SIMD sets compute. */
#include "common/engine/kernels.h"
#include "common/engine/kernels_impl.h"

#include <math.h>
#include <string.h>

static size_t g_act_bytes(const struct kmat *w)
{
    return kern_round64(sizeof(float) * (size_t)w->cols);
}

static void g_act_prepare(const struct kmat *w, const float *x, void *act)
{
    memcpy(act, x, sizeof(float) * (size_t)w->cols);
}

static size_t g_scratch_bytes(const struct kmat *w)
{
    (void)w;
    return 64;
}

/* Σ (q - max_int) · x over one group of an NK row, from its words. */
static float group_dot_nk(const uint32_t *words, int bits, int epw, int max_int, const float *x, int64_t n)
{
    const uint32_t mask = (1u << bits) - 1;
    float acc = 0;
    for (int64_t j = 0; j < n; j++) {
        uint32_t q = (words[j / epw] >> ((j % epw) * bits)) & mask;
        acc += (float)((int)q - max_int) * x[j];
    }
    return acc;
}

static float row_nk(const struct kmat *w, int64_t n, const float *x)
{
    const struct quant_scheme *s = w->scheme;
    const int64_t K = w->cols, G = kmat_groups(w), gs = s->group_size, wpg = s->words_per_group;
    const uint32_t *q = (const uint32_t *)w->data + n * kmat_row_words(w);
    float acc = 0;
    for (int64_t g = 0; g < G; g++) {
        int64_t len = K - g * gs < gs ? K - g * gs : gs;
        float dot = group_dot_nk(q + g * wpg, s->bits, s->elems_per_word, s->max_int, x + g * gs, len);
        acc += dot * kern_load_scale(w->scale_dtype, w->scales, n * G + g);
    }
    return acc;
}

static float row_kn(const struct kmat *w, int64_t n, const float *x)
{
    const struct quant_scheme *s = w->scheme;
    const int64_t K = w->cols, N = w->rows, gs = s->group_size, epw = s->elems_per_word;
    const uint32_t *q = w->data;
    const uint32_t mask = (1u << s->bits) - 1;
    float acc = 0;
    for (int64_t g = 0; g * gs < K; g++) {
        float dot = 0;
        for (int64_t j = g * gs; j < K && j < (g + 1) * gs; j++) {
            uint32_t v = (q[(j / epw) * N + n] >> ((j % epw) * s->bits)) & mask;
            dot += (float)((int)v - s->max_int) * x[j];
        }
        acc += dot * kern_load_scale(w->scale_dtype, w->scales, g * N + n);
    }
    return acc;
}

static float row_dot(const struct kmat *w, int64_t n, const float *x)
{
    const int64_t K = w->cols;
    float acc[8] = {0};
    switch (w->fmt) {
    case KF_F32: {
        const float *a = (const float *)w->data + n * K;
        for (int64_t k = 0; k < K; k++) acc[k & 7] += a[k] * x[k];
        break;
    }
    case KF_F16: {
        const uint16_t *a = (const uint16_t *)w->data + n * K;
        for (int64_t k = 0; k < K; k++) acc[k & 7] += kern_f16(a[k]) * x[k];
        break;
    }
    case KF_BF16: {
        const uint16_t *a = (const uint16_t *)w->data + n * K;
        for (int64_t k = 0; k < K; k++) acc[k & 7] += kern_bf16(a[k]) * x[k];
        break;
    }
    case KF_E4M3:
    case KF_E5M2: {
        const uint8_t *a = (const uint8_t *)w->data + n * K;
        float s = kern_fp8_scale(w);
        if (kern_fp8_rounds(w)) { /* each weight rounded to float16, as the reference */
            for (int64_t k = 0; k < K; k++)
                acc[k & 7] += quant_round(DT_F16, kern_f16(kern_fp8_f16_bits(w->fmt, a[k])) * s) * x[k];
            break;
        }
        for (int64_t k = 0; k < K; k++) acc[k & 7] += kern_f16(kern_fp8_f16_bits(w->fmt, a[k])) * x[k];
        for (int l = 0; l < 8; l++) acc[l] *= s;
        break;
    }
    case KF_Q4_NK:
    case KF_Q3_NK: return row_nk(w, n, x);
    case KF_Q4_KN:
    case KF_Q3_KN: return row_kn(w, n, x);
    case KF_COUNT: break;
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

static void g_matmul(const struct kmat *w, int64_t n0, int64_t n1, const void *act, size_t act_stride, int64_t rows,
                     float *y, int64_t ldy, void *scratch)
{
    (void)scratch;
    for (int64_t n = n0; n < n1; n++)
        for (int64_t r = 0; r < rows; r++)
            y[r * ldy + (n - n0)] = row_dot(w, n, (const float *)(const void *)((const char *)act + (size_t)r * act_stride));
}

static float kv_at(enum dtype t, const void *base, int64_t i)
{
    const uint16_t *h = base;
    if (t == DT_F16) return kern_f16(h[i]);
    if (t == DT_BF16) return kern_bf16(h[i]);
    return ((const float *)base)[i];
}

static void g_attend(const struct attn_piece *p)
{
    const int G = p->heads, d = p->d;
    const int64_t o = p->first % KV_BLOCK;
    for (int h = 0; h < G; h++) {
        const float *q = p->q + (int64_t)h * d;
        float *sc = p->scores + (int64_t)h * ATTN_SCORES + o, mx = -INFINITY;
        for (int64_t i = 0; i < p->n; i++) {
            float acc = 0;
            for (int k = 0; k < d; k++) acc += q[k] * kv_at(p->kv_dtype, p->k, kv_cache_key_index(d, p->first + i, k));
            sc[i] = acc * p->scale;
            if (p->softcap > 0) sc[i] = tanhf(sc[i] / p->softcap) * p->softcap;
            if (sc[i] > mx) mx = sc[i];
        }
        float sum = 0, *out = p->out + (int64_t)h * d;
        for (int64_t i = 0; i < p->n; i++) {
            sc[i] = expf(sc[i] - mx);
            sum += sc[i];
        }
        for (int k = 0; k < d; k++) out[k] = 0;
        for (int64_t i = 0; i < p->n; i++)
            for (int k = 0; k < d; k++) out[k] += sc[i] * kv_at(p->kv_dtype, p->v, i * p->v_stride + k);
        p->max[h] = mx;
        p->sum[h] = sum;
    }
}

static uint64_t g_read_sum(const void *p, size_t n)
{
    const uint64_t *w = p;
    uint64_t s[4] = {0};
    for (size_t i = 0; i + 4 <= n / 8; i += 4)
        for (int l = 0; l < 4; l++) s[l] += w[i + l];
    return s[0] + s[1] + s[2] + s[3];
}

const struct kernel_set kernels_generic = {
    .name = "generic",
    .act_bytes = g_act_bytes,
    .act_prepare = g_act_prepare,
    .scratch_bytes = g_scratch_bytes,
    .matmul = g_matmul,
    .attend = g_attend,
    .read_sum = g_read_sum,
};
