/* Loading tokenizer.json (HuggingFace tokenizers' serialization) and the
 * bits of tokenizer_config.json that change encoding: the pipeline
 * components here, the model in tok_json_model.c. The file is parsed with
 * common/jdom.h, the vocabulary and merges streamed straight into the
 * model: a Llama 3 tokenizer.json (128k tokens, 280k merges) loads in about
 * a tenth of a second. Every error names the file and the field. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/jdom.h"
#include "common/json.h"
#include "formats/tokenizer/tok_json.h"

int tok_json_bad(const struct ctx *c, const char *field, const char *what)
{
    return fail("%s: %s: %s", c->file, field, what);
}

/* Optional boolean: absent or null gives def. */
int tok_json_opt_bool(const struct ctx *c, const struct jd *o, const char *key, bool def, bool *out, const char *where)
{
    const struct jd *v = jd_get(o, key);
    if (!v || v->type == JD_NULL) { *out = def; return 0; }
    if (v->type != JD_TRUE && v->type != JD_FALSE) {
        char f[160];
        snprintf(f, sizeof f, "%s.%s", where, key);
        return tok_json_bad(c, f, "must be a boolean");
    }
    *out = v->type == JD_TRUE;
    return 0;
}

/* Optional string (absent or null: *out NULL). */
int tok_json_opt_str(const struct ctx *c, const struct jd *o, const char *key, const struct jd **out, const char *where)
{
    const struct jd *v = jd_get(o, key);
    *out = NULL;
    if (!v || v->type == JD_NULL) return 0;
    if (v->type != JD_STRING) {
        char f[160];
        snprintf(f, sizeof f, "%s.%s", where, key);
        return tok_json_bad(c, f, "must be a string");
    }
    *out = v;
    return 0;
}

int tok_json_need_str(const struct ctx *c, const struct jd *o, const char *key, const struct jd **out, const char *where)
{
    if (tok_json_opt_str(c, o, key, out, where)) return -1;
    if (!*out) {
        char f[160];
        snprintf(f, sizeof f, "%s.%s", where, key);
        return tok_json_bad(c, f, "missing (a string is required)");
    }
    return 0;
}

int tok_json_opt_uint(const struct ctx *c, const struct jd *o, const char *key, size_t def, size_t *out, const char *where)
{
    const struct jd *v = jd_get(o, key);
    if (!v || v->type == JD_NULL) { *out = def; return 0; }
    if (v->type != JD_NUMBER || !v->is_int || v->ival < 0) {
        char f[160];
        snprintf(f, sizeof f, "%s.%s", where, key);
        return tok_json_bad(c, f, "must be a non-negative integer");
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
    if (!jd_is(pat, JD_OBJECT)) return tok_json_bad(c, f, "must be an object with String or Regex");
    const struct jd *s = jd_get(pat, "String"), *r = jd_get(pat, "Regex");
    if (jd_is(s, JD_STRING)) {
        tok_pattern_literal(p, s->u.str, s->n);
        return 0;
    }
    if (jd_is(r, JD_STRING)) {
        if (tok_pattern_regex(p, r->u.str, r->n)) return fail_prefix("%s: %s", c->file, f);
        char *where = xasprintf("%s: %s", c->file, f);
        tok_pattern_set_where(p, where);
        free(where);
        return 0;
    }
    return tok_json_bad(c, f, "must hold a String or a Regex");
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
    return tok_json_bad(c, f, "unknown split behavior");
}

static int single_char(const struct ctx *c, const struct jd *v, char out[8], size_t *len, int32_t *cp, const char *f)
{
    if (!jd_is(v, JD_STRING) || !v->n) return tok_json_bad(c, f, "must be a one-character string");
    size_t k;
    *cp = utf8_decode(v->u.str, v->n, &k);
    if (k != v->n) return tok_json_bad(c, f, "must be a single character");
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
        else return tok_json_bad(c, f, "must be \"always\", \"first\" or \"never\"");
        return 0;
    }
    /* older files: add_prefix_space */
    bool aps;
    if (tok_json_opt_bool(c, o, "add_prefix_space", true, &aps, where)) return -1;
    *out = aps ? PREPEND_ALWAYS : PREPEND_NEVER;
    return 0;
}

/* ---- normalizers ---- */

