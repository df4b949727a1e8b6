/* Structural validation of a lowered module: what the executor relies on.
 * A plan that passes these checks cannot make a kernel read or write
 * outside its buffers. */
#include "formats/module.h"
#include "common/buf.h"
#include "common/err.h"

#include <stdlib.h>
#include <string.h>

struct vctx {
    const struct module *m;
    const struct function *f;
    const char *what;
    int opi;
};

static int op_fail(const struct vctx *c, const char *fmt, const char *detail)
{
    return fail("%s: function %s: ops[%d] (%s): %s%s", c->what, c->f->name, c->opi,
                op_name(c->f->ops[c->opi].kind), fmt, detail ? detail : "");
}

static const struct value *val(const struct vctx *c, int idx)
{
    return idx >= 0 ? &c->f->values[idx] : NULL;
}

static int64_t dim(const struct value *v, int i)
{
    return i < v->ndim ? v->dims[i].size : -1;
}

static bool rows_like(const struct value *a, const struct value *b)
{
    return a->ndim >= 1 && b->ndim >= 1 && a->dims[0].var == b->dims[0].var && a->dims[0].size == b->dims[0].size;
}

static bool is_act(const struct value *v, int ndim)
{
    return v->kind != VAL_PARAM && v->dtype == DT_F32 && v->ndim == ndim;
}

static bool is_param(const struct value *v, int ndim)
{
    return v && v->kind == VAL_PARAM && v->ndim == ndim;
}

static int check_arity(const struct vctx *c, const struct op *o, int nin_min, int nin_max, int nout)
{
    if (o->nin < nin_min || o->nin > nin_max || o->nout != nout)
        return op_fail(c, "wrong number of inputs or outputs", NULL);
    for (int i = 0; i < o->nin; i++)
        if (o->in[i] < 0 && i < nin_min) return op_fail(c, "a required input is absent", NULL);
    return 0;
}

static int check_qkv(const struct vctx *c, const struct value *qkv, const struct op_attrs *a)
{
    const struct model_dims *d = &c->m->dims;
    if (a->n_heads != d->num_attention_heads || a->n_kv_heads != d->num_key_value_heads ||
        a->head_dim != d->head_dim)
        return op_fail(c, "head counts differ from the module's dims", NULL);
    if (!is_act(qkv, 2) || dim(qkv, 1) != (int64_t)(a->n_heads + 2 * a->n_kv_heads) * a->head_dim)
        return op_fail(c, "qkv input must be float32 [rows, (heads + 2 kv_heads) * head_dim]", NULL);
    if (a->n_heads % a->n_kv_heads) return op_fail(c, "heads not a multiple of kv heads", NULL);
    return 0;
}

