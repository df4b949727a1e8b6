/* Decoders of tokenizer.json: each turns a list of token strings into
 * another list (HuggingFace's decode_chain); the final text is their
 * concatenation. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>

void tok_strs_reset(struct tok_strs *s)
{
    if (!s->data.data) buf_init(&s->data);
    buf_reset(&s->data);
    s->n = 0;
}

void tok_strs_add(struct tok_strs *s, const char *p, size_t len)
{
    if (!s->data.data) buf_init(&s->data);
    if (s->n == s->cap) {
        size_t cap = s->cap;
        s->off = xgrow(s->off, &cap, s->n + 1, sizeof *s->off);
        s->len = xgrow(s->len, &s->cap, s->n + 1, sizeof *s->len);
    }
    s->off[s->n] = s->data.len;
    s->len[s->n] = len;
    s->n++;
    buf_add(&s->data, p, len);
}

void tok_strs_free(struct tok_strs *s)
{
    buf_free(&s->data);
    free(s->off);
    free(s->len);
    memset(s, 0, sizeof *s);
}

#define STR(s, i) ((s)->data.data + (s)->off[i])

static void byte_level(const struct tok_strs *in, struct tok_strs *out)
{
    struct buf bytes = BUF_INIT, text = BUF_INIT;
    buf_init(&bytes);
    buf_init(&text);
    for (size_t i = 0; i < in->n; i++) {
        size_t mark = bytes.len;
        if (bytelevel_decode(&bytes, STR(in, i), in->len[i]) != 0) {
            /* a character outside the byte alphabet: the token as it is */
            bytes.len = mark;
            buf_add(&bytes, STR(in, i), in->len[i]);
        }
    }
    utf8_append_lossy(&text, bytes.data, bytes.len);
    tok_strs_add(out, text.data, text.len);
    buf_free(&bytes);
    buf_free(&text);
}

static void metaspace(const struct tok_dec *d, const struct tok_strs *in, struct tok_strs *out)
{
    struct buf t = BUF_INIT;
    buf_init(&t);
    for (size_t i = 0; i < in->n; i++) {
        buf_reset(&t);
        const char *s = STR(in, i);
        size_t n = in->len[i], j = 0;
        while (j < n) {
            if (n - j >= d->replacement_len && !memcmp(s + j, d->replacement, d->replacement_len)) {
                if (!(i == 0 && d->prepend != PREPEND_NEVER)) buf_addc(&t, ' ');
                j += d->replacement_len;
            } else {
                buf_addc(&t, s[j++]);
            }
        }
        tok_strs_add(out, t.data, t.len);
    }
    buf_free(&t);
}

static int byte_token(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = s[k];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

static void flush_bytes(struct buf *pending, struct tok_strs *out)
{
    if (!pending->len) return;
    if (utf8_is_valid(pending->data, pending->len)) {
        tok_strs_add(out, pending->data, pending->len);
    } else {
        /* one U+FFFD per byte token */
        for (size_t k = 0; k < pending->len; k++) tok_strs_add(out, "\xEF\xBF\xBD", 3);
    }
    buf_reset(pending);
}

static void byte_fallback(const struct tok_strs *in, struct tok_strs *out)
{
    struct buf pending = BUF_INIT;
    buf_init(&pending);
    for (size_t i = 0; i < in->n; i++) {
        int b = byte_token(STR(in, i), in->len[i]);
        if (b >= 0) {
            buf_addc(&pending, (char)b);
            continue;
        }
        flush_bytes(&pending, out);
        tok_strs_add(out, STR(in, i), in->len[i]);
    }
    flush_bytes(&pending, out);
    buf_free(&pending);
}

static void fuse(const struct tok_strs *in, struct tok_strs *out)
{
    tok_strs_add(out, in->data.data, in->data.len);
}

static void strip_dec(const struct tok_dec *d, const struct tok_strs *in, struct tok_strs *out)
{
    for (size_t i = 0; i < in->n; i++) {
        const char *s = STR(in, i);
        size_t a = 0, b = in->len[i];
        for (size_t k = 0; k < d->strip_start && a < b; k++) {
            size_t l;
            if (utf8_decode(s + a, b - a, &l) != d->strip_cp) break;
            a += l;
        }
        for (size_t k = 0; k < d->strip_stop && b > a; k++) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
            size_t l;
            if (utf8_decode(s + st, b - st, &l) != d->strip_cp) break;
            b = st;
        }
        tok_strs_add(out, s + a, b - a);
    }
}

static void replace_dec(const struct tok_dec *d, const struct tok_strs *in, struct tok_strs *out)
{
    struct buf t = BUF_INIT;
    buf_init(&t);
    for (size_t i = 0; i < in->n; i++) {
        buf_reset(&t);
        tok_pattern_replace(&d->pat, STR(in, i), in->len[i], d->content, d->content_len, &t);
        tok_strs_add(out, t.data, t.len);
    }
    buf_free(&t);
}

