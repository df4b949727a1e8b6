#include "common/digest_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"

/* The hasher reads 1 MiB at a time, and is woken when that much is new:
 * few system calls and wake-ups, and the bytes are still in the page cache
 * (often in the CPU cache) when read back. */
#define CHUNK_SIZE (1u << 20)

struct digest_writer {
    int fd;
    unsigned which;
    uint64_t git_size;
    struct hasher sha256, md5, git;
    char *chunk;                   /* the hasher's read buffer */

    pthread_mutex_t lock;          /* protects what follows */
    pthread_cond_t changed;
    uint64_t written;              /* bytes in the file */
    uint64_t hashed;               /* bytes digested */
    bool finishing;                /* no more bytes will come */
    bool stop;                     /* quit now */
    bool failed;                   /* the hasher could not read */
    int read_errno;
    bool thread_started;
    bool waiting;                  /* the hasher sleeps for more bytes */
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

/* Digest [from, to) of the file; the caller owns the hashers meanwhile.
 * Returns 0, or an errno value. */
static int digest_range(struct digest_writer *w, uint64_t from, uint64_t to)
{
    while (from < to) {
        size_t n = to - from < CHUNK_SIZE ? (size_t)(to - from) : CHUNK_SIZE;
        ssize_t got = pread(w->fd, w->chunk, n, (off_t)from);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return errno;
        if (got == 0) return EIO; /* the file shrank under us */
        digests_update(w, w->chunk, (size_t)got);
        from += (uint64_t)got;
    }
    return 0;
}

static void *hash_thread(void *arg)
{
    struct digest_writer *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        uint64_t avail = w->written - w->hashed;
        if (w->stop || w->failed) break;
        if (avail < CHUNK_SIZE && !w->finishing) {
            w->waiting = true;
            pthread_cond_wait(&w->changed, &w->lock);
            w->waiting = false;
            continue;
        }
        if (avail == 0) break; /* finishing, and all done */
        uint64_t from = w->hashed;
        uint64_t to = w->written;
        pthread_mutex_unlock(&w->lock);
        int e = digest_range(w, from, to);
        pthread_mutex_lock(&w->lock);
        if (e) {
            w->failed = true;
            w->read_errno = e;
        } else {
            w->hashed = to;
        }
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
    w->chunk = xmalloc(CHUNK_SIZE);
    digests_begin(w);
    return w;
}

int digest_writer_add(struct digest_writer *w, const void *data, size_t len)
{
    uint64_t end;
    if (!u64_add(w->written, len, &end)) return fail("stream too long");
    if (write_all(w->fd, data, len) != 0) return fail("write error: %s", strerror(errno));
    pthread_mutex_lock(&w->lock);
    w->written = end;
    bool wake = w->waiting && end - w->hashed >= CHUNK_SIZE;
    bool start = !w->thread_started && end - w->hashed >= CHUNK_SIZE;
    if (wake) pthread_cond_signal(&w->changed);
    pthread_mutex_unlock(&w->lock);
    if (start) {
        if (pthread_create(&w->thread, NULL, hash_thread, w) != 0)
            return fail("cannot start a hashing thread: %s", strerror(errno));
        w->thread_started = true;
    }
    return 0;
}

uint64_t digest_writer_offset(const struct digest_writer *w)
{
    return w->written; /* only the writing thread changes it */
}

static void stop_thread(struct digest_writer *w, bool finish)
{
    if (!w->thread_started) return;
    pthread_mutex_lock(&w->lock);
    if (finish) w->finishing = true;
    else w->stop = true;
    pthread_cond_broadcast(&w->changed);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    w->thread_started = false;
}

int digest_writer_restart(struct digest_writer *w)
{
    stop_thread(w, false);
    digests_abort(w);
    digests_begin(w);
    w->written = w->hashed = 0;
    w->stop = w->failed = w->finishing = false;
    if (ftruncate(w->fd, 0) != 0 || lseek(w->fd, 0, SEEK_SET) != 0)
        return fail("cannot truncate: %s", strerror(errno));
    return 0;
}

static void release(struct digest_writer *w)
{
    free(w->chunk);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->changed);
    free(w);
}

int digest_writer_finish(struct digest_writer *w, struct digests *out)
{
    memset(out, 0, sizeof *out);
    stop_thread(w, true);
    /* The thread is gone: what it had not reached is digested here. */
    int e = w->failed ? w->read_errno : digest_range(w, w->hashed, w->written);
    if (e) {
        digests_abort(w);
        release(w);
        return fail("cannot read back what was written: %s", strerror(e));
    }
    if (w->which & DIGEST_SHA256) hasher_final_hex(&w->sha256, out->sha256);
    if (w->which & DIGEST_MD5) hasher_final_hex(&w->md5, out->md5);
    if (w->which & DIGEST_GIT_BLOB) hasher_final_hex(&w->git, out->git_blob);
    release(w);
    return 0;
}

void digest_writer_free(struct digest_writer *w)
{
    if (!w) return;
    stop_thread(w, false);
    digests_abort(w);
    release(w);
}
