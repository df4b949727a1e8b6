#include "common/engine/sampler.h"
#include "common/buf.h"
#include "common/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* No fused multiply-adds may appear here: they round differently from a
 * multiply then an add, and the point is identical results everywhere.
 * The build compiles ISO C (-std=c11), where GCC does not contract. */

struct sampler_params sampler_defaults(void)
{
    return (struct sampler_params){.temperature = 1.0, .top_p = 1.0, .repetition_penalty = 1.0};
}

int sampler_check(const struct sampler_params *p)
{
    if (!(p->temperature >= 0) || !isfinite(p->temperature)) return fail("temperature must be a number >= 0");
    if (!(p->top_p > 0 && p->top_p <= 1)) return fail("top_p must be in (0, 1]");
    if (!(p->repetition_penalty > 0) || !isfinite(p->repetition_penalty))
        return fail("repetition_penalty must be > 0");
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return fail("presence_penalty and frequency_penalty must be finite");
    return 0;
}

/* ---- generator ---- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void sampler_seed(struct sampler_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sampler_next(struct sampler_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sampler_uniform(struct sampler_rng *r)
{
    return (double)(sampler_next(r) >> 11) * 0x1.0p-53;
}

/* ---- exp without libm ---- */

double sampler_exp(double x)
{
    if (x != x) return x;
    if (x > 709.0) return INFINITY;
    if (x < -745.0) return 0.0;
    /* x = k ln2 + r, |r| <= ln2/2; ln2 split in two so k*ln2_hi is exact */
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    const double inv_ln2 = 1.44269504088896338700e+00;
    double kd = x * inv_ln2;
    kd = kd < 0 ? -(double)(long long)(-kd + 0.5) : (double)(long long)(kd + 0.5);
    double r = (x - kd * ln2_hi) - kd * ln2_lo;
    /* Taylor series to r^13: |r| < 0.35 makes the tail below 1e-17 */
    double term = 1.0, sum = 1.0;
    for (int i = 1; i <= 13; i++) {
        term = term * r / (double)i;
        sum = sum + term;
    }
    return ldexp(sum, (int)kd);
}

/* ---- penalties ---- */

void penalty_init(struct penalty_state *ps, size_t vocab)
{
    ps->count = xcalloc(vocab ? vocab : 1, sizeof *ps->count);
    ps->seen = xmalloc((vocab ? vocab : 1) * sizeof *ps->seen);
    ps->nseen = 0;
    ps->vocab = vocab;
}

void penalty_add(struct penalty_state *ps, int32_t id)
{
    if (id < 0 || (size_t)id >= ps->vocab) return;
    if (ps->count[id]++ == 0) ps->seen[ps->nseen++] = id;
}

void penalty_reset(struct penalty_state *ps)
{
    for (size_t i = 0; i < ps->nseen; i++) ps->count[ps->seen[i]] = 0;
    ps->nseen = 0;
}

void penalty_free(struct penalty_state *ps)
{
    free(ps->count);
    free(ps->seen);
    memset(ps, 0, sizeof *ps);
}

void sampler_process_logits(const struct sampler_params *p, float *logits, size_t n, const struct penalty_state *ps)
{
    bool penalise = p->presence_penalty != 0.0 || p->frequency_penalty != 0.0 || p->repetition_penalty != 1.0;
    if (penalise && ps) {
        /* float arithmetic, as MLC's kernel does it */
        float presence = (float)p->presence_penalty, frequency = (float)p->frequency_penalty;
        float rep = (float)p->repetition_penalty;
        for (size_t i = 0; i < ps->nseen; i++) {
            int32_t id = ps->seen[i];
            if ((size_t)id >= n) continue;
            float v = logits[id];
            v -= presence + (float)ps->count[id] * frequency;
            v = v < 0.0f ? v * rep : v / rep;
            logits[id] = v;
        }
    }
    if (p->active_vocab_size && p->active_vocab_size < n)
        for (size_t i = p->active_vocab_size; i < n; i++) logits[i] = -INFINITY;
}

struct cand {
    double p;
    int32_t id;
};

static int by_prob_desc(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t sampler_sample(const struct sampler_params *p, float *logits, size_t n, const struct penalty_state *ps,
                       struct sampler_rng *rng)
{
    bool greedy = p->temperature <= 1e-5 || p->top_k == 1;
    if (!greedy && !rng) die("sampler: sampling needs a random generator");
    return sampler_sample_u(p, logits, n, ps, greedy ? 0.0 : sampler_uniform(rng));
}

int32_t sampler_sample_u(const struct sampler_params *p, float *logits, size_t n, const struct penalty_state *ps,
                         double uniform)
{
    sampler_process_logits(p, logits, n, ps);
    size_t limit = p->active_vocab_size && p->active_vocab_size < n ? p->active_vocab_size : n;
    int32_t best = -1;
    for (size_t i = 0; i < limit; i++)
        if (logits[i] != -INFINITY && logits[i] == logits[i] && (best < 0 || logits[i] > logits[best]))
            best = (int32_t)i;
    if (best < 0) return -1;
    if (p->temperature <= 1e-5 || p->top_k == 1) return best;

    /* softmax(logits / T), in double, summed in id order */
    double t = p->temperature, mx = (double)logits[best] / t;
    struct cand *c = xmalloc(limit * sizeof *c);
    size_t m = 0;
    double sum = 0;
    for (size_t i = 0; i < limit; i++) {
        if (logits[i] == -INFINITY || logits[i] != logits[i]) continue;
        double e = sampler_exp((double)logits[i] / t - mx);
        c[m++] = (struct cand){e, (int32_t)i};
        sum += e;
    }
    for (size_t i = 0; i < m; i++) c[i].p /= sum;

    bool sorted = false;
    if (p->top_k && p->top_k < m) {
        qsort(c, m, sizeof *c, by_prob_desc);
        sorted = true;
        m = p->top_k;
    }
    double keep = 0;
    if (p->top_p < 1.0 - 1e-5) {
        if (!sorted) qsort(c, m, sizeof *c, by_prob_desc);
        size_t k = 0;
        double cum = 0;
        while (k < m && cum < p->top_p) cum += c[k++].p;
        m = k;
        keep = cum;
    } else {
        for (size_t i = 0; i < m; i++) keep += c[i].p;
    }
    double u = uniform * keep;
    double cum = 0;
    int32_t pick = c[m - 1].id;
    for (size_t i = 0; i < m; i++) {
        cum += c[i].p;
        if (u < cum) {
            pick = c[i].id;
            break;
        }
    }
    free(c);
    return pick;
}
