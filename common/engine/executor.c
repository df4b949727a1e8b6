#include "common/engine/executor.h"
#include "common/buf.h"
#include "common/engine/cpu_kernels.h"
#include "common/err.h"
#include "common/lower/memplan.h"
#include "common/pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Everything a step writes besides the arena and the cache, sized at init
 * for the largest call of every function. */
struct executor_scratch {
    int threads;
    int64_t rows_max;
    unsigned char *act;          /* prepared activations of one matmul */
    float *xq;                   /* FP8-quantized activations */
    unsigned char *work;         /* per thread: work_bytes each */
    size_t work_bytes;
    float *partials;             /* attention pieces run in parallel */
    int64_t *piece_base;         /* per query row of such a call: its first piece */
    int *seqs;                   /* per row */
    int64_t *pos;
    float *rope;                 /* per rotary embedding, per row: cos, then sin (rotated dims / 2
                                    each), head_dim floats a row */
    int64_t *seq_end;            /* per sequence: its length after the step (LongRoPE's choice) */
};

/* One rotary embedding of the model: its frequencies (LongRoPE's short
 * and long ones), the dims it rotates, cos and sin scaled by `factor`. */
struct executor_rope {
    int dim;
    double theta;
    struct rope_scaling rs;
    float *inv_freq, *inv_freq_long;
    float factor;
};

/* Attention runs piece by piece in parallel (rather than head group by head
 * group) when a call has fewer groups than this many per thread. */
#define GROUPS_PER_THREAD 4

static void *alloc64(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0) return NULL;
    return p;
}

static size_t round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

/* ---- set-up ---- */

static int fn_index(const struct module *m, const char *name)
{
    for (int i = 0; i < m->nfns; i++)
        if (!strcmp(m->fns[i].name, name)) return i;
    return -1;
}

static int bind_function(struct executor *ex, int fi, const struct tensor_source *src)
{
    const struct function *f = &ex->m->fns[fi];
    ex->bound[fi] = xcalloc((size_t)f->nvalues + 1, sizeof **ex->bound);
    ex->vectors[fi] = xcalloc((size_t)f->nvalues + 1, sizeof **ex->vectors);
    for (int v = 0; v < f->nvalues; v++) {
        const struct value *val = &f->values[v];
        if (val->kind != VAL_PARAM) continue;
        struct bound_weight *w = &ex->bound[fi][v];
        if (weight_bind(w, val, ex->m->quantization, src) != 0) return -1;
        w->observer = -1;
        if (w->quantized && (w->measures_activation || w->act_scale > 0)) {
            int o = 0;
            while (o < ex->n_observed && strcmp(ex->observed_names[o], w->name)) o++;
            if (o == ex->n_observed) {
                ex->observed_names = xrealloc(ex->observed_names, sizeof *ex->observed_names * (size_t)(o + 1));
                ex->observed = xrealloc(ex->observed, sizeof *ex->observed * (size_t)(o + 1));
                ex->observed_stored = xrealloc(ex->observed_stored, sizeof *ex->observed_stored * (size_t)(o + 1));
                ex->observed_names[o] = w->name;
                ex->observed[o] = 0;
                ex->observed_stored[o] = w->act_scale;
                ex->n_observed++;
            }
            w->observer = o;
        }
        if (val->ndim == 1) {
            ex->vectors[fi][v] = xmalloc(sizeof(float) * (size_t)w->rows);
            weight_vector(w, ex->vectors[fi][v]);
        }
    }
    return 0;
}

/* The first dimension of a value at its bound. */
static int64_t rows_bound(const struct value *v)
{
    return v->dims[0].size;
}

static int64_t value_cols(const struct value *v)
{
    return v->ndim > 1 ? v->dims[1].size : 1;
}

/* Weight rows per matmul work item. A decode step streams the weights from
 * memory, and each item starts its streams cold: 4 items per thread (256 KB
 * to 1.4 MB each on a 1.1B model) read 10-20% faster than 16 in a
 * microbenchmark and 3-5% in decode, while a thread that loses its core on
 * a busy machine still holds up only part of a matmul. Prefill items are
 * short so that their weight rows stay in cache while every activation row
 * passes. */
static int64_t matmul_chunk(int64_t N, int64_t K, int64_t rows, int threads)
{
    if (N * K * rows < (1 << 16)) return N; /* too little to share */
    int64_t items = (int64_t)threads * (rows > 8 ? 64 : 4);
    int64_t c = (N + items - 1) / items;
    c = (c + 15) / 16 * 16;
    if (rows > 8 && c > 64) c = 64;
    return c < 16 ? 16 : c;
}

static struct kmat arena_matrix(const struct value *v, const void *data)
{
    struct kmat m = {0};
    m.fmt = KF_F32;
    m.rows = v->dims[0].size;
    m.cols = value_cols(v);
    m.data = data;
    m.scale = 1.0f;
    return m;
}

static int64_t max_pieces(const struct executor *ex)
{
    return ex->kv.capacity / ATTN_PIECE + 6;
}

static void free_scratch(struct executor_scratch *s)
{
    if (!s) return;
    free(s->act);
    free(s->xq);
    free(s->work);
    free(s->partials);
    free(s->piece_base);
    free(s->seqs);
    free(s->pos);
    free(s->rope);
    free(s->seq_end);
    free(s);
}

