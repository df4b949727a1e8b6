#include "common/progress.h"
#include "common/err.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool progress_enabled(void)
{
    if (quiet) return false;
    const char *force = getenv("MLC_PROGRESS");
    if (force && !strcmp(force, "always")) return true;
    if (force && !strcmp(force, "never")) return false;
    return isatty(2);
}

void format_bytes(uint64_t n, char out[16])
{
    static const char *units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1000 && u < 5) {
        v /= 1000;
        u++;
    }
    if (u == 0) snprintf(out, 16, "%llu B", (unsigned long long)n);
    else snprintf(out, 16, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
}

static void amount(const struct progress *p, uint64_t n, char out[24])
{
    if (p->bytes) format_bytes(n, out);
    else snprintf(out, 24, "%llu", (unsigned long long)n);
}

/* A rate measured over the first moments is noise: the first bytes of a
 * transfer or a conversion arrive before the steady state, and an ETA from
 * them reads as hours. The ETA waits for a second of work, or for a tenth
 * of it done. */
#define ETA_AFTER_SECONDS 1.0
#define ETA_AFTER_FRACTION 0.1

void progress_format(const struct progress *p, double now, bool final, char *line, size_t size)
{
    uint64_t done = atomic_load(&p->done);
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    char d[24], t[24], r[24];
    amount(p, done, d);
    amount(p, (uint64_t)rate, r);
    if (p->total) {
        amount(p, p->total, t);
        double frac = (double)done / (double)p->total;
        int n = snprintf(line, size, "%s: %5.1f%% %s / %s, %s/s", p->label, 100 * frac, d, t, r);
        bool settled = elapsed >= ETA_AFTER_SECONDS || frac >= ETA_AFTER_FRACTION;
        if (n > 0 && (size_t)n < size && !final && settled && rate > 0 && done < p->total) {
            double eta = (double)(p->total - done) / rate;
            snprintf(line + n, size - (size_t)n, ", ETA %d:%02d", (int)eta / 60, (int)eta % 60);
        }
    } else {
        snprintf(line, size, "%s: %s, %s/s", p->label, d, r);
    }
}

/* The meter being drawn, so that an interrupt can end its line: the shell's
 * prompt (or the next message) then starts on a line of its own. */
static struct progress *_Atomic open_line;
static struct sigaction previous[3];
static const int end_signals[3] = {SIGINT, SIGTERM, SIGHUP};

static void end_line_on_signal(int sig)
{
    struct progress *p = atomic_exchange(&open_line, NULL);
    if (p && p->drawn) {
        ssize_t unused = write(2, "\n", 1);
        (void)unused;
    }
    /* then whatever was there before (the cleanup of temporaries) */
    for (int i = 0; i < 3; i++) {
        if (end_signals[i] != sig) continue;
        sigaction(sig, &previous[i], NULL);
        if (previous[i].sa_handler != SIG_IGN) raise(sig);
    }
}

static void watch_signals(struct progress *p)
{
    struct progress *expected = NULL;
    if (!atomic_compare_exchange_strong(&open_line, &expected, p)) return; /* one meter at a time */
    struct sigaction sa = {0};
    sa.sa_handler = end_line_on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++) sigaction(end_signals[i], &sa, &previous[i]);
}

static void unwatch_signals(struct progress *p)
{
    struct progress *expected = p;
    if (!atomic_compare_exchange_strong(&open_line, &expected, NULL)) return;
    for (int i = 0; i < 3; i++) sigaction(end_signals[i], &previous[i], NULL);
}

static void draw(struct progress *p, double now, bool final)
{
    char line[160];
    progress_format(p, now, final, line, sizeof line);
    /* marked before it is written: an interrupt in the middle of the
     * write must still end the line */
    if (!final) p->drawn = true;
    fprintf(stderr, "\r%s: %-70s%s", progname, line, final ? "\n" : "");
    fflush(stderr);
    if (final) p->drawn = false;
}

void progress_begin(struct progress *p, const char *label, uint64_t total, bool bytes)
{
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->bytes = bytes;
    p->active = progress_enabled();
    p->drawn = false;
    atomic_store(&p->done, 0);
    atomic_flag_clear(&p->drawing);
    p->start = now_seconds();
    p->last_draw = p->start; /* the first frame after a tenth of a second */
    if (p->active) watch_signals(p);
}

void progress_set_total(struct progress *p, uint64_t total)
{
    p->total = total;
}

void progress_add(struct progress *p, uint64_t n)
{
    atomic_fetch_add(&p->done, n);
    if (!p->active) return;
    if (atomic_flag_test_and_set(&p->drawing)) return; /* another thread draws */
    double now = now_seconds();
    if (now - p->last_draw >= 0.1) {
        p->last_draw = now;
        draw(p, now, false);
    }
    atomic_flag_clear(&p->drawing);
}

void progress_end(struct progress *p)
{
    if (p->active) {
        draw(p, now_seconds(), true);
        unwatch_signals(p);
    }
    p->active = false;
}
