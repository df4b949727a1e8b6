/* mkmodel: write a deterministic synthetic HuggingFace model directory.
 *
 *   mkmodel --arch llama|mistral|qwen2|qwen3|gemma2|gemma3_text|phi3 [--dtype f32|f16|bf16]
 *           [--seed N] [--shards N] [--tokenizer DIR] [--vocab N] [--hidden N]
 *           [--intermediate N] [--layers N] [--heads N] [--kv-heads N]
 *           [--head-dim N] [--tie 0|1] [--rope-scaling llama3] [--inv-freq]
 *           [--big] -o DIR
 *
 * Weights are seeded random numbers: each tensor's values come from a
 * generator seeded by (seed, tensor name), so they do not depend on the file
 * layout (one file or shards) or on the dtype's byte order of writing. The
 * same arguments give the same bytes. The Gemma 2, Gemma 3 and Phi-3
 * fixtures are shaped to exercise what those architectures add: Gemma 2's
 * soft-capping (caps small enough to bite), its query_pre_attn_scalar
 * (unequal to head_dim) and the sliding window (8 tokens) on every other
 * layer; Gemma 3's q/k norms, local and global rotary bases with linear
 * scaling, and a sliding window pattern of 3 over 6 layers; Phi-3's fused
 * qkv_proj and gate_up_proj and LongRoPE with an original context of 16
 * (longer sequences take the long factors). --big writes a 1.1B-parameter bf16
 * llama with TinyLlama-1.1B's shapes, for benchmarks (about 2.2 GB). Files
 * follow what transformers' save_pretrained writes: config.json and
 * generation_config.json (indent 2, sorted keys), model.safetensors or
 * model-0000K-of-0000N.safetensors with model.safetensors.index.json. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomic.h"
#include "common/buf.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "formats/dtype.h"

struct spec {
    const char *arch;
    const char *dtype; /* f32 f16 bf16 */
    unsigned long long seed;
    int shards;
    int vocab, hidden, intermediate, layers, heads, kv_heads, head_dim, max_pos;
    int tie;
    int qkv_bias, qk_norm;
    int sliding_window; /* mistral, gemma */
    int orig_max_pos;   /* phi3 */
    double rope_theta, rms_eps;
    const char *rope_scaling;
    int inv_freq;
    const char *tokenizer_dir;
    const char *out;
};

struct tensor {
    char name[128];
    int ndim;
    long long shape[2];
    enum { INIT_LINEAR, INIT_EMBED, INIT_NORM, INIT_BIAS, INIT_INV_FREQ, INIT_GEMMA_NORM } init;
    long long numel;
    size_t nbytes;
    int file;
    size_t offset; /* within its file's data section */
};

static struct tensor *tensors;
static size_t ntensors, cap_tensors;

static void add(const struct spec *s, const char *name, int ndim, long long d0, long long d1, int init)
{
    tensors = xgrow(tensors, &cap_tensors, ntensors + 1, sizeof *tensors);
    struct tensor *t = &tensors[ntensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->init = init;
    t->numel = ndim == 1 ? d0 : d0 * d1;
    size_t item = !strcmp(s->dtype, "f32") || init == INIT_INV_FREQ ? 4 : 2;
    t->nbytes = (size_t)t->numel * item;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const struct tensor *)a)->name, ((const struct tensor *)b)->name);
}

static bool is(const struct spec *s, const char *arch)
{
    return !strcmp(s->arch, arch);
}

