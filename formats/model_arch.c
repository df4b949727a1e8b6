/* The architecture table (see model_arch.h): each supported
 * architecture's model_config fields, defaults and rules, following
 * MLC-LLM's LlamaConfig, MistralConfig, QWen2Config and Qwen3Config (and
 * the fields of Gemma2Config, Gemma3Config and Phi3Config, which
 * model_config_py.c builds). The derivation the rules name is in
 * model_config.c. */
#include "formats/model_arch.h"

#include <stdio.h>
#include <string.h>

/* Field helpers: required dimension, copied setting, derived setting. */
#define DIM(n) {n, ARCH_INT, RULE_COPY, true, 1, 0, NULL}
#define EPS(n) {n, ARCH_NUMBER, RULE_COPY, true, 0, 0, NULL}
#define FLAG(n, d) {n, ARCH_BOOL, RULE_COPY, false, 0, d, NULL}
#define SETTING(n, min, d) {n, ARCH_INT, RULE_COPY, false, min, d, NULL}
#define DERIVED(n, rule, min) {n, ARCH_INT, rule, false, min, 0, NULL}
#define END {NULL, 0, 0, false, 0, 0, NULL}

static const struct arch_field llama_fields[] = {
    DIM("hidden_size"),
    DIM("intermediate_size"),
    DIM("num_attention_heads"),
    DIM("num_hidden_layers"),
    EPS("rms_norm_eps"),
    DIM("vocab_size"),
    FLAG("tie_word_embeddings", 0),
    {"position_embedding_base", ARCH_NUMBER, RULE_ROPE_BASE, false, 0, 0, NULL},
    {"rope_scaling", ARCH_ROPE_SCALING, RULE_ROPE_SCALING, false, 0, 0, NULL},
    DERIVED("context_window_size", RULE_CONTEXT, 1),
    DERIVED("prefill_chunk_size", RULE_PREFILL, 1),
    DERIVED("num_key_value_heads", RULE_KV_HEADS, 1),
    DERIVED("head_dim", RULE_HEAD_DIM, 1),
    SETTING("tensor_parallel_shards", 1, 1),
    SETTING("pipeline_parallel_stages", 1, 1),
    SETTING("max_batch_size", 1, 1),
    FLAG("disaggregation", 0),
    END,
};

static const struct arch_field mistral_fields[] = {
    DIM("hidden_size"),
    DIM("intermediate_size"),
    DIM("num_attention_heads"),
    DIM("num_hidden_layers"),
    EPS("rms_norm_eps"),
    DIM("vocab_size"),
    {"position_embedding_base", ARCH_NUMBER, RULE_ROPE_BASE, false, 0, 0, NULL},
    DERIVED("num_key_value_heads", RULE_KV_HEADS, 1),
    DERIVED("head_dim", RULE_HEAD_DIM, 1),
    DERIVED("context_window_size", RULE_CONTEXT_SLIDING, -1),
    DERIVED("sliding_window_size", RULE_SLIDING_WINDOW, -1),
    DERIVED("prefill_chunk_size", RULE_PREFILL, 1),
    SETTING("attention_sink_size", 0, 4),
    SETTING("tensor_parallel_shards", 1, 1),
    SETTING("max_batch_size", 1, 1),
    END,
};

static const struct arch_field qwen2_fields[] = {
    {"hidden_act", ARCH_STR, RULE_COPY, true, 0, 0, NULL},
    DIM("hidden_size"),
    DIM("intermediate_size"),
    DIM("num_attention_heads"),
    DIM("num_hidden_layers"),
    DIM("num_key_value_heads"),
    EPS("rms_norm_eps"),
    {"rope_theta", ARCH_NUMBER, RULE_COPY, true, 0, 0, NULL},
    DIM("vocab_size"),
    FLAG("tie_word_embeddings", 0),
    DERIVED("context_window_size", RULE_CONTEXT, 1),
    DERIVED("prefill_chunk_size", RULE_PREFILL, 1),
    SETTING("tensor_parallel_shards", 1, 1),
    DERIVED("head_dim", RULE_HEAD_DIM, 1),
    {"dtype", ARCH_STR, RULE_COPY, false, 0, 0, "float32"},
    SETTING("max_batch_size", 1, 1),
    END,
};

/* Qwen3Config has no head_dim rule: MLC would write 0 when config.json
 * lacks it, so it is required here (every Qwen3 config.json gives it). */
static const struct arch_field qwen3_fields[] = {
    {"hidden_act", ARCH_STR, RULE_COPY, true, 0, 0, NULL},
    DIM("hidden_size"),
    DIM("intermediate_size"),
    {"attention_bias", ARCH_BOOL, RULE_COPY, true, 0, 0, NULL},
    DIM("num_attention_heads"),
    DIM("num_hidden_layers"),
    DIM("num_key_value_heads"),
    EPS("rms_norm_eps"),
    {"rope_theta", ARCH_NUMBER, RULE_COPY, true, 0, 0, NULL},
    DIM("vocab_size"),
    FLAG("tie_word_embeddings", 0),
    DERIVED("context_window_size", RULE_CONTEXT, 1),
    DERIVED("prefill_chunk_size", RULE_PREFILL, 1),
    SETTING("tensor_parallel_shards", 1, 1),
    DIM("head_dim"),
    {"dtype", ARCH_STR, RULE_COPY, false, 0, 0, "float32"},
    SETTING("max_batch_size", 1, 1),
    {"weight_block_size", ARCH_INT_PAIR, RULE_BLOCK_SIZE, false, 0, 0, NULL},
    END,
};

