/* Weights as the executor sees them: a parameter value of the plan bound to
 * the stored tensors it names, read one row at a time as float32
 * (dequantizing on the fly with formats/quant.h's reference arithmetic). */
#ifndef MLC_WEIGHTS_H
#define MLC_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"
#include "formats/module.h"
#include "formats/param_map.h"
#include "formats/quant.h"

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
    const char *name;            /* the parameter (MLC name) */
    const struct quant_scheme *scheme; /* the model's scheme */
    bool quantized;              /* stored as q_weight/q_scale..., not as is */
    bool transposed;             /* KN layout: q_weight is [words, N] */
    int64_t rows, cols;          /* logical [N, K]; vectors are [N, 1] */
    int nparts;
    const struct tensor_view *parts[MOD_MAX_PARTS];
    float act_scale;             /* FP8: activation (calibration) scale, 0 if none */
};

/* Bind a parameter value: every tensor it names must exist with the dtype
 * and shape its scheme implies. -1 with an error naming the tensor. */
int weight_bind(struct bound_weight *w, const struct value *v, const char *quantization,
                const struct tensor_source *src);

/* Row n of the logical matrix as float32 (cols values). */
void weight_row(const struct bound_weight *w, int64_t n, float *out);
/* Row n where it already lies in memory as float32 (an unquantized float32
 * weight), or NULL when it has to be converted with weight_row. */
const float *weight_row_in_place(const struct bound_weight *w, int64_t n);
/* A vector parameter as float32 (rows values). */
void weight_vector(const struct bound_weight *w, float *out);
/* FP8 schemes quantize activations too: x → its FP8 value (after dividing by
 * the calibration scale, which is multiplied back in). No-op otherwise. */
void weight_quantize_activation(const struct bound_weight *w, const float *x, int64_t n, float *out);
bool weight_quantizes_activation(const struct bound_weight *w);

#endif