/* Gemma keeps w of its (1 + w) norms; Phi-3 its fused projections. */
static void build_gemma_phi3(const struct spec *s)
{
    int d = s->head_dim, H = s->hidden, I = s->intermediate;
    bool gemma = !is(s, "phi3");
    int norm = gemma ? INIT_GEMMA_NORM : INIT_NORM;
    char n[128];
    add(s, "model.embed_tokens.weight", 2, s->vocab, H, INIT_EMBED);
    add(s, "model.norm.weight", 1, H, 0, norm);
    if (!s->tie) add(s, "lm_head.weight", 2, s->vocab, H, INIT_LINEAR);
    for (int i = 0; i < s->layers; i++) {
#define L(fmt) (snprintf(n, sizeof n, "model.layers.%d." fmt, i), n)
        add(s, L("input_layernorm.weight"), 1, H, 0, norm);
        add(s, L("post_attention_layernorm.weight"), 1, H, 0, norm);
        add(s, L("self_attn.o_proj.weight"), 2, H, (long long)s->heads * d, INIT_LINEAR);
        add(s, L("mlp.down_proj.weight"), 2, H, I, INIT_LINEAR);
        if (gemma) {
            add(s, L("pre_feedforward_layernorm.weight"), 1, H, 0, norm);
            add(s, L("post_feedforward_layernorm.weight"), 1, H, 0, norm);
            add(s, L("self_attn.q_proj.weight"), 2, (long long)s->heads * d, H, INIT_LINEAR);
            add(s, L("self_attn.k_proj.weight"), 2, (long long)s->kv_heads * d, H, INIT_LINEAR);
            add(s, L("self_attn.v_proj.weight"), 2, (long long)s->kv_heads * d, H, INIT_LINEAR);
            add(s, L("mlp.gate_proj.weight"), 2, I, H, INIT_LINEAR);
            add(s, L("mlp.up_proj.weight"), 2, I, H, INIT_LINEAR);
            if (s->qk_norm) {
                add(s, L("self_attn.q_norm.weight"), 1, d, 0, norm);
                add(s, L("self_attn.k_norm.weight"), 1, d, 0, norm);
            }
        } else {
            add(s, L("self_attn.qkv_proj.weight"), 2, (long long)(s->heads + 2 * s->kv_heads) * d, H, INIT_LINEAR);
            add(s, L("mlp.gate_up_proj.weight"), 2, 2LL * I, H, INIT_LINEAR);
        }
#undef L
    }
    qsort(tensors, ntensors, sizeof *tensors, cmp_name);
}

static void build_tensor_list(const struct spec *s)
{
    int d = s->head_dim, H = s->hidden, I = s->intermediate;
    char n[128];
    if (is(s, "gemma2") || is(s, "gemma3_text") || is(s, "phi3")) {
        build_gemma_phi3(s);
        return;
    }
    add(s, "model.embed_tokens.weight", 2, s->vocab, H, INIT_EMBED);
    add(s, "model.norm.weight", 1, H, 0, INIT_NORM);
    if (!s->tie) add(s, "lm_head.weight", 2, s->vocab, H, INIT_LINEAR);
    for (int i = 0; i < s->layers; i++) {
#define L(fmt) (snprintf(n, sizeof n, "model.layers.%d." fmt, i), n)
        add(s, L("input_layernorm.weight"), 1, H, 0, INIT_NORM);
        add(s, L("post_attention_layernorm.weight"), 1, H, 0, INIT_NORM);
        add(s, L("self_attn.q_proj.weight"), 2, (long long)s->heads * d, H, INIT_LINEAR);
        add(s, L("self_attn.k_proj.weight"), 2, (long long)s->kv_heads * d, H, INIT_LINEAR);
        add(s, L("self_attn.v_proj.weight"), 2, (long long)s->kv_heads * d, H, INIT_LINEAR);
        add(s, L("self_attn.o_proj.weight"), 2, H, (long long)s->heads * d, INIT_LINEAR);
        if (s->qkv_bias) {
            add(s, L("self_attn.q_proj.bias"), 1, (long long)s->heads * d, 0, INIT_BIAS);
            add(s, L("self_attn.k_proj.bias"), 1, (long long)s->kv_heads * d, 0, INIT_BIAS);
            add(s, L("self_attn.v_proj.bias"), 1, (long long)s->kv_heads * d, 0, INIT_BIAS);
        }
        if (s->qk_norm) {
            add(s, L("self_attn.q_norm.weight"), 1, d, 0, INIT_NORM);
            add(s, L("self_attn.k_norm.weight"), 1, d, 0, INIT_NORM);
        }
        if (s->inv_freq) add(s, L("self_attn.rotary_emb.inv_freq"), 1, d / 2, 0, INIT_INV_FREQ);
        add(s, L("mlp.gate_proj.weight"), 2, I, H, INIT_LINEAR);
        add(s, L("mlp.up_proj.weight"), 2, I, H, INIT_LINEAR);
        add(s, L("mlp.down_proj.weight"), 2, H, I, INIT_LINEAR);
#undef L
    }
    /* safetensors (and save_pretrained) order tensors by name */
    qsort(tensors, ntensors, sizeof *tensors, cmp_name);
}

/* splitmix64, seeded by FNV-1a of the name mixed with the seed */
static uint64_t seed_for(unsigned long long seed, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return h;
}

