/* Loading tokenizer.json (HuggingFace tokenizers' serialization) and the
 * bits of tokenizer_config.json that change encoding. The file is parsed
 * with common/jdom.h: a Llama 3 vocabulary (128k tokens, 280k merges) loads
 * in a few tens of milliseconds. Every error names the file and the field. */
#include "tok_impl.h"
#include "tok_unicode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/jdom.h"
#include "common/json.h"

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

static int bad(const struct ctx *c, const char *field, const char *what);

static bool streamed_member(int depth, const char *parent, size_t parentlen, const char *key, size_t keylen)
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
                return bad(c, "model.vocab", "token ids must be integers from 0 to 16777215");
            v = (struct vitem){e->key, e->keylen, (int32_t)e->ival, 0};
        } else {
            if (!jd_is(e, JD_ARRAY) || e->n != 2 || !jd_is(&e->u.kids[0], JD_STRING) ||
                !jd_is(&e->u.kids[1], JD_NUMBER) || c->nvocab >= TOK_MAX_ID) {
                char f[64];
                snprintf(f, sizeof f, "model.vocab[%zu]", c->nvocab);
                return bad(c, f, "must be [piece, score]");
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
    if (it->object) return bad(c, "model.merges", "must be an array");
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
            return bad(c, f, "a merge must be \"A B\" or [\"A\", \"B\"]");
        }
        if (c->nmerges == c->capmerges)
            c->merges = xgrow(c->merges, &c->capmerges, c->nmerges + 1, sizeof *c->merges);
        c->merges[c->nmerges++] = m;
    }
    return r;
}

static int consume_member(void *user, const char *key, size_t keylen, struct jd_iter *it)
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
        return bad(c, "model.vocab", object ? "must be an object" : "must be an array");
    }
    return 0;
}

static int bad(const struct ctx *c, const char *field, const char *what)
{
    return fail("%s: %s: %s", c->file, field, what);
}

/* Optional boolean: absent or null gives def. */
static int opt_bool(const struct ctx *c, const struct jd *o, const char *key, bool def, bool *out, const char *where)
{
    const struct jd *v = jd_get(o, key);
    if (!v || v->type == JD_NULL) { *out = def; return 0; }
    if (v->type != JD_TRUE && v->type != JD_FALSE) {
        char f[160];
        snprintf(f, sizeof f, "%s.%s", where, key);
        return bad(c, f, "must be a boolean");
    }
    *out = v->type == JD_TRUE;
    return 0;
}

/* Optional string (absent or null: *out NULL). */
static int opt_str(const struct ctx *c, const struct jd *o, const char *key, const struct jd **out, const char *where)
{
    const struct jd *v = jd_get(o, key);
    *out = NULL;
    if (!v || v->type == JD_NULL) return 0;
    if (v->type != JD_STRING) {
        char f[160];
        snprintf(f, sizeof f, "%s.%s", where, key);
        return bad(c, f, "must be a string");
    }
    *out = v;
    return 0;
}

static int need_str(const struct ctx *c, const struct jd *o, const char *key, const struct jd **out, const char *where)
{
    if (opt_str(c, o, key, out, where)) return -1;
    if (!*out) {
        char f[160];
        snprintf(f, sizeof f, "%s.%s", where, key);
        return bad(c, f, "missing (a string is required)");
    }
    return 0;
}

static int opt_uint(const struct ctx *c, const struct jd *o, const char *key, size_t def, size_t *out, const char *where)
{
    const struct jd *v = jd_get(o, key);
    if (!v || v->type == JD_NULL) { *out = def; return 0; }
    if (v->type != JD_NUMBER || !v->is_int || v->ival < 0) {
        char f[160];
        snprintf(f, sizeof f, "%s.%s", where, key);
        return bad(c, f, "must be a non-negative integer");
    }
    *out = (size_t)v->ival;
    return 0;
}

static const struct jd *type_of(const struct jd *o)
{
    const struct jd *v = jd_get(o, "type");
    return v && v->type == JD_STRING ? v : NULL;
}

static int pattern_from(const struct ctx *c, const struct jd *o, struct tok_pattern *p, const char *where)
{
    const struct jd *pat = jd_get(o, "pattern");
    char f[160];
    snprintf(f, sizeof f, "%s.pattern", where);
    if (!jd_is(pat, JD_OBJECT)) return bad(c, f, "must be an object with String or Regex");
    const struct jd *s = jd_get(pat, "String"), *r = jd_get(pat, "Regex");
    if (jd_is(s, JD_STRING)) {
        tok_pattern_literal(p, s->u.str, s->n);
        return 0;
    }
    if (jd_is(r, JD_STRING)) {
        if (tok_pattern_regex(p, r->u.str, r->n)) return fail_prefix("%s: %s", c->file, f);
        return 0;
    }
    return bad(c, f, "must hold a String or a Regex");
}

