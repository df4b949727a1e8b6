/* A conversation on one engine sequence, for the interactive chat and the
 * HTTP server: the messages so far rendered with the conversation template,
 * only the tokens the KV cache lacks prefilled, and the answer produced one
 * piece at a time (so a caller can stream it: print it, or send it as a
 * server-sent event). Prefill and decode are timed here, through the
 * engine's public calls, for /stats and the server's usage figures.
 *
 * Engines are not thread-safe: when several conversations share one (the
 * server), each engine call is made under `lock`. */
#ifndef MLC_CONVERSATION_H
#define MLC_CONVERSATION_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/engine/engine.h"
#include "common/engine/genstop.h"
#include "common/engine/sampler.h"
#include "formats/tokenizer/tokenizer.h"

struct conversation {
    struct engine *e;
    struct tokenizer *t;
    pthread_mutex_t *lock;       /* NULL: the engine is this conversation's alone */
    char **roles, **contents;    /* the messages so far */
    size_t n, cap;
    int seq;                     /* the engine sequence, -1 before the first answer */
    struct tok_ids cached;       /* the ids in its KV cache */
};

/* The figures of one answer. */
struct reply_stats {
    size_t prompt_tokens;        /* the whole rendered conversation */
    size_t prefilled;            /* of which prefilled now (the rest was cached) */
    size_t completion_tokens;
    double prefill_seconds, decode_seconds;
};

struct reply {
    struct reply_stats stats;
    enum stop_reason reason;
    struct buf text;             /* the answer so far, as shown */
    /* the running state */
    float *logits;
    struct penalty_state penalty;
    struct sampler_rng rng;
    struct tok_stream *stream;
    struct gen_stop stop;
    struct sampler_params sampling;
    bool done;
};

void conversation_init(struct conversation *c, struct engine *e, struct tokenizer *t, pthread_mutex_t *lock);
void conversation_free(struct conversation *c);
/* Forget the messages and free the sequence (its KV cache). */
void conversation_reset(struct conversation *c);
void conversation_add(struct conversation *c, const char *role, const char *content);
/* Take back the last message (one that could not be answered). */
void conversation_drop_last(struct conversation *c);

/* Render the conversation, prefill what the cache lacks, and get ready to
 * answer. -1 with last_error() (an unknown role, a conversation longer than
 * the context window, no free sequence). */
int reply_begin(struct conversation *c, const struct sampler_params *sampling, uint64_t seed, size_t max_tokens,
                struct reply *r);
/* The next piece of the answer into `piece` (appended; it may be empty
 * when a token completes no character yet or may start a stop string).
 * 1: more to come; 0: finished (r->reason says why; piece holds the last
 * of the text); -1: an engine error. */
int reply_next(struct conversation *c, struct reply *r, struct buf *piece);
/* Free the answer's state; when `keep` the answer joins the conversation
 * as the assistant's message. */
void reply_end(struct conversation *c, struct reply *r, bool keep);

#endif
