/* Temporaries removed when a tool fails or is interrupted.
 *
 * Paths registered here are removed (recursively) when the process exits
 * before cleanup_unregister() is called for them: on die() (through
 * exit(3), by an atexit handler), on SIGINT/SIGTERM/SIGHUP, and on a broken
 * pipe. atomic.h registers every temporary it creates. */
#ifndef MLC_CLEANUP_H
#define MLC_CLEANUP_H

#include <stdnoreturn.h>

void cleanup_register(const char *path);
void cleanup_unregister(const char *path);
/* Run the registered removals now. */
void cleanup_run(void);
/* Remove the registered temporaries on SIGINT, SIGTERM and SIGHUP, then die
 * of the signal. */
void cleanup_on_signals(void);

/* Exit quietly with the status a shell shows for SIGPIPE. */
noreturn void exit_broken_pipe(void);

#endif
