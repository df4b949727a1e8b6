#include "common/engine/conversation.h"
#include "common/engine/generate.h"
#include "common/engine/judge.h"
#include "common/err.h"
#include "common/progress.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void conversation_init(struct conversation *c, struct engine *e, struct tokenizer *t, pthread_mutex_t *lock)
{
    memset(c, 0, sizeof *c);
    c->e = e;
    c->t = t;
    c->lock = lock;
    c->seq = -1;
}

static void engine_lock(struct conversation *c)
{
    if (c->lock) pthread_mutex_lock(c->lock);
}

static void engine_unlock(struct conversation *c)
{
    if (c->lock) pthread_mutex_unlock(c->lock);
}

static void drop_sequence(struct conversation *c)
{
    if (c->seq >= 0) {
        engine_lock(c);
        engine_free_sequence(c->e, c->seq);
        engine_unlock(c);
    }
    c->seq = -1;
    tok_ids_free(&c->cached);
    memset(&c->cached, 0, sizeof c->cached);
}

void conversation_reset(struct conversation *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->roles[i]);
        free(c->contents[i]);
    }
    c->n = 0;
    drop_sequence(c);
}

void conversation_free(struct conversation *c)
{
    conversation_reset(c);
    free(c->roles);
    free(c->contents);
    c->roles = c->contents = NULL;
    c->cap = 0;
}

void conversation_add(struct conversation *c, const char *role, const char *content)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->roles = xrealloc(c->roles, c->cap * sizeof *c->roles);
        c->contents = xrealloc(c->contents, c->cap * sizeof *c->contents);
    }
    c->roles[c->n] = xstrdup(role);
    c->contents[c->n] = xstrdup(content ? content : "");
    c->n++;
}

void conversation_drop_last(struct conversation *c)
{
    if (!c->n) return;
    c->n--;
    free(c->roles[c->n]);
    free(c->contents[c->n]);
}

/* The conversation's ids as the engine sees them (generate_prompt_ids's
 * rule, for several messages): the template's prefix ids, then the
 * rendered text tokenized without special tokens. */
static int render_ids(struct conversation *c, struct tok_ids *out)
{
    const struct conv_template *tpl = c->e->cfg.conv_template;
    if (!tpl) return fail("%s has no conversation template (a chat needs one)", c->e->cfg.source);
    struct chat_message *msgs = xcalloc(c->n + 1, sizeof *msgs);
    for (size_t i = 0; i < c->n; i++) msgs[i] = (struct chat_message){c->roles[i], c->contents[i]};
    struct conv_prompt p;
    int rc = conv_render(tpl, msgs, c->n, NULL, &p);
    free(msgs);
    if (rc != 0) return -1;
    for (size_t i = 0; i < p.n_prefix_token_ids; i++) tok_ids_push(out, p.prefix_token_ids[i]);
    rc = tokenizer_encode(c->t, p.text, p.text_len, false, out);
    conv_prompt_free(&p);
    return rc;
}

static bool is_prefix(const struct tok_ids *a, const struct tok_ids *b)
{
    return a->n <= b->n && (a->n == 0 || !memcmp(a->v, b->v, a->n * sizeof *a->v));
}

