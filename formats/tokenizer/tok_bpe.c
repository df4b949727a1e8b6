/* The BPE model of HuggingFace tokenizers: split a word into characters
 * (pieces of a byte-level pipeline arrive as raw bytes and are mapped to
 * the byte-level alphabet here, only when the word cache misses), then apply
 * merges lowest rank first, leftmost first among equal ranks, exactly as
 * tokenizers' Word::merge_all does with its priority queue. Unknown
 * characters go to byte fallback, then to the unknown token (fused or
 * not). Results are cached per word. */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>

/* words up to this many bytes are cached (longer ones are rare and would
 * crowd out the common ones) */
#define CACHE_MAX_WORD 256
#define CACHE_MAX_ENTRIES 200000

struct word_cache {
    struct strmap index;         /* word -> entry number */
    struct cache_entry {
        uint32_t start, count;   /* ids[start .. start+count) */
    } *e;
    size_t n, cap;
    int32_t *ids;
    size_t nids, capids;
};

static void cache_clear(struct word_cache *c)
{
    strmap_free(&c->index);
    strmap_init(&c->index, 4096);
    c->n = 0;
    c->nids = 0;
}

void tok_bpe_init(struct tok_bpe *b)
{
    memset(b, 0, sizeof *b);
    strmap_init(&b->vocab, 1024);
    u64map_init(&b->merges, 1024);
    b->unk_id = -1;
    for (int i = 0; i < 256; i++) b->byte_ids[i] = -1;
    b->cache = xcalloc(1, sizeof *b->cache);
    strmap_init(&b->cache->index, 4096);
}

void tok_bpe_free(struct tok_bpe *b)
{
    strmap_free(&b->vocab);
    u64map_free(&b->merges);
    free(b->prefix);
    free(b->suffix);
    if (b->cache) {
        strmap_free(&b->cache->index);
        free(b->cache->e);
        free(b->cache->ids);
        free(b->cache);
    }
    memset(b, 0, sizeof *b);
}

int tok_bpe_add_merge(struct tok_bpe *b, const char *a, size_t alen, const char *c, size_t clen, uint32_t rank)
{
    int32_t ia = strmap_get(&b->vocab, a, alen);
    int32_t ic = strmap_get(&b->vocab, c, clen);
    if (ia < 0 || ic < 0) return -1;
    /* the merged token: a + c without c's continuing-subword prefix */
    size_t skip = 0;
    if (b->prefix_len && clen >= b->prefix_len && !memcmp(c, b->prefix, b->prefix_len)) skip = b->prefix_len;
    char stackbuf[256];
    size_t mlen = alen + clen - skip;
    char *m = mlen <= sizeof stackbuf ? stackbuf : xmalloc(mlen);
    memcpy(m, a, alen);
    memcpy(m + alen, c + skip, clen - skip);
    int32_t im = strmap_get(&b->vocab, m, mlen);
    if (m != stackbuf) free(m);
    if (im < 0) return -1;
    /* a pair listed twice keeps its last rank, as a map built from the
     * list would */
    u64map_put(&b->merges, (uint64_t)(uint32_t)ia << 32 | (uint32_t)ic, (uint64_t)rank << 32 | (uint32_t)im);
    return 0;
}

#define MERGE_BATCH 64

