#include "common/engine/bench.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/pool.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PROBE_BYTES ((size_t)256 << 20)
#define PROBE_CHUNK ((size_t)1 << 20)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

struct probe {
    const struct kernel_set *k;
    const unsigned char *buf;
    atomic_ullong sink;          /* keeps the reads from being optimised away */
};

static void probe_chunk(void *ctx, size_t i)
{
    struct probe *p = ctx;
    atomic_fetch_add_explicit(&p->sink, p->k->read_sum(p->buf + i * PROBE_CHUNK, PROBE_CHUNK), memory_order_relaxed);
}

static double bandwidth_of(struct pool *pool, const struct kernel_set *k, const unsigned char *buf, size_t bytes,
                           int passes)
{
    struct probe p = {k, buf, 0};
    double best = 0;
    for (int i = 0; i < passes; i++) {
        double t0 = now();
        pool_for(pool, bytes / PROBE_CHUNK, probe_chunk, &p);
        double gbs = (double)(bytes / PROBE_CHUNK * PROBE_CHUNK) / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    return best;
}

/* The probe's memory is asked for in huge pages, as the weights' mappings
 * are (tensor_cache.c): the bound compares like with like, and on a
 * virtual machine 4 KiB pages can cost a read far more than the memory. */
static unsigned char *probe_buffer(size_t bytes)
{
    unsigned char *buf = NULL;
    if (posix_memalign((void **)&buf, (size_t)2 << 20, bytes) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(buf, bytes, MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < bytes; i += 4096) memset(buf + i, (int)(i >> 12), 4096);
    return buf;
}

double bench_bandwidth(struct pool *p, const struct kernel_set *k, size_t bytes, int passes)
{
    bytes = bytes / PROBE_CHUNK * PROBE_CHUNK;
    if (!bytes) bytes = PROBE_CHUNK;
    unsigned char *buf = probe_buffer(bytes);
    if (!buf) return 0;
    double gbs = bandwidth_of(p, k, buf, bytes, passes);
    free(buf);
    return gbs;
}

int bench_parse_tests(const char *s, char kinds[][3], long *sizes, int max, int *n)
{
    *n = 0;
    while (*s) {
        if (*s == ',') {
            s++;
            continue;
        }
        if ((strncmp(s, "pp", 2) && strncmp(s, "tg", 2)) || *n == max)
            return fail("--bench: tests are ppN or tgN separated by commas, not '%s'", s);
        char *end;
        long v = strtol(s + 2, &end, 10);
        if (end == s + 2 || v < 1 || v > 1 << 20 || (*end && *end != ','))
            return fail("--bench: '%.*s' needs a token count from 1 to 1048576", (int)strcspn(s, ","), s);
        memcpy(kinds[*n], s, 2);
        kinds[*n][2] = 0;
        sizes[(*n)++] = v;
        s = end;
    }
    if (!*n) return fail("--bench: no tests");
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct figures {
    double mean, sd, min, median, max;
};

static struct figures summarize(double *v, int n)
{
    struct figures f = {0};
    double sum = 0, ss = 0;
    for (int i = 0; i < n; i++) sum += v[i];
    f.mean = sum / n;
    for (int i = 0; i < n; i++) ss += (v[i] - f.mean) * (v[i] - f.mean);
    f.sd = n > 1 ? sqrt(ss / (n - 1)) : 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    f.min = v[0];
    f.max = v[n - 1];
    f.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return f;
}

/* Logical parameters and stored bytes of every weight the engine bound,
 * each tensor counted once. */
static void model_size(const struct engine *e, double *params, double *bytes)
{
    const struct module *m = e->module;
    *params = *bytes = 0;
    for (int fi = 0; fi < m->nfns; fi++) {
        const struct function *f = &m->fns[fi];
        for (int v = 0; v < f->nvalues; v++) {
            if (f->values[v].kind != VAL_PARAM) continue;
            bool seen = false;
            for (int fj = 0; fj <= fi && !seen; fj++)
                for (int u = 0; u < m->fns[fj].nvalues && !seen; u++)
                    seen = (fj < fi || u < v) && m->fns[fj].values[u].kind == VAL_PARAM &&
                           !strcmp(m->fns[fj].values[u].name, f->values[v].name);
            if (seen) continue;
            const struct bound_weight *w = &e->ex.bound[fi][v];
            *params += (double)w->rows * (double)w->cols;
            for (int p = 0; p < w->nparts; p++) *bytes += (double)w->parts[p]->nbytes;
        }
    }
}

static uint32_t next_id(uint64_t *state, int64_t vocab)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((*state >> 33) % (uint64_t)vocab);
}

/* One repetition: seconds for the test. */
static int run_test(struct engine *e, char kind, long n, int32_t *ids, float *logits, double *seconds)
{
    int seq = engine_new_sequence(e);
    if (seq < 0) return -1;
    uint64_t state = (uint64_t)n * 7919;
    for (long i = 0; i < n; i++) ids[i] = (int32_t)next_id(&state, e->vocab_size);
    double t0 = now();
    int rc = 0;
    if (kind == 'p') {
        rc = engine_prefill(e, seq, ids, n, logits);
    } else {
        for (long i = 0; i < n && rc == 0; i++) rc = engine_decode(e, &seq, &ids[i], 1, logits);
    }
    *seconds = now() - t0;
    engine_free_sequence(e, seq);
    return rc;
}

static int bench_threads(const struct engine_options *o, int threads, const char kinds[][3], const long *sizes,
                         int ntests, int repeat, unsigned char *probe, bool header, FILE *out)
{
    struct engine_options eo = *o;
    eo.threads = threads;
    eo.mode = MODE_INTERACTIVE;
    struct engine e;
    if (engine_open(&e, &eo, NULL) != 0) return -1;
    if (e.vk) { /* the bound below is the CPU's memory bandwidth */
        engine_close(&e);
        return fail("--bench measures the CPU kernels: add --device cpu (on a Vulkan device, time kernels with "
                    "--profile; tests/bench/vulkan.sh)");
    }
    long longest = 0;
    for (int t = 0; t < ntests; t++) {
        if (sizes[t] > e.ex.kv.capacity) {
            long long capacity = (long long)e.ex.kv.capacity;
            engine_close(&e);
            return fail("--bench: %s%ld is longer than the context window (%lld tokens)", kinds[t], sizes[t], capacity);
        }
        if (sizes[t] > longest) longest = sizes[t];
    }
    int32_t *ids = xmalloc(sizeof(int32_t) * (size_t)longest);
    float *logits = xmalloc(sizeof(float) * (size_t)e.vocab_size);
    double params, bytes;
    model_size(&e, &params, &bytes);
    double weights_read = (double)executor_decode_weight_bytes(&e.ex);
    double kv_per_position = 2.0 * e.module->dims.num_hidden_layers * e.ex.kv.n_kv_heads * e.ex.kv.head_dim *
                             (double)dtype_size(e.ex.kv.dtype);
    if (header) {
        fprintf(out, "model: %s %s, %.2f B parameters, %.1f MiB of weights; a decode step reads %.1f MiB + %.1f KiB "
                     "of KV cache per position\n",
                e.cfg.model_type, e.cfg.quantization, params / 1e9, bytes / 1048576.0, weights_read / 1048576.0,
                kv_per_position / 1024.0);
        fprintf(out, "| kernels  | threads |   test |            t/s |      min |   median |      max | bandwidth GB/s "
                     "| bound t/s | of bound |\n");
        fprintf(out, "| -------- | ------: | -----: | -------------: | -------: | -------: | -------: | -------------: "
                     "| --------: | -------: |\n");
    }
    double load = e.stats.load_seconds;
    /* warm-up: every weight page touched, the pool awake */
    double unused;
    int rc = run_test(&e, 't', 2, ids, logits, &unused);
    if (rc == 0) rc = run_test(&e, 'p', longest < 8 ? longest : 8, ids, logits, &unused);
    for (int t = 0; t < ntests && rc == 0; t++) {
        double *tps = xcalloc((size_t)repeat, sizeof *tps), *bw = xcalloc((size_t)repeat, sizeof *bw);
        for (int r = 0; r < repeat && rc == 0; r++) {
            bw[r] = bandwidth_of(e.ex.pool, e.ex.k, probe, PROBE_BYTES, 3);
            double s;
            rc = run_test(&e, kinds[t][0], sizes[t], ids, logits, &s);
            tps[r] = (double)sizes[t] / s;
        }
        if (rc == 0) {
            struct figures f = summarize(tps, repeat), b = summarize(bw, repeat);
            char band[32] = "", bound[32] = "", of[32] = "";
            snprintf(band, sizeof band, "%.1f (%.0f-%.0f)", b.median, b.min, b.max);
            if (kinds[t][0] == 't') {
                double per_token = weights_read + kv_per_position * (double)(sizes[t] + 1) / 2;
                double limit = b.median * 1e9 / per_token;
                snprintf(bound, sizeof bound, "%.1f", limit);
                snprintf(of, sizeof of, "%.0f%%", 100 * f.median / limit);
            }
            char mean[32], name[64];
            snprintf(mean, sizeof mean, "%.2f ± %.2f", f.mean, f.sd);
            snprintf(name, sizeof name, "%s%ld", kinds[t], sizes[t]);
            fprintf(out, "| %-8s | %7d | %6s | %15s | %8.2f | %8.2f | %8.2f | %14s | %9s | %8s |\n", e.ex.k->name,
                    threads, name, mean, f.min, f.median, f.max, band, bound, of);
            fflush(out);
        }
        free(tps);
        free(bw);
    }
    if (rc == 0) fprintf(out, "load %.3f s with %d thread%s\n", load, threads, threads == 1 ? "" : "s");
    free(ids);
    free(logits);
    engine_close(&e);
    return rc;
}

int bench_run(const struct engine_options *o, const struct bench_options *b, FILE *out)
{
    char kinds[16][3];
    long sizes[16];
    int ntests;
    if (bench_parse_tests(b->tests, kinds, sizes, 16, &ntests) != 0) return -1;
    unsigned char *probe = probe_buffer(PROBE_BYTES);
    if (!probe) return fail("--bench: cannot allocate the %zu MiB bandwidth probe", PROBE_BYTES >> 20);
    int rc = 0;
    for (int i = 0; i < b->nthreads && rc == 0; i++)
        rc = bench_threads(o, b->threads[i], kinds, sizes, ntests, b->repeat, probe, i == 0, out);
    free(probe);
    return rc;
}
