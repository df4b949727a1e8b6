/* The `model` record (mlc-stream(5)): which model directory the later
 * stages read. mlc-fetch writes it; mlc-cfg and mlc-quant take the last one
 * of the stream.
 *
 *   type      "model"
 *   source    the source as given (HF://org/name, a URL, a path)
 *   kind      "hf" (raw HuggingFace weights) or "mlc" (pre-converted)
 *   format    "safetensors", "pytorch", "gguf" or "mlc"
 *   revision  as requested ("main" when not pinned), nil for a local directory
 *   commit    the commit the files came from, or nil
 *   path      absolute path of the model directory
 *   files     [{name, size, sha256}] sorted by name */
#ifndef MLC_MODEL_RECORD_H
#define MLC_MODEL_RECORD_H

#include <stdbool.h>

#include "common/stream.h"
#include "formats/model_dir.h"

struct model_info {
    char *source;
    enum model_kind kind;
    bool has_format;             /* false when a hand-written record omits it */
    enum weight_format format;
    char *revision;              /* NULL for nil */
    char *commit;                /* NULL for nil */
    char *path;
    struct model_file *files;
    size_t nfiles;
};

/* Build the record from a checked directory (its path, kind, format and
 * hashed files). revision and commit may be NULL. */
void model_record_build(struct rec_builder *b, const char *source, const struct model_dir *d,
                        const char *revision, const char *commit);

/* Read and check a record: required fields present and typed, path
 * absolute, file names relative, sizes and digests of the right form.
 * Messages name the record and the field. */
int model_record_read(const struct record *r, struct model_info *out);
void model_info_free(struct model_info *m);

/* Where a later stage reads the model of a record: its directory, or for
 * format "gguf" the .gguf file inside it (a new string; NULL with a
 * message when the record does not say). */
char *model_record_source(const struct record *r);

#endif
