/* model_config for Gemma 2, Gemma 3 and Phi-3, as MLC-LLM's Gemma2Config,
 * Gemma3Config (with its Gemma3TextConfig) and Phi3Config build it.
 *
 * These dataclasses do more than the rule table of model_arch.c expresses:
 * Gemma 2 replaces the context window by the sliding window, Phi-3 rewrites
 * its rope_scaling, and Gemma 3 nests a text configuration whose leftover
 * config.json keys travel inside mlc-chat-config.json as text_config.kwargs.
 * So each is written here as the dataclass itself: from_dict (the fields
 * from the dictionary, in declaration order, defaults for the rest, every
 * other key into kwargs), __post_init__, and asdict; gen_config's override
 * step is asdict, set the named fields, from_dict again (a second
 * __post_init__, with nothing left in kwargs). Values are kept as JSON and
 * compared as Python compares them (1000000 == 1000000.0). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "formats/model_arch.h"

/* A dataclass field: its name and its default as JSON text (NULL when the
 * field is required). */
struct py_field {
    const char *name;
    const char *def;
};

/* from_dict: fields in declaration order; the rest of src into *kwargs. */
static json_t *from_dict(const struct py_field *fields, const json_t *src, json_t **kwargs, const char *path,
                         const char *cls)
{
    json_t *obj = json_object();
    *kwargs = json_object();
    for (const struct py_field *f = fields; f->name; f++) {
        const json_t *v = json_object_get(src, f->name);
        if (v) {
            json_object_set(obj, f->name, (json_t *)v);
        } else if (f->def) {
            json_object_set_new(obj, f->name, json_loads(f->def, JSON_DECODE_ANY, NULL));
        } else {
            fail("%s: missing field '%s' (required by MLC-LLM's %s)", path, f->name, cls);
            json_decref(obj);
            json_decref(*kwargs);
            *kwargs = NULL;
            return NULL;
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)src, key, v) {
        bool field = false;
        for (const struct py_field *f = fields; f->name && !field; f++) field = !strcmp(f->name, key);
        if (!field) json_object_set(*kwargs, key, v);
    }
    return obj;
}

/* Python's truth and equality on JSON values. */
static bool is_none(const json_t *v)
{
    return !v || json_is_null(v);
}

static bool num_eq(const json_t *v, double x)
{
    return json_is_number(v) && !json_is_boolean(v) && json_number_value(v) == x;
}

static double num(const json_t *v)
{
    return json_is_number(v) ? json_number_value(v) : json_is_true(v) ? 1 : 0;
}

/* kwargs.pop(key) into obj[field] */
static void pop_into(json_t *obj, const char *field, json_t *kwargs, const char *key)
{
    json_object_set(obj, field, json_object_get(kwargs, key));
    json_object_del(kwargs, key);
}

static int need_number(const json_t *obj, const char *field, const char *path)
{
    const json_t *v = json_object_get(obj, field);
    if (!json_is_number(v)) return fail("%s: field '%s' must be a number", path, field);
    return 0;
}

/* A dimension: a positive integer. */
static int need_dim(const json_t *obj, const char *field, const char *path)
{
    const json_t *v = json_object_get(obj, field);
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return fail("%s: field '%s' must be a positive integer", path, field);
    return 0;
}

static long long get(const json_t *obj, const char *field)
{
    return (long long)num(json_object_get(obj, field));
}

/* The shared tail of the Gemma and Phi __post_init__: the context window
 * from max_position_embeddings when unset, and the prefill chunk. */
static int context_from(json_t *obj, json_t *kwargs, const char *path)
{
    if (!num_eq(json_object_get(obj, "context_window_size"), 0)) return 0;
    static const char *const names[] = {"max_position_embeddings", "max_sequence_length"};
    for (int i = 0; i < 2; i++)
        if (json_object_get(kwargs, names[i])) {
            pop_into(obj, "context_window_size", kwargs, names[i]);
            return need_dim(obj, "context_window_size", path) ? fail("%s: field '%s' must be a positive integer", path,
                                                                    names[i])
                                                              : 0;
        }
    return fail("%s: missing field 'max_position_embeddings' (none of context_window_size, max_position_embeddings, "
                "max_sequence_length is given; use --context-window-size)", path);
}

