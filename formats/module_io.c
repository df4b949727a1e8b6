/* The lowered module as msgpack: writing, and strict reading. */
#include "formats/module.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/stream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits that keep a hostile plan from asking for absurd work or memory;
 * far above any real model's numbers. */
#define MAX_FUNCTIONS 16
#define MAX_VALUES 65536
#define MAX_OPS 65536
#define MAX_PARAMS 100000
#define MAX_DIM ((int64_t)1 << 40)

static const char *kind_names[] = {"input", "output", "temp", "param"};

/* ---- writing ---- */

static void pack_str(msgpack_packer *pk, const char *s)
{
    mp_pack_cstr(pk, s);
}

static void pack_dims(msgpack_packer *pk, int ndim, const struct dim *dims, const char *rows)
{
    msgpack_pack_array(pk, (size_t)ndim);
    for (int i = 0; i < ndim; i++) {
        if (dims[i].var == DIM_ROWS) pack_str(pk, rows);
        else msgpack_pack_int64(pk, dims[i].size);
    }
}

static void pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    pack_str(pk, k);
    msgpack_pack_int64(pk, v);
}

static void pack_kv_double(msgpack_packer *pk, const char *k, double v)
{
    pack_str(pk, k);
    msgpack_pack_double(pk, v);
}

/* The row variable's name and bound, from the function's values. */
static const char *rows_name(const struct function *f)
{
    if (!strcmp(f->name, "decode")) return "batch";
    return "seq_len";
}

static int64_t rows_bound(const struct function *f)
{
    for (int i = 0; i < f->nvalues; i++)
        for (int d = 0; d < f->values[i].ndim; d++)
            if (f->values[i].dims[d].var == DIM_ROWS) return f->values[i].dims[d].size;
    return 0;
}

static void pack_value(msgpack_packer *pk, const struct function *f, const struct value *v)
{
    bool param = v->kind == VAL_PARAM, planned = v->offset >= 0;
    msgpack_pack_map(pk, 4 + (param ? 3 : 0) + (planned ? 2 : 0));
    pack_str(pk, "name");
    pack_str(pk, v->name);
    pack_str(pk, "kind");
    pack_str(pk, kind_names[v->kind]);
    pack_str(pk, "dtype");
    pack_str(pk, dtype_name(v->dtype));
    pack_str(pk, "shape");
    pack_dims(pk, v->ndim, v->dims, rows_name(f));
    if (param) {
        pack_str(pk, "role");
        pack_str(pk, param_role_name(v->role));
        pack_str(pk, "scheme");
        pack_str(pk, v->scheme ? v->scheme : "none");
        pack_str(pk, "tensors");
        msgpack_pack_array(pk, (size_t)v->nparts);
        for (int i = 0; i < v->nparts; i++) pack_str(pk, v->parts[i]);
    }
    if (planned) {
        pack_kv_int(pk, "offset", v->offset);
        pack_kv_int(pk, "nbytes", v->nbytes);
    }
}

static int count_attrs(const struct op *o)
{
    const struct op_attrs *a = &o->a;
    switch (o->kind) {
    case OP_RMS_NORM:
    case OP_ADD_RMS_NORM: return 1;
    case OP_HEAD_NORM: return 2;
    case OP_MATMUL: return a->epilogue ? 1 : 0;
    case OP_ROPE: return 4 + (a->rope_scaling.kind ? 1 : 0);
    case OP_KV_APPEND: return 4;
    case OP_ATTENTION: return 6;
    case OP_KV_CREATE: return 7;
    default: return 0;
    }
}

