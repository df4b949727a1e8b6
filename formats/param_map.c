#include "formats/param_map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

enum arch { ARCH_LLAMA, ARCH_MISTRAL, ARCH_QWEN2, ARCH_QWEN3, ARCH_GEMMA2, ARCH_GEMMA3, ARCH_GEMMA3_TEXT, ARCH_PHI3 };

static const char *const arch_names[] = {"llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "gemma3_text", "phi3"};
#define NARCH (int)(sizeof arch_names / sizeof arch_names[0])

const char *param_map_architectures(void)
{
    return "llama, mistral, qwen2, qwen3, gemma2, gemma3, gemma3_text, phi3";
}

struct builder {
    struct param_map *m;
    size_t cap, ucap;
};

static struct mlc_param *add(struct builder *b, enum pm_module mod, int ndim, int64_t d0, int64_t d1,
                             const char *fmt, ...) MLC_PRINTF(6, 7);

static struct mlc_param *add(struct builder *b, enum pm_module mod, int ndim, int64_t d0, int64_t d1,
                             const char *fmt, ...)
{
    b->m->params = xgrow(b->m->params, &b->cap, b->m->nparams + 1, sizeof *b->m->params);
    struct mlc_param *p = &b->m->params[b->m->nparams++];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->module = mod;
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = d1;
    /* by default the HF name is the MLC name */
    snprintf(p->sources[0], sizeof p->sources[0], "%s", p->name);
    p->nsources = 1;
    return p;
}

/* Sources "L.self_attn.{q,k,v}_proj.SUFFIX" for a fused qkv parameter. */
static void fuse(struct mlc_param *p, const char *prefix, const char *const *parts, int n, const char *suffix)
{
    p->nsources = n;
    for (int i = 0; i < n; i++) snprintf(p->sources[i], sizeof p->sources[i], "%s.%s.%s", prefix, parts[i], suffix);
}

static void add_unused(struct builder *b, const char *name)
{
    b->m->unused = xgrow(b->m->unused, &b->ucap, b->m->nunused + 1, sizeof *b->m->unused);
    snprintf(b->m->unused[b->m->nunused++], PM_NAME_MAX, "%s", name);
}

/* MLC's Gemma 2 (Gemma2ForCausalLM: fused qkv_proj and gate_up_proj, four
 * norms a layer stored as 1 + w, the embedding tied) and Gemma 3
 * (Gemma3ForCausalLM: separate q/k/v, q_norm and k_norm, everything under
 * language_model.; a multimodal checkpoint keeps the same prefix). */
static void build_gemma(struct builder *b, const struct weight_config *c, bool gemma3)
{
    const int64_t H = c->hidden_size, I = c->intermediate_size, d = c->head_dim;
    const int64_t q = c->num_attention_heads * d, kv = c->num_key_value_heads * d;
    const char *mlc = gemma3 ? "language_model." : "";
    const char *hf = gemma3 && c->multimodal ? "language_model." : "";
    static const char *const qkv[] = {"q_proj", "k_proj", "v_proj"}, *const gu[] = {"gate_proj", "up_proj"};
    struct mlc_param *p = add(b, PM_EMBEDDING, 2, -1, H, "%smodel.embed_tokens.weight", mlc);
    snprintf(p->sources[0], sizeof p->sources[0], "%smodel.embed_tokens.weight", hf);
    for (int64_t i = 0; i < c->num_hidden_layers; i++) {
        char attn[128], hattn[128], mlp[128], hmlp[128], layer[96], hlayer[96];
        snprintf(layer, sizeof layer, "%smodel.layers.%lld", mlc, (long long)i);
        snprintf(hlayer, sizeof hlayer, "%smodel.layers.%lld", hf, (long long)i);
        snprintf(attn, sizeof attn, "%s.self_attn", layer);
        snprintf(hattn, sizeof hattn, "%s.self_attn", hlayer);
        snprintf(mlp, sizeof mlp, "%s.mlp", layer);
        snprintf(hmlp, sizeof hmlp, "%s.mlp", hlayer);
        if (gemma3) {
            for (int k = 0; k < 3; k++) {
                p = add(b, PM_LINEAR, 2, k ? kv : q, H, "%s.%s.weight", attn, qkv[k]);
                snprintf(p->sources[0], sizeof p->sources[0], "%s.%s.weight", hattn, qkv[k]);
            }
        } else {
            fuse(add(b, PM_LINEAR, 2, q + 2 * kv, H, "%s.qkv_proj.weight", attn), hattn, qkv, 3, "weight");
        }
        p = add(b, PM_LINEAR, 2, H, q, "%s.o_proj.weight", attn);
        snprintf(p->sources[0], sizeof p->sources[0], "%s.o_proj.weight", hattn);
        if (gemma3) {
            static const char *const norms[] = {"q_norm", "k_norm"};
            for (int k = 0; k < 2; k++) {
                p = add(b, PM_OTHER, 1, d, 0, "%s.%s.weight", attn, norms[k]);
                snprintf(p->sources[0], sizeof p->sources[0], "%s.%s.weight", hattn, norms[k]);
                p->add_one = true;
            }
        }
        fuse(add(b, PM_LINEAR, 2, 2 * I, H, "%s.gate_up_proj.weight", mlp), hmlp, gu, 2, "weight");
        p = add(b, PM_LINEAR, 2, H, I, "%s.down_proj.weight", mlp);
        snprintf(p->sources[0], sizeof p->sources[0], "%s.down_proj.weight", hmlp);
        static const char *const norms[] = {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                                            "post_feedforward_layernorm"};
        for (int k = 0; k < 4; k++) {
            p = add(b, PM_OTHER, 1, H, 0, "%s.%s.weight", layer, norms[k]);
            snprintf(p->sources[0], sizeof p->sources[0], "%s.%s.weight", hlayer, norms[k]);
            p->add_one = true;
        }
    }
    p = add(b, PM_OTHER, 1, H, 0, "%smodel.norm.weight", mlc);
    snprintf(p->sources[0], sizeof p->sources[0], "%smodel.norm.weight", hf);
    p->add_one = true;
}

/* MLC's Phi-3 (Phi3ForCausalLM): its own names (transformer.h.N.mixer...)
 * for the checkpoint's, whose qkv_proj and gate_up_proj are already fused;
 * the embedding has the concrete vocabulary size, lm_head the symbolic one. */
static void build_phi3(struct builder *b, const struct weight_config *c)
{
    const int64_t H = c->hidden_size, I = c->intermediate_size, d = c->head_dim;
    const int64_t q = c->num_attention_heads * d, kv = c->num_key_value_heads * d;
    struct mlc_param *p = add(b, PM_EMBEDDING, 2, c->vocab_size, H, "transformer.embd.weight");
    snprintf(p->sources[0], sizeof p->sources[0], "model.embed_tokens.weight");
    static const struct {
        const char *mlc, *hf;
        enum pm_module mod;
        int what; /* 0: hidden vector, 1: qkv, 2: o, 3: gate_up, 4: down */
    } layer[] = {
        {"ln.weight", "input_layernorm.weight", PM_OTHER, 0},
        {"mixer.qkv_proj.weight", "self_attn.qkv_proj.weight", PM_LINEAR, 1},
        {"mixer.out_proj.weight", "self_attn.o_proj.weight", PM_LINEAR, 2},
        {"mlp.gate_up_proj.weight", "mlp.gate_up_proj.weight", PM_LINEAR, 3},
        {"mlp.down_proj.weight", "mlp.down_proj.weight", PM_LINEAR, 4},
        {"post_attention_layernorm.weight", "post_attention_layernorm.weight", PM_OTHER, 0},
    };
    for (int64_t i = 0; i < c->num_hidden_layers; i++)
        for (size_t k = 0; k < sizeof layer / sizeof layer[0]; k++) {
            int64_t shapes[5][2] = {{H, 0}, {q + 2 * kv, H}, {H, q}, {2 * I, H}, {H, I}};
            int w = layer[k].what;
            p = add(b, layer[k].mod, w ? 2 : 1, shapes[w][0], shapes[w][1], "transformer.h.%lld.%s", (long long)i,
                    layer[k].mlc);
            snprintf(p->sources[0], sizeof p->sources[0], "model.layers.%lld.%s", (long long)i, layer[k].hf);
        }
    p = add(b, PM_OTHER, 1, H, 0, "transformer.norm.weight");
    snprintf(p->sources[0], sizeof p->sources[0], "model.norm.weight");
    if (!c->tie_word_embeddings) add(b, PM_LINEAR, 2, -1, H, "lm_head.weight")->final_fc = true;
}

int param_map_build(struct param_map *m, const struct weight_config *c)
{
    memset(m, 0, sizeof *m);
    int a = -1;
    for (int i = 0; i < NARCH; i++)
        if (!strcmp(c->model_type, arch_names[i])) a = i;
    if (a < 0) return fail("model_type '%s' is not supported (%s)", c->model_type, param_map_architectures());
    if (c->num_attention_heads % c->num_key_value_heads)
        return fail("num_attention_heads %lld is not a multiple of num_key_value_heads %lld",
                    (long long)c->num_attention_heads, (long long)c->num_key_value_heads);
    struct builder b = {m, 0, 0};
    if (a == ARCH_GEMMA2 || a == ARCH_GEMMA3 || a == ARCH_GEMMA3_TEXT) {
        build_gemma(&b, c, a != ARCH_GEMMA2);
        return 0;
    }
    if (a == ARCH_PHI3) {
        build_phi3(&b, c);
        return 0;
    }
    const int64_t H = c->hidden_size, I = c->intermediate_size, d = c->head_dim;
    const int64_t q = c->num_attention_heads * d, kv = c->num_key_value_heads * d;
    /* Llama and Mistral declare embedding and lm_head rows as the symbolic
     * vocab_size (any row count loads); Qwen2/Qwen3 use the concrete value */
    const int64_t V = a == ARCH_LLAMA || a == ARCH_MISTRAL ? -1 : c->vocab_size;
    const bool fused_c_attn = a == ARCH_QWEN2 || a == ARCH_QWEN3;
    const bool qkv_bias = a == ARCH_QWEN2 || (a == ARCH_QWEN3 && c->attention_bias);
    const bool o_bias = a == ARCH_QWEN3 && c->attention_bias;
    static const char *const qkv[] = {"q_proj", "k_proj", "v_proj"}, *const gu[] = {"gate_proj", "up_proj"};

    add(&b, PM_EMBEDDING, 2, V, H, "model.embed_tokens.weight");
    for (int64_t i = 0; i < c->num_hidden_layers; i++) {
        char attn[96], mlp[96];
        snprintf(attn, sizeof attn, "model.layers.%lld.self_attn", (long long)i);
        snprintf(mlp, sizeof mlp, "model.layers.%lld.mlp", (long long)i);
        const char *fused = fused_c_attn ? "c_attn" : "qkv_proj";
        fuse(add(&b, PM_LINEAR, 2, q + 2 * kv, H, "%s.%s.weight", attn, fused), attn, qkv, 3, "weight");
        if (qkv_bias) fuse(add(&b, PM_OTHER, 1, q + 2 * kv, 0, "%s.%s.bias", attn, fused), attn, qkv, 3, "bias");
        add(&b, PM_LINEAR, 2, H, q, "%s.o_proj.weight", attn);
        if (o_bias) add(&b, PM_OTHER, 1, H, 0, "%s.o_proj.bias", attn);
        if (a == ARCH_QWEN3) {
            add(&b, PM_OTHER, 1, d, 0, "%s.q_norm.weight", attn);
            add(&b, PM_OTHER, 1, d, 0, "%s.k_norm.weight", attn);
        }
        fuse(add(&b, PM_LINEAR, 2, 2 * I, H, "%s.gate_up_proj.weight", mlp), mlp, gu, 2, "weight");
        add(&b, PM_LINEAR, 2, H, I, "%s.down_proj.weight", mlp);
        add(&b, PM_OTHER, 1, H, 0, "model.layers.%lld.input_layernorm.weight", (long long)i);
        add(&b, PM_OTHER, 1, H, 0, "model.layers.%lld.post_attention_layernorm.weight", (long long)i);
        if (a == ARCH_LLAMA || a == ARCH_MISTRAL) {
            char un[PM_NAME_MAX];
            snprintf(un, sizeof un, "%s.rotary_emb.inv_freq", attn);
            add_unused(&b, un);
        }
    }
    add(&b, PM_OTHER, 1, H, 0, "model.norm.weight");
    /* Mistral always has its own lm_head; the others only when untied */
    if (a == ARCH_MISTRAL || !c->tie_word_embeddings) add(&b, PM_LINEAR, 2, V, H, "lm_head.weight")->final_fc = true;
    return 0;
}

void param_map_free(struct param_map *m)
{
    free(m->params);
    free(m->unused);
    memset(m, 0, sizeof *m);
}

bool param_map_is_unused(const struct param_map *m, const char *name)
{
    for (size_t i = 0; i < m->nunused; i++)
        if (!strcmp(m->unused[i], name)) return true;
    return false;
}

/* "x.weight" → "x" + suffix */
static void renamed(char *out, size_t size, const char *name, const char *suffix)
{
    size_t n = strlen(name);
    if (n > 7 && !strcmp(name + n - 7, ".weight")) n -= 7;
    snprintf(out, size, "%.*s%s", (int)n, name, suffix);
}

int param_outputs(const struct quant_scheme *s, const struct mlc_param *p, int64_t rows, int64_t k,
                  struct mlc_output out[3])
{
    memset(out, 0, 3 * sizeof *out);
    bool quantize = false;
    if (s->kind == QUANT_GROUP)
        quantize = (p->module == PM_LINEAR && (!p->final_fc || s->quantize_final_fc)) ||
                   (p->module == PM_EMBEDDING && s->quantize_embedding);
    else if (s->kind == QUANT_PER_TENSOR)
        quantize = p->module == PM_LINEAR && !p->final_fc; /* FP8 schemes leave lm_head and embeddings */
    if (!quantize) {
        snprintf(out[0].name, sizeof out[0].name, "%s", p->name);
        out[0].kind = OUT_PLAIN;
        out[0].dtype = s->model_dtype;
        out[0].ndim = p->ndim;
        out[0].shape[0] = rows;
        out[0].shape[1] = k;
        return 1;
    }
    renamed(out[0].name, sizeof out[0].name, p->name, ".q_weight");
    renamed(out[1].name, sizeof out[1].name, p->name, ".q_scale");
    out[0].kind = OUT_Q_WEIGHT;
    out[1].kind = OUT_Q_SCALE;
    out[0].ndim = out[1].ndim = 2;
    if (s->kind == QUANT_GROUP) {
        int64_t words = (int64_t)quant_row_words(s, (size_t)k), groups = (int64_t)quant_groups(s, (size_t)k);
        bool kn = s->layout == QUANT_KN && p->module == PM_LINEAR;
        out[0].dtype = DT_U32;
        out[1].dtype = s->model_dtype;
        out[0].shape[0] = kn ? words : rows;
        out[0].shape[1] = kn ? rows : words;
        out[1].shape[0] = kn ? groups : rows;
        out[1].shape[1] = kn ? rows : groups;
        return 2;
    }
    out[0].dtype = s->storage_dtype;
    out[0].shape[0] = rows;
    out[0].shape[1] = k;
    if (!s->use_scale) return 1;
    out[1].dtype = DT_F32;
    out[1].ndim = 1;
    out[1].shape[0] = 1;
    if (!s->calibration_scale) return 2;
    renamed(out[2].name, sizeof out[2].name, p->name, ".q_calibration_scale");
    out[2].kind = OUT_CALIBRATION;
    out[2].dtype = DT_F32;
    out[2].ndim = 1;
    out[2].shape[0] = 1;
    return 3;
}

int weight_storage(const struct quant_scheme *s, const char *name, enum param_role role, int64_t rows,
                   int64_t cols, struct mlc_output out[3])
{
    struct mlc_param p;
    memset(&p, 0, sizeof p);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.ndim = role == ROLE_VECTOR ? 1 : 2;
    p.module = role == ROLE_EMBEDDING ? PM_EMBEDDING : role == ROLE_VECTOR ? PM_OTHER : PM_LINEAR;
    p.final_fc = role == ROLE_FINAL_FC;
    return param_outputs(s, &p, rows, role == ROLE_VECTOR ? 1 : cols, out);
}
