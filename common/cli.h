/* Command-line conventions shared by every tool: --help prints the usage
 * text to stdout and exits 0; a usage error prints one line and a hint to
 * stderr and exits 2; --version prints "PROG (mlc-pipe) VERSION". */
#ifndef MLC_CLI_H
#define MLC_CLI_H

#include <stddef.h>
#include <stdnoreturn.h>

#include "common/err.h"

/* Set progname from argv[0], ignore SIGPIPE (writes then fail with EPIPE,
 * which the stream writer turns into a quiet exit) and remove registered
 * temporaries on SIGINT/SIGTERM/SIGHUP (common/cleanup.h). */
void prog_init(const char *argv0);

/* Exit statuses shared by every tool (each man page's EXIT STATUS). */
enum {
    EXIT_DATA_ERROR = 1,         /* bad input, a failed check, an I/O error */
    EXIT_USAGE = 2,              /* a wrong option or argument */
    EXIT_BROKEN_PIPE = 141,      /* the reader went away (as SIGPIPE would) */
    EXIT_INTERRUPTED = 130,      /* SIGINT (128 + the signal number) */
};

noreturn void usage_error(const char *fmt, ...) MLC_PRINTF(1, 2);
/* Flush standard output at the end of a tool: a reader that went away
 * (`| head`) ends the program quietly with status 141; any other write
 * error dies naming standard output. */
void finish_stdout(void);
/* fwrite to standard output, ending as finish_stdout does on an error. */
void stdout_write(const void *data, size_t len);
noreturn void print_help(const char *text);
noreturn void print_version(void);

/* Parse a whole decimal (or 0x hex) number with an optional k/M/G/T (1024)
 * suffix when allow_suffix; -1 if invalid or out of range. */
int parse_u64(const char *s, unsigned long long *out, int allow_suffix);
int parse_int_option(const char *opt, const char *s, long min, long max, long *out);

#endif
