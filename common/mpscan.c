#include "common/mpscan.h"
#include "common/err.h"

#include <string.h>

void mp_scan_init(struct mp_scan *s)
{
    memset(s, 0, sizeof *s);
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

/* One object header at data[pos]: how many bytes the header itself takes
 * (0 when they have not all arrived), the payload bytes that follow it
 * and the number of child objects it opens. -1 for an invalid byte. */
static int header(const unsigned char *d, size_t avail, size_t *head, uint64_t *payload, uint64_t *children)
{
    unsigned char c = d[0];
    *payload = *children = 0;
    *head = 1;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) return 0;
    if (c >= 0x80 && c <= 0x8f) return *children = 2u * (c & 0x0f), 0;
    if (c >= 0x90 && c <= 0x9f) return *children = c & 0x0f, 0;
    if (c >= 0xa0 && c <= 0xbf) return *payload = c & 0x1f, 0;
    static const struct { unsigned char byte; unsigned char len; unsigned char fixed; unsigned char kind; } t[] = {
        /* kind: 0 fixed payload, 1 length-prefixed payload, 2 array, 3 map,
         * 4 ext with length (one type byte more) */
        {0xc4, 1, 0, 1}, {0xc5, 2, 0, 1}, {0xc6, 4, 0, 1},
        {0xc7, 1, 1, 4}, {0xc8, 2, 1, 4}, {0xc9, 4, 1, 4},
        {0xca, 0, 4, 0}, {0xcb, 0, 8, 0},
        {0xcc, 0, 1, 0}, {0xcd, 0, 2, 0}, {0xce, 0, 4, 0}, {0xcf, 0, 8, 0},
        {0xd0, 0, 1, 0}, {0xd1, 0, 2, 0}, {0xd2, 0, 4, 0}, {0xd3, 0, 8, 0},
        {0xd4, 0, 2, 0}, {0xd5, 0, 3, 0}, {0xd6, 0, 5, 0}, {0xd7, 0, 9, 0}, {0xd8, 0, 17, 0},
        {0xd9, 1, 0, 1}, {0xda, 2, 0, 1}, {0xdb, 4, 0, 1},
        {0xdc, 2, 0, 2}, {0xdd, 4, 0, 2}, {0xde, 2, 0, 3}, {0xdf, 4, 0, 3},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].byte != c) continue;
        if (t[i].kind == 0) return *payload = t[i].fixed, 0;
        if (avail < 1u + t[i].len) return *head = 0, 0;
        uint64_t n = be(d + 1, t[i].len);
        *head = 1u + t[i].len;
        if (t[i].kind == 1) *payload = n;
        else if (t[i].kind == 4) *payload = n + 1;
        else if (t[i].kind == 2) *children = n;
        else *children = 2 * n;
        return 0;
    }
    return -1; /* 0xc1: never used */
}

enum mp_scan_status mp_scan_feed(struct mp_scan *s, const unsigned char *data, size_t len)
{
    for (;;) {
        if (s->pos >= len) return MP_SCAN_MORE;
        size_t head;
        uint64_t payload, children;
        if (header(data + s->pos, len - s->pos, &head, &payload, &children) != 0) {
            s->problem = "invalid msgpack byte 0xc1";
            return MP_SCAN_ERROR;
        }
        if (!head) return MP_SCAN_MORE;
        /* an object is taken whole or not at all, so that a resumed scan
         * starts at a header */
        if (payload > len - s->pos - head) return MP_SCAN_MORE;
        if (children) {
            s->elements += children;
            if (s->elements > MP_MAX_ELEMENTS) {
                s->problem = "declares more than 16777216 elements (the limit of one record)";
                return MP_SCAN_ERROR;
            }
            if (s->depth >= MP_MAX_DEPTH) {
                s->problem = "nested too deeply (more than 32 levels of arrays and maps)";
                return MP_SCAN_ERROR;
            }
        }
        s->pos += head + (size_t)payload;
        /* this object fills one slot of the container it is in */
        if (s->depth > 0) s->left[s->depth]--;
        if (children) s->left[++s->depth] = children;
        while (s->depth > 0 && s->left[s->depth] == 0) s->depth--;
        if (s->depth == 0) return MP_SCAN_DONE;
    }
}

int mp_unpack_bounded(const char *data, size_t len, msgpack_unpacked *out, const char *what)
{
    struct mp_scan s;
    mp_scan_init(&s);
    enum mp_scan_status st = mp_scan_feed(&s, (const unsigned char *)data, len);
    if (st == MP_SCAN_ERROR) return fail("%s: byte %zu: %s", what, s.pos, s.problem);
    if (st == MP_SCAN_MORE) return fail("%s: truncated msgpack data (%zu bytes)", what, len);
    if (s.pos != len) return fail("%s: %zu bytes after the msgpack object", what, len - s.pos);
    size_t off = 0;
    if (msgpack_unpack_next(out, data, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        return fail("%s: invalid msgpack data", what);
    return 0;
}