static int behavior_from(const struct ctx *c, const struct jd *o, enum split_behavior def, enum split_behavior *out,
                         const char *where)
{
    const struct jd *v = jd_get(o, "behavior");
    *out = def;
    if (!v || v->type == JD_NULL) return 0;
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (jd_streq(v, names[i])) {
            *out = (enum split_behavior)i;
            return 0;
        }
    char f[160];
    snprintf(f, sizeof f, "%s.behavior", where);
    return bad(c, f, "unknown split behavior");
}

static int single_char(const struct ctx *c, const struct jd *v, char out[8], size_t *len, int32_t *cp, const char *f)
{
    if (!jd_is(v, JD_STRING) || !v->n) return bad(c, f, "must be a one-character string");
    size_t k;
    *cp = utf8_decode(v->u.str, v->n, &k);
    if (k != v->n) return bad(c, f, "must be a single character");
    memcpy(out, v->u.str, k);
    *len = k;
    return 0;
}

static int prepend_scheme_from(const struct ctx *c, const struct jd *o, enum prepend_scheme *out, const char *where)
{
    const struct jd *ps = jd_get(o, "prepend_scheme");
    char f[160];
    snprintf(f, sizeof f, "%s.prepend_scheme", where);
    if (ps && ps->type != JD_NULL) {
        if (jd_streq(ps, "always")) *out = PREPEND_ALWAYS;
        else if (jd_streq(ps, "first")) *out = PREPEND_FIRST;
        else if (jd_streq(ps, "never")) *out = PREPEND_NEVER;
        else return bad(c, f, "must be \"always\", \"first\" or \"never\"");
        return 0;
    }
    /* older files: add_prefix_space */
    bool aps;
    if (opt_bool(c, o, "add_prefix_space", true, &aps, where)) return -1;
    *out = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
    return 0;
}

/* ---- normalizers ---- */

static int parse_normalizer(const struct ctx *c, const struct jd *o, struct tok_norm **out, const char *where, int depth)
{
    *out = NULL;
    if (!o || o->type == JD_NULL) return 0;
    if (depth > 32) return bad(c, where, "nested too deeply");
    const struct jd *ty = type_of(o);
    if (!jd_is(o, JD_OBJECT) || !ty) return bad(c, where, "must be an object with a string 'type'");
    struct tok_norm *nm = xcalloc(1, sizeof *nm);
    *out = nm;
    if (jd_streq(ty, "NFC")) nm->kind = NORM_NFC;
    else if (jd_streq(ty, "NFD")) nm->kind = NORM_NFD;
    else if (jd_streq(ty, "NFKC")) nm->kind = NORM_NFKC;
    else if (jd_streq(ty, "NFKD")) nm->kind = NORM_NFKD;
    else if (jd_streq(ty, "Lowercase")) nm->kind = NORM_LOWERCASE;
    else if (jd_streq(ty, "StripAccents")) nm->kind = NORM_STRIP_ACCENTS;
    else if (jd_streq(ty, "Nmt")) nm->kind = NORM_NMT;
    else if (jd_streq(ty, "ByteLevel")) nm->kind = NORM_BYTELEVEL;
    else if (jd_streq(ty, "Strip")) {
        nm->kind = NORM_STRIP;
        if (opt_bool(c, o, "strip_left", true, &nm->left, where) ||
            opt_bool(c, o, "strip_right", true, &nm->right, where))
            return -1;
    } else if (jd_streq(ty, "Prepend")) {
        nm->kind = NORM_PREPEND;
        const struct jd *p;
        if (need_str(c, o, "prepend", &p, where)) return -1;
        nm->str = xstrndup(p->u.str, p->n);
        nm->strlen_ = p->n;
    } else if (jd_streq(ty, "Replace")) {
        nm->kind = NORM_REPLACE;
        const struct jd *content;
        if (pattern_from(c, o, &nm->pat, where) || need_str(c, o, "content", &content, where)) return -1;
        nm->str = xstrndup(content->u.str, content->n);
        nm->strlen_ = content->n;
    } else if (jd_streq(ty, "BertNormalizer")) {
        nm->kind = NORM_BERT;
        if (opt_bool(c, o, "clean_text", true, &nm->clean_text, where) ||
            opt_bool(c, o, "handle_chinese_chars", true, &nm->chinese_chars, where) ||
            opt_bool(c, o, "lowercase", true, &nm->lowercase, where))
            return -1;
        const struct jd *sa = jd_get(o, "strip_accents");
        nm->strip_accents = !sa || sa->type == JD_NULL ? -1 : sa->type == JD_TRUE;
    } else if (jd_streq(ty, "Precompiled")) {
        nm->kind = NORM_PRECOMPILED;
        const struct jd *p;
        if (need_str(c, o, "precompiled_charsmap", &p, where)) return -1;
        struct buf raw = BUF_INIT;
        buf_init(&raw);
        if (base64_decode(&raw, p->u.str, p->n)) {
            buf_free(&raw);
            return bad(c, where, "precompiled_charsmap is not valid base64");
        }
        char f[160];
        snprintf(f, sizeof f, "%s: %s.precompiled_charsmap", c->file, where);
        nm->charsmap = tok_charsmap_parse((const unsigned char *)raw.data, raw.len, f);
        buf_free(&raw);
        if (!nm->charsmap) return -1;
    } else if (jd_streq(ty, "Sequence")) {
        nm->kind = NORM_SEQUENCE;
        const struct jd *list = jd_get(o, "normalizers");
        if (!jd_is(list, JD_ARRAY)) return bad(c, where, "Sequence needs an array 'normalizers'");
        nm->kids = xcalloc(list->n ? list->n : 1, sizeof *nm->kids);
        for (uint32_t i = 0; i < list->n; i++) {
            char f[160];
            snprintf(f, sizeof f, "%s.normalizers[%u]", where, i);
            nm->nkids++;
            if (parse_normalizer(c, &list->u.kids[i], &nm->kids[i], f, depth + 1)) return -1;
            if (!nm->kids[i]) return bad(c, f, "must be an object");
        }
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported normalizer type '%.*s'", (int)ty->n, ty->u.str);
        return bad(c, where, msg);
    }
    return 0;
}

