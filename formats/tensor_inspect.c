#include "formats/tensor_inspect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "formats/param_map.h"
#include "formats/quant.h"
#include "formats/tensor_cache.h"
#include "formats/weight_config.h"

struct stats {
    uint64_t n, nan, inf, zeros;
    double min, max, sum, sum_sq, absmax;
    float first[8];
    int nfirst;
};

static void stats_add(struct stats *s, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s->nfirst < 8) s->first[s->nfirst++] = v[i];
        s->n++;
        if (isnan(v[i])) {
            s->nan++;
            continue;
        }
        if (isinf(v[i])) {
            s->inf++;
            continue;
        }
        double x = v[i];
        if (x == 0) s->zeros++;
        if (s->n - s->nan - s->inf == 1 || x < s->min) s->min = x;
        if (s->n - s->nan - s->inf == 1 || x > s->max) s->max = x;
        if (fabs(x) > s->absmax) s->absmax = fabs(x);
        s->sum += x;
        s->sum_sq += x * x;
    }
}

static void stats_print(const struct stats *s, struct buf *out)
{
    uint64_t finite = s->n - s->nan - s->inf;
    double mean = finite ? s->sum / (double)finite : 0;
    double var = finite ? s->sum_sq / (double)finite - mean * mean : 0;
    buf_printf(out, "count: %llu\n", (unsigned long long)s->n);
    buf_printf(out, "min: %.6g\nmax: %.6g\nmean: %.6g\nstd: %.6g\nabsmax: %.6g\n", s->min, s->max, mean,
               var > 0 ? sqrt(var) : 0.0, s->absmax);
    buf_printf(out, "zeros: %llu\nnan: %llu\ninf: %llu\nfirst:", (unsigned long long)s->zeros,
               (unsigned long long)s->nan, (unsigned long long)s->inf);
    for (int i = 0; i < s->nfirst; i++) buf_printf(out, " %.6g", s->first[i]);
    buf_addc(out, '\n');
}

static void shape_line(struct buf *out, const char *key, const struct tensor_cache *tc, const struct tc_record *r)
{
    buf_printf(out, "%s: [", key);
    for (int i = 0; i < r->ndim; i++) buf_printf(out, "%s%lld", i ? ", " : "", (long long)r->shape[i]);
    buf_printf(out, "] %s (%s in %s at byte %llu, %llu bytes)\n", r->dtype_name, r->name,
               tc->shards[r->shard].data_path, (unsigned long long)r->byte_offset, (unsigned long long)r->nbytes);
}

/* "x" + suffix */
static char *joined(const char *base, const char *suffix)
{
    return xasprintf("%s%s", base, suffix);
}

/* The parameter's true K from the configuration, when there is one. */
static int64_t config_k(const char *dir, const char *param_name)
{
    char *path = path_join(dir, "mlc-chat-config.json");
    struct weight_config c;
    int64_t k = -1;
    if (path_exists(path) && weight_config_load(&c, path) == 0) {
        struct param_map m;
        if (param_map_build(&m, &c) == 0) {
            for (size_t i = 0; i < m.nparams; i++)
                if (!strcmp(m.params[i].name, param_name) && m.params[i].ndim == 2) k = m.params[i].shape[1];
            param_map_free(&m);
        }
        weight_config_free(&c);
    }
    free(path);
    return k;
}

static const struct quant_scheme *scheme_of(const char *dir, const char *name)
{
    if (name) {
        const struct quant_scheme *s = quant_scheme_by_name(name);
        if (!s) fail("unknown quantization scheme '%s' (%s)", name, quant_scheme_names());
        return s;
    }
    char *path = path_join(dir, "mlc-chat-config.json");
    const struct quant_scheme *s = NULL;
    json_t *root = path_exists(path) ? json_load_path(path) : NULL;
    const char *q;
    if (root && json_opt_str(root, "quantization", &q, path) == 1) {
        s = quant_scheme_by_name(q);
        if (!s) fail("%s: quantization '%s' is not a known scheme", path, q);
    } else {
        fail("%s: no mlc-chat-config.json to tell the scheme; give --scheme NAME", dir);
    }
    if (root) json_decref(root);
    free(path);
    return s;
}

