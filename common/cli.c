#include "common/cli.h"
#include "common/cleanup.h"
#include "common/version.h"

#include <errno.h>
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
