/* Building the decoder graph of a model (mlc-lower's first step): the entry
 * functions embed, prefill, decode and create_kv_cache, with every parameter
 * bound by name to a tensor of the weights and its stored shape checked. */
#ifndef MLC_LOWER_H
#define MLC_LOWER_H

#include "formats/module.h"

/* One tensor the weights hold (from tensor records or tensor-cache.json). */
struct tensor_info {
    const char *name;
    enum dtype dtype;
    int ndim;
    int64_t shape[MOD_MAX_DIMS];
};

struct lower_spec {
    const char *model_type;          /* llama, mistral, qwen2, qwen3, gemma2, gemma3(_text), phi3 */
    const char *quantization;
    struct model_dims dims;
    const struct tensor_info *tensors;
    int ntensors;
    /* The tensors are HuggingFace's own values (the reference engine), not
     * a tensor cache: Gemma's norms hold w where MLC stores 1 + w. */
    bool hf_weights;
};

/* Architectures mlc-lower can build, space-separated, for messages. */
const char *lower_supported_models(void);

/* Build the unoptimised graph. -1 with last_error() naming the first
 * missing or mis-shaped parameter. */
int lower_build(const struct lower_spec *spec, struct module *m);

/* Fill m->mem from the module (params, KV cache, arena). */
void lower_estimate_memory(struct module *m);

#endif

/* ---- from mlc-chat-config.json ---- */

struct chat_config;

/* The dimensions the graph is built for, from a loaded config. */
int lower_dims_from_config(const struct chat_config *c, struct model_dims *d);
/* MLC's ModelConfigOverride ("context_window_size=1024;max_batch_size=4"):
 * context_window_size, sliding_window_size, prefill_chunk_size,
 * attention_sink_size, max_batch_size, tensor_parallel_shards,
 * pipeline_parallel_stages. Bounds are re-derived afterwards as MLC does
 * (the prefill chunk never exceeds the context window). */
int lower_apply_overrides(struct model_dims *d, const char *overrides);
