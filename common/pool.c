#include "common/pool.h"
#include "common/buf.h"
#include "common/err.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct job {
    void (*fn)(void *arg);
    void *arg;
    struct job *next;
};

struct pool {
    int nthreads;              /* including the caller */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t work;       /* a job was queued, or shutdown */
    pthread_cond_t idle;       /* pending reached zero */
    struct job *head, *tail;
    size_t pending;            /* queued + running */
    int shutdown;
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

static void *worker(void *arg)
{
    struct pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->shutdown) pthread_cond_wait(&p->work, &p->lock);
        if (!p->head) break;
        struct job *j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        pthread_mutex_unlock(&p->lock);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->lock);
        if (--p->pending == 0) pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

struct pool *pool_create(int nthreads)
{
    if (nthreads < 1) nthreads = 1;
    struct pool *p = xcalloc(1, sizeof *p);
    p->nthreads = nthreads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    /* Submitted jobs need at least one worker even in a 1-thread pool. */
    int workers = nthreads > 1 ? nthreads - 1 : 1;
    p->threads = xcalloc((size_t)workers, sizeof *p->threads);
    for (int i = 0; i < workers; i++)
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) die("cannot start a thread");
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
    p->shutdown = 1;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->lock);
    int workers = p->nthreads > 1 ? p->nthreads - 1 : 1;
    for (int i = 0; i < workers; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    free(p->threads);
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
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->lock);
}

void pool_wait(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->pending) pthread_cond_wait(&p->idle, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

struct for_ctx {
    void (*fn)(void *ctx, size_t i);
    void *ctx;
    size_t n;
    atomic_size_t next;
};

static void for_worker(void *arg)
{
    struct for_ctx *f = arg;
    for (;;) {
        size_t i = atomic_fetch_add(&f->next, 1);
        if (i >= f->n) break;
        f->fn(f->ctx, i);
    }
}

void pool_for(struct pool *p, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
    struct for_ctx f = {fn, ctx, n, 0};
    int helpers = p->nthreads - 1;
    if ((size_t)helpers > n) helpers = (int)n;
    for (int i = 0; i < helpers; i++) pool_submit(p, for_worker, &f);
    for_worker(&f);
    pool_wait(p);
}