static int check_op(const struct vctx *c, const struct op *o)
{
    const struct model_dims *d = &c->m->dims;
    const struct value *i0 = o->nin > 0 ? val(c, o->in[0]) : NULL;
    const struct value *i1 = o->nin > 1 ? val(c, o->in[1]) : NULL;
    const struct value *i2 = o->nin > 2 ? val(c, o->in[2]) : NULL;
    const struct value *o0 = o->nout > 0 ? val(c, o->out[0]) : NULL;
    const struct value *o1 = o->nout > 1 ? val(c, o->out[1]) : NULL;
    switch (o->kind) {
    case OP_EMBED:
        if (check_arity(c, o, 2, 2, 1)) return -1;
        if (i0->dtype != DT_I32 || i0->ndim != 1 || !is_param(i1, 2) || !is_act(o0, 2) ||
            !rows_like(i0, o0) || dim(o0, 1) != dim(i1, 1))
            return op_fail(c, "expects int32 ids [rows], a [V, H] table and float32 [rows, H]", NULL);
        return 0;
    case OP_RMS_NORM:
        if (check_arity(c, o, 2, 2, 1)) return -1;
        if (!is_act(i0, 2) || !is_param(i1, 1) || dim(i1, 0) != dim(i0, 1) || !is_act(o0, 2) ||
            !rows_like(i0, o0) || dim(o0, 1) != dim(i0, 1))
            return op_fail(c, "expects x [rows, H], weight [H], y [rows, H]", NULL);
        return 0;
    case OP_ADD:
        if (check_arity(c, o, 2, 2, 1)) return -1;
        if (!is_act(i0, 2) || !is_act(i1, 2) || !is_act(o0, 2) || !rows_like(i0, i1) || !rows_like(i0, o0) ||
            dim(i0, 1) != dim(i1, 1) || dim(o0, 1) != dim(i0, 1))
            return op_fail(c, "expects three float32 [rows, H] values", NULL);
        return 0;
    case OP_ADD_RMS_NORM:
        if (check_arity(c, o, 3, 3, 2)) return -1;
        if (!is_act(i0, 2) || !is_act(i1, 2) || !is_param(i2, 1) || !is_act(o0, 2) || !is_act(o1, 2) ||
            !rows_like(i0, i1) || !rows_like(i0, o0) || !rows_like(i0, o1) || dim(i0, 1) != dim(i1, 1) ||
            dim(i2, 0) != dim(i0, 1) || dim(o0, 1) != dim(i0, 1) || dim(o1, 1) != dim(i0, 1))
            return op_fail(c, "expects a, b [rows, H], weight [H], sum and norm [rows, H]", NULL);
        return 0;
    case OP_DEQUANTIZE:
        if (check_arity(c, o, 1, 1, 1)) return -1;
        if (!is_param(i0, 2) || !is_act(o0, 2) || o0->dims[0].var != DIM_CONST || dim(o0, 0) != dim(i0, 0) ||
            dim(o0, 1) != dim(i0, 1))
            return op_fail(c, "expects a [N, K] parameter and a float32 [N, K] result", NULL);
        return 0;
    case OP_MATMUL: {
        if (check_arity(c, o, 2, 3, 1)) return -1;
        const struct value *b = o->nin > 2 ? val(c, o->in[2]) : NULL;
        bool w_ok = is_param(i1, 2) || (i1->kind == VAL_TEMP && is_act(i1, 2) && i1->dims[0].var == DIM_CONST);
        int64_t n = dim(i1, 0), k = dim(i1, 1);
        bool gated = o->a.epilogue == EPI_SILU_MUL || o->a.epilogue == EPI_GELU_MUL;
        if (o->a.epilogue != EPI_NONE && !gated) return op_fail(c, "unknown epilogue", NULL);
        int64_t n_out = gated ? n / 2 : n;
        if (!is_act(i0, 2) || !w_ok || dim(i0, 1) != k || !is_act(o0, 2) || !rows_like(i0, o0) ||
            dim(o0, 1) != n_out || (gated && n % 2))
            return op_fail(c, "expects x [rows, K], weight [N, K], y [rows, N]", NULL);
        if (b && (!is_param(b, 1) || dim(b, 0) != n)) return op_fail(c, "bias must be a [N] parameter", NULL);
        return 0;
    }
    case OP_SILU_MUL:
    case OP_GELU_MUL:
        if (check_arity(c, o, 1, 1, 1)) return -1;
        if (!is_act(i0, 2) || !is_act(o0, 2) || !rows_like(i0, o0) || dim(i0, 1) != 2 * dim(o0, 1))
            return op_fail(c, "expects [rows, 2I] and [rows, I]", NULL);
        return 0;
    case OP_SOFTCAP:
        if (check_arity(c, o, 1, 1, 1)) return -1;
        if (!is_act(i0, 2) || !is_act(o0, 2) || i0->dims[0].var != o0->dims[0].var || dim(i0, 0) != dim(o0, 0) ||
            dim(i0, 1) != dim(o0, 1))
            return op_fail(c, "expects two float32 values of the same shape", NULL);
        if (!(o->a.softcap > 0)) return op_fail(c, "softcap must be positive", NULL);
        return 0;
    case OP_HEAD_NORM: {
        if (check_arity(c, o, 3, 3, 1)) return -1;
        struct op_attrs a = o->a;
        a.n_heads = d->num_attention_heads, a.n_kv_heads = d->num_key_value_heads;
        if (check_qkv(c, i0, &a)) return -1;
        if (!is_param(i1, 1) || !is_param(i2, 1) || dim(i1, 0) != a.head_dim || dim(i2, 0) != a.head_dim ||
            !is_act(o0, 2) || !rows_like(i0, o0) || dim(o0, 1) != dim(i0, 1))
            return op_fail(c, "expects qkv, q_norm [head_dim], k_norm [head_dim], qkv", NULL);
        return 0;
    }
    case OP_ROPE: {
        if (check_arity(c, o, 1, 1, 1) || check_qkv(c, i0, &o->a)) return -1;
        if (!is_act(o0, 2) || !rows_like(i0, o0) || dim(o0, 1) != dim(i0, 1))
            return op_fail(c, "output must match the qkv input", NULL);
        if (o->a.head_dim % 2) return op_fail(c, "head_dim must be even", NULL);
        int rot = o->a.rotary_dim ? o->a.rotary_dim : o->a.head_dim;
        if (rot % 2 || rot > o->a.head_dim || rot < 2)
            return op_fail(c, "rotary_dim must be even and at most head_dim", NULL);
        if (o->a.rope_scaling.kind == ROPE_SCALING_LONGROPE && o->a.rope_scaling.n_factors != rot / 2)
            return op_fail(c, "longrope needs rotary_dim / 2 short and long factors", NULL);
        return 0;
    }
    case OP_KV_APPEND:
        if (check_arity(c, o, 1, 1, 0) || check_qkv(c, i0, &o->a)) return -1;
        if (o->a.layer >= d->num_hidden_layers) return op_fail(c, "layer out of range", NULL);
        return 0;
    case OP_ATTENTION:
        if (check_arity(c, o, 1, 1, 1) || check_qkv(c, i0, &o->a)) return -1;
        if (o->a.local_window && o->a.sliding_window)
            return op_fail(c, "local_window (a mask over a linear cache) and sliding_window (a rolling cache) "
                              "exclude each other", NULL);
        if (o->a.layer >= d->num_hidden_layers) return op_fail(c, "layer out of range", NULL);
        if (!is_act(o0, 2) || !rows_like(i0, o0) || dim(o0, 1) != (int64_t)o->a.n_heads * o->a.head_dim)
            return op_fail(c, "output must be [rows, heads * head_dim]", NULL);
        return 0;
    case OP_CONCAT: {
        if (check_arity(c, o, 2, MOD_MAX_IN, 1)) return -1;
        int64_t total = 0;
        for (int k = 0; k < o->nin; k++) {
            const struct value *x = val(c, o->in[k]);
            if (!x || !is_act(x, 2) || !rows_like(x, o0))
                return op_fail(c, "expects float32 [rows, C] inputs with the output's rows", NULL);
            total += dim(x, 1);
        }
        if (!is_act(o0, 2) || dim(o0, 1) != total)
            return op_fail(c, "output must be [rows, the inputs' columns summed]", NULL);
        return 0;
    }
    case OP_TAKE_LAST:
        if (check_arity(c, o, 1, 1, 1)) return -1;
        if (!is_act(i0, 2) || !is_act(o0, 2) || o0->dims[0].var != DIM_CONST || dim(o0, 0) != 1 ||
            dim(o0, 1) != dim(i0, 1))
            return op_fail(c, "expects [rows, H] and [1, H]", NULL);
        return 0;
    case OP_KV_CREATE:
        if (check_arity(c, o, 0, 0, 0)) return -1;
        if (o->a.n_layers != d->num_hidden_layers || o->a.n_kv_heads != d->num_key_value_heads ||
            o->a.head_dim != d->head_dim)
            return op_fail(c, "cache shape differs from the module's dims", NULL);
        return 0;
    case OP_COUNT: break;
    }
    return op_fail(c, "unknown operation", NULL);
}

