#include "common/lower/lower.h"
#include "common/buf.h"
#include "common/err.h"
#include "formats/param_map.h"
#include "formats/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-architecture differences, as MLC-LLM's model definitions have them:
 * the fused attention projection is qkv_proj for Llama/Mistral and c_attn for
 * Qwen2/Qwen3 (with a bias on Qwen2); Qwen3 normalises q and k per head. */
static const struct arch {
    const char *model_type;
    const char *qkv_module;
} arches[] = {
    {"llama", "qkv_proj"},
    {"mistral", "qkv_proj"},
    {"qwen2", "c_attn"},
    {"qwen3", "c_attn"},
};

const char *lower_supported_models(void)
{
    return "llama mistral qwen2 qwen3";
}

const char *lower_qkv_module(const char *model_type)
{
    for (size_t i = 0; i < sizeof arches / sizeof arches[0]; i++)
        if (!strcmp(arches[i].model_type, model_type)) return arches[i].qkv_module;
    return NULL;
}

struct builder {
    const struct lower_spec *spec;
    const struct quant_scheme *scheme;
    struct module *m;
    struct function *f;
    int64_t rows_max;
    const char *qkv_module;
};

static const struct tensor_info *find_tensor(const struct lower_spec *s, const char *name)
{
    for (int i = 0; i < s->ntensors; i++)
        if (!strcmp(s->tensors[i].name, name)) return &s->tensors[i];
    return NULL;
}

/* Check that the weights hold `name` as expected and list it among the
 * module's parameters (once). */
static int bind_tensor(struct builder *b, const char *name, enum dtype dt, int ndim, const int64_t *shape)
{
    const struct tensor_info *t = find_tensor(b->spec, name);
    char want[64], got[64];
    shape_format(want, sizeof want, ndim, shape);
    if (!t) return fail("parameter %s %s %s is missing from the weights", name, dtype_name(dt), want);
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        shape_format(got, sizeof got, t->ndim, t->shape);
        return fail("parameter %s has shape %s in the weights, but the config implies %s", name, got, want);
    }
    if (t->dtype != dt)
        return fail("parameter %s is %s in the weights, but %s implies %s", name, dtype_name(t->dtype),
                    b->spec->quantization, dtype_name(dt));
    for (int i = 0; i < b->m->nparams; i++)
        if (!strcmp(b->m->params[i].name, name)) return 0;
    b->m->params = xrealloc(b->m->params, sizeof *b->m->params * (size_t)(b->m->nparams + 1));
    struct param_ref *p = &b->m->params[b->m->nparams++];
    p->name = xstrdup(name);
    p->dtype = dt;
    p->ndim = ndim;
    for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
    return 0;
}

static int rows_value(struct builder *b, const char *name, enum value_kind kind, enum dtype dt, int64_t cols)
{
    struct dim d[2] = {{b->rows_max, DIM_ROWS}, {cols, DIM_CONST}};
    return fn_add_value(b->f, name, kind, dt, cols ? 2 : 1, d);
}

static int const_value(struct builder *b, const char *name, enum value_kind kind, int64_t d0, int64_t d1)
{
    struct dim d[2] = {{d0, DIM_CONST}, {d1, DIM_CONST}};
    return fn_add_value(b->f, name, kind, DT_F32, 2, d);
}

/* A parameter (MLC name) of logical shape [n] (vectors) or [n, k], bound
 * to the tensors the scheme stores it as. */
static int param(struct builder *b, const char *name, enum param_role role, int64_t n, int64_t k)
{
    struct mlc_output out[3];
    int np = weight_storage(b->scheme, name, role, n, k, out);
    for (int i = 0; i < np; i++)
        if (bind_tensor(b, out[i].name, out[i].dtype, out[i].ndim, out[i].shape)) return -1;
    struct dim d[2] = {{n, DIM_CONST}, {k, DIM_CONST}};
    int v = fn_add_value(b->f, name, VAL_PARAM, DT_F32, role == ROLE_VECTOR ? 1 : 2, d);
    struct value *val = &b->f->values[v];
    val->role = role;
    val->scheme = xstrdup(out[0].kind != OUT_PLAIN ? b->scheme->name : "none");
    for (int i = 0; i < np; i++) val->parts[i] = xstrdup(out[i].name);
    val->nparts = np;
    return v;
}

static int vector_param(struct builder *b, const char *name, int64_t n)
{
    return param(b, name, ROLE_VECTOR, n, 0);
}

