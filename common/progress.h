/* A progress meter on stderr for long work: count, rate and ETA, redrawn at
 * most ten times a second, and only when stderr is a terminal and --quiet
 * was not given (logs and pipes stay clean). Safe to update from several
 * threads. The ETA appears after a second of work or a tenth of it done; an interrupt
 * (SIGINT, SIGTERM, SIGHUP) while a meter is drawn ends its line before the
 * handler that was installed before it runs. */
#ifndef MLC_PROGRESS_H
#define MLC_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct progress {
    char label[64];
    uint64_t total;          /* 0: unknown */
    bool bytes;              /* show sizes and rates in bytes */
    bool active;             /* drawing at all */
    atomic_uint_fast64_t done;
    atomic_flag drawing;
    double start;
    double last_draw;
    bool drawn;              /* a line without its newline is on stderr */
};

/* The meter draws when this is true; tests can force it. */
bool progress_enabled(void);

void progress_begin(struct progress *p, const char *label, uint64_t total, bool bytes);
void progress_add(struct progress *p, uint64_t n);
void progress_set_total(struct progress *p, uint64_t total);
/* The meter's text at time `now` (no program name, no carriage return). */
void progress_format(const struct progress *p, double now, bool final, char *line, size_t size);
/* Final line (when drawing), then stop. */
void progress_end(struct progress *p);

/* "1.5 GB", "812 kB" */
void format_bytes(uint64_t n, char out[16]);
double now_seconds(void);

#endif
