/* The derivation of model_config from config.json, as MLC-LLM's model
 * dataclasses do it (see model_arch.h; the table is in model_arch.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "formats/model_arch.h"

long long model_config_int(const json_t *mc, const char *name, long long absent)
{
    const json_t *v = json_object_get(mc, name);
    if (json_is_integer(v)) return json_integer_value(v);
    if (json_is_real(v)) return (long long)json_real_value(v);
    return absent;
}

/* ---- values ---- */

static const char *type_phrase(enum arch_type t)
{
    switch (t) {
    case ARCH_INT: return "an integer";
    case ARCH_NUMBER: return "a number";
    case ARCH_BOOL: return "true or false";
    case ARCH_STR: return "a string";
    case ARCH_ROPE_SCALING: return "an object or null";
    case ARCH_INT_PAIR: return "a list of two integers or null";
    }
    return "?";
}

static bool type_ok(enum arch_type t, const json_t *v)
{
    switch (t) {
    case ARCH_INT: return json_is_integer(v);
    case ARCH_NUMBER: return json_is_number(v);
    case ARCH_BOOL: return json_is_boolean(v);
    case ARCH_STR: return json_is_string(v);
    case ARCH_ROPE_SCALING: return json_is_object(v) || json_is_null(v);
    case ARCH_INT_PAIR:
        return json_is_null(v) || (json_is_array(v) && json_array_size(v) == 2 &&
                                   json_is_integer(json_array_get(v, 0)) &&
                                   json_is_integer(json_array_get(v, 1)));
    }
    return false;
}

static json_t *default_value(const struct arch_field *f)
{
    switch (f->type) {
    case ARCH_INT: return json_integer(f->def_int);
    case ARCH_NUMBER: return json_integer(0);
    case ARCH_BOOL: return json_boolean(f->def_int);
    case ARCH_STR: return json_string(f->def_str ? f->def_str : "");
    default: return json_null();
    }
}

json_t *model_arch_parse_value(const struct arch_field *f, const char *text)
{
    switch (f->type) {
    case ARCH_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(text, &end, 10);
        if (!*text || *end || errno) break;
        return json_integer(v);
    }
    case ARCH_NUMBER: {
        /* kept as written: "500000" stays an integer, "1e-6" a float */
        json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
        if (json_is_number(v)) return v;
        json_decref(v);
        break;
    }
    case ARCH_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1")) return json_true();
        if (!strcmp(text, "false") || !strcmp(text, "0")) return json_false();
        break;
    case ARCH_STR: return json_string(text);
    case ARCH_ROPE_SCALING:
    case ARCH_INT_PAIR: {
        json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
        if (v && type_ok(f->type, v)) return v;
        json_decref(v);
        break;
    }
    }
    fail("%s: '%s' is not %s", f->name, text, type_phrase(f->type));
    return NULL;
}

/* ---- the derivation (MLC's __post_init__) ---- */

static bool unset(const json_t *v)
{
    return !v || json_is_null(v) || (json_is_number(v) && json_number_value(v) == 0);
}

static long long get_int(const json_t *mc, const char *name)
{
    return model_config_int(mc, name, 0);
}

/* Take a key out of kwargs (new reference, or NULL). */
static json_t *pop(json_t *kwargs, const char *key)
{
    json_t *v = json_object_get(kwargs, key);
    if (!v) return NULL;
    json_incref(v);
    json_object_del(kwargs, key);
    return v;
}

static int rule_rope_base(json_t *mc, const struct arch_field *f, json_t *kwargs, const char *path)
{
    if (!unset(json_object_get(mc, f->name))) return 0;
    json_t *theta = pop(kwargs, "rope_theta");
    if (theta && !json_is_number(theta)) {
        json_decref(theta);
        return fail("%s: field 'rope_theta' must be a number", path);
    }
    json_object_set_new(mc, f->name, theta ? theta : json_integer(10000));
    return 0;
}

