/* GGUF -> HuggingFace (see gguf_hf.h): the tensor names and the weight
 * fixes. config.json is built in gguf_config.c. */
#include "formats/gguf_hf.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"

/* ---- architectures ---- */

enum arch_bits { A_LLAMA = 1, A_QWEN2 = 2, A_QWEN3 = 4, A_GEMMA2 = 8, A_GEMMA3 = 16, A_PHI3 = 32 };
#define A_GEMMA (A_GEMMA2 | A_GEMMA3)
#define A_ALL 63

static const struct {
    const char *gguf, *model_type;
    unsigned bit;
} archs[] = {
    {"llama", "llama", A_LLAMA},   {"qwen2", "qwen2", A_QWEN2},         {"qwen3", "qwen3", A_QWEN3},
    {"gemma2", "gemma2", A_GEMMA2}, {"gemma3", "gemma3_text", A_GEMMA3}, {"phi3", "phi3", A_PHI3},
};

static unsigned arch_bit(const struct gguf_model *m)
{
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].gguf, m->arch)) return archs[i].bit;
    return 0;
}

/* ---- names ---- */

static const struct {
    const char *gguf, *hf;
} global_names[] = {
    {"token_embd.weight", "model.embed_tokens.weight"},
    {"output_norm.weight", "model.norm.weight"},
    {"output.weight", "lm_head.weight"},
};

/* Per-layer names: blk.N.<gguf> -> model.layers.N.<hf>, for the
 * architectures in `archs`. */
static const struct {
    const char *gguf, *hf;
    unsigned archs;
} layer_names[] = {
    {"attn_norm.weight", "input_layernorm.weight", A_ALL},
    {"attn_q.weight", "self_attn.q_proj.weight", A_ALL & ~A_PHI3},
    {"attn_k.weight", "self_attn.k_proj.weight", A_ALL & ~A_PHI3},
    {"attn_v.weight", "self_attn.v_proj.weight", A_ALL & ~A_PHI3},
    {"attn_q.bias", "self_attn.q_proj.bias", A_QWEN2 | A_QWEN3},
    {"attn_k.bias", "self_attn.k_proj.bias", A_QWEN2 | A_QWEN3},
    {"attn_v.bias", "self_attn.v_proj.bias", A_QWEN2 | A_QWEN3},
    {"attn_qkv.weight", "self_attn.qkv_proj.weight", A_PHI3},
    {"attn_output.weight", "self_attn.o_proj.weight", A_ALL},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", A_QWEN3 | A_GEMMA3},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", A_QWEN3 | A_GEMMA3},
    {"ffn_norm.weight", "post_attention_layernorm.weight", A_LLAMA | A_QWEN2 | A_QWEN3 | A_PHI3},
    {"post_attention_norm.weight", "post_attention_layernorm.weight", A_GEMMA},
    {"ffn_norm.weight", "pre_feedforward_layernorm.weight", A_GEMMA},
    {"post_ffw_norm.weight", "post_feedforward_layernorm.weight", A_GEMMA},
    {"ffn_gate.weight", "mlp.gate_proj.weight", A_ALL & ~A_PHI3},
    {"ffn_up.weight", "mlp.up_proj.weight", A_ALL & ~A_PHI3},
    {"ffn_up.weight", "mlp.gate_up_proj.weight", A_PHI3},
    {"ffn_down.weight", "mlp.down_proj.weight", A_ALL},
};

/* Tensors that carry configuration, not weights: read by gguf_config.c. */
static bool is_config_tensor(const char *name)
{
    return !strcmp(name, "rope_freqs.weight") || !strcmp(name, "rope_factors_long.weight") ||
           !strcmp(name, "rope_factors_short.weight");
}

