#include "common/engine/executor.h"
#include "common/buf.h"
#include "common/engine/cpu_kernels.h"
#include "common/err.h"
#include "common/lower/memplan.h"
#include "common/pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

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
        if (val->ndim == 1) {
            ex->vectors[fi][v] = xmalloc(sizeof(float) * (size_t)w->rows);
            weight_vector(w, ex->vectors[fi][v]);
        }
    }
    return 0;
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
                      a->attention_sink) != 0) {
        executor_free(ex);
        return -1;
    }
    for (int fi = 0; fi < m->nfns; fi++)
        if (m->fns[fi].arena_bytes > ex->arena_bytes) ex->arena_bytes = m->fns[fi].arena_bytes;
    ex->arena = calloc(1, (size_t)ex->arena_bytes + ARENA_ALIGN);
    if (!ex->arena) {
        executor_free(ex);
        return fail("cannot allocate the %lld-byte activation arena", (long long)ex->arena_bytes);
    }
    ex->inv_freq = xcalloc((size_t)m->dims.head_dim / 2 + 1, sizeof *ex->inv_freq);
    k_rope_frequencies(m->dims.head_dim, m->dims.rope_theta, &m->dims.rope_scaling, ex->inv_freq);
    ex->pool = pool_create(threads > 0 ? threads : cpu_count());
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
    free(ex->bound);
    free(ex->vectors);
    kv_cache_free(&ex->kv);
    free(ex->arena);
    free(ex->inv_freq);
    if (ex->pool) pool_destroy(ex->pool);
    memset(ex, 0, sizeof *ex);
}

/* ---- running ---- */

struct run {
    struct executor *ex;
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
    const struct value *x = &r->f->values[v];
    return x->ndim > 1 ? x->dims[1].size : 1;
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

struct matmul_job {
    const struct run *r;
    const float *x;
    int64_t rows, K, N;          /* N: output columns */
    const struct bound_weight *w;/* the stored weight, or NULL ... */
    const float *wf;             /* ... a dequantized float32 [Nw, K] */
    const float *bias;
    int epilogue;
    float *y;
    int64_t chunk;
};

static const float *weight_row_ptr(const struct matmul_job *j, int64_t n, float *scratch)
{
    if (j->wf) return j->wf + n * j->K;
    const float *row = weight_row_in_place(j->w, n);
    if (row) return row; /* unquantized float32: no copy */
    weight_row(j->w, n, scratch);
    return scratch;
}

static void matmul_chunk(void *ctx, size_t c)
{
    const struct matmul_job *j = ctx;
    int64_t n0 = (int64_t)c * j->chunk, n1 = n0 + j->chunk < j->N ? n0 + j->chunk : j->N;
    float *s1 = xmalloc(sizeof(float) * (size_t)j->K), *s2 = xmalloc(sizeof(float) * (size_t)j->K);
    for (int64_t n = n0; n < n1; n++) {
        if (j->epilogue == EPI_SILU_MUL) {
            /* gate row n and up row n + N of the [2N, K] weight */
            const float *g = weight_row_ptr(j, n, s1), *u = weight_row_ptr(j, n + j->N, s2);
            float bg = j->bias ? j->bias[n] : 0, bu = j->bias ? j->bias[n + j->N] : 0;
            for (int64_t r = 0; r < j->rows; r++) {
                const float *x = j->x + r * j->K;
                j->y[r * j->N + n] = k_silu(k_dot(x, g, j->K) + bg) * (k_dot(x, u, j->K) + bu);
            }
        } else {
            const float *w = weight_row_ptr(j, n, s1);
            float b = j->bias ? j->bias[n] : 0;
            for (int64_t r = 0; r < j->rows; r++) j->y[r * j->N + n] = k_dot(j->x + r * j->K, w, j->K) + b;
        }
    }
    free(s1);
    free(s2);
}

static void run_matmul(const struct run *r, const struct op *o)
{
    struct matmul_job j = {0};
    j.r = r;
    j.x = fbuf(r, o->in[0]);
    j.rows = nrows(r, o->in[0]);
    j.K = cols(r, o->in[0]);
    j.N = cols(r, o->out[0]);
    const struct value *w = &r->f->values[o->in[1]];
    if (w->kind == VAL_PARAM) j.w = &r->ex->bound[r->fi][o->in[1]];
    else j.wf = fbuf(r, o->in[1]);
    float *xq = NULL;
    if (j.w && weight_quantizes_activation(j.w)) {
        /* FP8 schemes multiply FP8 activations by FP8 weights */
        xq = xmalloc(sizeof(float) * (size_t)(j.rows * j.K));
        weight_quantize_activation(j.w, j.x, j.rows * j.K, xq);
        j.x = xq;
    }
    j.bias = o->nin > 2 && o->in[2] >= 0 ? vec(r, o->in[2]) : NULL;
    j.epilogue = o->a.epilogue;
    j.y = fbuf(r, o->out[0]);
    int threads = pool_size(r->ex->pool);
    j.chunk = (j.N + 4 * threads - 1) / (4 * threads);
    if (j.chunk < 1) j.chunk = 1;
    pool_for(r->ex->pool, (size_t)((j.N + j.chunk - 1) / j.chunk), matmul_chunk, &j);
    free(xq);
}

static void dequantize_rows(void *ctx, size_t n)
{
    const struct run *r = ((void **)ctx)[0];
    const struct op *o = ((void **)ctx)[1];
    const struct bound_weight *w = &r->ex->bound[r->fi][o->in[0]];
    weight_row(w, (int64_t)n, fbuf(r, o->out[0]) + (int64_t)n * w->cols);
}

struct attention_job {
    const struct run *r;
    const struct op *o;
    const float *qkv;
    float *out;
};

static void attention_item(void *ctx, size_t item)
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
    int64_t p = r->pos[row];
    int seq = r->seq[row];
    /* visible keys: all earlier positions, or the last `sliding_window`
     * ones plus the attention-sink tokens at the start */
    int64_t lo = a->sliding_window && p - a->sliding_window + 1 > 0 ? p - a->sliding_window + 1 : 0;
    int64_t sinks = a->attention_sink < lo ? a->attention_sink : lo;
    int64_t n = sinks + (p - lo + 1);
    float *score = xmalloc(sizeof(float) * (size_t)n);
    float scale = 1.0f / sqrtf((float)d), mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        int64_t pos = i < sinks ? i : lo + (i - sinks);
        score[i] = k_dot(q, kv_cache_key(kv, seq, a->layer, pos) + (int64_t)g * d, d) * scale;
        if (score[i] > mx) mx = score[i];
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        score[i] = expf(score[i] - mx);
        sum += score[i];
    }
    float *out = j->out + row * (int64_t)a->n_heads * d + (int64_t)h * d;
    for (int k = 0; k < d; k++) out[k] = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t pos = i < sinks ? i : lo + (i - sinks);
        const float *v = kv_cache_value(kv, seq, a->layer, pos) + (int64_t)g * d;
        float wgt = (float)(score[i] / sum);
        for (int k = 0; k < d; k++) out[k] += wgt * v[k];
    }
    free(score);
}

