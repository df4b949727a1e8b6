/* Split and Replace patterns. tokenizer.json regexes are written for
 * Oniguruma (what HuggingFace tokenizers uses); PCRE2 in UTF + UCP mode
 * reads the same syntax, except that a few escapes mean other things, so
 * they are rewritten first:
 *  - \s / \S: Oniguruma matches the White_Space property; PCRE2 adds
 *    U+180E. Both become explicit sets.
 *  - \h / \H: a hex digit in Oniguruma, horizontal space in PCRE2. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <string.h>

#define WS_SET "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static void translate(struct buf *out, const char *s, size_t n)
{
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[i + 1];
            i++;
            if (e == 's') {
                buf_adds(out, in_class ? WS_SET : "[" WS_SET "]");
            } else if (e == 'S' && !in_class) {
                buf_adds(out, "[^" WS_SET "]");
            } else if (e == 'h') {
                buf_adds(out, in_class ? "0-9a-fA-F" : "[0-9a-fA-F]");
            } else if (e == 'H' && !in_class) {
                buf_adds(out, "[^0-9a-fA-F]");
            } else {
                buf_addc(out, '\\');
                buf_addc(out, e);
            }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            buf_addc(out, c);
            /* a ']' right after '[' or '[^' is literal */
            if (i + 1 < n && s[i + 1] == '^') buf_addc(out, s[++i]);
            if (i + 1 < n && s[i + 1] == ']') buf_addc(out, s[++i]);
            continue;
        }
        if (in_class && c == '[') {
            /* nested class (Oniguruma) or POSIX class: copy to its end */
            buf_addc(out, c);
            continue;
        }
        if (in_class && c == ']') in_class = false;
        buf_addc(out, c);
    }
}

int tok_pattern_regex(struct tok_pattern *p, const char *src, size_t len)
{
    memset(p, 0, sizeof *p);
    struct buf pat = BUF_INIT;
    buf_init(&pat);
    translate(&pat, src, len);
    int err;
    PCRE2_SIZE erroff;
    p->re = pcre2_compile((PCRE2_SPTR)pat.data, pat.len, PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err,
                          &erroff, NULL);
    buf_free(&pat);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return fail("regex /%.*s/: %s", (int)(len > 200 ? 200 : len), src, (char *)msg);
    }
    /* JIT is an optimisation: without it (e.g. on a platform PCRE2 has no
     * JIT for) matching is slower but the same */
    pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    size_t q = len;
    if (q > 60) {
        q = 60;
        while (q > 0 && ((unsigned char)src[q] & 0xC0) == 0x80) q--; /* whole characters */
    }
    p->quoted = xasprintf("/%.*s/%s", (int)q, src, q < len ? " (cut)" : "");
    p->where = xstrdup("built-in pattern");
    return 0;
}

void tok_pattern_literal(struct tok_pattern *p, const char *s, size_t len)
{
    memset(p, 0, sizeof *p);
    p->lit = xstrndup(s, len);
    p->litlen = len;
}

void tok_pattern_set_where(struct tok_pattern *p, const char *where)
{
    free(p->where);
    p->where = xstrdup(where);
}

void tok_pattern_free(struct tok_pattern *p)
{
    free(p->lit);
    free(p->quoted);
    free(p->where);
    if (p->re) pcre2_code_free(p->re);
    memset(p, 0, sizeof *p);
}

/* Match contexts and data belong to a thread: the step limit is set per
 * call, and a JIT stack may serve one match at a time. */
struct match_state {
    pcre2_match_data *md;
    pcre2_jit_stack *stack;
    pcre2_match_context *jit_ctx, *interp_ctx;
};

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static _Thread_local struct match_state *state;
static _Thread_local bool failed;

static void state_free(void *p)
{
    struct match_state *st = p;
    pcre2_match_data_free(st->md);
    pcre2_match_context_free(st->jit_ctx);
    pcre2_match_context_free(st->interp_ctx);
    if (st->stack) pcre2_jit_stack_free(st->stack);
    free(st);
}

