/* UTF-8: well-formed sequences as Unicode defines them (no overlongs, no
 * surrogates, nothing above U+10FFFF). */
#ifndef MLC_UTF8_H
#define MLC_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence at s, or 0 if s does not start with one. */
size_t utf8_valid_prefix(const unsigned char *s, size_t n);
/* Decode one code point from s[0..n) (n >= 1). Invalid input yields
 * U+FFFD and length 1. */
int32_t utf8_decode(const char *s, size_t n, size_t *len);
size_t utf8_encode(char out[4], int32_t cp);
bool utf8_is_valid(const char *s, size_t n);
/* Byte length of the UTF-8 character starting with lead byte c (1..4). */
static inline size_t utf8_lead_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

#endif