static void pack_attrs(msgpack_packer *pk, const struct op *o)
{
    const struct op_attrs *a = &o->a;
    switch (o->kind) {
    case OP_RMS_NORM:
    case OP_ADD_RMS_NORM: pack_kv_double(pk, "eps", a->eps); break;
    case OP_HEAD_NORM:
        pack_kv_double(pk, "eps", a->eps);
        pack_kv_int(pk, "head_dim", a->head_dim);
        break;
    case OP_MATMUL:
        if (a->epilogue == EPI_SILU_MUL) {
            pack_str(pk, "epilogue");
            pack_str(pk, "silu_mul");
        }
        break;
    case OP_ROPE:
        pack_kv_int(pk, "n_heads", a->n_heads);
        pack_kv_int(pk, "n_kv_heads", a->n_kv_heads);
        pack_kv_int(pk, "head_dim", a->head_dim);
        pack_kv_double(pk, "rope_theta", a->rope_theta);
        if (a->rope_scaling.kind) {
            pack_str(pk, "rope_scaling");
            msgpack_pack_map(pk, 5);
            pack_str(pk, "rope_type");
            pack_str(pk, "llama3");
            pack_kv_double(pk, "factor", a->rope_scaling.factor);
            pack_kv_double(pk, "low_freq_factor", a->rope_scaling.low_freq_factor);
            pack_kv_double(pk, "high_freq_factor", a->rope_scaling.high_freq_factor);
            pack_kv_int(pk, "original_max_position_embeddings", a->rope_scaling.original_max_position);
        }
        break;
    case OP_KV_APPEND:
        pack_kv_int(pk, "layer", a->layer);
        pack_kv_int(pk, "n_heads", a->n_heads);
        pack_kv_int(pk, "n_kv_heads", a->n_kv_heads);
        pack_kv_int(pk, "head_dim", a->head_dim);
        break;
    case OP_ATTENTION:
        pack_kv_int(pk, "layer", a->layer);
        pack_kv_int(pk, "n_heads", a->n_heads);
        pack_kv_int(pk, "n_kv_heads", a->n_kv_heads);
        pack_kv_int(pk, "head_dim", a->head_dim);
        pack_kv_int(pk, "sliding_window", a->sliding_window);
        pack_kv_int(pk, "attention_sink", a->attention_sink);
        break;
    case OP_KV_CREATE:
        pack_kv_int(pk, "n_layers", a->n_layers);
        pack_kv_int(pk, "n_kv_heads", a->n_kv_heads);
        pack_kv_int(pk, "head_dim", a->head_dim);
        pack_kv_int(pk, "capacity", a->capacity);
        pack_kv_int(pk, "max_sequences", a->max_sequences);
        pack_kv_int(pk, "sliding_window", a->sliding_window);
        pack_kv_int(pk, "attention_sink", a->attention_sink);
        break;
    default: break;
    }
}

static void pack_op(msgpack_packer *pk, const struct op *o)
{
    msgpack_pack_map(pk, 3 + (size_t)count_attrs(o));
    pack_str(pk, "op");
    pack_str(pk, op_name(o->kind));
    pack_str(pk, "in");
    msgpack_pack_array(pk, (size_t)o->nin);
    for (int i = 0; i < o->nin; i++) msgpack_pack_int64(pk, o->in[i]);
    pack_str(pk, "out");
    msgpack_pack_array(pk, (size_t)o->nout);
    for (int i = 0; i < o->nout; i++) msgpack_pack_int64(pk, o->out[i]);
    pack_attrs(pk, o);
}

static void pack_function(msgpack_packer *pk, const struct function *f)
{
    msgpack_pack_map(pk, 6);
    pack_str(pk, "name");
    pack_str(pk, f->name);
    pack_str(pk, "rows");
    pack_str(pk, rows_name(f));
    pack_kv_int(pk, "rows_max", rows_bound(f));
    pack_kv_int(pk, "arena_bytes", f->arena_bytes);
    pack_str(pk, "values");
    msgpack_pack_array(pk, (size_t)f->nvalues);
    for (int i = 0; i < f->nvalues; i++) pack_value(pk, f, &f->values[i]);
    pack_str(pk, "ops");
    msgpack_pack_array(pk, (size_t)f->nops);
    for (int i = 0; i < f->nops; i++) pack_op(pk, &f->ops[i]);
}

