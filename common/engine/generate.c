#include "common/engine/generate.h"
#include "common/err.h"
#include "common/engine/judge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int generate_prompt_ids(struct engine *e, struct tokenizer *t, const char *prompt, bool raw, struct tok_ids *out)
{
    if (raw || !e->cfg.conv_template)
        return tokenizer_encode(t, prompt, strlen(prompt), true, out);
    /* As MLC's engine: the rendered text tokenized without special tokens,
     * after the template's system_prefix_token_ids (the BOS, usually). */
    struct chat_message msg = {"user", prompt};
    struct conv_prompt p;
    if (conv_render(e->cfg.conv_template, &msg, 1, NULL, &p) != 0) return -1;
    for (size_t i = 0; i < p.n_prefix_token_ids; i++) tok_ids_push(out, p.prefix_token_ids[i]);
    int rc = tokenizer_encode(t, p.text, p.text_len, false, out);
    conv_prompt_free(&p);
    return rc;
}

struct slot {
    size_t request;
    int seq;
    float *logits;               /* the model's latest prediction for this sequence */
    struct penalty_state penalty;
    struct sampler_rng rng;
    struct tok_stream *stream;
    struct gen_stop stop;
    int32_t next;                /* token to decode */
    bool busy;
};

static bool all_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

void generate_stop_rules(struct engine *e, bool raw, struct gen_stop *g, size_t max_tokens)
{
    const struct chat_config *c = &e->cfg;
    const struct conv_template *t = raw ? NULL : c->conv_template;
    size_t n_ids = c->n_eos_token_ids + (t ? t->n_stop_token_ids : 0);
    int32_t *ids = xcalloc(n_ids + 1, sizeof *ids);
    size_t k = 0;
    for (size_t i = 0; i < c->n_eos_token_ids; i++) ids[k++] = (int32_t)c->eos_token_ids[i];
    for (size_t i = 0; t && i < t->n_stop_token_ids; i++) ids[k++] = t->stop_token_ids[i];
    gen_stop_init(g, ids, k, t ? (const char *const *)t->stop_str : NULL, t ? t->n_stop_str : 0, max_tokens);
    free(ids);
}

static int start(struct engine *e, struct tokenizer *t, const struct generate_request *rq, struct generation *res,
                 struct slot *s, size_t index)
{
    memset(s, 0, sizeof *s);
    s->request = index;
    memset(res, 0, sizeof *res);
    buf_init(&res->text);
    res->logits_finite = true;
    if (generate_prompt_ids(e, t, rq->prompt, rq->raw, &res->prompt_ids) != 0) return fail_prefix("prompt %zu", index + 1);
    if (!res->prompt_ids.n) return fail("prompt %zu: no tokens to start from (an empty raw prompt needs a BOS token)", index + 1);
    s->seq = engine_new_sequence(e);
    if (s->seq < 0) return -1;
    s->logits = xmalloc(sizeof(float) * (size_t)e->vocab_size);
    if (engine_prefill(e, s->seq, res->prompt_ids.v, (int64_t)res->prompt_ids.n, s->logits) != 0) {
        engine_free_sequence(e, s->seq);
        free(s->logits);
        return fail_prefix("prompt %zu", index + 1);
    }
    penalty_init(&s->penalty, (size_t)e->vocab_size);
    sampler_seed(&s->rng, rq->seed);
    s->stream = tok_stream_new(t, true);
    generate_stop_rules(e, rq->raw, &s->stop, rq->max_tokens);
    s->busy = true;
    return 0;
}

static void finish(struct engine *e, struct slot *s, struct generation *res, generate_text_fn on_text, void *ctx)
{
    struct buf tail = BUF_INIT;
    buf_init(&tail);
    if (res->reason == STOP_NONE) res->reason = STOP_LENGTH;
    if (res->reason == STOP_LENGTH) {
        /* the stream may hold back an incomplete character; what the stop
         * rules held back as a possible stop string is text after all */
        gen_stop_flush(&s->stop, &tail);
        tok_stream_finish(s->stream, &tail);
    }
    if (tail.len) {
        buf_add(&res->text, tail.data, tail.len);
        if (on_text) on_text(s->request, tail.data, tail.len, ctx);
    }
    buf_free(&tail);
    engine_free_sequence(e, s->seq);
    penalty_free(&s->penalty);
    tok_stream_free(s->stream);
    gen_stop_free(&s->stop);
    free(s->logits);
    s->busy = false;
}

