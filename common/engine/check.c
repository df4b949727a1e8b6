#include "common/engine/check.h"
#include "common/buf.h"
#include "common/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const chat_prompts[] = {
    "Tell me a short story about a little dog.",
    "What is the capital of France?",
    "Write one sentence about the sea.",
};

static const char *const raw_prompts[] = {
    "Once upon a time",
    "One day, a little girl named Lily",
    "The sun was shining and",
};

const char *const *check_builtin_prompts(bool raw, size_t *n)
{
    *n = 3;
    return raw ? raw_prompts : chat_prompts;
}

struct check_options check_default_options(void)
{
    struct check_options o;
    memset(&o, 0, sizeof o);
    o.sampling = sampler_defaults();
    o.max_tokens = 64;
    o.thresholds = judge_default_thresholds();
    o.max_kl = 0.5;
    o.min_top1 = 0.6;
    o.reference_text = "Once upon a time, there was a little girl named Lily. She loved to play outside in "
                       "the park with her friends. One day, she found a big red ball under a tree.";
    return o;
}

/* Both engines read the same tokens; from position `from` on, compare their
 * next-token distributions, keeping each position's KL in *kls. */
static int compare(struct engine *e, struct engine *ref, const int32_t *ids, size_t n, size_t from,
                   double *kl_mean, double *kl_max, double *top1, double **kls, size_t *nkls)
{
    *kl_mean = *kl_max = 0;
    *top1 = 1;
    *kls = xcalloc(n + 1, sizeof **kls);
    *nkls = 0;
    int sq = engine_new_sequence(e), sr = sq >= 0 ? engine_new_sequence(ref) : -1;
    if (sq < 0 || sr < 0) {
        if (sq >= 0) engine_free_sequence(e, sq);
        return -1;
    }
    int64_t V = e->vocab_size < ref->vocab_size ? e->vocab_size : ref->vocab_size;
    float *lq = xmalloc(sizeof(float) * (size_t)e->vocab_size), *lr = xmalloc(sizeof(float) * (size_t)ref->vocab_size);
    size_t count = 0, agree = 0;
    double sum = 0;
    int rc = 0;
    for (size_t i = 0; i + 1 < n && rc == 0; i++) {
        rc = engine_decode(e, &sq, &ids[i], 1, lq);
        if (rc == 0) rc = engine_decode(ref, &sr, &ids[i], 1, lr);
        if (rc || i < from) continue;
        double kl = kl_divergence(lr, lq, (int)V);
        sum += kl;
        if (kl > *kl_max) *kl_max = kl;
        (*kls)[(*nkls)++] = kl;
        agree += argmax_f(lr, (int)V) == argmax_f(lq, (int)V);
        count++;
    }
    if (count) {
        *kl_mean = sum / (double)count;
        *top1 = (double)agree / (double)count;
    }
    free(lq);
    free(lr);
    engine_free_sequence(e, sq);
    engine_free_sequence(ref, sr);
    return rc;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double percentile_sorted(const double *v, size_t n, double q)
{
    if (!n) return 0;
    double at = q * (double)(n - 1);
    size_t lo = (size_t)at;
    if (lo + 1 >= n) return v[n - 1];
    return v[lo] + (at - (double)lo) * (v[lo + 1] - v[lo]);
}

void kl_stats_of(const double *v, size_t n, struct kl_stats *s)
{
    memset(s, 0, sizeof *s);
    if (!n) return;
    double *sorted = xmalloc(sizeof *sorted * n), sum = 0;
    memcpy(sorted, v, sizeof *sorted * n);
    qsort(sorted, n, sizeof *sorted, by_value);
    for (size_t i = 0; i < n; i++) sum += sorted[i];
    s->mean = sum / (double)n;
    s->min = sorted[0];
    s->max = sorted[n - 1];
    s->median = percentile_sorted(sorted, n, 0.5);
    s->p99 = percentile_sorted(sorted, n, 0.99);
    s->p999 = percentile_sorted(sorted, n, 0.999);
    free(sorted);
}

/* Does the tokenizer give the prompt's text back? (A leading space that a
 * SentencePiece tokenizer adds and removes is not a difference.) */
static bool round_trips(struct tokenizer *t, const char *text)
{
    struct tok_ids ids = {0};
    if (tokenizer_encode(t, text, strlen(text), false, &ids) != 0) return false;
    struct buf back = BUF_INIT;
    buf_init(&back);
    tokenizer_decode(t, ids.v, ids.n, true, &back);
    const char *a = text, *b = back.data ? back.data : "";
    while (*a == ' ') a++;
    while (*b == ' ') b++;
    bool same = !strcmp(a, b);
    buf_free(&back);
    tok_ids_free(&ids);
    return same;
}

/* The criteria the compiled model failed that the reference fails too. */
static bool fails_alike(const struct judgement *q, const struct judgement *r)
{
    return (!q->non_empty && !r->non_empty) || (!q->valid_utf8 && !r->valid_utf8) ||
           (!q->coherent && !r->coherent) || (!q->finite && !r->finite);
}

/* A prompt the compiled model failed: let the reference answer it too and
 * judge that answer the same way. */
static int judge_reference(struct engine *ref, struct tokenizer *t, const struct generate_request *rq, int vocab,
                           const struct judge_thresholds *th, struct prompt_check *p)
{
    struct generation g;
    if (generate_run(ref, t, rq, 1, &g, NULL, NULL) != 0) {
        generation_free(&g);
        return -1;
    }
    double nll = 0;
    size_t scored = 0;
    int rc = generate_score(ref, g.prompt_ids.v, g.prompt_ids.n, &nll, &scored, NULL);
    struct judge_input in = {
        g.ids.v, g.ids.n, g.text.data, g.text.len, nll, scored, g.output_nll, g.logits_finite,
        stop_reason_name(g.reason), true, vocab,
    };
    judge(&in, th, &p->ref_j);
    p->reference_judged = true;
    buf_init(&p->ref_text);
    buf_add(&p->ref_text, g.text.data, g.text.len);
    generation_free(&g);
    return rc;
}

static int perplexity(struct engine *e, struct tokenizer *t, const char *text, double *ppl)
{
    struct tok_ids ids = {0};
    if (tokenizer_encode(t, text, strlen(text), true, &ids) != 0) return -1;
    double nll;
    size_t scored;
    int rc = generate_score(e, ids.v, ids.n, &nll, &scored, NULL);
    *ppl = scored ? exp(nll / (double)scored) : 0;
    tok_ids_free(&ids);
    return rc;
}

static bool same_ids(const struct tok_ids *a, const struct tok_ids *b)
{
    return a->n == b->n && (a->n == 0 || !memcmp(a->v, b->v, sizeof *a->v * a->n));
}

/* An FP8 inference build: its activations pass through measured scales. */
static bool calibrated_fp8(const struct engine *e)
{
    const struct quant_scheme *s = quant_scheme_by_name(e->cfg.quantization);
    return s && s->calibration_scale;
}

/* Whether the engine's FP8 layers can report the activation scales these
 * prompts call for: an inference build on the CPU executor. */
static bool fit_measurable(const struct engine *e)
{
    if (e->vk) return false;
    for (int i = 0; i < e->ex.n_observed; i++)
        if (e->ex.observed_stored[i] > 0) return true;
    return false;
}

static void scale_fit_of(const struct engine *e, struct scale_fit *f)
{
    const struct executor *ex = &e->ex;
    const struct quant_scheme *s = quant_scheme_by_name(e->cfg.quantization);
    memset(f, 0, sizeof *f);
    f->measured = true;
    f->fp8_max = s ? s->fp8_max : 0;
    f->pass = true;
    for (int i = 0; i < ex->n_observed; i++) {
        if (!(ex->observed_stored[i] > 0) || ex->observed[i] == 0) continue; /* not an inference layer, not run */
        double ratio = (double)ex->observed[i] / (double)ex->observed_stored[i];
        if (!f->layers || !(ratio >= f->lowest)) f->lowest = ratio, f->lowest_name = ex->observed_names[i];
        if (!f->layers || !(ratio <= f->highest)) f->highest = ratio, f->highest_name = ex->observed_names[i];
        f->pass = f->pass && judge_scale_fits(ratio);
        f->layers++;
    }
}

int check_run(struct engine *e, struct engine *ref, struct tokenizer *t, const struct check_options *o,
              struct check_report *r)
{
    memset(r, 0, sizeof *r);
    size_t n = o->nprompts;
    r->n = n;
    r->prompts = xcalloc(n + 1, sizeof *r->prompts);
    r->has_reference = ref != NULL;
    struct generate_request *rq = xcalloc(n + 1, sizeof *rq);
    struct generation *again = xcalloc(n + 1, sizeof *again);
    struct generation *first = xcalloc(n + 1, sizeof *first);
    for (size_t i = 0; i < n; i++)
        rq[i] = (struct generate_request){o->prompts[i], o->raw, o->sampling, o->seed, o->max_tokens};
    bool fit = fit_measurable(e);
    if (fit) executor_observe(&e->ex, true);
    int rc = generate_run(e, t, rq, n, first, NULL, NULL);
    if (fit) {
        executor_observe(&e->ex, false);
        if (rc == 0) scale_fit_of(e, &r->fit);
    }
    if (rc == 0) rc = generate_run(e, t, rq, n, again, NULL, NULL);
    int vocab = (int)(e->cfg.active_vocab_size > 0 ? e->cfg.active_vocab_size : e->vocab_size);
    double kl_sum = 0, top1_sum = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct prompt_check *p = &r->prompts[i];
        p->prompt = o->prompts[i];
        p->gen = first[i];
        memset(&first[i], 0, sizeof first[i]);
        double prompt_nll = 0;
        size_t scored = 0;
        rc = generate_score(e, p->gen.prompt_ids.v, p->gen.prompt_ids.n, &prompt_nll, &scored, NULL);
        if (rc) break;
        struct judge_input in = {
            p->gen.ids.v, p->gen.ids.n, p->gen.text.data, p->gen.text.len, prompt_nll, scored,
            p->gen.output_nll, p->gen.logits_finite, stop_reason_name(p->gen.reason),
            same_ids(&p->gen.ids, &again[i].ids), vocab,
        };
        judge(&in, &o->thresholds, &p->j);
        p->quality_ok = true;
        if (ref && p->gen.ids.n) {
            struct tok_ids all = {0};
            for (size_t k = 0; k < p->gen.prompt_ids.n; k++) tok_ids_push(&all, p->gen.prompt_ids.v[k]);
            for (size_t k = 0; k < p->gen.ids.n; k++) tok_ids_push(&all, p->gen.ids.v[k]);
            rc = compare(e, ref, all.v, all.n, p->gen.prompt_ids.n - 1, &p->kl_mean, &p->kl_max, &p->top1, &p->kl,
                         &p->nkl);
            tok_ids_free(&all);
            kl_stats_of(p->kl, p->nkl, &p->kls);
            p->has_reference = true;
            p->quality_ok = p->kl_mean <= o->max_kl && p->top1 >= o->min_top1;
            kl_sum += p->kl_mean;
            top1_sum += p->top1;
        }
        p->pass = p->j.pass && p->quality_ok;
        r->passed += p->pass;
        if (p->pass) continue;
        p->ev = (struct judge_evidence){round_trips(t, p->prompt), p->has_reference, p->quality_ok, false,
                                        calibrated_fp8(e)};
        if (rc == 0 && ref && !p->j.pass) {
            rc = judge_reference(ref, t, &rq[i], vocab, &o->thresholds, p);
            p->ev.reference_fails_too = rc == 0 && fails_alike(&p->j, &p->ref_j);
        }
        p->diagnosis = judge_diagnosis(&p->j, &p->ev);
    }
    if (rc == 0 && ref && n) {
        r->kl_mean = kl_sum / (double)n;
        r->top1 = top1_sum / (double)n;
        size_t total = 0;
        for (size_t i = 0; i < n; i++) total += r->prompts[i].nkl;
        double *all = xcalloc(total + 1, sizeof *all);
        total = 0;
        for (size_t i = 0; i < n; i++) {
            memcpy(all + total, r->prompts[i].kl, sizeof *all * r->prompts[i].nkl);
            total += r->prompts[i].nkl;
        }
        kl_stats_of(all, total, &r->kls);
        free(all);
        rc = perplexity(e, t, o->reference_text, &r->ppl);
        if (rc == 0) rc = perplexity(ref, t, o->reference_text, &r->ppl_reference);
    }
    r->pass = rc == 0 && r->passed == n && (!r->fit.measured || r->fit.pass);
    /* the first failure names the stage; a source model that fails alike
     * names itself only when no prompt points into the pipeline */
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *d = r->prompts[i].diagnosis;
        if (d && (!r->diagnosis || !strcmp(r->diagnosis, "source model"))) r->diagnosis = d;
    }
    /* scales that do not fit the activations are calibration's, whatever
     * the answers say */
    if (rc == 0 && r->fit.measured && !r->fit.pass) r->diagnosis = "calibration";
    for (size_t i = 0; i < n; i++) {
        generation_free(&first[i]);
        generation_free(&again[i]);
    }
    free(first);
    free(again);
    free(rq);
    return rc;
}

