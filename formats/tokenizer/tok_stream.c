/* Streaming detokenization: the text each new token adds, held back while
 * it would end inside a character (a UTF-8 sequence split over byte
 * tokens), computed as the difference between decoding a short window of
 * recent tokens with and without the new ones. */
#include "formats/tokenizer/tok_impl.h"

#include <stdlib.h>
#include <string.h>

/* Tokens already printed that are kept as context, so that decoders which
 * treat the first token specially (Metaspace, Strip) see the same
 * neighbourhood as a full decode would. */
#define STREAM_CONTEXT 6
/* After this many held-back tokens the text is released even if it still
 * ends in U+FFFD: the replacement character is then real. */
#define STREAM_MAX_PENDING 8

/* A decoder regex that gave up cannot give the text back; generation has
 * no way to carry on without it, so the program stops with the message. */
static void decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool skip_special, struct buf *out)
{
    if (tokenizer_decode(t, ids, n, skip_special, out) != 0) die_last();
}

struct tok_stream {
    const struct tokenizer *t;
    bool skip_special;
    struct tok_ids ctx;       /* printed tokens kept as context */
    struct tok_ids pending;   /* tokens whose text is held back */
    bool started;             /* something was printed (no longer at start) */
    struct buf a, b;
};

struct tok_stream *tok_stream_new(const struct tokenizer *t, bool skip_special)
{
    struct tok_stream *s = xcalloc(1, sizeof *s);
    s->t = t;
    s->skip_special = skip_special;
    buf_init(&s->a);
    buf_init(&s->b);
    return s;
}

static bool ends_with_replacement(const struct buf *b)
{
    return b->len >= 3 && !memcmp(b->data + b->len - 3, "\xEF\xBF\xBD", 3);
}

/* Keep about the last STREAM_CONTEXT tokens as context, cutting where the
 * remaining tokens decode on their own to clean text: a cut inside a
 * character's byte tokens would turn the kept bytes into U+FFFD and make
 * every later decode of the window end badly. */
static void trim_context(struct tok_stream *s)
{
    size_t n = s->ctx.n, cut = 0;
    for (size_t d = n - STREAM_CONTEXT; d < n; d++) {
        buf_reset(&s->a);
        decode(s->t, s->ctx.v + d, n - d, s->skip_special, &s->a);
        if (!(s->a.len >= 3 && !memcmp(s->a.data, "\xEF\xBF\xBD", 3))) {
            cut = d;
            break;
        }
    }
    if (!cut && n > 8 * STREAM_CONTEXT) cut = n - STREAM_CONTEXT;
    if (!cut) return;
    memmove(s->ctx.v, s->ctx.v + cut, (n - cut) * sizeof *s->ctx.v);
    s->ctx.n = n - cut;
}

static void stream_emit(struct tok_stream *s, struct buf *out, bool final)
{
    if (!s->pending.n) return;
    buf_reset(&s->a);
    buf_reset(&s->b);
    decode(s->t, s->ctx.v, s->ctx.n, s->skip_special, &s->a);
    struct tok_ids all = {0};
    for (size_t i = 0; i < s->ctx.n; i++) tok_ids_push(&all, s->ctx.v[i]);
    for (size_t i = 0; i < s->pending.n; i++) tok_ids_push(&all, s->pending.v[i]);
    decode(s->t, all.v, all.n, s->skip_special, &s->b);
    tok_ids_free(&all);
    if (!final && ends_with_replacement(&s->b) && s->pending.n < STREAM_MAX_PENDING) return;
    size_t common = 0;
    while (common < s->a.len && common < s->b.len && s->a.data[common] == s->b.data[common]) common++;
    /* the context's text is normally a prefix; if a decoder rewrote it,
     * print from the first difference, on a character boundary */
    while (common > 0 && common < s->b.len && ((unsigned char)s->b.data[common] & 0xC0) == 0x80) common--;
    buf_add(out, s->b.data + common, s->b.len - common);
    for (size_t i = 0; i < s->pending.n; i++) tok_ids_push(&s->ctx, s->pending.v[i]);
    s->pending.n = 0;
    if (s->ctx.n > STREAM_CONTEXT) trim_context(s);
    s->started = true;
}

void tok_stream_put(struct tok_stream *s, int32_t id, struct buf *out)
{
    tok_ids_push(&s->pending, id);
    stream_emit(s, out, false);
}

void tok_stream_finish(struct tok_stream *s, struct buf *out)
{
    stream_emit(s, out, true);
}

void tok_stream_free(struct tok_stream *s)
{
    if (!s) return;
    tok_ids_free(&s->ctx);
    tok_ids_free(&s->pending);
    buf_free(&s->a);
    buf_free(&s->b);
    free(s);
}
