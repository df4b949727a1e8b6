/* The CPU executor: runs a lowered module's functions op by op on a kernel
 * set (kernels.h), with the KV cache the module's create_kv_cache
 * describes. Weights stay where the tensor source keeps them (the mapped
 * shards); every buffer a step needs is sized at init, so a prefill or
 * decode step allocates nothing. */
#ifndef MLC_EXECUTOR_H
#define MLC_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/engine/kernels.h"
#include "common/engine/kv_cache.h"
#include "common/engine/weights.h"
#include "formats/module.h"

struct pool;
struct executor_scratch;
struct executor_rope;

struct executor {
    const struct module *m;
    struct bound_weight **bound;   /* per function, per value (params only) */
    float ***vectors;              /* per function, per value: decoded 1-D params */
    float ***norm_weights;         /* per function, per op: (weight_offset + w) of norms that have an
                                      offset (two vectors for head_norm), else NULL */
    struct kv_cache kv;
    struct pool *pool;
    unsigned char *arena;
    int64_t arena_bytes;
    struct executor_rope *ropes;   /* the distinct rotary embeddings of the rope ops */
    int nropes;
    int **rope_of;                 /* per function, per op: its rotary embedding (rope ops) */
    struct executor_step *step;    /* a call being run op by op */
    const struct kernel_set *k;    /* the kernels in use */
    struct executor_scratch *scratch;
    /* An FP8 calibration build measures each layer's activation scale at
     * every call; while observing, the running maximum over every call of
     * every function (what calibration writes) is used and kept here. An
     * inference build's layers keep the same statistic while observing,
     * beside the scale calibration stored (mlc-check compares the two). */
    int n_observed;
    const char **observed_names;   /* the layers' weight parameters */
    float *observed;               /* running maxima; 0: not called yet */
    float *observed_stored;        /* inference builds: the stored scale; 0: a
                                    * calibration build's layer */
    bool observing;
};

/* Bind every parameter of every function to the tensors of `src` (checking
 * dtypes and shapes), create the KV cache (in the model's dtype) and the
 * buffers. `max_sequences` (0: the module's max_batch_size) limits the
 * cache. The kernels are kernels_default()'s. */
int executor_init(struct executor *ex, const struct module *m, const struct tensor_source *src,
                  int threads, int max_sequences);
void executor_free(struct executor *ex);
/* Run on another kernel set from now on (resizes the buffers). */
int executor_use_kernels(struct executor *ex, const struct kernel_set *k);

/* embed: ids (int32 [rows]) → embeddings [rows, H]. */
int executor_embed(struct executor *ex, const int32_t *ids, int64_t rows, float *out);
/* prefill: rows (≤ prefill_chunk_size) embeddings of one sequence, appended
 * to its cache; logits of the last one → out [vocab]. */
int executor_prefill(struct executor *ex, int seq, const float *x, int64_t rows, float *logits);
/* decode: one embedding per sequence (distinct sequences), appended;
 * logits → out [rows, vocab]. */
int executor_decode(struct executor *ex, const int *seqs, const float *x, int64_t rows, float *logits);

/* Calibration (FP8 calibration builds): start keeping the running maximum
 * of each layer's activation scale from zero, and use it in place of the
 * call's own (as MLC's calibration observer does); or stop. Without it such
 * a build scales each call's activations by that call's statistic. FP8
 * inference builds keep the running maximum too, only to compare it with
 * their stored scales: what they compute does not change. */
void executor_observe(struct executor *ex, bool on);

/* Op by op (for mlc-check --bisect): begin a call of function `fn` on rows
 * of sequences seqs[] (at their lengths; NULL for embed) with its input;
 * run one op at a time; see any value of the function in the arena; end
 * the call (commit: the sequences grow by their rows). */
int executor_step_begin(struct executor *ex, const char *fn, const int *seqs, int64_t rows, const void *input,
                        size_t input_bytes);
int executor_step_op(struct executor *ex, int op);
const void *executor_step_value(const struct executor *ex, int value);
void executor_step_end(struct executor *ex, bool commit);
/* Bytes of weights a decode step of one row reads (every matrix once, the
 * embedding's row and the vectors), without the KV cache. */
int64_t executor_decode_weight_bytes(const struct executor *ex);

#endif
