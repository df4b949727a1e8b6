/* The Vulkan plan: expressions, msgpack writing and strict reading, and the
 * check of kernels against the launches that use them. */
#include "formats/launch_plan.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/stream.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits that keep a hostile plan from asking for absurd work. */
#define MAX_KERNELS 4096
#define MAX_LAUNCHES 1000000
#define MAX_EXPR_TEXT 256
#define MAX_EXPR_ITEMS 64
#define MAX_NAME 256

static const char *view_names[LP_VIEW_COUNT] = {"storage", "f32", "f32x4", "u16", "u16x4", "u32", "u32x4"};
static const uint32_t view_bytes[LP_VIEW_COUNT] = {4, 4, 16, 2, 8, 4, 16};

const char *lp_view_name(enum lp_view v)
{
    return v < LP_VIEW_COUNT ? view_names[v] : "?";
}

uint32_t lp_view_bytes(enum lp_view v)
{
    return v < LP_VIEW_COUNT ? view_bytes[v] : 0;
}

const char *lp_source_name(enum lp_source s)
{
    switch (s) {
    case LP_VALUE: return "value";
    case LP_TENSOR: return "tensor";
    case LP_KV: return "kv";
    case LP_STEP: return "step";
    case LP_NONE: return "none";
    }
    return "?";
}

/* ---- expressions ---- */

struct parser {
    const char *s, *p;
    const char *rows;
    struct lp_expr *e;
    int depth;
    const char *what;
};

static int perr(struct parser *ps, const char *problem)
{
    return fail("%s: expression \"%s\": %s at offset %d", ps->what, ps->s, problem, (int)(ps->p - ps->s));
}

static void skip(struct parser *ps)
{
    while (*ps->p == ' ') ps->p++;
}

static int emit(struct parser *ps, enum lp_tok tok, int64_t v)
{
    if (ps->e->n == MAX_EXPR_ITEMS) return perr(ps, "too long");
    ps->e->items[ps->e->n].tok = tok;
    ps->e->items[ps->e->n].v = v;
    ps->e->n++;
    return 0;
}

static int parse_sum(struct parser *ps);

static int parse_factor(struct parser *ps)
{
    skip(ps);
    if (*ps->p == '(') {
        if (++ps->depth > 16) return perr(ps, "nested too deeply");
        ps->p++;
        if (parse_sum(ps)) return -1;
        skip(ps);
        if (*ps->p != ')') return perr(ps, "')' expected");
        ps->p++;
        ps->depth--;
        return 0;
    }
    if (isdigit((unsigned char)*ps->p)) {
        int64_t v = 0;
        while (isdigit((unsigned char)*ps->p)) {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *ps->p++ - '0', &v))
                return perr(ps, "number too large");
        }
        return emit(ps, LPT_CONST, v);
    }
    if (isalpha((unsigned char)*ps->p) || *ps->p == '_') {
        const char *start = ps->p;
        while (isalnum((unsigned char)*ps->p) || *ps->p == '_') ps->p++;
        size_t len = (size_t)(ps->p - start);
        if (len == strlen(ps->rows) && !memcmp(start, ps->rows, len)) return emit(ps, LPT_VAR, LPV_ROWS);
        if (len == 11 && !memcmp(start, "slice_start", 11)) return emit(ps, LPT_VAR, LPV_SLICE_START);
        if (len == 10 && !memcmp(start, "slice_rows", 10)) return emit(ps, LPT_VAR, LPV_SLICE_ROWS);
        if (len == 8 && !memcmp(start, "kv_dtype", 8)) return emit(ps, LPT_VAR, LPV_KV_DTYPE);
        if (len > 4 && len <= 6 && !memcmp(start, "base", 4)) {
            int slot = 0;
            for (const char *c = start + 4; c < ps->p; c++) {
                if (!isdigit((unsigned char)*c)) return perr(ps, "unknown variable");
                slot = slot * 10 + (*c - '0');
            }
            if (slot >= LP_MAX_BINDINGS) return perr(ps, "binding slot out of range");
            return emit(ps, LPT_VAR, LPV_BASE0 + slot);
        }
        ps->p = start;
        return perr(ps, "unknown variable");
    }
    return perr(ps, "number, variable or '(' expected");
}