static void pack_dims_map(msgpack_packer *pk, const struct model_dims *d)
{
    msgpack_pack_map(pk, 19);
    pack_kv_int(pk, "hidden_size", d->hidden_size);
    pack_kv_int(pk, "intermediate_size", d->intermediate_size);
    pack_kv_int(pk, "vocab_size", d->vocab_size);
    pack_kv_int(pk, "active_vocab_size", d->active_vocab_size);
    pack_kv_int(pk, "num_hidden_layers", d->num_hidden_layers);
    pack_kv_int(pk, "num_attention_heads", d->num_attention_heads);
    pack_kv_int(pk, "num_key_value_heads", d->num_key_value_heads);
    pack_kv_int(pk, "head_dim", d->head_dim);
    pack_kv_double(pk, "rms_norm_eps", d->rms_norm_eps);
    pack_kv_double(pk, "rope_theta", d->rope_theta);
    pack_kv_int(pk, "context_window_size", d->context_window_size);
    pack_kv_int(pk, "prefill_chunk_size", d->prefill_chunk_size);
    pack_kv_int(pk, "sliding_window_size", d->sliding_window_size);
    pack_kv_int(pk, "attention_sink_size", d->attention_sink_size);
    pack_kv_int(pk, "max_batch_size", d->max_batch_size);
    pack_str(pk, "tie_word_embeddings");
    d->tie_word_embeddings ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pack_str(pk, "qkv_bias");
    d->qkv_bias ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pack_str(pk, "qk_norm");
    d->qk_norm ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    pack_str(pk, "rope_scaling");
    if (d->rope_scaling.kind) {
        msgpack_pack_map(pk, 5);
        pack_str(pk, "rope_type");
        pack_str(pk, "llama3");
        pack_kv_double(pk, "factor", d->rope_scaling.factor);
        pack_kv_double(pk, "low_freq_factor", d->rope_scaling.low_freq_factor);
        pack_kv_double(pk, "high_freq_factor", d->rope_scaling.high_freq_factor);
        pack_kv_int(pk, "original_max_position_embeddings", d->rope_scaling.original_max_position);
    } else {
        msgpack_pack_nil(pk);
    }
}

void module_pack_fields(struct rec_builder *b, const struct module *m)
{
    rb_int(b, "version", m->version);
    rb_str(b, "model_type", m->model_type);
    rb_str(b, "quantization", m->quantization);
    pack_dims_map(rb_key(b, "dims"), &m->dims);
    msgpack_packer *pk = rb_key(b, "params");
    msgpack_pack_array(pk, (size_t)m->nparams);
    for (int i = 0; i < m->nparams; i++) {
        const struct param_ref *p = &m->params[i];
        msgpack_pack_map(pk, 3);
        pack_str(pk, "name");
        pack_str(pk, p->name);
        pack_str(pk, "dtype");
        pack_str(pk, dtype_name(p->dtype));
        pack_str(pk, "shape");
        msgpack_pack_array(pk, (size_t)p->ndim);
        for (int d = 0; d < p->ndim; d++) msgpack_pack_int64(pk, p->shape[d]);
    }
    pk = rb_key(b, "functions");
    msgpack_pack_array(pk, (size_t)m->nfns);
    for (int i = 0; i < m->nfns; i++) pack_function(pk, &m->fns[i]);
    /* the symbolic sizes and their upper bounds (as MLC's
     * tir_var_upper_bound): derived from dims, so readers recompute them */
    const struct model_dims *d = &m->dims;
    pk = rb_key(b, "vars");
    bool sliding = d->sliding_window_size > 0;
    msgpack_pack_array(pk, sliding ? 4 : 3);
    struct { const char *name; int64_t max; } vars[4] = {
        {"seq_len", d->prefill_chunk_size},
        {"batch", d->max_batch_size},
        {sliding ? "rolling_cache_len" : "total_seq_len", sliding ? d->sliding_window_size : d->context_window_size},
        {"kv_seq_len", d->sliding_window_size + d->prefill_chunk_size},
    };
    for (int i = 0; i < (sliding ? 4 : 3); i++) {
        msgpack_pack_map(pk, 2);
        pack_str(pk, "name");
        pack_str(pk, vars[i].name);
        pack_kv_int(pk, "max", vars[i].max);
    }
    pk = rb_key(b, "passes");
    msgpack_pack_array(pk, (size_t)m->npasses);
    for (int i = 0; i < m->npasses; i++) pack_str(pk, m->passes[i]);
    pk = rb_key(b, "memory");
    msgpack_pack_map(pk, 5);
    pack_kv_int(pk, "params_bytes", m->mem.params_bytes);
    pack_kv_int(pk, "kv_bytes_per_token", m->mem.kv_bytes_per_token);
    pack_kv_int(pk, "kv_bytes_at_context", m->mem.kv_bytes_at_context);
    pack_kv_int(pk, "arena_bytes", m->mem.arena_bytes);
    pack_kv_int(pk, "total_bytes", m->mem.total_bytes);
}

