#include "formats/weight_config.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"

void weight_config_free(struct weight_config *c)
{
    free(c->model_type);
    free(c->quantization);
    memset(c, 0, sizeof *c);
}

static int positive(const json_t *mc, const char *key, int64_t *out, const char *what, bool required)
{
    long long v;
    char where[300];
    snprintf(where, sizeof where, "%s: model_config", what);
    int got = required ? (json_need_int(mc, key, &v, where) == 0 ? 1 : -1) : json_opt_int(mc, key, &v, where);
    if (got < 0) return -1;
    if (got == 0) return 0;
    if (v < 0 || (required && v == 0) || v > ((int64_t)1 << 40))
        return fail("%s: model_config: field '%s': %lld is out of range", what, key, v);
    *out = v;
    return 0;
}

int weight_config_from_json(struct weight_config *c, const json_t *root, const char *what)
{
    memset(c, 0, sizeof *c);
    const char *mt, *q;
    if (!json_is_object(root)) return fail("%s: not a JSON object", what);
    if (json_need_str(root, "model_type", &mt, what) || json_need_str(root, "quantization", &q, what)) return -1;
    const json_t *mc = json_object_get(root, "model_config");
    if (!json_is_object(mc)) return fail("%s: field 'model_config' missing or not an object", what);
    c->model_type = xstrdup(mt);
    c->quantization = xstrdup(q);
    c->tensor_parallel_shards = 1;
    const json_t *outer = mc;
    if (!strcmp(mt, "gemma3") || !strcmp(mt, "gemma3_text")) {
        /* the shapes are the text model's; vocabulary and sharding are outside */
        const json_t *text = json_object_get(mc, "text_config");
        if (!json_is_object(text)) {
            fail("%s: model_config: field 'text_config' missing or not an object", what);
            goto bad;
        }
        bool text_model = true;
        char where[300];
        snprintf(where, sizeof where, "%s: model_config", what);
        if (json_opt_bool(mc, "is_text_model", &text_model, where) < 0) goto bad;
        c->multimodal = !text_model;
        c->tie_word_embeddings = true;
        if (positive(outer, "vocab_size", &c->vocab_size, what, true) ||
            positive(outer, "tensor_parallel_shards", &c->tensor_parallel_shards, what, false))
            goto bad;
        mc = text;
    }
    if (positive(mc, "hidden_size", &c->hidden_size, what, true) ||
        positive(mc, "intermediate_size", &c->intermediate_size, what, true) ||
        positive(mc, "num_attention_heads", &c->num_attention_heads, what, true) ||
        positive(mc, "num_hidden_layers", &c->num_hidden_layers, what, true) ||
        (mc == outer && positive(mc, "vocab_size", &c->vocab_size, what, true)) ||
        positive(mc, "num_key_value_heads", &c->num_key_value_heads, what, false) ||
        positive(mc, "head_dim", &c->head_dim, what, false) ||
        (mc == outer && positive(mc, "tensor_parallel_shards", &c->tensor_parallel_shards, what, false)))
        goto bad;
    char where[300];
    snprintf(where, sizeof where, "%s: model_config", what);
    /* Gemma ties its embedding and lm_head always */
    if (!strncmp(mt, "gemma", 5)) c->tie_word_embeddings = true;
    else if (json_opt_bool(mc, "tie_word_embeddings", &c->tie_word_embeddings, where) < 0 ||
             json_opt_bool(mc, "attention_bias", &c->attention_bias, where) < 0)
        goto bad;
    if (!c->num_key_value_heads) c->num_key_value_heads = c->num_attention_heads;
    if (!c->head_dim) {
        if (c->hidden_size % c->num_attention_heads) {
            fail("%s: model_config: hidden_size %lld is not a multiple of num_attention_heads %lld", what,
                 (long long)c->hidden_size, (long long)c->num_attention_heads);
            goto bad;
        }
        c->head_dim = c->hidden_size / c->num_attention_heads;
    }
    if (!c->tensor_parallel_shards) c->tensor_parallel_shards = 1;
    return 0;
bad:
    weight_config_free(c);
    return -1;
}

int weight_config_load(struct weight_config *c, const char *path)
{
    json_t *root = json_load_path(path);
    if (!root) return -1;
    int rc = weight_config_from_json(c, root, path);
    json_decref(root);
    return rc;
}
