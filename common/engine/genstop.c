#include "common/engine/genstop.h"

#include <stdlib.h>
#include <string.h>

void gen_stop_init(struct gen_stop *g, const int32_t *stop_ids, size_t n_ids, const char *const *stop_strs,
                   size_t n_strs, size_t max_tokens)
{
    memset(g, 0, sizeof *g);
    g->stop_ids = xmalloc((n_ids ? n_ids : 1) * sizeof *g->stop_ids);
    if (n_ids) memcpy(g->stop_ids, stop_ids, n_ids * sizeof *g->stop_ids);
    g->n_ids = n_ids;
    g->stop_strs = xcalloc(n_strs ? n_strs : 1, sizeof *g->stop_strs);
    for (size_t i = 0; i < n_strs; i++)
        if (stop_strs[i][0]) g->stop_strs[g->n_strs++] = xstrdup(stop_strs[i]);
    g->max_tokens = max_tokens;
    buf_init(&g->held);
}

/* Length of the longest suffix of s that is a proper prefix of a stop
 * string: that much may still become a stop string. */
static size_t partial_suffix(const struct gen_stop *g, const char *s, size_t n)
{
    size_t best = 0;
    for (size_t k = 0; k < g->n_strs; k++) {
        size_t sl = strlen(g->stop_strs[k]);
        size_t max = sl - 1 < n ? sl - 1 : n;
        for (size_t l = max; l > best; l--)
            if (!memcmp(s + n - l, g->stop_strs[k], l)) {
                best = l;
                break;
            }
    }
    return best;
}

enum stop_reason gen_stop_feed(struct gen_stop *g, int32_t id, const char *text, size_t len, struct buf *out)
{
    if (g->reason != STOP_NONE) return g->reason;
    g->generated++;
    for (size_t i = 0; i < g->n_ids; i++)
        if (g->stop_ids[i] == id) {
            gen_stop_flush(g, out);
            return g->reason = STOP_TOKEN;
        }
    buf_add(&g->held, text, len);
    /* the earliest stop string wins */
    size_t at = SIZE_MAX;
    for (size_t k = 0; k < g->n_strs; k++) {
        const char *hit = memmem(g->held.data, g->held.len, g->stop_strs[k], strlen(g->stop_strs[k]));
        if (hit && (size_t)(hit - g->held.data) < at) at = (size_t)(hit - g->held.data);
    }
    if (at != SIZE_MAX) {
        buf_add(out, g->held.data, at);
        buf_reset(&g->held);
        return g->reason = STOP_STRING;
    }
    size_t keep = partial_suffix(g, g->held.data, g->held.len);
    size_t show = g->held.len - keep;
    buf_add(out, g->held.data, show);
    memmove(g->held.data, g->held.data + show, keep);
    g->held.len = keep;
    g->held.data[keep] = 0;
    if (g->max_tokens && g->generated >= g->max_tokens) {
        gen_stop_flush(g, out);
        return g->reason = STOP_LENGTH;
    }
    return STOP_NONE;
}

void gen_stop_flush(struct gen_stop *g, struct buf *out)
{
    buf_add(out, g->held.data, g->held.len);
    buf_reset(&g->held);
}

void gen_stop_free(struct gen_stop *g)
{
    free(g->stop_ids);
    for (size_t i = 0; i < g->n_strs; i++) free(g->stop_strs[i]);
    free(g->stop_strs);
    buf_free(&g->held);
    memset(g, 0, sizeof *g);
}

const char *stop_reason_name(enum stop_reason r)
{
    switch (r) {
    case STOP_TOKEN: return "stop token";
    case STOP_STRING: return "stop string";
    case STOP_LENGTH: return "length";
    default: return "none";
    }
}
