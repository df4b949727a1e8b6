/* config.json from a GGUF's metadata (see gguf_hf.h): llama.cpp's keys
 * ({arch}.embedding_length, ...) back to HuggingFace's fields, with the
 * values llama.cpp's converter does not store recovered from what it
 * does (the rotary scaling tensors, the tied output). Floats were stored as
 * float32: each is written as the shortest decimal of that float32, which
 * is what the HuggingFace config held (1e-05, not 9.99999974e-06). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "formats/gguf_hf.h"

struct cfg {
    const struct gguf_model *m;
    json_t *out;
    int rc;
};

static void key_of(const struct cfg *c, const char *suffix, char *key, size_t n)
{
    snprintf(key, n, "%s.%s", c->m->arch, suffix);
}

/* {arch}.suffix as an integer field; required ones fail when absent. */
static long long put_int(struct cfg *c, const char *field, const char *suffix, bool required)
{
    if (c->rc) return -1; /* the first failure is the one told */
    char key[128];
    key_of(c, suffix, key, sizeof key);
    uint64_t v = 0;
    int got = gguf_get_uint(&c->m->g, key, &v);
    if (got < 0 || (!got && required) || v > INT32_MAX) {
        if (got >= 0) fail("%s: metadata '%s': %s", c->m->g.path, key, got ? "too large" : "missing");
        c->rc = -1;
        return -1;
    }
    if (got) json_object_set_new(c->out, field, json_integer((json_int_t)v));
    return got ? (long long)v : -1;
}

static bool put_float(struct cfg *c, const char *field, const char *suffix, bool required)
{
    if (c->rc) return false;
    char key[128];
    key_of(c, suffix, key, sizeof key);
    double v;
    int got = gguf_get_float(&c->m->g, key, &v);
    if (got < 0 || (!got && required) || (got && !isfinite(v))) {
        if (got >= 0) fail("%s: metadata '%s': %s", c->m->g.path, key, got ? "not a finite number" : "missing");
        c->rc = -1;
        return false;
    }
    if (got) json_object_set_new(c->out, field, json_real(gguf_float32_decimal(v)));
    return got;
}

static void put_token_id(struct cfg *c, const char *field, const char *key)
{
    if (c->rc) return;
    uint64_t v;
    int got = gguf_get_uint(&c->m->g, key, &v);
    if (got < 0) c->rc = -1;
    else if (got && v <= INT32_MAX) json_object_set_new(c->out, field, json_integer((json_int_t)v));
}

/* A float32 tensor of the file as doubles (rope factors). */
static json_t *factor_list(struct cfg *c, const char *name, size_t want)
{
    if (c->rc) return NULL;
    const struct gguf_tensor *t = gguf_find_tensor(&c->m->g, name);
    if (!t) return NULL;
    if (t->type != GGML_F32 || t->ndim != 1 || !want || t->numel != want) {
        fail("%s: tensor '%s': must be %zu float32 values", c->m->g.path, name, want);
        c->rc = -1;
        return NULL;
    }
    const unsigned char *p = gguf_tensor_bytes(&c->m->g, t);
    json_t *list = json_array();
    for (uint64_t i = 0; i < t->numel; i++) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        json_array_append_new(list, json_real(gguf_float32_decimal(f)));
    }
    return list;
}

/* Llama 3.1's rotary scaling: llama.cpp stores the per-frequency factors
 * (rope_freqs.weight), not the four numbers that made them. The numbers
 * are recovered by making the factors again from Meta's published
 * low/high frequency factors (1 and 4, original context 8192) with the
 * largest factor as the scale, and accepting them only when every factor
 * matches. */