int reply_begin(struct conversation *c, const struct sampler_params *sampling, uint64_t seed, size_t max_tokens,
                struct reply *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->text);
    struct tok_ids ids = {0};
    if (render_ids(c, &ids) != 0) {
        tok_ids_free(&ids);
        return -1;
    }
    int64_t window = c->e->cfg.context_window_size;
    if (window > 0 && c->e->cfg.sliding_window_size <= 0 && (int64_t)ids.n >= window) {
        tok_ids_free(&ids);
        return fail("the conversation (%zu tokens) no longer fits the context window of %lld tokens", ids.n,
                    (long long)window);
    }
    /* the KV cache holds the start of this conversation: prefill the rest
     * (an earlier answer re-tokenized differently starts over) */
    if (c->seq >= 0 && !(is_prefix(&c->cached, &ids) && c->cached.n < ids.n)) drop_sequence(c);
    r->logits = xmalloc(sizeof(float) * (size_t)c->e->vocab_size);
    engine_lock(c);
    int rc = 0;
    if (c->seq < 0 && (c->seq = engine_new_sequence(c->e)) < 0)
        rc = fail("no free sequence in the engine (every slot is answering)");
    size_t from = c->cached.n;
    double t0 = now_seconds();
    if (rc == 0) rc = engine_prefill(c->e, c->seq, ids.v + from, (int64_t)(ids.n - from), r->logits);
    r->stats.prefill_seconds = now_seconds() - t0;
    engine_unlock(c);
    if (rc != 0) {
        tok_ids_free(&ids);
        drop_sequence(c);
        free(r->logits);
        r->logits = NULL;
        buf_free(&r->text);
        return -1;
    }
    r->stats.prompt_tokens = ids.n;
    r->stats.prefilled = ids.n - from;
    tok_ids_free(&c->cached);
    c->cached = ids;
    r->sampling = *sampling;
    penalty_init(&r->penalty, (size_t)c->e->vocab_size);
    sampler_seed(&r->rng, seed);
    r->stream = tok_stream_new(c->t, true);
    generate_stop_rules(c->e, false, &r->stop, max_tokens);
    return 0;
}

static bool all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

static int finish(struct reply *r, enum stop_reason why, struct buf *piece)
{
    r->reason = why;
    r->done = true;
    if (why == STOP_LENGTH) {
        size_t before = piece->len;
        gen_stop_flush(&r->stop, piece);
        tok_stream_finish(r->stream, piece);
        buf_add(&r->text, piece->data + before, piece->len - before);
    }
    return 0;
}

int reply_next(struct conversation *c, struct reply *r, struct buf *piece)
{
    if (r->done) return 0;
    int64_t V = c->e->vocab_size;
    if (!all_finite(r->logits, V)) return fail("the model's logits are not finite");
    float *scratch = xmalloc(sizeof(float) * (size_t)V);
    memcpy(scratch, r->logits, sizeof(float) * (size_t)V);
    int32_t id = sampler_sample(&r->sampling, scratch, (size_t)V, &r->penalty, &r->rng);
    free(scratch);
    if (id < 0) return finish(r, STOP_LENGTH, piece);
    penalty_add(&r->penalty, id);
    r->stats.completion_tokens++;
    struct buf raw = BUF_INIT;
    buf_init(&raw);
    tok_stream_put(r->stream, id, &raw);
    size_t before = piece->len;
    enum stop_reason why = gen_stop_feed(&r->stop, id, raw.data, raw.len, piece);
    buf_free(&raw);
    buf_add(&r->text, piece->data + before, piece->len - before);
    if (why != STOP_NONE) return finish(r, why, piece);
    int64_t window = c->e->cfg.context_window_size;
    if (window > 0 && c->e->cfg.sliding_window_size <= 0 && (int64_t)c->cached.n + 1 >= window)
        return finish(r, STOP_LENGTH, piece);
    engine_lock(c);
    double t0 = now_seconds();
    int rc = engine_decode(c->e, &c->seq, &id, 1, r->logits);
    r->stats.decode_seconds += now_seconds() - t0;
    engine_unlock(c);
    if (rc != 0) return -1;
    tok_ids_push(&c->cached, id);
    return 1;
}

void reply_end(struct conversation *c, struct reply *r, bool keep)
{
    if (keep) conversation_add(c, "assistant", r->text.data ? r->text.data : "");
    free(r->logits);
    r->logits = NULL;
    if (r->stream) {
        penalty_free(&r->penalty);
        tok_stream_free(r->stream);
        gen_stop_free(&r->stop);
        r->stream = NULL;
    }
    buf_free(&r->text);
}
