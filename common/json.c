#include "common/json.h"
#include "common/atomic.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/utf8.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pyjson_style pyjson_indent(int indent)
{
    return (struct pyjson_style){indent, ",", ": ", true};
}

struct pyjson_style pyjson_compact(void)
{
    return (struct pyjson_style){-1, ",", ":", false};
}

void py_float_repr(double v, char out[32])
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    /* Shortest correctly rounded digit string that reads back exactly:
     * the closest p-digit decimal round-trips whenever any p-digit one does,
     * so trying p = 1, 2, ... gives the digits Python's repr chooses. */
    char sci[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, v);
        if (strtod(sci, NULL) == v) break;
    }
    /* sci = [-]d[.ddd]e[+-]XX; pull out sign, digits, exponent */
    const char *s = sci;
    bool neg = *s == '-';
    if (neg) s++;
    char digits[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[nd++] = *s;
    digits[nd] = 0;
    int exp10 = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = 0; /* trailing zeros */
    int decpt = exp10 + 1; /* value = 0.DIGITS x 10^decpt */
    char *o = out;
    if (neg) *o++ = '-';
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            *o++ = '0';
            *o++ = '.';
            for (int i = 0; i < -decpt; i++) *o++ = '0';
            memcpy(o, digits, (size_t)nd);
            o += nd;
        } else if (decpt >= nd) {
            memcpy(o, digits, (size_t)nd);
            o += nd;
            for (int i = nd; i < decpt; i++) *o++ = '0';
            *o++ = '.';
            *o++ = '0';
        } else {
            memcpy(o, digits, (size_t)decpt);
            o += decpt;
            *o++ = '.';
            memcpy(o, digits + decpt, (size_t)(nd - decpt));
            o += nd - decpt;
        }
        *o = 0;
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, digits + 1, (size_t)(nd - 1));
            o += nd - 1;
        }
        int e = decpt - 1;
        sprintf(o, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}


void pyjson_string(struct buf *out, const char *str, size_t len, bool ensure_ascii)
{
    const unsigned char *s = (const unsigned char *)str;
    buf_addc(out, '"');
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        switch (c) {
        case '"': buf_adds(out, "\\\""); i++; continue;
        case '\\': buf_adds(out, "\\\\"); i++; continue;
        case '\n': buf_adds(out, "\\n"); i++; continue;
        case '\r': buf_adds(out, "\\r"); i++; continue;
        case '\t': buf_adds(out, "\\t"); i++; continue;
        case '\b': buf_adds(out, "\\b"); i++; continue;
        case '\f': buf_adds(out, "\\f"); i++; continue;
        default: break;
        }
        if (c < 0x20) {
            buf_printf(out, "\\u%04x", c);
            i++;
        } else if (c < 0x80 || !ensure_ascii) {
            buf_addc(out, (char)c);
            i++;
        } else {
            size_t n = utf8_valid_prefix(s + i, len - i);
            if (!n) { /* jansson only holds valid UTF-8; be safe anyway */
                buf_printf(out, "\\u%04x", 0xfffd);
                i++;
                continue;
            }
            size_t unused;
            unsigned cp = (unsigned)utf8_decode((const char *)s + i, n, &unused);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                buf_printf(out, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
            } else {
                buf_printf(out, "\\u%04x", cp);
            }
            i += n;
        }
    }
    buf_addc(out, '"');
}

static void newline_indent(struct buf *out, const struct pyjson_style *st, int level)
{
    if (st->indent < 0) return;
    buf_addc(out, '\n');
    for (int i = 0; i < st->indent * level; i++) buf_addc(out, ' ');
}

static int dump_value(struct buf *out, const json_t *v, const struct pyjson_style *st, int level)
{
    char num[32];
    switch (json_typeof(v)) {
    case JSON_NULL: buf_adds(out, "null"); return 0;
    case JSON_TRUE: buf_adds(out, "true"); return 0;
    case JSON_FALSE: buf_adds(out, "false"); return 0;
    case JSON_INTEGER: buf_printf(out, "%lld", (long long)json_integer_value(v)); return 0;
    case JSON_REAL:
        py_float_repr(json_real_value(v), num);
        buf_adds(out, num);
        return 0;
    case JSON_STRING:
        pyjson_string(out, json_string_value(v), json_string_length(v), st->ensure_ascii);
        return 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (!n) {
            buf_adds(out, "[]");
            return 0;
        }
        buf_addc(out, '[');
        for (size_t i = 0; i < n; i++) {
            if (i) buf_adds(out, st->item_sep);
            newline_indent(out, st, level + 1);
            if (dump_value(out, json_array_get(v, i), st, level + 1)) return -1;
        }
        newline_indent(out, st, level);
        buf_addc(out, ']');
        return 0;
    }
    case JSON_OBJECT: {
        if (!json_object_size(v)) {
            buf_adds(out, "{}");
            return 0;
        }
        buf_addc(out, '{');
        const char *key;
        json_t *val;
        bool first = true;
        json_object_foreach((json_t *)v, key, val) {
            if (!first) buf_adds(out, st->item_sep);
            first = false;
            newline_indent(out, st, level + 1);
            pyjson_string(out, key, strlen(key), st->ensure_ascii);
            buf_adds(out, st->key_sep);
            if (dump_value(out, val, st, level + 1)) return -1;
        }
        newline_indent(out, st, level);
        buf_addc(out, '}');
        return 0;
    }
    }
    return fail("JSON value of unknown type");
}