static void prefill(json_t *obj)
{
    long long ctx = get(obj, "context_window_size"), pf = get(obj, "prefill_chunk_size");
    long long want = ctx < 8192 ? ctx : 8192;
    if (pf == 0) json_object_set_new(obj, "prefill_chunk_size", json_integer(want));
    else if (pf > ctx) {
        note("prefill_chunk_size %lld is larger than context_window_size %lld: clamped to %lld", pf, ctx, want);
        json_object_set_new(obj, "prefill_chunk_size", json_integer(want));
    }
}

static int heads_divide(const json_t *obj, const char *path)
{
    if (need_dim(obj, "num_attention_heads", path) || need_dim(obj, "num_key_value_heads", path)) return -1;
    if (get(obj, "num_attention_heads") % get(obj, "num_key_value_heads"))
        return fail("%s: num_attention_heads %lld is not divisible by num_key_value_heads %lld", path,
                    get(obj, "num_attention_heads"), get(obj, "num_key_value_heads"));
    return 0;
}

static int gelu_only(json_t *obj, const json_t *kwargs, const char *path)
{
    if (is_none(json_object_get(obj, "hidden_activation")))
        json_object_set(obj, "hidden_activation", json_object_get(kwargs, "hidden_act"));
    const char *act = json_string_value(json_object_get(obj, "hidden_activation"));
    if (!act || (strcmp(act, "gelu") && strcmp(act, "gelu_pytorch_tanh")))
        return fail("%s: field 'hidden_activation': %s%s%s is not supported (MLC-LLM's Gemma takes gelu or "
                    "gelu_pytorch_tanh)", path, act ? "'" : "", act ? act : "(none)", act ? "'" : "");
    if (json_is_true(json_object_get(obj, "attention_bias")))
        return fail("%s: field 'attention_bias' must be false for Gemma (MLC-LLM's model has no other)", path);
    return 0;
}

/* ---- Gemma 2 ---- */

static const struct py_field gemma2_fields[] = {
    {"hidden_size", NULL},          {"intermediate_size", NULL},      {"attention_bias", NULL},
    {"num_attention_heads", NULL},  {"num_key_value_heads", NULL},    {"head_dim", NULL},
    {"num_hidden_layers", NULL},    {"rms_norm_eps", NULL},           {"vocab_size", NULL},
    {"hidden_activation", "null"},  {"position_embedding_base", "0"}, {"context_window_size", "0"},
    {"prefill_chunk_size", "0"},    {"tensor_parallel_shards", "1"},  {"max_batch_size", "1"},
    {"attn_logit_softcapping", "null"}, {"final_logit_softcapping", "null"}, {"query_pre_attn_scalar", "null"},
    {"sliding_window", "null"},     {NULL, NULL},
};

static int gemma2_post_init(json_t *obj, json_t *kwargs, const char *path)
{
    if (gelu_only(obj, kwargs, path)) return -1;
    if (num_eq(json_object_get(obj, "position_embedding_base"), 0)) {
        if (json_object_get(kwargs, "rope_theta")) pop_into(obj, "position_embedding_base", kwargs, "rope_theta");
        else json_object_set_new(obj, "position_embedding_base", json_integer(10000));
    }
    if (context_from(obj, kwargs, path) || heads_divide(obj, path)) return -1;
    prefill(obj);
    /* MLC runs every layer with the sliding window: it is the context */
    const json_t *sw = json_object_get(obj, "sliding_window");
    if (!json_is_integer(sw) || json_integer_value(sw) < 1)
        return fail("%s: field 'sliding_window' must be a positive integer (MLC-LLM's Gemma 2 uses it as the "
                    "context window)", path);
    json_object_set(obj, "context_window_size", (json_t *)sw);
    return 0;
}

static int gemma2_check(const json_t *obj, const char *path)
{
    static const char *const dims[] = {"hidden_size", "intermediate_size", "head_dim", "num_hidden_layers",
                                       "vocab_size", "tensor_parallel_shards", "max_batch_size", NULL};
    for (int i = 0; dims[i]; i++)
        if (need_dim(obj, dims[i], path)) return -1;
    if (need_number(obj, "rms_norm_eps", path) || need_number(obj, "position_embedding_base", path)) return -1;
    static const char *const caps[] = {"attn_logit_softcapping", "final_logit_softcapping", NULL};
    for (int i = 0; caps[i]; i++) {
        const json_t *v = json_object_get(obj, caps[i]);
        if (!is_none(v) && !(json_is_number(v) && json_number_value(v) > 0))
            return fail("%s: field '%s' must be a positive number or null", path, caps[i]);
    }
    if (!json_is_integer(json_object_get(obj, "query_pre_attn_scalar")) || get(obj, "query_pre_attn_scalar") < 1)
        return fail("%s: field 'query_pre_attn_scalar' must be a positive integer", path);
    return 0;
}

