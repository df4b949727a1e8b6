/* The rotary tables of the Vulkan plan's step data: which rope ops share
 * one (formats/launch_plan.h). */
#include "formats/launch_plan.h"
#include "common/err.h"

#include <string.h>

static int rotary_dims(const struct op_attrs *a)
{
    return a->rotary_dim ? a->rotary_dim : a->head_dim;
}

static bool same_scaling(const struct rope_scaling *x, const struct rope_scaling *y)
{
    if (x->kind != y->kind || x->factor != y->factor || x->low_freq_factor != y->low_freq_factor ||
        x->high_freq_factor != y->high_freq_factor || x->original_max_position != y->original_max_position ||
        x->n_factors != y->n_factors || x->attention_factor != y->attention_factor)
        return false;
    int n = x->n_factors < 0 ? 0 : x->n_factors > ROPE_MAX_FACTORS ? ROPE_MAX_FACTORS : x->n_factors;
    for (int i = 0; i < n; i++)
        if (x->short_factor[i] != y->short_factor[i] || x->long_factor[i] != y->long_factor[i]) return false;
    return true;
}

static bool same_rotation(const struct op_attrs *x, const struct op_attrs *y)
{
    return x->head_dim == y->head_dim && rotary_dims(x) == rotary_dims(y) && x->rope_theta == y->rope_theta &&
           same_scaling(&x->rope_scaling, &y->rope_scaling);
}

/* Walk the rope ops in order, collecting distinct rotations into first[]
 * (n of them); stop at `find` when it is given. */
static int walk(const struct module *m, const struct op_attrs **first, const struct op_attrs *find)
{
    int n = 0;
    for (int fi = 0; fi < m->nfns; fi++)
        for (int i = 0; i < m->fns[fi].nops; i++) {
            const struct op *o = &m->fns[fi].ops[i];
            if (o->kind != OP_ROPE) continue;
            int t = 0;
            while (t < n && !same_rotation(first[t], &o->a)) t++;
            if (t == n) {
                if (n == LP_MAX_ROPE_TABLES)
                    return fail("the module rotates in more than %d distinct ways (%s, op %d)", LP_MAX_ROPE_TABLES,
                                m->fns[fi].name, i);
                first[n++] = &o->a;
            }
            if (find && same_rotation(first[t], find)) return t;
        }
    return find ? -1 : n;
}

int lp_rope_tables(const struct module *m, const struct op_attrs **first)
{
    return walk(m, first, NULL);
}

int lp_rope_table_of(const struct module *m, const struct op_attrs *a)
{
    const struct op_attrs *first[LP_MAX_ROPE_TABLES];
    return walk(m, first, a);
}
