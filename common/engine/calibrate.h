/* Calibration of an FP8 model (mlc-check --calibrate), as MLC-LLM's
 * `mlc_llm calibrate` does it (mlc-formats.md §8): a model built with an
 * FP8 `*_max_calibrate` scheme answers a sample of a ShareGPT dataset as
 * chat requests (max_tokens = the completion's length, up to 32 at a time,
 * server mode); every FP8 linear layer keeps the running maximum of its
 * activation scale over all calls (executor_observe); the maxima are
 * written into the tensor cache as `<module>.q_calibration_scale` (float32
 * [1], stored as bfloat16) with TVM's update_if_exists rules, the
 * directory replaced as a whole. The inference build (`e4m3_e4m3_f16`)
 * then reuses that cache. */
#ifndef MLC_CALIBRATE_H
#define MLC_CALIBRATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/engine/engine.h"
#include "common/engine/generate.h"
#include "common/engine/sampler.h"
#include "common/stream.h"
#include "formats/calib_dataset.h"

#define CALIBRATE_MAX_BATCH 32

struct calibrate_options {
    const char *dataset;         /* ShareGPT JSON */
    size_t samples;              /* requests drawn (MLC's default: 16) */
    uint64_t seed;               /* the draw's seed; request i samples with seed + i */
    struct sampler_params sampling;
    const char *weights_dir;     /* the tensor cache directory to update */
};

struct calibration_layer {
    char *name;                  /* MODULE.q_calibration_scale */
    float scale;                 /* the running maximum */
};

struct calibration {
    struct calib_dataset data;
    struct generation *gens;     /* one per request, in sample order */
    int batch;                   /* sequences run at once */
    int64_t prefill_chunk;
    struct calibration_layer *layers;
    size_t nlayers;
    size_t replaced, added;      /* tensors of the cache overwritten, added */
};

/* Whether the engine's model is a calibration build (some FP8 layer
 * measures its activations). */
bool calibrate_applies(const struct engine *e);

/* Sample, run, check that every answer's logits were finite and every
 * scale finite and measured, then update the cache. On error nothing is
 * written; `out` is freed with calibration_free either way. */
int calibrate_run(struct engine *e, struct tokenizer *t, const struct calibrate_options *o, struct calibration *out);
void calibration_free(struct calibration *c);

/* The `calibration` record (mlc-stream(5)). */
void calibrate_write_record(struct stream_writer *w, const struct calibration *c, const struct calibrate_options *o);

#endif
