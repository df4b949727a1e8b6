/* Choosing the next token from logits, as MLC-LLM's engine does it, with a
 * seeded generator that gives the same tokens on every machine.
 *
 * Order (MLC-LLM's logit processor, then its sampler):
 *  1. penalties, on every token generated so far (not the prompt), with c
 *     its count: logit -= presence_penalty + c * frequency_penalty; then
 *     logit < 0 ? logit *= repetition_penalty : logit /= repetition_penalty;
 *  2. tokens at or after active_vocab_size are masked out;
 *  3. temperature <= 1e-5: greedy (the first largest logit);
 *  4. otherwise softmax(logits / temperature); then top-k (an extension:
 *     MLC-LLM has none), then top-p: tokens sorted by probability keep
 *     being added while the sum so far is below top_p, the rest dropped;
 *  5. one uniform number u in [0, 1) picks the token whose cumulative
 *     (renormalised) probability first exceeds u.
 * Exponentials come from our own exp (basic arithmetic only, no libm), the
 * sums run in a fixed order and ties break towards the lower id, so a seed
 * gives the same tokens everywhere.
 */
#ifndef MLC_SAMPLER_H
#define MLC_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sampler_params {
    double temperature;         /* MLC default 1.0; <= 1e-5 is greedy */
    double top_p;               /* 1.0: off */
    unsigned top_k;             /* 0: off */
    double repetition_penalty;  /* 1.0: off; must be > 0 */
    double presence_penalty;    /* 0.0: off */
    double frequency_penalty;   /* 0.0: off */
    size_t active_vocab_size;   /* 0: the whole logits array */
};

/* MLC-LLM's defaults: temperature 1, top_p 1, penalties off. */
struct sampler_params sampler_defaults(void);
/* -1 with last_error() naming the bad parameter. */
int sampler_check(const struct sampler_params *p);

/* The seeded generator: xoshiro256** seeded through splitmix64. */
struct sampler_rng {
    uint64_t s[4];
};

void sampler_seed(struct sampler_rng *r, uint64_t seed);
uint64_t sampler_next(struct sampler_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double sampler_uniform(struct sampler_rng *r);

/* How often each token was generated so far. */
struct penalty_state {
    uint32_t *count;            /* per token id */
    int32_t *seen;              /* ids in order of first appearance */
    size_t nseen, vocab;
};

void penalty_init(struct penalty_state *ps, size_t vocab);
void penalty_add(struct penalty_state *ps, int32_t id);
void penalty_reset(struct penalty_state *ps);
void penalty_free(struct penalty_state *ps);

/* Apply steps 1-2 to logits[0..n) in place. */
void sampler_process_logits(const struct sampler_params *p, float *logits, size_t n,
                            const struct penalty_state *ps);
/* Steps 1-5: the chosen token id (logits are modified). rng may be NULL
 * for greedy parameters. Returns -1 if every token is masked. */
int32_t sampler_sample(const struct sampler_params *p, float *logits, size_t n,
                       const struct penalty_state *ps, struct sampler_rng *rng);

/* The same with the uniform number given (for tests and replays). */
int32_t sampler_sample_u(const struct sampler_params *p, float *logits, size_t n,
                         const struct penalty_state *ps, double uniform);

/* exp(x) from basic arithmetic only, the same on every IEEE-754 machine;
 * relative error below 1e-15. */
double sampler_exp(double x);

#endif
