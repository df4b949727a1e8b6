/* The lowering's view of mlc-chat-config.json, and MLC's overrides. */
#include "common/lower/lower.h"
#include "common/buf.h"
#include "common/err.h"
#include "formats/chat_config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int number_of(const json_t *obj, const char *key, double def, double *out, const char *src, const char *where)
{
    const json_t *x = json_object_get(obj, key);
    if (!x || json_is_null(x)) {
        *out = def;
        return 0;
    }
    if (!json_is_number(x) || !isfinite(json_number_value(x)))
        return fail("%s: %s: field '%s' must be a number", src, where, key);
    *out = json_number_value(x);
    return 0;
}

static int llama3_scaling(const json_t *rs, struct rope_scaling *out, const char *src)
{
    out->kind = ROPE_SCALING_LLAMA3;
    const char *keys[] = {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"};
    double v[4];
    for (int i = 0; i < 4; i++) {
        const json_t *x = json_object_get(rs, keys[i]);
        if (!json_is_number(x)) return fail("%s: model_config.rope_scaling: field '%s' must be a number", src, keys[i]);
        v[i] = json_number_value(x);
    }
    out->factor = v[0], out->low_freq_factor = v[1], out->high_freq_factor = v[2];
    out->original_max_position = (int64_t)v[3];
    if (v[0] <= 0 || v[1] <= 0 || v[2] <= v[1] || v[3] < 1)
        return fail("%s: model_config.rope_scaling: inconsistent llama3 factors", src);
    return 0;
}

static int factors_of(const json_t *rs, const char *key, float *out, int want, const char *src)
{
    const json_t *a = json_object_get(rs, key);
    if (!json_is_array(a) || json_array_size(a) != (size_t)want)
        return fail("%s: model_config.rope_scaling: field '%s' must be a list of %d numbers (rotary dims / 2)", src,
                    key, want);
    for (int i = 0; i < want; i++) {
        const json_t *x = json_array_get(a, (size_t)i);
        if (!json_is_number(x) || !(json_number_value(x) > 0) || json_number_value(x) > 1e30)
            return fail("%s: model_config.rope_scaling: %s[%d] must be a positive number", src, key, i);
        out[i] = (float)json_number_value(x);
    }
    return 0;
}

/* Phi-3's LongRoPE ("longrope", or "su" in older checkpoints), as
 * transformers' Phi-3 rotary embedding reads it: the attention factor
 * given, or sqrt(1 + ln(s) / ln(original)) with s the context's growth
 * over the original one. */
static int longrope_scaling(const json_t *mc, const json_t *rs, int rotary_dim, struct rope_scaling *out,
                            const char *src)
{
    out->kind = ROPE_SCALING_LONGROPE;
    if (rotary_dim / 2 > ROPE_MAX_FACTORS)
        return fail("%s: longrope over %d rotary dims: at most %d are supported", src, rotary_dim, 2 * ROPE_MAX_FACTORS);
    out->n_factors = rotary_dim / 2;
    if (factors_of(rs, "short_factor", out->short_factor, out->n_factors, src) ||
        factors_of(rs, "long_factor", out->long_factor, out->n_factors, src))
        return -1;
    double original, max_pos, attention;
    if (number_of(mc, "original_max_position_embeddings", 0, &original, src, "model_config") ||
        (original <= 0 && number_of(rs, "original_max_position_embeddings", 0, &original, src, "model_config.rope_scaling")) ||
        number_of(mc, "max_position_embeddings", 0, &max_pos, src, "model_config") ||
        (max_pos <= 0 && number_of(rs, "max_position_embeddings", 0, &max_pos, src, "model_config.rope_scaling")) ||
        number_of(rs, "attention_factor", 0, &attention, src, "model_config.rope_scaling"))
        return -1;
    if (original < 1 || original > 1e12)
        return fail("%s: longrope needs original_max_position_embeddings (a positive integer)", src);
    if (max_pos <= 0) max_pos = original;
    if (attention <= 0) {
        double s = max_pos / original;
        attention = s <= 1.0 ? 1.0 : sqrt(1.0 + log(s) / log(original));
    }
    out->original_max_position = (int64_t)original;
    out->attention_factor = attention;
    return 0;
}

static int rope_scaling_from(const json_t *mc, const json_t *rs, int rotary_dim, struct rope_scaling *out,
                             const char *src)
{
    memset(out, 0, sizeof *out);
    if (!rs) return 0;
    const char *type = json_string_value(json_object_get(rs, "rope_type"));
    if (!type) type = json_string_value(json_object_get(rs, "type"));
    if (type && !strcmp(type, "llama3")) return llama3_scaling(rs, out, src);
    if (type && (!strcmp(type, "longrope") || !strcmp(type, "su")))
        return longrope_scaling(mc, rs, rotary_dim, out, src);
    if (type && !strcmp(type, "linear")) {
        out->kind = ROPE_SCALING_LINEAR;
        const json_t *f = json_object_get(rs, "factor");
        if (!json_is_number(f) || !(json_number_value(f) > 0))
            return fail("%s: model_config.rope_scaling: linear scaling needs a positive 'factor'", src);
        out->factor = json_number_value(f);
        return 0;
    }
    return fail("%s: model_config.rope_scaling: rope_type '%s' is not supported (llama3, linear, longrope)", src,
                type ? type : "(none)");
}

/* A value of Gemma 3's text configuration: a field of its own, else one
 * of the config.json keys MLC keeps in kwargs. */
static const json_t *gemma3_field(const json_t *text, const char *key)
{
    const json_t *v = json_object_get(text, key);
    if (v && !json_is_null(v)) return v;
    v = json_object_get(json_object_get(text, "kwargs"), key);
    return v && !json_is_null(v) ? v : NULL;
}

/* Layer i is global when (i + 1) % pattern == 0; a config that lists its
 * layer types must follow that rule. */
static int check_layer_types(const json_t *types, int layers, int pattern, const char *src)
{
    if (!types) return 0;
    if (!json_is_array(types) || json_array_size(types) != (size_t)layers)
        return fail("%s: layer_types must list %d layers", src, layers);
    for (int i = 0; i < layers; i++) {
        const char *t = json_string_value(json_array_get(types, (size_t)i));
        const char *want = (i + 1) % pattern ? "sliding_attention" : "full_attention";
        if (!t || strcmp(t, want))
            return fail("%s: layer_types[%d] is '%s', but this engine alternates every %d layers (it wants '%s')", src,
                        i, t ? t : "(not a string)", pattern, want);
    }
    return 0;
}

static int positive_int(const json_t *v, const char *key, int64_t *out, const char *src)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return fail("%s: model_config: field '%s' must be a positive integer", src, key);
    *out = json_integer_value(v);
    return 0;
}