static int rule_rope_scaling(json_t *mc, const struct arch_field *f, const char *arch, const char *path)
{
    json_t *rs = json_object_get(mc, f->name);
    if (!json_is_object(rs)) return 0;
    json_t *type = json_object_get(rs, "rope_type");
    if (!type) {
        /* MLC drops scaling it cannot name (old {"type": "linear"} configs) */
        const char *old = json_string_value(json_object_get(rs, "type"));
        warning("%s: rope_scaling has no rope_type%s%s%s: ignored, as MLC-LLM does", path,
                old ? " (type '" : "", old ? old : "", old ? "')" : "");
        json_object_set_new(mc, f->name, json_null());
        return 0;
    }
    if (!json_is_string(type) || strcmp(json_string_value(type), "llama3"))
        return fail("%s: field 'rope_scaling': rope_type %s is not supported for %s (only \"llama3\")",
                    path, json_is_string(type) ? json_string_value(type) : "(not a string)", arch);
    static const char *const keys[] = {"factor", "low_freq_factor", "high_freq_factor",
                                       "original_max_position_embeddings"};
    for (size_t i = 0; i < 4; i++)
        if (!json_is_number(json_object_get(rs, keys[i])))
            return fail("%s: field 'rope_scaling': '%s' must be a number", path, keys[i]);
    return 0;
}

static int rule_sliding(json_t *mc, const struct arch_field *f, json_t *kwargs, const char *path)
{
    if (!unset(json_object_get(mc, f->name))) return 0;
    json_t *sw = pop(kwargs, "sliding_window");
    if (sw && !json_is_null(sw) && !json_is_integer(sw)) {
        json_decref(sw);
        return fail("%s: field 'sliding_window' must be an integer or null", path);
    }
    if (!sw || json_is_null(sw)) {
        json_decref(sw);
        sw = json_integer(-1);
    }
    json_object_set_new(mc, f->name, sw);
    return 0;
}

static int rule_context(json_t *mc, const struct arch_field *f, json_t *kwargs, const char *path)
{
    if (!unset(json_object_get(mc, f->name))) return 0;
    if (f->rule == RULE_CONTEXT_SLIDING && get_int(mc, "sliding_window_size") != -1) {
        json_object_set_new(mc, f->name, json_integer(-1));
        return 0;
    }
    static const char *const sources[] = {"max_position_embeddings", "max_sequence_length"};
    for (size_t i = 0; i < 2; i++) {
        json_t *v = pop(kwargs, sources[i]);
        if (!v) continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            json_decref(v);
            return fail("%s: field '%s' must be a positive integer", path, sources[i]);
        }
        json_object_set_new(mc, f->name, v);
        return 0;
    }
    return fail("%s: missing field 'max_position_embeddings' (none of context_window_size, "
                "max_position_embeddings, max_sequence_length is given; use --context-window-size)",
                path);
}

static int rule_head_dim(json_t *mc, const struct arch_field *f, const char *path)
{
    if (!unset(json_object_get(mc, f->name))) return 0;
    long long hidden = get_int(mc, "hidden_size"), heads = get_int(mc, "num_attention_heads");
    if (hidden % heads)
        return fail("%s: hidden_size %lld is not divisible by num_attention_heads %lld "
                    "(and there is no head_dim)", path, hidden, heads);
    json_object_set_new(mc, f->name, json_integer(hidden / heads));
    return 0;
}

static int rule_prefill(json_t *mc, const struct arch_field *f, const struct model_arch *a, const char *path)
{
    long long ctx = get_int(mc, "context_window_size");
    long long cap = a->prefill_cap;
    const json_t *v = json_object_get(mc, f->name);
    if (unset(v)) {
        long long best = cap;
        bool any = false;
        if (model_arch_field(a, "sliding_window_size")) {
            long long sw = get_int(mc, "sliding_window_size");
            if (sw != -1) best = sw < best ? sw : best, any = true;
        }
        if (ctx != -1) best = ctx < best ? ctx : best, any = true;
        if (!any)
            return fail("%s: neither a context window nor a sliding window is set "
                        "(give --context-window-size)", path);
        json_object_set_new(mc, f->name, json_integer(best));
        return 0;
    }
    long long pf = json_integer_value(v);
    if (ctx > 0 && pf > ctx) {
        long long to = ctx < cap ? ctx : cap;
        note("prefill_chunk_size %lld is larger than context_window_size %lld: clamped to %lld", pf, ctx, to);
        json_object_set_new(mc, f->name, json_integer(to));
    }
    return 0;
}

static bool str_is(const json_t *v, const char *s)
{
    return json_is_string(v) && !strcmp(json_string_value(v), s);
}

/* Qwen3's FP8 checkpoints carry their block size in quantization_config;
 * any other pre-quantized checkpoint is refused, as MLC does. */
