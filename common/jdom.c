#include "common/jdom.h"
#include "common/utf8.h"
#include "common/buf.h"
#include "common/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define JD_MAX_DEPTH 512

/* Child arrays live in large blocks; a block is never moved, so pointers
 * into it stay valid while the document grows. */
struct jd_block {
    struct jd_block *next;
    size_t used, cap;
    struct jd nodes[];
};

struct parser {
    char *text;
    size_t len, pos;
    const char *name;
    bool (*want)(int depth, const char *parent, size_t parentlen, const char *key, size_t keylen);
    int (*consume)(void *user, const char *key, size_t keylen, struct jd_iter *it);
    void *user;
    struct jd_block *blocks;
    /* nodes of containers still open, children appended in order */
    struct jd *stack;
    size_t depth_nodes, stack_cap;
};

static int perr(struct parser *p, const char *what)
{
    size_t line = 1, col = 1;
    size_t end = p->pos < p->len ? p->pos : p->len;
    for (size_t i = 0; i < end; i++) {
        if (p->text[i] == '\n') line++, col = 1;
        else if (((unsigned char)p->text[i] & 0xC0) != 0x80) col++;
    }
    return fail("%s:%zu:%zu: %s", p->name, line, col, what);
}

static struct jd *alloc_nodes(struct parser *p, size_t n)
{
    struct jd_block *b = p->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        size_t bytes;
        if (!size_mul(cap, sizeof(struct jd), &bytes) || !size_add(bytes, sizeof *b, &bytes))
            die("JSON document too large");
        b = xmalloc(bytes);
        b->used = 0;
        b->cap = cap;
        b->next = p->blocks;
        p->blocks = b;
    }
    struct jd *r = b->nodes + b->used;
    b->used += n;
    return r;
}

static struct jd *push(struct parser *p)
{
    if (p->depth_nodes == p->stack_cap) p->stack = xgrow(p->stack, &p->stack_cap, p->depth_nodes + 1, sizeof *p->stack);
    struct jd *n = &p->stack[p->depth_nodes++];
    memset(n, 0, sizeof *n);
    return n;
}

static inline void skip_ws(struct parser *p)
{
    const char *t = p->text;
    size_t i = p->pos, n = p->len;
    while (i < n && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t')) i++;
    p->pos = i;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int read_hex4(struct parser *p, size_t at, unsigned *out)
{
    if (at + 4 > p->len) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p->text[at + i]);
        if (h < 0) return -1;
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return 0;
}



/* Parse the string starting at the opening quote; unescape in place. */
static int parse_string(struct parser *p, const char **out, uint32_t *outlen)
{
    size_t i = ++p->pos;
    char *t = p->text;
    /* fast scan: most strings have no escapes */
    while (i < p->len) {
        unsigned char c = (unsigned char)t[i];
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        i++;
    }
    size_t w = i;
    while (i < p->len) {
        unsigned char c = (unsigned char)t[i];
        if (c == '"') {
            if (w - p->pos > UINT32_MAX) return perr(p, "string too long");
            *out = t + p->pos;
            *outlen = (uint32_t)(w - p->pos);
            p->pos = i + 1;
            return 0;
        }
        if (c < 0x20) { p->pos = i; return perr(p, "control character in string"); }
        if (c >= 0xC2 && c < 0xE0 && i + 1 < p->len && ((unsigned char)t[i + 1] & 0xC0) == 0x80) {
            /* two-byte characters (Ġ and the rest of the byte-level
             * alphabet) are most of the non-ASCII in tokenizer files */
            if (w != i) t[w] = t[i], t[w + 1] = t[i + 1];
            w += 2;
            i += 2;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_valid_prefix((const unsigned char *)t + i, p->len - i);
            if (!k) { p->pos = i; return perr(p, "invalid UTF-8 in string"); }
            if (w != i) memmove(t + w, t + i, k);
            w += k;
            i += k;
            continue;
        }
        if (c != '\\') {
            if (w != i) t[w] = (char)c;
            w++;
            i++;
            continue;
        }
        if (i + 1 >= p->len) break;
        char e = t[i + 1];
        i += 2;
        switch (e) {
        case '"': t[w++] = '"'; break;
        case '\\': t[w++] = '\\'; break;
        case '/': t[w++] = '/'; break;
        case 'b': t[w++] = '\b'; break;
        case 'f': t[w++] = '\f'; break;
        case 'n': t[w++] = '\n'; break;
        case 'r': t[w++] = '\r'; break;
        case 't': t[w++] = '\t'; break;
        case 'u': {
            unsigned cp;
            if (read_hex4(p, i, &cp)) { p->pos = i; return perr(p, "bad \\u escape"); }
            i += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (i + 6 > p->len || t[i] != '\\' || t[i + 1] != 'u' || read_hex4(p, i + 2, &lo) ||
                    lo < 0xDC00 || lo >= 0xE000) {
                    p->pos = i;
                    return perr(p, "lone surrogate in \\u escape");
                }
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                p->pos = i;
                return perr(p, "lone surrogate in \\u escape");
            }
            /* the escape took at least 6 bytes; UTF-8 needs at most 4 */
            w += utf8_encode(t + w, cp);
            break;
        }
        default: p->pos = i - 1; return perr(p, "bad escape in string");
        }
    }
    p->pos = p->len;
    return perr(p, "unterminated string");
}