static int parse_normalizer(const struct ctx *c, const struct jd *o, struct tok_norm **out, const char *where, int depth)
{
    *out = NULL;
    if (!o || o->type == JD_NULL) return 0;
    if (depth > 32) return tok_json_bad(c, where, "nested too deeply");
    const struct jd *ty = type_of(o);
    if (!jd_is(o, JD_OBJECT) || !ty) return tok_json_bad(c, where, "must be an object with a string 'type'");
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
        if (tok_json_opt_bool(c, o, "strip_left", true, &nm->left, where) ||
            tok_json_opt_bool(c, o, "strip_right", true, &nm->right, where))
            return -1;
    } else if (jd_streq(ty, "Prepend")) {
        nm->kind = NORM_PREPEND;
        const struct jd *p;
        if (tok_json_need_str(c, o, "prepend", &p, where)) return -1;
        nm->str = xstrndup(p->u.str, p->n);
        nm->strlen_ = p->n;
    } else if (jd_streq(ty, "Replace")) {
        nm->kind = NORM_REPLACE;
        const struct jd *content;
        if (pattern_from(c, o, &nm->pat, where) || tok_json_need_str(c, o, "content", &content, where)) return -1;
        nm->str = xstrndup(content->u.str, content->n);
        nm->strlen_ = content->n;
    } else if (jd_streq(ty, "BertNormalizer")) {
        nm->kind = NORM_BERT;
        if (tok_json_opt_bool(c, o, "clean_text", true, &nm->clean_text, where) ||
            tok_json_opt_bool(c, o, "handle_chinese_chars", true, &nm->chinese_chars, where) ||
            tok_json_opt_bool(c, o, "lowercase", true, &nm->lowercase, where))
            return -1;
        const struct jd *sa = jd_get(o, "strip_accents");
        nm->strip_accents = !sa || sa->type == JD_NULL ? -1 : sa->type == JD_TRUE;
    } else if (jd_streq(ty, "Precompiled")) {
        nm->kind = NORM_PRECOMPILED;
        const struct jd *p;
        if (tok_json_need_str(c, o, "precompiled_charsmap", &p, where)) return -1;
        struct buf raw = BUF_INIT;
        buf_init(&raw);
        if (base64_decode(&raw, p->u.str, p->n)) {
            buf_free(&raw);
            return tok_json_bad(c, where, "precompiled_charsmap is not valid base64");
        }
        char f[160];
        snprintf(f, sizeof f, "%s: %s.precompiled_charsmap", c->file, where);
        nm->charsmap = tok_charsmap_parse((const unsigned char *)raw.data, raw.len, f);
        buf_free(&raw);
        if (!nm->charsmap) return -1;
    } else if (jd_streq(ty, "Sequence")) {
        nm->kind = NORM_SEQUENCE;
        const struct jd *list = jd_get(o, "normalizers");
        if (!jd_is(list, JD_ARRAY)) return tok_json_bad(c, where, "Sequence needs an array 'normalizers'");
        nm->kids = xcalloc(list->n ? list->n : 1, sizeof *nm->kids);
        for (uint32_t i = 0; i < list->n; i++) {
            char f[160];
            snprintf(f, sizeof f, "%s.normalizers[%u]", where, i);
            nm->nkids++;
            if (parse_normalizer(c, &list->u.kids[i], &nm->kids[i], f, depth + 1)) return -1;
            if (!nm->kids[i]) return tok_json_bad(c, f, "must be an object");
        }
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported normalizer type '%.*s'", (int)ty->n, ty->u.str);
        return tok_json_bad(c, where, msg);
    }
    return 0;
}

/* ---- pre-tokenizers ---- */

static int parse_pretok(const struct ctx *c, const struct jd *o, struct tok_pretok **out, const char *where, int depth)
{
    *out = NULL;
    if (!o || o->type == JD_NULL) return 0;
    if (depth > 32) return tok_json_bad(c, where, "nested too deeply");
    const struct jd *ty = type_of(o);
    if (!jd_is(o, JD_OBJECT) || !ty) return tok_json_bad(c, where, "must be an object with a string 'type'");
    struct tok_pretok *pt = xcalloc(1, sizeof *pt);
    *out = pt;
    if (jd_streq(ty, "ByteLevel")) {
        pt->kind = PT_BYTELEVEL;
        if (tok_json_opt_bool(c, o, "add_prefix_space", true, &pt->add_prefix_space, where) ||
            tok_json_opt_bool(c, o, "use_regex", true, &pt->use_regex, where))
            return -1;
    } else if (jd_streq(ty, "Split")) {
        pt->kind = PT_SPLIT;
        if (pattern_from(c, o, &pt->pat, where) || behavior_from(c, o, SPLIT_REMOVED, &pt->behavior, where) ||
            tok_json_opt_bool(c, o, "invert", false, &pt->invert, where))
            return -1;
        if (!jd_get(o, "behavior")) return tok_json_bad(c, where, "Split needs a 'behavior'");
    } else if (jd_streq(ty, "Digits")) {
        pt->kind = PT_DIGITS;
        if (tok_json_opt_bool(c, o, "individual_digits", false, &pt->individual_digits, where)) return -1;
    } else if (jd_streq(ty, "Metaspace")) {
        pt->kind = PT_METASPACE;
        char f[160];
        snprintf(f, sizeof f, "%s.replacement", where);
        if (single_char(c, jd_get(o, "replacement"), pt->replacement, &pt->replacement_len, &pt->replacement_cp, f) ||
            prepend_scheme_from(c, o, &pt->prepend, where) || tok_json_opt_bool(c, o, "split", true, &pt->split, where))
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
        if (!jd_is(list, JD_ARRAY)) return tok_json_bad(c, where, "Sequence needs an array 'pretokenizers'");
        pt->kids = xcalloc(list->n ? list->n : 1, sizeof *pt->kids);
        for (uint32_t i = 0; i < list->n; i++) {
            char f[160];
            snprintf(f, sizeof f, "%s.pretokenizers[%u]", where, i);
            pt->nkids++;
            if (parse_pretok(c, &list->u.kids[i], &pt->kids[i], f, depth + 1)) return -1;
            if (!pt->kids[i]) return tok_json_bad(c, f, "must be an object");
        }
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported pre-tokenizer type '%.*s'", (int)ty->n, ty->u.str);
        return tok_json_bad(c, where, msg);
    }
    return 0;
}

