#include "formats/tensor_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "formats/dtype.h"
#include "formats/hf_source.h"
#include "formats/param_map.h"
#include "formats/quant.h"
#include "formats/tensor_cache.h"
#include "formats/tensor_inspect.h"
#include "formats/weight_config.h"

/* The running comparison of a dequantized tensor with its source. */
struct compare {
    const float *source;         /* NULL: nothing to compare with */
    size_t at, n;
    double sum_sq_err, sum_sq_src, max_err;
};

static void compare_values(const float *v, size_t n, void *ctx)
{
    struct compare *c = ctx;
    for (size_t i = 0; i < n && c->source && c->at < c->n; i++, c->at++) {
        double e = (double)v[i] - (double)c->source[c->at];
        c->sum_sq_err += e * e;
        c->sum_sq_src += (double)c->source[c->at] * c->source[c->at];
        if (fabs(e) > c->max_err || isnan(e)) c->max_err = fabs(e);
    }
}

/* The source tensor of parameter p as float32, its sources stacked along
 * the first axis; NULL (with a message) when the source lacks one. */
static float *load_source(struct hf_source *src, const struct mlc_param *p, size_t *numel)
{
    const struct hf_tensor *t[PM_MAX_SOURCES];
    size_t total = 0;
    for (int s = 0; s < p->nsources; s++) {
        t[s] = hf_source_find(src, p->sources[s]);
        if (!t[s]) return fail("%s: the source has no tensor %s", src->dir, p->sources[s]), NULL;
        if (t[s]->dtype == DT_INVALID)
            return fail("%s: %s is %s, not a float tensor", src->dir, p->sources[s], t[s]->dtype_label), NULL;
        total += (size_t)t[s]->numel;
    }
    float *out = xmalloc((total + 1) * sizeof *out);
    size_t at = 0;
    for (int s = 0; s < p->nsources; s++) {
        struct hf_data d;
        if (hf_tensor_data(src, t[s], &d) != 0) {
            free(out);
            return NULL;
        }
        quant_convert_ref(t[s]->dtype, d.data, DT_F32, out + at, (size_t)t[s]->numel);
        at += (size_t)t[s]->numel;
        hf_tensor_release(src, t[s], &d);
    }
    *numel = total;
    return out;
}

static void add_row(struct buf *out, const char *name, const char *scheme, int64_t rows, int64_t cols,
                    uint64_t bytes, const struct compare *c, bool compared)
{
    char shape[48] = "";
    if (rows < 0) snprintf(shape, sizeof shape, "-");
    else if (cols > 1) snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)rows, (long long)cols);
    else snprintf(shape, sizeof shape, "[%lld]", (long long)rows);
    buf_printf(out, "%-52s %-14s %-14s %12llu", name, scheme, shape, (unsigned long long)bytes);
    if (compared && c->at) {
        double rms = sqrt(c->sum_sq_err / (double)c->at), src = sqrt(c->sum_sq_src / (double)c->at);
        buf_printf(out, " %12.4e %12.4e %10.4f%%", rms, c->max_err, src > 0 ? 100 * rms / src : 0.0);
    }
    buf_addc(out, '\n');
}

int tensor_report(const char *dir, const char *source, struct buf *out)
{
    char *cfg_path = path_join(dir, "mlc-chat-config.json");
    struct weight_config wc;
    int rc = weight_config_load(&wc, cfg_path);
    free(cfg_path);
    if (rc != 0) return -1;
    const struct quant_scheme *s = quant_scheme_by_name(wc.quantization);
    struct param_map pm = {0};
    struct tensor_cache tc;
    struct hf_source src;
    bool have_tc = false, have_src = false;
    rc = -1;
    if (!s) {
        fail("%s: quantization '%s' is not a scheme mlc-quant writes", dir, wc.quantization);
        goto out;
    }
    if (param_map_build(&pm, &wc) != 0) goto out;
    if (tensor_cache_open(&tc, dir) != 0) goto out;
    have_tc = true;
    if (tensor_cache_validate(&tc, false) != 0) goto out;
    if (source) {
        if (hf_source_open(&src, source, HF_AUTO) != 0) goto out;
        have_src = true;
    }
    buf_printf(out, "%-52s %-14s %-14s %12s", "parameter", "stored as", "shape", "bytes");
    if (source) buf_printf(out, " %12s %12s %11s", "rms error", "max error", "rms/source");
    buf_addc(out, '\n');
    struct compare all = {0};
    uint64_t total_bytes = 0;
    for (size_t i = 0; i < pm.nparams; i++) {
        const struct mlc_param *p = &pm.params[i];
        struct compare c = {0};
        size_t numel = 0;
        float *ref = NULL;
        if (have_src && !(ref = load_source(&src, p, &numel))) goto out;
        c.source = ref;
        c.n = numel;
        char *base = xstrdup(p->name);
        size_t n = strlen(base);
        if (n > 7 && !strcmp(base + n - 7, ".weight")) base[n - 7] = 0;
        char *qn = xasprintf("%s.q_weight", base);
        const struct tc_record *plain = tensor_cache_find(&tc, p->name);
        int r = 0;
        if (tensor_cache_find(&tc, qn)) {
            struct dequant_info di;
            int64_t k = p->ndim == 2 ? p->shape[1] : -1;
            r = tensor_dequantize(&tc, base, s, k, &di, compare_values, &c);
            if (r == 0) {
                uint64_t bytes = di.q_weight->nbytes + (di.q_scale ? di.q_scale->nbytes : 0) +
                                 (di.calibration ? di.calibration->nbytes : 0);
                if (ref && numel != (size_t)(di.rows * di.cols))
                    r = fail("%s: %s has %zu values in the source but %lld stored", dir, p->name, numel,
                             (long long)(di.rows * di.cols));
                else add_row(out, p->name, s->name, di.rows, di.cols, bytes, &c, have_src);
                total_bytes += bytes;
            }
        } else if (plain) {
            size_t count = (size_t)tc_record_numel(plain);
            float *v = xmalloc((count + 1) * sizeof *v);
            r = tensor_cache_read_f32(&tc, plain, v);
            if (r == 0 && ref && numel != count)
                r = fail("%s: %s has %zu values in the source but %zu stored", dir, p->name, numel, count);
            if (r == 0) {
                compare_values(v, count, &c);
                add_row(out, p->name, plain->dtype_name, plain->shape[0], plain->ndim > 1 ? plain->shape[1] : 1,
                        plain->nbytes, &c, have_src);
                total_bytes += plain->nbytes;
            }
            free(v);
        } else {
            r = fail("%s: the tensor cache holds neither %s nor %s", dir, p->name, qn);
        }
        all.at += c.at;
        all.sum_sq_err += c.sum_sq_err;
        all.sum_sq_src += c.sum_sq_src;
        if (c.max_err > all.max_err) all.max_err = c.max_err;
        free(qn);
        free(base);
        free(ref);
        if (r != 0) goto out;
    }
    char label[64];
    snprintf(label, sizeof label, "total (%zu parameters)", pm.nparams);
    add_row(out, label, s->name, -1, 1, total_bytes, &all, have_src);
    rc = 0;
out:
    if (have_src) hf_source_close(&src);
    if (have_tc) tensor_cache_close(&tc);
    param_map_free(&pm);
    weight_config_free(&wc);
    return rc;
}
