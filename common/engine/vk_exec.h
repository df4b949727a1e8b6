/* The Vulkan executor: runs a library's launch plan (formats/launch_plan.h)
 * on a Vulkan device. At open it creates one pipeline per kernel, uploads
 * the weights (mapped device memory, or through a staging buffer), places
 * the activation arenas, the KV cache and the per-call step data in device
 * memory, and builds every launch's descriptor set once; a weight too big
 * for one binding is bound in row slices, its launch repeated per slice.
 * Each prefill or decode step is one command buffer: the embedding, the
 * function's launches with the barriers the plan asks for, and the copy of
 * the logits back to the host.
 *
 * Test switches (environment): MLC_VK_WEIGHT_BINDING_LIMIT=BYTES lowers
 * the limit of weights' bindings (to exercise slicing), MLC_VK_STAGING=1
 * uploads through a
 * staging buffer even to mappable memory, MLC_VK_PERTURB=VALUE overwrites
 * the first floats of that value after the op writing it (to exercise
 * mlc-check --bisect). */
#ifndef MLC_VK_EXEC_H
#define MLC_VK_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/engine/weights.h"
#include "formats/launch_plan.h"
#include "formats/module.h"

struct vk_exec;

struct vk_exec_options {
    int device;                /* index in the loader's order, -1: the best one */
    int max_sequences;         /* 0: the module's max_batch_size */
    bool profile;              /* time every launch (timestamp queries) */
};

int vk_exec_open(struct vk_exec **out, const struct module *m, const struct launch_plan *lp,
                 const struct tensor_source *src, const struct vk_exec_options *o);
void vk_exec_close(struct vk_exec *x);
/* "llvmpipe (LLVM 15.0.6, 256 bits) (vulkan:0)" */
const char *vk_exec_device(const struct vk_exec *x);

int vk_exec_new_sequence(struct vk_exec *x);
void vk_exec_free_sequence(struct vk_exec *x, int seq);
int64_t vk_exec_sequence_length(const struct vk_exec *x, int seq);
/* Has the sequence filled its context window (no sliding window)? */
bool vk_exec_sequence_full(const struct vk_exec *x, int seq);

/* Append n (≤ prefill chunk) tokens to a sequence; logits of the last. */
int vk_exec_prefill(struct vk_exec *x, int seq, const int32_t *ids, int64_t n, float *logits);
/* One token for each of n distinct sequences; logits [n, vocab]. */
int vk_exec_decode(struct vk_exec *x, const int *seqs, const int32_t *ids, int64_t n, float *logits);

/* --profile: per-kernel times and per-function throughput, on f. */
void vk_exec_print_profile(const struct vk_exec *x, FILE *f);

/* ---- op by op (mlc-check --bisect) ----
 * Begin a call of `fn` ("embed", "prefill", "decode") for rows tokens of
 * sequences seqs[] (at their current lengths); run one op's launches at a
 * time (a fused run of ops at once); read or overwrite any value of the
 * function; end the call (commit: the sequences grow by their rows). */
int vk_exec_step_begin(struct vk_exec *x, const char *fn, const int *seqs, int64_t rows);
int vk_exec_step_op(struct vk_exec *x, int op);
/* How many ops the launches starting at op carry out (2 for a fused pair:
 * run them together; 1 when op has launches of its own or none). */
int vk_exec_op_span(const struct vk_exec *x, int op);
int vk_exec_step_read(struct vk_exec *x, int value, void *out, size_t bytes);
int vk_exec_step_write(struct vk_exec *x, int value, const void *data, size_t bytes);
void vk_exec_step_end(struct vk_exec *x, bool commit);

#endif
