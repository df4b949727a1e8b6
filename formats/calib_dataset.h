/* The calibration dataset: ShareGPT-style JSON, read and sampled as MLC-LLM's
 * `calibrate` does (mlc-formats.md §8).
 *
 *   [ {"conversations": [{"from": "human", "value": "..."},
 *                        {"from": "gpt",   "value": "..."}, ...]}, ... ]
 *
 * An item with at least two turns gives one request: the first turn is the
 * prompt, the second the completion. Both are tokenized (without special
 * tokens, as MLC's Tokenizer.encode does); a pair is dropped when the
 * prompt or the completion has fewer than 4 tokens, the prompt more than
 * 1024, or both together more than 2048. Then N requests are drawn with
 * Python's random.seed(seed); random.sample(kept, N) (common/pyrandom.h),
 * so a seed always draws the same requests, and the same ones as MLC. */
#ifndef MLC_CALIB_DATASET_H
#define MLC_CALIB_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

struct tokenizer;

#define CALIB_MAX_FILE_BYTES ((size_t)2 << 30)   /* 2 GiB of JSON */
#define CALIB_MIN_TOKENS 4
#define CALIB_MAX_PROMPT_TOKENS 1024
#define CALIB_MAX_TOTAL_TOKENS 2048

struct calib_request {
    char *prompt;
    int64_t prompt_tokens;
    int64_t completion_tokens;   /* the request's max_tokens */
    size_t item;                 /* index of the item in the file */
};

struct calib_dataset {
    char *path;
    char sha256[HASH_HEX_MAX];   /* of the file's bytes */
    size_t items;                /* items in the file */
    size_t kept;                 /* requests that passed the filters */
    struct calib_request *requests; /* the sample, in sampling order */
    size_t n;
};

/* Read, check, filter and sample `count` requests with `seed`. Errors name
 * the file and, for a malformed item, its index and field; fewer kept
 * requests than `count` is an error that says how many there are. */
int calib_dataset_load(const char *path, struct tokenizer *tok, size_t count, uint64_t seed,
                       struct calib_dataset *out);
void calib_dataset_free(struct calib_dataset *d);

#endif
