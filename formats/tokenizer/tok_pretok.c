/* Pre-tokenizers of tokenizer.json: each splits every piece into smaller
 * pieces, following HuggingFace tokenizers' split rules (a list of
 * match / non-match spans, then a delimiter behaviour). */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>

const char tok_gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void tok_pieces_reset(struct tok_pieces *p)
{
    buf_reset(&p->text);
    p->n = 0;
}

void tok_pieces_add(struct tok_pieces *p, const char *s, size_t len, bool at_start)
{
    if (!len) return;   /* empty pieces are dropped, as HuggingFace does */
    if (!p->text.data) buf_init(&p->text);
    p->v = xgrow(p->v, &p->cap, p->n + 1, sizeof *p->v);
    p->v[p->n].off = p->text.len;
    p->v[p->n].len = len;
    p->v[p->n].at_start = at_start;
    p->n++;
    buf_add(&p->text, s, len);
}

void tok_pieces_free(struct tok_pieces *p)
{
    buf_free(&p->text);
    free(p->v);
    memset(p, 0, sizeof *p);
}

struct span_ev {
    size_t s, e;
    bool match;
};

struct events {
    struct span_ev *v;
    size_t n, cap;
};

static void ev_add(struct events *ev, size_t s, size_t e, bool m)
{
    ev->v = xgrow(ev->v, &ev->cap, ev->n + 1, sizeof *ev->v);
    ev->v[ev->n++] = (struct span_ev){s, e, m};
}

/* Matches of a pattern over s, as HuggingFace lists them: non-matching
 * gaps and matches in order, covering all of s. An empty match right
 * after the previous match is skipped (the regex engine's find_iter). */
static void pattern_events(const struct tok_pattern *pat, const char *s, size_t n, struct events *ev)
{
    ev->n = 0;
    if (!n) return;
    size_t prev = 0, from = 0, ms, me;
    bool have_last = false;
    size_t last_end = 0;
    while (from <= n && tok_pattern_next(pat, s, n, from, &ms, &me) > 0) {
        if (ms == me && have_last && ms == last_end) {
            if (ms >= n) break;
            from = ms + utf8_lead_len((unsigned char)s[ms]);
            continue;
        }
        if (prev != ms) ev_add(ev, prev, ms, false);
        ev_add(ev, ms, me, true);
        prev = me;
        have_last = true;
        last_end = me;
        if (me == ms) {
            if (me >= n) break;
            from = me + utf8_lead_len((unsigned char)s[me]);
        } else {
            from = me;
        }
    }
    if (prev != n) ev_add(ev, prev, n, false);
}

typedef bool (*char_pred)(int32_t cp, const struct tok_pretok *pt);

/* Every character satisfying pred is a match of its own. */
static void char_events(char_pred pred, const struct tok_pretok *pt, const char *s, size_t n, struct events *ev)
{
    ev->n = 0;
    size_t last = 0, i = 0;
    while (i < n) {
        size_t k;
        int32_t cp = utf8_decode(s + i, n - i, &k);
        if (pred(cp, pt)) {
            if (last < i) ev_add(ev, last, i, false);
            ev_add(ev, i, i + k, true);
            last = i + k;
        }
        i += k;
    }
    if (last < n) ev_add(ev, last, n, false);
}

/* Apply a delimiter behaviour to the events: they become the pieces
 * (their number is returned). */
static size_t apply_behavior(struct events *ev, enum split_behavior b, bool invert)
{
    if (invert)
        for (size_t i = 0; i < ev->n; i++) ev->v[i].match = !ev->v[i].match;
    struct span_ev *v = ev->v;
    size_t n = ev->n, w = 0;
    switch (b) {
    case SPLIT_ISOLATED:
        w = n;
        break;
    case SPLIT_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!v[i].match) v[w++] = v[i];
        break;
    case SPLIT_MERGED_PREV: {
        bool prev_match = false;
        for (size_t i = 0; i < n; i++) {
            if (v[i].match && !prev_match && w > 0) v[w - 1].e = v[i].e;
            else v[w++] = v[i];
            prev_match = v[i].match;
        }
        break;
    }
    case SPLIT_MERGED_NEXT: {
        /* walk backwards, merging a match into the piece after it */
        bool prev_match = false;
        size_t r = n;
        for (size_t i = n; i-- > 0;) {
            struct span_ev cur = v[i];
            if (cur.match && !prev_match && r < n) v[r].s = cur.s;
            else v[--r] = cur;
            prev_match = cur.match;
        }
        memmove(v, v + r, (n - r) * sizeof *v);
        w = n - r;
        break;
    }
    case SPLIT_CONTIGUOUS: {
        int prev = -1;
        for (size_t i = 0; i < n; i++) {
            if (prev == (int)v[i].match && w > 0) v[w - 1].e = v[i].e;
            else v[w++] = v[i];
            prev = v[i].match;
        }
        break;
    }
    }
    return w;
}

