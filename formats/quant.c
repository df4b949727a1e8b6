/* Scheme table and scalar reference arithmetic (see quant.h). */
#include "formats/quant.h"

#include <math.h>
#include <string.h>

#define GROUP(n, b, gs, md, lay, emb, fc)                                                  \
    {.name = n, .kind = QUANT_GROUP, .model_dtype = md, .bits = b, .group_size = gs,       \
     .elems_per_word = 32 / (b), .words_per_group = (gs) / (32 / (b)),                     \
     .max_int = (1 << ((b) - 1)) - 1, .layout = lay, .quantize_embedding = emb,            \
     .quantize_final_fc = fc, .storage_dtype = DT_U32}
#define NOQUANT(n, md) {.name = n, .kind = QUANT_NONE, .model_dtype = md, .storage_dtype = md}
#define FP8(n, st, scale, calib, mx)                                                       \
    {.name = n, .kind = QUANT_PER_TENSOR, .model_dtype = DT_F16, .storage_dtype = st,      \
     .use_scale = scale, .calibration_scale = calib, .fp8_max = mx, .layout = QUANT_NK}

/* MLC-LLM's python/mlc_llm/quantization/quantization.py, minus AWQ and FT. */
static const struct quant_scheme schemes[] = {
    NOQUANT("q0f16", DT_F16),
    NOQUANT("q0bf16", DT_BF16),
    NOQUANT("q0f32", DT_F32),
    GROUP("q3f16_0", 3, 40, DT_F16, QUANT_KN, true, true),
    GROUP("q3f16_1", 3, 40, DT_F16, QUANT_NK, true, true),
    GROUP("q4f16_0", 4, 32, DT_F16, QUANT_KN, true, true),
    GROUP("q4f16_1", 4, 32, DT_F16, QUANT_NK, true, true),
    GROUP("q4bf16_0", 4, 32, DT_BF16, QUANT_KN, true, true),
    GROUP("q4bf16_1", 4, 32, DT_BF16, QUANT_NK, true, true),
    GROUP("q4f32_1", 4, 32, DT_F32, QUANT_NK, true, true),
    GROUP("q4f16_2", 4, 32, DT_F16, QUANT_NK, false, false),
    FP8("e5m2_e5m2_f16", DT_F8_E5M2, false, false, 57344.0f),
    FP8("e4m3_e4m3_f16", DT_F8_E4M3, true, true, 448.0f),
    FP8("e4m3_e4m3_f16_max_calibrate", DT_F8_E4M3, true, false, 448.0f),
};
#define NSCHEMES (sizeof schemes / sizeof schemes[0])

const struct quant_scheme *quant_scheme_by_name(const char *name)
{
    for (size_t i = 0; i < NSCHEMES; i++)
        if (!strcmp(schemes[i].name, name)) return &schemes[i];
    return NULL;
}

size_t quant_scheme_count(void)
{
    return NSCHEMES;
}

const struct quant_scheme *quant_scheme_at(size_t i)
{
    return i < NSCHEMES ? &schemes[i] : NULL;
}

const char *quant_scheme_names(void)
{
    static char names[512];
    if (!names[0]) {
        size_t len = 0;
        for (size_t i = 0; i < NSCHEMES; i++) {
            size_t n = strlen(schemes[i].name);
            if (len + n + 3 >= sizeof names) break;
            if (i) names[len++] = ',', names[len++] = ' ';
            memcpy(names + len, schemes[i].name, n);
            len += n;
        }
        names[len] = 0;
    }
    return names;
}

size_t quant_groups(const struct quant_scheme *s, size_t k)
{
    return (k + (size_t)s->group_size - 1) / (size_t)s->group_size;
}

size_t quant_row_words(const struct quant_scheme *s, size_t k)
{
    return quant_groups(s, k) * (size_t)s->words_per_group;
}

/* ---- element conversions ---- */

float quant_load(enum dtype t, const void *data, size_t i)
{
    uint16_t h;
    float f;
    switch (t) {
    case DT_F32: memcpy(&f, (const char *)data + 4 * i, 4); return f;
    case DT_F16: memcpy(&h, (const char *)data + 2 * i, 2); return f16_to_f32(h);
    case DT_BF16: memcpy(&h, (const char *)data + 2 * i, 2); return bf16_to_f32(h);
    default: return NAN;
    }
}

float quant_round(enum dtype model, float v)
{
    switch (model) {
    case DT_F16: return f16_to_f32(f32_to_f16(v));
    case DT_BF16: return bf16_to_f32(f32_to_bf16(v));
    default: return v;
    }
}

void quant_store(enum dtype t, void *data, size_t i, float v)
{
    uint16_t h;
    switch (t) {
    case DT_F32: memcpy((char *)data + 4 * i, &v, 4); break;
    case DT_F16: h = f32_to_f16(v); memcpy((char *)data + 2 * i, &h, 2); break;
    case DT_BF16: h = f32_to_bf16(v); memcpy((char *)data + 2 * i, &h, 2); break;
    default: break;
    }
}

