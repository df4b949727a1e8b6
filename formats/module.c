/* Building and freeing lowered modules. */
#include "formats/module.h"
#include "common/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const op_names[OP_COUNT] = {
    [OP_EMBED] = "embed",
    [OP_RMS_NORM] = "rms_norm",
    [OP_ADD] = "add",
    [OP_ADD_RMS_NORM] = "add_rms_norm",
    [OP_DEQUANTIZE] = "dequantize",
    [OP_MATMUL] = "matmul",
    [OP_SILU_MUL] = "silu_mul",
    [OP_HEAD_NORM] = "head_norm",
    [OP_ROPE] = "rope",
    [OP_KV_APPEND] = "kv_append",
    [OP_ATTENTION] = "attention",
    [OP_TAKE_LAST] = "take_last",
    [OP_KV_CREATE] = "kv_create",
    [OP_GELU_MUL] = "gelu_tanh_mul",
    [OP_SOFTCAP] = "softcap",
    [OP_CONCAT] = "concat",
};

const char *param_role_name(enum param_role r)
{
    static const char *const names[] = {"vector", "linear", "embedding", "final_fc"};
    return (unsigned)r < 4 ? names[r] : "invalid";
}

const char *op_name(enum op_kind k)
{
    return (unsigned)k < OP_COUNT ? op_names[k] : "invalid";
}

void shape_format(char *out, size_t n, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < n) snprintf(out + used, n - used, "]");
}

int op_from_name(const char *name)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (!strcmp(op_names[i], name)) return i;
    return -1;
}

struct function *module_add_function(struct module *m, const char *name)
{
    m->fns = xrealloc(m->fns, sizeof *m->fns * (size_t)(m->nfns + 1));
    struct function *f = &m->fns[m->nfns++];
    memset(f, 0, sizeof *f);
    f->name = xstrdup(name);
    return f;
}

struct function *module_function(const struct module *m, const char *name)
{
    for (int i = 0; i < m->nfns; i++)
        if (!strcmp(m->fns[i].name, name)) return &m->fns[i];
    return NULL;
}

int fn_add_value(struct function *f, const char *name, enum value_kind kind, enum dtype dt,
                 int ndim, const struct dim *dims)
{
    f->values = xrealloc(f->values, sizeof *f->values * (size_t)(f->nvalues + 1));
    struct value *v = &f->values[f->nvalues];
    memset(v, 0, sizeof *v);
    v->name = xstrdup(name);
    v->kind = kind;
    v->dtype = dt;
    v->ndim = ndim;
    for (int i = 0; i < ndim; i++) v->dims[i] = dims[i];
    v->offset = -1;
    v->nbytes = -1;
    return f->nvalues++;
}

int fn_add_op(struct function *f, enum op_kind kind, int nin, const int *in, int nout,
              const int *out, const struct op_attrs *a)
{
    f->ops = xrealloc(f->ops, sizeof *f->ops * (size_t)(f->nops + 1));
    struct op *o = &f->ops[f->nops];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->nin = nin;
    o->nout = nout;
    for (int i = 0; i < nin; i++) o->in[i] = in[i];
    for (int i = 0; i < nout; i++) o->out[i] = out[i];
    if (a) o->a = *a;
    return f->nops++;
}

int64_t value_elems(const struct value *v, int64_t rows)
{
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++) n *= v->dims[i].var == DIM_ROWS ? rows : v->dims[i].size;
    return n;
}

int64_t value_bytes(const struct value *v)
{
    if (v->kind == VAL_PARAM) return 0;
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++) n *= v->dims[i].size; /* bounds */
    return n * (int64_t)dtype_size(v->dtype);
}

static void free_function(struct function *f)
{
    for (int i = 0; i < f->nvalues; i++) {
        struct value *v = &f->values[i];
        free(v->name);
        free(v->scheme);
        for (int p = 0; p < v->nparts; p++) free(v->parts[p]);
    }
    free(f->values);
    free(f->ops);
    free(f->name);
}

void module_free(struct module *m)
{
    for (int i = 0; i < m->nfns; i++) free_function(&m->fns[i]);
    free(m->fns);
    for (int i = 0; i < m->nparams; i++) free(m->params[i].name);
    free(m->params);
    for (int i = 0; i < m->npasses; i++) free(m->passes[i]);
    free(m->passes);
    free(m->model_type);
    free(m->quantization);
    memset(m, 0, sizeof *m);
}
