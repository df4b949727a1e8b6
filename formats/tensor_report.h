/* What quantization did to each parameter (mlc-dump --tensors DIR
 * [--source HF_DIR]): one line per MLC parameter of a tensor cache with its
 * scheme, logical shape and stored bytes, and, given the HuggingFace source,
 * the RMS and largest absolute error of the dequantized tensor against the
 * source tensor (q, k, v and gate, up stacked as MLC's loaders stack them),
 * and the RMS error relative to the source's RMS. */
#ifndef MLC_TENSOR_REPORT_H
#define MLC_TENSOR_REPORT_H

#include "common/buf.h"

/* source: NULL for the table without errors. Appends the table to out. */
int tensor_report(const char *dir, const char *source, struct buf *out);

#endif
