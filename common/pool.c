#include "common/pool.h"
#include "common/buf.h"
#include "common/err.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* How long an idle worker watches for the next loop before it sleeps, and
 * after how long it yields its core between looks. */
#define SPIN_NS 1000000
#define YIELD_AFTER_NS 50000

struct job {
    void (*fn)(void *arg);
    void *arg;
    struct job *next;
};

/* One pool_for. Two of them alternate (by the parity of the loop's
 * number), so that a worker still reading the last loop's fields never
 * sees them rewritten under it. The fields are atomics for the same
 * reason: a late worker may read them while the next loop writes them,
 * and only uses what it read once its claim proves it current. */
struct loop {
    _Atomic(void (*)(void *, size_t, int)) fn;
    _Atomic(void (*)(void *, size_t)) plain;
    _Atomic(void *) ctx;
    atomic_size_t n;
    atomic_size_t done;        /* items finished */
};

struct worker_arg {
    struct pool *p;
    int index;                 /* 1.. for pool_for helpers */
};

struct pool {
    int nthreads;              /* including the caller */
    int nworkers;              /* threads started */
    int helpers;               /* workers that take part in pool_for: nthreads - 1 */
    pthread_t *threads;
    struct worker_arg *args;
    pthread_mutex_t lock;
    pthread_cond_t work;       /* a job was queued, a loop started, or shutdown */
    pthread_cond_t idle;       /* pending reached zero */
    struct job *head, *tail;
    size_t pending;            /* queued + running */
    atomic_size_t queued;      /* jobs waiting, for spinning workers */
    atomic_int shutdown;
    /* pool_for: claim = (loop number << 32) | next item. A worker claims
     * item i of loop g by moving the claim from (g, i) to (g, i + 1); the
     * loop is over when every item is done, whoever ran it, so the caller
     * never waits for a worker that has not woken up yet. */
    pthread_mutex_t for_lock;  /* one loop at a time */
    struct loop loops[2];
    _Atomic uint64_t claim;
    uint32_t number;           /* the last loop's number (under for_lock) */
    atomic_int sleepers;       /* workers blocked on `work` */
};