static int parse_number(struct parser *p, struct jd *n)
{
    size_t i = p->pos;
    const char *t = p->text;
    bool neg = false;
    if (i < p->len && t[i] == '-') neg = true, i++;
    if (i >= p->len || t[i] < '0' || t[i] > '9') return perr(p, "bad number");
    if (t[i] == '0' && i + 1 < p->len && t[i + 1] >= '0' && t[i + 1] <= '9')
        return perr(p, "number with a leading zero");
    uint64_t v = 0;
    bool overflow = false;
    while (i < p->len && t[i] >= '0' && t[i] <= '9') {
        unsigned d = (unsigned)(t[i] - '0');
        if (v > (UINT64_MAX - d) / 10) overflow = true;
        else v = v * 10 + d;
        i++;
    }
    bool frac = false;
    if (i < p->len && t[i] == '.') {
        frac = true;
        i++;
        if (i >= p->len || t[i] < '0' || t[i] > '9') { p->pos = i; return perr(p, "bad number"); }
        while (i < p->len && t[i] >= '0' && t[i] <= '9') i++;
    }
    if (i < p->len && (t[i] == 'e' || t[i] == 'E')) {
        frac = true;
        i++;
        if (i < p->len && (t[i] == '+' || t[i] == '-')) i++;
        if (i >= p->len || t[i] < '0' || t[i] > '9') { p->pos = i; return perr(p, "bad number"); }
        while (i < p->len && t[i] >= '0' && t[i] <= '9') i++;
    }
    n->type = JD_NUMBER;
    if (!frac && !overflow && v <= (uint64_t)INT64_MAX) {
        n->is_int = true;
        n->ival = neg ? -(int64_t)v : (int64_t)v;
        n->u.num = (double)n->ival;
    } else {
        /* strtod needs a terminated copy; numbers are short */
        char tmp[400];
        size_t k = i - p->pos;
        if (k >= sizeof tmp) return perr(p, "number too long");
        memcpy(tmp, t + p->pos, k);
        tmp[k] = 0;
        n->u.num = strtod(tmp, NULL);
        if (!isfinite(n->u.num)) return perr(p, "number out of range");
    }
    p->pos = i;
    return 0;
}

static int stream_member(struct parser *p, struct jd *node);

static bool match_word(struct parser *p, const char *w)
{
    size_t k = strlen(w);
    if (p->len - p->pos < k || memcmp(p->text + p->pos, w, k)) return false;
    p->pos += k;
    return true;
}