/* Each value is written once, before it is read; inputs and parameters are
 * never written. Returns the op that defines each value (-1 for inputs and
 * parameters) and the last op reading it (nops for outputs). */
static int check_dataflow(const struct vctx *c0, int *def, int *last)
{
    struct vctx c = *c0;
    const struct function *f = c.f;
    for (int v = 0; v < f->nvalues; v++) {
        def[v] = f->values[v].kind == VAL_INPUT || f->values[v].kind == VAL_PARAM ? -1 : -2;
        last[v] = f->values[v].kind == VAL_OUTPUT ? f->nops : -1;
    }
    for (int i = 0; i < f->nops; i++) {
        c.opi = i;
        const struct op *o = &f->ops[i];
        for (int k = 0; k < o->nin; k++) {
            int v = o->in[k];
            if (v < 0) continue;
            if (def[v] == -2) return op_fail(&c, "reads a value before it is written: ", f->values[v].name);
            if (last[v] < i) last[v] = i;
        }
        for (int k = 0; k < o->nout; k++) {
            int v = o->out[k];
            if (def[v] != -2) return op_fail(&c, "writes a value that already has one: ", f->values[v].name);
            def[v] = i;
            if (last[v] < i) last[v] = i; /* written but never read: live during its op */
        }
    }
    for (int v = 0; v < f->nvalues; v++)
        if (f->values[v].kind == VAL_OUTPUT && def[v] == -2)
            return fail("%s: function %s: output %s is never written", c.what, f->name, f->values[v].name);
    return 0;
}

