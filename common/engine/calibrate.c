#include "common/engine/calibrate.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/progress.h"
#include "formats/tensor_cache.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool calibrate_applies(const struct engine *e)
{
    for (int i = 0; i < e->ex.n_observed; i++)
        if (e->ex.observed_stored[i] == 0) return true;
    return false;
}

/* "model.layers.0.mlp.down_proj.weight" → "model.layers.0.mlp.down_proj.q_calibration_scale" */
static char *scale_name(const char *weight)
{
    static const char suffix[] = ".weight";
    size_t n = strlen(weight), s = sizeof suffix - 1;
    if (n > s && !strcmp(weight + n - s, suffix)) n -= s;
    struct buf b = BUF_INIT;
    buf_init(&b);
    buf_add(&b, weight, n);
    buf_printf(&b, ".q_calibration_scale");
    return b.data;
}

struct progress_ctx {
    struct engine *e;
    struct progress p;
    uint64_t shown;
};

/* The meter counts tokens the engine has run, prompts and answers. */
static void on_text(size_t request, const char *text, size_t len, void *ctx)
{
    (void)request;
    (void)text;
    (void)len;
    struct progress_ctx *c = ctx;
    uint64_t now = (uint64_t)(c->e->stats.prefill_tokens + c->e->stats.decode_tokens);
    if (now > c->shown) progress_add(&c->p, now - c->shown);
    c->shown = now;
}

static int write_scales(const struct calibrate_options *o, struct calibration *c)
{
    struct tc_update *u = xcalloc(c->nlayers + 1, sizeof *u);
    for (size_t i = 0; i < c->nlayers; i++) {
        u[i].name = c->layers[i].name;
        u[i].ndim = 1;
        u[i].shape[0] = 1;
        u[i].values = &c->layers[i].scale;
    }
    int rc = tensor_cache_update(o->weights_dir, u, c->nlayers, &c->replaced, &c->added);
    free(u);
    return rc;
}

int calibrate_run(struct engine *e, struct tokenizer *t, const struct calibrate_options *o, struct calibration *out)
{
    memset(out, 0, sizeof *out);
    if (!calibrate_applies(e))
        return fail("%s: calibration needs a calibration build (quantization e4m3_e4m3_f16_max_calibrate), "
                    "this model is %s",
                    e->lib.path ? e->lib.path : "the model", e->cfg.quantization);
    if (calib_dataset_load(o->dataset, t, o->samples, o->seed, &out->data) != 0) return -1;
    const struct calib_dataset *d = &out->data;

    out->batch = e->max_sequences < CALIBRATE_MAX_BATCH ? e->max_sequences : CALIBRATE_MAX_BATCH;
    if (out->batch < 1) out->batch = 1;
    out->prefill_chunk = e->prefill_chunk;
    struct generate_request *rq = xcalloc(d->n + 1, sizeof *rq);
    uint64_t expected = 0;
    for (size_t i = 0; i < d->n; i++) {
        rq[i] = (struct generate_request){d->requests[i].prompt, false, o->sampling, o->seed + i,
                                          (size_t)d->requests[i].completion_tokens};
        expected += (uint64_t)(d->requests[i].prompt_tokens + d->requests[i].completion_tokens);
    }
    out->gens = xcalloc(d->n + 1, sizeof *out->gens);

    /* as MLC's server runs them: up to 32 requests at once */
    int width = e->max_sequences;
    e->max_sequences = out->batch;
    struct progress_ctx pc = {.e = e, .shown = (uint64_t)(e->stats.prefill_tokens + e->stats.decode_tokens)};
    pc.shown = (uint64_t)(e->stats.prefill_tokens + e->stats.decode_tokens);
    progress_begin(&pc.p, "calibrating", expected, false);
    executor_observe(&e->ex, true);
    int rc = generate_run(e, t, rq, d->n, out->gens, on_text, &pc);
    executor_observe(&e->ex, false);
    progress_end(&pc.p);
    e->max_sequences = width;
    free(rq);
    if (rc != 0) return fail_prefix("%s: calibration", o->dataset);

    for (size_t i = 0; i < d->n; i++)
        if (!out->gens[i].logits_finite)
            return fail("%s: calibration request %zu (item %zu) gave non-finite logits after %zu tokens: "
                        "the calibration build does not compute; nothing written",
                        o->dataset, i + 1, d->requests[i].item, out->gens[i].ids.n);
    out->nlayers = (size_t)e->ex.n_observed;
    out->layers = xcalloc(out->nlayers + 1, sizeof *out->layers);
    for (size_t i = 0; i < out->nlayers; i++) {
        out->layers[i].name = scale_name(e->ex.observed_names[i]);
        out->layers[i].scale = e->ex.observed[i];
    }
    for (size_t i = 0; i < out->nlayers; i++) {
        float s = out->layers[i].scale;
        if (!isfinite(s) || s <= 0)
            return fail("%s: calibration measured %s = %g: %s; nothing written", o->dataset, out->layers[i].name,
                        (double)s, s == 0 ? "the layer never ran" : "the activations overflow");
    }
    return write_scales(o, out);
}

