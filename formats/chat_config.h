/* mlc-chat-config.json as later stages read it (mlc-formats.md §4).
 *
 * chat_config_load() reads the file mlc-cfg (or MLC-LLM's gen_config) wrote
 * and gives the values the quantizer, the lowering and the engine need as
 * plain C fields, checked for type and range; the JSON document itself stays
 * available for anything else. Errors are one line naming the file (or the
 * record the config came from) and the field. */
#ifndef MLC_CHAT_CONFIG_H
#define MLC_CHAT_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "formats/conv_template.h"
#include "formats/tokenizer/tokenizer_files.h"

struct msgpack_object;

struct chat_config {
    json_t *json;               /* the whole document (owned) */
    const json_t *model_config; /* its "model_config" object */
    const json_t *arch_config;  /* where the architecture's fields are: model_config,
                                 * or its text_config (Gemma 3) */
    char *source;               /* path of the file, or what it came from */
    char *dir;                  /* directory of the file ("." if unknown) */

    const char *model_type;     /* "llama", "mistral", "qwen2", "qwen3", "gemma2", ... */
    const char *quantization;   /* "q4f16_1", ... */

    /* model_config: the architecture */
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_attention_heads;
    int64_t num_key_value_heads;
    int64_t head_dim;
    int64_t num_hidden_layers;
    int64_t vocab_size;
    double rms_norm_eps;
    double position_embedding_base;  /* rope theta (qwen2/qwen3 call it rope_theta) */
    const json_t *rope_scaling;      /* NULL when the model has none */
    bool tie_word_embeddings;        /* lm_head shares the embedding */
    bool qkv_bias;                   /* q/k/v projections carry a bias (qwen2) */
    bool qk_norm;                    /* RMSNorm on q and k per head (qwen3) */

    /* sizes the compiled model is built for (top level of the file) */
    int64_t context_window_size;     /* -1: bounded by the sliding window */
    int64_t sliding_window_size;     /* -1: none */
    int64_t prefill_chunk_size;
    int64_t attention_sink_size;     /* -1: none */
    int64_t max_batch_size;
    int64_t tensor_parallel_shards;
    int64_t pipeline_parallel_stages;
    int64_t active_vocab_size;       /* logits at and past this id are masked */

    /* generation defaults */
    double temperature;
    double top_p;
    double presence_penalty;
    double frequency_penalty;
    double repetition_penalty;
    int64_t pad_token_id;
    int64_t bos_token_id;
    int64_t *eos_token_ids;          /* eos_token_id: one id or a list */
    size_t n_eos_token_ids;

    const char **tokenizer_files;    /* names in the config's directory */
    size_t n_tokenizer_files;
    struct tokenizer_info tokenizer_info;
    struct conv_template *conv_template;
};

/* Read path. */
int chat_config_load(const char *path, struct chat_config *out);
/* Take ownership of doc (a parsed mlc-chat-config.json). `source` names it
 * in messages; `dir` is where its tokenizer files are (may be NULL). */
int chat_config_from_json(json_t *doc, const char *source, const char *dir, struct chat_config *out);
/* From a `config` record (mlc-stream(5)): its inline "config" map, with
 * "path" and "dir" naming where it lives. */
int chat_config_from_record(const struct msgpack_object *record_map, struct chat_config *out);
void chat_config_free(struct chat_config *c);

/* The quantization names MLC-LLM defines (mlc-formats.md §2), in its order. */
bool mlc_quantization_known(const char *name);
const char *mlc_quantization_names(void);

#endif
