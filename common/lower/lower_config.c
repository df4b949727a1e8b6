/* The lowering's view of mlc-chat-config.json, and MLC's overrides. */
#include "common/lower/lower.h"
#include "common/buf.h"
#include "common/err.h"
#include "formats/chat_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int rope_scaling_from(const json_t *rs, struct rope_scaling *out, const char *src)
{
    memset(out, 0, sizeof *out);
    if (!rs) return 0;
    const char *type = json_string_value(json_object_get(rs, "rope_type"));
    if (!type) type = json_string_value(json_object_get(rs, "type"));
    if (!type || strcmp(type, "llama3"))
        return fail("%s: model_config.rope_scaling: rope_type '%s' is not supported (only llama3)", src,
                    type ? type : "(none)");
    out->kind = 1;
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
    return rope_scaling_from(c->rope_scaling, &d->rope_scaling, c->source);
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
        else if (!strcmp(item, "sliding_window_size")) d->sliding_window_size = v;
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
