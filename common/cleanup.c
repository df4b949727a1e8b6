#include "common/cleanup.h"
#include "common/fsutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
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

static void close_gate(void);

void cleanup_run(void)
{
    if (owner && owner != getpid()) return;
    close_gate();
    /* the lock also makes an exit racing with an interrupt wait for the
     * interrupt's removals (and then die of the signal) */
    pthread_mutex_lock(&cleanup_lock);
    for (int i = 0; i < MAX_CLEANUP; i++)
        if (cleanup_paths[i]) {
            remove_tree(cleanup_paths[i]);
            free(cleanup_paths[i]);
            cleanup_paths[i] = NULL;
        }
    pthread_mutex_unlock(&cleanup_lock);
}

/* ---- the writing gate ---- */

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_changed = PTHREAD_COND_INITIALIZER;
static int gate_writers;
static bool gate_closed;
static _Thread_local int held_here;   /* a writer that dies holds the gate */

void cleanup_hold(void)
{
    pthread_mutex_lock(&gate_lock);
    while (gate_closed) pthread_cond_wait(&gate_changed, &gate_lock);
    gate_writers++;
    held_here++;
    pthread_mutex_unlock(&gate_lock);
}

void cleanup_release(void)
{
    pthread_mutex_lock(&gate_lock);
    held_here--;
    if (--gate_writers == 0) pthread_cond_broadcast(&gate_changed);
    pthread_mutex_unlock(&gate_lock);
}

/* The process is ending: let the writers of other threads finish their
 * file and start no new one. */
static void close_gate(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_closed = true;
    while (gate_writers > held_here) pthread_cond_wait(&gate_changed, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
}

/* ---- signals ---- */

static sigset_t handled;

static void *signal_thread(void *arg)
{
    (void)arg;
    int sig;
    while (sigwait(&handled, &sig) != 0) {}
    /* cleanup_run stops the writers first: once the gate is closed and
     * empty, nothing creates a file inside a temporary any more */
    cleanup_run();
    /* die of the signal itself, so that the shell sees it */
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
    raise(sig);
    _exit(128 + sig);
}

void cleanup_on_signals(void)
{
    sigemptyset(&handled);
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        /* a signal ignored when we started (nohup, a background job of a
         * script) stays ignored */
        struct sigaction old;
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) continue;
        sigaddset(&handled, sigs[i]);
    }
    /* threads started later inherit the mask: only signal_thread takes them */
    pthread_sigmask(SIG_BLOCK, &handled, NULL);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    if (pthread_create(&t, &attr, signal_thread, NULL) != 0)
        pthread_sigmask(SIG_UNBLOCK, &handled, NULL); /* then the default actions */
    pthread_attr_destroy(&attr);
}

noreturn void exit_broken_pipe(void)
{
    cleanup_run();
    _exit(141);
}
