/* Unicode helpers for the tokenizer: UTF-8 stepping, the character classes
 * HuggingFace tokenizers uses (Rust's char predicates), lossy UTF-8
 * conversion as Rust's String::from_utf8_lossy does it, and GPT-2's
 * byte <-> printable-character map. Character data comes from utf8proc. */
#ifndef MLC_TOK_UNICODE_H
#define MLC_TOK_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/utf8.h"

/* Append s as valid UTF-8, replacing each maximal invalid subpart with
 * U+FFFD (Rust's from_utf8_lossy, WHATWG decoding). */
void utf8_append_lossy(struct buf *out, const char *s, size_t n);

bool uc_is_whitespace(int32_t cp);     /* White_Space property */
bool uc_is_alphabetic(int32_t cp);     /* approximately the Alphabetic property */
bool uc_is_numeric(int32_t cp);        /* Nd, Nl, No */
bool uc_is_alphanumeric(int32_t cp);
bool uc_is_word(int32_t cp);           /* regex \w (Unicode) */
bool uc_is_punctuation(int32_t cp);    /* P* or ASCII punctuation */
bool uc_is_mark_nonspacing(int32_t cp);/* Mn */
bool uc_is_control(int32_t cp);        /* Cc, Cf, ... as BERT's _is_control */
bool uc_is_cjk(int32_t cp);            /* BERT's CJK ranges */

/* GPT-2 byte-level alphabet: byte -> code point, and code point -> byte
 * (-1 if the code point is not in the alphabet). */
int32_t bytelevel_char(unsigned char b);
int bytelevel_byte(int32_t cp);
/* Map raw bytes to their byte-level characters (UTF-8). */
void bytelevel_encode(struct buf *out, const char *s, size_t n);
/* Map byte-level characters back to bytes; -1 if a character is not in the
 * alphabet (out is then unspecified). */
int bytelevel_decode(struct buf *out, const char *s, size_t n);

#endif
