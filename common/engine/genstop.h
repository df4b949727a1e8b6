/* When generation stops, and which text may be shown meanwhile.
 *
 * Fed one generated token at a time with the text the streaming
 * detokenizer produced for it, it stops on a stop token id (EOS ids
 * included: the caller lists them), on a stop string (found across token
 * boundaries: text that could be the start of a stop string is held back
 * until it is known not to be one), or after max_tokens tokens. As in
 * MLC-LLM, neither a stop token's text nor a stop string (nor anything
 * after it) is shown. */
#ifndef MLC_GENSTOP_H
#define MLC_GENSTOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum stop_reason { STOP_NONE, STOP_TOKEN, STOP_STRING, STOP_LENGTH };

struct gen_stop {
    int32_t *stop_ids;
    size_t n_ids;
    char **stop_strs;
    size_t n_strs;
    size_t max_tokens;          /* 0: no limit */
    size_t generated;
    struct buf held;            /* text not shown yet */
    enum stop_reason reason;
};

void gen_stop_init(struct gen_stop *g, const int32_t *stop_ids, size_t n_ids, const char *const *stop_strs,
                   size_t n_strs, size_t max_tokens);
/* Feed a token and its text; append what may be shown to out. Returns
 * STOP_NONE while generation should go on. */
enum stop_reason gen_stop_feed(struct gen_stop *g, int32_t id, const char *text, size_t len, struct buf *out);
/* Generation ended for another reason: show what was held back. */
void gen_stop_flush(struct gen_stop *g, struct buf *out);
void gen_stop_free(struct gen_stop *g);
const char *stop_reason_name(enum stop_reason r);

#endif