static int rule_block_size(json_t *mc, const struct arch_field *f, json_t *kwargs, const char *path)
{
    json_t *qc = json_object_get(kwargs, "quantization_config");
    if (!qc) return 0;
    const json_t *bs = json_object_get(qc, "weight_block_size");
    bool fp8 = str_is(json_object_get(qc, "activation_scheme"), "dynamic") &&
               str_is(json_object_get(qc, "fmt"), "e4m3") && str_is(json_object_get(qc, "quant_method"), "fp8") &&
               bs;
    if (!fp8)
        return fail("%s: field 'quantization_config': only FP8 (e4m3, dynamic) block-quantized "
                    "checkpoints are supported", path);
    if (!type_ok(ARCH_INT_PAIR, bs) || json_is_null(bs))
        return fail("%s: field 'quantization_config': weight_block_size must be two integers", path);
    json_object_set(mc, f->name, (json_t *)bs);
    return 0;
}

static int post_init(const struct model_arch *a, json_t *mc, json_t *kwargs, const char *path)
{
    static const enum arch_rule order[] = {
        RULE_ROPE_BASE, RULE_ROPE_SCALING, RULE_SLIDING_WINDOW, RULE_CONTEXT, RULE_CONTEXT_SLIDING,
        RULE_KV_HEADS,  RULE_HEAD_DIM,     RULE_PREFILL,        RULE_BLOCK_SIZE,
    };
    for (size_t r = 0; r < sizeof order / sizeof order[0]; r++) {
        for (const struct arch_field *f = a->fields; f->name; f++) {
            if (f->rule != order[r]) continue;
            int rc = 0;
            switch (f->rule) {
            case RULE_COPY: break;
            case RULE_ROPE_BASE: rc = rule_rope_base(mc, f, kwargs, path); break;
            case RULE_ROPE_SCALING: rc = rule_rope_scaling(mc, f, a->name, path); break;
            case RULE_SLIDING_WINDOW: rc = rule_sliding(mc, f, kwargs, path); break;
            case RULE_CONTEXT:
            case RULE_CONTEXT_SLIDING: rc = rule_context(mc, f, kwargs, path); break;
            case RULE_KV_HEADS:
                if (unset(json_object_get(mc, f->name)))
                    json_object_set_new(mc, f->name, json_integer(get_int(mc, "num_attention_heads")));
                break;
            case RULE_HEAD_DIM: rc = rule_head_dim(mc, f, path); break;
            case RULE_PREFILL: rc = rule_prefill(mc, f, a, path); break;
            case RULE_BLOCK_SIZE: rc = rule_block_size(mc, f, kwargs, path); break;
            }
            if (rc) return -1;
        }
    }
    return 0;
}

/* ---- building ---- */

/* The dataclass made from config.json: known fields typed and copied (or
 * defaulted), the rest left in *kwargs. */
static json_t *from_config(const struct model_arch *a, const json_t *config, const char *path, json_t **kwargs)
{
    json_t *mc = json_object();
    *kwargs = json_copy((json_t *)config);
    for (const struct arch_field *f = a->fields; f->name; f++) {
        json_t *v = json_object_get(config, f->name);
        json_object_del(*kwargs, f->name);
        /* null is "not given" except where null is a value of its own */
        if (json_is_null(v) && f->type != ARCH_ROPE_SCALING && f->type != ARCH_INT_PAIR) v = NULL;
        if (!v) {
            if (f->required) {
                fail("%s: missing field '%s' (required for %s)", path, f->name, a->name);
                goto bad;
            }
            json_object_set_new(mc, f->name, default_value(f));
            continue;
        }
        if (!type_ok(f->type, v)) {
            fail("%s: field '%s' must be %s", path, f->name, type_phrase(f->type));
            goto bad;
        }
        json_object_set(mc, f->name, v);
    }
    return mc;
bad:
    json_decref(mc);
    json_decref(*kwargs);
    *kwargs = NULL;
    return NULL;
}

static int apply_overrides(const struct model_arch *a, json_t *mc, const json_t *overrides)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)overrides, key, v) {
        const struct arch_field *f = model_arch_field(a, key);
        if (!f) {
            warning("cannot override %s: %s's model_config has no such field", key, a->name);
            continue;
        }
        if (!type_ok(f->type, v)) return fail("override %s: must be %s", key, type_phrase(f->type));
        json_object_set(mc, key, v);
    }
    return 0;
}

