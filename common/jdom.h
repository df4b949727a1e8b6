/* A fast, read-only JSON document model for large files.
 *
 * jansson (common/json.h) builds a hash table per object and a heap object
 * per value: right for configuration files, but a tokenizer.json holds a
 * 128k-entry vocabulary and 280k merges, and jansson needs about 0.4 s for
 * it. This parser does one pass over the text, unescapes strings in place
 * and keeps every node in a few large blocks, so the same file parses in
 * tens of milliseconds. Objects keep their members in file order (lookups
 * are linear, which suits the small objects we search by key).
 *
 * The text must stay alive (and is modified) while the document is used.
 * Strings are validated as UTF-8 and may contain NUL bytes (len counts them).
 */
#ifndef MLC_JDOM_H
#define MLC_JDOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jd_type { JD_NULL, JD_FALSE, JD_TRUE, JD_NUMBER, JD_STRING, JD_ARRAY, JD_OBJECT, JD_LAZY };

struct jd {
    uint8_t type;          /* enum jd_type */
    bool is_int;           /* a number written without fraction or exponent */
    uint32_t n;            /* string length, or number of children */
    uint32_t keylen;       /* for members of an object */
    const char *key;       /* NULL outside objects */
    union {
        const char *str;   /* JD_STRING: not NUL-terminated in general */
        double num;        /* JD_NUMBER */
        struct jd *kids;   /* JD_ARRAY, JD_OBJECT */
    } u;
    int64_t ival;          /* JD_NUMBER with is_int (exact up to 2^63) */
};

struct jd_doc {
    struct jd root;
    void *blocks;          /* private */
    char *text;            /* the parsed text and its name, for jd_iter */
    size_t len;
    const char *name;
};

/* Parse text[0..len) (modified in place). On error returns -1 with
 * last_error() "NAME:LINE:COL: what". */
int jd_parse(struct jd_doc *doc, char *text, size_t len, const char *name);

/* Walk the elements of an array or object one at a time (see
 * jd_parse_stream). For objects each element carries its key. */
struct jd_iter {
    void *p;              /* private */
    bool object;
};

/* 1: *out is the next element (valid until the next call; strings point
 * into the document text and stay valid with it); 0: the end; -1: a
 * syntax error (last_error() "NAME:LINE:COL: what"). */
int jd_iter_next(struct jd_iter *it, const struct jd **out);

/* Parse like jd_parse, but hand the array or object value of every object
 * member for which want(depth, parent_key, key) says true (depth 1: members
 * of the root; parent_key: the key of the object holding the member, NULL
 * for the root) to consume(), which walks it with jd_iter_next: huge
 * arrays (a vocabulary, merges) then cost no nodes at all. Elements
 * consume() leaves are walked (and checked) anyway. consume() returns -1
 * (with fail()) to stop the parse. In the document such a member becomes
 * a JD_LAZY node (u.str: its first byte, n: its length, ival: its number
 * of elements). */
int jd_parse_stream(struct jd_doc *doc, char *text, size_t len, const char *name,
                    bool (*want)(int depth, const char *parent, size_t parentlen, const char *key, size_t keylen),
                    int (*consume)(void *user, const char *key, size_t keylen, struct jd_iter *it), void *user);
void jd_free(struct jd_doc *doc);

/* Member of an object by key, or NULL (also NULL when obj is not an object). */
const struct jd *jd_get(const struct jd *obj, const char *key);
bool jd_is(const struct jd *v, enum jd_type t);
bool jd_streq(const struct jd *v, const char *s);   /* a string equal to s */
const char *jd_type_name(const struct jd *v);

#endif