long tok_bpe_add_merges(struct tok_bpe *b, const struct merge_text *m, size_t n)
{
    uint64_t ha[MERGE_BATCH], hc[MERGE_BATCH], hm[MERGE_BATCH], key[MERGE_BATCH];
    int32_t ia[MERGE_BATCH], ic[MERGE_BATCH];
    size_t moff[MERGE_BATCH], mlen[MERGE_BATCH];
    struct buf merged = BUF_INIT;
    buf_init(&merged);
    long bad = -1;
    for (size_t base = 0; base < n && bad < 0; base += MERGE_BATCH) {
        size_t k = n - base < MERGE_BATCH ? n - base : MERGE_BATCH;
        const struct merge_text *q = m + base;
        for (size_t i = 0; i < k; i++) {
            ha[i] = tok_hash_bytes(q[i].a, q[i].alen);
            hc[i] = tok_hash_bytes(q[i].c, q[i].clen);
            strmap_prefetch(&b->vocab, ha[i]);
            strmap_prefetch(&b->vocab, hc[i]);
        }
        buf_reset(&merged);
        for (size_t i = 0; i < k; i++) {
            ia[i] = strmap_get_hashed(&b->vocab, q[i].a, q[i].alen, ha[i]);
            ic[i] = strmap_get_hashed(&b->vocab, q[i].c, q[i].clen, hc[i]);
            /* the merged token: a + c without c's continuing-subword prefix */
            size_t skip = 0;
            if (b->prefix_len && q[i].clen >= b->prefix_len && !memcmp(q[i].c, b->prefix, b->prefix_len))
                skip = b->prefix_len;
            moff[i] = merged.len;
            buf_add(&merged, q[i].a, q[i].alen);
            buf_add(&merged, q[i].c + skip, q[i].clen - skip);
            mlen[i] = merged.len - moff[i];
            hm[i] = tok_hash_bytes(merged.data + moff[i], mlen[i]);
            strmap_prefetch(&b->vocab, hm[i]);
        }
        for (size_t i = 0; i < k; i++) {
            int32_t im = strmap_get_hashed(&b->vocab, merged.data + moff[i], mlen[i], hm[i]);
            if (ia[i] < 0 || ic[i] < 0 || im < 0) {
                bad = (long)(base + i);
                break;
            }
            key[i] = (uint64_t)(uint32_t)ia[i] << 32 | (uint32_t)ic[i];
            ia[i] = im;
            u64map_prefetch(&b->merges, key[i]);
        }
        for (size_t i = 0; i < k && bad < 0; i++)
            u64map_put(&b->merges, key[i], (uint64_t)q[i].rank << 32 | (uint32_t)ia[i]);
    }
    buf_free(&merged);
    return bad;
}

struct symbol {
    int32_t id;
    int32_t prev, next;   /* indices, -1 at the ends */
    uint32_t len;         /* 0: merged away */
};

struct merge_ev {
    uint32_t rank;
    uint32_t pos;
    int32_t new_id;
};

static bool ev_before(const struct merge_ev *a, const struct merge_ev *b)
{
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

struct heap {
    struct merge_ev *v;
    size_t n, cap;
};

static void heap_push(struct heap *h, struct merge_ev e)
{
    h->v = xgrow(h->v, &h->cap, h->n + 1, sizeof *h->v);
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_before(&e, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = e;
}

static struct merge_ev heap_pop(struct heap *h)
{
    struct merge_ev top = h->v[0];
    struct merge_ev last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= h->n) break;
        size_t m = l;
        if (l + 1 < h->n && ev_before(&h->v[l + 1], &h->v[l])) m = l + 1;
        if (!ev_before(&h->v[m], &last)) break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n) h->v[i] = last;
    return top;
}

static bool lookup_merge(const struct tok_bpe *b, int32_t l, int32_t r, uint32_t *rank, int32_t *new_id)
{
    uint64_t v;
    if (!u64map_get(&b->merges, (uint64_t)(uint32_t)l << 32 | (uint32_t)r, &v)) return false;
    *rank = (uint32_t)(v >> 32);
    *new_id = (int32_t)(uint32_t)v;
    return true;
}

struct word {
    struct symbol *s;
    size_t n, cap;
};

static void word_add(struct word *w, int32_t id, size_t len)
{
    w->s = xgrow(w->s, &w->cap, w->n + 1, sizeof *w->s);
    int32_t i = (int32_t)w->n;
    w->s[i] = (struct symbol){id, i - 1, -1, (uint32_t)len};
    if (i > 0) w->s[i - 1].next = i;
    w->n++;
}

static void merge_all(const struct tok_bpe *b, struct word *w)
{
    struct heap h = {0};
    for (size_t i = 0; i + 1 < w->n; i++) {
        uint32_t rank;
        int32_t nid;
        if (lookup_merge(b, w->s[i].id, w->s[i + 1].id, &rank, &nid))
            heap_push(&h, (struct merge_ev){rank, (uint32_t)i, nid});
    }
    while (h.n) {
        struct merge_ev top = heap_pop(&h);
        struct symbol *cur = &w->s[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        struct symbol *right = &w->s[cur->next];
        uint32_t rank;
        int32_t nid;
        if (!lookup_merge(b, cur->id, right->id, &rank, &nid) || nid != top.new_id) continue;
        cur->id = top.new_id;
        cur->len += right->len;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0) w->s[cur->next].prev = (int32_t)top.pos;
        if (cur->prev >= 0) {
            struct symbol *p = &w->s[cur->prev];
            if (lookup_merge(b, p->id, cur->id, &rank, &nid))
                heap_push(&h, (struct merge_ev){rank, (uint32_t)cur->prev, nid});
        }
        if (cur->next >= 0) {
            struct symbol *nx = &w->s[cur->next];
            if (lookup_merge(b, cur->id, nx->id, &rank, &nid))
                heap_push(&h, (struct merge_ev){rank, top.pos, nid});
        }
    }
    free(h.v);
}

