/* Generating text with the engine: the prompt rendered with the
 * conversation template (or taken raw), tokenized, prefilled; then tokens
 * sampled and decoded, several requests at once in one batch (as many as
 * the engine's mode allows), until a stop token, a stop string or the token
 * limit. Records what mlc-check judges: the ids, the text, why it stopped,
 * how surprised the model was by the prompt and by its own output. */
#ifndef MLC_GENERATE_H
#define MLC_GENERATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/engine/engine.h"
#include "common/engine/genstop.h"
#include "common/engine/sampler.h"
#include "formats/tokenizer/tokenizer.h"

struct generate_request {
    const char *prompt;
    bool raw;                    /* no conversation template: the text itself */
    struct sampler_params sampling;
    uint64_t seed;
    size_t max_tokens;
};

struct generation {
    struct tok_ids prompt_ids;
    struct tok_ids ids;          /* every generated token, the stop token included */
    struct buf text;             /* what is shown (stop text excluded) */
    enum stop_reason reason;
    double output_nll;           /* Σ -log p of generated tokens, model's raw distribution */
    bool logits_finite;
};

/* Called with each piece of shown text as it is produced. */
typedef void (*generate_text_fn)(size_t request, const char *text, size_t len, void *ctx);

/* The prompt's token ids as the engine will see them. */
int generate_prompt_ids(struct engine *e, struct tokenizer *t, const char *prompt, bool raw, struct tok_ids *out);

/* The stop rules of an answer: the config's EOS ids, and (unless raw) the
 * conversation template's stop ids and strings. */
void generate_stop_rules(struct engine *e, bool raw, struct gen_stop *g, size_t max_tokens);

/* Run n requests, up to the engine's sequence limit at a time. */
int generate_run(struct engine *e, struct tokenizer *t, const struct generate_request *rq, size_t n, struct generation *out,
            generate_text_fn on_text, void *ctx);
void generation_free(struct generation *r);

/* Teacher-forced scoring: feed ids one at a time and sum -log p(ids[i+1]).
 * If `logits` is given it receives the logits after each token,
 * [n, vocab]. */
int generate_score(struct engine *e, const int32_t *ids, size_t n, double *nll, size_t *scored, float *logits);

#endif