/* Size every buffer for the kernel set in use. */
static int size_scratch(struct executor *ex)
{
    const struct module *m = ex->m;
    const struct kernel_set *k = ex->k;
    struct executor_scratch *s = xcalloc(1, sizeof *s);
    s->threads = pool_size(ex->pool);
    s->rows_max = 1;
    size_t act = 64, xq = 1, work = 64, partials = 1;
    for (int fi = 0; fi < m->nfns; fi++) {
        const struct function *f = &m->fns[fi];
        for (int v = 0; v < f->nvalues; v++)
            if (f->values[v].kind == VAL_INPUT && rows_bound(&f->values[v]) > s->rows_max)
                s->rows_max = rows_bound(&f->values[v]);
        for (int i = 0; i < f->nops; i++) {
            const struct op *o = &f->ops[i];
            const struct op_attrs *a = &o->a;
            if (o->kind == OP_MATMUL) {
                const struct value *wv = &f->values[o->in[1]];
                struct kmat w = wv->kind == VAL_PARAM ? ex->bound[fi][o->in[1]].m : arena_matrix(wv, NULL);
                size_t rows = (size_t)rows_bound(&f->values[o->in[0]]);
                size_t need = rows * k->act_bytes(&w);
                if (need > act) act = need;
                if (wv->kind == VAL_PARAM && weight_quantizes_activation(&ex->bound[fi][o->in[1]]) &&
                    rows * (size_t)w.cols > xq)
                    xq = rows * (size_t)w.cols;
                int64_t N = value_cols(&f->values[o->out[0]]);
                size_t wb = k->scratch_bytes(&w);
                if (a->epilogue != EPI_NONE) { /* gate and up results of one work item */
                    size_t most = 0;
                    for (int64_t r = 1; r <= (int64_t)rows; r++) {
                        size_t t = (size_t)r * (size_t)matmul_chunk(N, w.cols, r, s->threads);
                        if (t > most) most = t;
                    }
                    wb += round64(2 * sizeof(float) * most);
                }
                if (round64(wb) > work) work = round64(wb);
            } else if (o->kind == OP_ATTENTION) {
                size_t g = (size_t)(a->n_heads / a->n_kv_heads), d = (size_t)a->head_dim;
                size_t wb = k->attend ? sizeof(float) * (g * ATTN_SCORES + 2 * g * (d + 2))
                                      : sizeof(float) * ((size_t)ex->kv.capacity + d);
                if (round64(wb) > work) work = round64(wb);
                size_t items = (size_t)(GROUPS_PER_THREAD * s->threads) * (size_t)max_pieces(ex);
                if (k->attend && items * g * (d + 2) > partials) partials = items * g * (d + 2);
            }
        }
    }
    s->work_bytes = work;
    s->act = alloc64(act);
    s->xq = alloc64(sizeof(float) * xq);
    s->work = alloc64(work * (size_t)s->threads);
    s->partials = alloc64(sizeof(float) * partials);
    s->piece_base = alloc64(sizeof(int64_t) * (size_t)(GROUPS_PER_THREAD * s->threads + 1));
    s->seqs = alloc64(sizeof(int) * (size_t)s->rows_max);
    s->pos = alloc64(sizeof(int64_t) * (size_t)s->rows_max);
    s->rope = alloc64(sizeof(float) * (size_t)(s->rows_max * (m->dims.head_dim > 0 ? m->dims.head_dim : 1) *
                                               (ex->nropes > 0 ? ex->nropes : 1)));
    s->seq_end = alloc64(sizeof(int64_t) * (size_t)(ex->kv.max_sequences > 0 ? ex->kv.max_sequences : 1));
    if (!s->act || !s->xq || !s->work || !s->partials || !s->piece_base || !s->seqs || !s->pos || !s->rope ||
        !s->seq_end) {
        free_scratch(s);
        return fail("cannot allocate the executor's buffers (%zu bytes of activations)", act);
    }
    free_scratch(ex->scratch);
    ex->scratch = s;
    return 0;
}

static bool same_rope(const struct executor_rope *r, const struct op_attrs *a)
{
    const struct rope_scaling *x = &r->rs, *y = &a->rope_scaling;
    int dim = a->rotary_dim ? a->rotary_dim : a->head_dim;
    if (r->dim != dim || r->theta != a->rope_theta || x->kind != y->kind) return false;
    switch (x->kind) {
    case ROPE_SCALING_LLAMA3:
        return x->factor == y->factor && x->low_freq_factor == y->low_freq_factor &&
               x->high_freq_factor == y->high_freq_factor && x->original_max_position == y->original_max_position;
    case ROPE_SCALING_LINEAR: return x->factor == y->factor;
    case ROPE_SCALING_LONGROPE:
        return x->n_factors == y->n_factors && x->original_max_position == y->original_max_position &&
               x->attention_factor == y->attention_factor &&
               !memcmp(x->short_factor, y->short_factor, sizeof(float) * (size_t)x->n_factors) &&
               !memcmp(x->long_factor, y->long_factor, sizeof(float) * (size_t)x->n_factors);
    default: return true;
    }
}

/* The distinct rotary embeddings of the rope ops (Gemma 3 has a local and
 * a global one), their frequencies computed once. */
static void prepare_ropes(struct executor *ex)
{
    const struct module *m = ex->m;
    ex->rope_of = xcalloc((size_t)m->nfns, sizeof *ex->rope_of);
    for (int fi = 0; fi < m->nfns; fi++) {
        const struct function *f = &m->fns[fi];
        ex->rope_of[fi] = xcalloc((size_t)f->nops + 1, sizeof **ex->rope_of);
        for (int i = 0; i < f->nops; i++) {
            const struct op_attrs *a = &f->ops[i].a;
            ex->rope_of[fi][i] = -1;
            if (f->ops[i].kind != OP_ROPE) continue;
            int r = 0;
            while (r < ex->nropes && !same_rope(&ex->ropes[r], a)) r++;
            if (r == ex->nropes) {
                ex->ropes = xrealloc(ex->ropes, sizeof *ex->ropes * (size_t)(ex->nropes + 1));
                struct executor_rope *e = &ex->ropes[ex->nropes++];
                memset(e, 0, sizeof *e);
                e->dim = a->rotary_dim ? a->rotary_dim : a->head_dim;
                e->theta = a->rope_theta;
                e->rs = a->rope_scaling;
                e->inv_freq = xcalloc((size_t)e->dim / 2 + 1, sizeof *e->inv_freq);
                k_rope_inv_freq(e->dim, e->theta, &e->rs, false, e->inv_freq);
                e->factor = 1.0f;
                if (e->rs.kind == ROPE_SCALING_LONGROPE) {
                    e->inv_freq_long = xcalloc((size_t)e->dim / 2 + 1, sizeof *e->inv_freq_long);
                    k_rope_inv_freq(e->dim, e->theta, &e->rs, true, e->inv_freq_long);
                    e->factor = (float)e->rs.attention_factor;
                }
            }
            ex->rope_of[fi][i] = r;
        }
    }
}

/* Norms with a weight offset read (offset + w), added once here in float32
 * as the model adds it, so that every kernel set sees plain weights. */
static void prepare_norm_weights(struct executor *ex)
{
    const struct module *m = ex->m;
    ex->norm_weights = xcalloc((size_t)m->nfns, sizeof *ex->norm_weights);
    for (int fi = 0; fi < m->nfns; fi++) {
        const struct function *f = &m->fns[fi];
        ex->norm_weights[fi] = xcalloc((size_t)f->nops + 1, sizeof **ex->norm_weights);
        for (int i = 0; i < f->nops; i++) {
            const struct op *o = &f->ops[i];
            if (o->a.weight_offset == 0) continue;
            int first = o->kind == OP_ADD_RMS_NORM ? 2 : 1, count = o->kind == OP_HEAD_NORM ? 2 : 1;
            if (o->kind != OP_RMS_NORM && o->kind != OP_ADD_RMS_NORM && o->kind != OP_HEAD_NORM) continue;
            float *w = NULL;
            int64_t n = f->values[o->in[first]].dims[0].size;
            w = xmalloc(sizeof(float) * (size_t)(count * n));
            for (int k = 0; k < count; k++)
                for (int64_t j = 0; j < n; j++)
                    w[k * n + j] = (float)o->a.weight_offset + ex->vectors[fi][o->in[first + k]][j];
            ex->norm_weights[fi][i] = w;
        }
    }
}