/* ---- decoders ---- */

static int parse_decoder(const struct ctx *c, const struct jd *o, struct tok_dec **out, const char *where, int depth)
{
    *out = NULL;
    if (!o || o->type == JD_NULL) return 0;
    if (depth > 32) return tok_json_bad(c, where, "nested too deeply");
    const struct jd *ty = type_of(o);
    if (!jd_is(o, JD_OBJECT) || !ty) return tok_json_bad(c, where, "must be an object with a string 'type'");
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
            tok_json_opt_uint(c, o, "start", 0, &d->strip_start, where) || tok_json_opt_uint(c, o, "stop", 0, &d->strip_stop, where))
            return -1;
    } else if (jd_streq(ty, "Replace")) {
        d->kind = DEC_REPLACE;
        const struct jd *content;
        if (pattern_from(c, o, &d->pat, where) || tok_json_need_str(c, o, "content", &content, where)) return -1;
        d->content = xstrndup(content->u.str, content->n);
        d->content_len = content->n;
    } else if (jd_streq(ty, "WordPiece")) {
        d->kind = DEC_WORDPIECE;
        const struct jd *p;
        if (tok_json_opt_str(c, o, "prefix", &p, where) || tok_json_opt_bool(c, o, "cleanup", true, &d->cleanup, where)) return -1;
        d->prefix = p ? xstrndup(p->u.str, p->n) : xstrdup("##");
        d->prefix_len = strlen(d->prefix);
    } else if (jd_streq(ty, "BPEDecoder")) {
        d->kind = DEC_BPE;
        const struct jd *p;
        if (tok_json_opt_str(c, o, "suffix", &p, where)) return -1;
        d->prefix = p ? xstrndup(p->u.str, p->n) : xstrdup("</w>");
        d->prefix_len = strlen(d->prefix);
    } else if (jd_streq(ty, "CTC")) {
        d->kind = DEC_CTC;
        const struct jd *p, *w;
        if (tok_json_opt_str(c, o, "pad_token", &p, where) || tok_json_opt_str(c, o, "word_delimiter_token", &w, where) ||
            tok_json_opt_bool(c, o, "cleanup", true, &d->cleanup, where))
            return -1;
        d->prefix = p ? xstrndup(p->u.str, p->n) : xstrdup("<pad>");
        d->prefix_len = strlen(d->prefix);
        d->word_delim = w ? xstrndup(w->u.str, w->n) : xstrdup("|");
    } else if (jd_streq(ty, "Sequence")) {
        d->kind = DEC_SEQUENCE;
        const struct jd *list = jd_get(o, "decoders");
        if (!jd_is(list, JD_ARRAY)) return tok_json_bad(c, where, "Sequence needs an array 'decoders'");
        d->kids = xcalloc(list->n ? list->n : 1, sizeof *d->kids);
        for (uint32_t i = 0; i < list->n; i++) {
            char f[160];
            snprintf(f, sizeof f, "%s.decoders[%u]", where, i);
            d->nkids++;
            if (parse_decoder(c, &list->u.kids[i], &d->kids[i], f, depth + 1)) return -1;
            if (!d->kids[i]) return tok_json_bad(c, f, "must be an object");
        }
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported decoder type '%.*s'", (int)ty->n, ty->u.str);
        return tok_json_bad(c, where, msg);
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
        return tok_json_bad(c, f, "must be [TOKEN, ID]");
    *id = (int32_t)v->u.kids[1].ival;
    return 0;
}