void quant_convert_ref(enum dtype src_t, const void *src, enum dtype dst_t, void *dst, size_t n)
{
    if (src_t == dst_t) {
        memcpy(dst, src, n * dtype_size(src_t));
        return;
    }
    for (size_t i = 0; i < n; i++) quant_store(dst_t, dst, i, quant_load(src_t, src, i));
}

/* ---- the model-dtype arithmetic ---- */

/* Result of one arithmetic op: float16 rounds after every op; bfloat16 and
 * float32 compute in float32 (TVM's bf16 legalization). */
static inline float op_round(enum dtype model, float v)
{
    return model == DT_F16 ? f16_to_f32(f32_to_f16(v)) : v;
}

/* Rounding when a value is stored into a model-dtype buffer. TVM's bf16
 * storage conversion is a plain round-to-nearest-even on the bits, without
 * NaN special-casing. */
static inline float store_round(enum dtype model, float v)
{
    if (model == DT_F16) return f16_to_f32(f32_to_f16(v));
    if (model == DT_BF16) {
        uint32_t x = f32_bits(v);
        x += 0x7fff + ((x >> 16) & 1);
        return f32_from_bits(x & 0xffff0000u);
    }
    return v;
}

/* Store a value already rounded by store_round() (bit-exact, NaN payloads
 * included). */
static inline void store_scale(enum dtype model, void *scales, size_t g, float v)
{
    if (model == DT_F32) {
        memcpy((char *)scales + 4 * g, &v, 4);
    } else {
        uint16_t h = model == DT_F16 ? f32_to_f16(v) : (uint16_t)(f32_bits(v) >> 16);
        memcpy((char *)scales + 2 * g, &h, 2);
    }
}

/* te.min_value(model dtype): the identity of the max reduction and the value
 * of padding positions. */
static float lowest(enum dtype model)
{
    if (model == DT_F16) return -65504.0f;
    if (model == DT_BF16) return bf16_to_f32(0xff7f);
    return -3.40282347e38f;
}

/* TVM's Max: a > b ? a : b (so a NaN second operand wins, a NaN first
 * operand loses). */
static inline float tvm_max(float a, float b)
{
    return a > b ? a : b;
}

static inline float tvm_min(float a, float b)
{
    return a < b ? a : b;
}

void quant_group_row_ref(const struct quant_scheme *s, const float *w, size_t k,
                         uint32_t *q_words, void *scales)
{
    const enum dtype md = s->model_dtype;
    const size_t gs = (size_t)s->group_size, ng = quant_groups(s, k);
    const size_t epw = (size_t)s->elems_per_word, nwords = quant_row_words(s, k);
    const float max_int = (float)s->max_int, top = (float)(2 * s->max_int);
    memset(q_words, 0, nwords * sizeof *q_words);
    for (size_t g = 0; g < ng; g++) {
        float acc = lowest(md);
        for (size_t r = 0; r < gs; r++) {
            size_t j = g * gs + r;
            acc = tvm_max(acc, j < k ? fabsf(w[j]) : lowest(md));
        }
        float scale = store_round(md, acc / max_int);
        store_scale(md, scales, g, scale);
        for (size_t r = 0; r < gs; r++) {
            size_t j = g * gs + r;
            if (j >= k) break;
            float t = op_round(md, w[j] / scale);
            float u = op_round(md, t + max_int);
            float c = tvm_min(tvm_max(rintf(u), 0.0f), top);
            uint32_t q = (uint32_t)c;
            q_words[j / epw] |= q << ((j % epw) * (size_t)s->bits);
        }
    }
}

static inline float scale_at(enum dtype t, const void *scales, size_t g)
{
    return quant_load(t, scales, g);
}

static inline float dequant_one(enum dtype md, uint32_t q, int max_int, float scale)
{
    float v = ((float)q - (float)max_int) * scale;
    return md == DT_F16 ? f16_to_f32(f32_to_f16(v)) : v;
}

void quant_dequant_row_nk_scales(const struct quant_scheme *s, const uint32_t *q_row, const void *scales,
                                 enum dtype scale_dtype, size_t k, float *out)
{
    const size_t epw = (size_t)s->elems_per_word, gs = (size_t)s->group_size;
    const uint32_t mask = (1u << s->bits) - 1;
    for (size_t j = 0; j < k; j++) {
        uint32_t q = (q_row[j / epw] >> ((j % epw) * (size_t)s->bits)) & mask;
        out[j] = dequant_one(s->model_dtype, q, s->max_int, scale_at(scale_dtype, scales, j / gs));
    }
}

void quant_dequant_row_nk(const struct quant_scheme *s, const uint32_t *q_row, const void *scales,
                          size_t k, float *out)
{
    quant_dequant_row_nk_scales(s, q_row, scales, s->model_dtype, k, out);
}

void quant_dequant_row_kn_scales(const struct quant_scheme *s, const uint32_t *q_weight, const void *q_scale,
                                 enum dtype scale_dtype, size_t n_total, size_t k, size_t n, float *out)
{
    const size_t epw = (size_t)s->elems_per_word, gs = (size_t)s->group_size;
    const uint32_t mask = (1u << s->bits) - 1;
    for (size_t j = 0; j < k; j++) {
        uint32_t q = (q_weight[(j / epw) * n_total + n] >> ((j % epw) * (size_t)s->bits)) & mask;
        float scale = scale_at(scale_dtype, q_scale, (j / gs) * n_total + n);
        out[j] = dequant_one(s->model_dtype, q, s->max_int, scale);
    }
}

