/* SentencePiece's BPE: repeatedly merge the adjacent pair whose
 * concatenation is the highest-scoring piece (leftmost on ties), with
 * user-defined symbols frozen; merges into unused pieces are undone
 * afterwards. Unknown pieces become bytes (byte fallback) or one unknown
 * token per run. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>

struct sym {
    size_t start, len;     /* bytes of the normalized text; len 0: merged away */
    int prev, next;
    bool freeze;
};

struct pair {
    int left, right;
    float score;
    size_t size;
};

static bool pair_before(const struct pair *a, const struct pair *b)
{
    /* higher score first, then the leftmost */
    return a->score != b->score ? a->score > b->score : a->left < b->left;
}

struct pheap {
    struct pair *v;
    size_t n, cap;
};

static void pheap_push(struct pheap *h, struct pair p)
{
    h->v = xgrow(h->v, &h->cap, h->n + 1, sizeof *h->v);
    size_t i = h->n++;
    while (i > 0) {
        size_t par = (i - 1) / 2;
        if (!pair_before(&p, &h->v[par])) break;
        h->v[i] = h->v[par];
        i = par;
    }
    h->v[i] = p;
}

static struct pair pheap_pop(struct pheap *h)
{
    struct pair top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= h->n) break;
        size_t c = l;
        if (l + 1 < h->n && pair_before(&h->v[l + 1], &h->v[l])) c = l + 1;
        if (!pair_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

/* A merge of unused pieces is undone afterwards: remember its parts. */
struct revmerge {
    struct strmap index;     /* merged piece -> entry */
    size_t *ls, *ll, *rs, *rl;
    size_t n, cap;
};

static void maybe_pair(const struct tok_spm_bpe *m, const char *s, struct sym *sy, int l, int r, struct pheap *h,
                       struct revmerge *rv)
{
    if (l < 0 || r < 0 || sy[l].freeze || sy[r].freeze) return;
    size_t size = sy[l].len + sy[r].len;
    int32_t id = strmap_get(&m->vocab, s + sy[l].start, size);
    if (id < 0) return;
    pheap_push(h, (struct pair){l, r, m->scores[id], size});
    if (m->type[id] == SPM_UNUSED && strmap_get(&rv->index, s + sy[l].start, size) < 0) {
        size_t cap = rv->cap;
        rv->ls = xgrow(rv->ls, &cap, rv->n + 1, sizeof *rv->ls);
        cap = rv->cap;
        rv->ll = xgrow(rv->ll, &cap, rv->n + 1, sizeof *rv->ll);
        cap = rv->cap;
        rv->rs = xgrow(rv->rs, &cap, rv->n + 1, sizeof *rv->rs);
        rv->rl = xgrow(rv->rl, &rv->cap, rv->n + 1, sizeof *rv->rl);
        rv->ls[rv->n] = sy[l].start;
        rv->ll[rv->n] = sy[l].len;
        rv->rs[rv->n] = sy[r].start;
        rv->rl[rv->n] = sy[r].len;
        strmap_put(&rv->index, s + sy[l].start, size, (int32_t)rv->n);
        rv->n++;
    }
}

struct spm_out {
    const struct tok_spm_bpe *m;
    struct tok_ids *ids;
    bool prev_unk;
};

static void emit_piece(struct spm_out *o, const char *p, size_t len)
{
    const struct tok_spm_bpe *m = o->m;
    int32_t id = strmap_get(&m->vocab, p, len);
    bool unk = id < 0 || id == m->unk_id;
    if (unk && m->byte_fallback) {
        for (size_t i = 0; i < len; i++) tok_ids_push(o->ids, m->byte_ids[(unsigned char)p[i]]);
    } else if (unk) {
        /* runs of unknown pieces become one unknown token */
        if (!o->prev_unk) tok_ids_push(o->ids, m->unk_id);
    } else {
        tok_ids_push(o->ids, id);
    }
    o->prev_unk = unk;
}

static void resegment(struct spm_out *o, const struct revmerge *rv, const char *s, size_t start, size_t len, int depth)
{
    int32_t id = strmap_get(&o->m->vocab, s + start, len);
    int32_t e = id >= 0 && o->m->type[id] == SPM_UNUSED && depth < 256 ? strmap_get(&rv->index, s + start, len) : -1;
    if (e < 0) {
        emit_piece(o, s + start, len);
        return;
    }
    resegment(o, rv, s, rv->ls[e], rv->ll[e], depth + 1);
    resegment(o, rv, s, rv->rs[e], rv->rl[e], depth + 1);
}

void tok_spm_bpe_encode(const struct tok_spm_bpe *m, const char *s, size_t n, struct tok_ids *out)
{
    if (!n) return;
    struct sym *sy = xmalloc(n * sizeof *sy);
    int count = 0;
    size_t i = 0;
    while (i < n) {
        /* user-defined symbols are single, frozen symbols */
        size_t ul = 0;
        for (size_t l = 1; l <= n - i && l <= m->user_max; l++) {
            int32_t id = strmap_get(&m->vocab, s + i, l);
            if (id >= 0 && m->type[id] == SPM_USER) ul = l;
        }
        size_t k = ul ? ul : utf8_lead_len((unsigned char)s[i]);
        if (k > n - i) k = n - i;
        sy[count] = (struct sym){i, k, count - 1, -1, ul > 0};
        if (count > 0) sy[count - 1].next = count;
        count++;
        i += k;
    }
    struct pheap h = {0};
    struct revmerge rv = {0};
    strmap_init(&rv.index, 16);
    for (int k = 1; k < count; k++) maybe_pair(m, s, sy, k - 1, k, &h, &rv);
    while (h.n) {
        struct pair top = pheap_pop(&h);
        if (!sy[top.left].len || !sy[top.right].len || sy[top.left].len + sy[top.right].len != top.size) continue;
        sy[top.left].len += sy[top.right].len;
        sy[top.left].next = sy[top.right].next;
        if (sy[top.right].next >= 0) sy[sy[top.right].next].prev = top.left;
        sy[top.right].len = 0;
        maybe_pair(m, s, sy, sy[top.left].prev, top.left, &h, &rv);
        maybe_pair(m, s, sy, top.left, sy[top.left].next, &h, &rv);
    }
    struct spm_out o = {m, out, false};
    for (int k = 0; k >= 0; k = sy[k].next) resegment(&o, &rv, s, sy[k].start, sy[k].len, 0);
    free(h.v);
    strmap_free(&rv.index);
    free(rv.ls);
    free(rv.ll);
    free(rv.rs);
    free(rv.rl);
    free(sy);
}

void tok_spm_bpe_free(struct tok_spm_bpe *m)
{
    strmap_free(&m->vocab);
    free(m->scores);
    free(m->type);
    memset(m, 0, sizeof *m);
}