/* A [n, k] weight of module `path` ("path.weight"). */
static int matrix_param(struct builder *b, const char *path, enum param_role role, int64_t n, int64_t k)
{
    char *name = xasprintf("%s.weight", path);
    int v = param(b, name, role, n, k);
    free(name);
    return v;
}

static int op1(struct builder *b, enum op_kind k, int in0, int in1, int in2, int out, const struct op_attrs *a)
{
    int in[3] = {in0, in1, in2};
    int nin = in2 >= 0 ? 3 : in1 >= 0 ? 2 : 1;
    return fn_add_op(b->f, k, nin, in, out >= 0 ? 1 : 0, &out, a);
}

/* x · Wᵀ (+ bias): the unoptimised form dequantizes the weight into a
 * temporary first; the fuse-dequantize-matmul pass folds that away. An FP8
 * weight-and-activation layer is one matmul at every level, as MLC's FP8
 * linear is: its activations are rounded to FP8 and multiplied by the FP8
 * weights with the scales applied after the sum, so no float copy of the
 * weight takes part. */
static int linear(struct builder *b, int x, const char *path, enum param_role role, int64_t n, int64_t k,
                  bool bias, const char *out_name, int out_rows_const)
{
    int w = matrix_param(b, path, role, n, k);
    if (w < 0) return -1;
    int bv = -1;
    if (bias) {
        char *bn = xasprintf("%s.bias", path);
        bv = vector_param(b, bn, n);
        free(bn);
        if (bv < 0) return -1;
    }
    int wf = w;
    if (b->scheme->kind != QUANT_PER_TENSOR || !strcmp(b->f->values[w].scheme, "none")) {
        char *tmp = xasprintf("%s.dequantized", path);
        wf = const_value(b, tmp, VAL_TEMP, n, k);
        free(tmp);
        op1(b, OP_DEQUANTIZE, w, -1, -1, wf, NULL);
    }
    int y = out_rows_const ? const_value(b, out_name, VAL_TEMP, out_rows_const, n)
                           : rows_value(b, out_name, VAL_TEMP, DT_F32, n);
    op1(b, OP_MATMUL, x, wf, bv, y, NULL);
    return y;
}

static void attn_attrs(const struct builder *b, struct op_attrs *a, int layer)
{
    const struct model_dims *d = &b->spec->dims;
    memset(a, 0, sizeof *a);
    a->layer = layer;
    a->n_heads = d->num_attention_heads;
    a->n_kv_heads = d->num_key_value_heads;
    a->head_dim = d->head_dim;
    a->eps = d->rms_norm_eps;
    a->rope_theta = d->rope_theta;
    a->rope_scaling = d->rope_scaling;
    a->sliding_window = d->sliding_window_size > 0 ? (int)d->sliding_window_size : 0;
    a->attention_sink = d->sliding_window_size > 0 && d->attention_sink_size > 0 ? d->attention_sink_size : 0;
}

