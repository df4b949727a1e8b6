/* Weights as the executor sees them: a parameter value of the plan bound to
 * the stored tensors it names, used where they lie (the mapped shards) by
 * the kernels through a kmat, or read one row at a time as float32
 * (dequantizing with formats/quant.h's reference arithmetic). */
#ifndef MLC_WEIGHTS_H
#define MLC_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/engine/kernels.h"
#include "formats/dtype.h"
#include "formats/module.h"
#include "formats/param_map.h"
#include "formats/quant.h"

/* One stored tensor, in memory. A tensor cache stores float32 tensors as
 * bfloat16 ("f32-to-bf16"): such a view has dtype float32 and storage
 * bfloat16, and its data are the stored halves. */
struct tensor_view {
    const char *name;
    enum dtype dtype;
    int ndim;
    int64_t shape[MOD_MAX_DIMS];
    const void *data;
    size_t nbytes;
    enum dtype storage;          /* how data holds the values; 0: as dtype */
};

/* The dtype of a view's bytes, and element i of it as float. */
enum dtype tensor_view_storage(const struct tensor_view *t);
float tensor_view_load(const struct tensor_view *t, size_t i);

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
    bool measures_activation;    /* FP8 calibration build: the activation scale is
                                  * measured at every call (weight_activation_statistic) */
    int observer;                /* then: its running maximum in the executor */
    struct kmat m;               /* the matrix as the kernels read it */
};

/* Bind a parameter value: every tensor it names must exist with the dtype
 * and shape its scheme implies. -1 with an error naming the tensor. */
int weight_bind(struct bound_weight *w, const struct value *v, const char *quantization,
                const struct tensor_source *src);

/* Row n of the logical matrix as float32 (cols values), dequantized with
 * the reference arithmetic. */
void weight_row(const struct bound_weight *w, int64_t n, float *out);
/* A vector parameter as float32 (rows values). */
void weight_vector(const struct bound_weight *w, float *out);
/* FP8 schemes quantize activations too; every kernel set's activations
 * pass through here first (the one place activations meet FP8):
 * - an inference build (a calibration scale c): x → fp8(x / c), the values
 *   left divided (the kernels multiply c back in after the sum);
 * - a calibration build: x → fp8(x / scale) · scale with the scale the
 *   executor measured (fake quantization, as MLC's calibration mode);
 * - FP8 without scales (e5m2): x → fp8(x).
 * No-op otherwise. */
void weight_quantize_activation(const struct bound_weight *w, float scale, const float *x, int64_t n, float *out);
bool weight_quantizes_activation(const struct bound_weight *w);
/* The statistic calibration keeps per call of an FP8 layer, from max |x|:
 * max(f16(f16(maxabs) / fp8_max), f16(1 / (fp8_max · 512))), computed in
 * float16 as MLC's calibration build computes it (NaN stays NaN). */
float weight_activation_statistic(const struct quant_scheme *s, float maxabs);

#endif
