/* tokenizer.json's model: BPE, WordPiece or Unigram, from the vocabulary
 * and merges collected while the file was parsed (pointers into its text,
 * never JSON nodes: they are most of the file). */
#include "formats/tokenizer/tok_json.h"
#include "formats/tokenizer/tok_unicode.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

bool tok_json_streamed_member(int depth, const char *parent, size_t parentlen, const char *key, size_t keylen)
{
    return depth == 2 && parentlen == 5 && !memcmp(parent, "model", 5) &&
           ((keylen == 5 && !memcmp(key, "vocab", 5)) || (keylen == 6 && !memcmp(key, "merges", 6)));
}

static int consume_vocab(struct ctx *c, struct jd_iter *it)
{
    const struct jd *e;
    int r;
    c->vocab_seen = true;
    c->vocab_object = it->object;
    while ((r = jd_iter_next(it, &e)) == 1) {
        struct vitem v = {0};
        if (it->object) {
            if (!jd_is(e, JD_NUMBER) || !e->is_int || e->ival < 0 || e->ival > TOK_MAX_ID)
                return tok_json_bad(c, "model.vocab", "token ids must be integers from 0 to 16777215");
            v = (struct vitem){e->key, e->keylen, (int32_t)e->ival, 0};
        } else {
            if (!jd_is(e, JD_ARRAY) || e->n != 2 || !jd_is(&e->u.kids[0], JD_STRING) ||
                !jd_is(&e->u.kids[1], JD_NUMBER) || c->nvocab >= TOK_MAX_ID) {
                char f[64];
                snprintf(f, sizeof f, "model.vocab[%zu]", c->nvocab);
                return tok_json_bad(c, f, "must be [piece, score]");
            }
            v = (struct vitem){e->u.kids[0].u.str, e->u.kids[0].n, (int32_t)c->nvocab, e->u.kids[1].u.num};
        }
        if (c->nvocab == c->capvocab) c->vocab = xgrow(c->vocab, &c->capvocab, c->nvocab + 1, sizeof *c->vocab);
        c->vocab[c->nvocab++] = v;
    }
    return r;
}

static int consume_merges(struct ctx *c, struct jd_iter *it)
{
    const struct jd *e;
    int r;
    c->merges_seen = true;
    if (it->object) return tok_json_bad(c, "model.merges", "must be an array");
    while ((r = jd_iter_next(it, &e)) == 1) {
        struct mitem m;
        const char *sp;
        if (e->type == JD_STRING && (sp = memchr(e->u.str, ' ', e->n))) {
            m = (struct mitem){e->u.str, sp + 1, (uint32_t)(sp - e->u.str), (uint32_t)(e->n - (size_t)(sp - e->u.str) - 1)};
        } else if (e->type == JD_ARRAY && e->n == 2 && e->u.kids[0].type == JD_STRING &&
                   e->u.kids[1].type == JD_STRING) {
            m = (struct mitem){e->u.kids[0].u.str, e->u.kids[1].u.str, e->u.kids[0].n, e->u.kids[1].n};
        } else {
            char f[64];
            snprintf(f, sizeof f, "model.merges[%zu]", c->nmerges);
            return tok_json_bad(c, f, "a merge must be \"A B\" or [\"A\", \"B\"]");
        }
        if (c->nmerges == c->capmerges)
            c->merges = xgrow(c->merges, &c->capmerges, c->nmerges + 1, sizeof *c->merges);
        c->merges[c->nmerges++] = m;
    }
    return r;
}

int tok_json_consume_member(void *user, const char *key, size_t keylen, struct jd_iter *it)
{
    struct ctx *c = user;
    if (keylen == 5 && key[0] == 'v') return consume_vocab(c, it) < 0 ? -1 : 0;
    return consume_merges(c, it) < 0 ? -1 : 0;
}

/* The vocabulary must have come as an object (BPE, WordPiece) or an
 * array (Unigram). */
static int need_vocab(const struct ctx *c, const struct jd *m, bool object)
{
    if (!c->vocab_seen || c->vocab_object != object) {
        (void)m;
        return tok_json_bad(c, "model.vocab", object ? "must be an object" : "must be an array");
    }
    for (size_t i = 0; i < c->nvocab; i++)
        if (c->vocab[i].n > TOKENIZER_MAX_TOKEN_BYTES) {
            char f[64];
            snprintf(f, sizeof f, "model.vocab (token %lld)", (long long)c->vocab[i].id);
            return tok_json_bad(c, f, "a token longer than 65536 bytes");
        }
    return 0;
}