/* ---- reading ---- */

struct ctx {
    const char *what;
    char path[160];
};

static int bad(const struct ctx *c, const char *field, const char *problem)
{
    return fail("%s: %s%sfield '%s' %s", c->what, c->path, c->path[0] ? ": " : "", field, problem);
}

static const msgpack_object *need(const msgpack_object *map, const char *key, const struct ctx *c)
{
    const msgpack_object *o = map_field(map, key);
    if (!o) bad(c, key, "is missing");
    return o;
}

static int get_int(const msgpack_object *map, const char *key, int64_t min, int64_t max,
                   int64_t *out, const struct ctx *c)
{
    const msgpack_object *o = need(map, key, c);
    if (!o) return -1;
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) v = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) v = o->via.i64;
    else return bad(c, key, "must be an integer");
    if (v < min || v > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "is %lld, outside %lld..%lld", (long long)v, (long long)min, (long long)max);
        return bad(c, key, msg);
    }
    *out = v;
    return 0;
}

static int get_i(const msgpack_object *map, const char *key, int min, int max, int *out, const struct ctx *c)
{
    int64_t v;
    if (get_int(map, key, min, max, &v, c)) return -1;
    *out = (int)v;
    return 0;
}

static int get_double(const msgpack_object *map, const char *key, double *out, const struct ctx *c)
{
    const msgpack_object *o = need(map, key, c);
    if (!o) return -1;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) *out = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) *out = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) *out = (double)o->via.i64;
    else return bad(c, key, "must be a number");
    if (!isfinite(*out)) return bad(c, key, "must be finite");
    return 0;
}

static int get_bool(const msgpack_object *map, const char *key, bool *out, const struct ctx *c)
{
    const msgpack_object *o = need(map, key, c);
    if (!o) return -1;
    if (o->type != MSGPACK_OBJECT_BOOLEAN) return bad(c, key, "must be true or false");
    *out = o->via.boolean;
    return 0;
}

static int get_str(const msgpack_object *map, const char *key, char **out, const struct ctx *c)
{
    const msgpack_object *o = need(map, key, c);
    if (!o) return -1;
    char *s = mp_strdup(o);
    if (!s) return bad(c, key, "must be a string");
    *out = s;
    return 0;
}

static int get_array(const msgpack_object *map, const char *key, uint32_t max,
                     const msgpack_object **out, const struct ctx *c)
{
    const msgpack_object *o = need(map, key, c);
    if (!o) return -1;
    if (o->type != MSGPACK_OBJECT_ARRAY) return bad(c, key, "must be an array");
    if (o->via.array.size > max) return bad(c, key, "has too many elements");
    *out = o;
    return 0;
}

static int parse_rope_scaling(const msgpack_object *o, struct rope_scaling *rs, struct ctx *c)
{
    memset(rs, 0, sizeof *rs);
    if (!o || o->type == MSGPACK_OBJECT_NIL) return 0;
    if (o->type != MSGPACK_OBJECT_MAP) return bad(c, "rope_scaling", "must be a map or nil");
    char *type = NULL;
    if (get_str(o, "rope_type", &type, c)) return -1;
    bool ok = !strcmp(type, "llama3");
    free(type);
    if (!ok) return bad(c, "rope_scaling", "has an unsupported rope_type (only llama3)");
    rs->kind = 1;
    if (get_double(o, "factor", &rs->factor, c) || get_double(o, "low_freq_factor", &rs->low_freq_factor, c) ||
        get_double(o, "high_freq_factor", &rs->high_freq_factor, c) ||
        get_int(o, "original_max_position_embeddings", 1, MAX_DIM, &rs->original_max_position, c))
        return -1;
    if (rs->factor <= 0 || rs->high_freq_factor <= rs->low_freq_factor || rs->low_freq_factor <= 0)
        return bad(c, "rope_scaling", "has inconsistent factors");
    return 0;
}

