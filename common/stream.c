#include "common/stream.h"
#include "common/err.h"
#include "common/cleanup.h"
#include "common/fsutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads of 1 MiB keep pipes between stages fast (small reads cost more in
 * system calls than the parsing does). */
#define READ_CHUNK (1u << 20)
#define WRITE_FLUSH_AT (1u << 20)

void stream_reader_init(struct stream_reader *r, int fd, const char *name)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->name = xstrdup(name);
    r->chunk = READ_CHUNK;
    msgpack_unpacked_init(&r->result);
    buf_init(&r->raw);
    mp_scan_init(&r->scan);
}

void stream_reader_set_chunk(struct stream_reader *r, size_t chunk)
{
    r->chunk = chunk ? chunk : 1;
}

void stream_reader_free(struct stream_reader *r)
{
    msgpack_unpacked_destroy(&r->result);
    buf_free(&r->raw);
    free(r->name);
    free(r->type);
    r->name = r->type = NULL;
}

static bool is_map_marker(unsigned char c)
{
    return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf;
}

/* Drop the bytes of records already handed out. */
static void compact_raw(struct stream_reader *r)
{
    if (!r->raw_off) return;
    size_t keep = r->raw.len - r->raw_off;
    memmove(r->raw.data, r->raw.data + r->raw_off, keep);
    r->raw.len = keep;
    r->raw.data[keep] = 0;
    r->raw_off = 0;
}

static int read_more(struct stream_reader *r)
{
    compact_raw(r);
    buf_grow(&r->raw, r->chunk);
    ssize_t n;
    do n = read(r->fd, r->raw.data + r->raw.len, r->chunk);
    while (n < 0 && errno == EINTR);
    if (n < 0) return fail("%s: read error: %s", r->name, strerror(errno));
    if (n == 0) {
        r->eof = true;
        return 0;
    }
    r->raw.len += (size_t)n;
    r->raw.data[r->raw.len] = 0;
    return 0;
}

/* The record at raw_off is complete and checked: unpack it. */
static int hand_out(struct stream_reader *r, struct record *rec, size_t len)
{
    const char *bytes = r->raw.data + r->raw_off;
    size_t off = 0;
    if (msgpack_unpack_next(&r->result, bytes, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len)
        return fail("%s: byte %llu: invalid msgpack data in record %llu", r->name,
                    (unsigned long long)r->record_start, (unsigned long long)r->count);
    const msgpack_object *map = &r->result.data;
    if (map->type != MSGPACK_OBJECT_MAP)
        return fail("%s: byte %llu: not a msgpack map", r->name, (unsigned long long)r->record_start);
    const msgpack_object *t = map_field(map, "type");
    char *type = t ? mp_strdup(t) : NULL;
    if (!type)
        return fail("%s: byte %llu: record %llu has no string field 'type'", r->name,
                    (unsigned long long)r->record_start, (unsigned long long)r->count);
    free(r->type);
    r->type = type;
    rec->map = map;
    rec->type = type;
    rec->raw = (const unsigned char *)bytes;
    rec->raw_len = len;
    rec->offset = r->record_start;
    rec->index = r->count++;
    rec->source = r->name;
    r->raw_off += len;
    r->record_start += len;
    mp_scan_init(&r->scan);
    return 1;
}

int stream_next(struct stream_reader *r, struct record *rec)
{
    compact_raw(r);
    for (;;) {
        size_t pending = r->raw.len - r->raw_off;
        if (pending) {
            const unsigned char *p = (const unsigned char *)r->raw.data + r->raw_off;
            if (!is_map_marker(p[0]))
                return fail("%s: byte %llu: not a msgpack map (record %llu starts with 0x%02x)%s",
                            r->name, (unsigned long long)r->record_start,
                            (unsigned long long)r->count, p[0],
                            p[0] == '{' ? "; JSON records? turn them into a stream with mlc-dump --pack" : "");
            /* every size is checked before msgpack-c allocates for it */
            switch (mp_scan_feed(&r->scan, p, pending)) {
            case MP_SCAN_DONE:
                if (r->scan.pos > STREAM_MAX_RECORD) break;
                return hand_out(r, rec, r->scan.pos);
            case MP_SCAN_ERROR:
                return fail("%s: byte %llu: record %llu: %s", r->name,
                            (unsigned long long)(r->record_start + r->scan.pos),
                            (unsigned long long)r->count, r->scan.problem);
            case MP_SCAN_MORE:
                break;
            }
            if (pending > STREAM_MAX_RECORD)
                return fail("%s: byte %llu: record %llu is larger than %u MiB (the limit of a record)",
                            r->name, (unsigned long long)r->record_start, (unsigned long long)r->count,
                            STREAM_MAX_RECORD >> 20);
        }
        if (r->eof) {
            if (!pending) return 0;
            return fail("%s: stream ended inside a record after %zu bytes (record %llu, from byte %llu)",
                        r->name, pending, (unsigned long long)r->count,
                        (unsigned long long)r->record_start);
        }
        if (read_more(r) != 0) return -1;
    }
}

/* ---- field access ---- */

bool mp_str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n && !memcmp(o->via.str.ptr, s, n);
}