static int parse_term(struct parser *ps)
{
    if (parse_factor(ps)) return -1;
    for (;;) {
        skip(ps);
        char c = *ps->p;
        if (c != '*' && c != '/' && c != '%') return 0;
        ps->p++;
        if (parse_factor(ps)) return -1;
        if (emit(ps, c == '*' ? LPT_MUL : c == '/' ? LPT_DIV : LPT_MOD, 0)) return -1;
    }
}

static int parse_sum(struct parser *ps)
{
    if (parse_term(ps)) return -1;
    for (;;) {
        skip(ps);
        char c = *ps->p;
        if (c != '+' && c != '-') return 0;
        ps->p++;
        if (parse_term(ps)) return -1;
        if (emit(ps, c == '+' ? LPT_ADD : LPT_SUB, 0)) return -1;
    }
}

int lp_expr_compile(struct lp_expr *e, const char *text, const char *rows, const char *what)
{
    memset(e, 0, sizeof *e);
    if (strlen(text) > MAX_EXPR_TEXT) return fail("%s: expression longer than %d characters", what, MAX_EXPR_TEXT);
    e->items = xcalloc(MAX_EXPR_ITEMS, sizeof *e->items);
    struct parser ps = {text, text, rows, e, 0, what};
    int rc = parse_sum(&ps);
    skip(&ps);
    if (rc == 0 && *ps.p) rc = perr(&ps, "unexpected character");
    if (rc) {
        free(e->items);
        memset(e, 0, sizeof *e);
        return -1;
    }
    e->text = xstrdup(text);
    return 0;
}

int lp_expr_eval(const struct lp_expr *e, const int64_t *vars, int nvars, int64_t *out)
{
    int64_t stack[MAX_EXPR_ITEMS];
    int sp = 0;
    for (int i = 0; i < e->n; i++) {
        int64_t a, b, r;
        switch (e->items[i].tok) {
        case LPT_CONST: stack[sp++] = e->items[i].v; continue;
        case LPT_VAR:
            if (e->items[i].v >= nvars) return fail("expression \"%s\": variable out of range", e->text);
            stack[sp++] = vars[e->items[i].v];
            continue;
        default: break;
        }
        if (sp < 2) return fail("expression \"%s\" is malformed", e->text);
        b = stack[--sp];
        a = stack[--sp];
        switch (e->items[i].tok) {
        case LPT_ADD:
            if (__builtin_add_overflow(a, b, &r)) return fail("expression \"%s\" overflows", e->text);
            break;
        case LPT_SUB:
            if (__builtin_sub_overflow(a, b, &r)) return fail("expression \"%s\" overflows", e->text);
            break;
        case LPT_MUL:
            if (__builtin_mul_overflow(a, b, &r)) return fail("expression \"%s\" overflows", e->text);
            break;
        case LPT_DIV:
        case LPT_MOD:
            if (b <= 0 || a < 0) return fail("expression \"%s\" divides by %lld", e->text, (long long)b);
            r = e->items[i].tok == LPT_DIV ? a / b : a % b;
            break;
        default: return fail("expression \"%s\" is malformed", e->text);
        }
        stack[sp++] = r;
    }
    if (sp != 1) return fail("expression \"%s\" is malformed", e->text);
    if (stack[0] < 0 || stack[0] > (int64_t)UINT32_MAX)
        return fail("expression \"%s\" evaluates to %lld, outside 0..%u", e->text, (long long)stack[0], UINT32_MAX);
    *out = stack[0];
    return 0;
}

