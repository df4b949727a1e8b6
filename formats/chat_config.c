/* Reading mlc-chat-config.json (see chat_config.h). */
#include "formats/chat_config.h"

#include <math.h>
#include <msgpack.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/mpjson.h"
#include "common/stream.h"
#include "formats/model_arch.h"

static const char *const quantizations[] = {
    "q0f16", "q0bf16", "q0f32", "q3f16_0", "q3f16_1", "q4f16_0", "q4f16_1", "q4bf16_0", "q4bf16_1",
    "q4f32_1", "q4f16_2", "q4f16_autoawq", "q4f16_ft", "e5m2_e5m2_f16", "e4m3_e4m3_f16",
    "e4m3_e4m3_f16_max_calibrate", "fp8_e4m3fn_bf16_block_scale",
    "fp8_e4m3fn_bf16_block_scale_static_activation", NULL,
};

bool mlc_quantization_known(const char *name)
{
    for (size_t i = 0; quantizations[i]; i++)
        if (name && !strcmp(name, quantizations[i])) return true;
    return false;
}

const char *mlc_quantization_names(void)
{
    static char names[512];
    if (!names[0]) {
        size_t off = 0;
        for (size_t i = 0; quantizations[i]; i++)
            off += (size_t)snprintf(names + off, sizeof names - off, "%s%s", i ? ", " : "", quantizations[i]);
    }
    return names;
}

void chat_config_free(struct chat_config *c)
{
    json_decref(c->json);
    free(c->source);
    free(c->dir);
    free(c->eos_token_ids);
    free(c->tokenizer_files);
    conv_template_free(c->conv_template);
    memset(c, 0, sizeof *c);
}

/* An integer field of obj that must be at least min. where: "model_config."
 * or "" for messages. */
static int get_int(const json_t *obj, const char *where, const char *key, bool required, int64_t def,
                   int64_t min, int64_t *out, const char *src)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return fail("%s: missing field '%s%s'", src, where, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v)) return fail("%s: field '%s%s' must be an integer", src, where, key);
    if (json_integer_value(v) < min)
        return fail("%s: field '%s%s' is %lld: must be at least %lld", src, where, key,
                    (long long)json_integer_value(v), (long long)min);
    *out = json_integer_value(v);
    return 0;
}

static int get_number(const json_t *obj, const char *where, const char *key, bool required, double def,
                      double *out, const char *src)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return fail("%s: missing field '%s%s'", src, where, key);
        *out = def;
        return 0;
    }
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return fail("%s: field '%s%s' must be a number", src, where, key);
    *out = json_number_value(v);
    return 0;
}

static int get_bool(const json_t *obj, const char *key, bool def, bool *out, const char *src)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) return fail("%s: field '%s' must be true or false", src, key);
    *out = json_is_true(v);
    return 0;
}

static int get_string(const json_t *obj, const char *key, const char **out, const char *src)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) return fail("%s: %s field '%s'", src, v ? "wrongly typed (not a string)" : "missing", key);
    *out = json_string_value(v);
    return 0;
}

static int read_model_config(struct chat_config *c, const char *src)
{
    const json_t *mc = c->model_config;
    const struct model_arch *a = model_arch_find(c->model_type);
    if (!a) return fail("%s: model_type '%s' is not supported (supported: %s)", src, c->model_type, model_arch_names());
    const char *mcw = "model_config.";
    if (get_int(mc, mcw, "hidden_size", true, 0, 1, &c->hidden_size, src) ||
        get_int(mc, mcw, "intermediate_size", true, 0, 1, &c->intermediate_size, src) ||
        get_int(mc, mcw, "num_attention_heads", true, 0, 1, &c->num_attention_heads, src) ||
        get_int(mc, mcw, "num_key_value_heads", true, 0, 1, &c->num_key_value_heads, src) ||
        get_int(mc, mcw, "head_dim", true, 0, 1, &c->head_dim, src) ||
        get_int(mc, mcw, "num_hidden_layers", true, 0, 1, &c->num_hidden_layers, src) ||
        get_int(mc, mcw, "vocab_size", true, 0, 1, &c->vocab_size, src) ||
        get_number(mc, mcw, "rms_norm_eps", true, 0, &c->rms_norm_eps, src) ||
        get_int(mc, mcw, "max_batch_size", false, 1, 1, &c->max_batch_size, src) ||
        get_bool(mc, "tie_word_embeddings", false, &c->tie_word_embeddings, src))
        return -1;
    const char *base = json_object_get(mc, "position_embedding_base") ? "position_embedding_base" : "rope_theta";
    if (get_number(mc, mcw, base, true, 0, &c->position_embedding_base, src)) return -1;
    const json_t *rs = json_object_get(mc, "rope_scaling");
    if (rs && !json_is_null(rs) && !json_is_object(rs))
        return fail("%s: field 'model_config.rope_scaling' must be an object or null", src);
    c->rope_scaling = json_is_object(rs) ? rs : NULL;
    if (c->num_attention_heads % c->num_key_value_heads)
        return fail("%s: model_config: num_attention_heads %lld is not divisible by num_key_value_heads %lld",
                    src, (long long)c->num_attention_heads, (long long)c->num_key_value_heads);
    if (a->has_lm_head_always) c->tie_word_embeddings = false;
    c->qk_norm = a->qk_norm;
    c->qkv_bias = a->qkv_bias == QKV_BIAS_ALWAYS;
    if (a->qkv_bias == QKV_BIAS_FROM_ATTENTION_BIAS && get_bool(mc, "attention_bias", false, &c->qkv_bias, src))
        return -1;
    return 0;
}

