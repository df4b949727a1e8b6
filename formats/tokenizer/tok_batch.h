/* Batch tokenization (mlc-check --tokenize-file): one text per line, or
 * JSON lines whose "text" field holds it, each written as one line of
 * token ids, with the tokenizer loaded once. */
#ifndef MLC_TOK_BATCH_H
#define MLC_TOK_BATCH_H

#include <stdbool.h>
#include <stdio.h>

#include "formats/tokenizer/tokenizer.h"

/* Read `in` (named `name` in messages) to its end. A line that starts with
 * '{' is a JSON object with a string field "text" (so texts may hold
 * newlines); any other line is the text itself (a final "\r" removed).
 * Each gives one line of space-separated ids on `out` (an empty text, an
 * empty line). -1 with "NAME:LINE: ..." on a bad line; -2 when writing to
 * `out` failed (errno tells why). */
int tokenize_lines(struct tokenizer *t, FILE *in, const char *name, bool add_special, FILE *out);

#endif
