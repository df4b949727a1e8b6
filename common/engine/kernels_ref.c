/* The reference kernel set: each weight row dequantized with MLC's
 * arithmetic (formats/quant.h: float16 schemes round every product to
 * float16, as TVM's kernels do), then dotted with the float32 activations by
 * k_dot. The rest of the step runs the executor's reference code (every
 * hook but the matmul is NULL). Slow and plain on purpose: the fast sets
 * are tested against it. */
#include "common/engine/cpu_kernels.h"
#include "common/engine/kernels.h"

#include <string.h>

void kmat_dequant_row(const struct kmat *w, int64_t n, float *out)
{
    const int64_t K = w->cols;
    switch (w->fmt) {
    case KF_F32: memcpy(out, (const float *)w->data + n * K, sizeof(float) * (size_t)K); return;
    case KF_F16:
    case KF_BF16: {
        enum dtype t = w->fmt == KF_F16 ? DT_F16 : DT_BF16;
        for (int64_t k = 0; k < K; k++) out[k] = quant_load(t, w->data, (size_t)(n * K + k));
        return;
    }
    case KF_Q4_NK:
    case KF_Q3_NK: {
        int64_t words = kmat_row_words(w), groups = kmat_groups(w);
        const char *scales = (const char *)w->scales + (size_t)(n * groups) * dtype_size(w->scale_dtype);
        quant_dequant_row_nk_scales(w->scheme, (const uint32_t *)w->data + n * words, scales, w->scale_dtype,
                                    (size_t)K, out);
        return;
    }
    case KF_Q4_KN:
    case KF_Q3_KN:
        quant_dequant_row_kn_scales(w->scheme, w->data, w->scales, w->scale_dtype, (size_t)w->rows, (size_t)K,
                                    (size_t)n, out);
        return;
    case KF_E4M3:
    case KF_E5M2:
        if (w->act_scale > 0) { /* FP8 times FP8: the weights as stored, the scales applied after the sum */
            for (int64_t k = 0; k < K; k++) {
                uint8_t b = ((const uint8_t *)w->data)[n * K + k];
                out[k] = w->fmt == KF_E4M3 ? fp8_e4m3_to_f32(b) : fp8_e5m2_to_f32(b);
            }
            return;
        }
        quant_fp8_dequant(w->scheme, (const uint8_t *)w->data + n * K, (size_t)K, w->scale, out);
        return;
    case KF_COUNT: break;
    }
}

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static size_t ref_act_bytes(const struct kmat *w)
{
    return round64(sizeof(float) * (size_t)w->cols);
}

static void ref_act_prepare(const struct kmat *w, const float *x, void *act)
{
    memcpy(act, x, sizeof(float) * (size_t)w->cols);
}

static size_t ref_scratch_bytes(const struct kmat *w)
{
    return sizeof(float) * (size_t)w->cols;
}

static void ref_matmul(const struct kmat *w, int64_t n0, int64_t n1, const void *act, size_t act_stride,
                       int64_t rows, float *y, int64_t ldy, void *scratch)
{
    const int64_t K = w->cols;
    for (int64_t n = n0; n < n1; n++) {
        const float *row = scratch;
        if (w->fmt == KF_F32) row = (const float *)w->data + n * K; /* already float32: no copy */
        else kmat_dequant_row(w, n, scratch);
        /* FP8 activations: the sum times the activation and weight scales */
        float s = (w->fmt == KF_E4M3 || w->fmt == KF_E5M2) && w->act_scale > 0 ? w->act_scale * w->scale : 1.0f;
        for (int64_t r = 0; r < rows; r++)
            y[r * ldy + (n - n0)] =
                k_dot((const float *)(const void *)((const char *)act + (size_t)r * act_stride), row, K) * s;
    }
}

static uint64_t ref_read_sum(const void *p, size_t n)
{
    const uint64_t *w = p;
    uint64_t s = 0;
    for (size_t i = 0; i < n / 8; i++) s += w[i];
    return s;
}

const struct kernel_set kernels_reference = {
    .name = "reference",
    .act_bytes = ref_act_bytes,
    .act_prepare = ref_act_prepare,
    .scratch_bytes = ref_scratch_bytes,
    .matmul = ref_matmul,
    .read_sum = ref_read_sum,
};