static void llama3_scaling(struct cfg *c, double theta, long long head_dim)
{
    if (c->rc) return;
    const struct gguf_tensor *t = gguf_find_tensor(&c->m->g, "rope_freqs.weight");
    if (!t) return;
    if (t->type != GGML_F32 || t->ndim != 1 || head_dim < 2 || t->numel != (uint64_t)head_dim / 2) {
        fail("%s: tensor 'rope_freqs.weight': must be %lld float32 values", c->m->g.path, head_dim / 2);
        c->rc = -1;
        return;
    }
    const unsigned char *p = gguf_tensor_bytes(&c->m->g, t);
    double factor = 0;
    for (uint64_t i = 0; i < t->numel; i++) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        if (f > factor) factor = f;
    }
    const double low = 1, high = 4, original = 8192;
    for (uint64_t i = 0; i < t->numel; i++) {
        float f;
        memcpy(&f, p + 4 * i, 4);
        double freq = 1.0 / pow(theta, (double)(2 * i) / (double)head_dim);
        double wavelen = 2 * M_PI / freq, want;
        if (wavelen < original / high) want = 1;
        else if (wavelen > original / low) want = factor;
        else {
            double smooth = (original / wavelen - low) / (high - low);
            want = 1 / ((1 - smooth) / factor + smooth);
        }
        if (fabs(want - f) > 1e-3 * want) {
            fail("%s: tensor 'rope_freqs.weight': rotary factors that are not Llama 3's scaling (factor %d of %llu "
                 "is %g): cannot be written as a rope_scaling", c->m->g.path, (int)i, (unsigned long long)t->numel,
                 (double)f);
            c->rc = -1;
            return;
        }
    }
    json_t *rs = json_object();
    json_object_set_new(rs, "factor", json_real(gguf_float32_decimal(factor)));
    json_object_set_new(rs, "high_freq_factor", json_real(high));
    json_object_set_new(rs, "low_freq_factor", json_real(low));
    json_object_set_new(rs, "original_max_position_embeddings", json_integer((json_int_t)original));
    json_object_set_new(rs, "rope_type", json_string("llama3"));
    json_object_set_new(c->out, "rope_scaling", rs);
}

/* {arch}.rope.scaling.type / .factor: linear scaling (Gemma 3's global
 * layers); other kinds are written as they are named, for mlc-cfg to judge. */
static void rope_scaling_meta(struct cfg *c)
{
    char key[128], *type = NULL;
    key_of(c, "rope.scaling.type", key, sizeof key);
    int got = gguf_get_string(&c->m->g, key, &type);
    if (got < 0) c->rc = -1;
    if (got <= 0) return;
    if (strcmp(type, "none")) {
        json_t *rs = json_object();
        key_of(c, "rope.scaling.factor", key, sizeof key);
        double factor;
        if (gguf_get_float(&c->m->g, key, &factor) == 1)
            json_object_set_new(rs, "factor", json_real(gguf_float32_decimal(factor)));
        json_object_set_new(rs, "rope_type", json_string(type));
        json_object_set_new(c->out, "rope_scaling", rs);
    }
    free(type);
}

static const char *architecture_class(const char *model_type)
{
    static const struct {
        const char *type, *cls;
    } t[] = {
        {"llama", "LlamaForCausalLM"},   {"qwen2", "Qwen2ForCausalLM"},       {"qwen3", "Qwen3ForCausalLM"},
        {"gemma2", "Gemma2ForCausalLM"}, {"gemma3_text", "Gemma3ForCausalLM"}, {"phi3", "Phi3ForCausalLM"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].type, model_type)) return t[i].cls;
    return "";
}

