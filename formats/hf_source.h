/* The weights of a HuggingFace model directory, whatever their format:
 * model.safetensors(.index.json), pytorch_model.bin(.index.json), or a
 * GGUF file seen through HuggingFace's names (gguf_hf.h). Lists
 * the tensors in MLC's loader order (mlc-formats.md §1 "Tensor order") and
 * hands out their bytes one at a time, so a model is never held in memory. */
#ifndef MLC_HF_SOURCE_H
#define MLC_HF_SOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

enum hf_format { HF_AUTO, HF_SAFETENSORS, HF_TORCH, HF_GGUF };

#define HF_MAX_DIMS 8

struct hf_tensor {
    char *name;
    enum dtype dtype;        /* DT_INVALID when not f32/f16/bf16 */
    const char *dtype_label; /* as the file names it, for messages */
    int ndim;
    int64_t shape[HF_MAX_DIMS];
    uint64_t numel;
    size_t file;             /* index into files */
    size_t index;            /* position inside its file's own listing */
};

struct hf_file {
    char *path;
    void *handle;            /* struct st_file or struct tb_file */
    uint64_t numel_all;      /* Σ numel of every tensor the file holds */
    char **names;            /* every tensor the file holds (for counting) */
    uint64_t *numels;
    size_t nnames;
};

struct hf_source {
    enum hf_format format;
    char *dir;
    char *index_path;        /* NULL for a single file */
    struct hf_file *files;   /* in order of first appearance */
    size_t nfiles;
    struct hf_tensor *tensors; /* MLC's torch_to_path order */
    size_t ntensors;
    size_t *by_name;         /* indices sorted by name, for lookups */
    size_t nquantized;       /* GGUF: tensors stored block-quantized (converting them again is lossy) */
    const char *quantized_type; /* GGUF: the most common of their types ("Q4_K") */
};

/* path: a model directory, an index .json, or one weight file (a .gguf
 * among them). format HF_AUTO prefers safetensors when both exist
 * (mlc-quant --source-format); a directory with neither is read as the one
 * .gguf file it holds. */
int hf_source_open(struct hf_source *s, const char *path, enum hf_format format);
void hf_source_close(struct hf_source *s);
const struct hf_tensor *hf_source_find(const struct hf_source *s, const char *name);
const char *hf_format_name(enum hf_format f);

/* The tensor's raw little-endian bytes (numel x dtype size). Release with
 * hf_tensor_release when done. */
struct hf_data {
    const void *data;
    void *owned;
};
int hf_tensor_data(struct hf_source *s, const struct hf_tensor *t, struct hf_data *out);
void hf_tensor_release(struct hf_source *s, const struct hf_tensor *t, struct hf_data *d);

#endif
