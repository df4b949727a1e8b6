#include "common/engine/engine.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/lower/memplan.h"
#include "common/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *engine_mode_name(enum engine_mode m)
{
    return m == MODE_SERVER ? "server" : m == MODE_LOCAL ? "local" : "interactive";
}

int engine_mode_from_name(const char *name)
{
    if (!strcmp(name, "interactive")) return MODE_INTERACTIVE;
    if (!strcmp(name, "local")) return MODE_LOCAL;
    if (!strcmp(name, "server")) return MODE_SERVER;
    return -1;
}

/* Tensors straight from the cache: the bytes where the shard is mapped,
 * float32 ones in their bfloat16 storage (the kernels read it as is). */
static const struct tensor_view *lookup(void *ctx, const char *name)
{
    struct engine *e = ctx;
    const struct tc_record *r = tensor_cache_find(&e->tc, name);
    if (!r) return NULL;
    size_t i = (size_t)(r - e->tc.records);
    struct tensor_view *v = &e->views[i];
    if (v->name) return v;
    if (r->ndim > MOD_MAX_DIMS) return NULL;
    const void *data;
    if (tensor_cache_raw(&e->tc, r, &data) != 0) return NULL;
    v->name = r->name;
    v->dtype = r->dtype;
    v->storage = r->dtype == DT_F32 && !strcmp(r->format, "f32-to-bf16") ? DT_BF16 : r->dtype;
    v->ndim = r->ndim;
    for (int d = 0; d < r->ndim; d++) v->shape[d] = r->shape[d];
    v->data = data;
    v->nbytes = (size_t)r->nbytes;
    return v;
}

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* What MLC's runtime checks between a library and a config, plus the
 * sizes the plan was built for. */
static int check_library_against_config(const struct engine *e)
{
    const struct module *m = e->module;
    const struct chat_config *c = &e->cfg;
    const char *lib = e->lib.path;
    if (strcmp(m->model_type, c->model_type))
        return fail("%s was built for model_type %s, but %s says %s", lib, m->model_type, c->source, c->model_type);
    if (strcmp(m->quantization, c->quantization))
        return fail("%s was built for %s weights, but %s says %s", lib, m->quantization, c->source, c->quantization);
    const json_t *tp = json_object_get(e->lib.metadata, "tensor_parallel_shards");
    if (json_is_integer(tp) && json_integer_value(tp) != c->tensor_parallel_shards)
        return fail("%s has tensor_parallel_shards %lld, %s has %lld", lib, (long long)json_integer_value(tp),
                    c->source, (long long)c->tensor_parallel_shards);
    if (m->dims.vocab_size != c->vocab_size || m->dims.hidden_size != c->hidden_size ||
        m->dims.num_hidden_layers != c->num_hidden_layers)
        return fail("%s was built for another model shape (vocab %lld, hidden %lld, %d layers) than %s "
                    "(vocab %lld, hidden %lld, %lld layers)",
                    lib, (long long)m->dims.vocab_size, (long long)m->dims.hidden_size, m->dims.num_hidden_layers,
                    c->source, (long long)c->vocab_size, (long long)c->hidden_size,
                    (long long)c->num_hidden_layers);
    return 0;
}

/* Every parameter the library lists: in the cache, with its dtype and
 * shape (MLC's "Cannot find parameter in cache"). */
static int check_params(struct engine *e)
{
    const struct module *m = e->module;
    for (int i = 0; i < m->nparams; i++) {
        const struct param_ref *p = &m->params[i];
        const struct tc_record *r = tensor_cache_find(&e->tc, p->name);
        if (!r) return fail("%s: parameter %s, which %s needs, is not in the weights", e->tc.json_path, p->name, e->lib.path);
        bool same = r->dtype == p->dtype && r->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = r->shape[d] == p->shape[d];
        if (!same) {
            char got[64], want[64];
            shape_format(got, sizeof got, r->ndim, r->shape);
            shape_format(want, sizeof want, p->ndim, p->shape);
            return fail("%s: parameter %s is %s %s, but %s needs %s %s", e->tc.json_path, p->name,
                        dtype_name(r->dtype), got, e->lib.path, dtype_name(p->dtype), want);
        }
    }
    return 0;
}

/* FP8 activation scales written as NaN by mlc-quant have never been
 * calibrated: such a model prints garbage (MLC-LLM issue #2982). */
static int check_calibrated(struct engine *e)
{
    static const char suffix[] = ".q_calibration_scale";
    for (size_t i = 0; i < e->tc.nrecords; i++) {
        const struct tc_record *r = &e->tc.records[i];
        size_t n = strlen(r->name);
        if (n < sizeof suffix || strcmp(r->name + n - (sizeof suffix - 1), suffix)) continue;
        float v = 0;
        if (tc_record_numel(r) != 1 || tensor_cache_read_f32(&e->tc, r, &v) != 0) continue;
        if (!(v > 0) || v > 1e30f)
            return fail("%s: %s is uncalibrated (%g): this FP8 model needs its activation scales measured by "
                        "calibration before it can run (mlc-check --calibrate on its calibration build, see "
                        "mlc-quant(1))",
                        e->tc.json_path, r->name, v);
    }
    return 0;
}