static void bpe_word(const struct tok_bpe *b, const char *s, size_t n, struct word *w)
{
    struct buf tmp = BUF_INIT;
    int32_t unk = -1;
    size_t unk_len = 0;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_lead_len((unsigned char)s[i]);
        if (k > n - i) k = n - i;
        bool first = i == 0, last = i + k == n;
        const char *key = s + i;
        size_t keylen = k;
        if ((!first && b->prefix_len) || (last && b->suffix_len)) {
            if (!tmp.data) buf_init(&tmp);
            buf_reset(&tmp);
            if (!first) buf_add(&tmp, b->prefix, b->prefix_len);
            buf_add(&tmp, s + i, k);
            if (last) buf_add(&tmp, b->suffix, b->suffix_len);
            key = tmp.data;
            keylen = tmp.len;
        }
        int32_t id = strmap_get(&b->vocab, key, keylen);
        if (id >= 0) {
            if (unk >= 0) {
                word_add(w, unk, unk_len);
                unk = -1;
            }
            word_add(w, id, k);
            i += k;
            continue;
        }
        if (b->byte_fallback) {
            bool all = true;
            for (size_t j = 0; j < keylen; j++)
                if (b->byte_ids[(unsigned char)key[j]] < 0) all = false;
            if (all) {
                /* copy first: key may point into tmp */
                for (size_t j = 0; j < keylen; j++) word_add(w, b->byte_ids[(unsigned char)key[j]], 1);
                i += k;
                continue;
            }
        }
        if (b->unk_id >= 0) {
            if (unk >= 0 && b->fuse_unk) {
                unk_len += k;
            } else {
                if (unk >= 0) word_add(w, unk, unk_len);
                unk = b->unk_id;
                unk_len = k;
            }
        }
        i += k;
    }
    if (unk >= 0) word_add(w, unk, unk_len);
    buf_free(&tmp);
    merge_all(b, w);
}

void tok_bpe_encode(struct tok_bpe *b, const char *s, size_t n, struct tok_ids *out)
{
    if (!n) return;
    /* the cache is keyed by the piece as it arrives (raw bytes for a
     * byte-level pipeline): a hit skips the mapping too */
    struct word_cache *c = b->cache;
    if (n <= CACHE_MAX_WORD) {
        int32_t e = strmap_get(&c->index, s, n);
        if (e >= 0) {
            for (uint32_t j = 0; j < c->e[e].count; j++) tok_ids_push(out, c->ids[c->e[e].start + j]);
            return;
        }
    }
    const char *w_s = s;
    size_t w_n = n;
    struct buf mapped = BUF_INIT;
    if (b->map_bytes) {
        buf_init(&mapped);
        bytelevel_encode(&mapped, s, n);
        w_s = mapped.data;
        w_n = mapped.len;
    }
    size_t first = out->n;
    int32_t whole = b->ignore_merges ? strmap_get(&b->vocab, w_s, w_n) : -1;
    if (whole >= 0) {
        tok_ids_push(out, whole);
    } else {
        struct word w = {0};
        bpe_word(b, w_s, w_n, &w);
        for (int32_t i = 0; i >= 0 && (size_t)i < w.n; i = w.s[i].next) tok_ids_push(out, w.s[i].id);
        free(w.s);
    }
    if (b->map_bytes) buf_free(&mapped);
    if (n <= CACHE_MAX_WORD) {
        if (c->n >= CACHE_MAX_ENTRIES) cache_clear(c);
        size_t cnt = out->n - first;
        c->e = xgrow(c->e, &c->cap, c->n + 1, sizeof *c->e);
        c->ids = xgrow(c->ids, &c->capids, c->nids + cnt, sizeof *c->ids);
        c->e[c->n].start = (uint32_t)c->nids;
        c->e[c->n].count = (uint32_t)cnt;
        if (cnt) memcpy(c->ids + c->nids, out->v + first, cnt * sizeof *c->ids);
        c->nids += cnt;
        strmap_put(&c->index, s, n, (int32_t)c->n);
        c->n++;
    }
}