/* One decoder layer; returns the new residual stream value. */
static int layer(struct builder *b, int x, int i)
{
    const struct model_dims *d = &b->spec->dims;
    int64_t H = d->hidden_size, I = d->intermediate_size;
    int64_t qkv_cols = (int64_t)(d->num_attention_heads + 2 * d->num_key_value_heads) * d->head_dim;
    int64_t att_cols = (int64_t)d->num_attention_heads * d->head_dim;
    char name[160], path[160];
    struct op_attrs a;
    attn_attrs(b, &a, i);
    struct op_attrs norm = {.eps = d->rms_norm_eps};

#define NAME(fmt) (snprintf(name, sizeof name, "L%d." fmt, i), name)
#define PATH(fmt) (snprintf(path, sizeof path, "model.layers.%d." fmt, i), path)
    int w = vector_param(b, PATH("input_layernorm.weight"), H);
    if (w < 0) return -1;
    int h = rows_value(b, NAME("attn_norm"), VAL_TEMP, DT_F32, H);
    op1(b, OP_RMS_NORM, x, w, -1, h, &norm);

    snprintf(path, sizeof path, "model.layers.%d.self_attn.%s", i, b->qkv_module);
    int qkv = linear(b, h, path, ROLE_LINEAR, qkv_cols, H, d->qkv_bias, NAME("qkv"), 0);
    if (qkv < 0) return -1;
    if (d->qk_norm) {
        int qn = vector_param(b, PATH("self_attn.q_norm.weight"), d->head_dim);
        int kn = qn < 0 ? -1 : vector_param(b, PATH("self_attn.k_norm.weight"), d->head_dim);
        if (kn < 0) return -1;
        int normed = rows_value(b, NAME("qkv_normed"), VAL_TEMP, DT_F32, qkv_cols);
        op1(b, OP_HEAD_NORM, qkv, qn, kn, normed, &a);
        qkv = normed;
    }
    int rot = rows_value(b, NAME("qkv_rotated"), VAL_TEMP, DT_F32, qkv_cols);
    op1(b, OP_ROPE, qkv, -1, -1, rot, &a);
    op1(b, OP_KV_APPEND, rot, -1, -1, -1, &a);
    int att = rows_value(b, NAME("attention"), VAL_TEMP, DT_F32, att_cols);
    op1(b, OP_ATTENTION, rot, -1, -1, att, &a);
    int o = linear(b, att, PATH("self_attn.o_proj"), ROLE_LINEAR, H, att_cols, false, NAME("attn_out"), 0);
    if (o < 0) return -1;
    int x1 = rows_value(b, NAME("residual_attn"), VAL_TEMP, DT_F32, H);
    op1(b, OP_ADD, x, o, -1, x1, NULL);

    w = vector_param(b, PATH("post_attention_layernorm.weight"), H);
    if (w < 0) return -1;
    int h2 = rows_value(b, NAME("mlp_norm"), VAL_TEMP, DT_F32, H);
    op1(b, OP_RMS_NORM, x1, w, -1, h2, &norm);
    int gu = linear(b, h2, PATH("mlp.gate_up_proj"), ROLE_LINEAR, 2 * I, H, false, NAME("gate_up"), 0);
    if (gu < 0) return -1;
    int act = rows_value(b, NAME("gated"), VAL_TEMP, DT_F32, I);
    op1(b, OP_SILU_MUL, gu, -1, -1, act, NULL);
    int down = linear(b, act, PATH("mlp.down_proj"), ROLE_LINEAR, H, I, false, NAME("mlp_out"), 0);
    if (down < 0) return -1;
    int x2 = rows_value(b, NAME("residual_mlp"), VAL_TEMP, DT_F32, H);
    op1(b, OP_ADD, x1, down, -1, x2, NULL);
#undef NAME
#undef PATH
    return x2;
}

/* Final norm and logits of `x` ([rows, H], or [1, H] after take_last). */
static int head(struct builder *b, int x, int64_t const_rows)
{
    const struct model_dims *d = &b->spec->dims;
    int w = vector_param(b, "model.norm.weight", d->hidden_size);
    if (w < 0) return -1;
    struct op_attrs norm = {.eps = d->rms_norm_eps};
    int n = const_rows ? const_value(b, "final_norm", VAL_TEMP, const_rows, d->hidden_size)
                       : rows_value(b, "final_norm", VAL_TEMP, DT_F32, d->hidden_size);
    op1(b, OP_RMS_NORM, x, w, -1, n, &norm);
    /* Tied embeddings: logits = x · Eᵀ with the embedding table itself. */
    const char *path = d->tie_word_embeddings ? "model.embed_tokens" : "lm_head";
    enum param_role role = d->tie_word_embeddings ? ROLE_EMBEDDING : ROLE_FINAL_FC;
    int logits = linear(b, n, path, role, d->vocab_size, d->hidden_size, false, "logits", (int)const_rows);
    if (logits < 0) return -1;
    b->f->values[logits].kind = VAL_OUTPUT;
    return logits;
}

static int build_embed(struct builder *b)
{
    const struct model_dims *d = &b->spec->dims;
    b->f = module_add_function(b->m, "embed");
    b->rows_max = d->prefill_chunk_size > d->max_batch_size ? d->prefill_chunk_size : d->max_batch_size;
    int ids = rows_value(b, "input_ids", VAL_INPUT, DT_I32, 0);
    int table = matrix_param(b, "model.embed_tokens", ROLE_EMBEDDING, d->vocab_size, d->hidden_size);
    if (table < 0) return -1;
    int x = rows_value(b, "embeddings", VAL_OUTPUT, DT_F32, d->hidden_size);
    op1(b, OP_EMBED, ids, table, -1, x, NULL);
    return 0;
}