int engine_sequences_for(const struct engine *e, enum engine_mode mode)
{
    int max_batch = e->module->dims.max_batch_size;
    if (mode == MODE_INTERACTIVE) return 1;
    if (mode == MODE_LOCAL) return max_batch < 4 ? max_batch : 4;
    /* server: as many full-context sequences as 85% of memory holds */
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double budget = pages > 0 && page > 0 ? 0.85 * (double)pages * (double)page : 1e12;
    const struct memory_estimate *mem = &e->module->mem;
    budget -= (double)mem->params_bytes + (double)mem->arena_bytes;
    double fit = mem->kv_bytes_at_context > 0 ? budget / (double)mem->kv_bytes_at_context : max_batch;
    int n = fit < 1 ? 1 : fit > max_batch ? max_batch : (int)fit;
    return n;
}

int engine_open(struct engine *e, const struct engine_options *o, const char **stage)
{
    const char *unused;
    if (!stage) stage = &unused;
    double start = seconds_now();
    memset(e, 0, sizeof *e);
    *stage = "config";
    if (chat_config_load(o->config_path, &e->cfg) != 0) return -1;
    *stage = "library";
    if (library_read(o->library, &e->lib) != 0) goto fail_cfg;
    e->module = &e->lib.module;
    for (int i = 0; i < e->module->nfns; i++)
        if (!memplan_is_planned(&e->module->fns[i])) {
            fail("%s: function %s has no memory plan", e->lib.path, e->module->fns[i].name);
            goto fail_lib;
        }
    *stage = "library/config mismatch";
    if (check_library_against_config(e) != 0) goto fail_lib;
    *stage = "weights";
    if (tensor_cache_open(&e->tc, o->weights) != 0) goto fail_lib;
    if (tensor_cache_validate(&e->tc, o->verify_md5) != 0) goto fail_tc;
    *stage = "library/weights mismatch";
    if (check_params(e) != 0) goto fail_tc;
    *stage = "calibration";
    if (check_calibrated(e) != 0) goto fail_tc;
    e->views = xcalloc(e->tc.nrecords + 1, sizeof *e->views);
    e->max_sequences = engine_sequences_for(e, o->mode);
    struct tensor_source src = {lookup, e};
    *stage = "library";
    int device = engine_device_index(o->device ? o->device : e->lib.target);
    if (device == -3) {
        fail("device '%s': cpu, vulkan or vulkan:N", o->device ? o->device : e->lib.target);
        goto fail_views;
    }
    if (device >= -1) {
        if (!e->lib.launches) {
            fail("%s was built for the %s target and has no Vulkan kernels (emit it with mlc-emit --target vulkan)",
                 e->lib.path, e->lib.target);
            goto fail_views;
        }
        *stage = "device";
        struct vk_exec_options vo = {device, e->max_sequences, o->profile};
        if (vk_exec_open(&e->vk, e->module, e->lib.launches, &src, &vo) != 0) {
            fail_prefix("%s with %s", e->lib.path, e->tc.json_path);
            goto fail_views;
        }
    }
    *stage = "library/weights mismatch";
    if ((!e->vk || o->cpu_too) && executor_init(&e->ex, e->module, &src, o->threads, e->max_sequences) != 0) {
        fail_prefix("%s with %s", e->lib.path, e->tc.json_path);
        vk_exec_close(e->vk);
        goto fail_views;
    }
    if (o->kernels && (!e->vk || o->cpu_too)) {
        const struct kernel_set *k = kernels_by_name(o->kernels);
        if (!k || executor_use_kernels(&e->ex, k) != 0) {
            executor_free(&e->ex);
            vk_exec_close(e->vk);
            goto fail_views;
        }
    }
    engine_set_sizes(e);
    e->stats.load_seconds = seconds_now() - start;
    return 0;
fail_views:
    free(e->views);
fail_tc:
    tensor_cache_close(&e->tc);
fail_lib:
    library_free(&e->lib);
fail_cfg:
    chat_config_free(&e->cfg);
    memset(e, 0, sizeof *e);
    return -1;
}

void engine_set_sizes(struct engine *e)
{
    e->vocab_size = e->module->dims.vocab_size;
    e->hidden_size = e->module->dims.hidden_size;
    e->prefill_chunk = e->module->dims.prefill_chunk_size;
    int64_t rows = e->prefill_chunk > e->module->dims.max_batch_size ? e->prefill_chunk : e->module->dims.max_batch_size;
    free(e->x);
    e->x = xmalloc(sizeof(float) * (size_t)((rows > 0 ? rows : 1) * e->hidden_size));
}

