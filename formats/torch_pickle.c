/* The restricted state_dict unpickler (see torch_pickle.h). Objects live in
 * an arena freed at the end, so memo references need no reference counts. */
#include "formats/torch_pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"

enum kind {
    K_NONE, K_BOOL, K_INT, K_FLOAT, K_STR, K_BYTES, K_TUPLE, K_LIST, K_DICT,
    K_GLOBAL, K_STORAGE, K_TENSOR, K_MARK,
};

enum global {
    G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_STORAGE_TYPE,
};

struct obj {
    enum kind k;
    int64_t i;                /* int, bool; global id */
    double f;
    char *s;                  /* str/bytes (NUL-terminated copy) */
    size_t len;
    struct obj **items;       /* tuple, list, dict (key, value, key, value...) */
    size_t n, cap;
    enum dtype dtype;         /* storage type / storage / tensor */
    const char *type_name;
    char *key;                /* storage key */
    uint64_t numel;           /* storage numel */
    struct tp_tensor *t;      /* tensor (name unset) */
    struct obj *next_alloc;
};

struct up {
    const unsigned char *p, *end, *start;
    const char *what;
    struct obj *arena;
    size_t nobjects, nitems;  /* made so far, against TP_MAX_OBJECTS/ITEMS */
    struct obj **stack;
    size_t sp, stack_cap;
    struct obj **memo;
    size_t memo_cap, memo_n;
};

static const struct {
    const char *name;
    enum dtype dtype;
} storage_types[] = {
    {"FloatStorage", DT_F32},  {"HalfStorage", DT_F16},  {"BFloat16Storage", DT_BF16},
    {"DoubleStorage", DT_F64}, {"LongStorage", DT_I64},  {"IntStorage", DT_I32},
    {"ShortStorage", DT_I16},  {"CharStorage", DT_I8},   {"ByteStorage", DT_U8},
    {"BoolStorage", DT_BOOL},
};

static struct obj *new_obj(struct up *u, enum kind k)
{
    struct obj *o = xcalloc(1, sizeof *o);
    o->k = k;
    o->next_alloc = u->arena;
    u->arena = o;
    u->nobjects++;
    return o;
}

static int err_at(struct up *u, const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, arg);
    return fail("%s: byte %zu: %s", u->what, (size_t)(u->p - u->start), msg);
}

static int push(struct up *u, struct obj *o)
{
    if (u->sp >= TP_MAX_OBJECTS) return err_at(u, "%s", "pickle stack too deep");
    u->stack = xgrow(u->stack, &u->stack_cap, u->sp + 1, sizeof *u->stack);
    u->stack[u->sp++] = o;
    return 0;
}

static struct obj *pop(struct up *u)
{
    if (!u->sp || u->stack[u->sp - 1]->k == K_MARK) return NULL;
    return u->stack[--u->sp];
}

