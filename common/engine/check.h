/* mlc-check's work: run prompts through the engine twice (the second run
 * proves determinism), score the prompts, judge every answer, compare with
 * the unquantized reference when there is one, and name the likely stage
 * of any failure. The results become the `check` record and the summary. */
#ifndef MLC_CHECK_H
#define MLC_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "common/engine/engine.h"
#include "common/engine/generate.h"
#include "common/engine/judge.h"
#include "common/stream.h"

struct check_options {
    const char *const *prompts;
    size_t nprompts;
    bool raw;
    struct sampler_params sampling;
    uint64_t seed;
    size_t max_tokens;
    struct judge_thresholds thresholds;
    double max_kl;               /* with a reference: mean KL (nats) at most */
    double min_top1;             /* with a reference: top-1 agreement at least */
    const char *reference_text;  /* scored under both models */
};

/* KL divergence per position, summarised as llama-perplexity's
 * --kl-divergence does. */
struct kl_stats {
    double mean, max, p999, p99, median, min;
};

struct prompt_check {
    const char *prompt;
    struct generation gen;
    struct judgement j;
    struct judge_evidence ev;
    const char *diagnosis;       /* NULL when it passed */
    bool has_reference;
    double kl_mean, kl_max, top1;
    double *kl;                  /* per scored position (answer tokens) */
    size_t nkl;
    struct kl_stats kls;
    bool reference_judged;       /* the reference answered too (a failed prompt) */
    struct judgement ref_j;
    struct buf ref_text;
    bool quality_ok;
    bool pass;
};

/* An FP8 inference build run on the CPU executor: each layer's activation
 * scale on the prompts checked against its stored one (judge_scale_fits). */
struct scale_fit {
    bool measured;
    size_t layers;
    const char *lowest_name, *highest_name;   /* the layers' weights */
    double lowest, highest;                   /* measured / stored */
    double fp8_max;                           /* the format's largest value */
    bool pass;
};

struct check_report {
    struct prompt_check *prompts;
    size_t n;
    bool has_reference;
    double ppl, ppl_reference;   /* of the reference text */
    double kl_mean, top1;        /* over every prompt */
    struct kl_stats kls;         /* over every scored position */
    size_t passed;
    struct scale_fit fit;
    bool pass;
    const char *diagnosis;       /* NULL when everything passed */
};

/* The prompts used when none are given (chat, or raw text). */
const char *const *check_builtin_prompts(bool raw, size_t *n);
struct check_options check_default_options(void);

/* `ref` may be NULL. -1 only for errors that stop the check itself (an
 * engine failure mid-run); judged failures are in the report. */
int check_run(struct engine *e, struct engine *ref, struct tokenizer *t, const struct check_options *o,
              struct check_report *out);
void check_report_free(struct check_report *r);

/* Percentile q (0..1) of n sorted values, interpolated linearly. */
double percentile_sorted(const double *sorted, size_t n, double q);
/* The summary of n values (any order). */
void kl_stats_of(const double *v, size_t n, struct kl_stats *out);

/* The `check` record: options, per-prompt results and the verdict. */
void check_write_record(struct stream_writer *w, const struct check_report *r, const struct check_options *o,
                        const char *library, const char *load_error, const char *diagnosis);
/* The human summary on stderr. */
void check_print_summary(const struct check_report *r);

#endif