/* ---- pre-tokenizers ---- */

static int parse_pretok(const struct ctx *c, const struct jd *o, struct tok_pretok **out, const char *where, int depth)
{
    *out = NULL;
    if (!o || o->type == JD_NULL) return 0;
    if (depth > 32) return bad(c, where, "nested too deeply");
    const struct jd *ty = type_of(o);
    if (!jd_is(o, JD_OBJECT) || !ty) return bad(c, where, "must be an object with a string 'type'");
    struct tok_pretok *pt = xcalloc(1, sizeof *pt);
    *out = pt;
    if (jd_streq(ty, "ByteLevel")) {
        pt->kind = PT_BYTELEVEL;
        if (opt_bool(c, o, "add_prefix_space", true, &pt->add_prefix_space, where) ||
            opt_bool(c, o, "use_regex", true, &pt->use_regex, where))
            return -1;
    } else if (jd_streq(ty, "Split")) {
        pt->kind = PT_SPLIT;
        if (pattern_from(c, o, &pt->pat, where) || behavior_from(c, o, SPLIT_REMOVED, &pt->behavior, where) ||
            opt_bool(c, o, "invert", false, &pt->invert, where))
            return -1;
        if (!jd_get(o, "behavior")) return bad(c, where, "Split needs a 'behavior'");
    } else if (jd_streq(ty, "Digits")) {
        pt->kind = PT_DIGITS;
        if (opt_bool(c, o, "individual_digits", false, &pt->individual_digits, where)) return -1;
    } else if (jd_streq(ty, "Metaspace")) {
        pt->kind = PT_METASPACE;
        char f[160];
        snprintf(f, sizeof f, "%s.replacement", where);
        if (single_char(c, jd_get(o, "replacement"), pt->replacement, &pt->replacement_len, &pt->replacement_cp, f) ||
            prepend_scheme_from(c, o, &pt->prepend, where) || opt_bool(c, o, "split", true, &pt->split, where))
            return -1;
    } else if (jd_streq(ty, "Whitespace")) {
        pt->kind = PT_WHITESPACE;
    } else if (jd_streq(ty, "WhitespaceSplit")) {
        pt->kind = PT_WHITESPACE_SPLIT;
    } else if (jd_streq(ty, "Punctuation")) {
        pt->kind = PT_PUNCTUATION;
        if (behavior_from(c, o, SPLIT_ISOLATED, &pt->behavior, where)) return -1;
    } else if (jd_streq(ty, "BertPreTokenizer")) {
        pt->kind = PT_BERT;
    } else if (jd_streq(ty, "CharDelimiterSplit")) {
        pt->kind = PT_CHAR_DELIMITER;
        char f[160];
        snprintf(f, sizeof f, "%s.delimiter", where);
        if (single_char(c, jd_get(o, "delimiter"), pt->replacement, &pt->replacement_len, &pt->replacement_cp, f))
            return -1;
    } else if (jd_streq(ty, "Sequence")) {
        pt->kind = PT_SEQUENCE;
        const struct jd *list = jd_get(o, "pretokenizers");
        if (!jd_is(list, JD_ARRAY)) return bad(c, where, "Sequence needs an array 'pretokenizers'");
        pt->kids = xcalloc(list->n ? list->n : 1, sizeof *pt->kids);
        for (uint32_t i = 0; i < list->n; i++) {
            char f[160];
            snprintf(f, sizeof f, "%s.pretokenizers[%u]", where, i);
            pt->nkids++;
            if (parse_pretok(c, &list->u.kids[i], &pt->kids[i], f, depth + 1)) return -1;
            if (!pt->kids[i]) return bad(c, f, "must be an object");
        }
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported pre-tokenizer type '%.*s'", (int)ty->n, ty->u.str);
        return bad(c, where, msg);
    }
    return 0;
}

