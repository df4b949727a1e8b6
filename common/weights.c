#include "common/weights.h"
#include "common/buf.h"
#include "common/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

float fp8_e4m3_to_f32(uint8_t b)
{
    int sign = b >> 7, exp = (b >> 3) & 0xf, mant = b & 7;
    float v;
    if (exp == 0xf && mant == 7) return NAN; /* e4m3fn has no infinities */
    if (exp == 0) v = ldexpf((float)mant / 8.0f, -6);
    else v = ldexpf(1.0f + (float)mant / 8.0f, exp - 7);
    return sign ? -v : v;
}

float fp8_e5m2_to_f32(uint8_t b)
{
    return f16_to_f32((uint16_t)(b << 8)); /* e5m2 is the top byte of a half */
}

static float load_scalar(enum dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case DT_F32: return ((const float *)p)[i];
    case DT_F16: return f16_to_f32(((const uint16_t *)p)[i]);
    case DT_BF16: return bf16_to_f32(((const uint16_t *)p)[i]);
    case DT_F8_E4M3: return fp8_e4m3_to_f32(((const uint8_t *)p)[i]);
    case DT_F8_E5M2: return fp8_e5m2_to_f32(((const uint8_t *)p)[i]);
    default: return 0.0f;
    }
}

/* Dequantized values are rounded to the model dtype, as MLC's kernels
 * compute them in it. */
static float round_to(enum dtype dt, float v)
{
    if (dt == DT_F16) return f16_to_f32(f32_to_f16(v));
    if (dt == DT_BF16) return bf16_to_f32(f32_to_bf16(v));
    return v;
}

static bool shape_is(const struct tensor_view *t, const struct stored_part *p)
{
    if (t->ndim != p->ndim || t->dtype != p->dtype) return false;
    for (int i = 0; i < p->ndim; i++)
        if (t->shape[i] != p->shape[i]) return false;
    return true;
}

int weight_bind(struct bound_weight *w, const struct value *v, const char *quantization,
                const struct tensor_source *src)
{
    memset(w, 0, sizeof *w);
    w->name = v->name;
    const struct scheme_info *model_scheme = scheme_lookup(quantization);
    if (!model_scheme) return fail("quantization '%s' is not known", quantization);
    w->rows = v->dims[0].size;
    w->cols = v->ndim > 1 ? v->dims[1].size : 1;
    w->nparts = v->nparts;
    struct stored_part expect[WEIGHT_MAX_PARTS];
    int nexpect;
    if (!strcmp(v->scheme, "none")) {
        w->scheme = NULL;
        /* an unquantized matrix or vector in the model dtype */
        snprintf(expect[0].suffix, sizeof expect[0].suffix, "%s", "");
        expect[0].dtype = model_scheme->model_dtype;
        expect[0].ndim = v->ndim;
        expect[0].shape[0] = w->rows;
        expect[0].shape[1] = w->cols;
        nexpect = 1;
    } else {
        w->scheme = scheme_lookup(v->scheme);
        if (!w->scheme) return fail("%s: quantization scheme '%s' is not known", v->name, v->scheme);
        /* embeddings are stored row-major even under KN schemes */
        enum weight_role role = strstr(v->name, "embed_tokens") ? ROLE_EMBEDDING : ROLE_LINEAR;
        nexpect = weight_parts(w->scheme, role, w->rows, w->cols, expect);
        w->transposed = w->scheme->kind == SCHEME_GROUP && w->scheme->kn_layout && role == ROLE_LINEAR;
    }
    if (nexpect != v->nparts)
        return fail("%s: the plan names %d tensors, scheme %s stores %d", v->name, v->nparts, v->scheme, nexpect);
    for (int i = 0; i < v->nparts; i++) {
        const struct tensor_view *t = src->lookup(src->ctx, v->parts[i]);
        if (!t) return fail("parameter %s is not in the weights", v->parts[i]);
        if (!shape_is(t, &expect[i])) {
            char got[64], want[64];
            shape_format(got, sizeof got, t->ndim, t->shape);
            shape_format(want, sizeof want, expect[i].ndim, expect[i].shape);
            return fail("parameter %s is %s %s in the weights, the library expects %s %s", v->parts[i],
                        dtype_name(t->dtype), got, dtype_name(expect[i].dtype), want);
        }
        w->parts[i] = t;
    }
    return 0;
}

static void group_row(const struct bound_weight *w, int64_t n, float *out, bool transposed)
{
    const struct scheme_info *s = w->scheme;
    const uint32_t *q = w->parts[0]->data;
    const void *scales = w->parts[1]->data;
    enum dtype sdt = w->parts[1]->dtype;
    int bits = s->bits, epw = scheme_elems_per_word(s);
    int64_t K = w->cols, N = w->rows, G = scheme_groups(s, K);
    int64_t words = G * (s->group_size / epw);
    uint32_t mask = (1u << bits) - 1, max_int = (1u << (bits - 1)) - 1;
    for (int64_t k = 0; k < K; k++) {
        int64_t wi = k / epw, g = k / s->group_size;
        uint32_t word = transposed ? q[wi * N + n] : q[n * words + wi];
        uint32_t qv = (word >> ((k % epw) * bits)) & mask;
        float scale = load_scalar(sdt, scales, transposed ? g * N + n : n * G + g);
        out[k] = round_to(s->model_dtype, ((float)qv - (float)max_int) * scale);
    }
}

void weight_row(const struct bound_weight *w, int64_t n, float *out)
{
    const struct tensor_view *t = w->parts[0];
    if (!w->scheme) {
        int64_t K = w->cols;
        if (t->dtype == DT_F32) {
            memcpy(out, (const float *)t->data + n * K, sizeof *out * (size_t)K);
            return;
        }
        for (int64_t k = 0; k < K; k++) out[k] = load_scalar(t->dtype, t->data, n * K + k);
        return;
    }
    if (w->scheme->kind == SCHEME_GROUP) {
        group_row(w, n, out, w->transposed);
        return;
    }
    /* per-tensor FP8: value · scale (e5m2 has no scale) */
    float scale = w->scheme->fp8_scaled ? load_scalar(DT_F32, w->parts[1]->data, 0) : 1.0f;
    for (int64_t k = 0; k < w->cols; k++)
        out[k] = load_scalar(t->dtype, t->data, n * w->cols + k) * scale;
}

void weight_vector(const struct bound_weight *w, float *out)
{
    const struct tensor_view *t = w->parts[0];
    for (int64_t i = 0; i < w->rows; i++) out[i] = load_scalar(t->dtype, t->data, i);
}