int executor_init(struct executor *ex, const struct module *m, const struct tensor_source *src,
                  int threads, int max_sequences)
{
    memset(ex, 0, sizeof *ex);
    ex->m = m;
    const char *need[] = {"embed", "prefill", "decode", "create_kv_cache"};
    for (int i = 0; i < 4; i++)
        if (fn_index(m, need[i]) < 0) return fail("the library has no %s function", need[i]);
    for (int i = 0; i < m->nfns; i++)
        if (!memplan_is_planned(&m->fns[i]))
            return fail("function %s has no memory plan (build the library with plan-memory on)", m->fns[i].name);
    ex->k = kernels_default();
    if (!ex->k) return -1;
    ex->bound = xcalloc((size_t)m->nfns, sizeof *ex->bound);
    ex->vectors = xcalloc((size_t)m->nfns, sizeof *ex->vectors);
    for (int fi = 0; fi < m->nfns; fi++)
        if (bind_function(ex, fi, src) != 0) {
            executor_free(ex);
            return -1;
        }
    const struct function *kvf = &m->fns[fn_index(m, "create_kv_cache")];
    if (kvf->nops != 1 || kvf->ops[0].kind != OP_KV_CREATE) {
        executor_free(ex);
        return fail("create_kv_cache must hold exactly one kv_create op");
    }
    const struct op_attrs *a = &kvf->ops[0].a;
    int seqs = max_sequences > 0 && max_sequences < a->max_sequences ? max_sequences : a->max_sequences;
    if (kv_cache_init(&ex->kv, a->n_layers, a->n_kv_heads, a->head_dim, a->capacity, seqs, a->sliding_window,
                      a->attention_sink, kv_cache_dtype_for(m->quantization)) != 0) {
        executor_free(ex);
        return -1;
    }
    for (int fi = 0; fi < m->nfns; fi++)
        if (m->fns[fi].arena_bytes > ex->arena_bytes) ex->arena_bytes = m->fns[fi].arena_bytes;
    ex->arena = alloc64((size_t)ex->arena_bytes + ARENA_ALIGN);
    if (!ex->arena) {
        executor_free(ex);
        return fail("cannot allocate the %lld-byte activation arena", (long long)ex->arena_bytes);
    }
    prepare_ropes(ex);
    prepare_norm_weights(ex);
    ex->pool = pool_create(threads > 0 ? threads : cpu_count());
    if (size_scratch(ex) != 0) {
        executor_free(ex);
        return -1;
    }
    return 0;
}

int executor_use_kernels(struct executor *ex, const struct kernel_set *k)
{
    const struct kernel_set *old = ex->k;
    ex->k = k;
    if (size_scratch(ex) != 0) {
        ex->k = old;
        return -1;
    }
    return 0;
}

void executor_free(struct executor *ex)
{
    if (!ex->m) return;
    if (ex->step) executor_step_end(ex, false);
    for (int fi = 0; fi < ex->m->nfns; fi++) {
        if (ex->vectors && ex->vectors[fi]) {
            for (int v = 0; v < ex->m->fns[fi].nvalues; v++) free(ex->vectors[fi][v]);
            free(ex->vectors[fi]);
        }
        if (ex->bound) free(ex->bound[fi]);
    }
    for (int fi = 0; fi < ex->m->nfns; fi++) {
        if (ex->norm_weights && ex->norm_weights[fi]) {
            for (int i = 0; i < ex->m->fns[fi].nops; i++) free(ex->norm_weights[fi][i]);
            free(ex->norm_weights[fi]);
        }
        if (ex->rope_of) free(ex->rope_of[fi]);
    }
    free(ex->norm_weights);
    free(ex->rope_of);
    for (int r = 0; r < ex->nropes; r++) {
        free(ex->ropes[r].inv_freq);
        free(ex->ropes[r].inv_freq_long);
    }
    free(ex->ropes);
    free(ex->bound);
    free(ex->vectors);
    free(ex->observed_names);
    free(ex->observed);
    free(ex->observed_stored);
    kv_cache_free(&ex->kv);
    free(ex->arena);
    if (ex->pool) pool_destroy(ex->pool);
    free_scratch(ex->scratch);
    memset(ex, 0, sizeof *ex);
}

int64_t executor_decode_weight_bytes(const struct executor *ex)
{
    int64_t bytes = 0;
    int fi = fn_index(ex->m, "decode");
    const struct function *f = &ex->m->fns[fi];
    for (int v = 0; v < f->nvalues; v++) {
        if (f->values[v].kind != VAL_PARAM) continue;
        const struct bound_weight *w = &ex->bound[fi][v];
        bytes += f->values[v].ndim == 1 ? w->rows * (int64_t)sizeof(float) : kmat_bytes(&w->m);
    }
    int ei = fn_index(ex->m, "embed");
    const struct function *e = &ex->m->fns[ei];
    for (int v = 0; v < e->nvalues; v++)
        if (e->values[v].kind == VAL_PARAM && e->values[v].ndim == 2) {
            const struct bound_weight *w = &ex->bound[ei][v];
            bytes += kmat_bytes(&w->m) / (w->rows ? w->rows : 1);
        }
    return bytes;
}

/* ---- running ---- */

struct run {
    struct executor *ex;
    const struct kernel_set *k;
    const struct function *f;
    int fi;
    int64_t rows;
    const int *seq;       /* per row */
    const int64_t *pos;   /* per row */
};

static float *fbuf(const struct run *r, int v)
{
    return (float *)(void *)(r->ex->arena + r->f->values[v].offset);
}

static int64_t cols(const struct run *r, int v)
{
    return value_cols(&r->f->values[v]);
}

/* rows of a value during this call (symbolic first dimension) */
static int64_t nrows(const struct run *r, int v)
{
    const struct value *x = &r->f->values[v];
    return x->dims[0].var == DIM_ROWS ? r->rows : x->dims[0].size;
}

static const float *vec(const struct run *r, int v)
{
    return v >= 0 ? r->ex->vectors[r->fi][v] : NULL;
}

/* Row `row`'s cos and sin of rotary embedding `rope` in this step. */
static const float *rope_table(const struct executor *ex, int rope, int64_t row)
{
    const struct executor_scratch *s = ex->scratch;
    return s->rope + ((size_t)rope * (size_t)s->rows_max + (size_t)row) * (size_t)ex->m->dims.head_dim;
}

