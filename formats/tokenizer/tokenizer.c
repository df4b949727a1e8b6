/* The tokenizer pipeline: added tokens, normalizer, pre-tokenizer, model,
 * post-processor on the way in; decoder on the way out (HuggingFace
 * tokenizers' encode/decode), plus loading by directory and streaming
 * detokenization. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"

void tok_ids_push(struct tok_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) ids->v = xgrow(ids->v, &ids->cap, ids->n + 1, sizeof *ids->v);
    ids->v[ids->n++] = id;
}

void tok_ids_free(struct tok_ids *ids)
{
    free(ids->v);
    memset(ids, 0, sizeof *ids);
}

/* ---- construction ---- */

struct tokenizer *tok_new(const char *source)
{
    struct tokenizer *t = xcalloc(1, sizeof *t);
    t->source = source;
    t->bos_id = t->eos_id = -1;
    buf_init(&t->piece_text);
    buf_init(&t->nbuf);
    pthread_mutex_init(&t->lock, NULL);
    return t;
}

void tok_reserve_pieces(struct tokenizer *t, size_t n)
{
    if (n <= t->npieces) return;
    t->piece_off = xrealloc(t->piece_off, n * sizeof *t->piece_off);
    t->piece_len = xrealloc(t->piece_len, n * sizeof *t->piece_len);
    for (size_t i = t->npieces; i < n; i++) {
        t->piece_off[i] = SIZE_MAX;
        t->piece_len[i] = 0;
    }
    t->npieces = n;
}

void tok_set_piece(struct tokenizer *t, int32_t id, const char *s, size_t len)
{
    if (id < 0) return;
    if ((size_t)id >= t->npieces) {
        size_t n = t->npieces ? t->npieces : 256;
        while (n <= (size_t)id) n *= 2;
        tok_reserve_pieces(t, n);
    }
    if ((size_t)id + 1 > t->nmodel) t->nmodel = (size_t)id + 1;
    t->piece_off[id] = t->piece_text.len;
    t->piece_len[id] = (uint32_t)len;
    buf_add(&t->piece_text, s, len);
}

void tok_add_token(struct tokenizer *t, const struct added_token *a)
{
    size_t cap = t->nadded;
    t->added = xgrow(t->added, &cap, t->nadded + 1, sizeof *t->added);
    struct added_token *d = &t->added[t->nadded++];
    *d = *a;
    d->content = xstrndup(a->content, a->len);
}

static void trie_init(struct added_trie *tr)
{
    memset(tr, 0, sizeof *tr);
    u64map_init(&tr->edges, 64);
    tr->nodes = 1;
    tr->cap = 64;
    tr->term = xmalloc(tr->cap * sizeof *tr->term);
    tr->term[0] = -1;
}

static void trie_insert(struct added_trie *tr, const char *s, size_t n, int32_t index)
{
    if (!n) return;
    uint64_t node = 0;
    tr->first[(unsigned char)s[0] >> 3] |= (uint8_t)(1u << ((unsigned char)s[0] & 7));
    for (size_t i = 0; i < n; i++) {
        uint64_t key = node << 8 | (unsigned char)s[i], child;
        if (!u64map_get(&tr->edges, key, &child)) {
            child = tr->nodes++;
            tr->term = xgrow(tr->term, &tr->cap, tr->nodes, sizeof *tr->term);
            tr->term[child] = -1;
            u64map_put(&tr->edges, key, child);
        }
        node = child;
    }
    /* a content listed twice: the later entry wins, as in a map */
    tr->term[node] = index;
}

static void trie_free(struct added_trie *tr)
{
    u64map_free(&tr->edges);
    free(tr->term);
    memset(tr, 0, sizeof *tr);
}

/* Leftmost-longest match at or after `from`: the token index, or -1. */
static int32_t trie_find(const struct added_trie *tr, const char *s, size_t n, size_t from, size_t *ms, size_t *me)
{
    if (tr->nodes <= 1) return -1;
    for (size_t i = from; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(tr->first[c >> 3] & (1u << (c & 7)))) continue;
        uint64_t node = 0;
        int32_t found = -1;
        size_t end = 0;
        for (size_t j = i; j < n; j++) {
            uint64_t child;
            if (!u64map_get(&tr->edges, node << 8 | (unsigned char)s[j], &child)) break;
            node = child;
            if (tr->term[node] >= 0) {
                found = tr->term[node];
                end = j + 1;
            }
        }
        if (found >= 0) {
            *ms = i;
            *me = end;
            return found;
        }
    }
    return -1;
}