static void make_key(void)
{
    if (pthread_key_create(&state_key, state_free)) die("out of memory (regex state)");
}

static struct match_state *thread_state(void)
{
    if (state) return state;
    pthread_once(&state_once, make_key);
    struct match_state *st = xcalloc(1, sizeof *st);
    st->md = pcre2_match_data_create(1, NULL);
    /* a large JIT stack: patterns like \s+(?!\S) backtrack over whole
     * whitespace runs */
    st->stack = pcre2_jit_stack_create(64 * 1024, 64 * 1024 * 1024, NULL);
    st->jit_ctx = pcre2_match_context_create(NULL);
    st->interp_ctx = pcre2_match_context_create(NULL);
    if (!st->md || !st->jit_ctx || !st->interp_ctx) die("out of memory (regex state)");
    if (st->stack) pcre2_jit_stack_assign(st->jit_ctx, NULL, st->stack);
    /* the interpreter keeps its backtracking frames on the heap */
    pcre2_set_heap_limit(st->interp_ctx, 256 * 1024); /* KiB */
    pthread_setspecific(state_key, st);
    state = st;
    return st;
}

bool tok_pattern_failed(void)
{
    bool f = failed;
    failed = false;
    return f;
}

static int gave_up(const struct tok_pattern *p, int rc, size_t n, uint64_t steps)
{
    /* only the first failure is reported: the rest follow from it */
    if (failed) return -1;
    failed = true;
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
        rc == PCRE2_ERROR_JIT_STACKLIMIT)
        return fail("%s: regex %s needs more than %llu backtracking steps on %zu bytes of text "
                    "(a pattern with nested repetition?); refusing to tokenize with it",
                    p->where, p->quoted, (unsigned long long)steps, n);
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    return fail("%s: regex %s failed: %s", p->where, p->quoted, (char *)msg);
}

int tok_pattern_next(const struct tok_pattern *p, const char *s, size_t n, size_t from, size_t *ms, size_t *me)
{
    if (!p->re) {
        if (!p->litlen || from >= n) return 0;
        const char *hit = memmem(s + from, n - from, p->lit, p->litlen);
        if (!hit) return 0;
        *ms = (size_t)(hit - s);
        *me = *ms + p->litlen;
        return 1;
    }
    if (from > n) return 0;
    struct match_state *st = thread_state();
    /* the work allowed grows with the text still to search */
    uint64_t steps = TOK_MATCH_STEPS_BASE + (uint64_t)TOK_MATCH_STEPS_PER_BYTE * (n - from);
    uint32_t limit = steps > UINT32_MAX ? UINT32_MAX : (uint32_t)steps;
    pcre2_set_match_limit(st->jit_ctx, limit);
    /* one pair of offsets is all we read (rc 0 then means "matched,
     * groups not stored") */
    int rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, st->md, st->jit_ctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_JIT_BADOPTION) {
        /* too deep for the JIT stack (or no JIT): the interpreter, with
         * the same bound on its work */
        pcre2_set_match_limit(st->interp_ctx, limit);
        pcre2_set_depth_limit(st->interp_ctx, limit);
        rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, st->md,
                         st->interp_ctx);
    }
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return gave_up(p, rc, n - from, steps);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

void tok_pattern_replace(const struct tok_pattern *p, const char *s, size_t n, const char *with, size_t wlen,
                         struct buf *out)
{
    size_t pos = 0, from = 0, ms, me;
    while (from <= n && tok_pattern_next(p, s, n, from, &ms, &me) > 0) {
        buf_add(out, s + pos, ms - pos);
        buf_add(out, with, wlen);
        pos = me;
        if (me == ms) {
            /* empty match: step over one character */
            if (me >= n) break;
            size_t k = utf8_lead_len((unsigned char)s[me]);
            buf_add(out, s + me, k);
            pos = me + k;
            from = pos;
        } else {
            from = me;
        }
    }
    buf_add(out, s + pos, n - pos);
}