static void expr_free(struct lp_expr *e)
{
    free(e->text);
    free(e->items);
    memset(e, 0, sizeof *e);
}

/* ---- the plan ---- */

const struct lp_function *launch_plan_function(const struct launch_plan *p, const char *name)
{
    for (int i = 0; p && i < p->nfns; i++)
        if (!strcmp(p->fns[i].name, name)) return &p->fns[i];
    return NULL;
}

void launch_plan_free(struct launch_plan *p)
{
    if (!p) return;
    for (int k = 0; k < p->nkernels; k++) {
        free(p->kernels[k].name);
        free(p->kernels[k].shader);
        free(p->kernels[k].sha256);
        free(p->kernels[k].words);
    }
    free(p->kernels);
    for (int f = 0; f < p->nfns; f++) {
        struct lp_function *fn = &p->fns[f];
        for (int l = 0; l < fn->nlaunches; l++) {
            struct lp_launch *la = &fn->launches[l];
            for (int b = 0; b < la->nbind; b++) free(la->bind[b].tensor);
            free(la->bind);
            for (int i = 0; i < la->npush; i++) expr_free(&la->push[i]);
            free(la->push);
            for (int i = 0; i < 3; i++) expr_free(&la->groups[i]);
        }
        free(fn->launches);
        free(fn->name);
    }
    free(p->fns);
    memset(p, 0, sizeof *p);
}

/* ---- writing ---- */

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    mp_pack_cstr(pk, k);
    mp_pack_cstr(pk, v);
}

static void pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    mp_pack_cstr(pk, k);
    msgpack_pack_int64(pk, v);
}

static void pack_launch(msgpack_packer *pk, const struct lp_launch *l)
{
    msgpack_pack_map(pk, 6 + (l->slice_value >= 0) + (l->nops > 1));
    pack_kv_int(pk, "kernel", l->kernel);
    pack_kv_int(pk, "op", l->op);
    if (l->nops > 1) pack_kv_int(pk, "ops", l->nops);
    mp_pack_cstr(pk, "bindings");
    msgpack_pack_array(pk, (size_t)l->nbind);
    for (int b = 0; b < l->nbind; b++) {
        const struct lp_binding *x = &l->bind[b];
        msgpack_pack_map(pk, 3 + (x->source == LP_TENSOR && x->nrows > 0));
        pack_kv_int(pk, "slot", x->slot);
        pack_kv_str(pk, "view", lp_view_name(x->view));
        switch (x->source) {
        case LP_VALUE: pack_kv_int(pk, "value", x->value); break;
        case LP_TENSOR:
            pack_kv_str(pk, "tensor", x->tensor);
            if (x->nrows > 0) {
                mp_pack_cstr(pk, "rows");
                msgpack_pack_array(pk, 2);
                msgpack_pack_int64(pk, x->row0);
                msgpack_pack_int64(pk, x->nrows);
            }
            break;
        case LP_KV: pack_kv_int(pk, "kv", x->layer); break;
        case LP_STEP:
            mp_pack_cstr(pk, "step");
            msgpack_pack_true(pk);
            break;
        case LP_NONE:
            mp_pack_cstr(pk, "none");
            msgpack_pack_true(pk);
            break;
        }
    }
    mp_pack_cstr(pk, "push");
    msgpack_pack_array(pk, (size_t)l->npush);
    for (int i = 0; i < l->npush; i++) mp_pack_cstr(pk, l->push[i].text);
    mp_pack_cstr(pk, "groups");
    msgpack_pack_array(pk, 3);
    for (int i = 0; i < 3; i++) mp_pack_cstr(pk, l->groups[i].text);
    mp_pack_cstr(pk, "barrier");
    l->barrier ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    if (l->slice_value >= 0) pack_kv_int(pk, "slice", l->slice_value);
}