static char *hf_name(const struct gguf_model *m, unsigned bit, const char *name)
{
    for (size_t i = 0; i < sizeof global_names / sizeof global_names[0]; i++)
        if (!strcmp(global_names[i].gguf, name)) return xstrdup(global_names[i].hf);
    unsigned layer;
    int used = 0;
    if (sscanf(name, "blk.%u.%n", &layer, &used) == 1 && used > 0 && name[4] >= '0' && name[4] <= '9') {
        const char *rest = name + used;
        for (size_t i = 0; i < sizeof layer_names / sizeof layer_names[0]; i++)
            if ((layer_names[i].archs & bit) && !strcmp(layer_names[i].gguf, rest))
                return xasprintf("model.layers.%u.%s", layer, layer_names[i].hf);
    }
    fail("%s: tensor '%s': not a tensor of llama.cpp's %s models that has a HuggingFace name", m->g.path, name,
         m->arch);
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* ---- the model ---- */

static int cmp_hf(const void *a, const void *b)
{
    return strcmp(((const struct gguf_hf_tensor *)a)->name, ((const struct gguf_hf_tensor *)b)->name);
}

static int head_counts(const struct gguf_model *m, uint64_t *heads, uint64_t *kv)
{
    char key[96];
    snprintf(key, sizeof key, "%s.attention.head_count", m->arch);
    int got = gguf_get_uint(&m->g, key, heads);
    if (got < 0) return -1;
    if (!got || *heads == 0 || *heads > 65536)
        return fail("%s: metadata '%s': %s", m->g.path, key, got ? "must be between 1 and 65536" : "missing");
    snprintf(key, sizeof key, "%s.attention.head_count_kv", m->arch);
    got = gguf_get_uint(&m->g, key, kv);
    if (got < 0) return -1;
    if (!got) *kv = *heads;
    if (*kv == 0 || *kv > *heads) return fail("%s: metadata '%s': must be between 1 and the head count", m->g.path, key);
    return 0;
}

static int describe(struct gguf_model *m, unsigned bit, const struct gguf_tensor *gt, size_t index,
                    uint64_t heads, uint64_t kv, struct gguf_hf_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->index = index;
    if (!(t->name = hf_name(m, bit, gt->name))) return -1;
    if (!ggml_supported(gt->type))
        return fail("%s: tensor '%s': type %s is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_K and Q6_K are)",
                    m->g.path, gt->name, ggml_type_name(gt->type));
    if (gt->ndim > 2 || (gt->ndim == 2 && (gt->ne[0] > INT64_MAX || gt->ne[1] > INT64_MAX)))
        return fail("%s: tensor '%s': %d dimensions (a weight has 1 or 2)", m->g.path, gt->name, gt->ndim);
    if (gt->numel == 0) return fail("%s: tensor '%s': a dimension is 0", m->g.path, gt->name);
    t->ndim = gt->ndim;
    t->shape[0] = (int64_t)(gt->ndim == 2 ? gt->ne[1] : gt->ne[0]);
    t->shape[1] = gt->ndim == 2 ? (int64_t)gt->ne[0] : 0;
    t->numel = gt->numel;
    if (bit == A_LLAMA && (ends_with(gt->name, ".attn_q.weight") || ends_with(gt->name, ".attn_k.weight"))) {
        t->fix = FIX_UNPERMUTE;
        t->heads = (int)(ends_with(gt->name, ".attn_q.weight") ? heads : kv);
        if (t->shape[0] % (2 * t->heads))
            return fail("%s: tensor '%s': %lld rows are not %d heads of an even size", m->g.path, gt->name,
                        (long long)t->shape[0], t->heads);
    }
    if ((bit & A_GEMMA) && ends_with(gt->name, "norm.weight")) t->fix = FIX_NORM_MINUS_ONE;
    bool raw = gt->type == GGML_F16 || gt->type == GGML_BF16;
    t->dtype = raw && t->fix != FIX_NORM_MINUS_ONE ? (gt->type == GGML_F16 ? DT_F16 : DT_BF16) : DT_F32;
    if (ggml_is_quantized(gt->type)) m->nquantized++;
    return 0;
}

int gguf_model_from(struct gguf_model *m, struct gguf *g)
{
    memset(m, 0, sizeof *m);
    m->g = *g;
    memset(g, 0, sizeof *g);
    int got = gguf_get_string(&m->g, "general.architecture", &m->arch);
    if (got <= 0) {
        if (!got) fail("%s: metadata 'general.architecture': missing", m->g.path);
        goto bad;
    }
    unsigned bit = arch_bit(m);
    if (!bit) {
        fail("%s: metadata 'general.architecture': '%s' is not supported (llama, qwen2, qwen3, gemma2, gemma3, phi3)",
             m->g.path, m->arch);
        goto bad;
    }
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (archs[i].bit == bit) m->model_type = archs[i].model_type;
    uint64_t heads, kv;
    if (head_counts(m, &heads, &kv)) goto bad;
    m->tensors = xcalloc(m->g.ntensors + 1, sizeof *m->tensors);
    size_t counts[64] = {0};
    for (size_t i = 0; i < m->g.ntensors; i++) {
        const struct gguf_tensor *gt = &m->g.tensors[i];
        if (is_config_tensor(gt->name)) continue;
        if (describe(m, bit, gt, i, heads, kv, &m->tensors[m->ntensors++])) goto bad;
        if (ggml_is_quantized(gt->type) && (unsigned)gt->type < 64) counts[gt->type]++;
    }
    for (unsigned t = 0; t < 64; t++)
        if (counts[t] > counts[m->quantized_type] || (counts[t] && !ggml_is_quantized(m->quantized_type)))
            m->quantized_type = (enum ggml_type)t;
    qsort(m->tensors, m->ntensors, sizeof *m->tensors, cmp_hf);
    for (size_t i = 1; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, m->tensors[i - 1].name)) {
            fail("%s: two tensors are HuggingFace's '%s'", m->g.path, m->tensors[i].name);
            goto bad;
        }
    if (!gguf_model_find(m, "model.embed_tokens.weight")) {
        fail("%s: no tensor 'token_embd.weight' (the token embedding)", m->g.path);
        goto bad;
    }
    return 0;
bad:
    gguf_model_close(m);
    return -1;
}

