/* membw: memory read bandwidth of this machine, as a yardstick printed
 * beside benchmark figures (a speed means little without what the machine
 * gave at the same moment).
 *
 *   membw [MIB] [THREADS] [REPS]     (defaults 1024 2 5)
 *
 * Sums MIB MiB of 64-bit words split across THREADS threads, REPS times;
 * prints the best and the median GB/s. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/cli.h"

struct part {
    const uint64_t *w;
    size_t n;
    uint64_t sum;
};

static void *sum_part(void *arg)
{
    struct part *p = arg;
    uint64_t s[4] = {0};
    size_t i = 0;
    for (; i + 4 <= p->n; i += 4)
        for (int k = 0; k < 4; k++) s[k] += p->w[i + k];
    for (; i < p->n; i++) s[0] += p->w[i];
    p->sum = s[0] + s[1] + s[2] + s[3];
    return NULL;
}

/* the sums, kept so that the reads cannot be optimized away */
volatile uint64_t sink;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    long mib = 1024, threads = 2, reps = 5;
    if (argc > 1) parse_int_option("MIB", argv[1], 1, 1 << 16, &mib);
    if (argc > 2) parse_int_option("THREADS", argv[2], 1, 256, &threads);
    if (argc > 3) parse_int_option("REPS", argv[3], 1, 1000, &reps);
    size_t n = (size_t)mib << 17;  /* 64-bit words */
    uint64_t *w = xmalloc(n * sizeof *w);
    for (size_t i = 0; i < n; i++) w[i] = i;
    double *gbs = xcalloc((size_t)reps, sizeof *gbs);
    struct part *parts = xcalloc((size_t)threads, sizeof *parts);
    pthread_t *tid = xcalloc((size_t)threads, sizeof *tid);
    for (long r = 0; r < reps; r++) {
        double t0 = now();
        for (long t = 0; t < threads; t++) {
            size_t a = n * (size_t)t / (size_t)threads, b = n * (size_t)(t + 1) / (size_t)threads;
            parts[t] = (struct part){w + a, b - a, 0};
            pthread_create(&tid[t], NULL, sum_part, &parts[t]);
        }
        for (long t = 0; t < threads; t++) {
            pthread_join(tid[t], NULL);
            sink += parts[t].sum;
        }
        gbs[r] = (double)(n * sizeof *w) / (now() - t0) / 1e9;
    }
    qsort(gbs, (size_t)reps, sizeof *gbs, cmp);
    printf("membw: %ld MiB, %ld threads: best %.1f GB/s, median %.1f GB/s\n", mib, threads, gbs[reps - 1],
           gbs[reps / 2]);
    free(w);
    free(gbs);
    free(parts);
    free(tid);
    return 0;
}
