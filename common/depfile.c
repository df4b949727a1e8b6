#include "common/depfile.h"
#include "common/atomic.h"
#include "common/buf.h"
#include "common/err.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool recording;
static char **paths;
static size_t npaths, cap;

void deps_record(void)
{
    pthread_mutex_lock(&lock);
    recording = true;
    pthread_mutex_unlock(&lock);
}

void deps_note(const char *path)
{
    if (!path || !*path) return;
    pthread_mutex_lock(&lock);
    bool seen = !recording;
    for (size_t i = 0; i < npaths && !seen; i++) seen = !strcmp(paths[i], path);
    if (!seen) {
        paths = xgrow(paths, &cap, npaths + 1, sizeof *paths);
        paths[npaths++] = xstrdup(path);
    }
    pthread_mutex_unlock(&lock);
}

/* make's escaping: a space or '#' gets a backslash, '$' is doubled. */
static void add_escaped(struct buf *b, const char *path)
{
    for (const char *c = path; *c; c++) {
        if (*c == ' ' || *c == '#' || *c == '\\') buf_addc(b, '\\');
        if (*c == '$') buf_addc(b, '$');
        buf_addc(b, *c);
    }
}

int deps_write(const char *depfile, const char *target)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    add_escaped(&b, target);
    buf_addc(&b, ':');
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < npaths; i++) {
        buf_adds(&b, " \\\n  ");
        add_escaped(&b, paths[i]);
    }
    pthread_mutex_unlock(&lock);
    buf_addc(&b, '\n');
    int rc = atomic_write_file(depfile, b.data, b.len);
    buf_free(&b);
    return rc;
}

void deps_reset(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < npaths; i++) free(paths[i]);
    free(paths);
    paths = NULL;
    npaths = cap = 0;
    recording = false;
    pthread_mutex_unlock(&lock);
}