int gguf_model_open(struct gguf_model *m, const char *path)
{
    struct gguf g;
    memset(m, 0, sizeof *m);
    if (gguf_open(&g, path)) return -1;
    return gguf_model_from(m, &g);
}

void gguf_model_close(struct gguf_model *m)
{
    for (size_t i = 0; i < m->ntensors; i++) free(m->tensors[i].name);
    free(m->tensors);
    free(m->arch);
    gguf_close(&m->g);
    memset(m, 0, sizeof *m);
}

const struct gguf_hf_tensor *gguf_model_find(const struct gguf_model *m, const char *hf_name)
{
    size_t lo = 0, hi = m->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->tensors[mid].name, hf_name);
        if (!c) return &m->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ---- data ---- */

void gguf_unpermute_rows(const void *src, void *dst, uint64_t rows, uint64_t row_bytes, int heads)
{
    uint64_t per_head = rows / (uint64_t)heads, half = per_head / 2;
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (uint64_t h = 0; h < (uint64_t)heads; h++)
        for (uint64_t i = 0; i < half; i++)
            for (uint64_t j = 0; j < 2; j++)
                memcpy(d + (h * per_head + j * half + i) * row_bytes, s + (h * per_head + 2 * i + j) * row_bytes,
                       row_bytes);
}

int gguf_model_tensor_data(const struct gguf_model *m, const struct gguf_hf_tensor *t, const void **data,
                           void **owned)
{
    const struct gguf_tensor *gt = &m->g.tensors[t->index];
    const unsigned char *bytes = gguf_tensor_bytes(&m->g, gt);
    *owned = NULL;
    *data = NULL;
    size_t item = dtype_size(t->dtype), n;
    if (!size_mul((size_t)t->numel, item, &n)) return fail("%s: tensor '%s': too large", m->g.path, gt->name);
    bool as_stored = t->dtype != DT_F32 || gt->type == GGML_F32;
    if (as_stored && t->fix == FIX_NONE) {
        *data = bytes;
        return 0;
    }
    unsigned char *values = xmalloc(n ? n : 1);
    if (!as_stored) ggml_to_f32(gt->type, bytes, (float *)values, t->numel);
    else memcpy(values, bytes, n);
    if (t->fix == FIX_UNPERMUTE) {
        unsigned char *out = xmalloc(n ? n : 1);
        uint64_t rows = (uint64_t)t->shape[0];
        gguf_unpermute_rows(values, out, rows, n / rows, t->heads);
        free(values);
        values = out;
    } else if (t->fix == FIX_NORM_MINUS_ONE) {
        float *f = (float *)values;
        for (uint64_t i = 0; i < t->numel; i++) f[i] -= 1.0f;
    }
    *data = *owned = values;
    return 0;
}

/* ---- helpers ---- */

double gguf_float32_decimal(double v)
{
    float f = (float)v;
    if (!isfinite(f)) return v;
    char text[48];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)f);
        if (strtof(text, NULL) == f) return strtod(text, NULL);
    }
    return (double)f;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *gguf_in_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fail("%s: %s", dir, strerror(errno));
        return NULL;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && ends_with(e->d_name, ".gguf")) {
            names = xgrow(names, &cap, n + 1, sizeof *names);
            names[n++] = xstrdup(e->d_name);
        }
    closedir(d);
    char *out = NULL;
    if (n == 1) {
        out = path_join(dir, names[0]);
    } else if (n == 0) {
        fail("%s: no .gguf file", dir);
    } else {
        qsort(names, n, sizeof *names, cmp_str);
        fail("%s: %zu .gguf files (%s, %s%s): name the one to use", dir, n, names[0], names[1], n > 2 ? ", ..." : "");
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return out;
}