static int parse_post(const struct ctx *c, const struct jd *o, struct tok_post **out, const char *where, int depth)
{
    *out = NULL;
    if (!o || o->type == JD_NULL) return 0;
    if (depth > 32) return tok_json_bad(c, where, "nested too deeply");
    const struct jd *ty = type_of(o);
    if (!jd_is(o, JD_OBJECT) || !ty) return tok_json_bad(c, where, "must be an object with a string 'type'");
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
        if (!jd_is(single, JD_ARRAY)) return tok_json_bad(c, f, "must be an array");
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
            if (!jd_is(name, JD_STRING)) return tok_json_bad(c, f, "must be a SpecialToken or a Sequence");
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
                return tok_json_bad(c, f, msg);
            }
            pi->ids = xcalloc(ids->n ? ids->n : 1, sizeof *pi->ids);
            for (uint32_t k = 0; k < ids->n; k++) {
                const struct jd *v = &ids->u.kids[k];
                if (!jd_is(v, JD_NUMBER) || !v->is_int || v->ival < 0 || v->ival > TOK_MAX_ID)
                    return tok_json_bad(c, f, "special token ids must be non-negative integers");
                pi->ids[pi->n++] = (int32_t)v->ival;
            }
        }
    } else if (jd_streq(ty, "Sequence")) {
        p->kind = POST_SEQUENCE;
        const struct jd *list = jd_get(o, "processors");
        if (!jd_is(list, JD_ARRAY)) return tok_json_bad(c, where, "Sequence needs an array 'processors'");
        p->kids = xcalloc(list->n ? list->n : 1, sizeof *p->kids);
        for (uint32_t i = 0; i < list->n; i++) {
            char f[160];
            snprintf(f, sizeof f, "%s.processors[%u]", where, i);
            p->nkids++;
            if (parse_post(c, &list->u.kids[i], &p->kids[i], f, depth + 1)) return -1;
            if (!p->kids[i]) return tok_json_bad(c, f, "must be an object");
        }
    } else {
        char msg[200];
        snprintf(msg, sizeof msg, "unsupported post-processor type '%.*s'", (int)ty->n, ty->u.str);
        return tok_json_bad(c, where, msg);
    }
    return 0;
}

static int vocab_id(const struct ctx *c, const struct jd *v, size_t limit, int32_t *id, const char *f)
{
    if (!jd_is(v, JD_NUMBER) || !v->is_int || v->ival < 0 || (uint64_t)v->ival >= limit)
        return tok_json_bad(c, f, "token ids must be integers from 0 to 16777215");
    *id = (int32_t)v->ival;
    return 0;
}

static int parse_added(const struct ctx *c, const struct jd *list)
{
    if (!list || list->type == JD_NULL) return 0;
    if (!jd_is(list, JD_ARRAY)) return tok_json_bad(c, "added_tokens", "must be an array");
    for (uint32_t i = 0; i < list->n; i++) {
        const struct jd *e = &list->u.kids[i];
        char where[64];
        snprintf(where, sizeof where, "added_tokens[%u]", i);
        const struct jd *content, *idv = jd_get(e, "id");
        int32_t id = 0;
        char f[80];
        snprintf(f, sizeof f, "%s.id", where);
        if (!jd_is(e, JD_OBJECT)) return tok_json_bad(c, where, "must be an object");
        if (tok_json_need_str(c, e, "content", &content, where) || vocab_id(c, idv, TOK_MAX_ID + 1, &id, f)) return -1;
        if (!content->n) return tok_json_bad(c, where, "empty content");
        if (content->n > TOKENIZER_MAX_TOKEN_BYTES) return tok_json_bad(c, where, "content longer than 65536 bytes");
        struct added_token a = {.content = (char *)content->u.str, .len = content->n, .id = id};
        if (tok_json_opt_bool(c, e, "special", false, &a.special, where) || tok_json_opt_bool(c, e, "lstrip", false, &a.lstrip, where) ||
            tok_json_opt_bool(c, e, "rstrip", false, &a.rstrip, where) ||
            tok_json_opt_bool(c, e, "single_word", false, &a.single_word, where) ||
            tok_json_opt_bool(c, e, "normalized", !a.special, &a.normalized, where))
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
            rc = tok_json_bad(&c, "add_bos_token", "true, but bos_token names no token");
            goto out;
        }
        if (add_eos && t->eos_id < 0) {
            rc = tok_json_bad(&c, "add_eos_token", "true, but eos_token names no token");
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
    if (jd_parse_stream(&doc, text.data, text.len, path, tok_json_streamed_member, tok_json_consume_member, &c)) {
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
        tok_json_parse_model(&c, jd_get(root, "model")) || (t->pretok = tok_pretok_simplify(t->pretok), 0) ||
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
