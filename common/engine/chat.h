/* mlc-check --chat: an interactive conversation with a compiled model on a
 * terminal (or any input): each line is a user message, answered with the
 * conversation template as the answer streams. Commands: /reset starts
 * over, /stats shows the last answer's prefill and decode speeds, /help
 * lists them, /exit (or end of input) ends. */
#ifndef MLC_CHAT_H
#define MLC_CHAT_H

#include <stdint.h>
#include <stdio.h>

#include "common/engine/engine.h"
#include "common/engine/sampler.h"
#include "formats/tokenizer/tokenizer.h"

struct chat_options {
    struct sampler_params sampling;
    uint64_t seed;
    size_t max_tokens;           /* per answer */
    const char *system;          /* a system message, or NULL */
};

/* Read lines from in until /exit or its end; answers and notes go to out.
 * -1 with last_error() on an engine error. */
int chat_run(struct engine *e, struct tokenizer *t, const struct chat_options *o, FILE *in, FILE *out);

#endif