static int read_eos(struct chat_config *c, const char *src)
{
    const json_t *v = json_object_get(c->json, "eos_token_id");
    if (!v || json_is_null(v)) {
        c->eos_token_ids = xcalloc(1, sizeof *c->eos_token_ids);
        c->eos_token_ids[c->n_eos_token_ids++] = 2;
        return 0;
    }
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    c->eos_token_ids = xcalloc(n + 1, sizeof *c->eos_token_ids);
    for (size_t i = 0; i < n; i++) {
        const json_t *id = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_integer(id) || json_integer_value(id) < 0)
            return fail("%s: field 'eos_token_id' must be a token id or a list of them", src);
        c->eos_token_ids[c->n_eos_token_ids++] = json_integer_value(id);
    }
    return 0;
}

static int read_tokenizer(struct chat_config *c, const char *src)
{
    const json_t *files = json_object_get(c->json, "tokenizer_files");
    if (files && !json_is_array(files)) return fail("%s: field 'tokenizer_files' must be a list of names", src);
    c->tokenizer_files = xcalloc(json_array_size(files) + 1, sizeof *c->tokenizer_files);
    for (size_t i = 0; i < json_array_size(files); i++) {
        const char *name = json_string_value(json_array_get(files, i));
        /* the names are joined to the config's directory: keep them inside it */
        if (!name || !path_is_safe_relative(name))
            return fail("%s: tokenizer_files[%zu] must be a file name inside the directory", src, i);
        c->tokenizer_files[c->n_tokenizer_files++] = name;
    }
    const json_t *info = json_object_get(c->json, "tokenizer_info");
    tokenizer_info_detect(NULL, &c->tokenizer_info);
    if (info && !json_is_object(info)) return fail("%s: field 'tokenizer_info' must be an object", src);
    const json_t *method = json_object_get(info, "token_postproc_method");
    if (method) {
        if (!json_is_string(method) || (strcmp(json_string_value(method), "byte_fallback") &&
                                        strcmp(json_string_value(method), "byte_level")))
            return fail("%s: field 'tokenizer_info.token_postproc_method' must be \"byte_fallback\" or "
                        "\"byte_level\"", src);
        c->tokenizer_info.token_postproc_method = json_string_value(method);
    }
    return get_bool(info, "prepend_space_in_encode", false, &c->tokenizer_info.prepend_space_in_encode, src) ||
           get_bool(info, "strip_space_in_decode", false, &c->tokenizer_info.strip_space_in_decode, src);
}

static int read_conv_template(struct chat_config *c, const char *src)
{
    const json_t *v = json_object_get(c->json, "conv_template");
    if (json_is_string(v)) {
        /* MLC writes the bare name of a template it does not know */
        c->conv_template = conv_template_builtin(json_string_value(v));
        return c->conv_template ? 0 : fail_prefix("%s: conv_template", src);
    }
    if (!json_is_object(v)) return fail("%s: %s field 'conv_template'", src, v ? "wrongly typed" : "missing");
    char *what = xasprintf("%s: conv_template", src);
    c->conv_template = conv_template_from_json(v, what);
    free(what);
    return c->conv_template ? 0 : -1;
}

