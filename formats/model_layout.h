/* What a model repository holds, judged by its file names: the two layouts
 * mlc-pipe reads (a raw HuggingFace checkpoint, a pre-converted MLC
 * repository), which of its files the pipeline needs, and which weight files
 * an index names.
 *
 * These are pure functions over names and index contents, shared by the hub
 * downloader (which has only the hub's listing) and the checks of a local
 * directory (which has the files). Selection happens in two steps because
 * the weights of a sharded model are known only from its index:
 *
 *   layout_plan()         names → layout, and the files to get first
 *                         (configuration, tokenizer, the index, --include
 *                         matches, a single weight file);
 *   layout_add_indexed()  the parsed index → the weight files it names. */
#ifndef MLC_MODEL_LAYOUT_H
#define MLC_MODEL_LAYOUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum model_kind { MODEL_HF, MODEL_MLC };
enum weight_format { WEIGHTS_SAFETENSORS, WEIGHTS_PYTORCH, WEIGHTS_MLC, WEIGHTS_GGUF };

const char *model_kind_name(enum model_kind k);        /* "hf", "mlc" */
int model_kind_from_name(const char *s, enum model_kind *out);
const char *weight_format_name(enum weight_format f);  /* "safetensors", "pytorch", "mlc", "gguf" */
int weight_format_from_name(const char *s, enum weight_format *out);

/* --include / --exclude: fnmatch(3) patterns matched against the whole
 * relative name, '*' crossing '/' as in huggingface_hub's allow_patterns. */
struct file_rules {
    const char *const *include;
    size_t ninclude;
    const char *const *exclude;
    size_t nexclude;
};

bool rules_excluded(const struct file_rules *r, const char *name);

/* True when a relative name has a component starting with '.' (.git/...,
 * .gitattributes): such files are never selected. */
bool name_is_hidden(const char *name);

struct layout {
    enum model_kind kind;
    enum weight_format format;
    const char *config;   /* "config.json" or "mlc-chat-config.json"; NULL for GGUF */
    const char *index;    /* file naming the weights, or NULL (one weight file) */
    char *gguf;           /* WEIGHTS_GGUF: the one .gguf file (config and tokenizer are inside) */
    char **files;         /* selected so far: sorted, unique, excludes applied */
    size_t nfiles;
};

/* Step 1. `names` need not be sorted; `where` names the repository in
 * messages. Fails when the names fit neither layout. */
int layout_plan(const char *const *names, size_t n, const struct file_rules *rules,
                const char *where, struct layout *out);

/* A weight file as an index names it. nbytes and md5 come from an MLC
 * tensor cache (-1 and "" when the index does not say). */
struct indexed_file {
    char *name;
    int64_t nbytes;
    char md5[33];
};

/* The weight files of a parsed index, sorted by name. Every name must be a
 * safe relative path; an MLC tensor cache's records are checked too (sizes,
 * md5 form, every tensor inside its shard). `file` names the index in
 * messages. */
int index_weight_files(const json_t *index, enum weight_format format, const char *file,
                       struct indexed_file **out, size_t *n);
void indexed_files_free(struct indexed_file *f, size_t n);

/* Step 2: add the weight files the index names (each must be among
 * `names`), then apply the excludes again. */
int layout_add_indexed(struct layout *l, const struct indexed_file *w, size_t nw,
                       const char *const *names, size_t n, const struct file_rules *rules,
                       const char *where);

bool layout_has(const struct layout *l, const char *name);
void layout_free(struct layout *l);

/* Git LFS pointer files: the small text file a clone without git-lfs holds
 * in place of the real content. */
#define LFS_POINTER_MAX 1024
bool is_lfs_pointer(const void *head, size_t len);
/* 1 if the file at path is an LFS pointer, 0 if not, -1 on a read error. */
int file_is_lfs_pointer(const char *path);
extern const char lfs_pointer_fix[];

#endif