static inline uint64_t next(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [-1, 1) with 24 bits, exact in float */
static inline float uniform(uint64_t *x)
{
    return (float)((int32_t)(next(x) >> 40) - (1 << 23)) * (1.0f / (1 << 23));
}

static void fill(const struct spec *s, const struct tensor *t, void *out)
{
    uint64_t x = seed_for(s->seed, t->name);
    float scale = 1.0f;
    if (t->init == INIT_LINEAR) scale = 1.7320508f / sqrtf((float)t->shape[1]); /* std 1/sqrt(fan_in) */
    for (long long i = 0; i < t->numel; i++) {
        float v;
        switch (t->init) {
        case INIT_NORM: v = 1.0f + 0.1f * uniform(&x); break;
        case INIT_BIAS: v = 0.1f * uniform(&x); break;
        case INIT_GEMMA_NORM: v = 0.2f * uniform(&x); break;
        case INIT_INV_FREQ: v = 1.0f / powf((float)s->rope_theta, (float)(2 * i) / (float)s->head_dim); break;
        default: v = scale * uniform(&x); break;
        }
        if (t->init == INIT_INV_FREQ || !strcmp(s->dtype, "f32")) ((float *)out)[i] = v;
        else if (!strcmp(s->dtype, "f16")) ((uint16_t *)out)[i] = f32_to_f16(v);
        else ((uint16_t *)out)[i] = f32_to_bf16(v);
    }
}

static const char *st_dtype(const struct spec *s, const struct tensor *t)
{
    if (t->init == INIT_INV_FREQ || !strcmp(s->dtype, "f32")) return "F32";
    return !strcmp(s->dtype, "f16") ? "F16" : "BF16";
}

static const char *torch_dtype(const struct spec *s)
{
    return !strcmp(s->dtype, "f32") ? "float32" : !strcmp(s->dtype, "f16") ? "float16" : "bfloat16";
}

static void write_safetensors(const struct spec *s, int file, const char *path)
{
    /* header: compact JSON, __metadata__ first, padded with spaces to 8 */
    struct buf h = BUF_INIT;
    buf_init(&h);
    buf_adds(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    size_t off = 0;
    for (size_t i = 0; i < ntensors; i++) {
        struct tensor *t = &tensors[i];
        if (t->file != file) continue;
        t->offset = off;
        buf_printf(&h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, st_dtype(s, t));
        for (int d = 0; d < t->ndim; d++) buf_printf(&h, "%s%lld", d ? "," : "", t->shape[d]);
        buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    buf_addc(&h, '}');
    while (h.len % 8) buf_addc(&h, ' ');
    struct atomic_file f;
    if (atomic_file_begin(&f, path) != 0) die_last();
    uint64_t n = h.len;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(n >> (8 * i));
    if (write_all(f.fd, le, 8) || write_all(f.fd, h.data, h.len)) die("%s: write error", path);
    for (size_t i = 0; i < ntensors; i++) {
        struct tensor *t = &tensors[i];
        if (t->file != file) continue;
        void *data = xmalloc(t->nbytes);
        fill(s, t, data);
        if (write_all(f.fd, data, t->nbytes)) die("%s: write error", path);
        free(data);
    }
    if (atomic_file_commit(&f) != 0) die_last();
    buf_free(&h);
}

static void write_json(const char *dir, const char *name, json_t *v)
{
    char *path = path_join(dir, name);
    struct buf b = BUF_INIT;
    buf_init(&b);
    struct pyjson_style st = pyjson_indent(2);
    pyjson_dump(&b, v, &st);
    buf_addc(&b, '\n');
    if (atomic_write_file(path, b.data, b.len) != 0) die_last();
    buf_free(&b);
    free(path);
    json_decref(v);
}

/* Phi-3's LongRoPE factors for rotary pair i of n: short ones near 1, long
 * ones growing with the wavelength, as in Phi-3.5-mini's config. */
static json_t *longrope_factors(const struct spec *s, bool lng)
{
    json_t *l = json_array();
    int n = s->head_dim / 2;
    for (int i = 0; i < n; i++)
        json_array_append_new(l, json_real(lng ? 1.0 + 4.0 * i * i / ((double)n * n) * 8.0 : 1.0 + 0.05 * i));
    return l;
}

static json_t *config_gemma_phi3(const struct spec *s)
{
    json_t *c = json_object();
    bool g2 = is(s, "gemma2"), g3 = is(s, "gemma3_text"), phi3 = is(s, "phi3");
    json_object_set_new(c, "architectures", json_pack("[s]", g2 ? "Gemma2ForCausalLM" : g3 ? "Gemma3ForCausalLM"
                                                                                         : "Phi3ForCausalLM"));
    if (!phi3) json_object_set_new(c, "attention_bias", json_false());
    json_object_set_new(c, "attention_dropout", json_real(0.0));
    if (g2) json_object_set_new(c, "attn_logit_softcapping", json_real(5.0));
    if (g3) json_object_set_new(c, "attn_logit_softcapping", json_null());
    json_object_set_new(c, "bos_token_id", json_integer(1));
    if (phi3) json_object_set_new(c, "embd_pdrop", json_real(0.0));
    json_object_set_new(c, "eos_token_id", json_integer(2));
    if (g2) json_object_set_new(c, "final_logit_softcapping", json_real(10.0));
    if (g3) json_object_set_new(c, "final_logit_softcapping", json_null());
    if (!phi3) json_object_set_new(c, "head_dim", json_integer(s->head_dim));
    json_object_set_new(c, "hidden_act", json_string(phi3 ? "silu" : "gelu_pytorch_tanh"));
    if (!phi3) json_object_set_new(c, "hidden_activation", json_string("gelu_pytorch_tanh"));
    json_object_set_new(c, "hidden_size", json_integer(s->hidden));
    json_object_set_new(c, "initializer_range", json_real(0.02));
    json_object_set_new(c, "intermediate_size", json_integer(s->intermediate));
    json_object_set_new(c, "max_position_embeddings", json_integer(s->max_pos));
    json_object_set_new(c, "model_type", json_string(s->arch));
    json_object_set_new(c, "num_attention_heads", json_integer(s->heads));
    json_object_set_new(c, "num_hidden_layers", json_integer(s->layers));
    json_object_set_new(c, "num_key_value_heads", json_integer(s->kv_heads));
    if (phi3) json_object_set_new(c, "original_max_position_embeddings", json_integer(s->orig_max_pos));
    json_object_set_new(c, "pad_token_id", json_integer(0));
    if (!phi3) json_object_set_new(c, "query_pre_attn_scalar", json_integer(24));
    if (phi3) json_object_set_new(c, "resid_pdrop", json_real(0.0));
    json_object_set_new(c, "rms_norm_eps", json_real(s->rms_eps));
    if (g3) json_object_set_new(c, "rope_local_base_freq", json_real(10000.0));
    if (g3) json_object_set_new(c, "rope_scaling", json_pack("{s:f,s:s}", "factor", 8.0, "rope_type", "linear"));
    if (phi3)
        json_object_set_new(c, "rope_scaling", json_pack("{s:o,s:o,s:s}", "long_factor", longrope_factors(s, true),
                                                         "short_factor", longrope_factors(s, false), "type", "longrope"));
    json_object_set_new(c, "rope_theta", json_real(s->rope_theta));
    json_object_set_new(c, "sliding_window", json_integer(s->sliding_window));
    if (g3) json_object_set_new(c, "sliding_window_pattern", json_integer(3));
    json_object_set_new(c, "tie_word_embeddings", json_boolean(s->tie));
    json_object_set_new(c, "torch_dtype", json_string(torch_dtype(s)));
    json_object_set_new(c, "transformers_version", json_string("4.51.0"));
    json_object_set_new(c, "use_cache", json_true());
    json_object_set_new(c, "vocab_size", json_integer(s->vocab));
    return c;
}

/* Keys are added in sorted order (save_pretrained uses sort_keys=True). */
static json_t *config_json(const struct spec *s)
{
    if (is(s, "gemma2") || is(s, "gemma3_text") || is(s, "phi3")) return config_gemma_phi3(s);
    json_t *c = json_object();
    const char *archname = !strcmp(s->arch, "llama")     ? "LlamaForCausalLM"
                           : !strcmp(s->arch, "mistral") ? "MistralForCausalLM"
                           : !strcmp(s->arch, "qwen2")   ? "Qwen2ForCausalLM"
                                                         : "Qwen3ForCausalLM";
    json_t *archs = json_array();
    json_array_append_new(archs, json_string(archname));
    json_object_set_new(c, "architectures", archs);
    bool is_llama = !strcmp(s->arch, "llama"), is_mistral = !strcmp(s->arch, "mistral");
    bool is_qwen2 = !strcmp(s->arch, "qwen2"), is_qwen3 = !strcmp(s->arch, "qwen3");
    if (is_llama || is_qwen3) json_object_set_new(c, "attention_bias", json_false());
    json_object_set_new(c, "attention_dropout", json_real(0.0));
    json_object_set_new(c, "bos_token_id", json_integer(1));
    json_object_set_new(c, "eos_token_id", json_integer(2));
    if (is_mistral || is_qwen3 || (is_llama && s->head_dim != s->hidden / s->heads))
        json_object_set_new(c, "head_dim", json_integer(s->head_dim));
    json_object_set_new(c, "hidden_act", json_string("silu"));
    json_object_set_new(c, "hidden_size", json_integer(s->hidden));
    json_object_set_new(c, "initializer_range", json_real(0.02));
    json_object_set_new(c, "intermediate_size", json_integer(s->intermediate));
    json_object_set_new(c, "max_position_embeddings", json_integer(s->max_pos));
    if (is_qwen2 || is_qwen3) json_object_set_new(c, "max_window_layers", json_integer(s->layers));
    if (is_llama) json_object_set_new(c, "mlp_bias", json_false());
    json_object_set_new(c, "model_type", json_string(s->arch));
    json_object_set_new(c, "num_attention_heads", json_integer(s->heads));
    json_object_set_new(c, "num_hidden_layers", json_integer(s->layers));
    json_object_set_new(c, "num_key_value_heads", json_integer(s->kv_heads));
    if (is_llama) json_object_set_new(c, "pretraining_tp", json_integer(1));
    json_object_set_new(c, "rms_norm_eps", json_real(s->rms_eps));
    if (!is_mistral) {
        if (s->rope_scaling && !strcmp(s->rope_scaling, "llama3")) {
            json_t *rs = json_object();
            json_object_set_new(rs, "factor", json_real(8.0));
            json_object_set_new(rs, "high_freq_factor", json_real(4.0));
            json_object_set_new(rs, "low_freq_factor", json_real(1.0));
            json_object_set_new(rs, "original_max_position_embeddings", json_integer(s->max_pos / 4));
            json_object_set_new(rs, "rope_type", json_string("llama3"));
            json_object_set_new(c, "rope_scaling", rs);
        } else {
            json_object_set_new(c, "rope_scaling", json_null());
        }
    }
    json_object_set_new(c, "rope_theta", json_real(s->rope_theta));
    if (is_mistral) json_object_set_new(c, "sliding_window", json_integer(s->sliding_window));
    if (is_qwen2) json_object_set_new(c, "sliding_window", json_integer(s->max_pos));
    if (is_qwen3) json_object_set_new(c, "sliding_window", json_null());
    json_object_set_new(c, "tie_word_embeddings", json_boolean(s->tie));
    json_object_set_new(c, "torch_dtype", json_string(torch_dtype(s)));
    json_object_set_new(c, "transformers_version", json_string("4.51.0"));
    json_object_set_new(c, "use_cache", json_true());
    if (is_qwen2 || is_qwen3) json_object_set_new(c, "use_sliding_window", json_false());
    json_object_set_new(c, "vocab_size", json_integer(s->vocab));
    return c;
}

/* Modelled on each family's published generation_config.json. */
static json_t *generation_config_json(const struct spec *s)
{
    json_t *g = json_object();
    json_object_set_new(g, "bos_token_id", json_integer(1));
    if (is(s, "gemma2") || is(s, "gemma3_text") || is(s, "phi3")) {
        /* as Gemma's and Phi-3's: token ids only (Gemma 3 adds top_k/top_p) */
        json_object_set_new(g, "eos_token_id", json_integer(2));
        json_object_set_new(g, "pad_token_id", json_integer(0));
        if (is(s, "gemma3_text")) {
            json_object_set_new(g, "top_k", json_integer(64));
            json_object_set_new(g, "top_p", json_real(0.95));
        }
        json_object_set_new(g, "transformers_version", json_string("4.51.0"));
        return g;
    }
    bool sampling = strcmp(s->arch, "mistral") != 0;
    if (sampling) json_object_set_new(g, "do_sample", json_true());
    json_object_set_new(g, "eos_token_id", json_integer(2));
    if (!strcmp(s->arch, "qwen2")) json_object_set_new(g, "repetition_penalty", json_real(1.05));
    if (!strcmp(s->arch, "llama")) json_object_set_new(g, "temperature", json_real(0.6));
    if (!strcmp(s->arch, "qwen2")) json_object_set_new(g, "temperature", json_real(0.7));
    if (!strcmp(s->arch, "qwen3")) json_object_set_new(g, "temperature", json_real(0.6));
    if (!strcmp(s->arch, "qwen2") || !strcmp(s->arch, "qwen3"))
        json_object_set_new(g, "top_k", json_integer(20));
    if (!strcmp(s->arch, "llama")) json_object_set_new(g, "top_p", json_real(0.9));
    if (!strcmp(s->arch, "qwen2")) json_object_set_new(g, "top_p", json_real(0.8));
    if (!strcmp(s->arch, "qwen3")) json_object_set_new(g, "top_p", json_real(0.95));
    json_object_set_new(g, "transformers_version", json_string("4.51.0"));
    return g;
}

static void copy_tokenizer(const struct spec *s)
{
    static const char *files[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                  "special_tokens_map.json"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *src = path_join(s->tokenizer_dir, files[i]);
        char *dst = path_join(s->out, files[i]);
        if (path_exists(src) && copy_file(src, dst) != 0) die_last();
        free(src);
        free(dst);
    }
}

static void defaults_for(struct spec *s)
{
    if (!strcmp(s->arch, "llama")) {
        s->hidden = 64, s->intermediate = 176, s->heads = 4, s->kv_heads = 2, s->tie = 0;
        s->rope_theta = 10000.0, s->rms_eps = 1e-5;
    } else if (!strcmp(s->arch, "mistral")) {
        s->hidden = 128, s->intermediate = 256, s->heads = 4, s->kv_heads = 2, s->tie = 0;
        s->rope_theta = 10000.0, s->rms_eps = 1e-5, s->sliding_window = 32;
    } else if (!strcmp(s->arch, "qwen2")) {
        s->hidden = 128, s->intermediate = 256, s->heads = 4, s->kv_heads = 2, s->tie = 1;
        s->rope_theta = 1000000.0, s->rms_eps = 1e-6, s->qkv_bias = 1;
    } else if (!strcmp(s->arch, "qwen3")) {
        s->hidden = 128, s->intermediate = 256, s->heads = 4, s->kv_heads = 2, s->tie = 1;
        s->rope_theta = 1000000.0, s->rms_eps = 1e-6, s->qk_norm = 1, s->head_dim = 48;
    } else if (!strcmp(s->arch, "gemma2")) {
        s->hidden = 64, s->intermediate = 128, s->heads = 4, s->kv_heads = 2, s->head_dim = 32, s->tie = 1;
        s->rope_theta = 10000.0, s->rms_eps = 1e-6, s->sliding_window = 8;
    } else if (!strcmp(s->arch, "gemma3_text")) {
        s->hidden = 64, s->intermediate = 128, s->heads = 4, s->kv_heads = 2, s->head_dim = 32, s->tie = 1;
        s->rope_theta = 1000000.0, s->rms_eps = 1e-6, s->sliding_window = 8, s->qk_norm = 1;
    } else if (!strcmp(s->arch, "phi3")) {
        s->hidden = 64, s->intermediate = 128, s->heads = 4, s->kv_heads = 2, s->tie = 0;
        s->rope_theta = 10000.0, s->rms_eps = 1e-5, s->sliding_window = 64, s->orig_max_pos = 16;
    } else {
        die("unknown --arch '%s' (llama, mistral, qwen2, qwen3, gemma2, gemma3_text, phi3)", s->arch);
    }
    s->layers = !strcmp(s->arch, "gemma3_text") ? 6 : !strcmp(s->arch, "gemma2") ? 4 : 2;
    s->vocab = 512;
    s->max_pos = !strcmp(s->arch, "phi3") ? 64 : 256;
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    struct spec s = {0};
    s.arch = "llama";
    s.dtype = "f32";
    s.seed = 1;
    s.shards = 1;
    int big = 0;
    /* first pass: the architecture decides the defaults */
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--arch")) s.arch = argv[i + 1];
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--big")) big = 1, s.arch = "llama";
    defaults_for(&s);
    if (big) {
        s.hidden = 2048, s.intermediate = 5632, s.layers = 22, s.heads = 32, s.kv_heads = 4;
        s.vocab = 32000, s.max_pos = 2048, s.dtype = "bf16", s.tie = 0;
    }
    static const struct option opts[] = {
        {"arch", 1, 0, 'a'},      {"dtype", 1, 0, 'd'},        {"seed", 1, 0, 's'},
        {"shards", 1, 0, 'n'},    {"tokenizer", 1, 0, 't'},    {"vocab", 1, 0, 'v'},
        {"hidden", 1, 0, 'H'},    {"intermediate", 1, 0, 'I'}, {"layers", 1, 0, 'L'},
        {"heads", 1, 0, 'A'},     {"kv-heads", 1, 0, 'K'},     {"head-dim", 1, 0, 'D'},
        {"tie", 1, 0, 'T'},       {"rope-scaling", 1, 0, 'R'}, {"inv-freq", 0, 0, 'F'},
        {"big", 0, 0, 'B'},       {"max-pos", 1, 0, 'M'},      {"out", 1, 0, 'o'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        switch (c) {
        case 'a': break;
        case 'd': s.dtype = optarg; break;
        case 's': s.seed = strtoull(optarg, NULL, 0); break;
        case 'n': s.shards = atoi(optarg); break;
        case 't': s.tokenizer_dir = optarg; break;
        case 'v': s.vocab = atoi(optarg); break;
        case 'H': s.hidden = atoi(optarg); break;
        case 'I': s.intermediate = atoi(optarg); break;
        case 'L': s.layers = atoi(optarg); break;
        case 'A': s.heads = atoi(optarg); break;
        case 'K': s.kv_heads = atoi(optarg); break;
        case 'D': s.head_dim = atoi(optarg); break;
        case 'T': s.tie = atoi(optarg); break;
        case 'R': s.rope_scaling = optarg; break;
        case 'F': s.inv_freq = 1; break;
        case 'B': break;
        case 'M': s.max_pos = atoi(optarg); break;
        case 'o': s.out = optarg; break;
        default: die("see the comment at the top of tests/helpers/mkmodel.c for usage");
        }
    }
    if (!s.out) die("-o DIR is required");
    if (strcmp(s.dtype, "f32") && strcmp(s.dtype, "f16") && strcmp(s.dtype, "bf16"))
        die("--dtype must be f32, f16 or bf16");
    if (!s.head_dim) s.head_dim = s.hidden / s.heads;
    if (s.shards < 1) s.shards = 1;
    if (s.rope_scaling && strcmp(s.rope_scaling, "llama3")) die("--rope-scaling: only llama3");
    if (s.rope_scaling) s.rope_theta = 500000.0;

    if (make_dirs(s.out, 0755) != 0) die_last();
    build_tensor_list(&s);
    /* shards: contiguous runs in name order, balanced by bytes */
    size_t total = 0;
    for (size_t i = 0; i < ntensors; i++) total += tensors[i].nbytes;
    size_t per = (total + (size_t)s.shards - 1) / (size_t)s.shards, acc = 0;
    for (size_t i = 0; i < ntensors; i++) {
        int f = (int)(acc / per);
        tensors[i].file = f < s.shards ? f : s.shards - 1;
        acc += tensors[i].nbytes;
    }
    if (s.shards == 1) {
        char *p = path_join(s.out, "model.safetensors");
        write_safetensors(&s, 0, p);
        free(p);
    } else {
        json_t *index = json_object(), *meta = json_object(), *map = json_object();
        json_object_set_new(meta, "total_size", json_integer((json_int_t)total));
        json_object_set_new(index, "metadata", meta);
        for (int f = 0; f < s.shards; f++) {
            char name[64];
            snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", f + 1, s.shards);
            char *p = path_join(s.out, name);
            write_safetensors(&s, f, p);
            free(p);
            for (size_t i = 0; i < ntensors; i++)
                if (tensors[i].file == f) json_object_set_new(map, tensors[i].name, json_string(name));
        }
        /* weight_map sorted by tensor name, as tensors already are */
        json_object_set_new(index, "weight_map", map);
        write_json(s.out, "model.safetensors.index.json", index);
    }
    write_json(s.out, "config.json", config_json(&s));
    write_json(s.out, "generation_config.json", generation_config_json(&s));
    if (s.tokenizer_dir) copy_tokenizer(&s);
    free(tensors);
    return 0;
}
