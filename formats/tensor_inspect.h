/* A person's look inside a tensor cache: one tensor's shape, dtype, scheme
 * and summary statistics, dequantized (mlc-dump --tensor). */
#ifndef MLC_TENSOR_INSPECT_H
#define MLC_TENSOR_INSPECT_H

#include "common/buf.h"

/* dir: the tensor cache directory. name: a record name, or a quantized
 * parameter by its MLC name ("x.weight") or either of its parts
 * ("x.q_weight", "x.q_scale"). scheme: NULL to take it from dir's
 * mlc-chat-config.json. Appends a few "key: value" lines to out. */
int tensor_inspect(const char *dir, const char *name, const char *scheme, struct buf *out);

#endif