static void *worker_scratch(const struct executor *ex, int worker)
{
    return ex->scratch->work + (size_t)worker * ex->scratch->work_bytes;
}

/* ---- matmul ---- */

struct matmul_job {
    const struct executor *ex;
    const struct kmat *w;
    const unsigned char *act;
    size_t act_stride;
    int64_t rows, N, chunk;
    const float *bias;
    int epilogue;
    float *y;
};

static void silu_mul(const struct kernel_set *k, const float *g, const float *u, int64_t n, float *out)
{
    if (k->silu_mul) {
        k->silu_mul(g, u, n, out);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = k_silu(g[i]) * u[i];
}

static void gelu_mul(const struct kernel_set *k, const float *g, const float *u, int64_t n, float *out)
{
    if (k->gelu_mul) {
        k->gelu_mul(g, u, n, out);
        return;
    }
    for (int64_t i = 0; i < n; i++) out[i] = k_gelu_tanh(g[i]) * u[i];
}

static void matmul_item(void *ctx, size_t c, int worker)
{
    const struct matmul_job *j = ctx;
    const struct kernel_set *k = j->ex->k;
    int64_t n0 = (int64_t)c * j->chunk, n1 = n0 + j->chunk < j->N ? n0 + j->chunk : j->N, len = n1 - n0;
    unsigned char *scratch = worker_scratch(j->ex, worker);
    if (j->epilogue != EPI_NONE) {
        /* gate rows n and up rows n + N of the [2N, K] weight */
        float *g = (float *)(void *)scratch, *u = g + j->rows * len;
        void *ks = scratch + round64(2 * sizeof(float) * (size_t)(j->rows * len));
        k->matmul(j->w, n0, n1, j->act, j->act_stride, j->rows, g, len, ks);
        k->matmul(j->w, j->N + n0, j->N + n1, j->act, j->act_stride, j->rows, u, len, ks);
        for (int64_t r = 0; r < j->rows; r++) {
            float *gr = g + r * len, *ur = u + r * len;
            if (j->bias)
                for (int64_t i = 0; i < len; i++) gr[i] += j->bias[n0 + i], ur[i] += j->bias[j->N + n0 + i];
            if (j->epilogue == EPI_GELU_MUL) gelu_mul(k, gr, ur, len, j->y + r * j->N + n0);
            else silu_mul(k, gr, ur, len, j->y + r * j->N + n0);
        }
        return;
    }
    k->matmul(j->w, n0, n1, j->act, j->act_stride, j->rows, j->y + n0, j->N, scratch);
    if (j->bias)
        for (int64_t r = 0; r < j->rows; r++)
            for (int64_t i = 0; i < len; i++) j->y[r * j->N + n0 + i] += j->bias[n0 + i];
}

struct prepare_job {
    const struct kernel_set *k;
    const struct kmat *w;
    const float *x;
    unsigned char *act;
    size_t stride;
    const struct bound_weight *fp8;   /* quantize activations to FP8 first */
    float fp8_scale;                  /* with this measured scale (calibration builds) */
    float *xq;
};

static void prepare_row(void *ctx, size_t i)
{
    const struct prepare_job *p = ctx;
    const float *x = p->x + (int64_t)i * p->w->cols;
    if (p->fp8) {
        float *q = p->xq + (int64_t)i * p->w->cols;
        weight_quantize_activation(p->fp8, p->fp8_scale, x, p->w->cols, q);
        x = q;
    }
    p->k->act_prepare(p->w, x, p->act + i * p->stride);
}

/* A calibration build's activation scale for this call: the statistic of
 * the whole input (every row of the call), or while observing the running
 * maximum over every call so far (NaN, once seen, stays). */
static float measured_scale(struct executor *ex, const struct bound_weight *bw, const float *x, int64_t n)
{
    float m = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!(m >= a)) m = a;
    }
    float s = weight_activation_statistic(bw->scheme, m);
    if (!ex->observing) return s;
    float *run = &ex->observed[bw->observer];
    if (isnan(s) || isnan(*run)) *run = NAN;
    else if (s > *run) *run = s;
    return *run;
}

void executor_observe(struct executor *ex, bool on)
{
    ex->observing = on;
    if (on)
        for (int i = 0; i < ex->n_observed; i++) ex->observed[i] = 0;
}

static void run_matmul(const struct run *r, const struct op *o)
{
    struct executor *ex = r->ex;
    const struct value *wv = &r->f->values[o->in[1]];
    const struct bound_weight *bw = wv->kind == VAL_PARAM ? &ex->bound[r->fi][o->in[1]] : NULL;
    struct kmat local;
    const struct kmat *w = bw ? &bw->m : (local = arena_matrix(wv, fbuf(r, o->in[1])), &local);
    int64_t rows = nrows(r, o->in[0]);
    struct prepare_job p = {r->k, w, fbuf(r, o->in[0]), ex->scratch->act, r->k->act_bytes(w),
                            bw && weight_quantizes_activation(bw) ? bw : NULL, 0, ex->scratch->xq};
    if (bw && bw->observer >= 0 && (bw->measures_activation || ex->observing))
        p.fp8_scale = measured_scale(ex, bw, p.x, rows * w->cols);
    if (rows == 1) prepare_row(&p, 0);
    else pool_for(ex->pool, (size_t)rows, prepare_row, &p);
    struct matmul_job j = {ex, w, p.act, p.stride, rows, cols(r, o->out[0]), 0,
                           o->nin > 2 && o->in[2] >= 0 ? vec(r, o->in[2]) : NULL, o->a.epilogue, fbuf(r, o->out[0])};
    j.chunk = matmul_chunk(j.N, w->cols, rows, ex->scratch->threads);
    pool_for_workers(ex->pool, (size_t)((j.N + j.chunk - 1) / j.chunk), matmul_item, &j);
}

/* ---- attention ---- */

/* The positions a query at position p sees, as virtual indices 0..n-1:
 * the attention-sink tokens, then the window (all earlier positions
 * without a sliding window). */
struct visible {
    int64_t n, sinks, lo;
};

static struct visible visible_for(const struct op_attrs *a, int64_t p)
{
    struct visible v;
    /* a rolling cache's window, or a sliding layer's over a linear cache:
     * keys q with p - q < window */
    int64_t window = a->sliding_window ? a->sliding_window : a->local_window;
    v.lo = window && p - window + 1 > 0 ? p - window + 1 : 0;
    v.sinks = a->attention_sink < v.lo ? a->attention_sink : v.lo;
    v.n = v.sinks + (p - v.lo + 1);
    return v;
}

