/* Weight conversion: HuggingFace weights → MLC's tensor cache under a
 * quantization scheme, as MLC-LLM's convert_weight does it.
 *
 * The whole output is planned from shapes first (names, loader order, shard
 * placement), then parameters are converted one at a time, each spread over
 * the thread pool by rows; finished shards are hashed (several at once:
 * MD5 is sequential within a shard) and written by writer threads while
 * conversion goes on. Source tensors are read
 * one parameter at a time (mmap pages handed back after use), so memory stays
 * bounded by the largest parameter plus the open shards, not by model size.
 * Everything goes to a temporary directory inside the output directory and
 * is renamed into place only when complete.
 *
 * The one exception is the inference build of a calibrated FP8 model
 * (e4m3_e4m3_f16): when the output directory already holds the cache its
 * calibration completed (every tensor of the plan, every activation scale
 * measured), that cache is kept and described, not written again. */
#ifndef MLC_WEIGHT_CONVERT_H
#define MLC_WEIGHT_CONVERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/hf_source.h"
#include "formats/param_map.h"
#include "formats/quant.h"
#include "formats/tensor_cache.h"
#include "formats/weight_config.h"

struct convert_options {
    const char *model_path;            /* model directory, index .json or weight file */
    enum hf_format format;             /* HF_AUTO: safetensors when both exist */
    const struct weight_config *config;
    const char *scheme;                /* scheme name; NULL: config->quantization */
    const char *out_dir;
    int threads;                       /* 0: cpu_count() */
};

/* One tensor written, for the `tensor` records. */
struct converted_tensor {
    size_t plan_index;                 /* into result.plan.tensors */
    size_t param;                      /* into result.map.params */
    enum pm_out_kind kind;
};

struct convert_result {
    const struct quant_scheme *scheme;
    enum hf_format format;
    struct param_map map;
    struct tc_plan plan;               /* shards, offsets, md5s */
    struct converted_tensor *tensors;  /* in writing (loader) order */
    size_t ntensors;
    uint64_t total_source_params;      /* BitsPerParam's denominator */
    uint64_t source_bytes;             /* bytes of source tensors read */
    char *json_path;
    size_t nshards;                    /* shards of the cache described */
    bool b16_written;
    bool uncalibrated;                 /* FP8 activation scales are placeholders */
    bool reused;                       /* a calibrated cache in out_dir was kept as it is */
    size_t unused_sources;             /* source tensors no parameter uses */
};

int weight_convert(const struct convert_options *o, struct convert_result *r);
void convert_result_free(struct convert_result *r);

#endif