void engine_close(struct engine *e)
{
    vk_exec_close(e->vk);
    executor_free(&e->ex);
    if (e->free_own_tensors) e->free_own_tensors(e->own_tensors);
    if (e->module && e->module != &e->lib.module) {
        module_free(e->module);
        free(e->module);
    }
    free(e->x);
    free(e->views);
    tensor_cache_close(&e->tc);
    library_free(&e->lib);
    chat_config_free(&e->cfg);
    memset(e, 0, sizeof *e);
}

int engine_device_index(const char *device)
{
    if (!strcmp(device, "cpu")) return -2;
    if (!strcmp(device, "vulkan")) return -1;
    if (strncmp(device, "vulkan:", 7) || !device[7] || strlen(device) > 10) return -3;
    for (const char *c = device + 7; *c; c++)
        if (*c < '0' || *c > '9') return -3;
    return atoi(device + 7);
}

int engine_new_sequence(struct engine *e)
{
    if (e->vk) return vk_exec_new_sequence(e->vk);
    return kv_cache_add_sequence(&e->ex.kv);
}

void engine_free_sequence(struct engine *e, int seq)
{
    if (e->vk) vk_exec_free_sequence(e->vk, seq);
    else kv_cache_remove_sequence(&e->ex.kv, seq);
}

int64_t engine_sequence_length(const struct engine *e, int seq)
{
    if (e->vk) return vk_exec_sequence_length(e->vk, seq);
    return seq >= 0 && seq < e->ex.kv.max_sequences ? e->ex.kv.length[seq] : -1;
}

bool engine_sequence_full(const struct engine *e, int seq)
{
    if (e->vk) return vk_exec_sequence_full(e->vk, seq);
    const struct kv_cache *kv = &e->ex.kv;
    return !kv->sliding_window && kv->length[seq] + 1 > kv->capacity;
}

int engine_prefill(struct engine *e, int seq, const int32_t *ids, int64_t n, float *logits)
{
    if (n < 1) return fail("prefill: no tokens");
    double start = seconds_now();
    int rc = 0;
    if (e->vk) {
        for (int64_t at = 0; at < n && rc == 0; at += e->prefill_chunk)
            rc = vk_exec_prefill(e->vk, seq, ids + at, n - at < e->prefill_chunk ? n - at : e->prefill_chunk, logits);
        goto done;
    }
    for (int64_t at = 0; at < n && rc == 0; at += e->prefill_chunk) {
        int64_t len = n - at < e->prefill_chunk ? n - at : e->prefill_chunk;
        rc = executor_embed(&e->ex, ids + at, len, e->x);
        if (rc == 0) rc = executor_prefill(&e->ex, seq, e->x, len, logits);
    }
done:
    if (rc == 0) {
        e->stats.prefill_tokens += n;
        e->stats.prefill_seconds += seconds_now() - start;
    }
    return rc;
}

int engine_decode(struct engine *e, const int *seqs, const int32_t *ids, int64_t n, float *logits)
{
    if (n < 1 || n > e->max_sequences)
        return fail("decode: %lld sequences, the engine runs 1 to %d", (long long)n, e->max_sequences);
    double start = seconds_now();
    int rc;
    if (e->vk) {
        rc = vk_exec_decode(e->vk, seqs, ids, n, logits);
    } else {
        rc = executor_embed(&e->ex, ids, n, e->x);
        if (rc == 0) rc = executor_decode(&e->ex, seqs, e->x, n, logits);
    }
    if (rc == 0) {
        e->stats.decode_tokens += n;
        e->stats.decode_steps++;
        e->stats.decode_seconds += seconds_now() - start;
    }
    return rc;
}

void engine_format_speed(const struct engine *e, char *out, size_t n)
{
    const struct engine_stats *s = &e->stats;
    int len = snprintf(out, n, "load %.3f s", s->load_seconds);
    if (len >= 0 && (size_t)len < n && s->prefill_tokens && s->prefill_seconds > 0)
        len += snprintf(out + len, n - (size_t)len, ", prefill %lld tokens at %.1f tokens/s",
                        (long long)s->prefill_tokens, (double)s->prefill_tokens / s->prefill_seconds);
    if (len >= 0 && (size_t)len < n && s->decode_tokens && s->decode_seconds > 0)
    {
        if (e->vk)
            snprintf(out + len, n - (size_t)len, ", decode %lld tokens at %.1f tokens/s (%s)",
                     (long long)s->decode_tokens, (double)s->decode_tokens / s->decode_seconds, vk_exec_device(e->vk));
        else
            snprintf(out + len, n - (size_t)len, ", decode %lld tokens at %.1f tokens/s (%s kernels, %d threads)",
                     (long long)s->decode_tokens, (double)s->decode_tokens / s->decode_seconds, e->ex.k->name,
                     pool_size(e->ex.pool));
    }
}
