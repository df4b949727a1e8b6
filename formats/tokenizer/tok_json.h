/* Internals shared by the tokenizer.json loader's files: tok_json.c (the
 * pipeline components, added tokens, tokenizer_config.json) and
 * tok_json_model.c (the model: vocabulary and merges). */
#ifndef MLC_TOK_JSON_H
#define MLC_TOK_JSON_H

#include "common/jdom.h"
#include "formats/tokenizer/tok_impl.h"

/* model.vocab and model.merges, collected while the file is parsed
 * (common/jdom.h jd_parse_stream): pointers into the text, no nodes. */
struct vitem {
    const char *s;
    uint32_t n;
    int32_t id;       /* object form: the id */
    double score;     /* array form (Unigram): the score */
};

struct mitem {
    const char *a, *b;
    uint32_t alen, blen;
};

struct ctx {
    const char *file;
    struct tokenizer *t;
    bool vocab_seen, vocab_object, merges_seen;
    struct vitem *vocab;
    size_t nvocab, capvocab;
    struct mitem *merges;
    size_t nmerges, capmerges;
};


/* Errors name the file and the field: "FILE: FIELD: WHAT"; always -1. */
int tok_json_bad(const struct ctx *c, const char *field, const char *what);
/* Optional fields (absent or null: the default / NULL); -1 on a wrong type. */
int tok_json_opt_bool(const struct ctx *c, const struct jd *o, const char *key, bool def, bool *out, const char *where);
int tok_json_opt_str(const struct ctx *c, const struct jd *o, const char *key, const struct jd **out, const char *where);
int tok_json_need_str(const struct ctx *c, const struct jd *o, const char *key, const struct jd **out, const char *where);
int tok_json_opt_uint(const struct ctx *c, const struct jd *o, const char *key, size_t def, size_t *out,
                      const char *where);

/* jd_parse_stream hooks collecting model.vocab and model.merges into ctx */
bool tok_json_streamed_member(int depth, const char *parent, size_t parentlen, const char *key, size_t keylen);
int tok_json_consume_member(void *user, const char *key, size_t keylen, struct jd_iter *it);
/* The "model" object (after the pre-tokenizer: byte-level vocabularies
 * depend on it). */
int tok_json_parse_model(const struct ctx *c, const struct jd *m);

#endif
