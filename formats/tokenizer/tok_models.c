/* The Unigram and WordPiece models (BPE is in tok_bpe.c, SentencePiece's
 * score-driven BPE in tok_spm.c). */
#include "formats/tokenizer/tok_impl.h"
#include "formats/tokenizer/tok_unicode.h"

#include <stdlib.h>
#include <string.h>

/* Viterbi over all vocabulary pieces (HuggingFace's encode_optimized,
 * which mirrors SentencePiece's): a character no piece covers costs the
 * lowest score minus 10; runs of unknowns are fused; pieces that end up
 * outside the vocabulary go to byte fallback or to the unknown id. */
void tok_unigram_encode(const struct tok_unigram *u, const char *s, size_t n, struct tok_ids *out)
{
    if (!n) return;
    struct node {
        double score;
        long start;     /* -1: unreached */
        int32_t id;
    } *best = xmalloc((n + 1) * sizeof *best);
    for (size_t i = 0; i <= n; i++) best[i] = (struct node){0, -1, -1};
    best[0].start = 0;
    double unk_score = u->min_score - 10.0;
    size_t pos = 0;
    while (pos < n) {
        double here = best[pos].score;
        size_t mblen = utf8_lead_len((unsigned char)s[pos]);
        if (mblen > n - pos) mblen = n - pos;
        bool single = false;
        size_t maxl = u->max_piece_len < n - pos ? u->max_piece_len : n - pos;
        for (size_t l = 1; l <= maxl; l++) {
            /* only whole characters */
            if (pos + l < n && ((unsigned char)s[pos + l] & 0xC0) == 0x80) continue;
            int32_t id = strmap_get(&u->vocab, s + pos, l);
            if (id < 0 || (u->is_unused && u->is_unused[id])) continue;
            double cand;
            if (!u->spm_scores) cand = here + u->scores[id];
            else if (u->is_user && u->is_user[id])
                /* SentencePiece: user-defined pieces always win */
                cand = ((double)((float)l * u->spm_max_score) - 0.1) + here;
            else cand = (float)((float)u->scores[id] + (float)here);
            struct node *t = &best[pos + l];
            if (t->start < 0 || cand > t->score) *t = (struct node){u->spm_scores ? (float)cand : cand, (long)pos, id};
            if (l == mblen) single = true;
        }
        if (!single) {
            double cand = u->spm_scores ? (float)((float)unk_score + (float)here) : here + unk_score;
            struct node *t = &best[pos + mblen];
            if (t->start < 0 || cand > t->score) *t = (struct node){cand, (long)pos, u->unk_id};
        }
        pos += mblen;
    }
    /* walk back, collecting pieces (fusing unknown runs) */
    struct piece { size_t s, e; } *pieces = xmalloc((n + 1) * sizeof *pieces);
    size_t np = 0;
    size_t end = n;
    bool in_unk = false;
    while (end > 0) {
        struct node *nd = &best[end];
        size_t st = (size_t)nd->start;
        bool is_unk = u->unk_id >= 0 && nd->id == u->unk_id;
        if (is_unk && in_unk) pieces[np - 1].s = st;
        else pieces[np++] = (struct piece){st, end};
        in_unk = is_unk;
        end = st;
    }
    for (size_t i = np; i-- > 0;) {
        const char *p = s + pieces[i].s;
        size_t l = pieces[i].e - pieces[i].s;
        int32_t id = strmap_get(&u->vocab, p, l);
        if (id >= 0) {
            tok_ids_push(out, id);
            continue;
        }
        bool all = u->byte_fallback;
        for (size_t j = 0; all && j < l; j++)
            if (u->byte_ids[(unsigned char)p[j]] < 0) all = false;
        if (all) {
            for (size_t j = 0; j < l; j++) tok_ids_push(out, u->byte_ids[(unsigned char)p[j]]);
        } else if (u->unk_id >= 0) {
            tok_ids_push(out, u->unk_id);
        }
    }
    free(pieces);
    free(best);
}

void tok_unigram_free(struct tok_unigram *u)
{
    strmap_free(&u->vocab);
    free(u->scores);
    free(u->is_unused);
    free(u->is_user);
    memset(u, 0, sizeof *u);
}

/* Greedy longest-match-first; a word with an unmatchable part, or longer
 * than max_input_chars_per_word characters, is the unknown token. */
void tok_wordpiece_encode(const struct tok_wordpiece *w, const char *s, size_t n, struct tok_ids *out)
{
    size_t chars = 0;
    for (size_t i = 0; i < n; i += utf8_lead_len((unsigned char)s[i])) chars++;
    if (chars > w->max_chars) {
        if (w->unk_id >= 0) tok_ids_push(out, w->unk_id);
        return;
    }
    size_t mark = out->n;
    struct buf key = BUF_INIT;
    buf_init(&key);
    size_t start = 0;
    bool bad = false;
    while (start < n) {
        size_t end = n;
        int32_t found = -1;
        while (start < end) {
            buf_reset(&key);
            if (start > 0) buf_add(&key, w->prefix, w->prefix_len);
            buf_add(&key, s + start, end - start);
            found = strmap_get(&w->vocab, key.data, key.len);
            if (found >= 0) break;
            /* step back one character */
            end--;
            while (end > start && ((unsigned char)s[end] & 0xC0) == 0x80) end--;
        }
        if (found < 0) {
            bad = true;
            break;
        }
        tok_ids_push(out, found);
        start = end;
    }
    buf_free(&key);
    if (bad) {
        out->n = mark;
        if (w->unk_id >= 0) tok_ids_push(out, w->unk_id);
    }
}

void tok_wordpiece_free(struct tok_wordpiece *w)
{
    strmap_free(&w->vocab);
    free(w->prefix);
    memset(w, 0, sizeof *w);
}
