#include "common/engine/judge.h"
#include "common/utf8.h"

#include <math.h>
#include <string.h>

void log_softmax(const float *logits, int n, double *out)
{
    double mx = -INFINITY;
    for (int i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    double lse = mx + log(sum);
    for (int i = 0; i < n; i++) out[i] = (double)logits[i] - lse;
}

double kl_divergence(const float *p_logits, const float *q_logits, int n)
{
    double kl = 0;
    /* two passes with running maxima avoid keeping n doubles around */
    double pm = -INFINITY, qm = -INFINITY, ps = 0, qs = 0;
    for (int i = 0; i < n; i++) {
        if (p_logits[i] > pm) pm = p_logits[i];
        if (q_logits[i] > qm) qm = q_logits[i];
    }
    for (int i = 0; i < n; i++) {
        ps += exp((double)p_logits[i] - pm);
        qs += exp((double)q_logits[i] - qm);
    }
    double plse = pm + log(ps), qlse = qm + log(qs);
    for (int i = 0; i < n; i++) {
        double lp = (double)p_logits[i] - plse, lq = (double)q_logits[i] - qlse;
        double p = exp(lp);
        if (p > 0) kl += p * (lp - lq);
    }
    return kl < 0 ? 0 : kl;
}

int argmax_f(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

size_t repeated_tail(const int32_t *ids, size_t n, int max_period)
{
    size_t best = 0;
    for (int p = 1; p <= max_period && (size_t)p * 2 <= n; p++) {
        size_t len = (size_t)p; /* the last cycle itself */
        while (len < n && ids[n - 1 - len] == ids[n - 1 - len + (size_t)p]) len++;
        if (len >= 2 * (size_t)p && len > best) best = len;
    }
    return best;
}


bool text_is_clean_utf8(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_valid_prefix(s + i, len - i);
        size_t unused;
        if (!k || utf8_decode(text + i, k, &unused) == 0xfffd) return false;
        i += k;
    }
    return true;
}

double printable_ratio(const char *text, size_t len)
{
    size_t total = 0, good = 0;
    for (size_t i = 0; i < len;) {
        size_t k;
        int32_t cp = utf8_decode(text + i, len - i, &k); /* invalid: U+FFFD */
        total++;
        bool ok = cp == '\n' || cp == '\t' || cp == '\r' || (cp >= 0x20 && cp < 0x7f) ||
                  (cp >= 0xa0 && cp != 0xfffd && !(cp >= 0xe000 && cp <= 0xf8ff));
        good += ok;
        i += k;
    }
    return total ? (double)good / (double)total : 1.0;
}

struct judge_thresholds judge_default_thresholds(void)
{
    return (struct judge_thresholds){
        .max_prompt_ppl_fraction = 0.25,
        .max_output_ppl_fraction = 0.10,
        .max_repeated_fraction = 0.5,
        .min_printable = 0.9,
    };
}

void judge(const struct judge_input *in, const struct judge_thresholds *t, struct judgement *j)
{
    memset(j, 0, sizeof *j);
    size_t visible = 0;
    for (size_t i = 0; i < in->text_len; i++)
        if (!strchr(" \t\r\n", in->text[i])) visible++;
    j->non_empty = in->n_ids > 0 && visible > 0;
    j->valid_utf8 = text_is_clean_utf8(in->text, in->text_len);
    j->finite = in->logits_finite && in->stop_reason != NULL;
    j->deterministic = in->deterministic;
    j->prompt_ppl = in->prompt_scored ? exp(in->prompt_nll / (double)in->prompt_scored) : 0;
    j->output_ppl = in->n_ids ? exp(in->output_nll / (double)in->n_ids) : 0;
    j->repeated_fraction = in->n_ids ? (double)repeated_tail(in->ids, in->n_ids, 8) / (double)in->n_ids : 0;
    j->printable = printable_ratio(in->text, in->text_len);
    double v = in->vocab_size > 0 ? in->vocab_size : 1;
    j->coherent = true;
    if (in->prompt_scored >= JUDGE_MIN_PROMPT_TOKENS && j->prompt_ppl > JUDGE_MISREAD_PPL_FACTOR * v)
        j->coherent = false, j->misread = true,
        j->incoherence = "the model cannot read the tokenized prompt (prompt perplexity)";
    else if (in->prompt_scored >= JUDGE_MIN_PROMPT_TOKENS && j->prompt_ppl > t->max_prompt_ppl_fraction * v)
        j->coherent = false, j->incoherence = "the model stumbles over the prompt (prompt perplexity)";
    else if (in->n_ids && j->output_ppl > t->max_output_ppl_fraction * v)
        j->coherent = false, j->incoherence = "the model is unsure of its own output (output perplexity)";
    else if (in->n_ids >= 16 && j->repeated_fraction > t->max_repeated_fraction)
        j->coherent = false, j->incoherence = "the output degenerates into a repeating loop";
    else if (j->printable < t->min_printable)
        j->coherent = false, j->incoherence = "the output is mostly unprintable";
    j->pass = j->non_empty && j->valid_utf8 && j->finite && j->coherent && j->deterministic;
}

bool judge_scale_fits(double ratio)
{
    return ratio >= JUDGE_SCALE_FIT_MIN && ratio <= JUDGE_SCALE_FIT_MAX; /* NaN fails */
}

static const char *stage(const struct judgement *j, const struct judge_evidence *ev);

const char *judge_diagnosis(const struct judgement *j, const struct judge_evidence *ev)
{
    const char *d = stage(j, ev);
    if (d && ev && ev->calibrated && ev->round_trips && (!strcmp(d, "quantization") || !strcmp(d, "config/tokenizer")))
        return "calibration";
    return d;
}

static const char *stage(const struct judgement *j, const struct judge_evidence *ev)
{
    static const struct judge_evidence none = {.round_trips = true, .quality_ok = true};
    if (!ev) ev = &none;
    if (j->pass) return ev->quality_ok ? NULL : "quantization";
    if (ev->has_reference && ev->quality_ok && ev->reference_fails_too) return "source model";
    if (!j->finite) return "quantization";
    if (!ev->round_trips || !j->non_empty || !j->valid_utf8 || j->misread) return "config/tokenizer";
    if (!j->coherent && j->printable < 0.9) return "config/tokenizer";
    if (!j->coherent) return "quantization";
    return "engine (nondeterministic)";
}
