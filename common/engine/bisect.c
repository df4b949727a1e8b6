#include "common/engine/bisect.h"
#include "common/buf.h"
#include "common/engine/generate.h"
#include "common/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct bisector {
    struct engine *e;
    double tol;
    struct bisect_report *r;
    int cpu_seq, vk_seq;
    int64_t rows;
    const struct function *f;
};

/* The decoder layer an op belongs to: its attribute for attention and the
 * KV ops, else the "L<n>." prefix of the value it writes. */
static int layer_of(const struct function *f, const struct op *o)
{
    if (o->kind == OP_ATTENTION || o->kind == OP_KV_APPEND) return o->a.layer;
    if (o->nout < 1) return -1;
    const char *name = f->values[o->out[0]].name;
    if (name[0] != 'L' || name[1] < '0' || name[1] > '9') return -1;
    return atoi(name + 1);
}

static int64_t value_rows(const struct value *v, int64_t rows)
{
    return v->dims[0].var == DIM_ROWS ? rows : v->dims[0].size;
}

static size_t value_bytes_now(const struct value *v, int64_t rows)
{
    int64_t n = value_rows(v, rows);
    for (int d = 1; d < v->ndim; d++) n *= v->dims[d].size;
    return (size_t)n * dtype_size(v->dtype);
}

/* Compare op i's outputs; record the first difference (or the worst). */
static int compare_outputs(struct bisector *b, int i)
{
    const struct op *o = &b->f->ops[i];
    for (int k = 0; k < o->nout; k++) {
        const struct value *v = &b->f->values[o->out[k]];
        if (v->dtype != DT_F32) continue;
        size_t bytes = value_bytes_now(v, b->rows), n = bytes / 4;
        const float *cpu = executor_step_value(&b->e->ex, o->out[k]);
        float *dev = xmalloc(bytes + 4);
        if (!cpu || vk_exec_step_read(b->e->vk, o->out[k], dev, bytes) != 0) {
            free(dev);
            return fail("%s: cannot read %s", b->f->name, v->name);
        }
        double scale = 0, abs_err = 0;
        bool nan = false;
        for (size_t j = 0; j < n; j++) {
            double c = cpu[j], d = dev[j];
            if (fabs(c) > scale) scale = fabs(c);
            if (isnan(d) != isnan(c)) nan = true;
            else if (!isnan(c) && fabs(d - c) > abs_err) abs_err = fabs(d - c);
        }
        free(dev);
        double rel = nan ? INFINITY : abs_err / (scale > 0 ? scale : 1e-30);
        if (nan) abs_err = INFINITY;
        struct bisect_report *r = b->r;
        r->ops++;
        bool worse = !r->tensor || rel > r->max_rel;
        if (!r->differs && (rel > b->tol || worse)) {
            r->differs = rel > b->tol;
            r->function = b->f->name;
            r->op = i;
            r->op_name = op_name(o->kind);
            r->layer = layer_of(b->f, o);
            r->tensor = v->name;
            r->max_abs = abs_err;
            r->max_rel = rel;
        }
    }
    return 0;
}

/* Is value v written by one of ops [from, to)? */
static bool written_in(const struct function *f, int from, int to, int v)
{
    for (int i = from; i < to; i++)
        for (int k = 0; k < f->ops[i].nout; k++)
            if (f->ops[i].out[k] == v) return true;
    return false;
}

/* A function's output as the CPU computed it, copied (the arena is reused
 * by the next call). */
static float *cpu_output(struct bisector *b)
{
    for (int v = 0; v < b->f->nvalues; v++)
        if (b->f->values[v].kind == VAL_OUTPUT) {
            size_t bytes = value_bytes_now(&b->f->values[v], b->rows);
            float *out = xmalloc(bytes + 4);
            memcpy(out, executor_step_value(&b->e->ex, v), bytes);
            return out;
        }
    return NULL;
}

/* One call op by op from its input (ids or embeddings); the CPU's output
 * into *out (when the call ran to its end). */
