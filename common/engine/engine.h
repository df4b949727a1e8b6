/* The inference engine: mlc-chat-config.json + tensor cache + model
 * library, checked against each other at load the way MLC-LLM's runtime
 * checks them (and a little more), then run on the CPU executor or, for a
 * library with Vulkan kernels, on a Vulkan device (vk_exec.h).
 *
 * Load errors say which artifact is at fault: a parameter the library needs
 * that the weights lack (or hold with another shape or dtype), a shard whose
 * length or md5 is wrong, a library built for another model or scheme. */
#ifndef MLC_ENGINE_H
#define MLC_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/engine/executor.h"
#include "common/engine/vk_exec.h"
#include "formats/chat_config.h"
#include "formats/library.h"
#include "formats/tensor_cache.h"

enum engine_mode { MODE_INTERACTIVE, MODE_LOCAL, MODE_SERVER };

struct engine_options {
    const char *config_path;     /* mlc-chat-config.json */
    const char *weights;         /* tensor-cache.json or its directory */
    const char *library;         /* NAME-TARGET.tar */
    bool verify_md5;
    int threads;                 /* 0: every core */
    enum engine_mode mode;
    const char *device;          /* "cpu", "vulkan", "vulkan:N"; NULL: the library's target */
    bool profile;                /* Vulkan: time every launch (vk_exec_print_profile) */
    bool cpu_too;                /* Vulkan: open the CPU executor as well (bisection) */
    const char *kernels;         /* kernel set by name (kernels.h); NULL: the default */
};

/* What the engine has done, for speed figures. */
struct engine_stats {
    double load_seconds;         /* engine_open, start to end */
    int64_t prefill_tokens, decode_tokens, decode_steps;
    double prefill_seconds, decode_seconds;
};

struct engine {
    struct chat_config cfg;
    struct module *module;       /* the plan: the library's, or built in-process */
    void *own_tensors;           /* tensors another opener (reference.h) loaded, */
    void (*free_own_tensors)(void *); /* freed by engine_close with this */
    struct tensor_cache tc;
    struct library lib;
    struct executor ex;
    struct tensor_view *views;   /* per tensor-cache record, filled on first use */
    int max_sequences;
    int64_t vocab_size, hidden_size, prefill_chunk;
    struct vk_exec *vk;          /* the Vulkan executor, when the engine runs there */
    float *x;                    /* embeddings of a prefill chunk or a decode batch */
    struct engine_stats stats;
};

const char *engine_mode_name(enum engine_mode m);
int engine_mode_from_name(const char *name);

/* On failure *stage (if given) names the artifact at fault: "config",
 * "library", "library/config mismatch", "weights" (a damaged tensor cache),
 * "library/weights mismatch" or "device" (the Vulkan device could not run
 * it). */
int engine_open(struct engine *e, const struct engine_options *o, const char **stage);
void engine_close(struct engine *e);

/* For other ways of opening an engine (reference.h): how many sequences a
 * mode runs at once, and the sizes and buffers taken from e->module (after
 * executor_init). */
int engine_sequences_for(const struct engine *e, enum engine_mode mode);
void engine_set_sizes(struct engine *e);

/* A new sequence (empty KV cache), or -1 when all slots are taken. */
int engine_new_sequence(struct engine *e);
void engine_free_sequence(struct engine *e, int seq);
int64_t engine_sequence_length(const struct engine *e, int seq);
/* Has the sequence filled its context window (never, with a sliding window)? */
bool engine_sequence_full(const struct engine *e, int seq);

/* "cpu", "vulkan" or "vulkan:N" → -2 (the CPU), -1 (the best Vulkan
 * device) or N; -3 when the text names no device. */
int engine_device_index(const char *device);

/* Append n tokens to a sequence (prefill in chunks of the library's
 * prefill_chunk_size); logits of the last one into `logits` [vocab]. */
int engine_prefill(struct engine *e, int seq, const int32_t *ids, int64_t n, float *logits);
/* One token for each of n distinct sequences; logits [n, vocab]. Allocates
 * nothing. */
int engine_decode(struct engine *e, const int *seqs, const int32_t *ids, int64_t n, float *logits);

/* The speed line of a summary: load time, prefill and decode tokens/s. */
void engine_format_speed(const struct engine *e, char *out, size_t n);

#endif