void launch_plan_pack_fields(struct rec_builder *b, const struct launch_plan *p)
{
    rb_int(b, "version", p->version);
    msgpack_packer *pk = rb_key(b, "kernels");
    msgpack_pack_array(pk, (size_t)p->nkernels);
    for (int k = 0; k < p->nkernels; k++) {
        const struct lp_kernel *kn = &p->kernels[k];
        msgpack_pack_map(pk, 4);
        pack_kv_str(pk, "name", kn->name);
        pack_kv_str(pk, "shader", kn->shader);
        pack_kv_str(pk, "sha256", kn->sha256);
        mp_pack_cstr(pk, "spec");
        msgpack_pack_array(pk, (size_t)kn->nspec);
        for (int i = 0; i < kn->nspec; i++) {
            msgpack_pack_array(pk, 2);
            msgpack_pack_uint32(pk, kn->spec_id[i]);
            msgpack_pack_uint32(pk, kn->spec_bits[i]);
        }
    }
    pk = rb_key(b, "functions");
    msgpack_pack_array(pk, (size_t)p->nfns);
    for (int f = 0; f < p->nfns; f++) {
        const struct lp_function *fn = &p->fns[f];
        msgpack_pack_map(pk, 2);
        pack_kv_str(pk, "name", fn->name);
        mp_pack_cstr(pk, "launches");
        msgpack_pack_array(pk, (size_t)fn->nlaunches);
        for (int l = 0; l < fn->nlaunches; l++) pack_launch(pk, &fn->launches[l]);
    }
}

/* ---- reading ---- */

struct rd {
    const char *what;
    char path[192];
};

static int bad(const struct rd *r, const char *field, const char *problem)
{
    return fail("%s: %s%sfield '%s' %s", r->what, r->path, r->path[0] ? ": " : "", field, problem);
}