/* Containers are parsed without recursion: `open` holds, for each open
 * container, the stack index of its node; its children follow it. */
static int parse_value_tree(struct parser *p, struct jd *root)
{
    size_t open[JD_MAX_DEPTH];
    int depth = 0;
    struct jd *cur = push(p);
    for (;;) {
        /* here `cur` is a fresh node to fill with a value */
        skip_ws(p);
        if (p->pos >= p->len) return perr(p, "unexpected end of input");
        char c = p->text[p->pos];
        if ((c == '{' || c == '[') && p->want && cur->key && depth > 0 &&
            p->want(depth, p->stack[open[depth - 1]].key, p->stack[open[depth - 1]].keylen, cur->key, cur->keylen)) {
            size_t idx = (size_t)(cur - p->stack);
            struct jd tmp = *cur;
            if (stream_member(p, &tmp)) return -1;
            cur = p->stack + idx;
            *cur = tmp;
        } else if (c == '{' || c == '[') {
            if (depth == JD_MAX_DEPTH) return perr(p, "nesting too deep");
            cur->type = c == '{' ? JD_OBJECT : JD_ARRAY;
            open[depth++] = (size_t)(cur - p->stack);
            p->pos++;
            skip_ws(p);
            char close = c == '{' ? '}' : ']';
            if (p->pos < p->len && p->text[p->pos] == close) {
                p->pos++;
                depth--;
                cur->n = 0;
                cur->u.kids = NULL;
                goto after_value;
            }
            goto next_member;
        } else if (c == '"') {
            const char *s;
            uint32_t n;
            size_t idx = (size_t)(cur - p->stack);
            if (parse_string(p, &s, &n)) return -1;
            cur = p->stack + idx;
            cur->type = JD_STRING;
            cur->u.str = s;
            cur->n = n;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            if (parse_number(p, cur)) return -1;
        } else if (match_word(p, "true")) {
            cur->type = JD_TRUE;
        } else if (match_word(p, "false")) {
            cur->type = JD_FALSE;
        } else if (match_word(p, "null")) {
            cur->type = JD_NULL;
        } else {
            return perr(p, "unexpected character");
        }
    after_value:
        if (depth == 0) break;
        skip_ws(p);
        {
            struct jd *ctr = p->stack + open[depth - 1];
            char close = ctr->type == JD_OBJECT ? '}' : ']';
            if (p->pos < p->len && p->text[p->pos] == ',') {
                p->pos++;
                goto next_member;
            }
            if (p->pos >= p->len || p->text[p->pos] != close)
                return perr(p, ctr->type == JD_OBJECT ? "expected ',' or '}'" : "expected ',' or ']'");
            p->pos++;
            /* close the container: move its children into a block */
            size_t first = open[depth - 1] + 1;
            size_t n = p->depth_nodes - first;
            if (n > UINT32_MAX) return perr(p, "too many elements");
            struct jd *kids = alloc_nodes(p, n ? n : 1);
            memcpy(kids, p->stack + first, n * sizeof *kids);
            ctr = p->stack + open[depth - 1];
            ctr->n = (uint32_t)n;
            ctr->u.kids = kids;
            p->depth_nodes = first;
            depth--;
            cur = ctr;
            goto after_value;
        }
    next_member : {
        struct jd *ctr = p->stack + open[depth - 1];
        bool is_obj = ctr->type == JD_OBJECT;
        skip_ws(p);
        if (is_obj) {
            if (p->pos >= p->len || p->text[p->pos] != '"') return perr(p, "expected a string key");
            const char *k;
            uint32_t kl;
            if (parse_string(p, &k, &kl)) return -1;
            skip_ws(p);
            if (p->pos >= p->len || p->text[p->pos] != ':') return perr(p, "expected ':'");
            p->pos++;
            cur = push(p);
            cur->key = k;
            cur->keylen = kl;
        } else {
            cur = push(p);
        }
        continue;
    }
    }
    *root = p->stack[0];
    return 0;
}