static int64_t visible_pos(const struct visible *v, int64_t i)
{
    return i < v->sinks ? i : v->lo + (i - v->sinks);
}

/* The next piece from virtual index *at: positions contiguous in the cache,
 * inside one ATTN_PIECE-aligned block of positions. Where pieces start and
 * end depends on the query's position only, so a query's result does not
 * depend on how the work is split. */
static bool next_piece(const struct kv_cache *kv, const struct visible *v, int64_t *at, int64_t *pos0,
                       int64_t *count)
{
    if (*at >= v->n) return false;
    int64_t pos = visible_pos(v, *at);
    int64_t c = *at < v->sinks ? v->sinks - *at : v->n - *at;
    int64_t to_block = ATTN_PIECE - pos % ATTN_PIECE, to_wrap = kv->capacity - kv_cache_slot(kv, pos);
    if (to_block < c) c = to_block;
    if (to_wrap < c) c = to_wrap;
    *pos0 = pos;
    *count = c;
    *at += c;
    return true;
}

static int64_t count_pieces(const struct kv_cache *kv, const struct visible *v)
{
    int64_t at = 0, pos, c, n = 0;
    while (next_piece(kv, v, &at, &pos, &c)) n++;
    return n;
}

struct attention_job {
    const struct run *r;
    const struct op *o;
    const float *qkv;
    float *out;
    int64_t pieces;              /* pieces mode: total */
};

static float attention_scale(const struct op_attrs *a)
{
    return a->attn_scale > 0 ? (float)a->attn_scale : 1.0f / sqrtf((float)a->head_dim);
}

static void run_piece(const struct attention_job *j, int64_t row, int g, int64_t pos0, int64_t count, float *scores,
                      float *state)
{
    const struct run *r = j->r;
    const struct op_attrs *a = &j->o->a;
    const struct kv_cache *kv = &r->ex->kv;
    int G = a->n_heads / a->n_kv_heads, d = a->head_dim;
    int64_t qkv_cols = (int64_t)(a->n_heads + 2 * a->n_kv_heads) * d;
    size_t esize = dtype_size(kv->dtype);
    struct attn_piece p;
    p.q = j->qkv + row * qkv_cols + (int64_t)g * G * d;
    p.heads = G;
    p.d = d;
    p.k = kv_cache_keys(kv, r->seq[row], a->layer, g);
    p.first = kv_cache_slot(kv, pos0);
    p.v = (const char *)kv_cache_value(kv, r->seq[row], a->layer, pos0) + (size_t)g * (size_t)d * esize;
    p.v_stride = (int64_t)a->n_kv_heads * d;
    p.kv_dtype = kv->dtype;
    p.n = count;
    p.scale = attention_scale(a);
    p.softcap = (float)a->softcap;
    p.scores = scores;
    p.max = state;
    p.sum = state + G;
    p.out = state + 2 * G;
    r->k->attend(&p);
}

static float *group_out(const struct attention_job *j, int64_t row, int g)
{
    const struct op_attrs *a = &j->o->a;
    int G = a->n_heads / a->n_kv_heads;
    return j->out + row * (int64_t)a->n_heads * a->head_dim + (int64_t)g * G * a->head_dim;
}

/* One query row and one key/value head, every piece in order. */
static void attention_group(void *ctx, size_t item, int worker)
{
    const struct attention_job *j = ctx;
    const struct op_attrs *a = &j->o->a;
    int G = a->n_heads / a->n_kv_heads, d = a->head_dim;
    int64_t row = (int64_t)item / a->n_kv_heads;
    int g = (int)((int64_t)item % a->n_kv_heads);
    float *scores = worker_scratch(j->r->ex, worker);
    float *state = scores + (size_t)G * ATTN_SCORES, *next = state + (size_t)G * (d + 2);
    struct visible v = visible_for(a, j->r->pos[row]);
    int64_t at = 0, pos0, count;
    for (bool first = true; next_piece(&j->r->ex->kv, &v, &at, &pos0, &count); first = false) {
        run_piece(j, row, g, pos0, count, scores, first ? state : next);
        if (!first) attention_merge(G, d, state, state + G, state + 2 * G, next, next + G, next + 2 * G);
    }
    attention_finish(G, d, state + G, state + 2 * G, group_out(j, row, g));
}

/* Pieces mode, first pass: piece `item` of the call, into its partial. */
static void attention_piece(void *ctx, size_t item, int worker)
{
    const struct attention_job *j = ctx;
    const struct executor_scratch *s = j->r->ex->scratch;
    const struct op_attrs *a = &j->o->a;
    int G = a->n_heads / a->n_kv_heads, d = a->head_dim;
    int64_t group = 0;
    while (s->piece_base[group + 1] <= (int64_t)item) group++;
    int64_t row = group / a->n_kv_heads, index = (int64_t)item - s->piece_base[group];
    struct visible v = visible_for(a, j->r->pos[row]);
    int64_t at = 0, pos0 = 0, count = 0;
    for (int64_t i = 0; i <= index; i++) next_piece(&j->r->ex->kv, &v, &at, &pos0, &count);
    run_piece(j, row, (int)(group % a->n_kv_heads), pos0, count, worker_scratch(j->r->ex, worker),
              s->partials + item * (size_t)G * (d + 2));
}

/* Pieces mode, second pass: each group's partials merged in order, the
 * same arithmetic as attention_group. */
static void attention_merge_group(void *ctx, size_t group)
{
    const struct attention_job *j = ctx;
    const struct executor_scratch *s = j->r->ex->scratch;
    const struct op_attrs *a = &j->o->a;
    int G = a->n_heads / a->n_kv_heads, d = a->head_dim;
    size_t stride = (size_t)G * (d + 2);
    float *state = s->partials + (size_t)s->piece_base[group] * stride;
    for (int64_t i = s->piece_base[group] + 1; i < s->piece_base[group + 1]; i++) {
        const float *p = s->partials + (size_t)i * stride;
        attention_merge(G, d, state, state + G, state + 2 * G, p, p + G, p + 2 * G);
    }
    attention_finish(G, d, state + G, state + 2 * G,
                     group_out(j, (int64_t)group / a->n_kv_heads, (int)((int64_t)group % a->n_kv_heads)));
}

/* The reference: one query head at a time, the scores of every visible
 * position, then the weighted sum of the values. */