int tok_finish(struct tokenizer *t, const char *file)
{
    size_t vs = t->nmodel;
    for (size_t i = 0; i < t->nadded; i++) {
        if (t->added[i].id < 0) return fail("%s: added token '%s': negative id", file, t->added[i].content);
        if ((size_t)t->added[i].id + 1 > vs) vs = (size_t)t->added[i].id + 1;
    }
    t->vocab_size = vs;
    t->added_index = xmalloc((vs ? vs : 1) * sizeof *t->added_index);
    for (size_t i = 0; i < vs; i++) t->added_index[i] = -1;
    trie_init(&t->trie_raw);
    trie_init(&t->trie_norm);
    for (size_t i = 0; i < t->nadded; i++) {
        struct added_token *a = &t->added[i];
        t->added_index[a->id] = (int32_t)i;
        if (a->normalized) {
            /* matched in normalized text: match its normalized form */
            tok_normalize(t->norm, a->content, a->len, &t->nbuf);
            trie_insert(&t->trie_norm, t->nbuf.data, t->nbuf.len, (int32_t)i);
        } else {
            trie_insert(&t->trie_raw, a->content, a->len, (int32_t)i);
        }
    }
    return 0;
}

void tokenizer_free(struct tokenizer *t)
{
    if (!t) return;
    tok_norm_free(t->norm);
    tok_pretok_free(t->pretok);
    tok_post_free(t->post);
    tok_dec_free(t->dec);
    tok_bpe_free(&t->model.bpe);
    tok_unigram_free(&t->model.uni);
    tok_wordpiece_free(&t->model.wp);
    tok_spm_bpe_free(&t->model.sbpe);
    for (size_t i = 0; i < t->nadded; i++) free(t->added[i].content);
    free(t->added);
    trie_free(&t->trie_raw);
    trie_free(&t->trie_norm);
    buf_free(&t->piece_text);
    free(t->piece_off);
    free(t->piece_len);
    free(t->added_index);
    if (t->spm_charsmap) tok_charsmap_free(t->spm_charsmap);
    free(t->spm_types);
    for (int i = 0; i < 3; i++) tok_pieces_free(&t->scratch[i]);
    buf_free(&t->nbuf);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void tok_post_free(struct tok_post *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->nitems; i++) free(p->items[i].ids);
    free(p->items);
    for (size_t i = 0; i < p->nkids; i++) tok_post_free(p->kids[i]);
    free(p->kids);
    free(p);
}

/* ---- loading ---- */

