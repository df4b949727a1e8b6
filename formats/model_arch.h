/* What each supported architecture's model_config holds, and how it is
 * derived from a HuggingFace config.json (mlc-formats.md §4).
 *
 * MLC-LLM describes each architecture with a Python dataclass: a list of
 * fields, some required, some with defaults, and a __post_init__ that fills
 * the rest (rope_theta becomes position_embedding_base,
 * max_position_embeddings becomes context_window_size, ...). Here each
 * architecture is one entry of a table: its fields in MLC's order, each with
 * a type, a default and a derivation rule taken from a small shared set.
 * Adding an architecture is adding an entry; the ones whose dataclass does
 * more than these rules (Gemma 2, Gemma 3, Phi-3) are followed step by step
 * in model_config_py.c. */
#ifndef MLC_MODEL_ARCH_H
#define MLC_MODEL_ARCH_H

#include <jansson.h>
#include <stdbool.h>

enum arch_type {
    ARCH_INT,        /* a JSON integer */
    ARCH_NUMBER,     /* any JSON number, kept as written (1e-05, 10000.0) */
    ARCH_BOOL,
    ARCH_STR,
    ARCH_ROPE_SCALING, /* an object or null */
    ARCH_INT_PAIR,   /* [int, int] or null */
};

/* How a field is filled when config.json leaves it out (or gives 0, which
 * MLC's dataclasses treat as "not set"). Rules run in this order. */
enum arch_rule {
    RULE_COPY,            /* the value from config.json, else the default */
    RULE_ROPE_BASE,       /* config.json rope_theta, else 10000 */
    RULE_ROPE_SCALING,    /* kept only with rope_type "llama3"; no rope_type: null */
    RULE_SLIDING_WINDOW,  /* config.json sliding_window; null or absent: -1 */
    RULE_CONTEXT,         /* max_position_embeddings, else max_sequence_length */
    RULE_CONTEXT_SLIDING, /* as RULE_CONTEXT, but -1 when there is a sliding window */
    RULE_KV_HEADS,        /* num_attention_heads */
    RULE_HEAD_DIM,        /* hidden_size / num_attention_heads */
    RULE_PREFILL,         /* min(context (and sliding window), the arch's cap) */
    RULE_BLOCK_SIZE,      /* weight_block_size of an FP8 quantization_config */
};

struct arch_field {
    const char *name;
    enum arch_type type;
    enum arch_rule rule;
    bool required;         /* config.json must give it */
    long long min;         /* smallest valid final value (ARCH_INT) */
    long long def_int;     /* default (ARCH_INT, ARCH_BOOL) */
    const char *def_str;   /* default (ARCH_STR) */
};

/* A config.json key that, when present, must have this value (MLC's model
 * ignores it, so any other value would silently build the wrong model). */
struct arch_expect {
    const char *key;
    const char *value;     /* JSON text: "false", "\"silu\"" */
};

enum arch_qkv_bias { QKV_BIAS_NONE, QKV_BIAS_ALWAYS, QKV_BIAS_FROM_ATTENTION_BIAS };

struct model_arch {
    const char *name;                 /* config.json model_type */
    const struct arch_field *fields;  /* in MLC's order, NULL-terminated */
    const struct arch_expect *expect; /* NULL-terminated */
    int prefill_cap;                  /* default prefill chunk is at most this */
    bool head_dim_is_hidden_per_head; /* head_dim * heads must equal hidden_size */
    bool has_lm_head_always;          /* never tied (mistral) */
    enum arch_qkv_bias qkv_bias;
    bool qk_norm;
    /* built by model_config_py.c, which follows the dataclass step by step
     * (the table then only types the fields for --override) */
    bool dataclass;
};

const struct model_arch *model_arch_find(const char *model_type);
/* "llama, mistral, qwen2, qwen3, gemma2, ..." */
const char *model_arch_names(void);
const struct arch_field *model_arch_field(const struct model_arch *a, const char *name);
/* "hidden_size, intermediate_size, ..." for messages; static per arch. */
const char *model_arch_field_names(const struct model_arch *a);

/* Parse text given on the command line as a value for field f (an integer,
 * a number, true/false, a string, or JSON for objects). NULL with
 * last_error() set when it does not fit the field's type. */
json_t *model_arch_parse_value(const struct arch_field *f, const char *text);

/* model_config from config.json, as MLC's gen_config builds it: the
 * dataclass from config.json (first derivation), overrides applied (a map
 * field -> value; fields the architecture lacks are skipped with a warning,
 * as MLC does), then the derivation again. Every check that can be made
 * from config.json alone runs here; messages name config_path and the
 * field. Returns a new object with the fields in MLC's order. */
json_t *model_arch_build_config(const struct model_arch *a, const json_t *config,
                                const char *config_path, const json_t *overrides);

/* The same for the architectures whose dataclass model_config_py.c
 * follows (gemma2, gemma3, gemma3_text, phi3). */
json_t *model_config_py_build(const char *model_type, const json_t *config, const char *path,
                              const json_t *overrides);

/* Integer / number field of a built model_config (0 / -1 when absent). */
long long model_config_int(const json_t *mc, const char *name, long long absent);

#endif
