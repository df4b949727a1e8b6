#include "common/lower/passes.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/lower/lower.h"
#include "common/lower/memplan.h"

#include <stdlib.h>
#include <string.h>

static const struct pass passes[] = {
    {"fuse-dequantize-matmul", 1, "matmul reads the stored weight, dequantizing on the fly",
     pass_fuse_dequantize_matmul},
    {"fuse-add-norm", 2, "residual add and the RMS norm after it become one op", pass_fuse_add_norm},
    {"fuse-gate-up", 2, "SiLU or GELU gating runs as the gate/up projection's epilogue", pass_fuse_gate_up},
    {"dead-code-elimination", 0, "ops whose results nothing uses are removed", pass_dead_code_elimination},
    {"plan-memory", 0, "activations share one arena by liveness", pass_plan_memory},
};

const struct pass *pass_list(int *count)
{
    *count = (int)(sizeof passes / sizeof passes[0]);
    return passes;
}

const struct pass *pass_find(const char *name)
{
    for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++)
        if (!strcmp(passes[i].name, name)) return &passes[i];
    return NULL;
}

/* ---- helpers ---- */

static int producer(const struct function *f, int value)
{
    for (int i = 0; i < f->nops; i++)
        for (int k = 0; k < f->ops[i].nout; k++)
            if (f->ops[i].out[k] == value) return i;
    return -1;
}

static int uses(const struct function *f, int value)
{
    int n = f->values[value].kind == VAL_OUTPUT ? 1 : 0;
    for (int i = 0; i < f->nops; i++)
        for (int k = 0; k < f->ops[i].nin; k++)
            if (f->ops[i].in[k] == value) n++;
    return n;
}

static void remove_op(struct function *f, int i)
{
    memmove(&f->ops[i], &f->ops[i + 1], sizeof *f->ops * (size_t)(f->nops - i - 1));
    f->nops--;
}

/* ---- fusions ---- */

int pass_fuse_dequantize_matmul(struct module *m)
{
    for (int fi = 0; fi < m->nfns; fi++) {
        struct function *f = &m->fns[fi];
        for (int i = 0; i < f->nops; i++) {
            struct op *mm = &f->ops[i];
            if (mm->kind != OP_MATMUL || f->values[mm->in[1]].kind != VAL_TEMP) continue;
            int p = producer(f, mm->in[1]);
            if (p < 0 || f->ops[p].kind != OP_DEQUANTIZE || uses(f, mm->in[1]) != 1) continue;
            mm->in[1] = f->ops[p].in[0]; /* the dequantize op is now dead */
        }
    }
    return 0;
}

int pass_fuse_add_norm(struct module *m)
{
    for (int fi = 0; fi < m->nfns; fi++) {
        struct function *f = &m->fns[fi];
        for (int r = 0; r < f->nops; r++) {
            struct op *norm = &f->ops[r];
            if (norm->kind != OP_RMS_NORM) continue;
            int a = producer(f, norm->in[0]);
            if (a < 0 || f->ops[a].kind != OP_ADD) continue;
            struct op *add = &f->ops[a];
            /* the sum stays an output (the residual stream goes on); the
             * normed value is now defined earlier, which no op between
             * can have read */
            add->kind = OP_ADD_RMS_NORM;
            add->in[2] = norm->in[1];
            add->nin = 3;
            add->out[1] = norm->out[0];
            add->nout = 2;
            add->a.eps = norm->a.eps;
            add->a.weight_offset = norm->a.weight_offset;
            remove_op(f, r);
            r--;
        }
    }
    return 0;
}

