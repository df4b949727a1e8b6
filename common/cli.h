/* Command-line conventions shared by every tool: --help prints the usage
 * text to stdout and exits 0; a usage error prints one line and a hint to
 * stderr and exits 2; --version prints "PROG (mlc-pipe) VERSION". */
#ifndef MLC_CLI_H
#define MLC_CLI_H

#include <stdnoreturn.h>

#include "common/err.h"

/* Set progname from argv[0], ignore SIGPIPE (writes then fail with EPIPE,
 * which the stream writer turns into a quiet exit) and remove registered
 * temporaries on SIGINT/SIGTERM/SIGHUP (common/cleanup.h). */
void prog_init(const char *argv0);

noreturn void usage_error(const char *fmt, ...) MLC_PRINTF(1, 2);
noreturn void print_help(const char *text);
noreturn void print_version(void);

/* Parse a whole decimal (or 0x hex) number with an optional k/M/G/T (1024)
 * suffix when allow_suffix; -1 if invalid or out of range. */
int parse_u64(const char *s, unsigned long long *out, int allow_suffix);
int parse_int_option(const char *opt, const char *s, long min, long max, long *out);

#endif
