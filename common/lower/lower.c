#include "common/lower/lower.h"
#include "common/buf.h"
#include "common/err.h"
#include "formats/param_map.h"
#include "formats/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-architecture differences, as MLC-LLM's model definitions have them:
 * the fused attention projection is qkv_proj for Llama/Mistral and c_attn for
 * Qwen2/Qwen3 (with a bias on Qwen2); Qwen3 normalises q and k per head.
 * Gemma 2 and 3 wrap attention and MLP in pre- and post-norms, gate with
 * GELU (tanh) and scale the embeddings; Gemma 3 keeps q, k and v apart,
 * under language_model.; Phi-3 is Llama's graph under its own names. */
enum family { FAMILY_LLAMA, FAMILY_GEMMA2, FAMILY_GEMMA3, FAMILY_PHI3 };

/* Parameter names (printf formats; %s the prefix, %d the layer). */
struct param_names {
    const char *embed, *final_norm, *lm_head;
    const char *input_norm, *qkv, *o_proj, *post_attn_norm, *pre_ffn_norm, *post_ffn_norm, *gate_up, *down;
    const char *q_norm, *k_norm;
};

static const struct param_names llama_names = {
    "%smodel.embed_tokens", "%smodel.norm.weight", "%slm_head",
    "%smodel.layers.%d.input_layernorm.weight", "%smodel.layers.%d.self_attn.%s",
    "%smodel.layers.%d.self_attn.o_proj", "%smodel.layers.%d.post_attention_layernorm.weight", NULL, NULL,
    "%smodel.layers.%d.mlp.gate_up_proj", "%smodel.layers.%d.mlp.down_proj",
    "%smodel.layers.%d.self_attn.q_norm.weight", "%smodel.layers.%d.self_attn.k_norm.weight",
};

static const struct param_names gemma_names = {
    "%smodel.embed_tokens", "%smodel.norm.weight", "%slm_head",
    "%smodel.layers.%d.input_layernorm.weight", "%smodel.layers.%d.self_attn.%s",
    "%smodel.layers.%d.self_attn.o_proj", "%smodel.layers.%d.post_attention_layernorm.weight",
    "%smodel.layers.%d.pre_feedforward_layernorm.weight", "%smodel.layers.%d.post_feedforward_layernorm.weight",
    "%smodel.layers.%d.mlp.gate_up_proj", "%smodel.layers.%d.mlp.down_proj",
    "%smodel.layers.%d.self_attn.q_norm.weight", "%smodel.layers.%d.self_attn.k_norm.weight",
};

static const struct param_names phi3_names = {
    "%stransformer.embd", "%stransformer.norm.weight", "%slm_head",
    "%stransformer.h.%d.ln.weight", "%stransformer.h.%d.mixer.%s", "%stransformer.h.%d.mixer.out_proj",
    "%stransformer.h.%d.post_attention_layernorm.weight", NULL, NULL, "%stransformer.h.%d.mlp.gate_up_proj",
    "%stransformer.h.%d.mlp.down_proj", NULL, NULL,
};

static const struct arch {
    const char *model_type;
    const char *qkv_module;   /* NULL: separate q_proj, k_proj, v_proj */
    enum family family;
    const char *prefix;       /* of every parameter name */
    const struct param_names *names;
} arches[] = {
    {"llama", "qkv_proj", FAMILY_LLAMA, "", &llama_names},
    {"mistral", "qkv_proj", FAMILY_LLAMA, "", &llama_names},
    {"qwen2", "c_attn", FAMILY_LLAMA, "", &llama_names},
    {"qwen3", "c_attn", FAMILY_LLAMA, "", &llama_names},
    {"gemma2", "qkv_proj", FAMILY_GEMMA2, "", &gemma_names},
    {"gemma3", NULL, FAMILY_GEMMA3, "language_model.", &gemma_names},
    {"gemma3_text", NULL, FAMILY_GEMMA3, "language_model.", &gemma_names},
    {"phi3", "qkv_proj", FAMILY_PHI3, "", &phi3_names},
};