int tensor_dequantize(struct tensor_cache *tc, const char *base, const struct quant_scheme *s, int64_t k_cfg,
                      struct dequant_info *info, tensor_values_fn fn, void *ctx)
{
    char *qn = joined(base, ".q_weight"), *sn = joined(base, ".q_scale");
    const struct tc_record *q = tensor_cache_find(tc, qn), *sc = tensor_cache_find(tc, sn);
    int rc = -1;
    float *row = NULL, *scales_f32 = NULL;
    memset(info, 0, sizeof *info);
    info->q_weight = q;
    info->q_scale = sc;
    const void *qd, *sd = NULL;
    if (!q) {
        fail("%s: no tensor %s", tc->json_path, qn);
        goto out;
    }
    if (tensor_cache_raw(tc, q, &qd) != 0 || (sc && tensor_cache_raw(tc, sc, &sd) != 0)) goto out;
    if (s->kind == QUANT_GROUP) {
        if (!sc || q->ndim != 2 || sc->ndim != 2 || q->dtype != DT_U32) {
            fail("%s: not a group-quantized weight (%s)", base, s->name);
            goto out;
        }
        bool kn = sc->shape[1] == q->shape[1] && q->shape[0] != sc->shape[0];
        int64_t n = kn ? q->shape[1] : q->shape[0], g = kn ? sc->shape[0] : sc->shape[1];
        int64_t k = k_cfg > 0 ? k_cfg : g * s->group_size;
        if ((int64_t)quant_groups(s, (size_t)k) != g || (int64_t)quant_row_words(s, (size_t)k) != (kn ? q->shape[0] : q->shape[1])) {
            fail("%s: shapes do not fit %s with K = %lld", base, s->name, (long long)k);
            goto out;
        }
        info->rows = n;
        info->cols = k;
        info->kn = kn;
        row = xmalloc((size_t)k * sizeof *row);
        size_t wpr = quant_row_words(s, (size_t)k), spr = quant_groups(s, (size_t)k), ss = dtype_size(s->model_dtype);
        if (s->model_dtype == DT_F32) {
            /* float32 scales are stored as bf16: decode them once */
            scales_f32 = xmalloc(((size_t)tc_record_numel(sc) + 1) * sizeof *scales_f32);
            if (tensor_cache_read_f32(tc, sc, scales_f32) != 0) goto out;
            sd = scales_f32;
        }
        for (int64_t r = 0; r < n; r++) {
            if (kn)
                quant_dequant_row_kn(s, qd, sd, (size_t)n, (size_t)k, (size_t)r, row);
            else
                quant_dequant_row_nk(s, (const uint32_t *)qd + (size_t)r * wpr, (const char *)sd + (size_t)r * spr * ss,
                                     (size_t)k, row);
            fn(row, (size_t)k, ctx);
        }
    } else if (s->kind == QUANT_PER_TENSOR) {
        float scale = 1.0f;
        if (sc && tensor_cache_read_f32(tc, sc, &scale) != 0) goto out;
        info->scale = scale;
        info->rows = q->shape[0];
        info->cols = q->ndim > 1 ? q->shape[1] : 1;
        char *cn = joined(base, ".q_calibration_scale");
        info->calibration = tensor_cache_find(tc, cn);
        free(cn);
        uint64_t total = tc_record_numel(q);
        row = xmalloc(4096 * sizeof *row);
        for (uint64_t i = 0; i < total; i += 4096) {
            size_t m = total - i < 4096 ? (size_t)(total - i) : 4096;
            quant_fp8_dequant(s, (const uint8_t *)qd + i, m, scale, row);
            fn(row, m, ctx);
        }
    } else {
        fail("%s: scheme %s does not quantize weights", base, s->name);
        goto out;
    }
    rc = 0;
out:
    free(row);
    free(scales_f32);
    free(qn);
    free(sn);
    return rc;
}