void quant_dequant_row_kn(const struct quant_scheme *s, const uint32_t *q_weight, const void *q_scale,
                          size_t n_total, size_t k, size_t n, float *out)
{
    quant_dequant_row_kn_scales(s, q_weight, q_scale, s->model_dtype, n_total, k, n, out);
}

/* ---- FP8 ---- */

/* Round |v| (finite, not NaN) to a format with `man` mantissa bits, exponent
 * bias `bias`, and largest finite magnitude code `max_code`; returns the
 * magnitude code. Works in double so every step is exact. */
static uint8_t fp8_magnitude(float av, int man, int bias, uint8_t max_code, float max_val)
{
    if (!(av < max_val)) return max_code; /* saturate (also +inf) */
    int min_exp = 1 - bias;                 /* exponent of the smallest normal */
    if (av == 0) return 0;
    int e;
    frexp((double)av, &e);                   /* av = m * 2^e, m in [0.5, 1) */
    int exp = e - 1;                         /* av = 1.x * 2^exp */
    if (exp < min_exp) exp = min_exp;        /* subnormal range: fixed quantum */
    double quantum = ldexp(1.0, exp - man);
    double units = (double)av / quantum;     /* exact: av has 24 bits */
    double r = nearbyint(units);             /* ties to even (default mode) */
    double val = r * quantum;
    if (val > (double)max_val) return max_code;
    /* encode val */
    if (val == 0) return 0;
    int ve;
    frexp(val, &ve);
    int vexp = ve - 1;
    if (vexp < min_exp) /* subnormal */
        return (uint8_t)(val / ldexp(1.0, min_exp - man));
    uint32_t mant = (uint32_t)(val / ldexp(1.0, vexp - man)) - (1u << man);
    return (uint8_t)(((uint32_t)(vexp + bias) << man) | mant);
}

uint8_t fp8_e4m3_from_f32(float v)
{
    uint8_t sign = signbit(v) ? 0x80 : 0;
    if (isnan(v)) return sign | 0x7f;
    return sign | fp8_magnitude(fabsf(v), 3, 7, 0x7e, 448.0f);
}

uint8_t fp8_e5m2_from_f32(float v)
{
    uint8_t sign = signbit(v) ? 0x80 : 0;
    if (isnan(v)) return sign | 0x7e;
    return sign | fp8_magnitude(fabsf(v), 2, 15, 0x7b, 57344.0f);
}

float fp8_e4m3_to_f32(uint8_t b)
{
    int e = (b >> 3) & 0xf, m = b & 7;
    float v;
    if (e == 0xf && m == 7) v = NAN;
    else if (e == 0) v = ldexpf((float)m, -9);
    else v = ldexpf((float)(8 + m), e - 10);
    return (b & 0x80) ? -v : v;
}

float fp8_e5m2_to_f32(uint8_t b)
{
    int e = (b >> 2) & 0x1f, m = b & 3;
    float v;
    if (e == 0x1f) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexpf((float)m, -16);
    else v = ldexpf((float)(4 + m), e - 17);
    return (b & 0x80) ? -v : v;
}

float quant_maxabs_ref(enum dtype model, const float *w, size_t n)
{
    float acc = lowest(model);
    for (size_t i = 0; i < n; i++) acc = tvm_max(acc, fabsf(w[i]));
    return acc;
}

float quant_fp8_scale(const struct quant_scheme *s, float maxabs)
{
    /* float16 arithmetic: maxabs / max rounded to f16, floor constant
     * 1/(max*512) rounded to f16 (as TVM makes the constant) */
    float scaled = f16_to_f32(f32_to_f16(maxabs / s->fp8_max));
    float floor_v = f16_to_f32(f32_to_f16((float)(1.0 / ((double)s->fp8_max * 512.0))));
    return tvm_max(scaled, floor_v);
}

void quant_fp8_ref(const struct quant_scheme *s, const float *w, size_t n, float scale, uint8_t *out)
{
    bool e4m3 = s->storage_dtype == DT_F8_E4M3;
    for (size_t i = 0; i < n; i++) {
        float v = s->use_scale ? w[i] / scale : w[i];
        out[i] = e4m3 ? fp8_e4m3_from_f32(v) : fp8_e5m2_from_f32(v);
    }
}

void quant_fp8_dequant(const struct quant_scheme *s, const uint8_t *q, size_t n, float scale, float *out)
{
    bool e4m3 = s->storage_dtype == DT_F8_E4M3;
    float sc = s->use_scale ? f16_to_f32(f32_to_f16(scale)) : 1.0f;
    for (size_t i = 0; i < n; i++) {
        float v = e4m3 ? fp8_e4m3_to_f32(q[i]) : fp8_e5m2_to_f32(q[i]);
        out[i] = s->use_scale ? f16_to_f32(f32_to_f16(v * sc)) : v;
    }
}
