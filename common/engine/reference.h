/* The reference engine's weights: a HuggingFace model's own tensors, in
 * float32 under MLC's parameter names (q/k/v and gate/up concatenated as
 * MLC's loaders do), with no quantization and no storage rounding. */
#ifndef MLC_REFERENCE_H
#define MLC_REFERENCE_H

#include "common/engine/engine.h"

struct reference_weights;

/* Read every parameter of the config's architecture from hf_dir. */
struct reference_weights *reference_weights_load(const char *hf_dir, const struct chat_config *cfg);
void reference_weights_free(struct reference_weights *r);
struct tensor_source reference_weights_source(struct reference_weights *r);
/* The tensor list, for lowering. */
const struct tensor_info *reference_weights_tensors(const struct reference_weights *r, int *n);

/* The reference engine: the unquantized HuggingFace weights of hf_dir
 * (float32, under MLC's names) run through the same float32 path, lowered
 * in-process as q0f32 for the config's architecture and sizes, or, given
 * `sizes` (the compared library's dims), for the same context window,
 * windows, prefill chunk and batch as that library was built with. */
int engine_open_reference(struct engine *e, const char *hf_dir, const char *config_path,
                          const struct model_dims *sizes, int threads, enum engine_mode mode);

#endif
