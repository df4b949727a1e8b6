/* mlc-check --serve: a small OpenAI-compatible HTTP server on a compiled
 * model, built on libmicrohttpd (one thread per connection).
 *
 *   GET  /v1/models              the one model served
 *   POST /v1/chat/completions    {"messages": [...], "stream": bool,
 *                                 "max_tokens" (or "max_completion_tokens"),
 *                                 "temperature", "top_p", "seed"}
 *
 * Answers are rendered with the model's conversation template; with
 * "stream": true they come as server-sent events (chat.completion.chunk
 * objects, then "data: [DONE]"). Requests share the engine, one engine call
 * at a time, so concurrent answers advance token by token together. A body
 * larger than max_body gets 413, malformed JSON or fields 400 (an OpenAI
 * error object), a full engine 503. */
#ifndef MLC_SERVE_H
#define MLC_SERVE_H

#include <stddef.h>
#include <stdint.h>

#include "common/engine/engine.h"
#include "common/engine/sampler.h"
#include "formats/tokenizer/tokenizer.h"

struct serve_options {
    const char *host;            /* an IPv4 or IPv6 address; default 127.0.0.1 */
    int port;                    /* 0: any free port (the one chosen is reported) */
    const char *model_name;      /* the id shown in /v1/models and answers */
    struct sampler_params sampling; /* defaults a request may override */
    uint64_t seed;
    size_t max_tokens;           /* default and ceiling of a request's max_tokens */
    size_t max_body;             /* bytes of a request body */
};

/* Serve until SIGINT or SIGTERM; returns the signal that stopped it, or
 * -1 with last_error() when the server cannot start. `ready` (if given) is
 * called with the bound port once requests are accepted. */
int serve_run(struct engine *e, struct tokenizer *t, const struct serve_options *o, void (*ready)(int port));

#endif