static void add_to_stats(const float *v, size_t n, void *ctx)
{
    stats_add(ctx, v, n);
}

static int inspect_quantized(struct tensor_cache *tc, const char *dir, const char *base, const char *scheme_name,
                             struct buf *out)
{
    const struct quant_scheme *s = scheme_of(dir, scheme_name);
    if (!s) return -1;
    char *param = joined(base, ".weight");
    int64_t k_cfg = config_k(dir, param);
    free(param);
    struct stats st = {0};
    struct dequant_info di;
    if (tensor_dequantize(tc, base, s, k_cfg, &di, add_to_stats, &st) != 0) return -1;
    buf_printf(out, "name: %s\n", base);
    if (s->kind == QUANT_GROUP) {
        buf_printf(out, "scheme: %s (int%d, group %d, %s layout)\n", s->name, s->bits, s->group_size,
                   di.kn ? "KN" : "NK");
        buf_printf(out, "shape: [%lld, %lld] dequantized%s\n", (long long)di.rows, (long long)di.cols,
                   k_cfg > 0 ? "" : " (K assumed a multiple of the group size: no configuration)");
        shape_line(out, "q_weight", tc, di.q_weight);
        shape_line(out, "q_scale", tc, di.q_scale);
    } else {
        buf_printf(out, "scheme: %s (per-tensor %s, scale %.6g)\n", s->name, dtype_name(s->storage_dtype), di.scale);
        shape_line(out, "q_weight", tc, di.q_weight);
        if (di.calibration) {
            float c;
            if (tensor_cache_read_f32(tc, di.calibration, &c) != 0) return -1;
            buf_printf(out, "calibration: %s\n", isnan(c) ? "uncalibrated (NaN placeholder)" : "calibrated");
        }
    }
    buf_printf(out, "dtype: %s\n", dtype_name(s->model_dtype));
    stats_print(&st, out);
    return 0;
}

int tensor_inspect(const char *dir, const char *name, const char *scheme, struct buf *out)
{
    struct tensor_cache tc;
    if (tensor_cache_open(&tc, dir) != 0) return -1;
    int rc = -1;
    if (tensor_cache_validate(&tc, true) != 0) goto out;
    /* a quantized parameter by any of its names */
    char *base = xstrdup(name);
    static const char *const suffixes[] = {".weight", ".q_weight", ".q_scale", ".q_calibration_scale"};
    const struct tc_record *plain = tensor_cache_find(&tc, name);
    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(base), m = strlen(suffixes[i]);
        if (n > m && !strcmp(base + n - m, suffixes[i])) {
            base[n - m] = 0;
            break;
        }
    }
    char *qn = joined(base, ".q_weight");
    bool quantized = tensor_cache_find(&tc, qn) != NULL;
    free(qn);
    if (quantized) {
        rc = inspect_quantized(&tc, dir, base, scheme, out);
    } else if (plain) {
        buf_printf(out, "name: %s\n", plain->name);
        shape_line(out, "shape", &tc, plain);
        buf_printf(out, "dtype: %s\n", plain->dtype_name);
        float *v = xmalloc(((size_t)tc_record_numel(plain) + 1) * sizeof *v);
        if (tensor_cache_read_f32(&tc, plain, v) == 0) {
            struct stats st = {0};
            stats_add(&st, v, (size_t)tc_record_numel(plain));
            stats_print(&st, out);
            rc = 0;
        }
        free(v);
    } else {
        fail("%s: no tensor '%s' in %s", dir, name, path_basename(tc.json_path));
    }
    free(base);
out:
    tensor_cache_close(&tc);
    return rc;
}
