/* The Vulkan back end: launches from op descriptions (ops.c), kernels
 * specialized once per distinct set of constants, bindings reconciled with
 * what each blob declares, and barriers where a launch touches memory an
 * earlier launch (since the last barrier) wrote, or writes what it read. */
#include "common/emit/emit.h"
#include "common/buf.h"
#include "common/emit/ops.h"
#include "common/emit/shaders.h"
#include "common/emit/specialize.h"
#include "common/err.h"
#include "common/hash.h"

#include <stdlib.h>
#include <string.h>

struct kernel_key {
    const char *shader;
    int nspec;
    struct spec_value spec[LP_MAX_SPEC];
};

/* A memory range a launch reads or writes (an arena range, or a KV layer). */
struct access {
    bool kv;
    int64_t lo, hi;
    bool write;
};

struct emitter {
    const struct module *m;
    int level;
    struct launch_plan *lp;
    struct kernel_key *keys;   /* per kernel */
    size_t cap_keys;
    struct access *pending;    /* since the last barrier */
    size_t npending, cap_pending;
};

static int cmp_spec(const void *a, const void *b)
{
    const struct spec_value *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static bool same_key(const struct kernel_key *a, const struct kernel_key *b)
{
    if (strcmp(a->shader, b->shader) || a->nspec != b->nspec) return false;
    for (int i = 0; i < a->nspec; i++)
        if (a->spec[i].id != b->spec[i].id || a->spec[i].bits != b->spec[i].bits) return false;
    return true;
}

/* The kernel for a request: an existing one with the same constants, or a
 * new blob specialized, validated and reflected. */
static int kernel_for(struct emitter *e, const struct launch_req *r)
{
    struct kernel_key key = {r->shader, r->nspec, {{0}}};
    memcpy(key.spec, r->spec, sizeof r->spec[0] * (size_t)r->nspec);
    qsort(key.spec, (size_t)key.nspec, sizeof key.spec[0], cmp_spec);
    for (int i = 1; i < key.nspec; i++)
        if (key.spec[i].id == key.spec[i - 1].id) return fail("kernel %s: constant %u given twice", r->shader, key.spec[i].id);
    struct launch_plan *lp = e->lp;
    for (int k = 0; k < lp->nkernels; k++)
        if (same_key(&e->keys[k], &key)) return k;

    const struct shader_blob *src = shader_find(r->shader);
    if (!src) return fail("no shipped kernel %s", r->shader);
    int same_shader = 0;
    for (int k = 0; k < lp->nkernels; k++) same_shader += !strcmp(lp->kernels[k].shader, r->shader);
    char *name = xasprintf("%s-%d", r->shader, same_shader);
    uint32_t *words = NULL;
    size_t nwords = 0;
    int rc = 0;
    if (e->level == 0) {
        nwords = src->nwords;
        words = xmalloc(sizeof *words * nwords);
        memcpy(words, src->words, sizeof *words * nwords);
    } else {
        char err[256];
        if (spirv_specialize(src->words, src->nwords, key.spec, key.nspec, true, &words, &nwords, err, sizeof err))
            rc = fail("%s: specialization failed: %s", name, err);
    }
    struct spirv_info info;
    if (rc == 0) rc = spirv_validate(words, nwords, name);
    if (rc == 0) rc = spirv_reflect(words, nwords, &info, name);
    if (rc == 0 && e->level > 0 && info.nspec)
        rc = fail("%s: %d specialization constants are left after freezing", name, info.nspec);
    if (rc) {
        free(words);
        free(name);
        return -1;
    }
    lp->kernels = xrealloc(lp->kernels, sizeof *lp->kernels * (size_t)(lp->nkernels + 1));
    e->keys = xgrow(e->keys, &e->cap_keys, (size_t)lp->nkernels + 1, sizeof *e->keys);
    struct lp_kernel *kn = &lp->kernels[lp->nkernels];
    memset(kn, 0, sizeof *kn);
    kn->name = name;
    kn->shader = xstrdup(r->shader);
    kn->words = words;
    kn->nwords = nwords;
    kn->info = info;
    char hex[HASH_HEX_MAX];
    hash_hex(HASH_SHA256, words, nwords * 4, hex);
    kn->sha256 = xstrdup(hex);
    if (e->level == 0) {
        /* unspecialized: the engine gives the constants at pipeline creation */
        kn->nspec = key.nspec;
        for (int i = 0; i < key.nspec; i++) kn->spec_id[i] = key.spec[i].id, kn->spec_bits[i] = key.spec[i].bits;
    }
    e->keys[lp->nkernels] = key;
    return lp->nkernels++;
}

static bool overlaps(const struct access *a, const struct access *b)
{
    return a->kv == b->kv && a->lo < b->hi && b->lo < a->hi && (a->write || b->write);
}

/* What a binding touches; false if nothing another launch writes. */
static bool access_of(const struct function *f, const struct lp_binding *b, struct access *out)
{
    bool write = b->view == LP_STORAGE;
    if (b->source == LP_VALUE) {
        const struct value *v = &f->values[b->value];
        *out = (struct access){false, v->offset, v->offset + v->nbytes, write};
        return true;
    }
    if (b->source == LP_KV) {
        *out = (struct access){true, b->layer, b->layer + 1, write};
        return true;
    }
    return false;
}

static bool needs_barrier(struct emitter *e, const struct function *f, const struct lp_launch *l)
{
    for (int b = 0; b < l->nbind; b++) {
        struct access a;
        if (!access_of(f, &l->bind[b], &a)) continue;
        for (size_t i = 0; i < e->npending; i++)
            if (overlaps(&a, &e->pending[i])) return true;
    }
    return false;
}

static void note_accesses(struct emitter *e, const struct function *f, const struct lp_launch *l)
{
    for (int b = 0; b < l->nbind; b++) {
        struct access a;
        if (!access_of(f, &l->bind[b], &a)) continue;
        e->pending = xgrow(e->pending, &e->cap_pending, e->npending + 1, sizeof *e->pending);
        e->pending[e->npending++] = a;
    }
}

static void free_req(struct launch_req *r)
{
    for (int i = 0; i < r->nbind; i++) free(r->bind[i].tensor);
    for (int i = 0; i < r->npush; i++) free(r->push[i]);
    for (int i = 0; i < 3; i++) free(r->groups[i]);
    memset(r, 0, sizeof *r);
}

/* The launch of request r as op `op` of function f, its bindings matched
 * to what the kernel declares: a slot the blob no longer uses (the
 * optimizer dropped it) goes, a declared slot the op does not need gets
 * nothing bound. */
static int add_launch(struct emitter *e, const struct function *f, struct lp_function *fn, int op, int nops,
                      struct launch_req *r)
{
    int k = kernel_for(e, r);
    if (k < 0) return -1;
    const struct lp_kernel *kn = &e->lp->kernels[k];
    const struct spirv_info *in = &kn->info;
    if ((uint32_t)r->npush * 4 != in->push_bytes)
        return fail("kernel %s takes %u bytes of push constants, the %s op gives %d", kn->name, in->push_bytes,
                    op_name(f->ops[op].kind), r->npush * 4);
    struct lp_launch *l = &fn->launches[fn->nlaunches];
    memset(l, 0, sizeof *l);
    l->kernel = k;
    l->op = op;
    l->nops = nops;
    l->slice_value = r->slice_value;
    l->bind = xcalloc((size_t)in->nbindings + 1, sizeof *l->bind);
    for (int i = 0; i < in->nbindings; i++) {
        const struct spirv_binding *sb = &in->bindings[i];
        struct lp_binding *given = NULL;
        for (int j = 0; j < r->nbind; j++)
            if (r->bind[j].slot == sb->binding) given = &r->bind[j];
        struct lp_binding *b = &l->bind[l->nbind++];
        if (given) {
            *b = *given;
            given->tensor = NULL;
        } else {
            memset(b, 0, sizeof *b);
            b->slot = sb->binding;
            b->source = LP_NONE;
            b->view = sb->type == SPIRV_STORAGE_BUFFER ? LP_STORAGE : LP_U32;
        }
        bool storage = b->view == LP_STORAGE;
        if (storage != (sb->type == SPIRV_STORAGE_BUFFER) ||
            (!storage && sb->type != SPIRV_UNIFORM_TEXEL_BUFFER))
            return fail("kernel %s declares slot %u as a %s, the %s op binds a %s view", kn->name, sb->binding,
                        spirv_descriptor_name(sb->type), op_name(f->ops[op].kind), lp_view_name(b->view));
    }
    const char *rows = !strcmp(f->name, "decode") ? "batch" : "seq_len";
    l->push = xcalloc((size_t)r->npush + 1, sizeof *l->push);
    for (int i = 0; i < r->npush; i++, l->npush++)
        if (lp_expr_compile(&l->push[i], r->push[i], rows, kn->name)) return -1;
    for (int i = 0; i < 3; i++)
        if (lp_expr_compile(&l->groups[i], r->groups[i], rows, kn->name)) return -1;
    l->barrier = needs_barrier(e, f, l);
    if (l->barrier) e->npending = 0;
    note_accesses(e, f, l);
    fn->nlaunches++;
    return 0;
}

static int emit_function(struct emitter *e, const struct function *f)
{
    struct launch_plan *lp = e->lp;
    lp->fns = xrealloc(lp->fns, sizeof *lp->fns * (size_t)(lp->nfns + 1));
    struct lp_function *fn = &lp->fns[lp->nfns++];
    memset(fn, 0, sizeof *fn);
    fn->name = xstrdup(f->name);
    fn->launches = xcalloc((size_t)f->nops * 2 + 1, sizeof *fn->launches);
    e->npending = 0;
    int64_t bound = 0;
    for (int v = 0; v < f->nvalues; v++)
        if (f->values[v].kind == VAL_INPUT) bound = f->values[v].dims[0].size;
    struct op_ctx c = {e->m, quant_scheme_by_name(e->m->quantization), f, NULL, e->level,
                       !strcmp(f->name, "decode") ? "batch" : "seq_len", bound, !strcmp(f->name, "decode")};
    if (!c.scheme) return fail("quantization '%s' is not known", e->m->quantization);
    for (int i = 0; i < f->nops; i++) {
        c.op = &f->ops[i];
        const struct op_kernel *ok = op_kernel_for(c.op->kind);
        if (!ok) return fail("%s: op %d (%s) has no Vulkan kernel", f->name, i, op_name(c.op->kind));
        if (!ok->describe) continue;
        struct launch_req reqs[2];
        int n = 0, nops = 1;
        memset(reqs, 0, sizeof reqs);
        const struct op_fusion *fu = i + 1 < f->nops ? op_fusion_for(c.op->kind, f->ops[i + 1].kind) : NULL;
        int rc = 0;
        if (fu && e->level >= fu->min_level) {
            rc = fu->describe(&c, &f->ops[i + 1], reqs, &n);
            if (n) nops = 2;
        }
        if (rc == 0 && n == 0) rc = ok->describe(&c, reqs, &n);
        for (int k = 0; rc == 0 && k < n; k++) rc = add_launch(e, f, fn, i, nops, &reqs[k]);
        for (int k = 0; k < 2; k++) free_req(&reqs[k]);
        if (rc) return fail_prefix("%s: op %d (%s)", f->name, i, op_name(c.op->kind));
        i += nops - 1;
    }
    return 0;
}

int emit_vulkan(const struct module *m, int level, struct launch_plan *out)
{
    memset(out, 0, sizeof *out);
    out->version = LAUNCH_PLAN_VERSION;
    struct emitter e = {m, level, out, NULL, 0, NULL, 0, 0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < m->nfns; i++) {
        const struct function *f = &m->fns[i];
        bool any = false;
        for (int k = 0; k < f->nops; k++) any = any || f->ops[k].kind != OP_KV_CREATE;
        if (any) rc = emit_function(&e, f);
    }
    free(e.keys);
    free(e.pending);
    if (rc) launch_plan_free(out);
    return rc;
}
