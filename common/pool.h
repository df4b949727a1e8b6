/* A small fixed-size thread pool.
 *
 * pool_for() is the common case: run fn(ctx, i) for every i < n, spread over
 * the workers, and return when all are done. pool_for_workers() is the same
 * with the index of the thread running each call (0 is the caller, then
 * 1..size-1), for per-thread scratch memory. pool_submit()/pool_wait()
 * queue independent jobs (pipelines that overlap reading, computing and
 * writing). The calling thread takes part in pool_for, so a pool of 1
 * thread has no worker at all and runs everything in the caller.
 *
 * pool_for allocates nothing and makes no system call while the workers are
 * awake: after a loop they spin briefly (about a millisecond) watching for
 * the next one before they sleep, so an engine that runs hundreds of short
 * loops per token pays a cache-line exchange for each, not a wake-up. */
#ifndef MLC_POOL_H
#define MLC_POOL_H

#include <stddef.h>

struct pool;

/* Threads to use: $MLC_NUM_THREADS if set, else the online CPUs. */
int cpu_count(void);

struct pool *pool_create(int nthreads);
void pool_destroy(struct pool *p);
int pool_size(const struct pool *p);

void pool_for(struct pool *p, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);
void pool_for_workers(struct pool *p, size_t n, void (*fn)(void *ctx, size_t i, int worker), void *ctx);

void pool_submit(struct pool *p, void (*fn)(void *arg), void *arg);
/* Wait until every submitted job has finished. */
void pool_wait(struct pool *p);

#endif
