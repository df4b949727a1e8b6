#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char empty_string[1];

void buf_init(struct buf *b)
{
    b->data = empty_string;
    b->len = 0;
    b->cap = 0;
}

void buf_free(struct buf *b)
{
    if (b->cap) free(b->data);
    buf_init(b);
}

void buf_reset(struct buf *b)
{
    if (!b->data) buf_init(b);
    b->len = 0;
    if (b->cap) b->data[0] = 0;
}

void buf_grow(struct buf *b, size_t extra)
{
    if (!b->data) buf_init(b);
    size_t need;
    if (!size_add(b->len, extra, &need) || !size_add(need, 1, &need))
        die("buffer size overflow");
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *p = b->cap ? realloc(b->data, cap) : malloc(cap);
    if (!p) die("out of memory (growing a buffer to %zu bytes)", cap);
    if (!b->cap) p[0] = 0;
    b->data = p;
    b->cap = cap;
}

void buf_add(struct buf *b, const void *data, size_t len)
{
    buf_grow(b, len);
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
}

void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

void buf_adds(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) die("formatting error");
    if ((size_t)n < sizeof small) {
        buf_add(b, small, (size_t)n);
    } else {
        buf_grow(b, (size_t)n);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

char *buf_detach(struct buf *b, size_t *len)
{
    if (!b->cap) buf_grow(b, 0);
    char *p = b->data;
    if (len) *len = b->len;
    buf_init(b);
    return p;
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (allocating %zu bytes)", n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory (allocating %zu x %zu bytes)", n, size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) die("out of memory (allocating %zu bytes)", n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) die("formatting error");
    buf_grow(&b, (size_t)n);
    vsnprintf(b.data, (size_t)n + 1, fmt, ap2);
    b.len = (size_t)n;
    va_end(ap2);
    va_end(ap);
    return buf_detach(&b, NULL);
}

void *xgrow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return p;
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        if (n > SIZE_MAX / 2) die("array size overflow");
        n *= 2;
    }
    size_t bytes;
    if (!size_mul(n, size, &bytes)) die("array size overflow");
    p = xrealloc(p, bytes);
    *cap = n;
    return p;
}