static int run_op(const struct run *r, const struct op *o)
{
    const struct op_attrs *a = &o->a;
    switch (o->kind) {
    case OP_EMBED: {
        const int32_t *ids = (const int32_t *)(void *)(r->ex->arena + r->f->values[o->in[0]].offset);
        const struct bound_weight *table = &r->ex->bound[r->fi][o->in[1]];
        float *y = fbuf(r, o->out[0]);
        for (int64_t i = 0; i < r->rows; i++) {
            if (ids[i] < 0 || ids[i] >= table->rows)
                return fail("token id %d is outside the vocabulary (0..%lld)", ids[i], (long long)table->rows - 1);
            weight_row(table, ids[i], y + i * table->cols);
        }
        return 0;
    }
    case OP_RMS_NORM: {
        int64_t n = cols(r, o->in[0]), rows = nrows(r, o->in[0]);
        for (int64_t i = 0; i < rows; i++)
            k_rms_norm(fbuf(r, o->in[0]) + i * n, vec(r, o->in[1]), n, a->eps, fbuf(r, o->out[0]) + i * n);
        return 0;
    }
    case OP_ADD:
        k_add(fbuf(r, o->in[0]), fbuf(r, o->in[1]), nrows(r, o->in[0]) * cols(r, o->in[0]), fbuf(r, o->out[0]));
        return 0;
    case OP_ADD_RMS_NORM: {
        int64_t n = cols(r, o->in[0]), rows = nrows(r, o->in[0]);
        k_add(fbuf(r, o->in[0]), fbuf(r, o->in[1]), rows * n, fbuf(r, o->out[0]));
        for (int64_t i = 0; i < rows; i++)
            k_rms_norm(fbuf(r, o->out[0]) + i * n, vec(r, o->in[2]), n, a->eps, fbuf(r, o->out[1]) + i * n);
        return 0;
    }
    case OP_DEQUANTIZE: {
        const void *ctx[2] = {r, o};
        pool_for(r->ex->pool, (size_t)r->f->values[o->in[0]].dims[0].size, dequantize_rows, (void *)ctx);
        return 0;
    }
    case OP_MATMUL: run_matmul(r, o); return 0;
    case OP_SILU_MUL: {
        int64_t n = cols(r, o->out[0]);
        for (int64_t i = 0; i < r->rows; i++) k_silu_mul(fbuf(r, o->in[0]) + i * 2 * n, n, fbuf(r, o->out[0]) + i * n);
        return 0;
    }
    case OP_HEAD_NORM: {
        int d = a->head_dim, hq = r->ex->m->dims.num_attention_heads, hkv = r->ex->m->dims.num_key_value_heads;
        int64_t c = cols(r, o->in[0]);
        const float *qn = vec(r, o->in[1]), *kn = vec(r, o->in[2]);
        for (int64_t i = 0; i < r->rows; i++) {
            const float *x = fbuf(r, o->in[0]) + i * c;
            float *y = fbuf(r, o->out[0]) + i * c;
            for (int h = 0; h < hq + 2 * hkv; h++) {
                if (h < hq) k_rms_norm(x + h * d, qn, d, a->eps, y + h * d);
                else if (h < hq + hkv) k_rms_norm(x + h * d, kn, d, a->eps, y + h * d);
                else memcpy(y + h * d, x + h * d, sizeof(float) * (size_t)d);
            }
        }
        return 0;
    }
    case OP_ROPE: {
        int d = a->head_dim;
        int64_t c = cols(r, o->in[0]);
        memcpy(fbuf(r, o->out[0]), fbuf(r, o->in[0]), sizeof(float) * (size_t)(r->rows * c));
        for (int64_t i = 0; i < r->rows; i++) {
            float *y = fbuf(r, o->out[0]) + i * c;
            for (int h = 0; h < a->n_heads + a->n_kv_heads; h++) k_rope(y + h * d, d, r->pos[i], r->ex->inv_freq);
        }
        return 0;
    }
    case OP_KV_APPEND: {
        int64_t c = cols(r, o->in[0]), kvw = (int64_t)a->n_kv_heads * a->head_dim;
        for (int64_t i = 0; i < r->rows; i++) {
            const float *x = fbuf(r, o->in[0]) + i * c + (int64_t)a->n_heads * a->head_dim;
            memcpy(kv_cache_key(&r->ex->kv, r->seq[i], a->layer, r->pos[i]), x, sizeof(float) * (size_t)kvw);
            memcpy(kv_cache_value(&r->ex->kv, r->seq[i], a->layer, r->pos[i]), x + kvw, sizeof(float) * (size_t)kvw);
        }
        return 0;
    }
    case OP_ATTENTION: {
        struct attention_job j = {r, o, fbuf(r, o->in[0]), fbuf(r, o->out[0])};
        pool_for(r->ex->pool, (size_t)(r->rows * a->n_heads), attention_item, &j);
        return 0;
    }
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

static int run_function(struct executor *ex, const char *name, int64_t rows, const int *seq,
                        const int64_t *pos, const void *input, size_t input_bytes, void *output)
{
    int fi = fn_index(ex->m, name);
    const struct function *f = &ex->m->fns[fi];
    struct run r = {ex, f, fi, rows, seq, pos};
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
    int *seqs = xmalloc(sizeof *seqs * (size_t)rows);
    int64_t *pos = xmalloc(sizeof *pos * (size_t)rows);
    for (int64_t i = 0; i < rows; i++) {
        seqs[i] = seq;
        pos[i] = ex->kv.length[seq] + i;
    }
    int rc = run_function(ex, "prefill", rows, seqs, pos, x,
                          sizeof *x * (size_t)(rows * ex->m->dims.hidden_size), logits);
    if (rc == 0) ex->kv.length[seq] += rows;
    free(seqs);
    free(pos);
    return rc;
}

int executor_decode(struct executor *ex, const int *seqs, const float *x, int64_t rows, float *logits)
{
    for (int64_t i = 0; i < rows; i++) {
        if (kv_cache_check_room(&ex->kv, seqs[i], 1) != 0) return -1;
        for (int64_t k = 0; k < i; k++)
            if (seqs[k] == seqs[i]) return fail("decode: sequence %d appears twice in one batch", seqs[i]);
    }
    int64_t *pos = xmalloc(sizeof *pos * (size_t)rows);
    for (int64_t i = 0; i < rows; i++) pos[i] = ex->kv.length[seqs[i]];
    int rc = run_function(ex, "decode", rows, seqs, pos, x,
                          sizeof *x * (size_t)(rows * ex->m->dims.hidden_size), logits);
    if (rc == 0)
        for (int64_t i = 0; i < rows; i++) ex->kv.length[seqs[i]]++;
    free(pos);
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
    if (in < 0 || rows < 1 || rows > f->values[in].dims[0].size || input_bytes > (size_t)f->values[in].nbytes)
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
    st->r = (struct run){ex, f, fi, rows, st->seq, st->pos};
    memcpy(ex->arena + f->values[in].offset, input, input_bytes);
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