static void note_byte_token(int32_t *byte_ids, const char *s, size_t n, int32_t id)
{
    if (n == 6 && !memcmp(s, "<0x", 3) && s[5] == '>') {
        int v = 0;
        for (int k = 3; k < 5; k++) {
            char ch = s[k];
            int h = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
            if (h < 0) return;
            v = v * 16 + h;
        }
        byte_ids[v] = id;
    }
}

/* Is the pre-tokenizer's last step ByteLevel? Then its byte -> character
 * mapping can move into the BPE model, after the word cache. */
static struct tok_pretok *final_bytelevel(struct tok_pretok *pt)
{
    if (!pt) return NULL;
    if (pt->kind == PT_BYTELEVEL) return pt;
    if (pt->kind != PT_SEQUENCE || !pt->nkids) return NULL;
    for (size_t i = 0; i + 1 < pt->nkids; i++)
        if (pt->kids[i]->kind == PT_BYTELEVEL || pt->kids[i]->kind == PT_SEQUENCE) return NULL;
    return pt->kids[pt->nkids - 1]->kind == PT_BYTELEVEL ? pt->kids[pt->nkids - 1] : NULL;
}

static int parse_bpe(const struct ctx *c, const struct jd *m)
{
    struct tokenizer *t = c->t;
    struct tok_bpe *b = &t->model.bpe;
    t->model.kind = MODEL_BPE;
    tok_bpe_init(b);
    const struct jd *s, *merges = jd_get(m, "merges");
    if (need_vocab(c, m, true)) return -1;
    if (merges && merges->type != JD_NULL && !c->merges_seen) return tok_json_bad(c, "model.merges", "must be an array");
    if (tok_json_opt_bool(c, m, "fuse_unk", false, &b->fuse_unk, "model") ||
        tok_json_opt_bool(c, m, "byte_fallback", false, &b->byte_fallback, "model") ||
        tok_json_opt_bool(c, m, "ignore_merges", false, &b->ignore_merges, "model"))
        return -1;
    const struct jd *dropout = jd_get(m, "dropout");
    if (dropout && dropout->type == JD_NUMBER && dropout->u.num > 0)
        return tok_json_bad(c, "model.dropout", "BPE dropout is random and not supported");
    if (tok_json_opt_str(c, m, "continuing_subword_prefix", &s, "model")) return -1;
    if (s && s->n) b->prefix = xstrndup(s->u.str, s->n), b->prefix_len = s->n;
    if (tok_json_opt_str(c, m, "end_of_word_suffix", &s, "model")) return -1;
    if (s && s->n) b->suffix = xstrndup(s->u.str, s->n), b->suffix_len = s->n;

    /* a byte-level pipeline hands raw-byte pieces to the model, which
     * maps them only when its word cache misses */
    struct tok_pretok *bl = final_bytelevel(t->pretok);
    if (bl) {
        bl->defer_bytes = true;
        b->map_bytes = true;
    }
    strmap_free(&b->vocab);
    strmap_init(&b->vocab, c->nvocab);
    tok_reserve_pieces(t, c->nvocab);
    /* inserted in batches: hash, prefetch the slots, then insert */
    enum { VB = 64 };
    uint64_t hv[VB];
    for (size_t base = 0; base < c->nvocab; base += VB) {
        size_t k = c->nvocab - base < VB ? c->nvocab - base : VB;
        for (size_t i = 0; i < k; i++) {
            const struct vitem *e = &c->vocab[base + i];
            tok_set_piece(t, e->id, e->s, e->n);
            note_byte_token(b->byte_ids, e->s, e->n, e->id);
            hv[i] = tok_hash_bytes(e->s, e->n);
            strmap_prefetch(&b->vocab, hv[i]);
        }
        for (size_t i = 0; i < k; i++) {
            const struct vitem *e = &c->vocab[base + i];
            strmap_put_hashed(&b->vocab, e->s, e->n, hv[i], e->id);
        }
    }
    const struct jd *unk;
    if (tok_json_opt_str(c, m, "unk_token", &unk, "model")) return -1;
    if (unk) {
        /* the unknown token must be in the model vocabulary */
        b->unk_id = strmap_get(&b->vocab, unk->u.str, unk->n);
        if (b->unk_id < 0) return tok_json_bad(c, "model.unk_token", "not in the vocabulary");
    }

    u64map_free(&b->merges);
    u64map_init(&b->merges, c->nmerges);
    struct merge_text *mt = xmalloc((c->nmerges ? c->nmerges : 1) * sizeof *mt);
    size_t nm = 0;
    for (size_t i = 0; i < c->nmerges; i++) {
        const struct mitem *e = &c->merges[i];
        mt[nm++] = (struct merge_text){e->a, e->b, e->alen, e->blen, (uint32_t)i};
    }
    long badm = tok_bpe_add_merges(b, mt, nm);
    if (badm >= 0) badm = mt[badm].rank;
    free(mt);
    if (badm >= 0) {
        char f[64];
        snprintf(f, sizeof f, "model.merges[%ld]", badm);
        return tok_json_bad(c, f, "a merge whose parts or result are not in the vocabulary");
    }
    return 0;
}

