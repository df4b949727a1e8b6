/* Growable byte buffer (always NUL-terminated) and checked allocation.
 * Allocation failure is fatal: a tool that cannot get memory cannot do
 * anything useful, and checking every malloc at every call site hides the
 * real logic. Size arithmetic that comes from input uses size_mul/size_add,
 * which report overflow instead of wrapping. */
#ifndef MLC_BUF_H
#define MLC_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct buf {
    char *data;     /* NUL-terminated; never NULL after buf_init */
    size_t len;
    size_t cap;
};

#define BUF_INIT {0}

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);             /* len = 0, keeps memory */
void buf_grow(struct buf *b, size_t extra);/* room for extra more bytes */
void buf_add(struct buf *b, const void *data, size_t len);
void buf_addc(struct buf *b, char c);
void buf_adds(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) MLC_PRINTF(2, 3);
char *buf_detach(struct buf *b, size_t *len); /* caller frees */

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) MLC_PRINTF(1, 2);
/* Grow an array to hold at least `need` elements of `size` bytes. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);

/* false on overflow; *out is set only on success */
static inline bool size_mul(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool size_add(size_t a, size_t b, size_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
static inline bool u64_mul(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool u64_add(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

#endif