const char *lower_supported_models(void)
{
    return "llama mistral qwen2 qwen3 gemma2 gemma3 gemma3_text phi3";
}

static const struct arch *arch_find(const char *model_type)
{
    for (size_t i = 0; i < sizeof arches / sizeof arches[0]; i++)
        if (!strcmp(arches[i].model_type, model_type)) return &arches[i];
    return NULL;
}

struct builder {
    const struct lower_spec *spec;
    const struct quant_scheme *scheme;
    struct module *m;
    struct function *f;
    int64_t rows_max;
    const struct arch *arch;
};

static bool is_gemma(const struct builder *b)
{
    return b->arch->family == FAMILY_GEMMA2 || b->arch->family == FAMILY_GEMMA3;
}

/* A parameter name: fmt with the architecture's prefix, the layer and an
 * optional module name. */
static const char *pname(const struct builder *b, char *out, size_t n, const char *fmt, int layer, const char *mod)
{
    if (strstr(fmt, "%d")) snprintf(out, n, fmt, b->arch->prefix, layer, mod);
    else snprintf(out, n, fmt, b->arch->prefix);
    return out;
}

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

/* Layer i of a model whose layers alternate attends through its sliding
 * window unless every local_window_pattern-th (Gemma). */
static bool sliding_layer(const struct model_dims *d, int i)
{
    return d->local_window > 0 && d->local_window_pattern > 0 && (i + 1) % d->local_window_pattern != 0;
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
    a->rotary_dim = d->rotary_dim;
    a->sliding_window = d->sliding_window_size > 0 ? (int)d->sliding_window_size : 0;
    a->attention_sink = d->sliding_window_size > 0 && d->attention_sink_size > 0 ? d->attention_sink_size : 0;
    if (d->query_pre_attn_scalar > 0) a->attn_scale = 1.0 / sqrt(d->query_pre_attn_scalar);
    a->softcap = d->attn_softcap;
    if (sliding_layer(d, layer)) {
        a->local_window = (int)d->local_window;
        /* Gemma 3's sliding layers rotate with their own base, unscaled */
        if (d->rope_local_theta > 0) {
            a->rope_theta = d->rope_local_theta;
            memset(&a->rope_scaling, 0, sizeof a->rope_scaling);
        }
    }
    /* the stored norms hold 1 + w (MLC's loaders add the one); the
     * HuggingFace weights of the reference hold w */
    if (is_gemma(b) && b->spec->hf_weights) a->weight_offset = 1.0;
}

/* x normalised by the vector parameter `path` ([H] or the head dim). */
static int norm(struct builder *b, int x, const char *path, int64_t n, const char *out_name, int64_t const_rows)
{
    const struct model_dims *d = &b->spec->dims;
    int w = vector_param(b, path, n);
    if (w < 0) return -1;
    struct op_attrs a = {.eps = d->rms_norm_eps};
    if (is_gemma(b) && b->spec->hf_weights) a.weight_offset = 1.0;
    int y = const_rows ? const_value(b, out_name, VAL_TEMP, const_rows, n) : rows_value(b, out_name, VAL_TEMP, DT_F32, n);
    op1(b, OP_RMS_NORM, x, w, -1, y, &a);
    return y;
}

static int add(struct builder *b, int x, int y, const char *out_name)
{
    int s = rows_value(b, out_name, VAL_TEMP, DT_F32, b->f->values[x].dims[1].size);
    op1(b, OP_ADD, x, y, -1, s, NULL);
    return s;
}

