#include "common/engine/reference.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/lower/lower.h"
#include "common/lower/passes.h"
#include "formats/hf_source.h"
#include "formats/param_map.h"
#include "formats/quant.h"
#include "formats/weight_config.h"

#include <stdlib.h>
#include <string.h>

struct reference_weights {
    struct tensor_view *views;
    struct tensor_info *info;
    float **data;
    size_t n;
};

void reference_weights_free(struct reference_weights *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) {
        free(r->data[i]);
        free((char *)r->views[i].name);
    }
    free(r->views);
    free(r->info);
    free(r->data);
    free(r);
}

static const struct tensor_view *lookup(void *ctx, const char *name)
{
    struct reference_weights *r = ctx;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->views[i].name, name)) return &r->views[i];
    return NULL;
}

struct tensor_source reference_weights_source(struct reference_weights *r)
{
    return (struct tensor_source){lookup, r};
}

const struct tensor_info *reference_weights_tensors(const struct reference_weights *r, int *n)
{
    *n = (int)r->n;
    return r->info;
}

/* One MLC parameter: its HuggingFace sources read as float32 and stacked
 * along the first axis. */
static int load_param(struct hf_source *src, const struct mlc_param *p, struct reference_weights *r, size_t i)
{
    int64_t rows = 0, cols = 1;
    const struct hf_tensor *t[PM_MAX_SOURCES];
    for (int s = 0; s < p->nsources; s++) {
        t[s] = hf_source_find(src, p->sources[s]);
        if (!t[s]) return fail("%s: the reference weights lack %s", src->dir, p->sources[s]);
        if (t[s]->ndim != p->ndim || t[s]->ndim > 2)
            return fail("%s: %s has %d dimensions, %s needs %d", src->dir, p->sources[s], t[s]->ndim, p->name, p->ndim);
        int64_t c = t[s]->ndim > 1 ? t[s]->shape[1] : 1;
        if (s && c != cols) return fail("%s: %s cannot be stacked with %s", src->dir, p->sources[s], p->sources[0]);
        cols = c;
        rows += t[s]->shape[0];
    }
    float *out = xmalloc(sizeof(float) * (size_t)(rows * cols));
    int64_t at = 0;
    for (int s = 0; s < p->nsources; s++) {
        struct hf_data d;
        if (hf_tensor_data(src, t[s], &d) != 0) {
            free(out);
            return -1;
        }
        quant_convert_ref(t[s]->dtype, d.data, DT_F32, out + at * cols, (size_t)t[s]->numel);
        at += t[s]->shape[0];
        hf_tensor_release(src, t[s], &d);
    }
    struct tensor_view *v = &r->views[i];
    v->name = xstrdup(p->name);
    v->dtype = DT_F32;
    v->ndim = p->ndim;
    v->shape[0] = rows;
    v->shape[1] = p->ndim > 1 ? cols : 0;
    v->data = out;
    v->nbytes = sizeof(float) * (size_t)(rows * cols);
    r->data[i] = out;
    r->info[i] = (struct tensor_info){v->name, DT_F32, v->ndim, {v->shape[0], v->shape[1], 0}};
    return 0;
}

struct reference_weights *reference_weights_load(const char *hf_dir, const struct chat_config *cfg)
{
    struct weight_config wc;
    if (weight_config_from_json(&wc, cfg->json, cfg->source) != 0) return NULL;
    struct param_map pm;
    if (param_map_build(&pm, &wc) != 0) {
        weight_config_free(&wc);
        return NULL;
    }
    struct hf_source src;
    struct reference_weights *r = NULL;
    if (hf_source_open(&src, hf_dir, HF_AUTO) != 0) goto done;
    r = xcalloc(1, sizeof *r);
    r->views = xcalloc(pm.nparams + 1, sizeof *r->views);
    r->info = xcalloc(pm.nparams + 1, sizeof *r->info);
    r->data = xcalloc(pm.nparams + 1, sizeof *r->data);
    for (size_t i = 0; i < pm.nparams; i++) {
        r->n = i + 1;
        if (load_param(&src, &pm.params[i], r, i) != 0) {
            r->n = i; /* the failed one holds nothing */
            reference_weights_free(r);
            r = NULL;
            break;
        }
    }
    hf_source_close(&src);
done:
    param_map_free(&pm);
    weight_config_free(&wc);
    return r;
}

static void free_own_tensors(void *r)
{
    reference_weights_free(r);
}

int engine_open_reference(struct engine *e, const char *hf_dir, const char *config_path,
                          const struct model_dims *sizes, int threads, enum engine_mode mode)
{
    memset(e, 0, sizeof *e);
    if (chat_config_load(config_path, &e->cfg) != 0) return -1;
    struct reference_weights *ref = reference_weights_load(hf_dir, &e->cfg);
    if (!ref) goto fail;
    e->own_tensors = ref;
    e->free_own_tensors = free_own_tensors;
    struct lower_spec spec = {e->cfg.model_type, "q0f32", {0}, NULL, 0, true};
    spec.tensors = reference_weights_tensors(ref, &spec.ntensors);
    if (lower_dims_from_config(&e->cfg, &spec.dims) != 0) goto fail;
    if (sizes) { /* what mlc-lower --overrides may have changed */
        struct model_dims *d = &spec.dims;
        d->context_window_size = sizes->context_window_size;
        d->prefill_chunk_size = sizes->prefill_chunk_size;
        d->sliding_window_size = sizes->sliding_window_size;
        d->attention_sink_size = sizes->attention_sink_size;
        d->max_batch_size = sizes->max_batch_size;
        d->local_window = sizes->local_window;
    }
    e->module = xcalloc(1, sizeof *e->module);
    if (lower_build(&spec, e->module) != 0) {
        fail_prefix("%s (reference)", hf_dir);
        free(e->module);
        e->module = NULL;
        goto fail;
    }
    if (passes_run(e->module, 2, NULL, 0, NULL, NULL) != 0) goto fail;
    e->max_sequences = engine_sequences_for(e, mode);
    struct tensor_source ts = reference_weights_source(ref);
    if (executor_init(&e->ex, e->module, &ts, threads, e->max_sequences) != 0) goto fail;
    engine_set_sizes(e);
    return 0;
fail:
    engine_close(e);
    return -1;
}