static int check_final(const struct model_arch *a, const json_t *mc, const json_t *config, const char *path)
{
    for (const struct arch_field *f = a->fields; f->name; f++) {
        const json_t *v = json_object_get(mc, f->name);
        if (f->type == ARCH_INT && json_integer_value(v) < f->min)
            return fail("%s: %s is %lld: must be at least %lld", path, f->name,
                        (long long)json_integer_value(v), f->min);
        if (f->type == ARCH_NUMBER && !(json_number_value(v) > 0))
            return fail("%s: field '%s' must be a positive number", path, f->name);
    }
    if (model_arch_field(a, "sliding_window_size") && get_int(mc, "context_window_size") == -1 &&
        get_int(mc, "sliding_window_size") == -1)
        return fail("%s: neither a context window nor a sliding window is set (give --context-window-size)", path);
    long long heads = get_int(mc, "num_attention_heads"), kv = get_int(mc, "num_key_value_heads");
    long long hidden = get_int(mc, "hidden_size"), head_dim = get_int(mc, "head_dim");
    if (heads % kv)
        return fail("%s: num_attention_heads %lld is not divisible by num_key_value_heads %lld", path,
                    heads, kv);
    if (a->head_dim_is_hidden_per_head && head_dim * heads != hidden)
        return fail("%s: hidden_size %lld is not num_attention_heads %lld x head_dim %lld (%s requires it)",
                    path, hidden, heads, head_dim, a->name);
    long long layers = get_int(mc, "num_hidden_layers");
    if (model_arch_field(a, "pipeline_parallel_stages") && get_int(mc, "pipeline_parallel_stages") > layers)
        return fail("%s: pipeline_parallel_stages %lld is more than num_hidden_layers %lld", path,
                    get_int(mc, "pipeline_parallel_stages"), layers);
    long long tp = get_int(mc, "tensor_parallel_shards");
    static const char *const split[] = {"num_attention_heads", "num_key_value_heads", "intermediate_size"};
    for (size_t i = 0; i < 3; i++)
        if (get_int(mc, split[i]) % tp)
            return fail("%s: %s %lld cannot be split evenly into tensor_parallel_shards %lld", path,
                        split[i], get_int(mc, split[i]), tp);
    for (const struct arch_expect *e = a->expect; e && e->key; e++) {
        const json_t *have = json_object_get(config, e->key);
        json_t *want = json_loads(e->value, JSON_DECODE_ANY, NULL);
        bool ok = !have || json_is_null(have) || json_equal(have, want);
        json_decref(want);
        if (!ok)
            return fail("%s: field '%s' must be %s for %s (MLC-LLM's %s model has no other)", path,
                        e->key, e->value, a->name, a->name);
    }
    return 0;
}

json_t *model_arch_build_config(const struct model_arch *a, const json_t *config, const char *config_path,
                                const json_t *overrides)
{
    if (a->dataclass) return model_config_py_build(a->name, config, config_path, overrides);
    json_t *kwargs = NULL;
    json_t *mc = from_config(a, config, config_path, &kwargs);
    if (!mc) return NULL;
    int rc = post_init(a, mc, kwargs, config_path);
    json_decref(kwargs);
    /* MLC rebuilds the dataclass from its own fields after the overrides,
     * so the derivation runs a second time with nothing left in kwargs */
    if (!rc && overrides) {
        json_t *empty = json_object();
        rc = apply_overrides(a, mc, overrides);
        if (!rc) rc = post_init(a, mc, empty, config_path);
        json_decref(empty);
    }
    if (!rc) rc = check_final(a, mc, config, config_path);
    if (rc) {
        json_decref(mc);
        return NULL;
    }
    long long ctx = get_int(mc, "context_window_size");
    const json_t *maxpos = json_object_get(config, "max_position_embeddings");
    const json_t *rs = json_object_get(config, "rope_scaling");
    if (json_is_integer(maxpos) && ctx > json_integer_value(maxpos) && (!rs || json_is_null(rs)))
        warning("context_window_size %lld is larger than %s's max_position_embeddings %lld and the model "
                "has no rope_scaling: positions past %lld are untrained",
                ctx, config_path, (long long)json_integer_value(maxpos), (long long)json_integer_value(maxpos));
    return mc;
}