void calibration_free(struct calibration *c)
{
    for (size_t i = 0; c->gens && i < c->data.n; i++) generation_free(&c->gens[i]);
    free(c->gens);
    for (size_t i = 0; i < c->nlayers; i++) free(c->layers[i].name);
    free(c->layers);
    calib_dataset_free(&c->data);
    memset(c, 0, sizeof *c);
}

static void pack_ids(msgpack_packer *pk, const struct tok_ids *ids)
{
    msgpack_pack_array(pk, ids->n);
    for (size_t i = 0; i < ids->n; i++) msgpack_pack_int32(pk, ids->v[i]);
}

static int by_scale(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void calibrate_write_record(struct stream_writer *w, const struct calibration *c, const struct calibrate_options *o)
{
    const struct calib_dataset *d = &c->data;
    struct rec_builder b;
    rb_init(&b, "calibration");
    rb_str(&b, "dataset", o->dataset);
    rb_str(&b, "dataset_sha256", d->sha256);
    rb_int(&b, "items", (int64_t)d->items);
    rb_int(&b, "usable", (int64_t)d->kept);
    rb_int(&b, "samples", (int64_t)d->n);
    rb_int(&b, "seed", (int64_t)o->seed);
    rb_int(&b, "batch", c->batch);
    rb_int(&b, "prefill_chunk", c->prefill_chunk);
    rb_str(&b, "weights", o->weights_dir);
    rb_int(&b, "replaced", (int64_t)c->replaced);
    rb_int(&b, "added", (int64_t)c->added);
    msgpack_packer *pk = rb_key(&b, "sampling");
    msgpack_pack_map(pk, 2);
    mp_pack_cstr(pk, "temperature");
    msgpack_pack_double(pk, o->sampling.temperature);
    mp_pack_cstr(pk, "top_p");
    msgpack_pack_double(pk, o->sampling.top_p);
    pk = rb_key(&b, "requests");
    msgpack_pack_array(pk, d->n);
    for (size_t i = 0; i < d->n; i++) {
        msgpack_pack_map(pk, 5);
        mp_pack_cstr(pk, "item");
        msgpack_pack_uint64(pk, d->requests[i].item);
        mp_pack_cstr(pk, "max_tokens");
        msgpack_pack_int64(pk, d->requests[i].completion_tokens);
        mp_pack_cstr(pk, "prompt_ids");
        pack_ids(pk, &c->gens[i].prompt_ids);
        mp_pack_cstr(pk, "generated_ids");
        pack_ids(pk, &c->gens[i].ids);
        mp_pack_cstr(pk, "stop_reason");
        mp_pack_cstr(pk, stop_reason_name(c->gens[i].reason));
    }
    pk = rb_key(&b, "layers");
    msgpack_pack_array(pk, c->nlayers);
    for (size_t i = 0; i < c->nlayers; i++) {
        msgpack_pack_map(pk, 2);
        mp_pack_cstr(pk, "name");
        mp_pack_cstr(pk, c->layers[i].name);
        mp_pack_cstr(pk, "scale");
        msgpack_pack_double(pk, (double)c->layers[i].scale);
    }
    /* the spread of the scales: min, median, max */
    float *sorted = xcalloc(c->nlayers + 1, sizeof *sorted);
    for (size_t i = 0; i < c->nlayers; i++) sorted[i] = c->layers[i].scale;
    qsort(sorted, c->nlayers, sizeof *sorted, by_scale);
    pk = rb_key(&b, "scales");
    msgpack_pack_map(pk, 3);
    mp_pack_cstr(pk, "min");
    msgpack_pack_double(pk, c->nlayers ? (double)sorted[0] : 0);
    mp_pack_cstr(pk, "median");
    msgpack_pack_double(pk, c->nlayers ? (double)sorted[c->nlayers / 2] : 0);
    mp_pack_cstr(pk, "max");
    msgpack_pack_double(pk, c->nlayers ? (double)sorted[c->nlayers - 1] : 0);
    free(sorted);
    rb_write(&b, w);
}