/* Gemma 2 and 3: the softmax scale, soft-capping, and layers that
 * alternate between a sliding window and global attention. */
static int gemma_dims(const struct chat_config *c, struct model_dims *d)
{
    const json_t *mc = c->arch_config, *v;
    const char *src = c->source;
    bool gemma3 = strcmp(c->model_type, "gemma2") != 0;
    const json_t *act = gemma3 ? gemma3_field(mc, "hidden_activation") : json_object_get(mc, "hidden_activation");
    /* MLC-LLM's Gemma, like transformers', gates with the tanh
     * approximation whichever GELU the config names */
    const char *name = json_string_value(act);
    if (act && (!name || (strcmp(name, "gelu_pytorch_tanh") && strcmp(name, "gelu_tanh") && strcmp(name, "gelu"))))
        return fail("%s: model_config: hidden_activation '%s' is not a GELU (gelu_pytorch_tanh)", src,
                    name ? name : "(not a string)");
    if (number_of(mc, "query_pre_attn_scalar", 0, &d->query_pre_attn_scalar, src, "model_config")) return -1;
    if (d->query_pre_attn_scalar < 0) return fail("%s: model_config: query_pre_attn_scalar must be positive", src);
    int64_t window = 0;
    if (gemma3) {
        v = gemma3_field(mc, "sliding_window_size");
        if (!v) v = gemma3_field(mc, "sliding_window");
        if (v && positive_int(v, "sliding_window_size", &window, src)) return -1;
        const json_t *p = gemma3_field(mc, "sliding_window_pattern");
        int64_t pattern = 6; /* MLC's Gemma3TextConfig and transformers' default */
        if (p && positive_int(p, "sliding_window_pattern", &pattern, src)) return -1;
        d->local_window_pattern = (int)(pattern > 100000 ? 100000 : pattern);
        const json_t *base = gemma3_field(mc, "rope_local_base_freq");
        d->rope_local_theta = json_is_number(base) ? json_number_value(base) : 10000.0;
        if (!(d->rope_local_theta > 0)) return fail("%s: model_config: rope_local_base_freq must be positive", src);
    } else {
        v = json_object_get(mc, "sliding_window");
        if (v && !json_is_null(v) && positive_int(v, "sliding_window", &window, src)) return -1;
        d->local_window_pattern = 2;
        if (number_of(mc, "attn_logit_softcapping", 0, &d->attn_softcap, src, "model_config") ||
            number_of(mc, "final_logit_softcapping", 0, &d->final_softcap, src, "model_config"))
            return -1;
        if (d->attn_softcap < 0 || d->final_softcap < 0) return fail("%s: model_config: soft-capping must be positive", src);
    }
    if (window > 1 << 30) return fail("%s: model_config: the sliding window %lld is too large", src, (long long)window);
    d->local_window = window;
    if (!window) d->local_window_pattern = 0;
    /* the top-level sliding_window_size is this window, not a rolling cache */
    d->sliding_window_size = -1;
    d->attention_sink_size = -1;
    if (window)
        return check_layer_types(gemma3 ? gemma3_field(mc, "layer_types") : json_object_get(mc, "layer_types"),
                                 d->num_hidden_layers, d->local_window_pattern, src);
    return 0;
}

