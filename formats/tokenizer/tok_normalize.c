/* Normalizers of tokenizer.json. Unicode normalization forms come from
 * utf8proc; the rest follows HuggingFace tokenizers' definitions. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static void unicode_form(enum norm_kind k, const char *s, size_t n, struct buf *out)
{
    /* ASCII is the same in all four forms: most text needs no work */
    size_t i = 0;
    while (i < n && (unsigned char)s[i] < 0x80) i++;
    if (i == n) {
        buf_add(out, s, n);
        return;
    }
    int opt = UTF8PROC_STABLE;
    switch (k) {
    case NORM_NFC: opt |= UTF8PROC_COMPOSE; break;
    case NORM_NFD: opt |= UTF8PROC_DECOMPOSE; break;
    case NORM_NFKC: opt |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: opt |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    utf8proc_uint8_t *res = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &res, opt);
    if (r < 0) {
        /* only on invalid UTF-8, which callers never pass */
        buf_add(out, s, n);
    } else {
        buf_add(out, res, (size_t)r);
    }
    free(res);
}

static void put_cp(struct buf *out, int32_t cp)
{
    char tmp[4];
    buf_add(out, tmp, utf8_encode(tmp, cp));
}

static void lowercase(const char *s, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            buf_addc(out, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
            i++;
            continue;
        }
        size_t k;
        int32_t cp = utf8_decode(s + i, n - i, &k);
        i += k;
        if (cp == 0x130) {
            /* the one unconditional multi-character lowercase mapping */
            buf_adds(out, "i\xCC\x87");
            continue;
        }
        put_cp(out, utf8proc_tolower(cp));
    }
}

static void strip(const char *s, size_t n, bool left, bool right, struct buf *out)
{
    size_t a = 0, b = n;
    while (left && a < b) {
        size_t k;
        int32_t cp = utf8_decode(s + a, b - a, &k);
        if (!uc_is_whitespace(cp)) break;
        a += k;
    }
    while (right && b > a) {
        size_t st = b - 1;
        while (st > a && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
        size_t k;
        int32_t cp = utf8_decode(s + st, b - st, &k);
        if (!uc_is_whitespace(cp)) break;
        b = st;
    }
    buf_add(out, s + a, b - a);
}

static void strip_accents(const char *s, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t k;
        int32_t cp = utf8_decode(s + i, n - i, &k);
        if (!uc_is_mark_nonspacing(cp)) buf_add(out, s + i, k);
        i += k;
    }
}

static void bert(const struct tok_norm *nm, const char *s, size_t n, struct buf *out)
{
    struct buf a = BUF_INIT, b = BUF_INIT;
    buf_init(&a);
    buf_init(&b);
    size_t i = 0;
    while (i < n) {
        size_t k;
        int32_t cp = utf8_decode(s + i, n - i, &k);
        if (nm->clean_text) {
            if (cp == 0 || cp == 0xFFFD || uc_is_control(cp)) { i += k; continue; }
            if (uc_is_whitespace(cp)) { buf_addc(&a, ' '); i += k; continue; }
        }
        if (nm->chinese_chars && uc_is_cjk(cp)) {
            buf_addc(&a, ' ');
            buf_add(&a, s + i, k);
            buf_addc(&a, ' ');
        } else {
            buf_add(&a, s + i, k);
        }
        i += k;
    }
    bool accents = nm->strip_accents < 0 ? nm->lowercase : nm->strip_accents > 0;
    if (accents) {
        unicode_form(NORM_NFD, a.data, a.len, &b);
        buf_reset(&a);
        strip_accents(b.data, b.len, &a);
    }
    if (nm->lowercase) lowercase(a.data, a.len, out);
    else buf_add(out, a.data, a.len);
    buf_free(&a);
    buf_free(&b);
}

/* HuggingFace's Nmt normalizer: drop some control characters, turn some
 * separators into spaces. */
static void nmt(const char *s, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t k;
        int32_t c = utf8_decode(s + i, n - i, &k);
        bool drop = (c >= 1 && c <= 8) || c == 0xB || (c >= 0xE && c <= 0x1F) || c == 0x7F || c == 0x8F ||
                    c == 0x9F;
        bool space = c == 0x9 || c == 0xA || c == 0xC || c == 0xD || c == 0x1680 || (c >= 0x200B && c <= 0x200F) ||
                     c == 0x2028 || c == 0x2029 || c == 0x2581 || c == 0xFEFF || c == 0xFFFD;
        if (space) buf_addc(out, ' ');
        else if (!drop) buf_add(out, s + i, k);
        i += k;
    }
}

static void apply(const struct tok_norm *nm, const char *s, size_t n, struct buf *out)
{
    switch (nm->kind) {
    case NORM_NFC: case NORM_NFD: case NORM_NFKC: case NORM_NFKD:
        unicode_form(nm->kind, s, n, out);
        break;
    case NORM_LOWERCASE: lowercase(s, n, out); break;
    case NORM_STRIP: strip(s, n, nm->left, nm->right, out); break;
    case NORM_STRIP_ACCENTS: strip_accents(s, n, out); break;
    case NORM_PREPEND:
        if (n) buf_add(out, nm->str, nm->strlen_);
        buf_add(out, s, n);
        break;
    case NORM_REPLACE: tok_pattern_replace(&nm->pat, s, n, nm->str, nm->strlen_, out); break;
    case NORM_BERT: bert(nm, s, n, out); break;
    case NORM_NMT: nmt(s, n, out); break;
    case NORM_PRECOMPILED: tok_charsmap_normalize_hf(nm->charsmap, s, n, out); break;
    case NORM_BYTELEVEL: bytelevel_encode(out, s, n); break;
    case NORM_SEQUENCE: {
        struct buf a = BUF_INIT, b = BUF_INIT;
        buf_init(&a);
        buf_init(&b);
        buf_add(&a, s, n);
        for (size_t i = 0; i < nm->nkids; i++) {
            buf_reset(&b);
            apply(nm->kids[i], a.data, a.len, &b);
            struct buf t = a;
            a = b;
            b = t;
        }
        buf_add(out, a.data, a.len);
        buf_free(&a);
        buf_free(&b);
        break;
    }
    }
}

void tok_normalize(const struct tok_norm *nm, const char *s, size_t n, struct buf *out)
{
    buf_reset(out);
    if (!nm) buf_add(out, s, n);
    else apply(nm, s, n, out);
}

void tok_norm_free(struct tok_norm *nm)
{
    if (!nm) return;
    for (size_t i = 0; i < nm->nkids; i++) tok_norm_free(nm->kids[i]);
    free(nm->kids);
    free(nm->str);
    tok_pattern_free(&nm->pat);
    if (nm->charsmap) tok_charsmap_free(nm->charsmap);
    free(nm);
}
