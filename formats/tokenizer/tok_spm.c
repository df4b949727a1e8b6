/* SentencePiece models (tokenizer.model): the protobuf file, its
 * normalizer (precompiled character map, dummy prefix, extra whitespace,
 * whitespace escaping) and SentencePiece's decoding rules, so that ids and
 * texts match the SentencePiece library. Encoding is score-driven BPE
 * (tok_spm_bpe.c) or Unigram (tok_models.c). The protobuf is read by hand:
 * only the few fields used here. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"


static const char SPACE_SYMBOL[] = "\xE2\x96\x81";   /* U+2581 */

/* "<0xAB>" -> 0xAB, else -1 */
static int piece_byte(const char *p, size_t len)
{
    if (len != 6 || memcmp(p, "<0x", 3) || p[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = p[k];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* ---- SentencePiece normalizer ---- */

/* User-defined symbols pass through unnormalized, matched longest first. */
static size_t user_symbol_at(const struct tokenizer *t, const char *s, size_t n)
{
    size_t best = 0;
    if (t->model.kind == MODEL_SPM_BPE) {
        const struct tok_spm_bpe *m = &t->model.sbpe;
        for (size_t l = 1; l <= n && l <= t->spm_user_max; l++) {
            int32_t id = strmap_get(&m->vocab, s, l);
            if (id >= 0 && m->type[id] == SPM_USER) best = l;
        }
    } else {
        const struct tok_unigram *u = &t->model.uni;
        for (size_t l = 1; l <= n && l <= t->spm_user_max; l++) {
            int32_t id = strmap_get(&u->vocab, s, l);
            if (id >= 0 && u->is_user[id]) best = l;
        }
    }
    return best;
}

static bool has_user_symbols(const struct tokenizer *t)
{
    for (size_t i = 0; i < t->nadded; i++)
        if (!t->added[i].special) return true;   /* user-defined pieces */
    return false;
}

void tok_spm_normalize(const struct tokenizer *t, const char *s, size_t n, struct buf *out)
{
    bool users = has_user_symbols(t);
    const struct tok_charsmap *m = t->spm_charsmap;
    buf_reset(out);
    size_t i = 0;
#define PREFIX(rep, rl, used)                                              \
    do {                                                                   \
        size_t u_ = users ? user_symbol_at(t, s + i, n - i) : 0;           \
        if (u_) { rep = s + i; rl = u_; used = u_; }                      \
        else used = tok_charsmap_prefix(m, s + i, n - i, &rep, &rl);               \
    } while (0)
    if (t->spm_remove_extra_ws) {
        while (i < n) {
            const char *rep;
            size_t rl, used;
            PREFIX(rep, rl, used);
            if (!(rl == 1 && rep[0] == ' ')) break;
            i += used;
        }
    }
    if (i >= n) return;
    if (t->spm_add_dummy_prefix) buf_adds(out, t->spm_escape_ws ? SPACE_SYMBOL : " ");
    bool prev_space = t->spm_remove_extra_ws;
    while (i < n) {
        const char *rep;
        size_t rl, used;
        PREFIX(rep, rl, used);
        i += used;
        if (prev_space)
            while (rl && rep[0] == ' ') rep++, rl--;
        if (rl) {
            for (size_t k = 0; k < rl; k++) {
                if (t->spm_escape_ws && rep[k] == ' ') buf_adds(out, SPACE_SYMBOL);
                else buf_addc(out, rep[k]);
            }
            prev_space = rep[rl - 1] == ' ';
        }
        if (!t->spm_remove_extra_ws) prev_space = false;
    }
#undef PREFIX
    if (t->spm_remove_extra_ws) {
        const char *sp = t->spm_escape_ws ? SPACE_SYMBOL : " ";
        size_t sl = strlen(sp);
        while (out->len >= sl && !memcmp(out->data + out->len - sl, sp, sl)) out->len -= sl;
        out->data[out->len] = 0;
    }
}

/* ---- protobuf ---- */

struct pb {
    const unsigned char *p, *end;
};

static int pb_varint(struct pb *b, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return -1;
        unsigned char c = *b->p++;
        r |= (uint64_t)(c & 0x7F) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Next field: 1 and its number, wire type and (for length-delimited) its
 * bytes; 0 at the end; -1 on malformed input. Varint values land in *v,
 * 32-bit values in *v too. */
static int pb_next(struct pb *b, uint32_t *field, int *wt, uint64_t *v, struct pb *sub)
{
    if (b->p >= b->end) return 0;
    uint64_t key;
    if (pb_varint(b, &key)) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (int)(key & 7);
    switch (*wt) {
    case 0: return pb_varint(b, v) ? -1 : 1;
    case 1:
        if (b->end - b->p < 8) return -1;
        b->p += 8;
        return 1;
    case 5:
        if (b->end - b->p < 4) return -1;
        *v = (uint64_t)b->p[0] | (uint64_t)b->p[1] << 8 | (uint64_t)b->p[2] << 16 | (uint64_t)b->p[3] << 24;
        b->p += 4;
        return 1;
    case 2: {
        uint64_t len;
        if (pb_varint(b, &len) || len > (uint64_t)(b->end - b->p)) return -1;
        sub->p = b->p;
        sub->end = b->p + len;
        b->p += len;
        return 1;
    }
    default: return -1;
    }
}

struct spm_piece {
    const unsigned char *s;
    size_t len;
    float score;
    int type;
};

struct spm_file {
    struct spm_piece *pieces;
    size_t n, cap;
    int model_type;          /* 1 unigram, 2 BPE */
    bool byte_fallback;
    int64_t unk_id, bos_id, eos_id;
    struct pb charsmap;
    bool has_charsmap;
    bool add_dummy_prefix, remove_extra_ws, escape_ws;
    bool ws_suffix;          /* treat_whitespace_as_suffix */
};

static int parse_piece(struct pb *b, struct spm_piece *out)
{
    uint32_t f;
    int wt, r;
    uint64_t v = 0;
    struct pb sub;
    memset(out, 0, sizeof *out);
    out->type = SPM_NORMAL;
    while ((r = pb_next(b, &f, &wt, &v, &sub)) == 1) {
        if (f == 1 && wt == 2) {
            out->s = sub.p;
            out->len = (size_t)(sub.end - sub.p);
        } else if (f == 2 && wt == 5) {
            uint32_t bits = (uint32_t)v;
            memcpy(&out->score, &bits, 4);
        } else if (f == 3 && wt == 0) {
            out->type = (int)v;
        }
    }
    return r;
}

static int parse_spm(const char *path, const unsigned char *data, size_t n, struct spm_file *sf)
{
    memset(sf, 0, sizeof *sf);
    sf->model_type = 1;
    sf->unk_id = 0;
    sf->bos_id = 1;
    sf->eos_id = 2;
    sf->add_dummy_prefix = sf->remove_extra_ws = sf->escape_ws = true;
    struct pb b = {data, data + n}, sub, sub2;
    uint32_t f, f2;
    int wt, wt2, r, r2;
    uint64_t v = 0, v2 = 0;
    while ((r = pb_next(&b, &f, &wt, &v, &sub)) == 1) {
        if (f == 1 && wt == 2) {
            sf->pieces = xgrow(sf->pieces, &sf->cap, sf->n + 1, sizeof *sf->pieces);
            if (parse_piece(&sub, &sf->pieces[sf->n]) < 0)
                return fail("%s: pieces[%zu]: malformed protobuf", path, sf->n);
            if (!sf->pieces[sf->n].len) return fail("%s: pieces[%zu]: empty piece", path, sf->n);
            if (sf->n >= TOK_MAX_ID) return fail("%s: more than 16777215 pieces", path);
            if (!utf8_is_valid((const char *)sf->pieces[sf->n].s, sf->pieces[sf->n].len))
                return fail("%s: pieces[%zu]: not valid UTF-8", path, sf->n);
            if (sf->pieces[sf->n].type < SPM_NORMAL || sf->pieces[sf->n].type > SPM_BYTE)
                return fail("%s: pieces[%zu]: unknown piece type %d", path, sf->n, sf->pieces[sf->n].type);
            sf->n++;
        } else if (f == 2 && wt == 2) {
            while ((r2 = pb_next(&sub, &f2, &wt2, &v2, &sub2)) == 1) {
                if (wt2 != 0) continue;
                if (f2 == 3) sf->model_type = (int)v2;
                else if (f2 == 35) sf->byte_fallback = v2 != 0;
                else if (f2 == 40) sf->unk_id = (int32_t)v2;
                else if (f2 == 41) sf->bos_id = (int32_t)v2;
                else if (f2 == 42) sf->eos_id = (int32_t)v2;
                else if (f2 == 24) sf->ws_suffix = v2 != 0;
            }
            if (r2 < 0) return fail("%s: trainer_spec: malformed protobuf", path);
        } else if (f == 3 && wt == 2) {
            while ((r2 = pb_next(&sub, &f2, &wt2, &v2, &sub2)) == 1) {
                if (f2 == 2 && wt2 == 2) {
                    sf->charsmap = sub2;
                    sf->has_charsmap = sub2.end > sub2.p;
                } else if (wt2 == 0 && f2 == 3) sf->add_dummy_prefix = v2 != 0;
                else if (wt2 == 0 && f2 == 4) sf->remove_extra_ws = v2 != 0;
                else if (wt2 == 0 && f2 == 5) sf->escape_ws = v2 != 0;
            }
            if (r2 < 0) return fail("%s: normalizer_spec: malformed protobuf", path);
        }
    }
    if (r < 0) return fail("%s: not a SentencePiece model (malformed protobuf)", path);
    if (sf->ws_suffix) return fail("%s: trainer_spec.treat_whitespace_as_suffix is not supported", path);
    if (!sf->n) return fail("%s: no pieces (not a SentencePiece model?)", path);
    if (sf->model_type != 1 && sf->model_type != 2)
        return fail("%s: trainer_spec.model_type %d: only Unigram (1) and BPE (2) models are supported", path,
                    sf->model_type);
    return 0;
}

int tok_load_spm_into(struct tokenizer *t, const char *path)
{
    struct buf data = BUF_INIT;
    buf_init(&data);
    if (read_file(path, &data, 1024u << 20)) {
        buf_free(&data);
        return -1;
    }
    struct spm_file sf;
    int rc = parse_spm(path, (const unsigned char *)data.data, data.len, &sf);
    if (rc) goto out;
    t->spm = true;
    t->spm_add_dummy_prefix = sf.add_dummy_prefix;
    t->spm_remove_extra_ws = sf.remove_extra_ws;
    t->spm_escape_ws = sf.escape_ws;
    if (sf.has_charsmap) {
        t->spm_charsmap = tok_charsmap_parse(sf.charsmap.p, (size_t)(sf.charsmap.end - sf.charsmap.p), path);
        if (!t->spm_charsmap) {
            rc = -1;
            goto out;
        }
    }
    tok_reserve_pieces(t, sf.n);
    struct strmap vocab;
    strmap_init(&vocab, sf.n);
    int32_t byte_ids[256], unk = -1;
    for (int i = 0; i < 256; i++) byte_ids[i] = -1;
    float minf = FLT_MAX, maxf = FLT_MIN;
    for (size_t i = 0; i < sf.n; i++) {
        const struct spm_piece *p = &sf.pieces[i];
        if (p->len > TOKENIZER_MAX_TOKEN_BYTES) {
            strmap_free(&vocab);
            rc = fail("%s: pieces[%zu] is %zu bytes long (at most %u allowed)", path, i, (size_t)p->len,
                      TOKENIZER_MAX_TOKEN_BYTES);
            goto out;
        }
        tok_set_piece(t, (int32_t)i, (const char *)p->s, p->len);
        if (p->type == SPM_NORMAL || p->type == SPM_USER || p->type == SPM_UNUSED) {
            if (!strmap_put(&vocab, (const char *)p->s, p->len, (int32_t)i)) {
                strmap_free(&vocab);
                rc = fail("%s: pieces[%zu]: '%.*s' is defined twice", path, i, (int)p->len, p->s);
                goto out;
            }
        }
        if (p->type == SPM_NORMAL) {
            if (p->score < minf) minf = p->score;
            if (p->score > maxf) maxf = p->score;
        }
        if (p->type == SPM_UNKNOWN) unk = (int32_t)i;
        if (p->type == SPM_BYTE) {
            int v = piece_byte((const char *)p->s, p->len);
            if (v < 0) {
                strmap_free(&vocab);
                rc = fail("%s: pieces[%zu]: byte piece '%.*s' is not <0xHH>", path, i, (int)p->len, p->s);
                goto out;
            }
            byte_ids[v] = (int32_t)i;
        }
        if (p->type == SPM_USER) {
            /* kept as added tokens too: the normalizer must not touch them */
            struct added_token a = {.content = (char *)p->s, .len = p->len, .id = (int32_t)i};
            tok_add_token(t, &a);
        }
        if (p->type == SPM_CONTROL || p->type == SPM_UNKNOWN) {
            struct added_token a = {.content = (char *)p->s, .len = p->len, .id = (int32_t)i, .special = true};
            tok_add_token(t, &a);
        }
    }
    if (unk < 0) {
        strmap_free(&vocab);
        rc = fail("%s: no unknown piece (type UNKNOWN)", path);
        goto out;
    }
    if (sf.byte_fallback)
        for (int i = 0; i < 256; i++)
            if (byte_ids[i] < 0) {
                strmap_free(&vocab);
                rc = fail("%s: byte_fallback is on but piece <0x%02X> is missing", path, i);
                goto out;
            }
    if (sf.model_type == 2) {
        struct tok_spm_bpe *m = &t->model.sbpe;
        t->model.kind = MODEL_SPM_BPE;
        m->vocab = vocab;
        m->n = sf.n;
        m->scores = xmalloc(sf.n * sizeof *m->scores);
        m->type = xmalloc(sf.n);
        for (size_t i = 0; i < sf.n; i++) {
            m->scores[i] = sf.pieces[i].score;
            m->type[i] = (uint8_t)sf.pieces[i].type;
        }
        m->unk_id = unk;
        m->byte_fallback = sf.byte_fallback;
        memcpy(m->byte_ids, byte_ids, sizeof byte_ids);
    } else {
        struct tok_unigram *u = &t->model.uni;
        t->model.kind = MODEL_UNIGRAM;
        u->vocab = vocab;
        u->n = sf.n;
        u->scores = xmalloc(sf.n * sizeof *u->scores);
        u->is_unused = xcalloc(sf.n, 1);
        u->is_user = xcalloc(sf.n, 1);
        for (size_t i = 0; i < sf.n; i++) {
            u->scores[i] = sf.pieces[i].score;
            u->is_unused[i] = sf.pieces[i].type == SPM_UNUSED;
            u->is_user[i] = sf.pieces[i].type == SPM_USER;
            if (sf.pieces[i].len > u->max_piece_len) u->max_piece_len = sf.pieces[i].len;
        }
        u->unk_id = unk;
        u->min_score = minf;
        u->spm_scores = true;
        u->spm_max_score = maxf;
        u->byte_fallback = sf.byte_fallback;
        memcpy(u->byte_ids, byte_ids, sizeof byte_ids);
    }
    t->spm_types = xmalloc(sf.n);
    for (size_t i = 0; i < sf.n; i++) {
        t->spm_types[i] = (uint8_t)sf.pieces[i].type;
        /* longer user-defined pieces would make every position cost that
         * many lookups; they are matched as ordinary pieces instead */
        if (sf.pieces[i].type == SPM_USER && sf.pieces[i].len > t->spm_user_max && sf.pieces[i].len <= 256)
            t->spm_user_max = sf.pieces[i].len;
    }
    if (t->model.kind == MODEL_SPM_BPE) t->model.sbpe.user_max = t->spm_user_max;
    if (sf.bos_id >= 0 && (size_t)sf.bos_id < sf.n) t->bos_id = (int32_t)sf.bos_id;
    if (sf.eos_id >= 0 && (size_t)sf.eos_id < sf.n) t->eos_id = (int32_t)sf.eos_id;
    rc = tok_finish(t, path);
out:
    free(sf.pieces);
    buf_free(&data);
    return rc;
}

/* ---- decoding ---- */

static int spm_type(const struct tokenizer *t, int32_t id)
{
    return t->spm_types[id];
}

void tok_spm_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool skip_special, struct buf *out)
{
    (void)skip_special;   /* control pieces print nothing anyway */
    struct buf text = BUF_INIT, bytes = BUF_INIT;
    buf_init(&text);
    buf_init(&bytes);
    bool is_bos_ws = true, bos_ws_seen = false;
    for (size_t i = 0; i <= n; i++) {
        int type = -1;
        size_t len = 0;
        const char *p = NULL;
        if (i < n) {
            if (ids[i] < 0 || (size_t)ids[i] >= t->npieces) continue;
            p = tokenizer_id_to_piece(t, ids[i], &len);
            type = spm_type(t, ids[i]);
            if (type == SPM_BYTE) {
                int b = piece_byte(p, len);
                if (b >= 0) buf_addc(&bytes, (char)b);
                continue;
            }
        }
        /* flush byte pieces: valid characters, U+FFFD per invalid byte */
        size_t k = 0;
        while (k < bytes.len) {
            size_t l = utf8_valid_prefix((const unsigned char *)bytes.data + k, bytes.len - k);
            if (!l) {
                buf_adds(&text, "\xEF\xBF\xBD");
                k++;
            } else {
                buf_add(&text, bytes.data + k, l);
                k += l;
            }
        }
        buf_reset(&bytes);
        if (i == n) break;
        if (bos_ws_seen || text.len) is_bos_ws = false;
        bos_ws_seen = false;
        if (type == SPM_CONTROL) continue;
        if (type == SPM_UNKNOWN) {
            buf_adds(&text, " \xE2\x81\x87 ");
            continue;
        }
        if (is_bos_ws && (t->spm_add_dummy_prefix || t->spm_remove_extra_ws) && len >= 3 &&
            !memcmp(p, SPACE_SYMBOL, 3)) {
            p += 3;
            len -= 3;
            bos_ws_seen = !t->spm_remove_extra_ws;
        }
        for (size_t j = 0; j < len;) {
            if (len - j >= 3 && !memcmp(p + j, SPACE_SYMBOL, 3)) {
                buf_addc(&text, ' ');
                j += 3;
            } else {
                buf_addc(&text, p[j++]);
            }
        }
    }
    buf_add(out, text.data, text.len);
    buf_free(&text);
    buf_free(&bytes);
}
