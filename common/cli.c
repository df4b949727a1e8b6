#include "common/cli.h"
#include "common/cleanup.h"
#include "common/version.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void prog_init(const char *argv0)
{
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    progname = slash ? slash + 1 : (argv0 ? argv0 : "mlc");
    signal(SIGPIPE, SIG_IGN);
    cleanup_on_signals();
}

noreturn void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", progname);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", progname);
    va_end(ap);
    exit(2);
}

/* A pipe whose reader has gone reports POLLERR on its writing end, even
 * when the write that failed was long ago and errno has moved on. */
static bool reader_gone(void)
{
    struct pollfd p = {.fd = 1, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLERR);
}

void finish_stdout(void)
{
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return;
    if (errno == EPIPE || reader_gone()) exit_broken_pipe();
    die("write error on standard output%s%s", errno ? ": " : "", errno ? strerror(errno) : "");
}

void stdout_write(const void *data, size_t len)
{
    if (len && fwrite(data, 1, len, stdout) != len) finish_stdout();
}

noreturn void print_help(const char *text)
{
    fputs(text, stdout);
    exit(ferror(stdout) ? 1 : 0);
}

noreturn void print_version(void)
{
    printf("%s (mlc-pipe) %s\n", progname, MLC_VERSION);
    exit(0);
}

int parse_u64(const char *s, unsigned long long *out, int allow_suffix)
{
    if (!s || !*s || *s == '-' || *s == '+') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s) return -1;
    if (*end && allow_suffix) {
        unsigned shift = 0;
        switch (*end) {
        case 'k': case 'K': shift = 10; break;
        case 'm': case 'M': shift = 20; break;
        case 'g': case 'G': shift = 30; break;
        case 't': case 'T': shift = 40; break;
        default: return -1;
        }
        end++;
        if (*end == 'i') end++;
        if (*end == 'B') end++;
        if (v > (~0ULL >> shift)) return -1;
        v <<= shift;
    }
    if (*end) return -1;
    *out = v;
    return 0;
}

int parse_int_option(const char *opt, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        usage_error("%s: expected an integer from %ld to %ld, got '%s'", opt, min, max, s);
    *out = v;
    return 0;
}