static void attention_reference(void *ctx, size_t item, int worker)
{
    const struct attention_job *j = ctx;
    const struct run *r = j->r;
    const struct op_attrs *a = &j->o->a;
    const struct kv_cache *kv = &r->ex->kv;
    int64_t row = (int64_t)item / a->n_heads;
    int h = (int)((int64_t)item % a->n_heads), d = a->head_dim;
    int g = h / (a->n_heads / a->n_kv_heads);
    int64_t qkv_cols = (int64_t)(a->n_heads + 2 * a->n_kv_heads) * d;
    const float *q = j->qkv + row * qkv_cols + (int64_t)h * d;
    int seq = r->seq[row];
    struct visible v = visible_for(a, r->pos[row]);
    float *score = worker_scratch(r->ex, worker), *kf = score + kv->capacity;
    float scale = attention_scale(a), mx = -INFINITY;
    for (int64_t i = 0; i < v.n; i++) {
        for (int k = 0; k < d; k++) kf[k] = kv_cache_key_at(kv, seq, a->layer, g, visible_pos(&v, i), k);
        score[i] = k_dot(q, kf, d) * scale;
        if (a->softcap > 0) k_softcap(&score[i], 1, (float)a->softcap, &score[i]);
        if (score[i] > mx) mx = score[i];
    }
    double sum = 0;
    for (int64_t i = 0; i < v.n; i++) {
        score[i] = expf(score[i] - mx);
        sum += score[i];
    }
    float *out = j->out + row * (int64_t)a->n_heads * d + (int64_t)h * d;
    for (int k = 0; k < d; k++) out[k] = 0;
    for (int64_t i = 0; i < v.n; i++) {
        const void *val = kv_cache_value(kv, seq, a->layer, visible_pos(&v, i));
        float wgt = (float)(score[i] / sum);
        for (int k = 0; k < d; k++) out[k] += wgt * kv_cache_load(kv, val, (int64_t)g * d + k);
    }
}

static void run_attention(const struct run *r, const struct op *o)
{
    const struct op_attrs *a = &o->a;
    struct executor_scratch *s = r->ex->scratch;
    struct attention_job j = {r, o, fbuf(r, o->in[0]), fbuf(r, o->out[0]), 0};
    if (!r->k->attend) {
        pool_for_workers(r->ex->pool, (size_t)(r->rows * a->n_heads), attention_reference, &j);
        return;
    }
    int64_t groups = r->rows * a->n_kv_heads;
    if (groups < (int64_t)GROUPS_PER_THREAD * s->threads && s->threads > 1) {
        s->piece_base[0] = 0;
        for (int64_t gi = 0; gi < groups; gi++) {
            struct visible v = visible_for(a, r->pos[gi / a->n_kv_heads]);
            s->piece_base[gi + 1] = s->piece_base[gi] + count_pieces(&r->ex->kv, &v);
        }
        if (s->piece_base[groups] > groups) {
            pool_for_workers(r->ex->pool, (size_t)s->piece_base[groups], attention_piece, &j);
            pool_for(r->ex->pool, (size_t)groups, attention_merge_group, &j);
            return;
        }
    }
    pool_for_workers(r->ex->pool, (size_t)groups, attention_group, &j);
}

/* ---- row-wise ops ---- */

static void rms_norm(const struct kernel_set *k, const float *x, const float *w, int64_t n, double eps, float *y)
{
    if (k->rms_norm) k->rms_norm(x, w, n, eps, y);
    else k_rms_norm(x, w, n, eps, y);
}

static void store_cache(const struct kv_cache *kv, const struct kernel_set *k, const float *x, int64_t n, void *out,
                        int64_t stride)
{
    if (k->store) k->store(kv->dtype, x, n, out, stride);
    else
        for (int64_t i = 0; i < n; i++) quant_store(kv->dtype, out, (size_t)(i * stride), x[i]);
}

struct row_job {
    const struct run *r;
    const struct op *o;
};

/* The weight vector `which` (0, or 1 for head_norm's k_norm) of a norm at
 * input `in`, with the op's weight offset added. */
static const float *norm_weight(const struct run *r, const struct op *o, int in, int which)
{
    const float *w = r->ex->norm_weights[r->fi][o - r->f->ops];
    if (!w) return vec(r, o->in[in + which]);
    return w + which * r->f->values[o->in[in]].dims[0].size;
}

/* Row i of a row-wise op. */
static void row_op(const struct run *r, const struct op *o, int64_t i)
{
    const struct op_attrs *a = &o->a;
    const struct kernel_set *k = r->k;
    int64_t n = cols(r, o->in[0]);
    const float *x = fbuf(r, o->in[0]) + i * n;
    switch (o->kind) {
    case OP_RMS_NORM: rms_norm(k, x, norm_weight(r, o, 1, 0), n, a->eps, fbuf(r, o->out[0]) + i * n); return;
    case OP_ADD: k_add(x, fbuf(r, o->in[1]) + i * n, n, fbuf(r, o->out[0]) + i * n); return;
    case OP_ADD_RMS_NORM: {
        const float *b = fbuf(r, o->in[1]) + i * n;
        float *sum = fbuf(r, o->out[0]) + i * n, *y = fbuf(r, o->out[1]) + i * n;
        const float *w = norm_weight(r, o, 2, 0);
        if (k->add_rms_norm) {
            k->add_rms_norm(x, b, w, n, a->eps, sum, y);
        } else {
            k_add(x, b, n, sum);
            k_rms_norm(sum, w, n, a->eps, y);
        }
        return;
    }
    case OP_SILU_MUL: {
        int64_t half = cols(r, o->out[0]);
        silu_mul(k, x, x + half, half, fbuf(r, o->out[0]) + i * half);
        return;
    }
    case OP_GELU_MUL: {
        int64_t half = cols(r, o->out[0]);
        gelu_mul(k, x, x + half, half, fbuf(r, o->out[0]) + i * half);
        return;
    }
    case OP_SOFTCAP: k_softcap(x, n, (float)a->softcap, fbuf(r, o->out[0]) + i * n); return;
    case OP_CONCAT: {
        float *y = fbuf(r, o->out[0]) + i * cols(r, o->out[0]);
        for (int in = 0; in < o->nin; in++) {
            int64_t c = cols(r, o->in[in]);
            memcpy(y, fbuf(r, o->in[in]) + i * c, sizeof(float) * (size_t)c);
            y += c;
        }
        return;
    }
    case OP_HEAD_NORM: {
        int d = a->head_dim, hq = r->ex->m->dims.num_attention_heads, hkv = r->ex->m->dims.num_key_value_heads;
        const float *qn = norm_weight(r, o, 1, 0), *kn = norm_weight(r, o, 1, 1);
        float *y = fbuf(r, o->out[0]) + i * n;
        for (int h = 0; h < hq + 2 * hkv; h++) {
            if (h < hq) rms_norm(k, x + h * d, qn, d, a->eps, y + h * d);
            else if (h < hq + hkv) rms_norm(k, x + h * d, kn, d, a->eps, y + h * d);
            else memcpy(y + h * d, x + h * d, sizeof(float) * (size_t)d);
        }
        return;
    }
    case OP_ROPE: {
        /* the first `dim` dimensions of each head rotate, the rest pass */
        int d = a->head_dim, rope = r->ex->rope_of[r->fi][o - r->f->ops], dim = r->ex->ropes[rope].dim;
        float *y = fbuf(r, o->out[0]) + i * n;
        const float *table = rope_table(r->ex, rope, i);
        memcpy(y, x, sizeof(float) * (size_t)n);
        for (int h = 0; h < a->n_heads + a->n_kv_heads; h++) k_rope_apply(y + h * d, dim, table, table + dim / 2);
        return;
    }
    case OP_KV_APPEND: {
        const struct kv_cache *kv = &r->ex->kv;
        int d = a->head_dim;
        int64_t kvw = (int64_t)a->n_kv_heads * d, slot = kv_cache_slot(kv, r->pos[i]);
        const float *kx = x + (int64_t)a->n_heads * d;
        size_t esize = dtype_size(kv->dtype);
        for (int h = 0; h < a->n_kv_heads; h++) /* keys go in transposed */
            store_cache(kv, k, kx + (int64_t)h * d, d,
                        (char *)kv_cache_keys(kv, r->seq[i], a->layer, h) + (size_t)kv_cache_key_index(d, slot, 0) * esize,
                        KV_BLOCK);
        store_cache(kv, k, kx + kvw, kvw, kv_cache_value(kv, r->seq[i], a->layer, r->pos[i]), 1);
        return;
    }
    default: return;
    }
}

