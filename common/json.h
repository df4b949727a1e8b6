/* JSON through jansson, plus a writer that reproduces Python's json.dump
 * byte for byte: MLC writes mlc-chat-config.json (indent=2) and
 * tensor-cache.json (indent=4) with Python, and our files must be identical.
 * jansson keeps object keys in insertion order, which gives MLC's field
 * order when objects are built in that order. */
#ifndef MLC_JSON_H
#define MLC_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "common/buf.h"

struct pyjson_style {
    int indent;            /* < 0: everything on one line */
    const char *item_sep;  /* Python: ", " without indent, "," with */
    const char *key_sep;   /* ": " */
    bool ensure_ascii;     /* escape non-ASCII as \uXXXX (Python default) */
};

/* json.dump(obj, f, indent=N) with Python's defaults. */
struct pyjson_style pyjson_indent(int indent);
/* Compact single line: separators (",", ":"), UTF-8 kept. */
struct pyjson_style pyjson_compact(void);

/* Append v to out. Fails (-1) only on values JSON cannot hold. */
int pyjson_dump(struct buf *out, const json_t *v, const struct pyjson_style *style);
/* Atomically write v to path in the given style (no trailing newline, as
 * Python's json.dump). */
int pyjson_write_file(const char *path, const json_t *v, const struct pyjson_style *style);

/* A float as Python's json module writes it: repr() for finite values
 * (shortest digits that read back exactly: "1.0", "1e-05", "1e+16"),
 * "NaN", "Infinity", "-Infinity" otherwise. */
void py_float_repr(double v, char out[32]);
/* Append s as a JSON string literal. */
void pyjson_string(struct buf *out, const char *s, size_t len, bool ensure_ascii);

/* Load a JSON file; on error last_error() is "PATH:LINE:COL: message". */
json_t *json_load_path(const char *path);
/* Parse text; `what` names it in messages. */
json_t *json_load_text(const char *text, size_t len, const char *what);

/* Typed lookups in an object; messages name `file` and the field.
 * Required: -1 if missing or of the wrong type. */
int json_need_int(const json_t *obj, const char *key, long long *out, const char *file);
int json_need_number(const json_t *obj, const char *key, double *out, const char *file);
int json_need_str(const json_t *obj, const char *key, const char **out, const char *file);
/* Optional: 0 absent or null, 1 present, -1 wrong type. */
int json_opt_int(const json_t *obj, const char *key, long long *out, const char *file);
int json_opt_number(const json_t *obj, const char *key, double *out, const char *file);
int json_opt_str(const json_t *obj, const char *key, const char **out, const char *file);
int json_opt_bool(const json_t *obj, const char *key, bool *out, const char *file);

/* base64 (RFC 4648, padded) via OpenSSL. decode: -1 on bad input. */
void base64_encode(struct buf *out, const void *data, size_t len);
int base64_decode(struct buf *out, const char *text, size_t len);

#endif