/* ---- decoders ---- */

static int parse_decoder(const struct ctx *c, const struct jd *o, struct tok_dec **out, const char *where, int depth)
{
    *out = NULL;
    if (!o || o->type == JD_NULL) return 0;
    if (depth > 32) return bad(c, where, "nested too deeply");
    const struct jd *ty = type_of(o);
    if (!jd_is(o, JD_OBJECT) || !ty) return bad(c, where, "must be an object with a string 'type'");
    struct tok_dec *d = xcalloc(1, sizeof *d);
    *out = d;
    if (jd_streq(ty, "ByteLevel")) d->kind = DEC_BYTELEVEL;
    else if (jd_streq(ty, "ByteFallback")) d->kind = DEC_BYTEFALLBACK;
    else if (jd_streq(ty, "Fuse")) d->kind = DEC_FUSE;
    else if (jd_streq(ty, "Metaspace")) {
        d->kind = DEC_METASPACE;
        char f[160];
        snprintf(f, sizeof f, "%s.replacement", where);
        if (single_char(c, jd_get(o, "replacement"), d->replacement, &d->replacement_len, &d->replacement_cp, f) ||
            prepend_scheme_from(c, o, &d->prepend, where))
            return -1;
    } else if (jd_streq(ty, "Strip")) {
        d->kind = DEC_STRIP;
        char f[160], tmp[8];
        size_t l;
        snprintf(f, sizeof f, "%s.content", where);
        if (single_char(c, jd_get(o, "content"), tmp, &l, &d->strip_cp, f) ||
            opt_uint(c, o, "start", 0, &d->strip_start, where) || opt_uint(c, o, "stop", 0, &d->strip_stop, where))
            return -1;
    } else if (jd_streq(ty, "Replace")) {
        d->kind = DEC_REPLACE;
        const struct jd *content;
        if (pattern_from(c, o, &d->pat, where) || need_str(c, o, "content", &content, where)) return -1;
        d->content = xstrndup(content->u.str, content->n);
        d->content_len = content->n;
    } else if (jd_streq(ty, "WordPiece")) {
        d->kind = DEC_WORDPIECE;
        const struct jd *p;
        if (opt_str(c, o, "prefix", &p, where) || opt_bool(c, o, "cleanup", true, &d->cleanup, where)) return -1;
        d->prefix = p ? xstrndup(p->u.str, p->n) : xstrdup("##");
        d->prefix_len = strlen(d->prefix);
    } else if (jd_streq(ty, "BPEDecoder")) {
        d->kind = DEC_BPE;
        const struct jd *p;
        if (opt_str(c, o, "suffix", &p, where)) return -1;
        d->prefix = p ? xstrndup(p->u.str, p->n) : xstrdup("</w>");
        d->prefix_len = strlen(d->prefix);
    } else if (jd_streq(ty, "CTC")) {
        d->kind = DEC_CTC;
        const struct jd *p, *w;
        if (opt_str(c, o, "pad_token", &p, where) || opt_str(c, o, "word_delimiter_token", &w, where) ||
            opt_bool(c, o, "cleanup", true, &d->cleanup, where))
            return -1;
        d->prefix = p ? xstrndup(p->u.str, p->n) : xstrdup("<pad>");
        d->prefix_len = strlen(d->prefix);
        d->word_delim = w ? xstrndup(w->u.str, w->n) : xstrdup("|");
    } else if (jd_streq(ty, "Sequence")) {
        d->kind = DEC_SEQUENCE;
        const struct jd *list = jd_get(o, "decoders");
        if (!jd_is(list, JD_ARRAY)) return bad(c, where, "Sequence needs an array 'decoders'");
        d->kids = xcalloc(list->n ? list->n : 1, sizeof *d->kids);
        for (uint32_t i = 0; i < list->n; i++) {
            char f[160];
            snprintf(f, sizeof f, "%s.decoders[%u]", where, i);
            d->nkids++;
            if (parse_decoder(c, &list->u.kids[i], &d->kids[i], f, depth + 1)) return -1;
            if (!d->kids[i]) return bad(c, f, "must be an object");
        }
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported decoder type '%.*s'", (int)ty->n, ty->u.str);
        return bad(c, where, msg);
    }
    return 0;
}

