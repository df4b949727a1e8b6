/* Temporaries removed when a tool fails or is interrupted.
 *
 * Paths registered here are removed (recursively) when the process exits
 * before cleanup_unregister() is called for them: on die() (through
 * exit(3), by an atexit handler), on SIGINT/SIGTERM/SIGHUP, and on a broken
 * pipe. atomic.h registers every temporary it creates.
 *
 * Signals are taken by a thread of their own, not by a handler that
 * interrupts whatever thread happens to run: removing a temporary tree
 * while another thread still creates files in it would leave some behind.
 * Code that creates or fills files inside a registered temporary directory
 * holds the writing gate meanwhile (cleanup_hold/cleanup_release); on a
 * signal the gate closes, the writers in it finish their file, no new
 * one starts, and only then is the tree removed and the process ended by
 * the signal. */
#ifndef MLC_CLEANUP_H
#define MLC_CLEANUP_H

#include <stdnoreturn.h>

void cleanup_register(const char *path);
void cleanup_unregister(const char *path);
/* Run the registered removals now. */
void cleanup_run(void);
/* Remove the registered temporaries on SIGINT, SIGTERM and SIGHUP (those
 * not ignored when the program started), then die of the signal. Call it
 * before starting any thread (prog_init does): it blocks these signals in
 * every thread but the one that waits for them. */
void cleanup_on_signals(void);

/* Enter and leave the writing gate. cleanup_hold() never returns once an
 * interrupt is being handled: the process is about to end. Hold it only
 * while writing, never while waiting for another thread. */
void cleanup_hold(void);
void cleanup_release(void);

/* Exit quietly with the status a shell shows for SIGPIPE. */
noreturn void exit_broken_pipe(void);

#endif
