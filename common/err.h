/* Error and warning reporting, prefixed with the program name.
 *
 * Two ways to fail, used consistently:
 *  - library code calls fail("...") which records a one-line message for the
 *    current thread and returns -1; the caller passes -1 up;
 *  - tools call die("...") (or die_last() to print what fail() recorded),
 *    which prints "PROG: error: ..." and exits 1 after removing any
 *    temporary files registered with cleanup_register().
 */
#ifndef MLC_ERR_H
#define MLC_ERR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdnoreturn.h>

#define MLC_PRINTF(a, b) __attribute__((format(printf, a, b)))

extern const char *progname;   /* set by prog_init(); "mlc" until then */
extern bool quiet;             /* --quiet: suppress notes and progress */

/* Set progname from argv[0], ignore SIGPIPE (writes then fail with EPIPE,
 * which the stream writer turns into a quiet exit) and install handlers that
 * remove registered temporaries on SIGINT/SIGTERM/SIGHUP. */
void prog_init(const char *argv0);

noreturn void die(const char *fmt, ...) MLC_PRINTF(1, 2);
noreturn void die_last(void);                   /* die with last_error() */
void warning(const char *fmt, ...) MLC_PRINTF(1, 2);
void note(const char *fmt, ...) MLC_PRINTF(1, 2); /* silent under quiet */

/* Record a message for this thread; always returns -1. */
int fail(const char *fmt, ...) MLC_PRINTF(1, 2);
int vfail(const char *fmt, va_list ap);
/* Prefix the recorded message with "PREFIX: " (e.g. a file name). */
int fail_prefix(const char *fmt, ...) MLC_PRINTF(1, 2);
const char *last_error(void);

/* Paths removed (recursively) if the program dies or is interrupted before
 * cleanup_unregister() is called for them. */
void cleanup_register(const char *path);
void cleanup_unregister(const char *path);
/* Run the registered removals now (used by die and the signal handlers). */
void cleanup_run(void);

/* Exit quietly with the status a shell shows for SIGPIPE. */
noreturn void exit_broken_pipe(void);

#endif