/* ---- Phi-3 ---- */

static const struct py_field phi3_fields[] = {
    {"model_type", NULL},           {"hidden_size", NULL},
    {"vocab_size", NULL},           {"num_hidden_layers", NULL},
    {"num_attention_heads", NULL},  {"intermediate_size", NULL},
    {"rms_norm_eps", NULL},         {"num_key_value_heads", NULL},
    {"max_position_embeddings", NULL}, {"position_embedding_base", "0"},
    {"rope_scaling", "null"},       {"original_max_position_embeddings", "0"},
    {"context_window_size", "0"},   {"prefill_chunk_size", "0"},
    {"head_dim", "0"},              {"tensor_parallel_shards", "1"},
    {"max_batch_size", "1"},        {"tie_word_embeddings", "false"},
    {"partial_rotary_factor", "1.0"}, {NULL, NULL},
};

static int phi3_post_init(json_t *obj, json_t *kwargs, const char *path)
{
    if (num_eq(json_object_get(obj, "position_embedding_base"), 0)) {
        if (json_object_get(kwargs, "rope_theta")) pop_into(obj, "position_embedding_base", kwargs, "rope_theta");
        else json_object_set_new(obj, "position_embedding_base", json_integer(10000));
    }
    json_t *rs = json_object_get(obj, "rope_scaling");
    if (!is_none(rs)) {
        if (!json_is_object(rs)) return fail("%s: field 'rope_scaling' must be an object or null", path);
        /* the dataclass rewrites the dictionary it was given: a copy here */
        rs = json_deep_copy(rs);
        json_object_set_new(obj, "rope_scaling", rs);
        const json_t *type = json_object_get(rs, "type");
        if (!type) {
            warning("%s: rope_scaling has no 'type': ignored, as MLC-LLM does", path);
            json_object_set_new(obj, "rope_scaling", json_null());
        } else {
            if (json_is_string(type) && !strcmp(json_string_value(type), "su"))
                json_object_set_new(rs, "type", json_string("longrope"));
            type = json_object_get(rs, "type");
            if (!json_is_string(type) || strcmp(json_string_value(type), "longrope"))
                return fail("%s: field 'rope_scaling': type %s is not supported for phi3 (only longrope, or su)", path,
                            json_is_string(type) ? json_string_value(type) : "(not a string)");
            json_object_set(rs, "rope_type", (json_t *)type);
            json_object_set(rs, "max_position_embeddings", json_object_get(obj, "max_position_embeddings"));
            json_object_set(rs, "original_max_position_embeddings",
                            json_object_get(obj, "original_max_position_embeddings"));
        }
    }
    if (num_eq(json_object_get(obj, "context_window_size"), 0))
        json_object_set(obj, "context_window_size", json_object_get(obj, "max_position_embeddings"));
    if (need_dim(obj, "context_window_size", path)) return -1;
    prefill(obj);
    const json_t *kv = json_object_get(obj, "num_key_value_heads");
    if (is_none(kv) || num_eq(kv, 0)) json_object_set(obj, "num_key_value_heads", json_object_get(obj, "num_attention_heads"));
    if (need_dim(obj, "hidden_size", path) || need_dim(obj, "num_attention_heads", path)) return -1;
    if (num_eq(json_object_get(obj, "head_dim"), 0))
        json_object_set_new(obj, "head_dim", json_integer(get(obj, "hidden_size") / get(obj, "num_attention_heads")));
    if (need_dim(obj, "head_dim", path)) return -1;
    if (get(obj, "head_dim") * get(obj, "num_attention_heads") != get(obj, "hidden_size"))
        return fail("%s: hidden_size %lld is not num_attention_heads %lld x head_dim %lld (phi3 requires it)", path,
                    get(obj, "hidden_size"), get(obj, "num_attention_heads"), get(obj, "head_dim"));
    return heads_divide(obj, path);
}

