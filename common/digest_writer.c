#include "digest_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "err.h"
#include "fsutil.h"

/* Four 1 MiB chunks: one filling, up to three queued for hashing. Large
 * enough that write(2) calls are few and the hasher rarely starves, small
 * enough for eight parallel downloads. */
#define CHUNK_SIZE (1u << 20)
#define NCHUNKS 4

enum chunk_state { CHUNK_FREE, CHUNK_FILLING, CHUNK_QUEUED };

struct digest_writer {
    int fd;
    unsigned which;
    uint64_t git_size;
    uint64_t offset;
    struct hasher sha256, md5, git;

    char *chunk[NCHUNKS];
    size_t len[NCHUNKS];
    int cur;                       /* the chunk being filled */
    size_t flushed;                /* bytes of it already written */

    pthread_mutex_t lock;          /* protects what follows */
    pthread_cond_t changed;
    enum chunk_state state[NCHUNKS];
    int queue[NCHUNKS];            /* full chunks in stream order */
    size_t qhead, qlen;
    bool busy;                     /* the thread is hashing a chunk */
    bool stop;
    bool thread_started;
    pthread_t thread;
};

static void digests_begin(struct digest_writer *w)
{
    if (w->which & DIGEST_SHA256) hasher_init(&w->sha256, HASH_SHA256);
    if (w->which & DIGEST_MD5) hasher_init(&w->md5, HASH_MD5);
    if (w->which & DIGEST_GIT_BLOB) {
        char header[32];
        int n = snprintf(header, sizeof header, "blob %llu", (unsigned long long)w->git_size);
        hasher_init(&w->git, HASH_SHA1);
        hasher_update(&w->git, header, (size_t)n + 1); /* with its NUL */
    }
}

static void digests_update(struct digest_writer *w, const char *data, size_t len)
{
    if (w->which & DIGEST_SHA256) hasher_update(&w->sha256, data, len);
    if (w->which & DIGEST_MD5) hasher_update(&w->md5, data, len);
    if (w->which & DIGEST_GIT_BLOB) hasher_update(&w->git, data, len);
}

static void digests_abort(struct digest_writer *w)
{
    if (w->which & DIGEST_SHA256) hasher_abort(&w->sha256);
    if (w->which & DIGEST_MD5) hasher_abort(&w->md5);
    if (w->which & DIGEST_GIT_BLOB) hasher_abort(&w->git);
}

static void *hash_thread(void *arg)
{
    struct digest_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->qlen && !w->stop) pthread_cond_wait(&w->changed, &w->lock);
        if (!w->qlen) break;
        int i = w->queue[w->qhead];
        w->qhead = (w->qhead + 1) % NCHUNKS;
        w->qlen--;
        w->busy = true;
        pthread_mutex_unlock(&w->lock);
        digests_update(w, w->chunk[i], w->len[i]);
        pthread_mutex_lock(&w->lock);
        w->state[i] = CHUNK_FREE;
        w->busy = false;
        pthread_cond_broadcast(&w->changed);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

struct digest_writer *digest_writer_new(int fd, unsigned which, uint64_t git_size)
{
    struct digest_writer *w = xcalloc(1, sizeof *w);
    w->fd = fd;
    w->which = which;
    w->git_size = git_size;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->changed, NULL);
    w->chunk[0] = xmalloc(CHUNK_SIZE);
    w->state[0] = CHUNK_FILLING;
    digests_begin(w);
    return w;
}

/* Wait until the hashing thread has digested every queued chunk. */
static void drain(struct digest_writer *w)
{
    pthread_mutex_lock(&w->lock);
    while (w->qlen || w->busy) pthread_cond_wait(&w->changed, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

/* Write the part of the current chunk not written yet. */
static int write_chunk(struct digest_writer *w)
{
    if (write_all(w->fd, w->chunk[w->cur] + w->flushed, w->len[w->cur] - w->flushed) != 0)
        return fail("write error: %s", strerror(errno));
    w->flushed = w->len[w->cur];
    return 0;
}

int digest_writer_flush(struct digest_writer *w)
{
    return write_chunk(w);
}

/* The current chunk is full: write it, queue it for hashing, take a free one. */
static int submit(struct digest_writer *w)
{
    if (write_chunk(w) != 0) return -1;
    if (!w->thread_started) {
        if (pthread_create(&w->thread, NULL, hash_thread, w) != 0)
            return fail("cannot start a hashing thread: %s", strerror(errno));
        w->thread_started = true;
    }
    pthread_mutex_lock(&w->lock);
    w->state[w->cur] = CHUNK_QUEUED;
    w->queue[(w->qhead + w->qlen) % NCHUNKS] = w->cur;
    w->qlen++;
    pthread_cond_broadcast(&w->changed);
    int next = -1;
    while (next < 0) {
        for (int i = 0; i < NCHUNKS && next < 0; i++)
            if (w->state[i] == CHUNK_FREE) next = i;
        if (next < 0) pthread_cond_wait(&w->changed, &w->lock);
    }
    w->state[next] = CHUNK_FILLING;
    pthread_mutex_unlock(&w->lock);
    if (!w->chunk[next]) w->chunk[next] = xmalloc(CHUNK_SIZE);
    w->cur = next;
    w->len[next] = 0;
    w->flushed = 0;
    return 0;
}

int digest_writer_add(struct digest_writer *w, const void *data, size_t len)
{
    const char *p = data;
    uint64_t end;
    if (!u64_add(w->offset, len, &end)) return fail("stream too long");
    while (len) {
        size_t n = CHUNK_SIZE - w->len[w->cur];
        if (n > len) n = len;
        memcpy(w->chunk[w->cur] + w->len[w->cur], p, n);
        w->len[w->cur] += n;
        p += n;
        len -= n;
        if (w->len[w->cur] == CHUNK_SIZE && submit(w) != 0) return -1;
    }
    w->offset = end;
    return 0;
}

uint64_t digest_writer_offset(const struct digest_writer *w)
{
    return w->offset;
}

int digest_writer_restart(struct digest_writer *w)
{
    drain(w);
    digests_abort(w);
    digests_begin(w);
    w->len[w->cur] = 0;
    w->flushed = 0;
    w->offset = 0;
    if (ftruncate(w->fd, 0) != 0 || lseek(w->fd, 0, SEEK_SET) != 0)
        return fail("cannot truncate: %s", strerror(errno));
    return 0;
}

static void stop_thread(struct digest_writer *w)
{
    if (!w->thread_started) return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->thread_started = false;
}

static void release(struct digest_writer *w)
{
    stop_thread(w);
    for (int i = 0; i < NCHUNKS; i++) free(w->chunk[i]);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->changed);
    free(w);
}

int digest_writer_finish(struct digest_writer *w, struct digests *out)
{
    memset(out, 0, sizeof *out);
    int rc = write_chunk(w);
    drain(w);
    if (rc != 0) {
        digests_abort(w);
        release(w);
        return -1;
    }
    /* The thread is idle: the last, partial chunk is digested here. */
    digests_update(w, w->chunk[w->cur], w->len[w->cur]);
    if (w->which & DIGEST_SHA256) hasher_final_hex(&w->sha256, out->sha256);
    if (w->which & DIGEST_MD5) hasher_final_hex(&w->md5, out->md5);
    if (w->which & DIGEST_GIT_BLOB) hasher_final_hex(&w->git, out->git_blob);
    release(w);
    return 0;
}

void digest_writer_free(struct digest_writer *w)
{
    if (!w) return;
    stop_thread(w);
    digests_abort(w);
    w->thread_started = false;
    release(w);
}
