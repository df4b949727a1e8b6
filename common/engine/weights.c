#include "common/engine/weights.h"
#include "common/buf.h"
#include "common/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum dtype tensor_view_storage(const struct tensor_view *t)
{
    return t->storage != DT_INVALID ? t->storage : t->dtype;
}

float tensor_view_load(const struct tensor_view *t, size_t i)
{
    return quant_load(tensor_view_storage(t), t->data, i);
}

static bool same_layout(const struct tensor_view *t, const struct mlc_output *o)
{
    if (t->ndim != o->ndim || t->dtype != o->dtype) return false;
    for (int i = 0; i < o->ndim; i++)
        if (t->shape[i] != o->shape[i]) return false;
    return true;
}

/* The kernels' view of a bound weight. */
static int describe(struct bound_weight *w)
{
    struct kmat *m = &w->m;
    const struct tensor_view *t = w->parts[0];
    const struct quant_scheme *s = w->scheme;
    memset(m, 0, sizeof *m);
    m->rows = w->rows;
    m->cols = w->cols;
    m->data = t->data;
    m->scale = 1.0f;
    m->scheme = s;
    if (!w->quantized) {
        switch (tensor_view_storage(t)) {
        case DT_F32: m->fmt = KF_F32; return 0;
        case DT_F16: m->fmt = KF_F16; return 0;
        case DT_BF16: m->fmt = KF_BF16; return 0;
        default: return fail("%s: %s weights cannot be computed with", w->name, dtype_name(t->dtype));
        }
    }
    if (s->kind == QUANT_GROUP) {
        if (s->bits != 4 && s->bits != 3) return fail("%s: %d-bit groups are not supported", w->name, s->bits);
        m->fmt = s->bits == 4 ? (w->transposed ? KF_Q4_KN : KF_Q4_NK) : (w->transposed ? KF_Q3_KN : KF_Q3_NK);
        m->scales = w->parts[1]->data;
        m->scale_dtype = tensor_view_storage(w->parts[1]);
        return 0;
    }
    m->fmt = s->storage_dtype == DT_F8_E4M3 ? KF_E4M3 : KF_E5M2;
    if (s->use_scale) m->scale = tensor_view_load(w->parts[1], 0);
    m->act_scale = w->act_scale;
    /* a calibration build: e4m3 weights with scales and no stored activation scale */
    w->measures_activation = s->use_scale && !s->calibration_scale;
    return 0;
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
            float c = tensor_view_load(t, 0);
            if (!isfinite(c) || c <= 0)
                return fail("parameter %s is uncalibrated (%g): FP8 activation scales come from calibration; "
                            "this model cannot run until they are measured",
                            out[i].name, c);
            w->act_scale = c;
        }
    }
    return describe(w);
}

void weight_row(const struct bound_weight *w, int64_t n, float *out)
{
    kmat_dequant_row(&w->m, n, out);
}

void weight_vector(const struct bound_weight *w, float *out)
{
    const struct tensor_view *t = w->parts[0];
    for (int64_t i = 0; i < w->rows; i++) out[i] = tensor_view_load(t, (size_t)i);
}

bool weight_quantizes_activation(const struct bound_weight *w)
{
    return w->quantized && w->scheme->kind == QUANT_PER_TENSOR;
}

static float fp8_round(const struct quant_scheme *s, float v)
{
    return s->storage_dtype == DT_F8_E4M3 ? fp8_e4m3_to_f32(fp8_e4m3_from_f32(v))
                                          : fp8_e5m2_to_f32(fp8_e5m2_from_f32(v));
}

void weight_quantize_activation(const struct bound_weight *w, float scale, const float *x, int64_t n, float *out)
{
    const struct quant_scheme *s = w->scheme;
    if (w->act_scale > 0) {
        float c = w->act_scale;
        for (int64_t i = 0; i < n; i++) out[i] = fp8_round(s, x[i] / c);
    } else if (w->measures_activation) {
        for (int64_t i = 0; i < n; i++) out[i] = fp8_round(s, x[i] / scale) * scale;
    } else {
        for (int64_t i = 0; i < n; i++) out[i] = fp8_round(s, x[i]);
    }
}

float weight_activation_statistic(const struct quant_scheme *s, float maxabs)
{
    if (isnan(maxabs)) return maxabs;
    float m16 = f16_to_f32(f32_to_f16(maxabs));
    /* float16 division: the float32 quotient of two float16 values rounds
     * to float16 as the float16 quotient would (24 >= 2 * 11 + 2 bits) */
    float scaled = f16_to_f32(f32_to_f16(m16 / s->fp8_max));
    float floor_v = f16_to_f32(f32_to_f16((float)(1.0 / ((double)s->fp8_max * 512.0))));
    return scaled > floor_v ? scaled : floor_v;
}