static void row_block(void *ctx, size_t b)
{
    const struct row_job *j = ctx;
    int64_t i0 = (int64_t)b * 16, i1 = i0 + 16 < j->r->rows ? i0 + 16 : j->r->rows;
    for (int64_t i = i0; i < i1; i++) row_op(j->r, j->o, i);
}

/* Row-wise ops run on the calling thread for a few rows (a decode step)
 * and spread over the pool for many (a prefill chunk). */
static void run_rows(const struct run *r, const struct op *o)
{
    if (r->rows < 32) {
        for (int64_t i = 0; i < r->rows; i++) row_op(r, o, i);
        return;
    }
    struct row_job j = {r, o};
    pool_for(r->ex->pool, (size_t)((r->rows + 15) / 16), row_block, &j);
}

struct embed_job {
    const struct run *r;
    const struct bound_weight *table;
    const int32_t *ids;
    float *y;
    float scale;
};

static void embed_row(void *ctx, size_t i)
{
    const struct embed_job *j = ctx;
    float *y = j->y + (int64_t)i * j->table->cols;
    weight_row(j->table, j->ids[i], y);
    if (j->scale != 0) /* Gemma: the rows times sqrt(hidden_size) */
        for (int64_t c = 0; c < j->table->cols; c++) y[c] *= j->scale;
}

static void dequantize_rows(void *ctx, size_t n)
{
    const struct run *r = ((void **)ctx)[0];
    const struct op *o = ((void **)ctx)[1];
    const struct bound_weight *w = &r->ex->bound[r->fi][o->in[0]];
    weight_row(w, (int64_t)n, fbuf(r, o->out[0]) + (int64_t)n * w->cols);
}

static int run_op(const struct run *r, const struct op *o)
{
    switch (o->kind) {
    case OP_EMBED: {
        struct embed_job j = {r, &r->ex->bound[r->fi][o->in[1]],
                              (const int32_t *)(void *)(r->ex->arena + r->f->values[o->in[0]].offset), fbuf(r, o->out[0]),
                              (float)o->a.scale};
        for (int64_t i = 0; i < r->rows; i++)
            if (j.ids[i] < 0 || j.ids[i] >= j.table->rows)
                return fail("token id %d is outside the vocabulary (0..%lld)", j.ids[i], (long long)j.table->rows - 1);
        if (r->rows == 1) embed_row(&j, 0);
        else pool_for(r->ex->pool, (size_t)r->rows, embed_row, &j);
        return 0;
    }
    case OP_RMS_NORM:
    case OP_ADD:
    case OP_ADD_RMS_NORM:
    case OP_SILU_MUL:
    case OP_GELU_MUL:
    case OP_SOFTCAP:
    case OP_CONCAT:
    case OP_HEAD_NORM:
    case OP_ROPE:
    case OP_KV_APPEND:
        if (nrows(r, o->in[0]) != r->rows) { /* a value of constant rows (after take_last) */
            struct run one = *r;
            one.rows = nrows(r, o->in[0]);
            run_rows(&one, o);
        } else {
            run_rows(r, o);
        }
        return 0;
    case OP_DEQUANTIZE: {
        const void *ctx[2] = {r, o};
        pool_for(r->ex->pool, (size_t)r->f->values[o->in[0]].dims[0].size, dequantize_rows, (void *)ctx);
        return 0;
    }
    case OP_MATMUL: run_matmul(r, o); return 0;
    case OP_ATTENTION: run_attention(r, o); return 0;
    case OP_TAKE_LAST: {
        int64_t n = cols(r, o->in[0]);
        memcpy(fbuf(r, o->out[0]), fbuf(r, o->in[0]) + (r->rows - 1) * n, sizeof(float) * (size_t)n);
        return 0;
    }
    case OP_KV_CREATE: return 0;
    case OP_COUNT: break;
    }
    return fail("unknown op");
}

/* The rotary angles of each row, for every rope op of the step: cos and
 * sin of each rotary embedding. LongRoPE takes its long factors for the
 * rows of a sequence whose length after this step exceeds the original
 * context (keys already cached keep the rotation they were written with). */
static void rope_tables(struct executor *ex, int64_t rows, const int *seq, const int64_t *pos)
{
    int64_t *end = ex->scratch->seq_end;
    for (int64_t i = 0; i < rows; i++) end[seq[i]] = 0;
    for (int64_t i = 0; i < rows; i++)
        if (pos[i] + 1 > end[seq[i]]) end[seq[i]] = pos[i] + 1;
    for (int rp = 0; rp < ex->nropes; rp++) {
        const struct executor_rope *e = &ex->ropes[rp];
        int half = e->dim / 2;
        for (int64_t i = 0; i < rows; i++) {
            float *c = (float *)rope_table(ex, rp, i), *sn = c + half;
            bool lng = e->inv_freq_long && end[seq[i]] > e->rs.original_max_position;
            k_rope_table(e->dim, pos[i], lng ? e->inv_freq_long : e->inv_freq, c, sn);
            if (e->factor != 1.0f)
                for (int k = 0; k < half; k++) c[k] *= e->factor, sn[k] *= e->factor;
        }
    }
}