int pyjson_dump(struct buf *out, const json_t *v, const struct pyjson_style *style)
{
    return dump_value(out, v, style, 0);
}

int pyjson_write_file(const char *path, const json_t *v, const struct pyjson_style *style)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    if (pyjson_dump(&b, v, style) != 0) {
        buf_free(&b);
        return fail_prefix("%s", path);
    }
    int rc = atomic_write_file(path, b.data, b.len);
    buf_free(&b);
    return rc;
}

json_t *json_load_text(const char *text, size_t len, const char *what)
{
    json_error_t err;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!v) fail("%s:%d:%d: %s", what, err.line, err.column, err.text);
    return v;
}

json_t *json_load_path(const char *path)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    if (read_file(path, &b, 0) != 0) {
        buf_free(&b);
        return NULL;
    }
    json_t *v = json_load_text(b.data, b.len, path);
    buf_free(&b);
    return v;
}

static const json_t *lookup(const json_t *obj, const char *key)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    return json_is_null(v) ? NULL : v;
}

static int bad(const char *file, const char *key, const char *what)
{
    return fail("%s: field '%s' must be %s", file, key, what);
}

int json_opt_int(const json_t *obj, const char *key, long long *out, const char *file)
{
    const json_t *v = lookup(obj, key);
    if (!v) return 0;
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 1;
    }
    /* 2.0 is an integer to Python's int(); 2.5 is not */
    if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
        fabs(json_real_value(v)) < 9.0e15) {
        *out = (long long)json_real_value(v);
        return 1;
    }
    return bad(file, key, "an integer");
}

int json_opt_number(const json_t *obj, const char *key, double *out, const char *file)
{
    const json_t *v = lookup(obj, key);
    if (!v) return 0;
    if (!json_is_number(v)) return bad(file, key, "a number");
    *out = json_number_value(v);
    return 1;
}

int json_opt_str(const json_t *obj, const char *key, const char **out, const char *file)
{
    const json_t *v = lookup(obj, key);
    if (!v) return 0;
    if (!json_is_string(v)) return bad(file, key, "a string");
    *out = json_string_value(v);
    return 1;
}

int json_opt_bool(const json_t *obj, const char *key, bool *out, const char *file)
{
    const json_t *v = lookup(obj, key);
    if (!v) return 0;
    if (!json_is_boolean(v)) return bad(file, key, "true or false");
    *out = json_is_true(v);
    return 1;
}

#define NEED(fn, type)                                                                     \
    int json_need_##fn(const json_t *obj, const char *key, type *out, const char *file)    \
    {                                                                                      \
        int rc = json_opt_##fn(obj, key, out, file);                                       \
        if (rc == 0) return fail("%s: missing field '%s'", file, key);                     \
        return rc < 0 ? -1 : 0;                                                            \
    }
NEED(int, long long)
NEED(number, double)
NEED(str, const char *)

void base64_encode(struct buf *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    /* EVP_EncodeBlock takes an int length: go in chunks (multiple of 3). */
    const size_t chunk = 3u << 20;
    while (len) {
        size_t n = len < chunk ? len : chunk;
        size_t need = 4 * ((n + 2) / 3);
        buf_grow(out, need);
        int w = EVP_EncodeBlock((unsigned char *)out->data + out->len, p, (int)n);
        out->len += (size_t)w;
        out->data[out->len] = 0;
        p += n;
        len -= n;
    }
}

int base64_decode(struct buf *out, const char *text, size_t len)
{
    if (len % 4) return fail("base64 text length %zu is not a multiple of 4", len);
    const size_t chunk = 4u << 20;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        buf_grow(out, n / 4 * 3);
        int w = EVP_DecodeBlock((unsigned char *)out->data + out->len,
                                (const unsigned char *)text + off, (int)n);
        if (w < 0) return fail("invalid base64 text");
        /* EVP_DecodeBlock counts padding as zero bytes; padding may only
         * appear at the very end. */
        size_t pad = 0;
        if (off + n == len) {
            if (n >= 1 && text[off + n - 1] == '=') pad++;
            if (n >= 2 && text[off + n - 2] == '=') pad++;
        }
        for (size_t i = off; i < off + n - pad; i++)
            if (text[i] == '=') return fail("invalid base64 text");
        out->len += (size_t)w - pad;
        out->data[out->len] = 0;
    }
    return 0;
}