/* Planned slots lie inside the arena and no two overlap while both live. */
static int check_plan(const struct vctx *c, const int *def, const int *last)
{
    const struct function *f = c->f;
    bool planned = false;
    for (int v = 0; v < f->nvalues; v++)
        if (f->values[v].kind != VAL_PARAM && f->values[v].offset >= 0) planned = true;
    if (!planned) return 0;
    for (int v = 0; v < f->nvalues; v++) {
        const struct value *x = &f->values[v];
        if (x->kind == VAL_PARAM || def[v] == -2) continue;
        if (x->offset < 0)
            return fail("%s: function %s: value %s has no memory slot", c->what, f->name, x->name);
        if (x->nbytes < value_bytes(x) || x->offset + x->nbytes > f->arena_bytes || x->offset % 16)
            return fail("%s: function %s: value %s: slot [%lld, +%lld) does not fit it inside the %lld-byte arena",
                        c->what, f->name, x->name, (long long)x->offset, (long long)x->nbytes,
                        (long long)f->arena_bytes);
    }
    /* Lifetimes are [def, last]; an op's inputs and outputs overlap at the
     * op itself, so kernels never see aliased buffers. */
    for (int v = 0; v < f->nvalues; v++) {
        const struct value *x = &f->values[v];
        if (x->kind == VAL_PARAM || def[v] == -2) continue;
        for (int w = 0; w < v; w++) {
            const struct value *y = &f->values[w];
            if (y->kind == VAL_PARAM || def[w] == -2) continue;
            if (def[v] > last[w] || def[w] > last[v]) continue;
            if (x->offset < y->offset + y->nbytes && y->offset < x->offset + x->nbytes)
                return fail("%s: function %s: values %s and %s share memory while both are live",
                            c->what, f->name, x->name, y->name);
        }
    }
    return 0;
}

int module_validate(const struct module *m, const char *what)
{
    const struct model_dims *d = &m->dims;
    if (d->num_key_value_heads < 1 || d->num_attention_heads < 1 || d->num_hidden_layers < 1 || d->head_dim < 1)
        return fail("%s: dims: layer and head counts must be positive", what);
    if (d->num_attention_heads % d->num_key_value_heads)
        return fail("%s: dims: num_attention_heads %d is not a multiple of num_key_value_heads %d", what,
                    d->num_attention_heads, d->num_key_value_heads);
    if (d->rotary_dim && (d->rotary_dim % 2 || d->rotary_dim > d->head_dim))
        return fail("%s: dims: rotary_dim %d must be even and at most head_dim %d", what, d->rotary_dim, d->head_dim);
    if (d->rope_scaling.kind == ROPE_SCALING_LONGROPE &&
        d->rope_scaling.n_factors != (d->rotary_dim ? d->rotary_dim : d->head_dim) / 2)
        return fail("%s: dims: longrope needs rotary_dim / 2 short and long factors", what);
    for (int fi = 0; fi < m->nfns; fi++) {
        const struct function *f = &m->fns[fi];
        for (int fj = 0; fj < fi; fj++)
            if (!strcmp(m->fns[fj].name, f->name)) return fail("%s: function %s appears twice", what, f->name);
        for (int v = 0; v < f->nvalues; v++) {
            const struct value *x = &f->values[v];
            if (x->kind == VAL_PARAM) {
                if (!x->nparts || !x->scheme) return fail("%s: function %s: parameter %s names no tensors", what, f->name, x->name);
                for (int k = 0; k < x->ndim; k++)
                    if (x->dims[k].var != DIM_CONST)
                        return fail("%s: function %s: parameter %s has a symbolic shape", what, f->name, x->name);
            } else if (x->dtype != DT_F32 && x->dtype != DT_I32) {
                return fail("%s: function %s: value %s must be float32 or int32", what, f->name, x->name);
            }
        }
        struct vctx c = {m, f, what, 0};
        for (int i = 0; i < f->nops; i++) {
            c.opi = i;
            if (check_op(&c, &f->ops[i])) return -1;
        }
        int *def = xcalloc((size_t)f->nvalues + 1, sizeof *def);
        int *last = xcalloc((size_t)f->nvalues + 1, sizeof *last);
        int rc = check_dataflow(&c, def, last);
        if (rc == 0) rc = check_plan(&c, def, last);
        free(def);
        free(last);
        if (rc) return -1;
    }
    return 0;
}