struct tokenizer *tokenizer_load_json(const char *path, const char *config_path)
{
    struct tokenizer *t = tok_new("tokenizer.json");
    if (tok_load_json_into(t, path, config_path)) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

struct tokenizer *tokenizer_load_sentencepiece(const char *path)
{
    struct tokenizer *t = tok_new("tokenizer.model");
    if (tok_load_spm_into(t, path)) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

struct tokenizer *tokenizer_load_bpe_files(const char *vocab, const char *merges, const char *added)
{
    struct tokenizer *t = tok_new("vocab.json+merges.txt");
    if (tok_load_gpt2_into(t, vocab, merges, added)) {
        tokenizer_free(t);
        return NULL;
    }
    return t;
}

struct tokenizer *tokenizer_load(const char *dir)
{
    if (!is_dir(dir)) {
        fail("%s: not a directory", dir);
        return NULL;
    }
    char *json = path_join(dir, "tokenizer.json");
    char *model = path_join(dir, "tokenizer.model");
    char *vocab = path_join(dir, "vocab.json");
    char *merges = path_join(dir, "merges.txt");
    char *added = path_join(dir, "added_tokens.json");
    char *config = path_join(dir, "tokenizer_config.json");
    struct tokenizer *t = NULL;
    if (path_exists(json)) {
        t = tokenizer_load_json(json, path_exists(config) ? config : NULL);
    } else if (path_exists(model)) {
        t = tokenizer_load_sentencepiece(model);
    } else if (path_exists(vocab) && path_exists(merges)) {
        t = tokenizer_load_bpe_files(vocab, merges, path_exists(added) ? added : NULL);
    } else {
        fail("%s: no tokenizer.json, tokenizer.model or vocab.json + merges.txt", dir);
    }
    free(json);
    free(model);
    free(vocab);
    free(merges);
    free(added);
    free(config);
    return t;
}

const char *tokenizer_source(const struct tokenizer *t)
{
    return t->source;
}

/* ---- encoding ---- */

static void model_encode(struct tokenizer *t, const char *s, size_t n, struct tok_ids *out)
{
    switch (t->model.kind) {
    case MODEL_BPE: tok_bpe_encode(&t->model.bpe, s, n, out); break;
    case MODEL_UNIGRAM: tok_unigram_encode(&t->model.uni, s, n, out); break;
    case MODEL_WORDPIECE: tok_wordpiece_encode(&t->model.wp, s, n, out); break;
    case MODEL_SPM_BPE: tok_spm_bpe_encode(&t->model.sbpe, s, n, out); break;
    }
}

struct direct_ctx {
    struct tokenizer *t;
    struct tok_ids *out;
};

static void direct_piece(void *ctx, const char *p, size_t len)
{
    struct direct_ctx *d = ctx;
    model_encode(d->t, p, len, d->out);
}

/* Pre-tokenize one stretch of normalized text and run the model on it. */
static void encode_text(struct tokenizer *t, const char *s, size_t n, bool at_start, struct tok_ids *out)
{
    if (!n) return;
    if (!t->pretok) {
        model_encode(t, s, n, out);
        return;
    }
    if (t->pretok->kind == PT_SPLIT) {
        /* the common case (Llama 3, Qwen): one regex split, no copies */
        struct direct_ctx d = {t, out};
        tok_pretok_split_direct(t->pretok, s, n, direct_piece, &d);
        return;
    }
    struct tok_pieces *in = &t->scratch[0], *pieces = &t->scratch[1];
    tok_pieces_reset(in);
    tok_pieces_add(in, s, n, at_start);
    tok_pretokenize(t->pretok, in, pieces);
    for (size_t i = 0; i < pieces->n; i++)
        model_encode(t, pieces->text.data + pieces->v[i].off, pieces->v[i].len, out);
}

static bool word_char_before(const char *s, size_t start)
{
    if (!start) return false;
    size_t st = start - 1;
    while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
    size_t k;
    return uc_is_word(utf8_decode(s + st, start - st, &k));
}

static bool word_char_after(const char *s, size_t n, size_t stop)
{
    if (stop >= n) return false;
    size_t k;
    return uc_is_word(utf8_decode(s + stop, n - stop, &k));
}

/* Split s by the added tokens of one trie (HuggingFace's find_matches):
 * calls text_fn for the stretches between tokens and pushes token ids. */
typedef void (*stretch_fn)(struct tokenizer *t, const char *s, size_t n, bool at_start, struct tok_ids *out);

static void split_added(struct tokenizer *t, const struct added_trie *tr, const char *s, size_t n, bool at_start,
                        stretch_fn text_fn, struct tok_ids *out)
{
    size_t start_offset = 0, from = 0, ms, me;
    int32_t k;
    while ((k = trie_find(tr, s, n, from, &ms, &me)) >= 0) {
        from = me;
        const struct added_token *a = &t->added[k];
        size_t start = ms, stop = me;
        if (a->single_word && (word_char_before(s, start) || word_char_after(s, n, stop))) continue;
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0) {
                size_t st = ns - 1;
                while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
                size_t l;
                if (!uc_is_whitespace(utf8_decode(s + st, ns - st, &l))) break;
                ns = st;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (a->rstrip) {
            while (stop < n) {
                size_t l;
                if (!uc_is_whitespace(utf8_decode(s + stop, n - stop, &l))) break;
                stop += l;
            }
        }
        if (start_offset < start) text_fn(t, s + start_offset, start - start_offset, at_start && start_offset == 0, out);
        tok_ids_push(out, a->id);
        start_offset = stop;
    }
    if (start_offset < n) text_fn(t, s + start_offset, n - start_offset, at_start && start_offset == 0, out);
}

static void normalized_stretch(struct tokenizer *t, const char *s, size_t n, bool at_start, struct tok_ids *out)
{
    struct buf norm = BUF_INIT;
    buf_init(&norm);
    tok_normalize(t->norm, s, n, &norm);
    split_added(t, &t->trie_norm, norm.data, norm.len, at_start, encode_text, out);
    buf_free(&norm);
}

static void post_process(const struct tok_post *p, const int32_t *seq, size_t n, struct tok_ids *out)
{
    switch (p->kind) {
    case POST_TEMPLATE:
        for (size_t i = 0; i < p->nitems; i++) {
            if (p->items[i].seq) {
                for (size_t j = 0; j < n; j++) tok_ids_push(out, seq[j]);
            } else {
                for (size_t j = 0; j < p->items[i].n; j++) tok_ids_push(out, p->items[i].ids[j]);
            }
        }
        break;
    case POST_BERT: case POST_ROBERTA:
        tok_ids_push(out, p->cls_id);
        for (size_t j = 0; j < n; j++) tok_ids_push(out, seq[j]);
        tok_ids_push(out, p->sep_id);
        break;
    case POST_BYTELEVEL:
        for (size_t j = 0; j < n; j++) tok_ids_push(out, seq[j]);
        break;
    case POST_SEQUENCE: {
        struct tok_ids a = {0}, b = {0};
        for (size_t j = 0; j < n; j++) tok_ids_push(&a, seq[j]);
        for (size_t i = 0; i < p->nkids; i++) {
            b.n = 0;
            post_process(p->kids[i], a.v, a.n, &b);
            struct tok_ids x = a;
            a = b;
            b = x;
        }
        for (size_t j = 0; j < a.n; j++) tok_ids_push(out, a.v[j]);
        tok_ids_free(&a);
        tok_ids_free(&b);
        break;
    }
    }
}

int tokenizer_encode(struct tokenizer *t, const char *text, size_t len, bool add_special, struct tok_ids *out)
{
    if (!utf8_is_valid(text, len)) return fail("text to encode is not valid UTF-8");
    size_t mark = out->n;
    pthread_mutex_lock(&t->lock);
    tok_pattern_failed();
    if (t->spm) {
        struct buf norm = BUF_INIT;
        buf_init(&norm);
        tok_spm_normalize(t, text, len, &norm);
        model_encode(t, norm.data, norm.len, out);
        buf_free(&norm);
    } else {
        split_added(t, &t->trie_raw, text, len, true, normalized_stretch, out);
    }
    bool gave_up = tok_pattern_failed();
    pthread_mutex_unlock(&t->lock);
    if (gave_up) {
        /* a regex gave up: what it split is not what HuggingFace would */
        out->n = mark;
        return -1;
    }
    if (add_special) {
        if (t->spm) {
            if (t->bos_id >= 0) {
                tok_ids_push(out, 0);
                memmove(out->v + mark + 1, out->v + mark, (out->n - mark - 1) * sizeof *out->v);
                out->v[mark] = t->bos_id;
            }
        } else if (t->post) {
            size_t n = out->n - mark;
            int32_t *seq = xmalloc((n ? n : 1) * sizeof *seq);
            if (n) memcpy(seq, out->v + mark, n * sizeof *seq);
            out->n = mark;
            post_process(t->post, seq, n, out);
            free(seq);
        }
    }
    return 0;
}

/* ---- decoding ---- */

const char *tokenizer_id_to_piece(const struct tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || (size_t)id >= t->vocab_size) return NULL;
    int32_t a = t->added_index[id];
    if (a >= 0) {
        *len = t->added[a].len;
        return t->added[a].content;
    }
    if ((size_t)id >= t->npieces || t->piece_off[id] == SIZE_MAX) return NULL;
    *len = t->piece_len[id];
    return t->piece_text.data + t->piece_off[id];
}

bool tokenizer_is_special(const struct tokenizer *t, int32_t id)
{
    if (id < 0 || (size_t)id >= t->vocab_size) return false;
    int32_t a = t->added_index[id];
    return a >= 0 && t->added[a].special;
}

int tokenizer_decode(const struct tokenizer *t, const int32_t *ids, size_t n, bool skip_special, struct buf *out)
{
    if (t->spm) {
        tok_spm_decode(t, ids, n, skip_special, out);
        return 0;
    }
    tok_pattern_failed();
    struct tok_strs toks = {0};
    tok_strs_reset(&toks);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const char *p = tokenizer_id_to_piece(t, ids[i], &len);
        if (!p) continue;
        if (skip_special && tokenizer_is_special(t, ids[i])) continue;
        tok_strs_add(&toks, p, len);
    }
    tok_decode_chain(t->dec, &toks, out);
    tok_strs_free(&toks);
    return tok_pattern_failed() ? -1 : 0;
}

int32_t tokenizer_piece_to_id(const struct tokenizer *t, const char *piece, size_t len)
{
    for (size_t i = t->nadded; i-- > 0;)
        if (t->added[i].len == len && !memcmp(t->added[i].content, piece, len)) return t->added[i].id;
    for (size_t id = 0; id < t->npieces; id++)
        if (t->piece_off[id] != SIZE_MAX && t->piece_len[id] == len &&
            !memcmp(t->piece_text.data + t->piece_off[id], piece, len))
            return (int32_t)id;
    return -1;
}

size_t tokenizer_vocab_size(const struct tokenizer *t)
{
    return t->vocab_size;
}

int32_t tokenizer_bos_id(const struct tokenizer *t)
{
    return t->bos_id;
}

int32_t tokenizer_eos_id(const struct tokenizer *t)
{
    return t->eos_id;
}
