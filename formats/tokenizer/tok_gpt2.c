/* GPT-2 style byte-level BPE from vocab.json + merges.txt (+
 * added_tokens.json), for models that ship no tokenizer.json (MLC-LLM issue
 * #1670). The pipeline is what HuggingFace builds for these files
 * (GPT2TokenizerFast, ByteLevelBPETokenizer): ByteLevel pre-tokenizer with
 * the GPT-2 regex and no prefix space, BPE, ByteLevel decoder; the entries
 * of added_tokens.json are added tokens, matched in the text before BPE. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/jdom.h"

static int load_object(const char *path, struct buf *text, struct jd_doc *doc)
{
    buf_init(text);
    if (read_file(path, text, 1024u << 20)) return -1;
    if (jd_parse(doc, text->data, text->len, path)) return -1;
    if (!jd_is(&doc->root, JD_OBJECT)) {
        jd_free(doc);
        return fail("%s: must be a JSON object of token -> id", path);
    }
    return 0;
}

static int entry_id(const char *path, const struct jd *e, int32_t *id)
{
    if (!jd_is(e, JD_NUMBER) || !e->is_int || e->ival < 0 || e->ival > TOK_MAX_ID)
        return fail("%s: %.*s: the id must be an integer from 0 to 16777215", path, (int)(e->keylen > 80 ? 80 : e->keylen),
                    e->key);
    *id = (int32_t)e->ival;
    return 0;
}

int tok_load_gpt2_into(struct tokenizer *t, const char *vocab_path, const char *merges_path, const char *added_path)
{
    struct tok_pretok *pt = xcalloc(1, sizeof *pt);
    pt->kind = PT_BYTELEVEL;
    pt->use_regex = true;
    pt->defer_bytes = true;
    t->pretok = pt;
    struct tok_dec *d = xcalloc(1, sizeof *d);
    d->kind = DEC_BYTELEVEL;
    t->dec = d;
    t->model.kind = MODEL_BPE;
    struct tok_bpe *b = &t->model.bpe;
    tok_bpe_init(b);
    b->map_bytes = true;

    struct buf vtext, mtext = BUF_INIT;
    struct jd_doc vdoc;
    int rc = -1;
    buf_init(&mtext);
    if (load_object(vocab_path, &vtext, &vdoc)) {
        buf_free(&vtext);
        goto out_bufs;
    }
    const struct jd *v = &vdoc.root;
    tok_reserve_pieces(t, v->n);
    for (uint32_t i = 0; i < v->n; i++) {
        int32_t id;
        const struct jd *e = &v->u.kids[i];
        if (entry_id(vocab_path, e, &id)) goto out;
        if (e->keylen > TOKENIZER_MAX_TOKEN_BYTES) {
            fail("%s: token %d is %zu bytes long (at most %u allowed)", vocab_path, id, (size_t)e->keylen,
                 TOKENIZER_MAX_TOKEN_BYTES);
            goto out;
        }
        tok_set_piece(t, id, e->key, e->keylen);
        strmap_put(&b->vocab, e->key, e->keylen, id);
        if (e->keylen == 13 && !memcmp(e->key, "<|endoftext|>", 13)) t->bos_id = t->eos_id = id;
    }
    if (read_file(merges_path, &mtext, 1024u << 20)) goto out;
    size_t pos = 0, line = 0;
    uint32_t rank = 0;
    while (pos < mtext.len) {
        line++;
        char *nl = memchr(mtext.data + pos, '\n', mtext.len - pos);
        size_t end = nl ? (size_t)(nl - mtext.data) : mtext.len;
        size_t len = end - pos;
        const char *s = mtext.data + pos;
        if (len && s[len - 1] == '\r') len--;
        pos = end + 1;
        if (!len || (len >= 8 && !memcmp(s, "#version", 8))) continue;
        const char *sp = memchr(s, ' ', len);
        if (!sp || memchr(sp + 1, ' ', len - (size_t)(sp + 1 - s))) {
            fail("%s:%zu: a merge must be two tokens separated by one space", merges_path, line);
            goto out;
        }
        if (!utf8_is_valid(s, len) ||
            tok_bpe_add_merge(b, s, (size_t)(sp - s), sp + 1, len - (size_t)(sp + 1 - s), rank)) {
            fail("%s:%zu: a merge whose parts or result are not in vocab.json", merges_path, line);
            goto out;
        }
        rank++;
    }
    if (added_path) {
        struct buf atext;
        struct jd_doc adoc;
        if (load_object(added_path, &atext, &adoc)) {
            buf_free(&atext);
            goto out;
        }
        int bad = 0;
        for (uint32_t i = 0; i < adoc.root.n && !bad; i++) {
            const struct jd *e = &adoc.root.u.kids[i];
            int32_t id;
            if (entry_id(added_path, e, &id) || !e->keylen) {
                if (!e->keylen) fail("%s: an empty token", added_path);
                bad = 1;
                break;
            }
            struct added_token a = {.content = (char *)e->key, .len = e->keylen, .id = id};
            tok_add_token(t, &a);
        }
        jd_free(&adoc);
        buf_free(&atext);
        if (bad) goto out;
    }
    rc = tok_finish(t, vocab_path);
out:
    jd_free(&vdoc);
    buf_free(&vtext);
out_bufs:
    buf_free(&mtext);
    return rc;
}