int pass_fuse_gate_up(struct module *m)
{
    for (int fi = 0; fi < m->nfns; fi++) {
        struct function *f = &m->fns[fi];
        for (int s = 0; s < f->nops; s++) {
            struct op *gate = &f->ops[s];
            if (gate->kind != OP_SILU_MUL && gate->kind != OP_GELU_MUL) continue;
            int p = producer(f, gate->in[0]);
            if (p < 0 || f->ops[p].kind != OP_MATMUL || f->ops[p].a.epilogue != EPI_NONE ||
                uses(f, gate->in[0]) != 1)
                continue;
            f->ops[p].out[0] = gate->out[0];
            f->ops[p].a.epilogue = gate->kind == OP_SILU_MUL ? EPI_SILU_MUL : EPI_GELU_MUL;
            remove_op(f, s);
            s--;
        }
    }
    return 0;
}

/* ---- dead code ---- */

static bool has_side_effect(enum op_kind k)
{
    return k == OP_KV_APPEND || k == OP_KV_CREATE;
}

static void compact_values(struct function *f)
{
    int *used = xcalloc((size_t)f->nvalues, sizeof *used);
    for (int i = 0; i < f->nops; i++) {
        for (int k = 0; k < f->ops[i].nin; k++)
            if (f->ops[i].in[k] >= 0) used[f->ops[i].in[k]] = 1;
        for (int k = 0; k < f->ops[i].nout; k++) used[f->ops[i].out[k]] = 1;
    }
    int *map = xcalloc((size_t)f->nvalues, sizeof *map);
    int n = 0;
    for (int v = 0; v < f->nvalues; v++) {
        struct value *x = &f->values[v];
        if (used[v] || x->kind == VAL_INPUT || x->kind == VAL_OUTPUT) {
            map[v] = n;
            f->values[n++] = *x;
        } else {
            map[v] = -1;
            free(x->name);
            free(x->scheme);
            for (int p = 0; p < x->nparts; p++) free(x->parts[p]);
        }
    }
    f->nvalues = n;
    for (int i = 0; i < f->nops; i++) {
        for (int k = 0; k < f->ops[i].nin; k++)
            if (f->ops[i].in[k] >= 0) f->ops[i].in[k] = map[f->ops[i].in[k]];
        for (int k = 0; k < f->ops[i].nout; k++) f->ops[i].out[k] = map[f->ops[i].out[k]];
    }
    free(used);
    free(map);
}

int pass_dead_code_elimination(struct module *m)
{
    for (int fi = 0; fi < m->nfns; fi++) {
        struct function *f = &m->fns[fi];
        char *live = xcalloc((size_t)f->nvalues, 1);
        for (int v = 0; v < f->nvalues; v++) live[v] = f->values[v].kind == VAL_OUTPUT;
        for (int i = f->nops - 1; i >= 0; i--) {
            struct op *o = &f->ops[i];
            bool keep = has_side_effect(o->kind);
            for (int k = 0; k < o->nout; k++) keep = keep || live[o->out[k]];
            if (!keep) {
                remove_op(f, i);
                continue;
            }
            for (int k = 0; k < o->nin; k++)
                if (o->in[k] >= 0) live[o->in[k]] = 1;
        }
        free(live);
        compact_values(f);
    }
    return 0;
}

int pass_plan_memory(struct module *m)
{
    for (int fi = 0; fi < m->nfns; fi++) memplan_function(&m->fns[fi], true);
    return 0;
}

int passes_run(struct module *m, int level, const char *const *off, int noff,
               void (*after)(const struct module *m, const char *pass, void *ctx), void *ctx)
{
    for (size_t i = 0; i < sizeof passes / sizeof passes[0]; i++) {
        const struct pass *p = &passes[i];
        bool disabled = p->min_level > level;
        for (int k = 0; k < noff; k++)
            if (!strcmp(off[k], p->name)) disabled = true;
        if (disabled) continue;
        if (p->run(m) != 0) return fail_prefix("pass %s", p->name);
        m->passes = xrealloc(m->passes, sizeof *m->passes * (size_t)(m->npasses + 1));
        m->passes[m->npasses++] = xstrdup(p->name);
        lower_estimate_memory(m);
        if (module_validate(m, p->name) != 0) return fail_prefix("after pass %s", p->name);
        if (after) after(m, p->name, ctx);
    }
    return 0;
}
