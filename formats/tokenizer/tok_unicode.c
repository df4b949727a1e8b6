#include "formats/tokenizer/tok_unicode.h"

#include <string.h>
#include <utf8proc.h>





/* Length of the maximal prefix of an ill-formed sequence at s that could
 * start a valid one (at least 1): the unit one U+FFFD replaces. */
static size_t invalid_unit(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c < 0xE0) need = 2;
    else if (c >= 0xE0 && c < 0xF0) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c < 0xF5) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 1;
    size_t k = 1;
    if (k < n && k < need && s[k] >= lo && s[k] <= hi) {
        k++;
        while (k < n && k < need && (s[k] & 0xC0) == 0x80) k++;
    }
    return k;
}

void utf8_append_lossy(struct buf *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        if (u[i] < 0x80) { i++; continue; }
        size_t k = utf8_valid_prefix(u + i, n - i);
        if (k) { i += k; continue; }
        buf_add(out, s + run, i - run);
        buf_add(out, "\xEF\xBF\xBD", 3);
        i += invalid_unit(u + i, n - i);
        run = i;
    }
    buf_add(out, s + run, n - run);
}

bool uc_is_whitespace(int32_t c)
{
    if (c < 0x80) return c == ' ' || (c >= 9 && c <= 13);
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static int cat(int32_t c)
{
    return (int)utf8proc_category(c);
}

bool uc_is_numeric(int32_t c)
{
    if (c < 0x80) return c >= '0' && c <= '9';
    int k = cat(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool uc_is_alphabetic(int32_t c)
{
    if (c < 0x80) return (c | 32) >= 'a' && (c | 32) <= 'z';
    int k = cat(c);
    if (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) return true;
    if (k == UTF8PROC_CATEGORY_NL) return true;
    /* Other_Alphabetic: mostly combining vowel signs (Mn/Mc) and the
     * circled/squared Latin letters */
    if (k == UTF8PROC_CATEGORY_MC) return true;
    if ((c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
        (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189))
        return true;
    if (k == UTF8PROC_CATEGORY_MN) {
        /* Mn with Other_Alphabetic: Indic and other vowel signs; the
         * common combining diacritics (U+0300..036F etc.) are not. */
        if (c >= 0x0300 && c <= 0x036F) return c == 0x0345;
        if (c >= 0x1AB0 && c <= 0x1AFF) return false;
        if (c >= 0x1DC0 && c <= 0x1DFF) return c >= 0x1DE7 && c <= 0x1DF4;
        if (c >= 0x20D0 && c <= 0x20FF) return false;
        if (c >= 0xFE20 && c <= 0xFE2F) return false;
        return true;
    }
    return false;
}

bool uc_is_alphanumeric(int32_t c)
{
    return uc_is_alphabetic(c) || uc_is_numeric(c);
}

bool uc_is_word(int32_t c)
{
    if (c < 0x80) return c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9');
    if (c == 0x200C || c == 0x200D) return true;
    int k = cat(c);
    if (k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_MC || k == UTF8PROC_CATEGORY_ME) return true;
    if (k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_PC) return true;
    return uc_is_alphabetic(c);
}

bool uc_is_punctuation(int32_t c)
{
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    int k = cat(c);
    return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool uc_is_mark_nonspacing(int32_t c)
{
    return c >= 0x80 && cat(c) == UTF8PROC_CATEGORY_MN;
}

bool uc_is_control(int32_t c)
{
    if (c == '\t' || c == '\n' || c == '\r') return false;
    int k = cat(c);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CN ||
           k == UTF8PROC_CATEGORY_CO;
}

bool uc_is_cjk(int32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) ||
           (c >= 0x2B820 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* GPT-2: printable Latin-1 bytes stand for themselves, the other 68 bytes
 * get the code points 256, 257, ... in byte order. */
static int32_t byte_to_cp[256];
static int16_t cp_to_byte[324];
static int bytelevel_ready;

static void bytelevel_init(void)
{
    if (__atomic_load_n(&bytelevel_ready, __ATOMIC_ACQUIRE)) return;
    int32_t b2c[256];
    int16_t c2b[324];
    int next = 256;
    for (int i = 0; i < 324; i++) c2b[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        b2c[b] = keep ? b : next++;
        c2b[b2c[b]] = (int16_t)b;
    }
    for (int i = 0; i < 256; i++) byte_to_cp[i] = b2c[i];
    for (int i = 0; i < 324; i++) cp_to_byte[i] = c2b[i];
    __atomic_store_n(&bytelevel_ready, 1, __ATOMIC_RELEASE);
}

int32_t bytelevel_char(unsigned char b)
{
    bytelevel_init();
    return byte_to_cp[b];
}

int bytelevel_byte(int32_t cp)
{
    bytelevel_init();
    return cp >= 0 && cp < 324 ? cp_to_byte[cp] : -1;
}

void bytelevel_encode(struct buf *out, const char *s, size_t n)
{
    bytelevel_init();
    for (size_t i = 0; i < n; i++) {
        char tmp[4];
        size_t k = utf8_encode(tmp, byte_to_cp[(unsigned char)s[i]]);
        buf_add(out, tmp, k);
    }
}

int bytelevel_decode(struct buf *out, const char *s, size_t n)
{
    if (!__atomic_load_n(&bytelevel_ready, __ATOMIC_ACQUIRE)) bytelevel_init();
    const unsigned char *u = (const unsigned char *)s;
    if (out->cap - out->len <= n) buf_grow(out, n);
    char *o = out->data + out->len;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        if (c - 33u <= 126u - 33u) {
            /* printable ASCII stands for itself */
            *o++ = (char)c;
            i++;
            continue;
        }
        /* every other character of the alphabet is below U+0144: two
         * UTF-8 bytes */
        if (c - 0xC2u > 0xC5u - 0xC2u || i + 1 >= n || (u[i + 1] & 0xC0) != 0x80) return -1;
        unsigned cp = ((c & 0x1F) << 6) | (u[i + 1] & 0x3F);
        int b = cp < 324 ? cp_to_byte[cp] : -1;
        if (b < 0) return -1;
        /* n bytes always suffice: every character is at least one byte */
        *o++ = (char)b;
        i += 2;
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = 0;
    return 0;
}