int chat_config_from_json(json_t *doc, const char *source, const char *dir, struct chat_config *c)
{
    memset(c, 0, sizeof *c);
    c->json = doc;
    c->source = xstrdup(source);
    c->dir = xstrdup(dir ? dir : ".");
    const char *src = c->source;
    int rc = -1;
    if (!json_is_object(doc)) {
        fail("%s: not a JSON object", src);
        goto out;
    }
    c->model_config = json_object_get(doc, "model_config");
    if (!json_is_object(c->model_config)) {
        fail("%s: %s field 'model_config'", src, c->model_config ? "wrongly typed (not an object)" : "missing");
        goto out;
    }
    if (get_string(doc, "model_type", &c->model_type, src) || get_string(doc, "quantization", &c->quantization, src))
        goto out;
    if (!mlc_quantization_known(c->quantization)) {
        fail("%s: unknown quantization '%s' (known: %s)", src, c->quantization, mlc_quantization_names());
        goto out;
    }
    if (read_model_config(c, src)) goto out;
    if (get_int(doc, "", "context_window_size", true, 0, -1, &c->context_window_size, src) ||
        get_int(doc, "", "sliding_window_size", false, -1, -1, &c->sliding_window_size, src) ||
        get_int(doc, "", "prefill_chunk_size", true, 0, 1, &c->prefill_chunk_size, src) ||
        get_int(doc, "", "attention_sink_size", false, -1, -1, &c->attention_sink_size, src) ||
        get_int(doc, "", "tensor_parallel_shards", false, 1, 1, &c->tensor_parallel_shards, src) ||
        get_int(doc, "", "pipeline_parallel_stages", false, 1, 1, &c->pipeline_parallel_stages, src) ||
        get_int(doc, "", "active_vocab_size", false, c->vocab_size, 1, &c->active_vocab_size, src) ||
        get_number(doc, "", "temperature", false, 1.0, &c->temperature, src) ||
        get_number(doc, "", "top_p", false, 1.0, &c->top_p, src) ||
        get_number(doc, "", "presence_penalty", false, 0.0, &c->presence_penalty, src) ||
        get_number(doc, "", "frequency_penalty", false, 0.0, &c->frequency_penalty, src) ||
        get_number(doc, "", "repetition_penalty", false, 1.0, &c->repetition_penalty, src) ||
        get_int(doc, "", "pad_token_id", false, 0, INT64_MIN, &c->pad_token_id, src) ||
        get_int(doc, "", "bos_token_id", false, 1, INT64_MIN, &c->bos_token_id, src) || read_eos(c, src) ||
        read_tokenizer(c, src) || read_conv_template(c, src))
        goto out;
    if (c->context_window_size == -1 && c->sliding_window_size == -1) {
        fail("%s: context_window_size and sliding_window_size are both -1", src);
        goto out;
    }
    rc = 0;
out:
    if (rc) {
        c->json = NULL; /* the caller's reference is released below, once */
        chat_config_free(c);
        json_decref(doc);
    }
    return rc;
}

int chat_config_load(const char *path, struct chat_config *out)
{
    json_t *doc = json_load_path(path);
    if (!doc) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    char *dir = path_dirname(path);
    int rc = chat_config_from_json(doc, path, dir, out);
    free(dir);
    return rc;
}

int chat_config_from_record(const msgpack_object *map, struct chat_config *out)
{
    memset(out, 0, sizeof *out);
    const msgpack_object *cfg = map_field(map, "config");
    if (!cfg || cfg->type != MSGPACK_OBJECT_MAP) return fail("config record: missing field 'config' (a map)");
    /* dir is where the tokenizer files are looked up: a record without it
     * cannot be used, whatever its config says */
    const msgpack_object *p = map_field(map, "path"), *d = map_field(map, "dir");
    if (!p) return fail("config record: missing field 'path'");
    if (!d) return fail("config record: missing field 'dir'");
    char *path = mp_strdup(p), *dir = mp_strdup(d);
    if (!path || !dir) {
        free(path);
        free(dir);
        return fail("config record: field '%s' must be a string", path ? "dir" : "path");
    }
    json_t *doc = mp_to_json(cfg, "config record: field 'config'");
    int rc = -1;
    if (doc) {
        char *source = xasprintf("config record (%s)", path);
        rc = chat_config_from_json(doc, source, dir, out);
        free(source);
    }
    free(path);
    free(dir);
    return rc;
}