/* ---- post-processors ---- */

static int id_pair(const struct ctx *c, const struct jd *o, const char *key, int32_t *id, const char *where)
{
    const struct jd *v = jd_get(o, key);
    char f[160];
    snprintf(f, sizeof f, "%s.%s", where, key);
    if (!jd_is(v, JD_ARRAY) || v->n != 2 || !jd_is(&v->u.kids[1], JD_NUMBER) || !v->u.kids[1].is_int ||
        v->u.kids[1].ival < 0 || v->u.kids[1].ival > TOK_MAX_ID)
        return bad(c, f, "must be [TOKEN, ID]");
    *id = (int32_t)v->u.kids[1].ival;
    return 0;
}

static int parse_post(const struct ctx *c, const struct jd *o, struct tok_post **out, const char *where, int depth)
{
    *out = NULL;
    if (!o || o->type == JD_NULL) return 0;
    if (depth > 32) return bad(c, where, "nested too deeply");
    const struct jd *ty = type_of(o);
    if (!jd_is(o, JD_OBJECT) || !ty) return bad(c, where, "must be an object with a string 'type'");
    struct tok_post *p = xcalloc(1, sizeof *p);
    *out = p;
    if (jd_streq(ty, "ByteLevel")) {
        p->kind = POST_BYTELEVEL;
    } else if (jd_streq(ty, "BertProcessing") || jd_streq(ty, "RobertaProcessing")) {
        p->kind = jd_streq(ty, "BertProcessing") ? POST_BERT : POST_ROBERTA;
        if (id_pair(c, o, "cls", &p->cls_id, where) || id_pair(c, o, "sep", &p->sep_id, where)) return -1;
    } else if (jd_streq(ty, "TemplateProcessing")) {
        p->kind = POST_TEMPLATE;
        const struct jd *single = jd_get(o, "single"), *specials = jd_get(o, "special_tokens");
        char f[160];
        snprintf(f, sizeof f, "%s.single", where);
        if (!jd_is(single, JD_ARRAY)) return bad(c, f, "must be an array");
        p->items = xcalloc(single->n ? single->n : 1, sizeof *p->items);
        for (uint32_t i = 0; i < single->n; i++) {
            const struct jd *it = &single->u.kids[i];
            snprintf(f, sizeof f, "%s.single[%u]", where, i);
            const struct jd *sp = jd_get(it, "SpecialToken"), *sq = jd_get(it, "Sequence");
            struct post_item *pi = &p->items[p->nitems++];
            if (sq) {
                pi->seq = true;
                continue;
            }
            const struct jd *name = jd_get(sp, "id");
            if (!jd_is(name, JD_STRING)) return bad(c, f, "must be a SpecialToken or a Sequence");
            const struct jd *entry = NULL;
            if (jd_is(specials, JD_OBJECT))
                for (uint32_t k = 0; k < specials->n; k++)
                    if (specials->u.kids[k].keylen == name->n &&
                        !memcmp(specials->u.kids[k].key, name->u.str, name->n))
                        entry = &specials->u.kids[k];
            const struct jd *ids = jd_get(entry, "ids");
            if (!jd_is(ids, JD_ARRAY)) {
                snprintf(f, sizeof f, "%s.special_tokens", where);
                char msg[200];
                snprintf(msg, sizeof msg, "no ids for special token '%.*s'", (int)name->n, name->u.str);
                return bad(c, f, msg);
            }
            pi->ids = xcalloc(ids->n ? ids->n : 1, sizeof *pi->ids);
            for (uint32_t k = 0; k < ids->n; k++) {
                const struct jd *v = &ids->u.kids[k];
                if (!jd_is(v, JD_NUMBER) || !v->is_int || v->ival < 0 || v->ival > TOK_MAX_ID)
                    return bad(c, f, "special token ids must be non-negative integers");
                pi->ids[pi->n++] = (int32_t)v->ival;
            }
        }
    } else if (jd_streq(ty, "Sequence")) {
        p->kind = POST_SEQUENCE;
        const struct jd *list = jd_get(o, "processors");
        if (!jd_is(list, JD_ARRAY)) return bad(c, where, "Sequence needs an array 'processors'");
        p->kids = xcalloc(list->n ? list->n : 1, sizeof *p->kids);
        for (uint32_t i = 0; i < list->n; i++) {
            char f[160];
            snprintf(f, sizeof f, "%s.processors[%u]", where, i);
            p->nkids++;
            if (parse_post(c, &list->u.kids[i], &p->kids[i], f, depth + 1)) return -1;
            if (!p->kids[i]) return bad(c, f, "must be an object");
        }
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported post-processor type '%.*s'", (int)ty->n, ty->u.str);
        return bad(c, where, msg);
    }
    return 0;
}

