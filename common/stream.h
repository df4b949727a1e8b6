/* The record stream (mlc-stream(5)): a concatenation of msgpack maps, each
 * with a string field "type".
 *
 * Reading: stream_next() hands out one record at a time together with its
 * exact bytes, so a filter can copy what it does not consume byte for byte.
 * Writing: records are built with a rec_builder and written through a
 * buffered stream_writer; a closed downstream pipe ends the program quietly
 * with status 141. */
#ifndef MLC_STREAM_H
#define MLC_STREAM_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/atomic.h"
#include "common/buf.h"
#include "common/mpscan.h"

struct stream_writer;

struct record {
    const msgpack_object *map;   /* the record (a map) */
    const char *type;            /* its "type" field */
    const unsigned char *raw;    /* its exact bytes in the stream */
    size_t raw_len;
    uint64_t offset;             /* byte offset of its first byte */
    uint64_t index;              /* 0-based record number */
    const char *source;          /* stream name, for messages */
};

/* The largest record a reader accepts. Records point at files for bulk
 * data; the biggest real ones (a module) are a few MB. */
#define STREAM_MAX_RECORD (256u << 20)

struct stream_reader {
    int fd;
    char *name;
    size_t chunk;                /* bytes asked of read() at a time */
    msgpack_unpacked result;
    struct buf raw;              /* bytes read but not yet handed out */
    size_t raw_off;              /* start of the current record in raw */
    struct mp_scan scan;         /* how far the current record is checked */
    uint64_t record_start;       /* stream offset of raw.data[raw_off] */
    uint64_t count;
    bool eof;
    char *type;
};

/* name is used in messages ("<stdin>", a path). Reads 1 MiB at a time. */
void stream_reader_init(struct stream_reader *r, int fd, const char *name);
/* Read `chunk` bytes at a time instead (at least 1): small reads make
 * records span many reads, as from a slow pipe. */
void stream_reader_set_chunk(struct stream_reader *r, size_t chunk);
/* 1: a record was read into *rec (valid until the next call); 0: clean end
 * of stream; -1: error (truncated, not a map, no type, nested more than
 * MP_MAX_DEPTH deep, more than MP_MAX_ELEMENTS elements, larger than
 * STREAM_MAX_RECORD, read error), message in last_error(). */
int stream_next(struct stream_reader *r, struct record *rec);
void stream_reader_free(struct stream_reader *r);

/* ---- typed field access; errors name the record type and the field ---- */

const msgpack_object *rec_field(const struct record *r, const char *key);
const msgpack_object *map_field(const msgpack_object *map, const char *key);
/* Required fields: -1 with "TYPE record: missing field 'KEY'" or
 * "TYPE record: field 'KEY' must be a string". */
int rec_get_str(const struct record *r, const char *key, char **out); /* malloc'ed */
int rec_get_int(const struct record *r, const char *key, int64_t *out);
int rec_get_double(const struct record *r, const char *key, double *out);
int rec_get_bool(const struct record *r, const char *key, bool *out);
int rec_get_map(const struct record *r, const char *key, const msgpack_object **out);
int rec_get_array(const struct record *r, const char *key, const msgpack_object **out);
/* Optional string: 0 absent (*out untouched), 1 present, -1 wrong type. */
int rec_opt_str(const struct record *r, const char *key, char **out);

/* A string object as a NUL-terminated copy; NULL if not a string or if it
 * contains a NUL byte. */
char *mp_strdup(const msgpack_object *o);
bool mp_str_eq(const msgpack_object *o, const char *s);

/* ---- all records of an input, kept for lookup ---- */

struct record_set {
    struct kept_record **items;
    size_t count, cap;
};

/* Read every record of r into set, copying each to pass (if non-NULL)
 * unchanged as it arrives. -1 on a stream error. */
int stream_slurp(struct stream_reader *r, struct stream_writer *pass, struct record_set *set);
/* The last record of a type, or NULL. */
const struct record *record_set_last(const struct record_set *set, const char *type);
/* The i-th record of a type (in stream order), or NULL past the end. */
const struct record *record_set_nth(const struct record_set *set, const char *type, size_t i);
void record_set_free(struct record_set *set);

/* ---- writing ---- */

struct stream_writer {
    int fd;
    char *name;
    struct buf out;
    bool to_file;                 /* written atomically to a path */
    struct atomic_file file;
    bool terminal;                /* standard output is a terminal: records */
    uint64_t withheld;            /* are dropped (counted), not shown */
};

void stream_writer_init_fd(struct stream_writer *w, int fd, const char *name);
/* Standard output, unless it is a terminal: msgpack there helps nobody and
 * can upset the terminal, so records are dropped and stream_writer_close
 * says so in one note (--stream FILE or a pipe gets them). */
void stream_writer_init_stdout(struct stream_writer *w);
/* Records go to a temporary file renamed to path by stream_writer_close. */
int stream_writer_open(struct stream_writer *w, const char *path);
void stream_write_raw(struct stream_writer *w, const void *data, size_t len);
void stream_flush(struct stream_writer *w);
/* Flush (and publish, for a file). -1 on error. */
int stream_writer_close(struct stream_writer *w);

struct rec_builder {
    msgpack_sbuffer body;
    msgpack_packer pk;
    uint32_t nfields;
};

void rb_init(struct rec_builder *b, const char *type);
/* Packs the key and returns the packer for the caller to pack one value. */
msgpack_packer *rb_key(struct rec_builder *b, const char *key);
void rb_str(struct rec_builder *b, const char *key, const char *value);
void rb_int(struct rec_builder *b, const char *key, int64_t value);
void rb_double(struct rec_builder *b, const char *key, double value);
void rb_bool(struct rec_builder *b, const char *key, bool value);
void rb_nil(struct rec_builder *b, const char *key);
void rb_bin(struct rec_builder *b, const char *key, const void *data, size_t len);
/* Write the finished record and free the builder. */
void rb_write(struct rec_builder *b, struct stream_writer *w);
/* The finished record's bytes (header + body) into out; frees the builder. */
void rb_finish(struct rec_builder *b, struct buf *out);
void rb_free(struct rec_builder *b);

void mp_pack_cstr(msgpack_packer *pk, const char *s);

/* How every stage starts: its records go to the file `stream_path` (written
 * atomically) or, without one, to standard output (nowhere when `discard`:
 * a tool printing text instead; nowhere, with a note, when standard output
 * is a terminal); the records on standard
 * input, when it is not a terminal, are read into `in`, each copied to the
 * output as it arrives. Dies on errors. */
void filter_start(struct stream_writer *out, const char *stream_path, bool discard, struct record_set *in);

#endif
