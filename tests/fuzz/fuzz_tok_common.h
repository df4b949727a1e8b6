/* What the tokenizer harnesses do with a tokenizer that loaded: encode a
 * few texts (with and without special tokens) and decode the ids, as
 * mlc-check --tokenize and generation do. */
#ifndef MLC_FUZZ_TOK_COMMON_H
#define MLC_FUZZ_TOK_COMMON_H

#include "common/buf.h"
#include "formats/tokenizer/tokenizer.h"

static void fuzz_use_tokenizer(struct tokenizer *t)
{
    static const char *const texts[] = {
        "Once upon a time, there was a little girl.",
        "  spaces\tand\nnewlines  ",
        "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80 123 <s></s><|endoftext|>",
        "",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        for (int special = 0; special < 2; special++) {
            struct tok_ids ids = {0};
            if (tokenizer_encode(t, texts[i], strlen(texts[i]), special, &ids) == 0) {
                struct buf out = BUF_INIT;
                buf_init(&out);
                tokenizer_decode(t, ids.v, ids.n, special, &out);
                buf_free(&out);
            }
            tok_ids_free(&ids);
        }
    }
    /* ids the vocabulary may not have */
    int32_t odd[] = {0, 1, 2, -1, 255, 256, 100000, (int32_t)tokenizer_vocab_size(t) - 1};
    struct buf out = BUF_INIT;
    buf_init(&out);
    tokenizer_decode(t, odd, sizeof odd / sizeof odd[0], false, &out);
    buf_free(&out);
    tokenizer_free(t);
}

#endif
