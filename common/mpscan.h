/* Bounds for msgpack before msgpack-c sees it.
 *
 * msgpack-c allocates the memory a container declares as soon as it reads
 * its header (an array header claiming 4 billion elements asks for 96 GB),
 * and reports a nesting deeper than its fixed stack as "out of memory".
 * mp_scan walks the bytes first without allocating anything: it finds where
 * an object ends and refuses one nested too deeply, one declaring more
 * elements than MP_MAX_ELEMENTS in all, or an invalid byte. Once an object's
 * bytes are all present and it passed the scan, unpacking it costs at most
 * about 48 bytes per element, and every declared element is really there.
 *
 * The scan is incremental: feed it the object's bytes from its first byte
 * as they arrive (the same buffer, growing) and it resumes where it
 * stopped. */
#ifndef MLC_MPSCAN_H
#define MLC_MPSCAN_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

/* msgpack-c's own limit: it holds at most 32 open containers */
#define MP_MAX_DEPTH 32
/* elements (array items, map keys and values) in one object: 16 M
 * (at most about 800 MB once unpacked) */
#define MP_MAX_ELEMENTS (1u << 24)

enum mp_scan_status { MP_SCAN_DONE, MP_SCAN_MORE, MP_SCAN_ERROR };

struct mp_scan {
    size_t pos;                          /* bytes of the object walked */
    uint64_t elements;                   /* declared so far */
    int depth;                           /* open containers */
    uint64_t left[MP_MAX_DEPTH + 1];     /* objects still due in each */
    const char *problem;                 /* MP_SCAN_ERROR: what was wrong */
};

void mp_scan_init(struct mp_scan *s);
/* data[0..len) are the object's bytes so far (from its first byte).
 * DONE: the object is s->pos bytes long; MORE: it needs more bytes;
 * ERROR: s->problem says why (at byte s->pos of the object). */
enum mp_scan_status mp_scan_feed(struct mp_scan *s, const unsigned char *data, size_t len);

/* Unpack the single object that fills data[0..len) after checking it with
 * mp_scan. -1 with "WHAT: byte N: PROBLEM" in last_error(). */
int mp_unpack_bounded(const char *data, size_t len, msgpack_unpacked *out, const char *what);

#endif
