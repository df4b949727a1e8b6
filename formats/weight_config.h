/* The few fields of mlc-chat-config.json (mlc-formats.md §4) that weight
 * conversion needs: the architecture, the scheme and the shapes. Read from
 * the file or from the JSON inline in a `config` record. Gemma 3 keeps
 * its shapes in model_config.text_config. */
#ifndef MLC_WEIGHT_CONFIG_H
#define MLC_WEIGHT_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct weight_config {
    char *model_type;             /* "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3",
                                   * "gemma3_text", "phi3" */
    char *quantization;
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_attention_heads;
    int64_t num_key_value_heads;  /* defaults to num_attention_heads */
    int64_t head_dim;             /* defaults to hidden_size / heads */
    int64_t num_hidden_layers;
    int64_t vocab_size;
    int64_t tensor_parallel_shards;
    bool tie_word_embeddings;
    bool attention_bias;          /* qwen3's model_config field */
    bool multimodal;              /* gemma3 from a multimodal checkpoint (is_text_model false):
                                   * its language model's weights are under language_model. */
};

/* what names the source in messages (a path, "config record"). */
int weight_config_from_json(struct weight_config *c, const json_t *root, const char *what);
int weight_config_load(struct weight_config *c, const char *path);
void weight_config_free(struct weight_config *c);

#endif