static int bisect_call(struct bisector *b, const char *fn, const void *input, size_t input_bytes, float **out)
{
    struct engine *e = b->e;
    b->f = module_function(e->module, fn);
    *out = NULL;
    int *cs = xmalloc(sizeof *cs * (size_t)b->rows), *vs = xmalloc(sizeof *vs * (size_t)b->rows);
    for (int64_t i = 0; i < b->rows; i++) cs[i] = b->cpu_seq, vs[i] = b->vk_seq;
    bool embed = !strcmp(fn, "embed");
    int rc = executor_step_begin(&e->ex, fn, embed ? NULL : cs, b->rows, input, input_bytes);
    if (rc == 0) rc = vk_exec_step_begin(e->vk, fn, vs, b->rows);
    int in = -1;
    for (int v = 0; v < b->f->nvalues; v++)
        if (b->f->values[v].kind == VAL_INPUT) in = v;
    if (rc == 0) rc = vk_exec_step_write(e->vk, in, input, input_bytes);
    for (int i = 0; rc == 0 && i < b->f->nops && !b->r->differs;) {
        /* a fused run of ops is one step: its inputs from outside the run
         * come from the CPU, then every op of it is compared */
        int span = vk_exec_op_span(e->vk, i);
        for (int j = i; rc == 0 && j < i + span; j++) {
            const struct op *o = &b->f->ops[j];
            for (int k = 0; rc == 0 && k < o->nin; k++) {
                int v = o->in[k];
                if (v < 0 || b->f->values[v].kind == VAL_PARAM || written_in(b->f, i, j, v)) continue;
                rc = vk_exec_step_write(e->vk, v, executor_step_value(&e->ex, v),
                                        value_bytes_now(&b->f->values[v], b->rows));
            }
        }
        for (int j = i; rc == 0 && j < i + span; j++) rc = executor_step_op(&e->ex, j);
        if (rc == 0) rc = vk_exec_step_op(e->vk, i);
        for (int j = i; rc == 0 && j < i + span && !b->r->differs; j++) rc = compare_outputs(b, j);
        i += span;
    }
    if (rc == 0 && !b->r->differs) *out = cpu_output(b);
    executor_step_end(&e->ex, rc == 0);
    vk_exec_step_end(e->vk, rc == 0);
    free(cs);
    free(vs);
    return rc;
}

/* embed, then fn ("prefill" or "decode"), for b->rows ids; the CPU's
 * logits into *logits. */
static int bisect_step(struct bisector *b, const char *fn, const int32_t *ids, float **logits)
{
    float *x = NULL;
    *logits = NULL;
    int rc = bisect_call(b, "embed", ids, sizeof *ids * (size_t)b->rows, &x);
    if (rc == 0 && x) rc = bisect_call(b, fn, x, sizeof *x * (size_t)(b->rows * b->e->hidden_size), logits);
    free(x);
    return rc;
}

int engine_bisect(struct engine *e, const int32_t *ids, int64_t n, double tolerance, struct bisect_report *r)
{
    memset(r, 0, sizeof *r);
    r->layer = -1;
    if (!e->vk || !e->ex.m) return fail("bisection needs the engine on a Vulkan device with the CPU executor beside it");
    if (n < 1) return fail("bisection needs at least one token");
    if (n > e->prefill_chunk) n = e->prefill_chunk;
    struct bisector b = {e, tolerance, r, kv_cache_add_sequence(&e->ex.kv), vk_exec_new_sequence(e->vk), n, NULL};
    if (b.cpu_seq < 0 || b.vk_seq < 0) {
        if (b.cpu_seq >= 0) kv_cache_remove_sequence(&e->ex.kv, b.cpu_seq);
        if (b.vk_seq >= 0) vk_exec_free_sequence(e->vk, b.vk_seq);
        return -1;
    }
    float *logits = NULL;
    int rc = bisect_step(&b, "prefill", ids, &logits);
    if (rc == 0 && logits) {
        /* one decode step with the CPU's greedy next token */
        int32_t next = 0;
        for (int64_t i = 1; i < e->vocab_size; i++)
            if (logits[i] > logits[next]) next = (int32_t)i;
        free(logits);
        b.rows = 1;
        rc = bisect_step(&b, "decode", &next, &logits);
    }
    free(logits);
    kv_cache_remove_sequence(&e->ex.kv, b.cpu_seq);
    vk_exec_free_sequence(e->vk, b.vk_seq);
    return rc;
}

int engine_bisect_prompt(struct engine *e, struct tokenizer *t, const char *prompt, bool raw, double tolerance, FILE *out)
{
    struct tok_ids ids = {0};
    if (generate_prompt_ids(e, t, prompt, raw, &ids) != 0) return -1;
    struct bisect_report r;
    int rc = engine_bisect(e, ids.v, (int64_t)ids.n, tolerance, &r);
    int64_t n = (int64_t)ids.n < e->prefill_chunk ? (int64_t)ids.n : e->prefill_chunk;
    tok_ids_free(&ids);
    if (rc) return -1;
    char layer[32] = "";
    if (r.layer >= 0) snprintf(layer, sizeof layer, ", layer %d", r.layer);
    if (r.differs) {
        fprintf(out, "bisect: %s op %d (%s)%s, tensor %s: max abs error %.3g, rel error %.3g (tolerance %g)\n",
                r.function, r.op, r.op_name, layer, r.tensor, r.max_abs, r.max_rel, tolerance);
        return 1;
    }
    fprintf(out, "bisect: all %d op outputs of embed, prefill (%lld tokens) and decode agree within %g; the largest "
                 "difference: %s op %d (%s)%s, tensor %s, rel error %.3g\n",
            r.ops, (long long)n, tolerance, r.function ? r.function : "-", r.op, r.op_name ? r.op_name : "-", layer,
            r.tensor ? r.tensor : "-", r.max_rel);
    return 0;
}