static int parse_dims(const msgpack_object *o, struct model_dims *d, struct ctx *c)
{
    if (o->type != MSGPACK_OBJECT_MAP) return bad(c, "dims", "must be a map");
    snprintf(c->path, sizeof c->path, "dims");
    int64_t v;
    if (get_int(o, "hidden_size", 1, MAX_DIM, &d->hidden_size, c) ||
        get_int(o, "intermediate_size", 1, MAX_DIM, &d->intermediate_size, c) ||
        get_int(o, "vocab_size", 1, MAX_DIM, &d->vocab_size, c) ||
        get_int(o, "active_vocab_size", 1, MAX_DIM, &d->active_vocab_size, c) ||
        get_i(o, "num_hidden_layers", 1, 100000, &d->num_hidden_layers, c) ||
        get_i(o, "num_attention_heads", 1, 100000, &d->num_attention_heads, c) ||
        get_i(o, "num_key_value_heads", 1, 100000, &d->num_key_value_heads, c) ||
        get_i(o, "head_dim", 2, 100000, &d->head_dim, c) ||
        get_double(o, "rms_norm_eps", &d->rms_norm_eps, c) ||
        get_double(o, "rope_theta", &d->rope_theta, c) ||
        get_int(o, "context_window_size", -1, MAX_DIM, &d->context_window_size, c) ||
        get_int(o, "prefill_chunk_size", 1, MAX_DIM, &d->prefill_chunk_size, c) ||
        get_int(o, "sliding_window_size", -1, MAX_DIM, &d->sliding_window_size, c) ||
        get_int(o, "attention_sink_size", -1, MAX_DIM, &v, c) ||
        get_i(o, "max_batch_size", 1, 1 << 20, &d->max_batch_size, c) ||
        get_bool(o, "tie_word_embeddings", &d->tie_word_embeddings, c) ||
        get_bool(o, "qkv_bias", &d->qkv_bias, c) || get_bool(o, "qk_norm", &d->qk_norm, c) ||
        parse_rope_scaling(map_field(o, "rope_scaling"), &d->rope_scaling, c))
        return -1;
    d->attention_sink_size = (int)v;
    if (d->active_vocab_size > d->vocab_size) return bad(c, "active_vocab_size", "exceeds vocab_size");
    c->path[0] = 0;
    return 0;
}

static int parse_shape(const msgpack_object *o, struct value *v, int64_t rows_max, const char *rows,
                       struct ctx *c)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 || o->via.array.size > MOD_MAX_DIMS)
        return bad(c, "shape", "must be an array of 1 to 3 dimensions");
    v->ndim = (int)o->via.array.size;
    for (int i = 0; i < v->ndim; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER && e->via.u64 >= 1 && e->via.u64 <= (uint64_t)MAX_DIM) {
            v->dims[i].size = (int64_t)e->via.u64;
            v->dims[i].var = DIM_CONST;
        } else if (mp_str_eq(e, rows)) {
            if (i != 0) return bad(c, "shape", "may be symbolic only in its first dimension");
            v->dims[i].size = rows_max;
            v->dims[i].var = DIM_ROWS;
        } else {
            return bad(c, "shape", "has a dimension that is neither a positive integer nor the row variable");
        }
    }
    return 0;
}

