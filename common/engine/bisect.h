/* Bisection of a compiled model: the same call run op by op on the Vulkan
 * device and on the CPU reference kernels, every op starting from the CPU's
 * values of its inputs, so that the first op whose output differs is the
 * one at fault ("prefill op 41 (attention), layer 2, tensor L2.attention:
 * rel error 0.3"). Needs an engine opened with both executors
 * (engine_options.cpu_too). */
#ifndef MLC_BISECT_H
#define MLC_BISECT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/engine/engine.h"
#include "formats/tokenizer/tokenizer.h"

struct bisect_report {
    bool differs;
    int ops;                     /* ops compared */
    /* the first op beyond the tolerance (differs), else the worst one */
    const char *function;
    int op;
    const char *op_name;
    int layer;                   /* -1: not in a decoder layer */
    const char *tensor;
    double max_abs, max_rel;
};

/* The prefill of ids (at most one prefill chunk) and one decode step (the
 * CPU's greedy next token), embeddings included, on fresh sequences.
 * -1 on an error (message in last_error()). */
int engine_bisect(struct engine *e, const int32_t *ids, int64_t n, double tolerance, struct bisect_report *r);

/* mlc-check --bisect: the prompt tokenized as generation would, bisected,
 * and one line of verdict on out. 0 if every op agrees, 1 if one differs,
 * -1 on an error. */
int engine_bisect_prompt(struct engine *e, struct tokenizer *t, const char *prompt, bool raw, double tolerance, FILE *out);

#endif
