/* The CPU executor: runs a lowered module's functions op by op on the
 * reference kernels, with the KV cache the module's create_kv_cache
 * describes. */
#ifndef MLC_EXECUTOR_H
#define MLC_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/engine/kv_cache.h"
#include "common/engine/weights.h"
#include "formats/module.h"

struct pool;

struct executor {
    const struct module *m;
    struct bound_weight **bound;   /* per function, per value (params only) */
    float ***vectors;              /* per function, per value: decoded 1-D params */
    struct kv_cache kv;
    struct pool *pool;
    unsigned char *arena;
    int64_t arena_bytes;
    float *inv_freq;               /* rotary frequencies (head_dim / 2) */
    struct executor_step *step;    /* a call being run op by op */
};

/* Bind every parameter of every function to the tensors of `src` (checking
 * dtypes and shapes), create the KV cache and the arena. `max_sequences`
 * (0: the module's max_batch_size) limits the cache. */
int executor_init(struct executor *ex, const struct module *m, const struct tensor_source *src,
                  int threads, int max_sequences);
void executor_free(struct executor *ex);

/* embed: ids (int32 [rows]) → embeddings [rows, H]. */
int executor_embed(struct executor *ex, const int32_t *ids, int64_t rows, float *out);
/* prefill: rows (≤ prefill_chunk_size) embeddings of one sequence, appended
 * to its cache; logits of the last one → out [vocab]. */
int executor_prefill(struct executor *ex, int seq, const float *x, int64_t rows, float *logits);
/* decode: one embedding per sequence (distinct sequences), appended;
 * logits → out [rows, vocab]. */
int executor_decode(struct executor *ex, const int *seqs, const float *x, int64_t rows, float *logits);

/* Op by op (for mlc-check --bisect): begin a call of function `fn` on rows
 * of sequences seqs[] (at their lengths; NULL for embed) with its input;
 * run one op at a time; see any value of the function in the arena; end
 * the call (commit: the sequences grow by their rows). */
int executor_step_begin(struct executor *ex, const char *fn, const int *seqs, int64_t rows, const void *input,
                        size_t input_bytes);
int executor_step_op(struct executor *ex, int op);
const void *executor_step_value(const struct executor *ex, int value);
void executor_step_end(struct executor *ex, bool commit);

#endif