/* The fused q/k/v of a layer: one projection, or three side by side. */
static int qkv_projection(struct builder *b, int h, int i)
{
    const struct model_dims *d = &b->spec->dims;
    const struct param_names *P = b->arch->names;
    int64_t H = d->hidden_size, hd = d->head_dim;
    int64_t qkv_cols = (int64_t)(d->num_attention_heads + 2 * d->num_key_value_heads) * hd;
    char path[192], name[64];
    if (b->arch->qkv_module) {
        snprintf(name, sizeof name, "L%d.qkv", i);
        return linear(b, h, pname(b, path, sizeof path, P->qkv, i, b->arch->qkv_module), ROLE_LINEAR, qkv_cols, H,
                      d->qkv_bias, name, 0);
    }
    static const char *const mods[] = {"q_proj", "k_proj", "v_proj"};
    int parts[3];
    for (int k = 0; k < 3; k++) {
        int64_t n = (k ? d->num_key_value_heads : d->num_attention_heads) * hd;
        snprintf(name, sizeof name, "L%d.%c", i, "qkv"[k]);
        parts[k] = linear(b, h, pname(b, path, sizeof path, P->qkv, i, mods[k]), ROLE_LINEAR, n, H, d->qkv_bias, name, 0);
        if (parts[k] < 0) return -1;
    }
    snprintf(name, sizeof name, "L%d.qkv", i);
    int qkv = rows_value(b, name, VAL_TEMP, DT_F32, qkv_cols);
    fn_add_op(b->f, OP_CONCAT, 3, parts, 1, &qkv, NULL);
    return qkv;
}