static int phi3_check(const json_t *obj, const char *path)
{
    static const char *const dims[] = {"intermediate_size", "num_hidden_layers", "vocab_size",
                                       "max_position_embeddings", "tensor_parallel_shards", "max_batch_size", NULL};
    for (int i = 0; dims[i]; i++)
        if (need_dim(obj, dims[i], path)) return -1;
    if (need_number(obj, "rms_norm_eps", path) || need_number(obj, "position_embedding_base", path) ||
        need_number(obj, "partial_rotary_factor", path))
        return -1;
    const json_t *rs = json_object_get(obj, "rope_scaling");
    if (json_is_object(rs)) {
        long long half = get(obj, "head_dim") / 2;
        static const char *const lists[] = {"long_factor", "short_factor"};
        for (int i = 0; i < 2; i++) {
            const json_t *l = json_object_get(rs, lists[i]);
            if (!json_is_array(l) || (long long)json_array_size(l) != half)
                return fail("%s: field 'rope_scaling': '%s' must be a list of head_dim / 2 = %lld numbers", path,
                            lists[i], half);
            for (size_t j = 0; j < json_array_size(l); j++)
                if (!json_is_number(json_array_get(l, j)))
                    return fail("%s: field 'rope_scaling': %s[%zu] is not a number", path, lists[i], j);
        }
        if (need_dim(obj, "original_max_position_embeddings", path)) return -1;
    }
    return 0;
}

/* ---- Gemma 3 ---- */

static const struct py_field gemma3_text_fields[] = {
    {"hidden_size", NULL},            {"intermediate_size", NULL},          {"num_hidden_layers", NULL},
    {"attention_bias", "false"},      {"num_attention_heads", "8"},         {"num_key_value_heads", "4"},
    {"head_dim", "256"},              {"rms_norm_eps", "1e-06"},            {"hidden_activation", "\"gelu_pytorch_tanh\""},
    {"position_embedding_base", "1000000"}, {"rope_scaling", "0"},          {"context_window_size", "131072"},
    {"prefill_chunk_size", "0"},      {"query_pre_attn_scalar", "256"},     {"sliding_window_size", "null"},
    {NULL, NULL},
};

static const struct py_field gemma3_fields[] = {
    {"text_config", "null"},        {"vocab_size", "262208"},      {"tensor_parallel_shards", "1"},
    {"max_batch_size", "1"},        {"context_window_size", "-1"}, {"sliding_window_size", "-1"},
    {"prefill_chunk_size", "-1"},   {"is_text_model", "false"},    {NULL, NULL},
};

static int gemma3_text_post_init(json_t *obj, json_t *kwargs, const char *path)
{
    if (is_none(json_object_get(obj, "sliding_window_size")))
        json_object_set(obj, "sliding_window_size", json_object_get(kwargs, "sliding_window"));
    if (gelu_only(obj, kwargs, path)) return -1;
    if (num_eq(json_object_get(obj, "position_embedding_base"), 1000000) && json_object_get(kwargs, "rope_theta"))
        pop_into(obj, "position_embedding_base", kwargs, "rope_theta");
    if (context_from(obj, kwargs, path) || heads_divide(obj, path)) return -1;
    if (need_dim(obj, "context_window_size", path)) return -1;
    prefill(obj);
    /* MLC runs every layer with the sliding window; the context is at
     * least 8192 */
    const json_t *sw = json_object_get(obj, "sliding_window_size");
    if (!json_is_integer(sw) || json_integer_value(sw) < 1)
        return fail("%s: field 'sliding_window' must be a positive integer (MLC-LLM's Gemma 3 needs it)", path);
    long long w = json_integer_value(sw);
    json_object_set_new(obj, "context_window_size", json_integer(w > 8192 ? w : 8192));
    return 0;
}

/* Gemma3TextConfig.from_dict + __post_init__; the result has its kwargs
 * under "kwargs", as dataclasses.asdict writes a nested dataclass. */
static json_t *gemma3_text(const json_t *src, const char *path)
{
    json_t *kwargs;
    json_t *obj = from_dict(gemma3_text_fields, src, &kwargs, path, "Gemma3TextConfig");
    if (!obj) return NULL;
    if (gemma3_text_post_init(obj, kwargs, path)) {
        json_decref(obj);
        json_decref(kwargs);
        return NULL;
    }
    json_object_set_new(obj, "kwargs", kwargs);
    return obj;
}

/* asdict(text_config) with its kwargs merged back in: what the outer
 * __post_init__ builds the text configuration again from. */