static void replace_all(struct buf *s, const char *from, const char *to)
{
    size_t fl = strlen(from);
    if (!memmem(s->data, s->len, from, fl)) return;
    struct buf t = BUF_INIT;
    buf_init(&t);
    size_t i = 0;
    while (i < s->len) {
        if (s->len - i >= fl && !memcmp(s->data + i, from, fl)) {
            buf_adds(&t, to);
            i += fl;
        } else {
            buf_addc(&t, s->data[i++]);
        }
    }
    buf_reset(s);
    buf_add(s, t.data, t.len);
    buf_free(&t);
}

static void cleanup_text(struct buf *s)
{
    static const char *pairs[][2] = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) replace_all(s, pairs[i][0], pairs[i][1]);
}

static void wordpiece_dec(const struct tok_dec *d, const struct tok_strs *in, struct tok_strs *out)
{
    struct buf t = BUF_INIT;
    buf_init(&t);
    for (size_t i = 0; i < in->n; i++) {
        buf_reset(&t);
        const char *s = STR(in, i);
        size_t n = in->len[i];
        if (i != 0) {
            if (n >= d->prefix_len && !memcmp(s, d->prefix, d->prefix_len)) {
                s += d->prefix_len;
                n -= d->prefix_len;
            } else {
                buf_addc(&t, ' ');
            }
        }
        buf_add(&t, s, n);
        if (d->cleanup) cleanup_text(&t);
        tok_strs_add(out, t.data, t.len);
    }
    buf_free(&t);
}

static void bpe_dec(const struct tok_dec *d, const struct tok_strs *in, struct tok_strs *out)
{
    struct buf t = BUF_INIT;
    buf_init(&t);
    for (size_t i = 0; i < in->n; i++) {
        buf_reset(&t);
        buf_add(&t, STR(in, i), in->len[i]);
        replace_all(&t, d->prefix, i + 1 == in->n ? "" : " ");
        tok_strs_add(out, t.data, t.len);
    }
    buf_free(&t);
}

static void ctc_dec(const struct tok_dec *d, const struct tok_strs *in, struct tok_strs *out)
{
    struct buf t = BUF_INIT;
    buf_init(&t);
    for (size_t i = 0; i < in->n; i++) {
        /* drop repeats of the previous token, then the pad token */
        if (i > 0 && in->len[i] == in->len[i - 1] && !memcmp(STR(in, i), STR(in, i - 1), in->len[i])) continue;
        buf_reset(&t);
        buf_add(&t, STR(in, i), in->len[i]);
        replace_all(&t, d->prefix, "");
        if (d->cleanup) {
            cleanup_text(&t);
            replace_all(&t, d->word_delim, " ");
        }
        if (t.len) tok_strs_add(out, t.data, t.len);
    }
    buf_free(&t);
}

static void step(const struct tok_dec *d, const struct tok_strs *in, struct tok_strs *out)
{
    switch (d->kind) {
    case DEC_BYTELEVEL: byte_level(in, out); break;
    case DEC_METASPACE: metaspace(d, in, out); break;
    case DEC_BYTEFALLBACK: byte_fallback(in, out); break;
    case DEC_FUSE: fuse(in, out); break;
    case DEC_STRIP: strip_dec(d, in, out); break;
    case DEC_REPLACE: replace_dec(d, in, out); break;
    case DEC_WORDPIECE: wordpiece_dec(d, in, out); break;
    case DEC_BPE: bpe_dec(d, in, out); break;
    case DEC_CTC: ctc_dec(d, in, out); break;
    case DEC_SEQUENCE: break;
    }
}

static void chain(const struct tok_dec *d, struct tok_strs *tokens, struct tok_strs *spare)
{
    if (d->kind == DEC_SEQUENCE) {
        for (size_t i = 0; i < d->nkids; i++) chain(d->kids[i], tokens, spare);
        return;
    }
    tok_strs_reset(spare);
    step(d, tokens, spare);
    struct tok_strs t = *tokens;
    *tokens = *spare;
    *spare = t;
}

void tok_decode_chain(const struct tok_dec *d, struct tok_strs *tokens, struct buf *out)
{
    if (!d) {
        /* no decoder: tokens joined by spaces */
        for (size_t i = 0; i < tokens->n; i++) {
            if (i) buf_addc(out, ' ');
            buf_add(out, STR(tokens, i), tokens->len[i]);
        }
        return;
    }
    struct tok_strs spare = {0};
    chain(d, tokens, &spare);
    tok_strs_free(&spare);
    for (size_t i = 0; i < tokens->n; i++) buf_add(out, STR(tokens, i), tokens->len[i]);
}

void tok_dec_free(struct tok_dec *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->nkids; i++) tok_dec_free(d->kids[i]);
    free(d->kids);
    tok_pattern_free(&d->pat);
    free(d->content);
    free(d->prefix);
    free(d->word_delim);
    free(d);
}