/* Gemma2Config, Phi3Config and Gemma3Config: the fields, typed for
 * --override (model_config_py.c builds them). */
#define NUM(n) {n, ARCH_NUMBER, RULE_COPY, false, 0, 0, NULL}
#define STR(n) {n, ARCH_STR, RULE_COPY, false, 0, 0, NULL}
static const struct arch_field gemma2_fields[] = {
    DIM("hidden_size"), DIM("intermediate_size"), FLAG("attention_bias", 0), DIM("num_attention_heads"),
    DIM("num_key_value_heads"), DIM("head_dim"), DIM("num_hidden_layers"), EPS("rms_norm_eps"),
    DIM("vocab_size"), STR("hidden_activation"), NUM("position_embedding_base"),
    SETTING("context_window_size", 1, 0), SETTING("prefill_chunk_size", 1, 0),
    SETTING("tensor_parallel_shards", 1, 1), SETTING("max_batch_size", 1, 1), NUM("attn_logit_softcapping"),
    NUM("final_logit_softcapping"), SETTING("query_pre_attn_scalar", 1, 0), SETTING("sliding_window", 1, 0),
    END,
};

static const struct arch_field phi3_fields[] = {
    STR("model_type"), DIM("hidden_size"), DIM("vocab_size"), DIM("num_hidden_layers"),
    DIM("num_attention_heads"), DIM("intermediate_size"), EPS("rms_norm_eps"), DIM("num_key_value_heads"),
    DIM("max_position_embeddings"), NUM("position_embedding_base"),
    {"rope_scaling", ARCH_ROPE_SCALING, RULE_COPY, false, 0, 0, NULL},
    SETTING("original_max_position_embeddings", 0, 0), SETTING("context_window_size", 1, 0),
    SETTING("prefill_chunk_size", 1, 0), SETTING("head_dim", 1, 0), SETTING("tensor_parallel_shards", 1, 1),
    SETTING("max_batch_size", 1, 1), FLAG("tie_word_embeddings", 0), NUM("partial_rotary_factor"),
    END,
};

static const struct arch_field gemma3_fields[] = {
    {"text_config", ARCH_ROPE_SCALING, RULE_COPY, false, 0, 0, NULL},
    DIM("vocab_size"), SETTING("tensor_parallel_shards", 1, 1), SETTING("max_batch_size", 1, 1),
    SETTING("context_window_size", 1, -1), SETTING("sliding_window_size", 1, -1),
    SETTING("prefill_chunk_size", 1, -1), FLAG("is_text_model", 0),
    END,
};

/* MLC's Llama and Mistral have no attention or MLP biases and use SiLU. */
static const struct arch_expect llama_expect[] = {
    {"attention_bias", "false"}, {"mlp_bias", "false"}, {"hidden_act", "\"silu\""}, {NULL, NULL},
};
static const struct arch_expect silu_expect[] = {{"hidden_act", "\"silu\""}, {NULL, NULL}};

static const struct model_arch archs[] = {
    {"llama", llama_fields, llama_expect, 8192, false, false, QKV_BIAS_NONE, false, false},
    {"mistral", mistral_fields, silu_expect, 8192, false, true, QKV_BIAS_NONE, false, false},
    {"qwen2", qwen2_fields, silu_expect, 8192, true, false, QKV_BIAS_ALWAYS, false, false},
    {"qwen3", qwen3_fields, silu_expect, 2048, false, false, QKV_BIAS_FROM_ATTENTION_BIAS, true, false},
    {"gemma2", gemma2_fields, NULL, 8192, false, false, QKV_BIAS_NONE, false, true},
    {"gemma3", gemma3_fields, NULL, 8192, false, false, QKV_BIAS_NONE, true, true},
    {"gemma3_text", gemma3_fields, NULL, 8192, false, false, QKV_BIAS_NONE, true, true},
    {"phi3", phi3_fields, NULL, 8192, true, false, QKV_BIAS_NONE, false, true},
};
#define NARCHS (sizeof archs / sizeof archs[0])

const struct model_arch *model_arch_find(const char *model_type)
{
    for (size_t i = 0; i < NARCHS; i++)
        if (model_type && !strcmp(archs[i].name, model_type)) return &archs[i];
    return NULL;
}

const char *model_arch_names(void)
{
    static char names[512];
    if (!names[0]) {
        size_t off = 0;
        for (size_t i = 0; i < NARCHS; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "", archs[i].name);
    }
    return names;
}

const struct arch_field *model_arch_field(const struct model_arch *a, const char *name)
{
    for (const struct arch_field *f = a->fields; f->name; f++)
        if (!strcmp(f->name, name)) return f;
    return NULL;
}

const char *model_arch_field_names(const struct model_arch *a)
{
    static char names[NARCHS][1024];
    char *out = names[a - archs];
    if (!out[0]) {
        size_t off = 0;
        for (const struct arch_field *f = a->fields; f->name; f++)
            off += (size_t)snprintf(out + off, sizeof names[0] - off, "%s%s", f == a->fields ? "" : ", ",
                                    f->name);
    }
    return out;
}