static json_t *flatten(const json_t *text)
{
    json_t *flat = json_copy((json_t *)text);
    json_t *kw = json_incref(json_object_get(flat, "kwargs"));
    json_object_del(flat, "kwargs");
    if (json_is_object(kw)) json_object_update(flat, kw);
    json_decref(kw);
    return flat;
}

static int gemma3_post_init(json_t *obj, json_t *kwargs, const char *path)
{
    json_t *text = json_object_get(obj, "text_config");
    json_t *first = NULL;
    if (is_none(text)) {
        json_object_set_new(obj, "is_text_model", json_true());
        if (!(first = gemma3_text(kwargs, path))) return -1;
        text = first;
    } else if (!json_is_object(text)) {
        return fail("%s: field 'text_config' must be an object", path);
    }
    json_t *flat = flatten(text);
    json_decref(first);
    char *where = xasprintf("%s: text_config", path);
    json_t *again = gemma3_text(flat, where);
    free(where);
    json_decref(flat);
    if (!again) return -1;
    json_object_set_new(obj, "text_config", again);
    static const char *const inherited[] = {"context_window_size", "prefill_chunk_size", "sliding_window_size"};
    for (int i = 0; i < 3; i++)
        if (num(json_object_get(obj, inherited[i])) <= 0)
            json_object_set(obj, inherited[i], json_object_get(again, inherited[i]));
    return 0;
}

static int gemma3_check(const json_t *obj, const char *path)
{
    static const char *const dims[] = {"vocab_size", "tensor_parallel_shards", "max_batch_size", NULL};
    for (int i = 0; dims[i]; i++)
        if (need_dim(obj, dims[i], path)) return -1;
    const json_t *text = json_object_get(obj, "text_config");
    char *where = xasprintf("%s: text_config", path);
    static const char *const tdims[] = {"hidden_size", "intermediate_size", "num_hidden_layers", "head_dim",
                                        "query_pre_attn_scalar", NULL};
    int rc = 0;
    for (int i = 0; tdims[i] && !rc; i++) rc = need_dim(text, tdims[i], where);
    if (!rc) rc = need_number(text, "rms_norm_eps", where) || need_number(text, "position_embedding_base", where);
    const json_t *rs = json_object_get(text, "rope_scaling");
    if (!rc && json_is_object(rs)) {
        const char *type = json_string_value(json_object_get(rs, "rope_type"));
        if (!type || strcmp(type, "linear") || !json_is_number(json_object_get(rs, "factor")))
            rc = fail("%s: field 'rope_scaling': only linear scaling with a factor is supported for gemma3", where);
    }
    free(where);
    return rc;
}

/* ---- the shared driver ---- */

struct py_class {
    const char *model_type, *cls;
    const struct py_field *fields;
    int (*post_init)(json_t *obj, json_t *kwargs, const char *path);
    int (*check)(const json_t *obj, const char *path);
};

static const struct py_class classes[] = {
    {"gemma2", "Gemma2Config", gemma2_fields, gemma2_post_init, gemma2_check},
    {"phi3", "Phi3Config", phi3_fields, phi3_post_init, phi3_check},
    {"gemma3", "Gemma3Config", gemma3_fields, gemma3_post_init, gemma3_check},
    {"gemma3_text", "Gemma3Config", gemma3_fields, gemma3_post_init, gemma3_check},
};

static json_t *build(const struct py_class *c, const json_t *src, const char *path)
{
    json_t *kwargs;
    json_t *obj = from_dict(c->fields, src, &kwargs, path, c->cls);
    if (!obj) return NULL;
    int rc = c->post_init(obj, kwargs, path);
    json_decref(kwargs);
    if (rc) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *model_config_py_build(const char *model_type, const json_t *config, const char *path, const json_t *overrides)
{
    const struct py_class *c = NULL;
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (!strcmp(classes[i].model_type, model_type)) c = &classes[i];
    if (!c) {
        fail("%s: model_type '%s' has no dataclass here", path, model_type);
        return NULL;
    }
    json_t *obj = build(c, config, path);
    if (!obj) return NULL;
    if (overrides) {
        /* ConfigOverride.apply: asdict, set what the dataclass has, from_dict */
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)overrides, key, v) {
            if (!json_object_get(obj, key)) {
                warning("cannot override %s: %s's model_config has no such field", key, model_type);
                continue;
            }
            json_object_set(obj, key, v);
        }
        json_t *again = build(c, obj, path);
        json_decref(obj);
        if (!(obj = again)) return NULL;
    }
    if (c->check(obj, path)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