/* Apply a delimiter behaviour to the events of piece s and add the
 * resulting pieces to out. */
static void emit_split(const char *s, struct events *ev, enum split_behavior b, bool invert, bool at_start,
                       struct tok_pieces *out)
{
    size_t w = apply_behavior(ev, b, invert);
    for (size_t i = 0; i < w; i++) tok_pieces_add(out, s + ev->v[i].s, ev->v[i].e - ev->v[i].s, at_start && ev->v[i].s == 0);
}

static bool is_digit_pred(int32_t cp, const struct tok_pretok *pt)
{
    (void)pt;
    return uc_is_numeric(cp);
}

static bool is_punct_pred(int32_t cp, const struct tok_pretok *pt)
{
    (void)pt;
    return uc_is_punctuation(cp);
}

static bool is_ws_pred(int32_t cp, const struct tok_pretok *pt)
{
    (void)pt;
    return uc_is_whitespace(cp);
}

static bool is_delim_pred(int32_t cp, const struct tok_pretok *pt)
{
    return cp == pt->replacement_cp;
}

static bool is_bert_punct(int32_t cp, const struct tok_pretok *pt)
{
    (void)pt;
    return uc_is_punctuation(cp);
}

/* Whitespace pre-tokenizer: runs of \w and runs of [^\w\s] are kept,
 * whitespace is dropped. */
static void whitespace_split_words(const char *s, size_t n, bool at_start, struct tok_pieces *out)
{
    size_t i = 0;
    while (i < n) {
        size_t k;
        int32_t cp = utf8_decode(s + i, n - i, &k);
        if (uc_is_whitespace(cp)) { i += k; continue; }
        bool word = uc_is_word(cp);
        size_t st = i;
        i += k;
        while (i < n) {
            cp = utf8_decode(s + i, n - i, &k);
            if (uc_is_whitespace(cp) || uc_is_word(cp) != word) break;
            i += k;
        }
        tok_pieces_add(out, s + st, i - st, at_start && st == 0);
    }
}

static struct tok_pattern gpt2_re;
static pthread_once_t gpt2_once = PTHREAD_ONCE_INIT;

static void gpt2_init(void)
{
    if (tok_pattern_regex(&gpt2_re, tok_gpt2_pattern, strlen(tok_gpt2_pattern)))
        die("internal error: %s", last_error());
}

static void one_step(struct tok_pretok *pt, const struct tok_pieces *in, struct tok_pieces *out)
{
    struct events ev = {0};
    struct buf tmp = BUF_INIT;
    buf_init(&tmp);
    tok_pieces_reset(out);
    for (size_t i = 0; i < in->n; i++) {
        const char *s = in->text.data + in->v[i].off;
        size_t n = in->v[i].len;
        bool at0 = in->v[i].at_start;
        switch (pt->kind) {
        case PT_BYTELEVEL: {
            buf_reset(&tmp);
            if (pt->add_prefix_space && !(n && s[0] == ' ')) buf_addc(&tmp, ' ');
            buf_add(&tmp, s, n);
            struct tok_pieces *dst = out;
            struct tok_pieces mid = {0};
            if (!pt->defer_bytes) dst = &mid;
            if (pt->use_regex) {
                pthread_once(&gpt2_once, gpt2_init);
                pattern_events(&gpt2_re, tmp.data, tmp.len, &ev);
                emit_split(tmp.data, &ev, SPLIT_ISOLATED, false, at0, dst);
            } else {
                tok_pieces_add(dst, tmp.data, tmp.len, at0);
            }
            if (!pt->defer_bytes) {
                struct buf enc = BUF_INIT;
                buf_init(&enc);
                for (size_t j = 0; j < mid.n; j++) {
                    buf_reset(&enc);
                    bytelevel_encode(&enc, mid.text.data + mid.v[j].off, mid.v[j].len);
                    tok_pieces_add(out, enc.data, enc.len, mid.v[j].at_start);
                }
                buf_free(&enc);
                tok_pieces_free(&mid);
            }
            break;
        }
        case PT_SPLIT:
            if (!pt->pat.re && !pt->pat.litlen) {
                ev.n = 0;
                ev_add(&ev, 0, n, false);
            } else {
                pattern_events(&pt->pat, s, n, &ev);
            }
            emit_split(s, &ev, pt->behavior, pt->invert, at0, out);
            break;
        case PT_DIGITS:
            char_events(is_digit_pred, pt, s, n, &ev);
            emit_split(s, &ev, pt->individual_digits ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS, false, at0, out);
            break;
        case PT_PUNCTUATION:
            char_events(is_punct_pred, pt, s, n, &ev);
            emit_split(s, &ev, pt->behavior, false, at0, out);
            break;
        case PT_WHITESPACE_SPLIT:
            char_events(is_ws_pred, pt, s, n, &ev);
            emit_split(s, &ev, SPLIT_REMOVED, false, at0, out);
            break;
        case PT_CHAR_DELIMITER:
            char_events(is_delim_pred, pt, s, n, &ev);
            emit_split(s, &ev, SPLIT_REMOVED, false, at0, out);
            break;
        case PT_WHITESPACE:
            whitespace_split_words(s, n, at0, out);
            break;
        case PT_BERT: {
            struct tok_pieces mid = {0};
            char_events(is_ws_pred, pt, s, n, &ev);
            emit_split(s, &ev, SPLIT_REMOVED, false, at0, &mid);
            for (size_t j = 0; j < mid.n; j++) {
                const char *ms = mid.text.data + mid.v[j].off;
                char_events(is_bert_punct, pt, ms, mid.v[j].len, &ev);
                emit_split(ms, &ev, SPLIT_ISOLATED, false, mid.v[j].at_start, out);
            }
            tok_pieces_free(&mid);
            break;
        }
        case PT_METASPACE: {
            buf_reset(&tmp);
            bool starts = n >= pt->replacement_len && !memcmp(s, pt->replacement, pt->replacement_len);
            /* spaces become the replacement first, so "starts with" sees them */
            bool space_first = n && s[0] == ' ';
            bool prepend = !(starts || space_first) &&
                           (pt->prepend == PREPEND_ALWAYS || (pt->prepend == PREPEND_FIRST && at0));
            if (prepend) buf_add(&tmp, pt->replacement, pt->replacement_len);
            for (size_t j = 0; j < n; j++) {
                if (s[j] == ' ') buf_add(&tmp, pt->replacement, pt->replacement_len);
                else buf_addc(&tmp, s[j]);
            }
            if (pt->split) {
                struct tok_pattern lit = {.lit = pt->replacement, .litlen = pt->replacement_len};
                pattern_events(&lit, tmp.data, tmp.len, &ev);
                emit_split(tmp.data, &ev, SPLIT_MERGED_NEXT, false, at0, out);
            } else {
                tok_pieces_add(out, tmp.data, tmp.len, at0);
            }
            break;
        }
        case PT_SEQUENCE:
            break;
        }
    }
    free(ev.v);
    buf_free(&tmp);
}

