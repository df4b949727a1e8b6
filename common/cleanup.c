#include "common/cleanup.h"
#include "common/fsutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CLEANUP 64
static char *cleanup_paths[MAX_CLEANUP];
static pthread_mutex_t cleanup_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t owner;   /* the process that registered: a child never removes them */

void cleanup_register(const char *path)
{
    pthread_mutex_lock(&cleanup_lock);
    if (!owner) {
        owner = getpid();
        atexit(cleanup_run);
    }
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
    if (owner && owner != getpid()) return;
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

void cleanup_on_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = cleanup_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

noreturn void exit_broken_pipe(void)
{
    cleanup_run();
    _exit(141);
}