/* Pick this slot's next token from its logits; false when it has stopped. */
static bool step(struct engine *e, const struct generate_request *rq, struct slot *s, struct generation *res,
                 generate_text_fn on_text, void *ctx, float *scratch, double *logp)
{
    int64_t V = e->vocab_size;
    if (!all_finite(s->logits, V)) {
        res->logits_finite = false;
        res->reason = STOP_LENGTH;
        return false;
    }
    memcpy(scratch, s->logits, sizeof(float) * (size_t)V);
    int32_t id = sampler_sample(&rq->sampling, scratch, (size_t)V, &s->penalty, &s->rng);
    if (id < 0) {
        res->reason = STOP_LENGTH;
        return false;
    }
    log_softmax(s->logits, (int)V, logp);
    res->output_nll -= logp[id];
    penalty_add(&s->penalty, id);
    tok_ids_push(&res->ids, id);
    struct buf piece = BUF_INIT, shown = BUF_INIT;
    buf_init(&piece);
    buf_init(&shown);
    tok_stream_put(s->stream, id, &piece);
    enum stop_reason r = gen_stop_feed(&s->stop, id, piece.data, piece.len, &shown);
    if (shown.len) {
        buf_add(&res->text, shown.data, shown.len);
        if (on_text) on_text(s->request, shown.data, shown.len, ctx);
    }
    buf_free(&piece);
    buf_free(&shown);
    if (r != STOP_NONE) {
        res->reason = r;
        return false;
    }
    /* a sequence that has filled its context window stops there */
    if (engine_sequence_full(e, s->seq)) {
        res->reason = STOP_LENGTH;
        return false;
    }
    s->next = id;
    return true;
}

int generate_run(struct engine *e, struct tokenizer *t, const struct generate_request *rq, size_t n, struct generation *out,
            generate_text_fn on_text, void *ctx)
{
    int width = e->max_sequences > 0 ? e->max_sequences : 1;
    struct slot *slots = xcalloc((size_t)width, sizeof *slots);
    int64_t V = e->vocab_size;
    float *scratch = xmalloc(sizeof(float) * (size_t)V), *batch = xmalloc(sizeof(float) * (size_t)(V * width));
    double *logp = xmalloc(sizeof(double) * (size_t)V);
    int *seqs = xmalloc(sizeof(int) * (size_t)width);
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)width);
    int *which = xmalloc(sizeof(int) * (size_t)width);
    size_t next_request = 0;
    int rc = 0;
    for (;;) {
        /* fill free slots with waiting requests */
        for (int i = 0; i < width && next_request < n && rc == 0; i++)
            if (!slots[i].busy) {
                rc = start(e, t, &rq[next_request], &out[next_request], &slots[i], next_request);
                next_request++;
            }
        if (rc) break;
        /* each busy slot picks a token; those that go on decode together */
        int nb = 0;
        for (int i = 0; i < width; i++) {
            struct slot *s = &slots[i];
            if (!s->busy) continue;
            if (step(e, &rq[s->request], s, &out[s->request], on_text, ctx, scratch, logp)) {
                seqs[nb] = s->seq;
                ids[nb] = s->next;
                which[nb++] = i;
            } else {
                finish(e, s, &out[s->request], on_text, ctx);
            }
        }
        if (nb == 0) {
            if (next_request >= n) break;
            continue;
        }
        if ((rc = engine_decode(e, seqs, ids, nb, batch)) != 0) break;
        for (int k = 0; k < nb; k++)
            memcpy(slots[which[k]].logits, batch + (int64_t)k * V, sizeof(float) * (size_t)V);
    }
    for (int i = 0; i < width; i++)
        if (slots[i].busy) finish(e, &slots[i], &out[slots[i].request], NULL, NULL);
    free(slots);
    free(scratch);
    free(batch);
    free(logp);
    free(seqs);
    free(ids);
    free(which);
    return rc;
}

void generation_free(struct generation *r)
{
    tok_ids_free(&r->prompt_ids);
    tok_ids_free(&r->ids);
    buf_free(&r->text);
}

int generate_score(struct engine *e, const int32_t *ids, size_t n, double *nll, size_t *scored, float *logits)
{
    *nll = 0;
    *scored = 0;
    int seq = engine_new_sequence(e);
    if (seq < 0) return -1;
    int64_t V = e->vocab_size;
    float *lg = xmalloc(sizeof(float) * (size_t)V);
    double *logp = xmalloc(sizeof(double) * (size_t)V);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = engine_decode(e, &seq, &ids[i], 1, lg);
        if (rc) break;
        if (logits) memcpy(logits + (int64_t)i * V, lg, sizeof(float) * (size_t)V);
        if (i + 1 < n) {
            log_softmax(lg, (int)V, logp);
            if (ids[i + 1] >= 0 && ids[i + 1] < V) {
                *nll -= logp[ids[i + 1]];
                (*scored)++;
            }
        }
    }
    free(lg);
    free(logp);
    engine_free_sequence(e, seq);
    return rc;
}