const msgpack_object *map_field(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    /* Last occurrence wins, as with JSON objects. */
    const msgpack_object *found = NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (mp_str_eq(&map->via.map.ptr[i].key, key)) found = &map->via.map.ptr[i].val;
    return found;
}

const msgpack_object *rec_field(const struct record *r, const char *key)
{
    return map_field(r->map, key);
}

char *mp_strdup(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR) return NULL;
    if (memchr(o->via.str.ptr, 0, o->via.str.size)) return NULL;
    return xstrndup(o->via.str.ptr, o->via.str.size);
}

static const msgpack_object *need(const struct record *r, const char *key)
{
    const msgpack_object *o = rec_field(r, key);
    if (!o) fail("%s record: missing field '%s'", r->type, key);
    return o;
}

static int wrong_type(const struct record *r, const char *key, const char *what)
{
    return fail("%s record: field '%s' must be %s", r->type, key, what);
}

int rec_get_str(const struct record *r, const char *key, char **out)
{
    const msgpack_object *o = need(r, key);
    if (!o) return -1;
    char *s = mp_strdup(o);
    if (!s) return wrong_type(r, key, "a string");
    *out = s;
    return 0;
}

int rec_opt_str(const struct record *r, const char *key, char **out)
{
    const msgpack_object *o = rec_field(r, key);
    if (!o || o->type == MSGPACK_OBJECT_NIL) return 0;
    char *s = mp_strdup(o);
    if (!s) return wrong_type(r, key, "a string");
    *out = s;
    return 1;
}

int rec_get_int(const struct record *r, const char *key, int64_t *out)
{
    const msgpack_object *o = need(r, key);
    if (!o) return -1;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *out = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else
        return wrong_type(r, key, "an integer");
    return 0;
}

int rec_get_double(const struct record *r, const char *key, double *out)
{
    const msgpack_object *o = need(r, key);
    if (!o) return -1;
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *out = o->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *out = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = (double)o->via.i64; return 0;
    default: return wrong_type(r, key, "a number");
    }
}

int rec_get_bool(const struct record *r, const char *key, bool *out)
{
    const msgpack_object *o = need(r, key);
    if (!o) return -1;
    if (o->type != MSGPACK_OBJECT_BOOLEAN) return wrong_type(r, key, "a boolean");
    *out = o->via.boolean;
    return 0;
}

int rec_get_map(const struct record *r, const char *key, const msgpack_object **out)
{
    const msgpack_object *o = need(r, key);
    if (!o) return -1;
    if (o->type != MSGPACK_OBJECT_MAP) return wrong_type(r, key, "a map");
    *out = o;
    return 0;
}

int rec_get_array(const struct record *r, const char *key, const msgpack_object **out)
{
    const msgpack_object *o = need(r, key);
    if (!o) return -1;
    if (o->type != MSGPACK_OBJECT_ARRAY) return wrong_type(r, key, "an array");
    *out = o;
    return 0;
}

/* ---- record sets ---- */

struct kept_record {
    unsigned char *bytes;
    msgpack_unpacked unpacked;
    struct record rec;
};

int stream_slurp(struct stream_reader *r, struct stream_writer *pass, struct record_set *set)
{
    struct record rec;
    int got;
    while ((got = stream_next(r, &rec)) == 1) {
        if (pass) stream_write_raw(pass, rec.raw, rec.raw_len);
        /* each kept record lives on its own: rec.map points into it, so it
         * must not move when the list grows */
        set->items = xgrow(set->items, &set->cap, set->count + 1, sizeof *set->items);
        struct kept_record *k = xcalloc(1, sizeof *k);
        set->items[set->count++] = k;
        k->bytes = xmalloc(rec.raw_len);
        memcpy(k->bytes, rec.raw, rec.raw_len);
        msgpack_unpacked_init(&k->unpacked);
        size_t off = 0;
        if (msgpack_unpack_next(&k->unpacked, (const char *)k->bytes, rec.raw_len, &off) !=
            MSGPACK_UNPACK_SUCCESS)
            die("internal error: a record did not unpack twice");
        k->rec = rec;
        k->rec.map = &k->unpacked.data;
        k->rec.type = map_field(k->rec.map, "type") ? mp_strdup(map_field(k->rec.map, "type")) : NULL;
        k->rec.raw = k->bytes;
        k->rec.source = NULL;
    }
    return got < 0 ? -1 : 0;
}

const struct record *record_set_last(const struct record_set *set, const char *type)
{
    for (size_t i = set->count; i-- > 0;)
        if (!strcmp(set->items[i]->rec.type, type)) return &set->items[i]->rec;
    return NULL;
}

const struct record *record_set_nth(const struct record_set *set, const char *type, size_t n)
{
    for (size_t i = 0; i < set->count; i++)
        if (!strcmp(set->items[i]->rec.type, type) && n-- == 0) return &set->items[i]->rec;
    return NULL;
}