static int need(struct up *u, size_t n)
{
    if ((size_t)(u->end - u->p) < n) return err_at(u, "%s", "pickle ends inside an opcode");
    return 0;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* index of the topmost MARK, or -1 */
static long find_mark(struct up *u)
{
    for (size_t i = u->sp; i-- > 0;)
        if (u->stack[i]->k == K_MARK) return (long)i;
    return -1;
}

static void add_item(struct up *u, struct obj *seq, struct obj *x)
{
    u->nitems++;
    seq->items = xgrow(seq->items, &seq->cap, seq->n + 1, sizeof *seq->items);
    seq->items[seq->n++] = x;
}

static int resolve_global(struct up *u, const char *module, const char *name)
{
    struct obj *g = new_obj(u, K_GLOBAL);
    if (!strcmp(module, "collections") && !strcmp(name, "OrderedDict")) {
        g->i = G_ORDERED_DICT;
    } else if (!strcmp(module, "torch._utils") && !strcmp(name, "_rebuild_tensor_v2")) {
        g->i = G_REBUILD_TENSOR_V2;
    } else if (!strcmp(module, "torch._utils") && !strcmp(name, "_rebuild_parameter")) {
        g->i = G_REBUILD_PARAMETER;
    } else {
        bool found = false;
        if (!strcmp(module, "torch"))
            for (size_t i = 0; i < sizeof storage_types / sizeof storage_types[0]; i++)
                if (!strcmp(name, storage_types[i].name)) {
                    g->i = G_STORAGE_TYPE;
                    g->dtype = storage_types[i].dtype;
                    g->type_name = storage_types[i].name;
                    found = true;
                }
        if (!found) {
            char full[300];
            snprintf(full, sizeof full, "%.140s.%.140s", module, name);
            return err_at(u, "refusing global '%s': not part of a PyTorch state_dict (the checkpoint may "
                             "try to run code)", full);
        }
    }
    return push(u, g);
}

static bool is_int(const struct obj *o)
{
    return o && (o->k == K_INT || o->k == K_BOOL);
}

static int int_tuple(struct up *u, struct obj *o, int64_t *out, int *n, const char *field)
{
    if (!o || o->k != K_TUPLE || o->n > TP_MAX_DIMS) return err_at(u, "_rebuild_tensor_v2: %s is not a short tuple of ints", field);
    for (size_t i = 0; i < o->n; i++) {
        if (o->items[i]->k != K_INT || o->items[i]->i < 0)
            return err_at(u, "_rebuild_tensor_v2: %s holds a value that is not a non-negative int", field);
        out[i] = o->items[i]->i;
    }
    *n = (int)o->n;
    return 0;
}

static int call(struct up *u, struct obj *fn, struct obj *args)
{
    if (fn->k != K_GLOBAL || !args || args->k != K_TUPLE) return err_at(u, "%s", "REDUCE of something not callable");
    if (fn->i == G_ORDERED_DICT) {
        if (args->n != 0) return err_at(u, "%s", "OrderedDict called with arguments");
        return push(u, new_obj(u, K_DICT));
    }
    if (fn->i == G_REBUILD_PARAMETER) {
        if (args->n < 1 || args->items[0]->k != K_TENSOR) return err_at(u, "%s", "_rebuild_parameter without a tensor");
        return push(u, args->items[0]);
    }
    if (fn->i != G_REBUILD_TENSOR_V2) return err_at(u, "%s", "a storage type is not callable here");
    if (args->n < 4 || args->items[0]->k != K_STORAGE || args->items[1]->k != K_INT || args->items[1]->i < 0)
        return err_at(u, "%s", "_rebuild_tensor_v2: expected (storage, offset, size, stride, ...)");
    struct obj *t = new_obj(u, K_TENSOR);
    t->t = xcalloc(1, sizeof *t->t);
    struct obj *st = args->items[0];
    t->t->storage_key = st->key;
    t->t->dtype = st->dtype;
    t->t->storage_type = st->type_name;
    t->t->storage_numel = st->numel;
    t->t->offset = (uint64_t)args->items[1]->i;
    int64_t stride[TP_MAX_DIMS];
    int nstride;
    if (int_tuple(u, args->items[2], t->t->shape, &t->t->ndim, "size") ||
        int_tuple(u, args->items[3], stride, &nstride, "stride"))
        return -1;
    if (nstride != t->t->ndim) return err_at(u, "%s", "_rebuild_tensor_v2: size and stride differ in length");
    uint64_t numel = 1, expect = 1;
    for (int d = t->t->ndim - 1; d >= 0; d--) {
        if (t->t->shape[d] != 1 && (uint64_t)stride[d] != expect)
            return err_at(u, "%s", "tensor is not contiguous (C order); save it with .contiguous()");
        if (!u64_mul(expect, (uint64_t)t->t->shape[d], &expect)) return err_at(u, "%s", "tensor too large");
    }
    numel = expect;
    uint64_t end;
    if (!u64_add(t->t->offset, numel, &end) || end > st->numel)
        return err_at(u, "%s", "tensor extends past the end of its storage");
    t->t->numel = numel;
    return push(u, t);
}

static int persistent_load(struct up *u, struct obj *pid)
{
    if (!pid || pid->k != K_TUPLE || pid->n != 5 || pid->items[0]->k != K_STR || strcmp(pid->items[0]->s, "storage") ||
        pid->items[1]->k != K_GLOBAL || pid->items[1]->i != G_STORAGE_TYPE || pid->items[2]->k != K_STR ||
        pid->items[3]->k != K_STR || !is_int(pid->items[4]) || pid->items[4]->i < 0)
        return err_at(u, "%s", "persistent id is not ('storage', type, key, location, numel)");
    struct obj *s = new_obj(u, K_STORAGE);
    s->key = pid->items[2]->s;
    s->dtype = pid->items[1]->dtype;
    s->type_name = pid->items[1]->type_name;
    s->numel = (uint64_t)pid->items[4]->i;
    return push(u, s);
}

static int memo_put(struct up *u, uint64_t idx, struct obj *o)
{
    if (!o) return err_at(u, "%s", "memoizing an empty stack");
    if (idx > (uint64_t)(u->end - u->start)) return err_at(u, "%s", "memo index out of range");
    if (idx >= u->memo_cap) {
        size_t old = u->memo_cap;
        u->memo = xgrow(u->memo, &u->memo_cap, (size_t)idx + 1, sizeof *u->memo);
        memset(u->memo + old, 0, (u->memo_cap - old) * sizeof *u->memo);
    }
    u->memo[idx] = o;
    if (idx >= u->memo_n) u->memo_n = (size_t)idx + 1;
    return 0;
}

static int memo_get(struct up *u, uint64_t idx)
{
    if (idx >= u->memo_n || !u->memo[idx]) return err_at(u, "%s", "memo index not defined");
    return push(u, u->memo[idx]);
}

static int make_str(struct up *u, size_t len, enum kind k)
{
    if (need(u, len)) return -1;
    struct obj *o = new_obj(u, k);
    o->s = xstrndup((const char *)u->p, len);
    o->len = len;
    u->p += len;
    return push(u, o);
}

static int run(struct up *u, struct obj **result)
{
    for (;;) {
        /* a state_dict needs a few dozen objects per tensor; a pickle that
         * makes millions is amplifying its size, not describing tensors.
         * One opcode makes a few objects at most, so checking between
         * opcodes bounds them. */
        if (u->nobjects > TP_MAX_OBJECTS)
            return err_at(u, "%s", "the pickle makes more than " TP_LIMIT_TEXT(TP_MAX_OBJECTS)
                                   " objects (a state_dict needs a few dozen per tensor)");
        if (u->nitems > TP_MAX_ITEMS)
            return err_at(u, "%s", "the pickle puts more than " TP_LIMIT_TEXT(TP_MAX_ITEMS)
                                   " items into its lists, tuples and dicts");
        if (need(u, 1)) return -1;
        unsigned op = *u->p++;
        struct obj *a, *b, *c;
        long m;
        switch (op) {
        case 0x80: /* PROTO */
            if (need(u, 1)) return -1;
            if (*u->p > 5) return err_at(u, "%s", "unknown pickle protocol");
            u->p++;
            break;
        case 0x95: /* FRAME */
            if (need(u, 8)) return -1;
            u->p += 8;
            break;
        case 'c': { /* GLOBAL module\nname\n */
            const unsigned char *nl1 = memchr(u->p, '\n', (size_t)(u->end - u->p));
            if (!nl1) return err_at(u, "%s", "GLOBAL without a newline");
            const unsigned char *nl2 = memchr(nl1 + 1, '\n', (size_t)(u->end - nl1 - 1));
            if (!nl2) return err_at(u, "%s", "GLOBAL without a second newline");
            char *mod = xstrndup((const char *)u->p, (size_t)(nl1 - u->p));
            char *name = xstrndup((const char *)nl1 + 1, (size_t)(nl2 - nl1 - 1));
            u->p = nl2 + 1;
            int rc = resolve_global(u, mod, name);
            free(mod);
            free(name);
            if (rc) return -1;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            b = pop(u), a = pop(u);
            if (!a || !b || a->k != K_STR || b->k != K_STR) return err_at(u, "%s", "STACK_GLOBAL needs two strings");
            if (resolve_global(u, a->s, b->s)) return -1;
            break;
        case '}': if (push(u, new_obj(u, K_DICT))) return -1; break;
        case ')': if (push(u, new_obj(u, K_TUPLE))) return -1; break;
        case ']': if (push(u, new_obj(u, K_LIST))) return -1; break;
        case '(': if (push(u, new_obj(u, K_MARK))) return -1; break;
        case 'N': if (push(u, new_obj(u, K_NONE))) return -1; break;
        case 0x88: case 0x89:
            a = new_obj(u, K_BOOL);
            a->i = op == 0x88;
            if (push(u, a)) return -1;
            break;
        case 't': /* TUPLE */
            m = find_mark(u);
            if (m < 0) return err_at(u, "%s", "TUPLE without MARK");
            a = new_obj(u, K_TUPLE);
            for (size_t i = (size_t)m + 1; i < u->sp; i++) add_item(u, a, u->stack[i]);
            u->sp = (size_t)m;
            if (push(u, a)) return -1;
            break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            size_t n = op - 0x84;
            if (u->sp < n) return err_at(u, "%s", "stack underflow");
            a = new_obj(u, K_TUPLE);
            for (size_t i = u->sp - n; i < u->sp; i++) {
                if (u->stack[i]->k == K_MARK) return err_at(u, "%s", "MARK inside a tuple");
                add_item(u, a, u->stack[i]);
            }
            u->sp -= n;
            if (push(u, a)) return -1;
            break;
        }
        case 'q': if (need(u, 1) || memo_put(u, *u->p++, u->sp ? u->stack[u->sp - 1] : NULL)) return -1; break;
        case 'r':
            if (need(u, 4)) return -1;
            u->p += 4;
            if (memo_put(u, le(u->p - 4, 4), u->sp ? u->stack[u->sp - 1] : NULL)) return -1;
            break;
        case 0x94: if (memo_put(u, u->memo_n, u->sp ? u->stack[u->sp - 1] : NULL)) return -1; break;
        case 'h': if (need(u, 1) || memo_get(u, *u->p++)) return -1; break;
        case 'j':
            if (need(u, 4)) return -1;
            u->p += 4;
            if (memo_get(u, le(u->p - 4, 4))) return -1;
            break;
        case 'J': case 'K': case 'M': {
            int n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            if (need(u, (size_t)n)) return -1;
            a = new_obj(u, K_INT);
            uint64_t v = le(u->p, n);
            a->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
            u->p += n;
            if (push(u, a)) return -1;
            break;
        }
        case 0x8a: { /* LONG1 */
            if (need(u, 1)) return -1;
            size_t n = *u->p++;
            if (n > 8 || need(u, n)) return err_at(u, "%s", "integer too large");
            a = new_obj(u, K_INT);
            uint64_t v = le(u->p, (int)n);
            if (n && n < 8 && (u->p[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
            a->i = (int64_t)v;
            u->p += n;
            if (push(u, a)) return -1;
            break;
        }
        case 'G': {
            if (need(u, 8)) return -1;
            uint64_t v = 0;
            for (int i = 0; i < 8; i++) v = v << 8 | u->p[i];
            u->p += 8;
            a = new_obj(u, K_FLOAT);
            memcpy(&a->f, &v, 8);
            if (push(u, a)) return -1;
            break;
        }
        case 'X': case 'T': case 'B':
            if (need(u, 4)) return -1;
            u->p += 4;
            if (make_str(u, (size_t)le(u->p - 4, 4), op == 'B' ? K_BYTES : K_STR)) return -1;
            break;
        case 0x8d: case 0x8e: /* BINUNICODE8, BINBYTES8 */
            if (need(u, 8)) return -1;
            u->p += 8;
            if (le(u->p - 8, 8) > (uint64_t)(u->end - u->p)) return err_at(u, "%s", "string past the end");
            if (make_str(u, (size_t)le(u->p - 8, 8), op == 0x8e ? K_BYTES : K_STR)) return -1;
            break;
        case 0x8c: case 'U': case 'C':
            if (need(u, 1)) return -1;
            u->p++;
            if (make_str(u, u->p[-1], op == 'C' ? K_BYTES : K_STR)) return -1;
            break;
        case 'R': /* REDUCE */
            b = pop(u), a = pop(u);
            if (!a || !b) return err_at(u, "%s", "stack underflow");
            if (call(u, a, b)) return -1;
            break;
        case 'b': /* BUILD: state on a dict (OrderedDict's _metadata) or a tensor is ignored */
            b = pop(u);
            if (!b || !u->sp) return err_at(u, "%s", "stack underflow");
            a = u->stack[u->sp - 1];
            if ((a->k != K_DICT && a->k != K_TENSOR) || (b->k != K_DICT && b->k != K_NONE && b->k != K_TUPLE))
                return err_at(u, "%s", "BUILD on an object that is not a dict or tensor");
            break;
        case 's': /* SETITEM */
            c = pop(u), b = pop(u);
            if (!b || !c || !u->sp || u->stack[u->sp - 1]->k != K_DICT) return err_at(u, "%s", "SETITEM outside a dict");
            add_item(u, u->stack[u->sp - 1], b);
            add_item(u, u->stack[u->sp - 1], c);
            break;
        case 'u': /* SETITEMS */
            m = find_mark(u);
            if (m < 1 || u->stack[m - 1]->k != K_DICT || (u->sp - (size_t)m - 1) % 2)
                return err_at(u, "%s", "SETITEMS outside a dict");
            for (size_t i = (size_t)m + 1; i < u->sp; i++) add_item(u, u->stack[m - 1], u->stack[i]);
            u->sp = (size_t)m;
            break;
        case 'a': /* APPEND */
            b = pop(u);
            if (!b || !u->sp || u->stack[u->sp - 1]->k != K_LIST) return err_at(u, "%s", "APPEND outside a list");
            add_item(u, u->stack[u->sp - 1], b);
            break;
        case 'e': /* APPENDS */
            m = find_mark(u);
            if (m < 1 || u->stack[m - 1]->k != K_LIST) return err_at(u, "%s", "APPENDS outside a list");
            for (size_t i = (size_t)m + 1; i < u->sp; i++) add_item(u, u->stack[m - 1], u->stack[i]);
            u->sp = (size_t)m;
            break;
        case 'Q': /* BINPERSID */
            if (persistent_load(u, pop(u))) return -1;
            break;
        case '.': /* STOP */
            a = pop(u);
            if (!a) return err_at(u, "%s", "STOP with an empty stack");
            *result = a;
            return 0;
        default: {
            char hex[8];
            snprintf(hex, sizeof hex, "0x%02x", op);
            u->p--;
            return err_at(u, "unsupported pickle opcode %s (not used by a state_dict)", hex);
        }
        }
    }
}

void tp_state_dict_free(struct tp_state_dict *sd)
{
    for (size_t i = 0; i < sd->ntensors; i++) {
        free(sd->tensors[i].name);
        free(sd->tensors[i].storage_key);
    }
    free(sd->tensors);
    memset(sd, 0, sizeof *sd);
}

int tp_parse_state_dict(const unsigned char *data, size_t len, const char *what, struct tp_state_dict *out)
{
    memset(out, 0, sizeof *out);
    struct up u = {.p = data, .end = data + len, .start = data, .what = what};
    struct obj *root = NULL;
    int rc = run(&u, &root);
    if (rc == 0 && root->k != K_DICT) rc = fail("%s: the pickle holds no dict of tensors", what);
    size_t cap = 0;
    for (size_t i = 0; rc == 0 && i + 1 < root->n; i += 2) {
        struct obj *k = root->items[i], *v = root->items[i + 1];
        if (k->k != K_STR) {
            rc = fail("%s: a state_dict key is not a string", what);
            break;
        }
        if (v->k == K_NONE) {
            out->skipped_none++;
            continue;
        }
        if (v->k != K_TENSOR) {
            rc = fail("%s: state_dict entry '%s' is not a tensor", what, k->s);
            break;
        }
        out->tensors = xgrow(out->tensors, &cap, out->ntensors + 1, sizeof *out->tensors);
        struct tp_tensor *t = &out->tensors[out->ntensors++];
        *t = *v->t;
        t->name = xstrdup(k->s);
        t->storage_key = xstrdup(v->t->storage_key);
    }
    while (u.arena) {
        struct obj *n = u.arena->next_alloc;
        free(u.arena->s);
        free(u.arena->items);
        free(u.arena->t);
        free(u.arena);
        u.arena = n;
    }
    free(u.stack);
    free(u.memo);
    if (rc) tp_state_dict_free(out);
    return rc;
}
