/* Weights as the executor sees them: a parameter value of the plan bound to
 * the stored tensors it names, read one row at a time as float32
 * (dequantizing on the fly). */
#ifndef MLC_WEIGHTS_H
#define MLC_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "formats/module.h"
#include "formats/weight_layout.h"

/* One stored tensor, in memory (float32 tensors already decoded). */
struct tensor_view {
    const char *name;
    enum dtype dtype;
    int ndim;
    int64_t shape[MOD_MAX_DIMS];
    const void *data;
    size_t nbytes;
};

/* Where tensors come from (the tensor cache, or a test's arrays). */
struct tensor_source {
    const struct tensor_view *(*lookup)(void *ctx, const char *name);
    void *ctx;
};

struct bound_weight {
    const char *name;            /* the logical weight (module path) */
    const struct scheme_info *scheme; /* NULL: stored unquantized */
    int64_t rows, cols;          /* logical [N, K]; vectors are [N, 1] */
    bool transposed;             /* KN layout: q_weight is [words, N] */
    int nparts;
    const struct tensor_view *parts[MOD_MAX_PARTS];
};

/* Bind a parameter value: every tensor it names must exist with the dtype
 * and shape its scheme implies. -1 with an error naming the tensor. */
int weight_bind(struct bound_weight *w, const struct value *v, const char *quantization,
                const struct tensor_source *src);

/* Row n of the logical matrix as float32 (cols values). */
void weight_row(const struct bound_weight *w, int64_t n, float *out);
/* A vector parameter as float32 (rows values). */
void weight_vector(const struct bound_weight *w, float *out);

/* Scalar decoding of stored elements. */
float fp8_e4m3_to_f32(uint8_t b);
float fp8_e5m2_to_f32(uint8_t b);

#endif