void record_set_free(struct record_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        msgpack_unpacked_destroy(&set->items[i]->unpacked);
        free(set->items[i]->bytes);
        free((char *)set->items[i]->rec.type);
        free(set->items[i]);
    }
    free(set->items);
    memset(set, 0, sizeof *set);
}

/* ---- writing ---- */

void stream_writer_init_fd(struct stream_writer *w, int fd, const char *name)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->name = xstrdup(name);
    buf_init(&w->out);
}

int stream_writer_open(struct stream_writer *w, const char *path)
{
    memset(w, 0, sizeof *w);
    if (atomic_file_begin(&w->file, path) != 0) return -1;
    w->fd = w->file.fd;
    w->name = xstrdup(path);
    w->to_file = true;
    buf_init(&w->out);
    return 0;
}

void stream_flush(struct stream_writer *w)
{
    if (!w->out.len) return;
    if (write_all(w->fd, w->out.data, w->out.len) != 0) {
        if (errno == EPIPE) exit_broken_pipe();
        die("%s: write error: %s", w->name, strerror(errno));
    }
    buf_reset(&w->out);
}

void stream_writer_init_stdout(struct stream_writer *w)
{
    stream_writer_init_fd(w, 1, "<stdout>");
    w->terminal = isatty(1);
}

void stream_write_raw(struct stream_writer *w, const void *data, size_t len)
{
    if (w->terminal) {
        w->withheld += len;
        return;
    }
    if (len >= WRITE_FLUSH_AT) {
        stream_flush(w);
        if (write_all(w->fd, data, len) != 0) {
            if (errno == EPIPE) exit_broken_pipe();
            die("%s: write error: %s", w->name, strerror(errno));
        }
        return;
    }
    buf_add(&w->out, data, len);
    if (w->out.len >= WRITE_FLUSH_AT) stream_flush(w);
}

int stream_writer_close(struct stream_writer *w)
{
    if (w->terminal && w->withheld)
        note("records not written: standard output is a terminal (use --stream FILE or a pipe)");
    w->terminal = false;
    w->withheld = 0;
    stream_flush(w);
    int rc = 0;
    if (w->to_file) rc = atomic_file_commit(&w->file);
    buf_free(&w->out);
    free(w->name);
    w->name = NULL;
    return rc;
}

void mp_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str_with_body(pk, s, n);
}

void rb_init(struct rec_builder *b, const char *type)
{
    msgpack_sbuffer_init(&b->body);
    msgpack_packer_init(&b->pk, &b->body, msgpack_sbuffer_write);
    b->nfields = 0;
    rb_str(b, "type", type);
}

msgpack_packer *rb_key(struct rec_builder *b, const char *key)
{
    mp_pack_cstr(&b->pk, key);
    b->nfields++;
    return &b->pk;
}

void rb_str(struct rec_builder *b, const char *key, const char *value)
{
    mp_pack_cstr(rb_key(b, key), value);
}

void rb_int(struct rec_builder *b, const char *key, int64_t value)
{
    msgpack_pack_int64(rb_key(b, key), value);
}

void rb_double(struct rec_builder *b, const char *key, double value)
{
    msgpack_pack_double(rb_key(b, key), value);
}

void rb_bool(struct rec_builder *b, const char *key, bool value)
{
    msgpack_packer *pk = rb_key(b, key);
    if (value) msgpack_pack_true(pk);
    else msgpack_pack_false(pk);
}

void rb_nil(struct rec_builder *b, const char *key)
{
    msgpack_pack_nil(rb_key(b, key));
}

void rb_bin(struct rec_builder *b, const char *key, const void *data, size_t len)
{
    msgpack_pack_bin_with_body(rb_key(b, key), data, len);
}

void rb_finish(struct rec_builder *b, struct buf *out)
{
    msgpack_sbuffer head;
    msgpack_packer hp;
    msgpack_sbuffer_init(&head);
    msgpack_packer_init(&hp, &head, msgpack_sbuffer_write);
    msgpack_pack_map(&hp, b->nfields);
    buf_add(out, head.data, head.size);
    buf_add(out, b->body.data, b->body.size);
    msgpack_sbuffer_destroy(&head);
    rb_free(b);
}

void rb_write(struct rec_builder *b, struct stream_writer *w)
{
    struct buf bytes = BUF_INIT;
    buf_init(&bytes);
    rb_finish(b, &bytes);
    stream_write_raw(w, bytes.data, bytes.len);
    buf_free(&bytes);
}

void rb_free(struct rec_builder *b)
{
    msgpack_sbuffer_destroy(&b->body);
    memset(b, 0, sizeof *b);
}

void filter_start(struct stream_writer *out, const char *stream_path, bool discard, struct record_set *in)
{
    if (stream_path) {
        if (stream_writer_open(out, stream_path) != 0) die_last();
    } else if (discard) {
        stream_writer_init_fd(out, -1, "<stdout>");
    } else {
        stream_writer_init_stdout(out);
    }
    if (isatty(0)) return;
    struct stream_reader r;
    stream_reader_init(&r, 0, "<stdin>");
    if (stream_slurp(&r, stream_path || !discard ? out : NULL, in) != 0) die_last();
    stream_reader_free(&r);
}