static int build_forward(struct builder *b, const char *name, int64_t rows_max, bool last_only)
{
    const struct model_dims *d = &b->spec->dims;
    b->f = module_add_function(b->m, name);
    b->rows_max = rows_max;
    int x = rows_value(b, "input_embeddings", VAL_INPUT, DT_F32, d->hidden_size);
    for (int i = 0; i < d->num_hidden_layers; i++)
        if ((x = layer(b, x, i)) < 0) return -1;
    if (last_only) {
        int last = const_value(b, "last_hidden", VAL_TEMP, 1, d->hidden_size);
        op1(b, OP_TAKE_LAST, x, -1, -1, last, NULL);
        return head(b, last, 1) < 0 ? -1 : 0;
    }
    return head(b, x, 0) < 0 ? -1 : 0;
}

static int64_t kv_capacity(const struct model_dims *d)
{
    if (d->sliding_window_size > 0) {
        int64_t sink = d->attention_sink_size > 0 ? d->attention_sink_size : 0;
        return sink + d->sliding_window_size + d->prefill_chunk_size - 1;
    }
    return d->context_window_size;
}

static void build_kv_create(struct builder *b)
{
    const struct model_dims *d = &b->spec->dims;
    b->f = module_add_function(b->m, "create_kv_cache");
    struct op_attrs a;
    attn_attrs(b, &a, 0);
    a.n_layers = d->num_hidden_layers;
    a.capacity = kv_capacity(d);
    a.max_sequences = d->max_batch_size;
    fn_add_op(b->f, OP_KV_CREATE, 0, NULL, 0, NULL, &a);
}

static int check_dims(const struct lower_spec *s)
{
    const struct model_dims *d = &s->dims;
    if (d->num_attention_heads % d->num_key_value_heads)
        return fail("num_attention_heads %d is not a multiple of num_key_value_heads %d",
                    d->num_attention_heads, d->num_key_value_heads);
    if (d->head_dim % 2) return fail("head_dim %d must be even for rotary embeddings", d->head_dim);
    if (d->sliding_window_size <= 0 && d->context_window_size <= 0)
        return fail("context_window_size must be positive when there is no sliding window");
    if (d->prefill_chunk_size <= 0) return fail("prefill_chunk_size must be positive");
    if (d->max_batch_size <= 0) return fail("max_batch_size must be positive");
    return 0;
}

int lower_build(const struct lower_spec *spec, struct module *m)
{
    memset(m, 0, sizeof *m);
    struct builder b = {spec, quant_scheme_by_name(spec->quantization), m, NULL, 0, lower_qkv_module(spec->model_type)};
    if (!b.qkv_module)
        return fail("model_type '%s' is not supported (supported: %s)", spec->model_type, lower_supported_models());
    if (!b.scheme)
        return fail("quantization '%s' is not known (known: %s)", spec->quantization, quant_scheme_names());
    if (check_dims(spec)) return -1;
    m->version = MODULE_VERSION;
    m->model_type = xstrdup(spec->model_type);
    m->quantization = xstrdup(spec->quantization);
    m->dims = spec->dims;
    const struct model_dims *d = &spec->dims;
    if (build_embed(&b) || build_forward(&b, "prefill", d->prefill_chunk_size, true) ||
        build_forward(&b, "decode", d->max_batch_size, false)) {
        module_free(m);
        return -1;
    }
    build_kv_create(&b);
    lower_estimate_memory(m);
    if (module_validate(m, "lowered module") != 0) {
        module_free(m);
        return -1;
    }
    return 0;
}

void lower_estimate_memory(struct module *m)
{
    const struct model_dims *d = &m->dims;
    struct memory_estimate *e = &m->mem;
    e->params_bytes = 0;
    for (int i = 0; i < m->nparams; i++) {
        int64_t n = 1;
        for (int k = 0; k < m->params[i].ndim; k++) n *= m->params[i].shape[k];
        e->params_bytes += n * (int64_t)dtype_size(m->params[i].dtype);
    }
    /* the CPU engine keeps keys and values in float32 */
    e->kv_bytes_per_token = 2 * (int64_t)d->num_hidden_layers * d->num_key_value_heads * d->head_dim * 4;
    e->kv_bytes_at_context = e->kv_bytes_per_token * kv_capacity(d);
    e->arena_bytes = 0;
    for (int i = 0; i < m->nfns; i++)
        if (m->fns[i].arena_bytes > e->arena_bytes) e->arena_bytes = m->fns[i].arena_bytes;
    e->total_bytes = e->params_bytes + e->kv_bytes_at_context + e->arena_bytes;
}