static int run_function(struct executor *ex, const char *name, int64_t rows, const int *seq,
                        const int64_t *pos, const void *input, size_t input_bytes, void *output)
{
    int fi = fn_index(ex->m, name);
    const struct function *f = &ex->m->fns[fi];
    struct run r = {ex, ex->k, f, fi, rows, seq, pos};
    int in = -1, out = -1;
    for (int v = 0; v < f->nvalues; v++) {
        if (f->values[v].kind == VAL_INPUT) in = v;
        if (f->values[v].kind == VAL_OUTPUT) out = v;
    }
    if (in < 0 || out < 0) return fail("function %s needs one input and one output", name);
    int64_t bound = f->values[in].dims[0].size;
    if (rows < 1 || rows > bound)
        return fail("%s: %lld rows requested, the library allows 1 to %lld", name, (long long)rows, (long long)bound);
    memcpy(ex->arena + f->values[in].offset, input, input_bytes);
    if (pos) rope_tables(ex, rows, seq, pos);
    for (int i = 0; i < f->nops; i++)
        if (run_op(&r, &f->ops[i]) != 0) return fail_prefix("%s: op %d (%s)", name, i, op_name(f->ops[i].kind));
    size_t out_bytes = (size_t)(nrows(&r, out) * cols(&r, out)) * sizeof(float);
    memcpy(output, ex->arena + f->values[out].offset, out_bytes);
    return 0;
}

int executor_embed(struct executor *ex, const int32_t *ids, int64_t rows, float *out)
{
    return run_function(ex, "embed", rows, NULL, NULL, ids, sizeof *ids * (size_t)rows, out);
}

int executor_prefill(struct executor *ex, int seq, const float *x, int64_t rows, float *logits)
{
    if (kv_cache_check_room(&ex->kv, seq, rows) != 0) return -1;
    if (rows < 1 || rows > ex->scratch->rows_max)
        return fail("prefill: %lld rows requested, the library allows 1 to %lld", (long long)rows,
                    (long long)ex->scratch->rows_max);
    int *seqs = ex->scratch->seqs;
    int64_t *pos = ex->scratch->pos;
    for (int64_t i = 0; i < rows; i++) {
        seqs[i] = seq;
        pos[i] = ex->kv.length[seq] + i;
    }
    int rc = run_function(ex, "prefill", rows, seqs, pos, x,
                          sizeof *x * (size_t)(rows * ex->m->dims.hidden_size), logits);
    if (rc == 0) ex->kv.length[seq] += rows;
    return rc;
}

int executor_decode(struct executor *ex, const int *seqs, const float *x, int64_t rows, float *logits)
{
    if (rows < 1 || rows > ex->scratch->rows_max)
        return fail("decode: %lld rows requested, the library allows 1 to %lld", (long long)rows,
                    (long long)ex->scratch->rows_max);
    for (int64_t i = 0; i < rows; i++) {
        if (kv_cache_check_room(&ex->kv, seqs[i], 1) != 0) return -1;
        for (int64_t k = 0; k < i; k++)
            if (seqs[k] == seqs[i]) return fail("decode: sequence %d appears twice in one batch", seqs[i]);
    }
    int64_t *pos = ex->scratch->pos;
    for (int64_t i = 0; i < rows; i++) pos[i] = ex->kv.length[seqs[i]];
    int rc = run_function(ex, "decode", rows, seqs, pos, x,
                          sizeof *x * (size_t)(rows * ex->m->dims.hidden_size), logits);
    if (rc == 0)
        for (int64_t i = 0; i < rows; i++) ex->kv.length[seqs[i]]++;
    return rc;
}

/* ---- op by op ---- */

struct executor_step {
    struct run r;
    int *seq;
    int64_t *pos;
};

int executor_step_begin(struct executor *ex, const char *name, const int *seqs, int64_t rows, const void *input,
                        size_t input_bytes)
{
    int fi = fn_index(ex->m, name);
    if (fi < 0) return fail("no function %s", name);
    const struct function *f = &ex->m->fns[fi];
    int in = -1;
    for (int v = 0; v < f->nvalues; v++)
        if (f->values[v].kind == VAL_INPUT) in = v;
    if (in < 0 || rows < 1 || rows > f->values[in].dims[0].size || rows > ex->scratch->rows_max ||
        input_bytes > (size_t)f->values[in].nbytes)
        return fail("%s: %lld rows cannot be run", name, (long long)rows);
    if (ex->step) executor_step_end(ex, false);
    struct executor_step *st = xcalloc(1, sizeof *st);
    if (seqs) {
        st->seq = xmalloc(sizeof *st->seq * (size_t)rows);
        st->pos = xmalloc(sizeof *st->pos * (size_t)rows);
        for (int64_t i = 0; i < rows; i++) {
            int64_t before = 0;
            for (int64_t k = 0; k < i; k++) before += seqs[k] == seqs[i];
            if (kv_cache_check_room(&ex->kv, seqs[i], before + 1) != 0) {
                free(st->seq);
                free(st->pos);
                free(st);
                return -1;
            }
            st->seq[i] = seqs[i];
            st->pos[i] = ex->kv.length[seqs[i]] + before;
        }
    }
    st->r = (struct run){ex, ex->k, f, fi, rows, st->seq, st->pos};
    memcpy(ex->arena + f->values[in].offset, input, input_bytes);
    if (st->pos) rope_tables(ex, rows, st->seq, st->pos); /* as run_function makes them */
    ex->step = st;
    return 0;
}

int executor_step_op(struct executor *ex, int op)
{
    struct executor_step *st = ex->step;
    if (!st || op < 0 || op >= st->r.f->nops) return fail("no op %d in the call", op);
    if (run_op(&st->r, &st->r.f->ops[op]) != 0) return fail_prefix("%s: op %d (%s)", st->r.f->name, op, op_name(st->r.f->ops[op].kind));
    return 0;
}

const void *executor_step_value(const struct executor *ex, int value)
{
    const struct executor_step *st = ex->step;
    if (!st || value < 0 || value >= st->r.f->nvalues || st->r.f->values[value].offset < 0) return NULL;
    return ex->arena + st->r.f->values[value].offset;
}

void executor_step_end(struct executor *ex, bool commit)
{
    struct executor_step *st = ex->step;
    if (!st) return;
    if (commit && st->seq)
        for (int64_t i = 0; i < st->r.rows; i++) ex->kv.length[st->seq[i]]++;
    free(st->seq);
    free(st->pos);
    free(st);
    ex->step = NULL;
}