static int parse_value(const msgpack_object *o, struct value *v, int64_t rows_max, const char *rows,
                       struct ctx *c)
{
    memset(v, 0, sizeof *v);
    v->offset = v->nbytes = -1;
    if (o->type != MSGPACK_OBJECT_MAP) return bad(c, "values", "must hold maps");
    char *kind = NULL, *dt = NULL;
    if (get_str(o, "name", &v->name, c) || get_str(o, "kind", &kind, c)) {
        free(kind);
        return -1;
    }
    int k = -1;
    for (int i = 0; i < 4; i++)
        if (!strcmp(kind, kind_names[i])) k = i;
    free(kind);
    if (k < 0) return bad(c, "kind", "must be input, output, temp or param");
    v->kind = (enum value_kind)k;
    if (get_str(o, "dtype", &dt, c)) return -1;
    v->dtype = dtype_from_name(dt);
    free(dt);
    if (v->dtype == DT_INVALID) return bad(c, "dtype", "names an unknown type");
    const msgpack_object *shape = need(o, "shape", c);
    if (!shape || parse_shape(shape, v, rows_max, rows, c)) return -1;
    if (v->kind == VAL_PARAM) {
        const msgpack_object *t;
        char *role = NULL;
        if (get_str(o, "role", &role, c)) return -1;
        int r = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(role, param_role_name((enum param_role)i))) r = i;
        free(role);
        if (r < 0) return bad(c, "role", "must be vector, linear, embedding or final_fc");
        v->role = (enum param_role)r;
        if (get_str(o, "scheme", &v->scheme, c) || get_array(o, "tensors", MOD_MAX_PARTS, &t, c)) return -1;
        if (t->via.array.size < 1) return bad(c, "tensors", "must name at least one tensor");
        for (uint32_t i = 0; i < t->via.array.size; i++) {
            v->parts[i] = mp_strdup(&t->via.array.ptr[i]);
            if (!v->parts[i]) return bad(c, "tensors", "must hold strings");
            v->nparts++;
        }
    } else if (map_field(o, "offset")) {
        if (get_int(o, "offset", 0, INT64_MAX / 2, &v->offset, c) ||
            get_int(o, "nbytes", 0, INT64_MAX / 2, &v->nbytes, c))
            return -1;
    }
    return 0;
}

static int parse_op(const msgpack_object *o, struct op *op, int nvalues, struct ctx *c)
{
    memset(op, 0, sizeof *op);
    if (o->type != MSGPACK_OBJECT_MAP) return bad(c, "ops", "must hold maps");
    char *name = NULL;
    if (get_str(o, "op", &name, c)) return -1;
    int k = op_from_name(name);
    free(name);
    if (k < 0) return bad(c, "op", "names an unknown operation");
    op->kind = (enum op_kind)k;
    const msgpack_object *in, *out;
    if (get_array(o, "in", MOD_MAX_IN, &in, c) || get_array(o, "out", MOD_MAX_OUT, &out, c)) return -1;
    op->nin = (int)in->via.array.size;
    op->nout = (int)out->via.array.size;
    for (int pass = 0; pass < 2; pass++) {
        const msgpack_object *arr = pass ? out : in;
        int *dst = pass ? op->out : op->in;
        for (uint32_t i = 0; i < arr->via.array.size; i++) {
            const msgpack_object *e = &arr->via.array.ptr[i];
            int64_t idx;
            if (e->type == MSGPACK_OBJECT_POSITIVE_INTEGER && e->via.u64 < (uint64_t)nvalues) idx = (int64_t)e->via.u64;
            else if (!pass && e->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && e->via.i64 == -1) idx = -1;
            else return bad(c, pass ? "out" : "in", "holds an index that names no value");
            dst[i] = (int)idx;
        }
    }
    struct op_attrs *a = &op->a;
    switch (op->kind) {
    case OP_RMS_NORM:
    case OP_ADD_RMS_NORM: return get_double(o, "eps", &a->eps, c);
    case OP_HEAD_NORM:
        return get_double(o, "eps", &a->eps, c) || get_i(o, "head_dim", 1, 100000, &a->head_dim, c);
    case OP_MATMUL: {
        const msgpack_object *e = map_field(o, "epilogue");
        if (!e || e->type == MSGPACK_OBJECT_NIL) return 0;
        if (!mp_str_eq(e, "silu_mul")) return bad(c, "epilogue", "must be silu_mul");
        a->epilogue = EPI_SILU_MUL;
        return 0;
    }
    case OP_ROPE:
        return get_i(o, "n_heads", 1, 100000, &a->n_heads, c) ||
               get_i(o, "n_kv_heads", 1, 100000, &a->n_kv_heads, c) ||
               get_i(o, "head_dim", 2, 100000, &a->head_dim, c) ||
               get_double(o, "rope_theta", &a->rope_theta, c) ||
               parse_rope_scaling(map_field(o, "rope_scaling"), &a->rope_scaling, c);
    case OP_KV_APPEND:
        return get_i(o, "layer", 0, 100000, &a->layer, c) || get_i(o, "n_heads", 1, 100000, &a->n_heads, c) ||
               get_i(o, "n_kv_heads", 1, 100000, &a->n_kv_heads, c) ||
               get_i(o, "head_dim", 1, 100000, &a->head_dim, c);
    case OP_ATTENTION:
        return get_i(o, "layer", 0, 100000, &a->layer, c) || get_i(o, "n_heads", 1, 100000, &a->n_heads, c) ||
               get_i(o, "n_kv_heads", 1, 100000, &a->n_kv_heads, c) ||
               get_i(o, "head_dim", 1, 100000, &a->head_dim, c) ||
               get_i(o, "sliding_window", 0, 1 << 30, &a->sliding_window, c) ||
               get_i(o, "attention_sink", 0, 1 << 30, &a->attention_sink, c);
    case OP_KV_CREATE:
        return get_i(o, "n_layers", 1, 100000, &a->n_layers, c) ||
               get_i(o, "n_kv_heads", 1, 100000, &a->n_kv_heads, c) ||
               get_i(o, "head_dim", 1, 100000, &a->head_dim, c) ||
               get_int(o, "capacity", 1, MAX_DIM, &a->capacity, c) ||
               get_i(o, "max_sequences", 1, 1 << 20, &a->max_sequences, c) ||
               get_i(o, "sliding_window", 0, 1 << 30, &a->sliding_window, c) ||
               get_i(o, "attention_sink", 0, 1 << 30, &a->attention_sink, c);
    default: return 0;
    }
}