/* ---- models ---- */

static int vocab_id(const struct ctx *c, const struct jd *v, size_t limit, int32_t *id, const char *f)
{
    if (!jd_is(v, JD_NUMBER) || !v->is_int || v->ival < 0 || (uint64_t)v->ival >= limit)
        return bad(c, f, "token ids must be integers from 0 to 16777215");
    *id = (int32_t)v->ival;
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

/* Is the pre-tokenizer's last step ByteLevel? Then the BPE vocabulary can
 * be keyed by raw bytes and the byte -> character mapping skipped. */
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
    if (merges && merges->type != JD_NULL && !c->merges_seen) return bad(c, "model.merges", "must be an array");
    if (opt_bool(c, m, "fuse_unk", false, &b->fuse_unk, "model") ||
        opt_bool(c, m, "byte_fallback", false, &b->byte_fallback, "model") ||
        opt_bool(c, m, "ignore_merges", false, &b->ignore_merges, "model"))
        return -1;
    const struct jd *dropout = jd_get(m, "dropout");
    if (dropout && dropout->type == JD_NUMBER && dropout->u.num > 0)
        return bad(c, "model.dropout", "BPE dropout is random and not supported");
    if (opt_str(c, m, "continuing_subword_prefix", &s, "model")) return -1;
    if (s && s->n) b->prefix = xstrndup(s->u.str, s->n), b->prefix_len = s->n;
    if (opt_str(c, m, "end_of_word_suffix", &s, "model")) return -1;
    if (s && s->n) b->suffix = xstrndup(s->u.str, s->n), b->suffix_len = s->n;

    struct tok_pretok *bl = final_bytelevel(t->pretok);
    if (bl && !b->prefix && !b->suffix) {
        bl->defer_bytes = true;
        b->bytes_keyed = true;
    }
    strmap_free(&b->vocab);
    strmap_init(&b->vocab, c->nvocab);
    tok_reserve_pieces(t, c->nvocab);
    /* byte-level vocabularies are keyed by raw bytes: decoded into one
     * arena, then inserted in prefetched batches */
    struct buf raw = BUF_INIT;
    buf_init(&raw);
    uint64_t *hv = xmalloc((c->nvocab ? c->nvocab : 1) * sizeof *hv);
    struct vkey {
        size_t off, len;
        int32_t id;
    } *vk = xmalloc((c->nvocab ? c->nvocab : 1) * sizeof *vk);
    size_t nv = 0;
    for (size_t i = 0; i < c->nvocab; i++) {
        const struct vitem *e = &c->vocab[i];
        tok_set_piece(t, e->id, e->s, e->n);
        note_byte_token(b->byte_ids, e->s, e->n, e->id);
        if (b->bytes_keyed) {
            /* tokens with characters outside the byte alphabet can never
             * come out of byte-level pre-tokenization: not matchable */
            size_t o = raw.len;
            if (bytelevel_decode(&raw, e->s, e->n) != 0) {
                raw.len = o;
                continue;
            }
            vk[nv++] = (struct vkey){o, raw.len - o, e->id};
        } else {
            vk[nv++] = (struct vkey){(size_t)(uintptr_t)e->s, e->n, e->id};
        }
    }
    enum { VB = 64 };
    for (size_t base = 0; base < nv; base += VB) {
        size_t k = nv - base < VB ? nv - base : VB;
        for (size_t i = 0; i < k; i++) {
            const struct vkey *v = &vk[base + i];
            const char *key = b->bytes_keyed ? raw.data + v->off : (const char *)(uintptr_t)v->off;
            hv[i] = tok_hash_bytes(key, v->len);
            strmap_prefetch(&b->vocab, hv[i]);
        }
        for (size_t i = 0; i < k; i++) {
            const struct vkey *v = &vk[base + i];
            const char *key = b->bytes_keyed ? raw.data + v->off : (const char *)(uintptr_t)v->off;
            strmap_put_hashed(&b->vocab, key, v->len, hv[i], v->id);
        }
    }
    free(vk);
    free(hv);
    const struct jd *unk;
    if (opt_str(c, m, "unk_token", &unk, "model")) goto fail;
    if (unk) {
        /* the unknown token must be in the model vocabulary */
        b->unk_id = tokenizer_piece_to_id(t, unk->u.str, unk->n);
        if (b->unk_id < 0) {
            buf_free(&raw);
            return bad(c, "model.unk_token", "not in the vocabulary");
        }
    }

    u64map_free(&b->merges);
    u64map_init(&b->merges, c->nmerges);
    struct merge_text *mt = xmalloc((c->nmerges ? c->nmerges : 1) * sizeof *mt);
    size_t nm = 0;
    /* the parts of byte-level merges become raw bytes in one arena
     * (offsets first, since the arena moves while it grows) */
    struct buf arena = BUF_INIT;
    buf_init(&arena);
    if (b->bytes_keyed) buf_grow(&arena, raw.len + c->nmerges * 8);
    for (size_t i = 0; i < c->nmerges; i++) {
        const struct mitem *e = &c->merges[i];
        if (b->bytes_keyed) {
            size_t o1 = arena.len;
            int r1 = bytelevel_decode(&arena, e->a, e->alen);
            size_t o2 = arena.len;
            int r2 = bytelevel_decode(&arena, e->b, e->blen);
            if (r1 || r2) {
                /* a part outside the byte alphabet: such a merge can never
                 * apply to byte-level pieces; leave it out */
                arena.len = o1;
                continue;
            }
            mt[nm++] = (struct merge_text){(const char *)(uintptr_t)o1, (const char *)(uintptr_t)o2,
                                           (uint32_t)(o2 - o1), (uint32_t)(arena.len - o2), (uint32_t)i};
        } else {
            mt[nm++] = (struct merge_text){e->a, e->b, e->alen, e->blen, (uint32_t)i};
        }
    }
    if (b->bytes_keyed)
        for (size_t i = 0; i < nm; i++) {
            mt[i].a = arena.data + (uintptr_t)mt[i].a;
            mt[i].c = arena.data + (uintptr_t)mt[i].c;
        }
    long badm = tok_bpe_add_merges(b, mt, nm);
    if (badm >= 0) badm = mt[badm].rank;
    free(mt);
    buf_free(&arena);
    buf_free(&raw);
    if (badm >= 0) {
        char f[64];
        snprintf(f, sizeof f, "model.merges[%ld]", badm);
        return bad(c, f, "a merge whose parts or result are not in the vocabulary");
    }
    return 0;
fail:
    buf_free(&raw);
    return -1;
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
    if (opt_str(c, m, "continuing_subword_prefix", &s, "model")) return -1;
    w->prefix = s ? xstrndup(s->u.str, s->n) : xstrdup("##");
    w->prefix_len = strlen(w->prefix);
    if (opt_uint(c, m, "max_input_chars_per_word", 100, &w->max_chars, "model")) return -1;
    if (opt_str(c, m, "unk_token", &s, "model")) return -1;
    w->unk_id = s ? strmap_get(&w->vocab, s->u.str, s->n) : -1;
    if (s && w->unk_id < 0) return bad(c, "model.unk_token", "not in the vocabulary");
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
        if (opt_uint(c, m, "unk_id", 0, &unk, "model")) return -1;
        if (unk >= u->n) return bad(c, "model.unk_id", "outside the vocabulary");
        u->unk_id = (int32_t)unk;
    }
    if (opt_bool(c, m, "byte_fallback", false, &u->byte_fallback, "model")) return -1;
    return 0;
}