int jd_parse(struct jd_doc *doc, char *text, size_t len, const char *name)
{
    return jd_parse_stream(doc, text, len, name, NULL, NULL, NULL);
}

int jd_parse_stream(struct jd_doc *doc, char *text, size_t len, const char *name,
                    bool (*want)(int depth, const char *parent, size_t parentlen, const char *key, size_t keylen),
                    int (*consume)(void *user, const char *key, size_t keylen, struct jd_iter *it), void *user)
{
    struct parser p = {.text = text, .len = len, .name = name, .want = want, .consume = consume, .user = user};
    memset(doc, 0, sizeof *doc);
    doc->text = text;
    doc->len = len;
    doc->name = name;
    int rc = parse_value_tree(&p, &doc->root);
    if (rc == 0) {
        skip_ws(&p);
        if (p.pos != p.len) rc = perr(&p, "extra data after the JSON value");
    }
    free(p.stack);
    doc->blocks = p.blocks;
    if (rc) {
        jd_free(doc);
        return -1;
    }
    return 0;
}

/* ---- streamed members ---- */

struct iter_state {
    struct parser p;     /* shares the text; its own node blocks */
    char close;
    bool first, done;
    int64_t count;
    struct jd node;
    struct jd pair[2];
};

/* A two-string array ["A", "B"] (merges in the newer form) parsed
 * directly; false (position unchanged) if the element is anything else. */
static bool parse_pair(struct parser *p, struct iter_state *st)
{
    size_t save = p->pos;
    if (p->pos >= p->len || p->text[p->pos] != '[') return false;
    p->pos++;
    for (int k = 0; k < 2; k++) {
        skip_ws(p);
        const char *str;
        uint32_t n;
        if (p->pos >= p->len || p->text[p->pos] != '"') goto no;
        /* only strings without escapes: parse_string leaves those
         * untouched, so giving up later leaves the text as it was */
        const char *q = memchr(p->text + p->pos + 1, '"', p->len - p->pos - 1);
        if (!q || memchr(p->text + p->pos + 1, '\\', (size_t)(q - p->text - p->pos - 1))) goto no;
        if (parse_string(p, &str, &n)) goto no;
        memset(&st->pair[k], 0, sizeof st->pair[k]);
        st->pair[k].type = JD_STRING;
        st->pair[k].u.str = str;
        st->pair[k].n = n;
        skip_ws(p);
        if (p->pos >= p->len || p->text[p->pos] != (k == 0 ? ',' : ']')) goto no;
        p->pos++;
    }
    memset(&st->node, 0, sizeof st->node);
    st->node.type = JD_ARRAY;
    st->node.n = 2;
    st->node.u.kids = st->pair;
    return true;
no:
    /* nothing was modified: the general parser takes over */
    p->pos = save;
    return false;
}

static void reset_blocks(struct parser *p)
{
    for (struct jd_block *b = p->blocks; b; b = b->next) b->used = 0;
    p->depth_nodes = 0;
}

