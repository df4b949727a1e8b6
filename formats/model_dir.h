/* A model directory on disk, checked before any stage trusts it.
 *
 *   struct model_dir d;
 *   if (model_dir_open("models/x", "models/x", NULL, &d) != 0) die_last();
 *   ... d.kind, d.format, d.files (sorted by name) ...
 *   model_dir_free(&d);
 *
 * model_dir_open() lists the directory, picks the files the pipeline needs
 * (model_layout.h; hidden names such as .git are never considered), and
 * checks them without reading the bulk of the weights: the configuration is
 * parseable JSON, no file is a Git LFS pointer, the weight files exist, are
 * non-empty and agree with their index (safetensors headers against the
 * file sizes and the index's weight_map and total_size; MLC shard sizes
 * against tensor-cache.json). model_dir_hash() then reads every file once
 * for its sha256, checking MLC shards against their md5sum on the way. */
#ifndef MLC_MODEL_DIR_H
#define MLC_MODEL_DIR_H

#include <stdbool.h>
#include <stdint.h>

#include "common/hash.h"
#include "formats/model_layout.h"

struct model_file {
    char *name;                  /* relative to the directory */
    uint64_t size;
    char sha256[HASH_HEX_MAX];   /* lowercase hex; "" until known */
};

struct model_dir {
    char *path;                  /* absolute */
    char *display;               /* how messages name it */
    enum model_kind kind;
    enum weight_format format;
    char *config;                /* "config.json" or "mlc-chat-config.json"; NULL for GGUF */
    char *index;                 /* the weight index, or NULL for one weight file */
    struct model_file *files;    /* the selected files, sorted by name */
    size_t nfiles;
    struct indexed_file *weights;/* the weight files, with MLC's nbytes/md5 */
    size_t nweights;
};

/* `display` names the directory in messages (the path as the user gave it,
 * or the source a download came from); rules may be NULL. */
int model_dir_open(const char *path, const char *display, const struct file_rules *rules,
                   struct model_dir *out);

/* sha256 of every file, `threads` files at a time, with a progress meter
 * labelled `label` (NULL for none). */
int model_dir_hash(struct model_dir *d, int threads, const char *label);

const struct model_file *model_dir_find(const struct model_dir *d, const char *name);
void model_dir_free(struct model_dir *d);

/* The regular files below dir (symbolic links to files followed, hidden
 * names and links to directories skipped), as sorted relative names with
 * their sizes. A broken link is listed with size UINT64_MAX. */
int dir_list_files(const char *dir, const char *display, char ***names, uint64_t **sizes,
                   size_t *n);
void dir_list_free(char **names, uint64_t *sizes, size_t n);

#endif