/* One decoder layer; returns the new residual stream value. */
static int layer(struct builder *b, int x, int i)
{
    const struct model_dims *d = &b->spec->dims;
    const struct param_names *P = b->arch->names;
    bool gemma = is_gemma(b);
    int64_t H = d->hidden_size, I = d->intermediate_size;
    int64_t qkv_cols = (int64_t)(d->num_attention_heads + 2 * d->num_key_value_heads) * d->head_dim;
    int64_t att_cols = (int64_t)d->num_attention_heads * d->head_dim;
    char name[160], path[192];
    struct op_attrs a;
    attn_attrs(b, &a, i);

#define NAME(fmt) (snprintf(name, sizeof name, "L%d." fmt, i), name)
#define PATH(fmt) pname(b, path, sizeof path, P->fmt, i, NULL)
    int h = norm(b, x, PATH(input_norm), H, NAME("attn_norm"), 0);
    if (h < 0) return -1;
    int qkv = qkv_projection(b, h, i);
    if (qkv < 0) return -1;
    if (d->qk_norm) {
        int qn = vector_param(b, PATH(q_norm), d->head_dim);
        int kn = qn < 0 ? -1 : vector_param(b, PATH(k_norm), d->head_dim);
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
    int o = linear(b, att, PATH(o_proj), ROLE_LINEAR, H, att_cols, false, NAME("attn_out"), 0);
    if (o < 0) return -1;
    if (gemma && (o = norm(b, o, PATH(post_attn_norm), H, NAME("attn_out_normed"), 0)) < 0) return -1;
    int x1 = add(b, x, o, NAME("residual_attn"));

    int h2 = norm(b, x1, gemma ? PATH(pre_ffn_norm) : PATH(post_attn_norm), H, NAME("mlp_norm"), 0);
    if (h2 < 0) return -1;
    int gu = linear(b, h2, PATH(gate_up), ROLE_LINEAR, 2 * I, H, false, NAME("gate_up"), 0);
    if (gu < 0) return -1;
    int act = rows_value(b, NAME("gated"), VAL_TEMP, DT_F32, I);
    op1(b, gemma ? OP_GELU_MUL : OP_SILU_MUL, gu, -1, -1, act, NULL);
    int down = linear(b, act, PATH(down), ROLE_LINEAR, H, I, false, NAME("mlp_out"), 0);
    if (down < 0) return -1;
    if (gemma && (down = norm(b, down, PATH(post_ffn_norm), H, NAME("mlp_out_normed"), 0)) < 0) return -1;
    return add(b, x1, down, NAME("residual_mlp"));
#undef NAME
#undef PATH
}

/* Final norm and logits of `x` ([rows, H], or [1, H] after take_last). */
static int head(struct builder *b, int x, int64_t const_rows)
{
    const struct model_dims *d = &b->spec->dims;
    const struct param_names *P = b->arch->names;
    char path[192];
    int n = norm(b, x, pname(b, path, sizeof path, P->final_norm, 0, NULL), d->hidden_size, "final_norm", const_rows);
    if (n < 0) return -1;
    /* Tied embeddings: logits = x · Eᵀ with the embedding table itself. */
    const char *fmt = d->tie_word_embeddings ? P->embed : P->lm_head;
    enum param_role role = d->tie_word_embeddings ? ROLE_EMBEDDING : ROLE_FINAL_FC;
    bool capped = d->final_softcap > 0;
    int logits = linear(b, n, pname(b, path, sizeof path, fmt, 0, NULL), role, d->vocab_size, d->hidden_size, false,
                        capped ? "logits_uncapped" : "logits", (int)const_rows);
    if (logits < 0) return -1;
    if (capped) { /* Gemma 2: cap * tanh(logits / cap) */
        struct op_attrs a = {.softcap = d->final_softcap};
        int capped_logits = const_rows ? const_value(b, "logits", VAL_OUTPUT, const_rows, d->vocab_size)
                                       : rows_value(b, "logits", VAL_OUTPUT, DT_F32, d->vocab_size);
        op1(b, OP_SOFTCAP, logits, -1, -1, capped_logits, &a);
        return capped_logits;
    }
    b->f->values[logits].kind = VAL_OUTPUT;
    return logits;
}

static int build_embed(struct builder *b)
{
    const struct model_dims *d = &b->spec->dims;
    char path[192];
    b->f = module_add_function(b->m, "embed");
    b->rows_max = d->prefill_chunk_size > d->max_batch_size ? d->prefill_chunk_size : d->max_batch_size;
    int ids = rows_value(b, "input_ids", VAL_INPUT, DT_I32, 0);
    int table = matrix_param(b, pname(b, path, sizeof path, b->arch->names->embed, 0, NULL), ROLE_EMBEDDING,
                             d->vocab_size, d->hidden_size);
    if (table < 0) return -1;
    int x = rows_value(b, "embeddings", VAL_OUTPUT, DT_F32, d->hidden_size);
    /* Gemma scales the embeddings by sqrt(hidden_size), a float32 constant */
    struct op_attrs a = {.scale = is_gemma(b) ? (double)(float)sqrt((double)d->hidden_size) : 0};
    op1(b, OP_EMBED, ids, table, -1, x, &a);
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
    if (d->num_attention_heads < 1 || d->num_key_value_heads < 1 || d->num_hidden_layers < 1 || d->head_dim < 2)
        return fail("layer and head counts must be positive");
    if (d->num_attention_heads % d->num_key_value_heads)
        return fail("num_attention_heads %d is not a multiple of num_key_value_heads %d",
                    d->num_attention_heads, d->num_key_value_heads);
    if (d->head_dim % 2) return fail("head_dim %d must be even for rotary embeddings", d->head_dim);
    if (d->rotary_dim && (d->rotary_dim % 2 || d->rotary_dim > d->head_dim))
        return fail("rotary_dim %d must be even and at most head_dim %d", d->rotary_dim, d->head_dim);
    if (d->local_window > 0 && d->sliding_window_size > 0)
        return fail("a model whose layers alternate (local window %lld) cannot also have a rolling sliding window",
                    (long long)d->local_window);
    if (d->sliding_window_size <= 0 && d->context_window_size <= 0)
        return fail("context_window_size must be positive when there is no sliding window");
    if (d->prefill_chunk_size <= 0) return fail("prefill_chunk_size must be positive");
    if (d->max_batch_size <= 0) return fail("max_batch_size must be positive");
    return 0;
}

int lower_build(const struct lower_spec *spec, struct module *m)
{
    memset(m, 0, sizeof *m);
    struct builder b = {spec, quant_scheme_by_name(spec->quantization), m, NULL, 0, arch_find(spec->model_type)};
    if (!b.arch)
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