static int phi3_rotary_dim(const struct chat_config *c, int *rotary_dim)
{
    double f;
    if (number_of(c->arch_config, "partial_rotary_factor", 1.0, &f, c->source, "model_config")) return -1;
    int rot = (int)(c->head_dim * f);
    if (f <= 0 || f > 1 || rot < 2 || rot % 2)
        return fail("%s: model_config: partial_rotary_factor %g gives %d rotary dims of %lld (an even number from 2 "
                    "to head_dim is needed)", c->source, f, rot, (long long)c->head_dim);
    *rotary_dim = rot == c->head_dim ? 0 : rot;
    return 0;
}

int lower_dims_from_config(const struct chat_config *c, struct model_dims *d)
{
    memset(d, 0, sizeof *d);
    d->hidden_size = c->hidden_size;
    d->intermediate_size = c->intermediate_size;
    d->vocab_size = c->vocab_size;
    d->active_vocab_size = c->active_vocab_size > 0 ? c->active_vocab_size : c->vocab_size;
    d->num_hidden_layers = (int)c->num_hidden_layers;
    d->num_attention_heads = (int)c->num_attention_heads;
    d->num_key_value_heads = (int)c->num_key_value_heads;
    d->head_dim = (int)c->head_dim;
    d->rms_norm_eps = c->rms_norm_eps;
    d->rope_theta = c->position_embedding_base;
    d->context_window_size = c->context_window_size;
    d->prefill_chunk_size = c->prefill_chunk_size;
    d->sliding_window_size = c->sliding_window_size;
    d->attention_sink_size = (int)c->attention_sink_size;
    d->max_batch_size = (int)c->max_batch_size;
    d->tie_word_embeddings = c->tie_word_embeddings;
    d->qkv_bias = c->qkv_bias;
    d->qk_norm = c->qk_norm;
    if (c->tensor_parallel_shards != 1 || c->pipeline_parallel_stages != 1)
        return fail("%s: tensor_parallel_shards %lld and pipeline_parallel_stages %lld: this engine runs on one "
                    "device (both must be 1)",
                    c->source, (long long)c->tensor_parallel_shards, (long long)c->pipeline_parallel_stages);
    if (!strncmp(c->model_type, "gemma", 5) && gemma_dims(c, d)) return -1;
    if (!strcmp(c->model_type, "phi3") && phi3_rotary_dim(c, &d->rotary_dim)) return -1;
    return rope_scaling_from(c->arch_config, c->rope_scaling, d->rotary_dim ? d->rotary_dim : d->head_dim,
                             &d->rope_scaling, c->source);
}

int lower_apply_overrides(struct model_dims *d, const char *overrides)
{
    if (!overrides || !*overrides) return 0;
    char *copy = xstrdup(overrides), *save = NULL;
    int rc = 0;
    for (char *item = strtok_r(copy, ";", &save); item && rc == 0; item = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(item, '=');
        if (!eq) {
            rc = fail("--overrides: '%s' is not KEY=VALUE", item);
            break;
        }
        *eq = 0;
        char *end;
        errno = 0;
        long long v = strtoll(eq + 1, &end, 10);
        if (errno || end == eq + 1 || *end) {
            rc = fail("--overrides: %s=%s: the value must be an integer", item, eq + 1);
            break;
        }
        if (!strcmp(item, "context_window_size")) d->context_window_size = v;
        else if (!strcmp(item, "sliding_window_size")) {
            /* for layers that alternate, the window of the sliding ones */
            if (d->local_window > 0) {
                if (v < 1 || v > 1 << 30) rc = fail("--overrides: sliding_window_size %lld out of range", v);
                d->local_window = v;
            } else {
                d->sliding_window_size = v;
            }
        }
        else if (!strcmp(item, "prefill_chunk_size")) d->prefill_chunk_size = v;
        else if (!strcmp(item, "attention_sink_size")) d->attention_sink_size = (int)v;
        else if (!strcmp(item, "max_batch_size")) {
            if (v < 1 || v > 1 << 20) rc = fail("--overrides: max_batch_size %lld out of range", v);
            d->max_batch_size = (int)v;
        } else if (!strcmp(item, "tensor_parallel_shards") || !strcmp(item, "pipeline_parallel_stages")) {
            if (v != 1) rc = fail("--overrides: %s=%lld: this engine runs on one device", item, v);
        } else {
            rc = fail("--overrides: unknown key '%s' (context_window_size, sliding_window_size, prefill_chunk_size, "
                      "attention_sink_size, max_batch_size, tensor_parallel_shards, pipeline_parallel_stages)",
                      item);
        }
    }
    free(copy);
    if (rc) return -1;
    /* MLC re-derives: the prefill chunk fits the context (or the window) */
    int64_t bound = d->context_window_size > 0 ? d->context_window_size : d->sliding_window_size;
    if (bound > 0 && d->prefill_chunk_size > bound) {
        note("prefill_chunk_size %lld is clamped to %lld", (long long)d->prefill_chunk_size, (long long)bound);
        d->prefill_chunk_size = bound;
    }
    if (d->prefill_chunk_size < 1) return fail("--overrides: prefill_chunk_size must be positive");
    return 0;
}
