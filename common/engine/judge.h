/* Judging generated output (mlc-check): the criteria of compiled-artifact
 * validation, the coherence heuristic, and the measures of what
 * quantization cost. Pure functions over token ids, log-probabilities and
 * text, so that every threshold is tested on hand-made inputs.
 *
 * Coherence is judged three ways, each catching a different failure:
 *  - prompt perplexity: the model's perplexity of the tokenized prompt. A
 *    working model on correctly tokenized text finds it unsurprising; a
 *    wrong or shuffled tokenizer feeds it ids that make no sense, and the
 *    perplexity approaches the vocabulary size;
 *  - output perplexity: the perplexity of the generated tokens under the
 *    model's own (unsampled) distribution: a model damaged by quantization
 *    spreads its probability and is unsure of its own words;
 *  - degenerate repetition: the tail of the output cycling through a short
 *    loop of tokens, and the share of printable characters in the text. */
#ifndef MLC_JUDGE_H
#define MLC_JUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* log-softmax of n logits (double precision) into out. */
void log_softmax(const float *logits, int n, double *out);
/* KL(P || Q) in nats of two logit vectors (P = reference). */
double kl_divergence(const float *p_logits, const float *q_logits, int n);
int argmax_f(const float *x, int n);

/* The longest suffix of ids made of a repeating cycle of period ≤ max_period
 * (at least two full cycles); returns its length in tokens (0 if none). */
size_t repeated_tail(const int32_t *ids, size_t n, int max_period);

/* Share of characters (code points) of valid UTF-8 text that are printable
 * or ordinary whitespace. */
double printable_ratio(const char *text, size_t len);
/* Valid UTF-8 and free of U+FFFD (what a broken byte-fallback sequence
 * decodes to). */
bool text_is_clean_utf8(const char *text, size_t len);

/* Prompts shorter than this (in scored tokens) are not judged by their
 * perplexity: one rare first word says nothing about the tokenizer. */
#define JUDGE_MIN_PROMPT_TOKENS 8

struct judge_thresholds {
    double max_prompt_ppl_fraction;  /* of the vocabulary size */
    double max_output_ppl_fraction;  /* of the vocabulary size */
    double max_repeated_fraction;    /* of the generated tokens */
    double min_printable;            /* share of characters */
};

/* The defaults documented in mlc-check(1). */
struct judge_thresholds judge_default_thresholds(void);

enum verdict { VERDICT_PASS, VERDICT_FAIL };

struct judge_input {
    const int32_t *ids;          /* generated tokens */
    size_t n_ids;
    const char *text;            /* their decoded text */
    size_t text_len;
    double prompt_nll;           /* Σ -log p of prompt tokens after the first */
    size_t prompt_scored;        /* how many prompt tokens were scored */
    double output_nll;           /* Σ -log p of generated tokens (model's own distribution) */
    bool logits_finite;          /* no NaN/inf seen */
    const char *stop_reason;     /* stop_reason_name(): "stop token", "stop string", "length" */
    bool deterministic;          /* a second run with the same seed matched */
    int vocab_size;
};

/* A prompt the model reads with a perplexity above this many times the
 * vocabulary size is misread: random ids cost about the vocabulary size, and
 * only a model that confidently expects other tokens (a healthy model fed
 * ids of another vocabulary) goes far beyond it. A damaged model is unsure,
 * not confidently wrong. */
#define JUDGE_MISREAD_PPL_FACTOR 4.0

struct judgement {
    bool non_empty, valid_utf8, finite, coherent, deterministic;
    double prompt_ppl, output_ppl, repeated_fraction, printable;
    const char *incoherence;     /* why not coherent, or NULL */
    bool misread;                /* incoherent because the prompt's ids make no sense */
    bool pass;
};

void judge(const struct judge_input *in, const struct judge_thresholds *t, struct judgement *out);

/* An FP8 inference build's activation scales against its activations: for
 * each layer, the scale calibration would measure on the prompts checked
 * (max(f16(max|x|) / fp8_max, floor), over every call) divided by the scale
 * calibration stored. A calibration that saw activations like these gives
 * about 1; its sample differing from the prompts moves that by a few times.
 * Outside [1/256, 4] the scale is wrong, whatever the answers look like:
 * 256 times too large leaves the largest activation at 1.75 of e4m3's 448,
 * so that most of the rest fall among the subnormals or to zero (the normal
 * range, 2^-6 to 448, is 2^14.8 wide); 4 times too small clips every
 * activation above a quarter of the largest (stories260K's answers fall
 * apart there: mean KL 1.2 nats against 0.018 calibrated). */
#define JUDGE_SCALE_FIT_MIN (1.0 / 256)
#define JUDGE_SCALE_FIT_MAX 4.0
bool judge_scale_fits(double ratio);

/* What is known besides the judgement itself. */
struct judge_evidence {
    bool round_trips;            /* detokenizing the prompt's ids gives its text back */
    bool has_reference;          /* the unquantized reference ran */
    bool quality_ok;             /* ... and agrees with the compiled model */
    bool reference_fails_too;    /* ... and its own answer fails the same criteria */
    bool calibrated;             /* an FP8 model whose activations are divided by
                                  * scales calibration measured */
};

/* The stage a failure most likely comes from, weighing the evidence:
 *  - "source model": the unquantized reference agrees with the compiled
 *    model and fails the same way (nothing in the pipeline broke it);
 *  - "config/tokenizer": the tokenizer does not give the prompt back, the
 *    text is empty, broken or unprintable, or the model misreads the prompt;
 *  - "quantization": non-finite logits, or a model that reads its prompt
 *    (the tokenizer round-trips, the prompt is not misread) but is unsure of
 *    itself, loops, or stumbles, or one far from its reference;
 *  - "calibration": what would be quantization or a misread prompt in an
 *    FP8 model with calibrated activation scales whose tokenizer
 *    round-trips: every activation passes through those scales, so wrong
 *    ones garble even the prompt;
 *  - "engine (nondeterministic)": the same seed gave other tokens.
 * Load errors are named by the engine itself. */
const char *judge_diagnosis(const struct judgement *j, const struct judge_evidence *ev);

#endif