static int parse_function(const msgpack_object *o, struct function *f, struct ctx *c, int idx)
{
    memset(f, 0, sizeof *f);
    if (o->type != MSGPACK_OBJECT_MAP) return bad(c, "functions", "must hold maps");
    snprintf(c->path, sizeof c->path, "functions[%d]", idx);
    char *rows = NULL;
    int64_t rows_max;
    const msgpack_object *values, *ops;
    if (get_str(o, "name", &f->name, c) || get_str(o, "rows", &rows, c) ||
        get_int(o, "rows_max", 0, MAX_DIM, &rows_max, c) ||
        get_int(o, "arena_bytes", 0, INT64_MAX / 2, &f->arena_bytes, c) ||
        get_array(o, "values", MAX_VALUES, &values, c) || get_array(o, "ops", MAX_OPS, &ops, c)) {
        free(rows);
        return -1;
    }
    snprintf(c->path, sizeof c->path, "functions[%d] (%s)", idx, f->name);
    f->values = xcalloc(values->via.array.size, sizeof *f->values);
    int rc = 0;
    for (uint32_t i = 0; i < values->via.array.size && rc == 0; i++) {
        snprintf(c->path, sizeof c->path, "%s: values[%u]", f->name, i);
        rc = parse_value(&values->via.array.ptr[i], &f->values[i], rows_max, rows, c);
        f->nvalues = (int)i + 1;
    }
    free(rows);
    if (rc) return -1;
    f->ops = xcalloc(ops->via.array.size, sizeof *f->ops);
    for (uint32_t i = 0; i < ops->via.array.size && rc == 0; i++) {
        snprintf(c->path, sizeof c->path, "%s: ops[%u]", f->name, i);
        rc = parse_op(&ops->via.array.ptr[i], &f->ops[i], f->nvalues, c);
        f->nops = (int)i + 1;
    }
    c->path[0] = 0;
    return rc;
}

