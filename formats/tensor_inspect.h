/* A person's look inside a tensor cache: one tensor's shape, dtype, scheme
 * and summary statistics, dequantized (mlc-dump --tensor). */
#ifndef MLC_TENSOR_INSPECT_H
#define MLC_TENSOR_INSPECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "formats/quant.h"
#include "formats/tensor_cache.h"

/* dir: the tensor cache directory. name: a record name, or a quantized
 * parameter by its MLC name ("x.weight") or either of its parts
 * ("x.q_weight", "x.q_scale"). scheme: NULL to take it from dir's
 * mlc-chat-config.json. Appends a few "key: value" lines to out. */
int tensor_inspect(const char *dir, const char *name, const char *scheme, struct buf *out);

/* Dequantize parameter `base` (stored as base.q_weight, base.q_scale) with
 * scheme s: its logical [rows, cols] matrix goes to fn in row-major order,
 * a row (or a run of values) at a time. k_cfg: the true K from the
 * configuration, or -1 to take it from the scale's shape. */
typedef void (*tensor_values_fn)(const float *v, size_t n, void *ctx);
struct dequant_info {
    int64_t rows, cols;
    bool kn;                                  /* group schemes: KN layout */
    float scale;                              /* per-tensor schemes */
    const struct tc_record *q_weight, *q_scale, *calibration;
};
int tensor_dequantize(struct tensor_cache *tc, const char *base, const struct quant_scheme *s, int64_t k_cfg,
                      struct dequant_info *info, tensor_values_fn fn, void *ctx);

#endif