json_t *gguf_model_hf_config(const struct gguf_model *m)
{
    struct cfg c = {.m = m, .out = json_object()};
    const char *mt = m->model_type;
    bool gemma = !strncmp(mt, "gemma", 5), phi3 = !strcmp(mt, "phi3");
    json_t *arch = json_array();
    json_array_append_new(arch, json_string(architecture_class(mt)));
    json_object_set_new(c.out, "architectures", arch);
    json_object_set_new(c.out, "model_type", json_string(mt));
    long long hidden = put_int(&c, "hidden_size", "embedding_length", true);
    put_int(&c, "intermediate_size", "feed_forward_length", true);
    long long layers = put_int(&c, "num_hidden_layers", "block_count", true);
    long long heads = put_int(&c, "num_attention_heads", "attention.head_count", true);
    if (put_int(&c, "num_key_value_heads", "attention.head_count_kv", false) < 0 && heads > 0)
        json_object_set_new(c.out, "num_key_value_heads", json_integer(heads));
    const struct gguf_hf_tensor *embed = gguf_model_find(m, "model.embed_tokens.weight");
    json_object_set_new(c.out, "vocab_size", json_integer(embed ? embed->shape[0] : 0));
    put_int(&c, "max_position_embeddings", "context_length", true);
    put_float(&c, "rms_norm_eps", "attention.layer_norm_rms_epsilon", true);
    double theta = 10000;
    char key[128];
    key_of(&c, "rope.freq_base", key, sizeof key);
    if (!c.rc && gguf_get_float(&m->g, key, &theta) < 0) c.rc = -1;
    theta = gguf_float32_decimal(theta);
    json_object_set_new(c.out, "rope_theta", json_real(theta));
    /* head_dim: key_length when given (Qwen3, Gemma), else hidden / heads */
    long long head_dim = -1;
    key_of(&c, "attention.key_length", key, sizeof key);
    uint64_t kl;
    int got = c.rc ? 0 : gguf_get_uint(&m->g, key, &kl);
    if (got < 0) c.rc = -1;
    else if (got && kl > 0 && kl <= 65536) head_dim = (long long)kl;
    if (head_dim < 0 && heads > 0 && hidden > 0) head_dim = hidden / heads;
    bool head_dim_differs = heads > 0 && head_dim * heads != hidden;
    if (head_dim_differs || gemma || !strcmp(mt, "qwen3")) json_object_set_new(c.out, "head_dim", json_integer(head_dim));
    json_object_set_new(c.out, "hidden_act", json_string(gemma ? "gelu_pytorch_tanh" : "silu"));
    if (gemma) json_object_set_new(c.out, "hidden_activation", json_string("gelu_pytorch_tanh"));
    json_object_set_new(c.out, "tie_word_embeddings", json_boolean(!gguf_model_find(m, "lm_head.weight")));
    bool bias = gguf_model_find(m, "model.layers.0.self_attn.q_proj.bias") != NULL;
    if (strcmp(mt, "qwen2")) json_object_set_new(c.out, "attention_bias", json_boolean(bias));
    if (!strcmp(mt, "llama")) llama3_scaling(&c, theta, head_dim);
    if (gemma) {
        put_float(&c, "attn_logit_softcapping", "attn_logit_softcapping", false);
        put_float(&c, "final_logit_softcapping", "final_logit_softcapping", false);
        put_int(&c, "sliding_window", "attention.sliding_window", !strcmp(mt, "gemma2"));
        /* llama.cpp scales queries by 1/sqrt(head_dim), except for the 27B
         * models (46 and 62 layers), whose query_pre_attn_scalar is
         * hidden_size / heads: it keeps no key of its own */
        long long scalar = head_dim;
        if ((layers == 46 || layers == 62) && heads > 0) scalar = hidden / heads;
        json_object_set_new(c.out, "query_pre_attn_scalar", json_integer(scalar));
    }
    if (!strcmp(mt, "gemma3_text")) {
        /* llama.cpp fixes both for Gemma 3: local layers use base 10000,
         * every sixth layer is global */
        json_object_set_new(c.out, "rope_local_base_freq", json_real(10000.0));
        json_object_set_new(c.out, "sliding_window_pattern", json_integer(6));
        rope_scaling_meta(&c);
    }
    if (phi3) {
        put_int(&c, "original_max_position_embeddings", "rope.scaling.original_context_length", false);
        put_int(&c, "sliding_window", "attention.sliding_window", false);
        json_t *lng = factor_list(&c, "rope_factors_long.weight", head_dim > 0 ? (size_t)head_dim / 2 : 0);
        json_t *shrt = factor_list(&c, "rope_factors_short.weight", head_dim > 0 ? (size_t)head_dim / 2 : 0);
        if (lng && shrt) {
            json_t *rs = json_object();
            json_object_set_new(rs, "long_factor", lng);
            json_object_set_new(rs, "short_factor", shrt);
            json_object_set_new(rs, "type", json_string("longrope"));
            json_object_set_new(c.out, "rope_scaling", rs);
        } else {
            json_decref(lng);
            json_decref(shrt);
            if (lng || shrt) {
                fail("%s: only one of rope_factors_long.weight and rope_factors_short.weight", m->g.path);
                c.rc = -1;
            }
        }
    }
    put_token_id(&c, "bos_token_id", "tokenizer.ggml.bos_token_id");
    put_token_id(&c, "eos_token_id", "tokenizer.ggml.eos_token_id");
    put_token_id(&c, "pad_token_id", "tokenizer.ggml.padding_token_id");
    if (c.rc) {
        json_decref(c.out);
        return NULL;
    }
    return c.out;
}

json_t *gguf_model_generation_config(const struct gguf_model *m)
{
    /* llama.cpp's converter keeps the model's recommended sampling as
     * general.sampling.*: they go back to generation_config.json */
    static const struct {
        const char *key, *field;
    } keys[] = {
        {"general.sampling.temp", "temperature"},
        {"general.sampling.top_p", "top_p"},
        {"general.sampling.penalty_repeat", "repetition_penalty"},
    };
    json_t *out = json_object();
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        double v;
        int got = gguf_get_float(&m->g, keys[i].key, &v);
        if (got < 0) {
            json_decref(out);
            return NULL;
        }
        if (got && isfinite(v)) json_object_set_new(out, keys[i].field, json_real(gguf_float32_decimal(v)));
    }
    return out;
}