static int parse_model(const struct ctx *c, const struct jd *m)
{
    if (!jd_is(m, JD_OBJECT)) return bad(c, "model", "must be an object");
    const struct jd *ty = type_of(m);
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
    return bad(c, "model.type", msg);
}

static int parse_added(const struct ctx *c, const struct jd *list)
{
    if (!list || list->type == JD_NULL) return 0;
    if (!jd_is(list, JD_ARRAY)) return bad(c, "added_tokens", "must be an array");
    for (uint32_t i = 0; i < list->n; i++) {
        const struct jd *e = &list->u.kids[i];
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%u]", i);
        const struct jd *content, *idv = jd_get(e, "id");
        int32_t id = 0;
        char f[80];
        snprintf(f, sizeof f, "%s.id", where);
        if (!jd_is(e, JD_OBJECT)) return bad(c, where, "must be an object");
        if (need_str(c, e, "content", &content, where) || vocab_id(c, idv, TOK_MAX_ID + 1, &id, f)) return -1;
        if (!content->n) return bad(c, where, "empty content");
        struct added_token a = {.content = (char *)content->u.str, .len = content->n, .id = id};
        if (opt_bool(c, e, "special", false, &a.special, where) || opt_bool(c, e, "lstrip", false, &a.lstrip, where) ||
            opt_bool(c, e, "rstrip", false, &a.rstrip, where) ||
            opt_bool(c, e, "single_word", false, &a.single_word, where) ||
            opt_bool(c, e, "normalized", !a.special, &a.normalized, where))
            return -1;
        tok_add_token(c->t, &a);
    }
    return 0;
}