static const msgpack_object *need(const msgpack_object *map, const char *key, msgpack_object_type type,
                                  const struct rd *r)
{
    const msgpack_object *o = map_field(map, key);
    if (!o) {
        bad(r, key, "is missing");
        return NULL;
    }
    if (o->type != type && !(type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
        bad(r, key, type == MSGPACK_OBJECT_STR ? "must be a string"
                    : type == MSGPACK_OBJECT_ARRAY ? "must be an array"
                    : type == MSGPACK_OBJECT_MAP ? "must be a map"
                    : type == MSGPACK_OBJECT_BOOLEAN ? "must be a boolean" : "must be an integer");
        return NULL;
    }
    return o;
}

static int get_int(const msgpack_object *map, const char *key, int64_t min, int64_t max, int64_t *out,
                   const struct rd *r)
{
    const msgpack_object *o = need(map, key, MSGPACK_OBJECT_POSITIVE_INTEGER, r);
    if (!o) return -1;
    int64_t v = o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64
                : o->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
    if (v < min || v > max) {
        char msg[96];
        snprintf(msg, sizeof msg, "is %lld, outside %lld..%lld", (long long)v, (long long)min, (long long)max);
        return bad(r, key, msg);
    }
    *out = v;
    return 0;
}

static char *get_str(const msgpack_object *map, const char *key, const struct rd *r)
{
    const msgpack_object *o = need(map, key, MSGPACK_OBJECT_STR, r);
    if (!o) return NULL;
    char *s = mp_strdup(o);
    if (!s || !*s || strlen(s) > MAX_NAME) {
        free(s);
        bad(r, key, "must be a non-empty string without NUL bytes (at most 256 bytes)");
        return NULL;
    }
    return s;
}

/* Kernel names become file names inside the archive. */
static bool name_ok(const char *s)
{
    for (const char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.') return false;
    return s[0] != '.';
}

static bool is_param_tensor(const struct function *f, int value, const char *tensor)
{
    const struct value *v = &f->values[value];
    if (v->kind != VAL_PARAM) return false;
    for (int i = 0; i < v->nparts; i++)
        if (!strcmp(v->parts[i], tensor)) return true;
    return false;
}

static int param_of_tensor(const struct function *f, const char *tensor)
{
    for (int v = 0; v < f->nvalues; v++)
        if (is_param_tensor(f, v, tensor)) return v;
    return -1;
}

static int read_binding(const msgpack_object *o, const struct function *f, const struct module *m,
                        struct lp_binding *b, const struct rd *r)
{
    if (o->type != MSGPACK_OBJECT_MAP) return fail("%s: %s: a binding must be a map", r->what, r->path);
    int64_t v;
    if (get_int(o, "slot", 0, LP_MAX_BINDINGS - 1, &v, r)) return -1;
    b->slot = (uint32_t)v;
    char *view = get_str(o, "view", r);
    if (!view) return -1;
    int vi = -1;
    for (int i = 0; i < LP_VIEW_COUNT; i++)
        if (!strcmp(view, view_names[i])) vi = i;
    free(view);
    if (vi < 0) return bad(r, "view", "names no view (storage, f32, f32x4, u16, u16x4, u32, u32x4)");
    b->view = (enum lp_view)vi;
    int sources = !!map_field(o, "value") + !!map_field(o, "tensor") + !!map_field(o, "kv") + !!map_field(o, "step") +
                  !!map_field(o, "none");
    if (sources != 1)
        return fail("%s: %s: a binding names exactly one of value, tensor, kv, step, none", r->what, r->path);
    if (map_field(o, "value")) {
        b->source = LP_VALUE;
        if (get_int(o, "value", 0, f->nvalues - 1, &v, r)) return -1;
        b->value = (int)v;
        const struct value *val = &f->values[b->value];
        if (val->kind == VAL_PARAM) return bad(r, "value", "names a parameter (bind its tensors instead)");
        if (val->offset < 0) return bad(r, "value", "names a value without a memory slot");
    } else if (map_field(o, "tensor")) {
        b->source = LP_TENSOR;
        if (!(b->tensor = get_str(o, "tensor", r))) return -1;
        int pv = param_of_tensor(f, b->tensor);
        if (pv < 0) return bad(r, "tensor", "names no tensor of the function's parameters");
        if (b->view == LP_STORAGE) return bad(r, "view", "of a tensor must be a texel view (weights are read-only)");
        const msgpack_object *rows = map_field(o, "rows");
        if (rows) {
            int64_t total = f->values[pv].dims[0].size;
            if (rows->type != MSGPACK_OBJECT_ARRAY || rows->via.array.size != 2 ||
                rows->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                rows->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                rows->via.array.ptr[1].via.u64 < 1 || rows->via.array.ptr[0].via.u64 > (uint64_t)total ||
                rows->via.array.ptr[1].via.u64 > (uint64_t)total - rows->via.array.ptr[0].via.u64)
                return bad(r, "rows", "must be [first, count] within the parameter's rows");
            b->row0 = (int64_t)rows->via.array.ptr[0].via.u64;
            b->nrows = (int64_t)rows->via.array.ptr[1].via.u64;
        }
    } else if (map_field(o, "kv")) {
        b->source = LP_KV;
        if (get_int(o, "kv", 0, m->dims.num_hidden_layers - 1, &v, r)) return -1;
        b->layer = (int)v;
    } else {
        const char *key = map_field(o, "step") ? "step" : "none";
        b->source = key[0] == 's' ? LP_STEP : LP_NONE;
        const msgpack_object *s = need(o, key, MSGPACK_OBJECT_BOOLEAN, r);
        if (!s) return -1;
        if (!s->via.boolean) return bad(r, key, "must be true");
    }
    return 0;
}

static const char *rows_name(const char *fn)
{
    return !strcmp(fn, "decode") ? "batch" : "seq_len";
}

static int read_launch(const msgpack_object *o, const struct function *f, const struct module *m,
                       const struct launch_plan *p, struct lp_launch *l, struct rd *r)
{
    if (o->type != MSGPACK_OBJECT_MAP) return fail("%s: %s: a launch must be a map", r->what, r->path);
    int64_t v;
    if (get_int(o, "kernel", 0, p->nkernels - 1, &v, r)) return -1;
    l->kernel = (int)v;
    if (get_int(o, "op", 0, f->nops - 1, &v, r)) return -1;
    l->op = (int)v;
    l->nops = 1;
    if (map_field(o, "ops")) {
        if (get_int(o, "ops", 1, f->nops - l->op, &v, r)) return -1;
        l->nops = (int)v;
    }
    const msgpack_object *a = need(o, "bindings", MSGPACK_OBJECT_ARRAY, r);
    if (!a) return -1;
    if (a->via.array.size > LP_MAX_BINDINGS) return bad(r, "bindings", "has more than 16 entries");
    l->bind = xcalloc(a->via.array.size + 1, sizeof *l->bind);
    size_t plen = strlen(r->path);
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        snprintf(r->path + plen, sizeof r->path - plen, ": bindings[%u]", i);
        if (read_binding(&a->via.array.ptr[i], f, m, &l->bind[i], r)) return -1;
        l->nbind++;
        for (uint32_t k = 0; k < i; k++)
            if (l->bind[k].slot == l->bind[i].slot) return bad(r, "slot", "is bound twice");
    }
    r->path[plen] = 0;
    const char *rows = rows_name(f->name);
    a = need(o, "push", MSGPACK_OBJECT_ARRAY, r);
    if (!a) return -1;
    if (a->via.array.size > LP_MAX_PUSH) return bad(r, "push", "has more than 32 words");
    l->push = xcalloc(a->via.array.size + 1, sizeof *l->push);
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        char *text = a->via.array.ptr[i].type == MSGPACK_OBJECT_STR ? mp_strdup(&a->via.array.ptr[i]) : NULL;
        char *what = xasprintf("%s: %s: push[%u]", r->what, r->path, i);
        int rc = text ? lp_expr_compile(&l->push[i], text, rows, what) : fail("%s: must be a string", what);
        free(text);
        free(what);
        if (rc) return -1;
        l->npush++;
    }
    a = need(o, "groups", MSGPACK_OBJECT_ARRAY, r);
    if (!a) return -1;
    if (a->via.array.size != 3) return bad(r, "groups", "must hold 3 expressions");
    for (int i = 0; i < 3; i++) {
        const msgpack_object *g = &a->via.array.ptr[i];
        char *text = g->type == MSGPACK_OBJECT_STR ? mp_strdup(g) : NULL;
        char *what = xasprintf("%s: %s: groups[%d]", r->what, r->path, i);
        int rc = text ? lp_expr_compile(&l->groups[i], text, rows, what) : fail("%s: must be a string", what);
        free(text);
        free(what);
        if (rc) return -1;
    }
    const msgpack_object *bar = need(o, "barrier", MSGPACK_OBJECT_BOOLEAN, r);
    if (!bar) return -1;
    l->barrier = bar->via.boolean;
    l->slice_value = -1;
    if (map_field(o, "slice")) {
        if (get_int(o, "slice", 0, f->nvalues - 1, &v, r)) return -1;
        if (f->values[v].kind != VAL_PARAM) return bad(r, "slice", "names a value that is not a parameter");
        l->slice_value = (int)v;
    }
    return 0;
}