static int parse_wordpiece(const struct ctx *c, const struct jd *m)
{
    struct tokenizer *t = c->t;
    struct tok_wordpiece *w = &t->model.wp;
    t->model.kind = MODEL_WORDPIECE;
    const struct jd *s;
    if (need_vocab(c, m, true)) return -1;
    strmap_init(&w->vocab, c->nvocab);
    for (size_t i = 0; i < c->nvocab; i++) {
        const struct vitem *e = &c->vocab[i];
        tok_set_piece(t, e->id, e->s, e->n);
        strmap_put(&w->vocab, e->s, e->n, e->id);
    }
    if (tok_json_opt_str(c, m, "continuing_subword_prefix", &s, "model")) return -1;
    w->prefix = s ? xstrndup(s->u.str, s->n) : xstrdup("##");
    w->prefix_len = strlen(w->prefix);
    if (tok_json_opt_uint(c, m, "max_input_chars_per_word", 100, &w->max_chars, "model")) return -1;
    if (tok_json_opt_str(c, m, "unk_token", &s, "model")) return -1;
    w->unk_id = s ? strmap_get(&w->vocab, s->u.str, s->n) : -1;
    if (s && w->unk_id < 0) return tok_json_bad(c, "model.unk_token", "not in the vocabulary");
    return 0;
}

static int parse_unigram(const struct ctx *c, const struct jd *m)
{
    struct tokenizer *t = c->t;
    struct tok_unigram *u = &t->model.uni;
    t->model.kind = MODEL_UNIGRAM;
    if (need_vocab(c, m, false)) return -1;
    strmap_init(&u->vocab, c->nvocab);
    for (int i = 0; i < 256; i++) u->byte_ids[i] = -1;
    u->min_score = INFINITY;
    u->n = c->nvocab;
    u->scores = xmalloc((u->n ? u->n : 1) * sizeof *u->scores);
    tok_reserve_pieces(t, c->nvocab);
    for (size_t i = 0; i < c->nvocab; i++) {
        const struct vitem *e = &c->vocab[i];
        tok_set_piece(t, (int32_t)i, e->s, e->n);
        strmap_put(&u->vocab, e->s, e->n, (int32_t)i);
        note_byte_token(u->byte_ids, e->s, e->n, (int32_t)i);
        u->scores[i] = e->score;
        if (u->scores[i] < u->min_score) u->min_score = u->scores[i];
        if (e->n > u->max_piece_len) u->max_piece_len = e->n;
    }
    size_t unk = 0;
    const struct jd *uv = jd_get(m, "unk_id");
    u->unk_id = -1;
    if (uv && uv->type != JD_NULL) {
        if (tok_json_opt_uint(c, m, "unk_id", 0, &unk, "model")) return -1;
        if (unk >= u->n) return tok_json_bad(c, "model.unk_id", "outside the vocabulary");
        u->unk_id = (int32_t)unk;
    }
    if (tok_json_opt_bool(c, m, "byte_fallback", false, &u->byte_fallback, "model")) return -1;
    return 0;
}

int tok_json_parse_model(const struct ctx *c, const struct jd *m)
{
    if (!jd_is(m, JD_OBJECT)) return tok_json_bad(c, "model", "must be an object");
    const struct jd *ty = jd_get(m, "type");
    if (ty && ty->type != JD_STRING) ty = NULL;
    if (!ty) {
        /* older files omit the type; the fields tell */
        if (jd_get(m, "merges")) return parse_bpe(c, m);
        if (c->vocab_seen && !c->vocab_object) return parse_unigram(c, m);
        return parse_wordpiece(c, m);
    }
    if (jd_streq(ty, "BPE")) return parse_bpe(c, m);
    if (jd_streq(ty, "WordPiece")) return parse_wordpiece(c, m);
    if (jd_streq(ty, "Unigram")) return parse_unigram(c, m);
    char msg[200];
    snprintf(msg, sizeof msg, "unsupported model type '%.*s'", (int)ty->n, ty->u.str);
    return tok_json_bad(c, "model.type", msg);
}
