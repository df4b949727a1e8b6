#include "err.h"
#include "fsutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *progname = "mlc";
bool quiet;

static _Thread_local char error_text[1024];

static void cleanup_on_signal(int sig);

void prog_init(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    progname = slash ? slash + 1 : (argv0 ? argv0 : "mlc");
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {0};
    sa.sa_handler = cleanup_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

static void report(const char *kind, const char *fmt, va_list ap)
{
    char line[2048];
    int n = snprintf(line, sizeof line, "%s: %s", progname, kind);
    if (n < 0 || (size_t)n >= sizeof line) n = 0;
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = strlen(line);
    /* One line per message: a message ending in a newline would break
     * tools that read stderr line by line. */
    while (len && line[len - 1] == '\n') line[--len] = 0;
    fprintf(stderr, "%s\n", line);
}

noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("error: ", fmt, ap);
    va_end(ap);
    cleanup_run();
    exit(1);
}

noreturn void die_last(void)
{
    die("%s", error_text[0] ? error_text : "unknown error");
}

void warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("warning: ", fmt, ap);
    va_end(ap);
}

void note(const char *fmt, ...)
{
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    report("", fmt, ap);
    va_end(ap);
}

int vfail(const char *fmt, va_list ap)
{
    vsnprintf(error_text, sizeof error_text, fmt, ap);
    return -1;
}

int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
    return -1;
}

int fail_prefix(const char *fmt, ...)
{
    char prefix[512], old[sizeof error_text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_text, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof error_text - 3) n = sizeof error_text - 3;
    memcpy(error_text, prefix, n);
    memcpy(error_text + n, ": ", 2);
    size_t room = sizeof error_text - n - 3;
    size_t m = strnlen(old, room);
    memcpy(error_text + n + 2, old, m);
    error_text[n + 2 + m] = 0;
    return -1;
}

const char *last_error(void)
{
    return error_text;
}

/* ---- temporaries removed on failure ---- */

#define MAX_CLEANUP 64
static char *cleanup_paths[MAX_CLEANUP];
static pthread_mutex_t cleanup_lock = PTHREAD_MUTEX_INITIALIZER;

void cleanup_register(const char *path)
{
    pthread_mutex_lock(&cleanup_lock);
    for (int i = 0; i < MAX_CLEANUP; i++)
        if (!cleanup_paths[i]) {
            cleanup_paths[i] = strdup(path);
            break;
        }
    pthread_mutex_unlock(&cleanup_lock);
}

void cleanup_unregister(const char *path)
{
    pthread_mutex_lock(&cleanup_lock);
    for (int i = 0; i < MAX_CLEANUP; i++)
        if (cleanup_paths[i] && !strcmp(cleanup_paths[i], path)) {
            free(cleanup_paths[i]);
            cleanup_paths[i] = NULL;
        }
    pthread_mutex_unlock(&cleanup_lock);
}

void cleanup_run(void)
{
    for (int i = 0; i < MAX_CLEANUP; i++)
        if (cleanup_paths[i]) {
            remove_tree(cleanup_paths[i]);
            free(cleanup_paths[i]);
            cleanup_paths[i] = NULL;
        }
}

static void cleanup_on_signal(int sig)
{
    /* Not strictly async-signal-safe (readdir), but the alternative is
     * leaving half-written temporaries behind on every Ctrl-C. */
    for (int i = 0; i < MAX_CLEANUP; i++)
        if (cleanup_paths[i]) remove_tree(cleanup_paths[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

noreturn void exit_broken_pipe(void)
{
    cleanup_run();
    _exit(141);
}