int launch_plan_from_msgpack(const msgpack_object *o, const struct module *m, struct launch_plan *p,
                             const char *what)
{
    memset(p, 0, sizeof *p);
    struct rd r = {what, ""};
    if (o->type != MSGPACK_OBJECT_MAP) return fail("%s: not a map", what);
    int64_t v;
    if (get_int(o, "version", LAUNCH_PLAN_VERSION, LAUNCH_PLAN_VERSION, &v, &r)) return -1;
    p->version = (int)v;
    const msgpack_object *ks = need(o, "kernels", MSGPACK_OBJECT_ARRAY, &r);
    if (!ks) return -1;
    if (ks->via.array.size > MAX_KERNELS) return bad(&r, "kernels", "has more than 4096 entries");
    p->kernels = xcalloc(ks->via.array.size + 1, sizeof *p->kernels);
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < ks->via.array.size; i++) {
        const msgpack_object *k = &ks->via.array.ptr[i];
        struct lp_kernel *kn = &p->kernels[i];
        p->nkernels++;
        snprintf(r.path, sizeof r.path, "kernels[%u]", i);
        if (k->type != MSGPACK_OBJECT_MAP) {
            rc = fail("%s: %s: not a map", what, r.path);
            break;
        }
        if (!(kn->name = get_str(k, "name", &r)) || !(kn->shader = get_str(k, "shader", &r)) ||
            !(kn->sha256 = get_str(k, "sha256", &r))) {
            rc = -1;
            break;
        }
        if (!name_ok(kn->name)) rc = bad(&r, "name", "may hold only letters, digits, '-', '_' and '.'");
        for (uint32_t j = 0; rc == 0 && j < i; j++)
            if (!strcmp(p->kernels[j].name, kn->name)) rc = bad(&r, "name", "is not unique");
        if (rc == 0 && (strlen(kn->sha256) != 64 || strspn(kn->sha256, "0123456789abcdef") != 64))
            rc = bad(&r, "sha256", "must be 64 lowercase hex digits");
        const msgpack_object *sp = rc ? NULL : need(k, "spec", MSGPACK_OBJECT_ARRAY, &r);
        if (rc == 0 && !sp) rc = -1;
        if (rc == 0 && sp->via.array.size > LP_MAX_SPEC) rc = bad(&r, "spec", "has too many entries");
        for (uint32_t j = 0; rc == 0 && j < sp->via.array.size; j++) {
            const msgpack_object *e = &sp->via.array.ptr[j];
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
                e->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                e->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                e->via.array.ptr[0].via.u64 > UINT32_MAX || e->via.array.ptr[1].via.u64 > UINT32_MAX) {
                rc = bad(&r, "spec", "must hold [id, value] pairs of 32-bit unsigned integers");
                break;
            }
            kn->spec_id[j] = (uint32_t)e->via.array.ptr[0].via.u64;
            kn->spec_bits[j] = (uint32_t)e->via.array.ptr[1].via.u64;
            kn->nspec++;
        }
    }
    r.path[0] = 0;
    const msgpack_object *fs = rc ? NULL : need(o, "functions", MSGPACK_OBJECT_ARRAY, &r);
    if (rc == 0 && !fs) rc = -1;
    if (rc == 0 && fs->via.array.size > 16) rc = bad(&r, "functions", "has more than 16 entries");
    if (rc == 0) p->fns = xcalloc(fs->via.array.size + 1, sizeof *p->fns);
    size_t total = 0;
    for (uint32_t i = 0; rc == 0 && i < fs->via.array.size; i++) {
        const msgpack_object *fo = &fs->via.array.ptr[i];
        struct lp_function *fn = &p->fns[i];
        p->nfns++;
        snprintf(r.path, sizeof r.path, "functions[%u]", i);
        if (fo->type != MSGPACK_OBJECT_MAP || !(fn->name = get_str(fo, "name", &r))) {
            rc = fo->type != MSGPACK_OBJECT_MAP ? fail("%s: %s: not a map", what, r.path) : -1;
            break;
        }
        const struct function *f = module_function(m, fn->name);
        if (!f) {
            rc = bad(&r, "name", "names no function of the module");
            break;
        }
        for (uint32_t j = 0; j < i; j++)
            if (!strcmp(p->fns[j].name, fn->name)) rc = bad(&r, "name", "is not unique");
        const msgpack_object *ls = rc ? NULL : need(fo, "launches", MSGPACK_OBJECT_ARRAY, &r);
        if (rc == 0 && !ls) rc = -1;
        if (rc) break;
        total += ls->via.array.size;
        if (total > MAX_LAUNCHES) {
            rc = bad(&r, "launches", "are too many");
            break;
        }
        fn->launches = xcalloc(ls->via.array.size + 1, sizeof *fn->launches);
        for (uint32_t j = 0; rc == 0 && j < ls->via.array.size; j++) {
            snprintf(r.path, sizeof r.path, "%s: launches[%u]", fn->name, j);
            fn->nlaunches++;
            rc = read_launch(&ls->via.array.ptr[j], f, m, p, &fn->launches[j], &r);
            /* launches follow the ops; those of one op (or fused run of
             * ops) are adjacent and cover the same run */
            const struct lp_launch *a = j ? &fn->launches[j - 1] : NULL, *b = &fn->launches[j];
            if (rc == 0 && a && !(b->op == a->op ? b->nops == a->nops : b->op >= a->op + a->nops))
                rc = bad(&r, "op", "breaks the order of the ops (or splits a fused run)");
        }
    }
    if (rc) launch_plan_free(p);
    return rc;
}