/* A token named in tokenizer_config.json: a string or {"content": ...}. */
static const struct jd *config_token(const struct jd *cfg, const char *key)
{
    const struct jd *v = jd_get(cfg, key);
    if (jd_is(v, JD_OBJECT)) v = jd_get(v, "content");
    return jd_is(v, JD_STRING) ? v : NULL;
}

/* tokenizer_config.json: BOS/EOS names, and add_bos_token/add_eos_token,
 * which (as transformers applies them) replace the post-processor by
 * "[BOS] $A [EOS]" with each part present when its flag is true. */
static int apply_config(struct tokenizer *t, const char *path)
{
    struct buf text = BUF_INIT;
    buf_init(&text);
    if (read_file(path, &text, 256u << 20)) {
        buf_free(&text);
        return -1;
    }
    struct jd_doc doc;
    if (jd_parse(&doc, text.data, text.len, path)) {
        buf_free(&text);
        return -1;
    }
    struct ctx c = {.file = path, .t = t};
    int rc = 0;
    const struct jd *cfg = &doc.root;
    if (!jd_is(cfg, JD_OBJECT)) {
        rc = fail("%s: not a JSON object", path);
        goto out;
    }
    const struct jd *bos = config_token(cfg, "bos_token"), *eos = config_token(cfg, "eos_token");
    if (bos) t->bos_id = tokenizer_piece_to_id(t, bos->u.str, bos->n);
    if (eos) t->eos_id = tokenizer_piece_to_id(t, eos->u.str, eos->n);
    const struct jd *ab = jd_get(cfg, "add_bos_token"), *ae = jd_get(cfg, "add_eos_token");
    bool has_ab = ab && (ab->type == JD_TRUE || ab->type == JD_FALSE);
    bool has_ae = ae && (ae->type == JD_TRUE || ae->type == JD_FALSE);
    if (has_ab || has_ae) {
        bool add_bos = has_ab && ab->type == JD_TRUE, add_eos = has_ae && ae->type == JD_TRUE;
        if (add_bos && t->bos_id < 0) {
            rc = bad(&c, "add_bos_token", "true, but bos_token names no token");
            goto out;
        }
        if (add_eos && t->eos_id < 0) {
            rc = bad(&c, "add_eos_token", "true, but eos_token names no token");
            goto out;
        }
        struct tok_post *p = xcalloc(1, sizeof *p);
        p->kind = POST_TEMPLATE;
        p->items = xcalloc(3, sizeof *p->items);
        if (add_bos) {
            p->items[p->nitems].ids = xmalloc(sizeof(int32_t));
            p->items[p->nitems].ids[0] = t->bos_id;
            p->items[p->nitems++].n = 1;
        }
        p->items[p->nitems++].seq = true;
        if (add_eos) {
            p->items[p->nitems].ids = xmalloc(sizeof(int32_t));
            p->items[p->nitems].ids[0] = t->eos_id;
            p->items[p->nitems++].n = 1;
        }
        tok_post_free(t->post);
        t->post = p;
    }
out:
    jd_free(&doc);
    buf_free(&text);
    return rc;
}

int tok_load_json_into(struct tokenizer *t, const char *path, const char *config_path)
{
    struct buf text = BUF_INIT;
    buf_init(&text);
    if (read_file(path, &text, 2048u << 20)) {
        buf_free(&text);
        return -1;
    }
    struct jd_doc doc;
    struct ctx c = {.file = path, .t = t};
    if (jd_parse_stream(&doc, text.data, text.len, path, streamed_member, consume_member, &c)) {
        free(c.vocab);
        free(c.merges);
        buf_free(&text);
        return -1;
    }
    const struct jd *root = &doc.root;
    int rc = -1;
    if (!jd_is(root, JD_OBJECT)) {
        fail("%s: not a JSON object", path);
        goto out;
    }
    const struct jd *trunc = jd_get(root, "truncation"), *pad = jd_get(root, "padding");
    (void)trunc;
    (void)pad;   /* truncation and padding only matter for batches; ignored */
    if (parse_normalizer(&c, jd_get(root, "normalizer"), &t->norm, "normalizer", 0) ||
        parse_pretok(&c, jd_get(root, "pre_tokenizer"), &t->pretok, "pre_tokenizer", 0) ||
        parse_model(&c, jd_get(root, "model")) || (t->pretok = tok_pretok_simplify(t->pretok), 0) ||
        parse_post(&c, jd_get(root, "post_processor"), &t->post, "post_processor", 0) ||
        parse_decoder(&c, jd_get(root, "decoder"), &t->dec, "decoder", 0) ||
        parse_added(&c, jd_get(root, "added_tokens")) || tok_finish(t, path))
        goto out;
    if (config_path && apply_config(t, config_path)) goto out;
    rc = 0;
out:
    free(c.vocab);
    free(c.merges);
    jd_free(&doc);
    buf_free(&text);
    return rc;
}
