#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *progname = "mlc";
bool quiet;

static _Thread_local char error_text[1024];

static void report(const char *kind, const char *fmt, va_list ap)
{
    char line[2048];
    int n = snprintf(line, sizeof line, "%s: %s", progname, kind);
    if (n < 0 || (size_t)n >= sizeof line) n = 0;
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    size_t len = strlen(line);
    /* One line per message: a message ending in a newline would break
     * tools that read stderr line by line. */
    while (len && line[len - 1] == '\n') line[--len] = 0;
    fprintf(stderr, "%s\n", line);
}

noreturn void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("error: ", fmt, ap);
    va_end(ap);
    exit(1);
}

noreturn void die_last(void)
{
    die("%s", error_text[0] ? error_text : "unknown error");
}

void warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("warning: ", fmt, ap);
    va_end(ap);
}

void note(const char *fmt, ...)
{
    if (quiet) return;
    va_list ap;
    va_start(ap, fmt);
    report("", fmt, ap);
    va_end(ap);
}

int vfail(const char *fmt, va_list ap)
{
    vsnprintf(error_text, sizeof error_text, fmt, ap);
    return -1;
}

int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(fmt, ap);
    va_end(ap);
    return -1;
}

int fail_prefix(const char *fmt, ...)
{
    char prefix[512], old[sizeof error_text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, error_text, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof error_text - 3) n = sizeof error_text - 3;
    memcpy(error_text, prefix, n);
    memcpy(error_text + n, ": ", 2);
    size_t room = sizeof error_text - n - 3;
    size_t m = strnlen(old, room);
    memcpy(error_text + n + 2, old, m);
    error_text[n + 2 + m] = 0;
    return -1;
}

const char *last_error(void)
{
    return error_text;
}
