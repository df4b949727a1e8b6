/* A GGUF file seen as a HuggingFace checkpoint: llama.cpp's tensor names
 * and metadata keys mapped back to HuggingFace's names and config.json, and
 * the changes llama.cpp's converter made to the weights undone.
 *
 * llama.cpp's converter (convert_hf_to_gguf.py) renames every tensor
 * (blk.N.attn_q.weight for model.layers.N.self_attn.q_proj.weight), writes
 * the configuration as metadata under the architecture's name
 * (llama.embedding_length for hidden_size), and changes some weights:
 *   - llama-family models: the rows of q_proj and k_proj are permuted,
 *     each head's two rotary halves interleaved (ggml's rotary embedding
 *     rotates adjacent pairs, HuggingFace's rotates the two halves);
 *   - Gemma: every RMSNorm weight is stored as 1 + w (ggml's RMSNorm
 *     multiplies by w, Gemma's by 1 + w);
 *   - Phi-3 LongRoPE: the long and short factors become tensors.
 * Here each is undone, so the tensors handed out are HuggingFace's.
 *
 * Supported architectures (general.architecture -> model_type): llama
 * (also Mistral's GGUFs, which llama.cpp writes as llama), qwen2, qwen3,
 * gemma2, gemma3 (-> gemma3_text) and phi3. */
#ifndef MLC_GGUF_HF_H
#define MLC_GGUF_HF_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "formats/gguf.h"

enum gguf_fix {
    FIX_NONE,
    FIX_UNPERMUTE,       /* undo the rotary row interleaving (heads in .heads) */
    FIX_NORM_MINUS_ONE,  /* Gemma: stored 1 + w, HuggingFace keeps w */
};

struct gguf_hf_tensor {
    char *name;          /* the HuggingFace name */
    size_t index;        /* into the gguf's tensors */
    enum gguf_fix fix;
    int heads;
    int ndim;
    int64_t shape[2];    /* HuggingFace's (row-major) shape */
    uint64_t numel;
    enum dtype dtype;    /* what gguf_hf_tensor_data hands out: f16/bf16 kept, the rest f32 */
};

struct gguf_model {
    struct gguf g;
    char *arch;                   /* general.architecture */
    const char *model_type;       /* HuggingFace's model_type */
    struct gguf_hf_tensor *tensors; /* sorted by HuggingFace name */
    size_t ntensors;
    size_t nquantized;            /* tensors stored block-quantized */
    enum ggml_type quantized_type;/* the most common of them */
};

int gguf_model_open(struct gguf_model *m, const char *path);
/* The same from a parsed gguf (taken over: closed with the model). */
int gguf_model_from(struct gguf_model *m, struct gguf *g);
void gguf_model_close(struct gguf_model *m);
const struct gguf_hf_tensor *gguf_model_find(const struct gguf_model *m, const char *hf_name);

/* config.json as HuggingFace would write it for this model (a new object),
 * or NULL with a message naming the file and the metadata key. */
json_t *gguf_model_hf_config(const struct gguf_model *m);
/* generation_config.json: the sampling settings llama.cpp keeps as
 * general.sampling.* (an empty object when there are none). */
json_t *gguf_model_generation_config(const struct gguf_model *m);

/* The tokenizer files HuggingFace's converters would write for the GGUF's
 * tokenizer.ggml.* vocabulary: tokenizer.json, tokenizer_config.json (with
 * the chat template) and special_tokens_map.json (new objects). In
 * gguf_tokenizer.c. */
int gguf_tokenizer_files(const struct gguf *g, json_t **tokenizer, json_t **config, json_t **special_map);

/* Write config.json and the tokenizer files of the GGUF at path into the
 * directory dir, each atomically: the side files mlc-cfg reads. In
 * gguf_export.c. */
int gguf_export_side_files(const char *path, const char *dir);

/* A tensor's HuggingFace values: *data points into the file when nothing
 * had to change (F32/F16/BF16 stored as is), else into *owned (free it). */
int gguf_model_tensor_data(const struct gguf_model *m, const struct gguf_hf_tensor *t, const void **data,
                           void **owned);

/* Undo llama.cpp's rotary permutation of `rows` rows of `row_bytes` bytes
 * (heads heads of rows / heads rows each): stored row h*d + 2i + j holds
 * HuggingFace's row h*d + j*(d/2) + i. */
void gguf_unpermute_rows(const void *src, void *dst, uint64_t rows, uint64_t row_bytes, int heads);

/* The shortest decimal that reads back as the same float32 ("1e-05" for
 * the float32 nearest 1e-5), as a double: what the number was before
 * llama.cpp stored it as float32. */
double gguf_float32_decimal(double f32_value);

/* The single .gguf file in a directory (a new path), or NULL with a
 * message: none, or several (name one). */
char *gguf_in_dir(const char *dir);

#endif