int cpu_count(void)
{
    const char *env = getenv("MLC_NUM_THREADS");
    if (env && *env) {
        int n = atoi(env);
        if (n >= 1 && n <= 1024) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n >= 1 ? (int)n : 1;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Run items of the current loop until none is left to claim; returns the
 * loop's number. */
static uint32_t take_items(struct pool *p, int worker)
{
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        uint32_t g = (uint32_t)(c >> 32);
        size_t i = (size_t)(uint32_t)c;
        struct loop *l = &p->loops[g & 1];
        if (i >= atomic_load_explicit(&l->n, memory_order_relaxed)) return g;
        /* a successful claim proves loop g still runs, so the n just read,
         * and the fields read below, are loop g's */
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acquire, memory_order_acquire))
            continue;
        void (*fn)(void *, size_t, int) = atomic_load_explicit(&l->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&l->ctx, memory_order_relaxed);
        if (fn) fn(ctx, i, worker);
        else atomic_load_explicit(&l->plain, memory_order_relaxed)(ctx, i);
        atomic_fetch_add_explicit(&l->done, 1, memory_order_release);
        c = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

enum wake { WAKE_NONE = -1, WAKE_LOOP, WAKE_JOB, WAKE_SHUTDOWN };

static enum wake ready(struct pool *p, bool helper, uint32_t seen)
{
    if (helper && (uint32_t)(atomic_load(&p->claim) >> 32) != seen) return WAKE_LOOP;
    if (atomic_load_explicit(&p->queued, memory_order_relaxed)) return WAKE_JOB;
    if (atomic_load_explicit(&p->shutdown, memory_order_relaxed)) return WAKE_SHUTDOWN;
    return WAKE_NONE;
}

/* Wait for something to do: spin for a few tens of microseconds (the gaps
 * between a step's loops), then keep looking but yield the core at each
 * look (on a busy machine the thread waited for may be queued on this very
 * core), and after about a millisecond sleep. The sleeper count is raised
 * before the last look at the claim, and pool_for publishes a loop before
 * it reads the count, so one of the two always sees the other: no wake-up
 * is lost. */
static enum wake wait_for_work(struct pool *p, bool helper, uint32_t seen)
{
    int64_t start = 0;
    for (unsigned spin = 0;; spin++) {
        enum wake w = ready(p, helper, seen);
        if (w != WAKE_NONE) return w;
        if ((spin & 63) == 63) {
            int64_t t = now_ns();
            if (!start) start = t;
            else if (t - start > SPIN_NS) break;
            else if (t - start > YIELD_AFTER_NS) sched_yield();
        }
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add(&p->sleepers, 1);
    enum wake w;
    while ((w = ready(p, helper, seen)) == WAKE_NONE) pthread_cond_wait(&p->work, &p->lock);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->lock);
    return w;
}

static void *worker(void *arg)
{
    struct worker_arg *wa = arg;
    struct pool *p = wa->p;
    bool helper = wa->index <= p->helpers;
    uint32_t seen = 0; /* loop 0 is none */
    for (;;) {
        enum wake w = wait_for_work(p, helper, seen);
        if (w == WAKE_LOOP) {
            seen = take_items(p, wa->index);
            continue;
        }
        if (w == WAKE_SHUTDOWN) break;
        pthread_mutex_lock(&p->lock);
        struct job *j = p->head;
        if (!j) { /* another worker took it */
            pthread_mutex_unlock(&p->lock);
            continue;
        }
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        atomic_fetch_sub(&p->queued, 1);
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0) pthread_cond_broadcast(&p->idle);
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

struct pool *pool_create(int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    struct pool *p = xcalloc(1, sizeof *p);
    p->nthreads = nthreads;
    p->helpers = nthreads - 1;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->for_lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    /* Submitted jobs need at least one worker even in a 1-thread pool. */
    p->nworkers = nthreads > 1 ? nthreads - 1 : 1;
    p->threads = xcalloc((size_t)p->nworkers, sizeof *p->threads);
    p->args = xcalloc((size_t)p->nworkers, sizeof *p->args);
    for (int i = 0; i < p->nworkers; i++) {
        p->args[i] = (struct worker_arg){p, i + 1};
        if (pthread_create(&p->threads[i], NULL, worker, &p->args[i]) != 0) die("cannot start a thread");
    }
    return p;
}

int pool_size(const struct pool *p)
{
    return p->nthreads;
}

void pool_destroy(struct pool *p)
{
    if (!p) return;
    pool_wait(p);
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->shutdown, 1);
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nworkers; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_mutex_destroy(&p->for_lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p->threads);
    free(p->args);
    free(p);
}

void pool_submit(struct pool *p, void (*fn)(void *arg), void *arg)
{
    struct job *j = xmalloc(sizeof *j);
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail) p->tail->next = j;
    else p->head = j;
    p->tail = j;
    p->pending++;
    atomic_fetch_add(&p->queued, 1);
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

void pool_wait(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->pending) pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

static void run_for(struct pool *p, size_t n, void (*fn)(void *, size_t, int), void (*plain)(void *, size_t),
                    void *ctx)
{
    if (n == 0) return;
    if (p->helpers == 0 || n == 1 || n > UINT32_MAX) { /* (an item index has 32 bits in the claim) */
        for (size_t i = 0; i < n; i++) {
            if (fn) fn(ctx, i, 0);
            else plain(ctx, i);
        }
        return;
    }
    pthread_mutex_lock(&p->for_lock);
    uint32_t g = ++p->number;
    if (g == 0) g = ++p->number; /* 0 means no loop */
    struct loop *l = &p->loops[g & 1];
    atomic_store_explicit(&l->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&l->plain, plain, memory_order_relaxed);
    atomic_store_explicit(&l->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&l->n, n, memory_order_relaxed);
    atomic_store_explicit(&l->done, 0, memory_order_relaxed);
    atomic_store(&p->claim, (uint64_t)g << 32); /* publishes the fields above */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->lock);
        pthread_cond_broadcast(&p->work);
        pthread_mutex_unlock(&p->lock);
    }
    take_items(p, 0);
    /* the last items may still run on a worker; on a busy machine it may
     * have lost its core, so stop hogging ours after a while */
    for (unsigned spin = 0; atomic_load_explicit(&l->done, memory_order_acquire) < n; spin++) {
        if (spin > 1024) sched_yield();
        else cpu_relax();
    }
    pthread_mutex_unlock(&p->for_lock);
}

void pool_for(struct pool *p, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
    run_for(p, n, NULL, fn, ctx);
}

void pool_for_workers(struct pool *p, size_t n, void (*fn)(void *ctx, size_t i, int worker), void *ctx)
{
    run_for(p, n, fn, NULL, ctx);
}
