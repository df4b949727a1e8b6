/* Precompiled character maps: SentencePiece's normalization rules (a
 * Darts double-array trie mapping input prefixes to offsets of
 * NUL-terminated replacement strings), read the two ways they are used:
 * SentencePiece's (the longest rule at each position) and HuggingFace's
 * "Precompiled" normalizer (per grapheme cluster, the shortest rule). The
 * map comes from a file: every index into it is checked. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

struct tok_charsmap {
    uint32_t *units;
    size_t nunits;
    char *strings;          /* NUL-terminated replacements */
    size_t nstrings;
};

struct tok_charsmap *tok_charsmap_parse(const unsigned char *blob, size_t n, const char *what)
{
    if (n < 4) {
        fail("%s: precompiled charsmap shorter than its header", what);
        return NULL;
    }
    uint32_t trie_size = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 | (uint32_t)blob[3] << 24;
    if (trie_size % 4 || trie_size > n - 4 || trie_size == 0) {
        fail("%s: precompiled charsmap: trie size %u does not fit in %zu bytes", what, trie_size, n);
        return NULL;
    }
    struct tok_charsmap *m = xcalloc(1, sizeof *m);
    m->nunits = trie_size / 4;
    m->units = xmalloc(trie_size);
    for (size_t i = 0; i < m->nunits; i++) {
        const unsigned char *p = blob + 4 + 4 * i;
        m->units[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    m->nstrings = n - 4 - trie_size;
    m->strings = xmalloc(m->nstrings + 1);
    memcpy(m->strings, blob + 4 + trie_size, m->nstrings);
    m->strings[m->nstrings] = 0;   /* so the last string always ends */
    return m;
}

void tok_charsmap_free(struct tok_charsmap *m)
{
    if (!m) return;
    free(m->units);
    free(m->strings);
    free(m);
}

/* Darts-clone unit fields */
static inline bool unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & 0x7FFFFFFFu; }
static inline uint32_t unit_label(uint32_t u) { return u & (0x80000000u | 0xFFu); }
static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }

/* Longest rule matching a prefix of s: its length (0 if none) and the
 * offset of its replacement. Every index is checked: the map is input. */
static size_t charsmap_longest(const struct tok_charsmap *m, const char *s, size_t n, uint32_t *value)
{
    size_t pos = 0, best = 0;
    if (!m->nunits) return 0;
    uint32_t u = m->units[0];
    pos ^= unit_offset(u);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        pos ^= c;
        if (pos >= m->nunits) break;
        u = m->units[pos];
        if (unit_label(u) != c) break;
        pos ^= unit_offset(u);
        if (pos >= m->nunits) break;
        if (unit_has_leaf(u)) {
            uint32_t v = unit_value(m->units[pos]);
            if (v < m->nstrings) {
                best = i + 1;
                *value = v;
            }
        }
    }
    return best;
}

/* One normalization step at the start of s: the replacement and how many
 * input bytes it consumed. */
size_t tok_charsmap_prefix(const struct tok_charsmap *m, const char *s, size_t n, const char **rep, size_t *replen)
{
    uint32_t v = 0;
    size_t l = m ? charsmap_longest(m, s, n, &v) : 0;
    if (l) {
        *rep = m->strings + v;
        *replen = strlen(*rep);
        return l;
    }
    size_t k = utf8_valid_prefix((const unsigned char *)s, n);
    if (!k) {
        *rep = "\xEF\xBF\xBD";
        *replen = 3;
        return 1;
    }
    *rep = s;
    *replen = k;
    return k;
}

void tok_charsmap_normalize(const struct tok_charsmap *m, const char *s, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n) {
        const char *rep;
        size_t rl;
        i += tok_charsmap_prefix(m, s + i, n - i, &rep, &rl);
        buf_add(out, rep, rl);
    }
}

/* HuggingFace's reading of a charsmap (its "Precompiled" normalizer): the
 * shortest rule matching a prefix of a chunk replaces the whole chunk;
 * chunks are grapheme clusters under 6 bytes, else single characters. */
static const char *charsmap_first(const struct tok_charsmap *m, const char *s, size_t n, size_t *replen)
{
    if (!m->nunits) return NULL;
    size_t pos = unit_offset(m->units[0]);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!c) break;
        pos ^= c;
        if (pos >= m->nunits) return NULL;
        uint32_t u = m->units[pos];
        if (unit_label(u) != c) return NULL;
        pos ^= unit_offset(u);
        if (pos >= m->nunits) return NULL;
        if (unit_has_leaf(u)) {
            uint32_t v = unit_value(m->units[pos]);
            if (v >= m->nstrings) return NULL;
            *replen = strlen(m->strings + v);
            return m->strings + v;
        }
    }
    return NULL;
}

void tok_charsmap_normalize_hf(const struct tok_charsmap *m, const char *s, size_t n, struct buf *out)
{
    size_t i = 0;
    while (i < n) {
        size_t gs = i, k;
        int32_t cp = utf8_decode(s + i, n - i, &k);
        i += k;
        utf8proc_int32_t state = 0;
        while (i < n) {
            int32_t next = utf8_decode(s + i, n - i, &k);
            if (utf8proc_grapheme_break_stateful(cp, next, &state)) break;
            cp = next;
            i += k;
        }
        const char *rep;
        size_t rl;
        if (i - gs < 6 && (rep = charsmap_first(m, s + gs, i - gs, &rl))) {
            buf_add(out, rep, rl);
            continue;
        }
        for (size_t j = gs; j < i; j += k) {
            k = utf8_lead_len((unsigned char)s[j]);
            if (k > i - j) k = i - j;
            rep = charsmap_first(m, s + j, k, &rl);
            if (rep) buf_add(out, rep, rl);
            else buf_add(out, s + j, k);
        }
    }
}