void tok_pretokenize(struct tok_pretok *pt, const struct tok_pieces *in, struct tok_pieces *out)
{
    if (pt->kind != PT_SEQUENCE) {
        one_step(pt, in, out);
        return;
    }
    struct tok_pieces a = {0}, b = {0};
    tok_pieces_reset(out);
    for (size_t i = 0; i < in->n; i++)
        tok_pieces_add(&a, in->text.data + in->v[i].off, in->v[i].len, in->v[i].at_start);
    for (size_t k = 0; k < pt->nkids; k++) {
        tok_pretokenize(pt->kids[k], &a, &b);
        struct tok_pieces t = a;
        a = b;
        b = t;
    }
    for (size_t i = 0; i < a.n; i++) tok_pieces_add(out, a.text.data + a.v[i].off, a.v[i].len, a.v[i].at_start);
    tok_pieces_free(&a);
    tok_pieces_free(&b);
}

void tok_pretok_split_direct(const struct tok_pretok *pt, const char *s, size_t n,
                             void (*fn)(void *ctx, const char *p, size_t len), void *ctx)
{
    struct events ev = {0};
    if (!pt->pat.re && !pt->pat.litlen) ev_add(&ev, 0, n, false);
    else pattern_events(&pt->pat, s, n, &ev);
    size_t w = apply_behavior(&ev, pt->behavior, pt->invert);
    for (size_t i = 0; i < w; i++)
        if (ev.v[i].e > ev.v[i].s) fn(ctx, s + ev.v[i].s, ev.v[i].e - ev.v[i].s);
    free(ev.v);
}

struct tok_pretok *tok_pretok_simplify(struct tok_pretok *pt)
{
    if (!pt || pt->kind != PT_SEQUENCE) return pt;
    size_t w = 0;
    for (size_t i = 0; i < pt->nkids; i++) {
        struct tok_pretok *k = tok_pretok_simplify(pt->kids[i]);
        pt->kids[i] = k;
        /* ByteLevel with deferred bytes, no regex and no prefix space
         * changes nothing */
        if (k->kind == PT_BYTELEVEL && k->defer_bytes && !k->use_regex && !k->add_prefix_space) {
            tok_pretok_free(k);
            continue;
        }
        pt->kids[w++] = k;
    }
    pt->nkids = w;
    if (w == 1) {
        struct tok_pretok *only = pt->kids[0];
        pt->nkids = 0;
        tok_pretok_free(pt);
        return only;
    }
    return pt;
}

void tok_pretok_free(struct tok_pretok *pt)
{
    if (!pt) return;
    for (size_t i = 0; i < pt->nkids; i++) tok_pretok_free(pt->kids[i]);
    free(pt->kids);
    tok_pattern_free(&pt->pat);
    free(pt);
}