int jd_iter_next(struct jd_iter *it, const struct jd **out)
{
    struct iter_state *st = it->p;
    struct parser *p = &st->p;
    if (st->done) return 0;
    skip_ws(p);
    if (p->pos >= p->len) return perr(p, "unexpected end of input");
    char c = p->text[p->pos];
    if (c == st->close && st->first) {
        p->pos++;
        st->done = true;
        return 0;
    }
    if (!st->first) {
        /* between elements */
        if (c == st->close) {
            p->pos++;
            st->done = true;
            return 0;
        }
        if (c != ',') return perr(p, it->object ? "expected ',' or '}'" : "expected ',' or ']'");
        p->pos++;
        skip_ws(p);
    }
    st->first = false;
    reset_blocks(p);
    const char *key = NULL;
    uint32_t keylen = 0;
    if (it->object) {
        if (p->pos >= p->len || p->text[p->pos] != '"') return perr(p, "expected a string key");
        if (parse_string(p, &key, &keylen)) return -1;
        skip_ws(p);
        if (p->pos >= p->len || p->text[p->pos] != ':') return perr(p, "expected ':'");
        p->pos++;
        skip_ws(p);
    }
    if (p->pos < p->len && p->text[p->pos] == '"') {
        /* strings (merges, and most values) without the tree machinery */
        const char *str;
        uint32_t n;
        if (parse_string(p, &str, &n)) return -1;
        memset(&st->node, 0, sizeof st->node);
        st->node.type = JD_STRING;
        st->node.u.str = str;
        st->node.n = n;
    } else if (p->pos < p->len && (p->text[p->pos] == '-' || (p->text[p->pos] >= '0' && p->text[p->pos] <= '9'))) {
        memset(&st->node, 0, sizeof st->node);
        if (parse_number(p, &st->node)) return -1;
    } else if (parse_pair(p, st)) {
        /* ["A", "B"] */
    } else if (parse_value_tree(p, &st->node)) {
        return -1;
    }
    st->node.key = key;
    st->node.keylen = keylen;
    st->count++;
    *out = &st->node;
    return 1;
}

/* The member value at p->pos goes to the consumer; then whatever it left
 * is walked, and the main parse continues after the value. */
static int stream_member(struct parser *p, struct jd *node)
{
    struct iter_state *st = xcalloc(1, sizeof *st);
    st->p.text = p->text;
    st->p.len = p->len;
    st->p.pos = p->pos + 1;
    st->p.name = p->name;
    st->close = p->text[p->pos] == '{' ? '}' : ']';
    st->first = true;
    struct jd_iter it = {st, st->close == '}'};
    size_t start = p->pos;
    int rc = p->consume(p->user, node->key, node->keylen, &it);
    const struct jd *e;
    while (rc == 0 && (rc = jd_iter_next(&it, &e)) == 1) rc = 0;
    if (rc == 0) {
        p->pos = st->p.pos;
        node->type = JD_LAZY;
        node->u.str = p->text + start;
        node->n = p->pos - start > UINT32_MAX ? UINT32_MAX : (uint32_t)(p->pos - start);
        node->ival = st->count;
    }
    free(st->p.stack);
    struct jd_block *b = st->p.blocks;
    while (b) {
        struct jd_block *next = b->next;
        free(b);
        b = next;
    }
    free(st);
    return rc < 0 ? -1 : 0;
}

void jd_free(struct jd_doc *doc)
{
    struct jd_block *b = doc->blocks;
    while (b) {
        struct jd_block *next = b->next;
        free(b);
        b = next;
    }
    doc->blocks = NULL;
    memset(&doc->root, 0, sizeof doc->root);
}

const struct jd *jd_get(const struct jd *obj, const char *key)
{
    if (!obj || obj->type != JD_OBJECT) return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < obj->n; i++) {
        const struct jd *m = &obj->u.kids[i];
        if (m->keylen == kl && !memcmp(m->key, key, kl)) return m;
    }
    return NULL;
}

bool jd_is(const struct jd *v, enum jd_type t)
{
    return v && v->type == t;
}

bool jd_streq(const struct jd *v, const char *s)
{
    return v && v->type == JD_STRING && v->n == strlen(s) && !memcmp(v->u.str, s, v->n);
}

const char *jd_type_name(const struct jd *v)
{
    if (!v) return "missing";
    switch (v->type) {
    case JD_NULL: return "null";
    case JD_FALSE: case JD_TRUE: return "a boolean";
    case JD_NUMBER: return "a number";
    case JD_STRING: return "a string";
    case JD_ARRAY: return "an array";
    case JD_OBJECT: return "an object";
    default: return "a lazy value";
    }
}
