#include "common/engine/weights.h"
#include "common/buf.h"
#include "common/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bool same_layout(const struct tensor_view *t, const struct mlc_output *o)
{
    if (t->ndim != o->ndim || t->dtype != o->dtype) return false;
    for (int i = 0; i < o->ndim; i++)
        if (t->shape[i] != o->shape[i]) return false;
    return true;
}

int weight_bind(struct bound_weight *w, const struct value *v, const char *quantization,
                const struct tensor_source *src)
{
    memset(w, 0, sizeof *w);
    w->name = v->name;
    w->scheme = quant_scheme_by_name(quantization);
    if (!w->scheme) return fail("quantization '%s' is not known (%s)", quantization, quant_scheme_names());
    w->rows = v->dims[0].size;
    w->cols = v->ndim > 1 ? v->dims[1].size : 1;
    struct mlc_output out[3];
    int n = weight_storage(w->scheme, v->name, v->role, w->rows, w->cols, out);
    w->quantized = out[0].kind != OUT_PLAIN;
    if (strcmp(v->scheme, w->quantized ? quantization : "none"))
        return fail("%s: the plan says scheme '%s', %s stores it %s", v->name, v->scheme, quantization,
                    w->quantized ? "quantized" : "as is");
    if (n != v->nparts) return fail("%s: the plan names %d tensors, %s stores %d", v->name, v->nparts, quantization, n);
    w->transposed = w->quantized && w->scheme->kind == QUANT_GROUP && w->scheme->layout == QUANT_KN &&
                    (v->role == ROLE_LINEAR || v->role == ROLE_FINAL_FC);
    w->nparts = n;
    for (int i = 0; i < n; i++) {
        if (strcmp(v->parts[i], out[i].name))
            return fail("%s: the plan names tensor %s where %s stores %s", v->name, v->parts[i], quantization, out[i].name);
        const struct tensor_view *t = src->lookup(src->ctx, out[i].name);
        if (!t) return fail("parameter %s is not in the weights", out[i].name);
        if (!same_layout(t, &out[i])) {
            char got[64], want[64];
            shape_format(got, sizeof got, t->ndim, t->shape);
            shape_format(want, sizeof want, out[i].ndim, out[i].shape);
            return fail("parameter %s is %s %s in the weights, the library expects %s %s", out[i].name,
                        dtype_name(t->dtype), got, dtype_name(out[i].dtype), want);
        }
        w->parts[i] = t;
        if (out[i].kind == OUT_CALIBRATION) {
            float c = ((const float *)t->data)[0];
            if (!isfinite(c) || c <= 0)
                return fail("parameter %s is uncalibrated (%g): FP8 activation scales come from calibration; "
                            "this model cannot run until they are measured",
                            out[i].name, c);
            w->act_scale = c;
        }
    }
    return 0;
}

const float *weight_row_in_place(const struct bound_weight *w, int64_t n)
{
    const struct tensor_view *t = w->parts[0];
    return !w->quantized && t->dtype == DT_F32 ? (const float *)t->data + n * w->cols : NULL;
}

void weight_row(const struct bound_weight *w, int64_t n, float *out)
{
    const struct tensor_view *t = w->parts[0];
    int64_t K = w->cols;
    const float *row = weight_row_in_place(w, n);
    if (row) {
        memcpy(out, row, sizeof *out * (size_t)K);
        return;
    }
    if (!w->quantized) {
        for (int64_t k = 0; k < K; k++) out[k] = quant_load(t->dtype, t->data, (size_t)(n * K + k));
        return;
    }
    const struct quant_scheme *s = w->scheme;
    if (s->kind == QUANT_GROUP) {
        const uint32_t *q = t->data;
        const unsigned char *scales = w->parts[1]->data;
        if (w->transposed) {
            quant_dequant_row_kn(s, q, scales, (size_t)w->rows, (size_t)K, (size_t)n, out);
        } else {
            size_t words = quant_row_words(s, (size_t)K), groups = quant_groups(s, (size_t)K);
            quant_dequant_row_nk(s, q + (size_t)n * words, scales + (size_t)n * groups * dtype_size(s->model_dtype),
                                 (size_t)K, out);
        }
        return;
    }
    float scale = s->use_scale ? ((const float *)w->parts[1]->data)[0] : 1.0f;
    quant_fp8_dequant(s, (const uint8_t *)t->data + n * K, (size_t)K, scale, out);
}

void weight_vector(const struct bound_weight *w, float *out)
{
    const struct tensor_view *t = w->parts[0];
    for (int64_t i = 0; i < w->rows; i++) out[i] = quant_load(t->dtype, t->data, (size_t)i);
}

bool weight_quantizes_activation(const struct bound_weight *w)
{
    return w->quantized && w->scheme->kind == QUANT_PER_TENSOR;
}

void weight_quantize_activation(const struct bound_weight *w, const float *x, int64_t n, float *out)
{
    const struct quant_scheme *s = w->scheme;
    float c = w->act_scale > 0 ? w->act_scale : 1.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] / c;
        float q = s->storage_dtype == DT_F8_E4M3 ? fp8_e4m3_to_f32(fp8_e4m3_from_f32(v))
                                                 : fp8_e5m2_to_f32(fp8_e5m2_from_f32(v));
        out[i] = q * c;
    }
}
