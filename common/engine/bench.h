/* The engine's speed report (mlc-check --bench), in the manner of
 * llama-bench: prompt processing (pp N: N tokens prefilled into an empty
 * sequence) and text generation (tg N: N tokens decoded one at a time from
 * an empty sequence), each repeated, for one or more thread counts. Beside
 * every tg figure it prints the memory-bandwidth bound measured in the same
 * run: the bytes a decode step reads (weights and KV cache) against what a
 * plain read of memory reaches with as many threads, probed between the
 * repetitions, since on a shared machine only a ratio means anything. */
#ifndef MLC_BENCH_H
#define MLC_BENCH_H

#include <stdio.h>

#include "common/engine/engine.h"

struct bench_options {
    const char *tests;           /* "pp512,tg128" */
    int repeat;                  /* repetitions of each test (5) */
    const int *threads;          /* thread counts to run */
    int nthreads;
};

/* Open the engine once per thread count (o->threads is ignored), run the
 * tests, print the table to out. -1 with an error. */
int bench_run(const struct engine_options *o, const struct bench_options *b, FILE *out);

/* Read bandwidth of `threads` threads over a buffer of `bytes` (larger than
 * the caches), in GB/s: the best of `passes` passes. */
double bench_bandwidth(struct pool *p, const struct kernel_set *k, size_t bytes, int passes);

/* "pp512,tg128" → kinds and sizes; -1 with an error on a bad list. */
int bench_parse_tests(const char *s, char kinds[][3], long *sizes, int max, int *n);

#endif