/* ---- kernels against launches ---- */

static enum spirv_descriptor descriptor_of(enum lp_view v)
{
    return v == LP_STORAGE ? SPIRV_STORAGE_BUFFER : SPIRV_UNIFORM_TEXEL_BUFFER;
}

int launch_plan_check_kernels(struct launch_plan *p, const char *what)
{
    for (int k = 0; k < p->nkernels; k++) {
        struct lp_kernel *kn = &p->kernels[k];
        char *name = xasprintf("%s: kernels/%s.spv", what, kn->name);
        int rc = 0;
        if (!kn->words) rc = fail("%s is missing", name);
        char hex[HASH_HEX_MAX];
        if (rc == 0) {
            hash_hex(HASH_SHA256, kn->words, kn->nwords * 4, hex);
            if (strcmp(hex, kn->sha256))
                rc = fail("%s: sha256 %s differs from the %s the plan records: the blob is corrupted", name, hex,
                          kn->sha256);
        }
        if (rc == 0) rc = spirv_validate(kn->words, kn->nwords, name);
        if (rc == 0) rc = spirv_reflect(kn->words, kn->nwords, &kn->info, name);
        free(name);
        if (rc) return -1;
    }
    for (int f = 0; f < p->nfns; f++)
        for (int l = 0; l < p->fns[f].nlaunches; l++) {
            const struct lp_launch *la = &p->fns[f].launches[l];
            const struct lp_kernel *kn = &p->kernels[la->kernel];
            const struct spirv_info *in = &kn->info;
            if (la->nbind != in->nbindings)
                return fail("%s: %s launch %d binds %d resources, kernel %s declares %d", what, p->fns[f].name, l,
                            la->nbind, kn->name, in->nbindings);
            for (int b = 0; b < la->nbind; b++) {
                const struct spirv_binding *sb = NULL;
                for (int i = 0; i < in->nbindings; i++)
                    if (in->bindings[i].binding == la->bind[b].slot) sb = &in->bindings[i];
                if (!sb || sb->type != descriptor_of(la->bind[b].view))
                    return fail("%s: %s launch %d binds slot %u as a %s, kernel %s declares %s", what, p->fns[f].name, l,
                                la->bind[b].slot, spirv_descriptor_name(descriptor_of(la->bind[b].view)), kn->name,
                                sb ? spirv_descriptor_name(sb->type) : "nothing there");
            }
            if ((uint32_t)la->npush * 4 != in->push_bytes)
                return fail("%s: %s launch %d pushes %d bytes of constants, kernel %s takes %u", what, p->fns[f].name, l,
                            la->npush * 4, kn->name, in->push_bytes);
        }
    return 0;
}
