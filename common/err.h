/* Error and warning reporting, prefixed with the program name.
 *
 * Two ways to fail, used consistently:
 *  - library code calls fail("...") which records a one-line message for the
 *    current thread and returns -1; the caller passes -1 up;
 *  - tools call die("...") (or die_last() to print what fail() recorded),
 *    which prints "PROG: error: ..." and exits 1 (common/cleanup.h removes
 *    the temporaries it holds at exit).
 */
#ifndef MLC_ERR_H
#define MLC_ERR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdnoreturn.h>

#define MLC_PRINTF(a, b) __attribute__((format(printf, a, b)))

extern const char *progname;   /* set by prog_init() (cli.h); "mlc" until then */
extern bool quiet;             /* --quiet: suppress notes and progress */

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

#endif