int module_from_msgpack(const msgpack_object *map, struct module *m, const char *what)
{
    memset(m, 0, sizeof *m);
    struct ctx c = {what, ""};
    int64_t version;
    if (get_int(map, "version", 0, INT64_MAX, &version, &c)) return -1;
    if (version != MODULE_VERSION)
        return fail("%s: version %lld is not supported (this build reads version %d)", what,
                    (long long)version, MODULE_VERSION);
    m->version = (int)version;
    const msgpack_object *dims, *params, *fns, *passes, *mem;
    if (get_str(map, "model_type", &m->model_type, &c) || get_str(map, "quantization", &m->quantization, &c) ||
        !(dims = need(map, "dims", &c)) || parse_dims(dims, &m->dims, &c) ||
        get_array(map, "params", MAX_PARAMS, &params, &c) ||
        get_array(map, "functions", MAX_FUNCTIONS, &fns, &c) ||
        get_array(map, "passes", 64, &passes, &c) || !(mem = need(map, "memory", &c)))
        goto fail;
    m->params = xcalloc(params->via.array.size, sizeof *m->params);
    for (uint32_t i = 0; i < params->via.array.size; i++) {
        const msgpack_object *p = &params->via.array.ptr[i];
        struct param_ref *r = &m->params[i];
        snprintf(c.path, sizeof c.path, "params[%u]", i);
        m->nparams = (int)i + 1;
        char *dt = NULL;
        const msgpack_object *shape;
        if (p->type != MSGPACK_OBJECT_MAP) {
            bad(&c, "params", "must hold maps");
            goto fail;
        }
        if (get_str(p, "name", &r->name, &c) || get_str(p, "dtype", &dt, &c) ||
            get_array(p, "shape", MOD_MAX_DIMS, &shape, &c)) {
            free(dt);
            goto fail;
        }
        r->dtype = dtype_from_name(dt);
        free(dt);
        if (r->dtype == DT_INVALID) {
            bad(&c, "dtype", "names an unknown type");
            goto fail;
        }
        r->ndim = (int)shape->via.array.size;
        for (int d = 0; d < r->ndim; d++) {
            const msgpack_object *e = &shape->via.array.ptr[d];
            if (e->type != MSGPACK_OBJECT_POSITIVE_INTEGER || e->via.u64 < 1 || e->via.u64 > (uint64_t)MAX_DIM) {
                bad(&c, "shape", "must hold positive integers");
                goto fail;
            }
            r->shape[d] = (int64_t)e->via.u64;
        }
    }
    c.path[0] = 0;
    m->fns = xcalloc(fns->via.array.size, sizeof *m->fns);
    for (uint32_t i = 0; i < fns->via.array.size; i++) {
        m->nfns = (int)i + 1;
        if (parse_function(&fns->via.array.ptr[i], &m->fns[i], &c, (int)i)) goto fail;
    }
    m->passes = xcalloc(passes->via.array.size ? passes->via.array.size : 1, sizeof *m->passes);
    for (uint32_t i = 0; i < passes->via.array.size; i++) {
        m->passes[i] = mp_strdup(&passes->via.array.ptr[i]);
        if (!m->passes[i]) {
            bad(&c, "passes", "must hold strings");
            goto fail;
        }
        m->npasses = (int)i + 1;
    }
    snprintf(c.path, sizeof c.path, "memory");
    if (mem->type != MSGPACK_OBJECT_MAP) {
        bad(&c, "memory", "must be a map");
        goto fail;
    }
    if (get_int(mem, "params_bytes", 0, INT64_MAX, &m->mem.params_bytes, &c) ||
        get_int(mem, "kv_bytes_per_token", 0, INT64_MAX, &m->mem.kv_bytes_per_token, &c) ||
        get_int(mem, "kv_bytes_at_context", 0, INT64_MAX, &m->mem.kv_bytes_at_context, &c) ||
        get_int(mem, "arena_bytes", 0, INT64_MAX, &m->mem.arena_bytes, &c) ||
        get_int(mem, "total_bytes", 0, INT64_MAX, &m->mem.total_bytes, &c))
        goto fail;
    if (module_validate(m, what)) goto fail;
    return 0;
fail:
    module_free(m);
    return -1;
}