void check_report_free(struct check_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        generation_free(&r->prompts[i].gen);
        free(r->prompts[i].kl);
        buf_free(&r->prompts[i].ref_text);
    }
    free(r->prompts);
    memset(r, 0, sizeof *r);
}

static void pack_ids(msgpack_packer *pk, const struct tok_ids *ids)
{
    msgpack_pack_array(pk, ids->n);
    for (size_t i = 0; i < ids->n; i++) msgpack_pack_int32(pk, ids->v[i]);
}

static void kv_bool(msgpack_packer *pk, const char *k, bool v)
{
    mp_pack_cstr(pk, k);
    v ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

static void kv_double(msgpack_packer *pk, const char *k, double v)
{
    mp_pack_cstr(pk, k);
    isfinite(v) ? msgpack_pack_double(pk, v) : msgpack_pack_nil(pk);
}

static void pack_kl_stats(msgpack_packer *pk, const struct kl_stats *k)
{
    msgpack_pack_map(pk, 6);
    kv_double(pk, "mean", k->mean);
    kv_double(pk, "max", k->max);
    kv_double(pk, "p99.9", k->p999);
    kv_double(pk, "p99", k->p99);
    kv_double(pk, "median", k->median);
    kv_double(pk, "min", k->min);
}

static void pack_prompt(msgpack_packer *pk, const struct prompt_check *p)
{
    uint32_t fields = 11 + (p->has_reference ? 4 : 0) + (p->pass ? 0 : 1) + (p->reference_judged ? 1 : 0);
    msgpack_pack_map(pk, fields);
    mp_pack_cstr(pk, "prompt");
    mp_pack_cstr(pk, p->prompt);
    mp_pack_cstr(pk, "prompt_ids");
    pack_ids(pk, &p->gen.prompt_ids);
    mp_pack_cstr(pk, "ids");
    pack_ids(pk, &p->gen.ids);
    mp_pack_cstr(pk, "text");
    msgpack_pack_str_with_body(pk, p->gen.text.data, p->gen.text.len);
    mp_pack_cstr(pk, "stop_reason");
    mp_pack_cstr(pk, stop_reason_name(p->gen.reason));
    mp_pack_cstr(pk, "criteria");
    msgpack_pack_map(pk, 5);
    kv_bool(pk, "non_empty", p->j.non_empty);
    kv_bool(pk, "valid_utf8", p->j.valid_utf8);
    kv_bool(pk, "finite", p->j.finite);
    kv_bool(pk, "coherent", p->j.coherent);
    kv_bool(pk, "deterministic", p->j.deterministic);
    mp_pack_cstr(pk, "figures");
    msgpack_pack_map(pk, 4);
    kv_double(pk, "prompt_perplexity", p->j.prompt_ppl);
    kv_double(pk, "output_perplexity", p->j.output_ppl);
    kv_double(pk, "repeated_fraction", p->j.repeated_fraction);
    kv_double(pk, "printable", p->j.printable);
    mp_pack_cstr(pk, "incoherence");
    p->j.incoherence ? mp_pack_cstr(pk, p->j.incoherence) : msgpack_pack_nil(pk);
    if (p->has_reference) {
        kv_double(pk, "kl_mean", p->kl_mean);
        kv_double(pk, "kl_max", p->kl_max);
        kv_double(pk, "top1_agreement", p->top1);
        mp_pack_cstr(pk, "kl");
        pack_kl_stats(pk, &p->kls);
    }
    if (!p->pass) {
        mp_pack_cstr(pk, "evidence");
        msgpack_pack_map(pk, 2 + (p->reference_judged ? 1 : 0));
        kv_bool(pk, "tokenizer_round_trips", p->ev.round_trips);
        kv_bool(pk, "prompt_misread", p->j.misread);
        if (p->reference_judged) kv_bool(pk, "reference_fails_too", p->ev.reference_fails_too);
    }
    if (p->reference_judged) {
        mp_pack_cstr(pk, "reference_text");
        msgpack_pack_str_with_body(pk, p->ref_text.data, p->ref_text.len);
    }
    mp_pack_cstr(pk, "diagnosis");
    p->diagnosis ? mp_pack_cstr(pk, p->diagnosis) : msgpack_pack_nil(pk);
    kv_bool(pk, "quality", p->quality_ok);
    kv_bool(pk, "pass", p->pass);
}

void check_write_record(struct stream_writer *w, const struct check_report *r, const struct check_options *o,
                        const char *library, const char *load_error, const char *diagnosis)
{
    struct rec_builder b;
    rb_init(&b, "check");
    if (library) rb_str(&b, "library", library);
    rb_bool(&b, "pass", r && r->pass && !load_error);
    if (diagnosis) rb_str(&b, "diagnosis", diagnosis);
    else rb_nil(&b, "diagnosis");
    if (load_error) rb_str(&b, "error", load_error);
    msgpack_packer *pk = rb_key(&b, "settings");
    msgpack_pack_map(pk, 6);
    kv_bool(pk, "raw", o->raw);
    kv_double(pk, "temperature", o->sampling.temperature);
    kv_double(pk, "top_p", o->sampling.top_p);
    mp_pack_cstr(pk, "seed");
    msgpack_pack_uint64(pk, o->seed);
    mp_pack_cstr(pk, "max_tokens");
    msgpack_pack_uint64(pk, o->max_tokens);
    kv_double(pk, "repetition_penalty", o->sampling.repetition_penalty);
    pk = rb_key(&b, "prompts");
    msgpack_pack_array(pk, r ? r->n : 0);
    for (size_t i = 0; r && i < r->n; i++) pack_prompt(pk, &r->prompts[i]);
    if (r && r->has_reference) {
        pk = rb_key(&b, "reference");
        msgpack_pack_map(pk, 5);
        kv_double(pk, "kl_mean", r->kl_mean);
        kv_double(pk, "top1_agreement", r->top1);
        kv_double(pk, "perplexity", r->ppl);
        kv_double(pk, "perplexity_reference", r->ppl_reference);
        mp_pack_cstr(pk, "kl");
        pack_kl_stats(pk, &r->kls);
    }
    if (r && r->fit.measured) {
        pk = rb_key(&b, "scale_fit");
        msgpack_pack_map(pk, 6);
        mp_pack_cstr(pk, "layers");
        msgpack_pack_uint64(pk, r->fit.layers);
        kv_double(pk, "lowest", r->fit.lowest);
        mp_pack_cstr(pk, "lowest_layer");
        r->fit.lowest_name ? mp_pack_cstr(pk, r->fit.lowest_name) : msgpack_pack_nil(pk);
        kv_double(pk, "highest", r->fit.highest);
        mp_pack_cstr(pk, "highest_layer");
        r->fit.highest_name ? mp_pack_cstr(pk, r->fit.highest_name) : msgpack_pack_nil(pk);
        kv_bool(pk, "pass", r->fit.pass);
    }
    rb_write(&b, w);
}

static void quote(char *out, size_t n, const char *s)
{
    size_t k = 0;
    for (; *s && k + 4 < n; s++) out[k++] = *s == '\n' ? ' ' : *s;
    if (*s && k >= 3) strcpy(out + k - 3, "...");
    else out[k] = 0;
}

void check_print_summary(const struct check_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        const struct prompt_check *p = &r->prompts[i];
        char prompt[48], text[80];
        quote(prompt, sizeof prompt, p->prompt);
        quote(text, sizeof text, p->gen.text.data);
        note("%s prompt %zu \"%s\": %zu tokens (%s), prompt perplexity %.1f, output perplexity %.2f: \"%s\"",
             p->pass ? "PASS" : "FAIL", i + 1, prompt, p->gen.ids.n, stop_reason_name(p->gen.reason),
             p->j.prompt_ppl, p->j.output_ppl, text);
        if (!p->j.non_empty) note("  empty output");
        if (!p->j.valid_utf8) note("  broken UTF-8 or replacement characters in the output");
        if (!p->j.finite) note("  non-finite logits");
        if (!p->j.coherent) note("  incoherent: %s", p->j.incoherence);
        if (!p->j.deterministic) note("  a second run with the same seed gave other tokens");
        if (p->has_reference)
            note("  against the reference: KL %.4f nats (max %.4f), top-1 agreement %.1f%%%s", p->kl_mean, p->kl_max,
                 100 * p->top1, p->quality_ok ? "" : " (degraded)");
        if (p->has_reference && p->nkl)
            note("  KL per token: 99.9%% %.4f, 99%% %.4f, median %.4f, min %.4f (%zu tokens)", p->kls.p999,
                 p->kls.p99, p->kls.median, p->kls.min, p->nkl);
        if (!p->pass && !p->ev.round_trips) note("  the tokenizer does not give the prompt's text back");
        if (p->reference_judged) {
            char ref[80];
            quote(ref, sizeof ref, p->ref_text.data ? p->ref_text.data : "");
            if (p->ev.reference_fails_too)
                note("  the unquantized reference fails the same way (%s): \"%s\"",
                     p->ref_j.incoherence ? p->ref_j.incoherence : "empty or broken text", ref);
            else
                note("  the unquantized reference passes: \"%s\"", ref);
        }
    }
    if (r->has_reference) {
        note("reference text perplexity: %.3f (reference %.3f); mean KL %.4f, top-1 agreement %.1f%%", r->ppl,
             r->ppl_reference, r->kl_mean, 100 * r->top1);
        note("KL divergence over every answer token: mean %.4f, max %.4f, 99.9%% %.4f, 99%% %.4f, median %.4f, "
             "min %.4f",
             r->kls.mean, r->kls.max, r->kls.p999, r->kls.p99, r->kls.median, r->kls.min);
    }
    if (r->fit.measured) {
        const struct scale_fit *f = &r->fit;
        note("activation scales: these prompts call for %.3g to %.3g times the stored ones (%zu FP8 layers)%s",
             f->lowest, f->highest, f->layers, f->pass ? "" : " (wrong)");
        if (f->lowest < JUDGE_SCALE_FIT_MIN)
            note("  %s: the stored scale is %.0f times too large: its activations reach %.3g of the FP8 range's %g",
                 f->lowest_name, 1 / f->lowest, f->lowest * r->fit.fp8_max, r->fit.fp8_max);
        if (!(f->highest <= JUDGE_SCALE_FIT_MAX))
            note("  %s: the stored scale is %.0f times too small: its activations saturate the FP8 range",
                 f->highest_name, f->highest);
    }
    if (r->pass) note("%zu of %zu prompts pass", r->passed, r->n);
    else if (r->passed == r->n)
        note("%zu of %zu prompts pass, but the activation scales are wrong (degraded); likely stage: %s", r->passed,
             r->n, r->diagnosis ? r->diagnosis : "unknown");
    else if (r->diagnosis && !strcmp(r->diagnosis, "source model"))
        note("%zu of %zu prompts pass; likely stage: source model (its unquantized weights fail the same way; "
             "the pipeline did not break it)",
             r->passed, r->n);
    else note("%zu of %zu prompts pass; likely stage: %s", r->passed, r->n, r->diagnosis ? r->diagnosis : "unknown");
}
