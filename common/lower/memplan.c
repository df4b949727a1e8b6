#include "common/lower/memplan.h"
#include "common/buf.h"

#include <stdlib.h>
#include <string.h>

static int64_t align_up(int64_t n)
{
    return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

bool memplan_is_planned(const struct function *f)
{
    for (int v = 0; v < f->nvalues; v++)
        if (f->values[v].kind != VAL_PARAM && f->values[v].offset < 0) return false;
    return true;
}

struct block {
    int64_t offset, size;
    int last;      /* last op that reads it */
};

static int by_offset(const void *a, const void *b)
{
    const struct block *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void memplan_function(struct function *f, bool reuse)
{
    int n = f->nvalues;
    int *def = xcalloc((size_t)n + 1, sizeof *def), *last = xcalloc((size_t)n + 1, sizeof *last);
    for (int v = 0; v < n; v++) {
        def[v] = f->values[v].kind == VAL_INPUT ? -1 : -2;
        last[v] = f->values[v].kind == VAL_OUTPUT ? f->nops : -1;
    }
    for (int i = 0; i < f->nops; i++) {
        const struct op *o = &f->ops[i];
        for (int k = 0; k < o->nin; k++)
            if (o->in[k] >= 0 && last[o->in[k]] < i) last[o->in[k]] = i;
        for (int k = 0; k < o->nout; k++) {
            def[o->out[k]] = i;
            if (last[o->out[k]] < i) last[o->out[k]] = i;
        }
    }
    struct block *live = xcalloc((size_t)n + 1, sizeof *live);
    int nlive = 0;
    int64_t arena = 0;
    /* allocate in definition order: inputs first, then op by op */
    for (int t = -1; t < f->nops; t++) {
        for (int v = 0; v < n; v++) {
            struct value *x = &f->values[v];
            if (x->kind == VAL_PARAM || def[v] != t) continue;
            int64_t size = align_up(value_bytes(x));
            if (reuse) {
                /* blocks whose last reader ran before this definition are free */
                int keep = 0;
                for (int i = 0; i < nlive; i++)
                    if (live[i].last >= t) live[keep++] = live[i];
                nlive = keep;
                qsort(live, (size_t)nlive, sizeof *live, by_offset);
            }
            int64_t at = 0;
            for (int i = 0; i < nlive; i++) {
                if (live[i].offset - at >= size) break;
                if (live[i].offset + live[i].size > at) at = live[i].offset + live[i].size;
            }
            x->offset = at;
            x->nbytes = size;
            live[nlive++] = (struct block){at, size, last[v]};
            if (at + size > arena) arena = at + size;
        }
    }
    /* values never written (only possible before dead-code elimination)
     * still get a slot so that the plan is complete */
    for (int v = 0; v < n; v++) {
        struct value *x = &f->values[v];
        if (x->kind != VAL_PARAM && def[v] == -2) {
            x->offset = arena;
            x->nbytes = align_up(value_bytes(x));
            arena += x->nbytes;
        }
    }
    f->arena_bytes = arena;
    free(live);
    free(def);
    free(last);
}
