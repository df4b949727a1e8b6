/* One describer per op family: which shipped kernel carries it out, with
 * which specialization constants, bindings, push constants and workgroup
 * counts (each kernel's comment in shaders/ says what they mean). */
#include "common/emit/ops.h"
#include "common/buf.h"
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- describing a launch ---- */

static void spec(struct launch_req *r, uint32_t id, uint32_t v)
{
    r->spec[r->nspec++] = (struct spec_value){id, v, false};
}

static void specf(struct launch_req *r, uint32_t id, double v)
{
    float f = (float)v;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    r->spec[r->nspec++] = (struct spec_value){id, bits, true};
}

static struct lp_binding *bind_slot(struct launch_req *r, uint32_t slot, enum lp_view view, enum lp_source src)
{
    struct lp_binding *b = &r->bind[r->nbind++];
    memset(b, 0, sizeof *b);
    b->slot = slot;
    b->view = view;
    b->source = src;
    b->value = b->layer = -1;
    return b;
}

static void bind_value(struct launch_req *r, uint32_t slot, enum lp_view view, int value)
{
    bind_slot(r, slot, view, LP_VALUE)->value = value;
}

static struct lp_binding *bind_tensor(struct launch_req *r, uint32_t slot, enum lp_view view, const char *name)
{
    struct lp_binding *b = bind_slot(r, slot, view, LP_TENSOR);
    b->tensor = xstrdup(name);
    return b;
}

static void push(struct launch_req *r, const char *fmt, ...) MLC_PRINTF(2, 3);
static void push(struct launch_req *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    r->push[r->npush++] = s ? s : xstrdup("0");
}

static void groups(struct launch_req *r, const char *x, const char *y, const char *z)
{
    r->groups[0] = xstrdup(x);
    r->groups[1] = xstrdup(y);
    r->groups[2] = xstrdup(z);
}

static void start(struct launch_req *r, const char *shader, uint32_t wg)
{
    memset(r, 0, sizeof *r);
    r->shader = shader;
    r->slice_value = -1;
    spec(r, 0, wg);
}

/* The row count of a value during a call: the function's variable, or a
 * constant (the prefill's last row). */
static const char *rows_of(const struct op_ctx *c, int value, char *buf, size_t n)
{
    const struct value *v = &c->f->values[value];
    if (v->dims[0].var == DIM_ROWS) return c->rows;
    snprintf(buf, n, "%lld", (long long)v->dims[0].size);
    return buf;
}

static int64_t cols_of(const struct op_ctx *c, int value)
{
    const struct value *v = &c->f->values[value];
    return v->ndim > 1 ? v->dims[1].size : 1;
}

static const struct param_ref *param_ref(const struct module *m, const char *name)
{
    for (int i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

/* dtype codes of common.glsl */
static int dtype_code(enum dtype t)
{
    return t == DT_F32 ? 0 : t == DT_F16 ? 1 : t == DT_BF16 ? 2 : -1;
}

/* The weight `wv` ([rows, k], a parameter or a float32 value of the arena):
 * specialization constants 10..16 of weights.glsl (once: with `spec`) and
 * bindings w (slot ws) and s (slot ss) of its rows [row0, row0 + nrows)
 * (all when nrows is 0). *sliceable: the launch may run over row slices. */
static int describe_weight(const struct op_ctx *c, struct launch_req *r, int wv, int64_t k, uint32_t ws, uint32_t ss,
                           int64_t row0, int64_t nrows, bool spec_too, bool *sliceable)
{
    int nspec = r->nspec, nbind = r->nbind;
    const struct value *w = &c->f->values[wv];
    bool vec = k % 4 == 0;
    *sliceable = false;
    if (w->kind != VAL_PARAM) {
        /* the unfused plan's dequantized float32 copy (the caller offsets
         * a row window through the base) */
        spec(r, 10, 0), spec(r, 11, 0), spec(r, 15, vec);
        bind_value(r, ws, vec ? LP_U32X4 : LP_U32, wv);
        bind_slot(r, ss, LP_U32, LP_NONE);
        if (!spec_too) r->nspec = nspec;
        return 0;
    }
    const struct param_ref *p0 = param_ref(c->m, w->parts[0]);
    if (!p0) return fail("%s: tensor %s is not among the module's parameters", w->name, w->parts[0]);
    if (!strcmp(w->scheme, "none")) {
        int code = dtype_code(p0->dtype);
        if (code < 0) return fail("%s: no Vulkan kernel reads %s weights", w->name, dtype_name(p0->dtype));
        spec(r, 10, 0), spec(r, 11, (uint32_t)code), spec(r, 15, vec);
        bind_tensor(r, ws, code == 0 ? (vec ? LP_U32X4 : LP_U32) : (vec ? LP_U16X4 : LP_U16), w->parts[0]);
        bind_slot(r, ss, LP_U32, LP_NONE);
        *sliceable = true;
        goto windows;
    }
    const struct quant_scheme *q = c->scheme;
    if (q->kind == QUANT_PER_TENSOR) {
        /* FP8 weight-and-activation layers: matmul only (lowering never
         * dequantizes them, and embeddings are not FP8) */
        if (strcmp(r->shader, "matmul"))
            return fail("%s: FP8 weights are read by the matmul kernel only, not by %s", w->name, r->shader);
        if (q->use_scale && !q->calibration_scale)
            return fail("%s: %s is a calibration build, which measures its activations on the CPU "
                        "(mlc-check --calibrate); its inference build (%s) runs on Vulkan",
                        w->name, q->name, "e4m3_e4m3_f16");
        if (k % 4)
            return fail("%s: FP8 rows of %lld bytes: the kernel reads them four bytes at a time", w->name, (long long)k);
        bool vec16 = k % 16 == 0;
        spec(r, 10, 3), spec(r, 11, q->storage_dtype == DT_F8_E4M3 ? 3 : 4), spec(r, 15, vec16);
        spec(r, 17, q->use_scale);
        bind_tensor(r, ws, vec16 ? LP_U32X4 : LP_U32, w->parts[0]);
        r->bind[r->nbind - 1].row0 = row0, r->bind[r->nbind - 1].nrows = nrows;
        /* the scales are one value for the whole tensor: bound whole */
        if (q->use_scale) bind_tensor(r, ss, LP_U32, w->parts[1]);
        else bind_slot(r, ss, LP_U32, LP_NONE);
        *sliceable = true;
        if (!spec_too) r->nspec = nspec;
        return 0;
    }
    if (q->kind != QUANT_GROUP || w->nparts < 2)
        return fail("%s: scheme %s has no Vulkan kernel (group-quantized, FP8 and unquantized schemes do)", w->name,
                    q->name);
    const struct param_ref *p1 = param_ref(c->m, w->parts[1]);
    int scode = p1 ? dtype_code(p1->dtype) : -1;
    if (scode < 0) return fail("%s: scales %s have a dtype no Vulkan kernel reads", w->name, w->parts[1]);
    if (q->words_per_group != 4) return fail("%s: scheme %s has %d words a group (kernels read 4)", w->name, q->name, q->words_per_group);
    bool kn = q->layout == QUANT_KN && (w->role == ROLE_LINEAR || w->role == ROLE_FINAL_FC);
    spec(r, 10, kn ? 2 : 1), spec(r, 12, (uint32_t)q->bits), spec(r, 13, (uint32_t)q->group_size);
    spec(r, 14, (uint32_t)scode);
    if (kn) spec(r, 16, (uint32_t)w->dims[0].size);
    bind_tensor(r, ws, kn ? LP_U32 : LP_U32X4, w->parts[0]);
    bind_tensor(r, ss, scode == 0 ? LP_U32 : LP_U16, w->parts[1]);
    *sliceable = !kn;
    if (kn) {
        /* transposed: a row window is a column range of every stored row,
         * which the kernel reaches through its base (see d_matmul) */
        if (!spec_too) r->nspec = nspec;
        return 0;
    }
windows:
    for (int i = nbind; i < r->nbind; i++)
        if (r->bind[i].source == LP_TENSOR) r->bind[i].row0 = row0, r->bind[i].nrows = nrows;
    if (!spec_too) r->nspec = nspec;
    return 0;
}

/* Columns one invocation of embed/dequantize covers. */
static int64_t block_of(const struct op_ctx *c, int wv, int64_t k)
{
    const struct value *w = &c->f->values[wv];
    if (w->kind == VAL_PARAM && strcmp(w->scheme, "none")) return c->scheme->group_size;
    return k % 4 == 0 ? 4 : 1;
}

static void slice_push(struct launch_req *r, bool sliceable, int wv, int64_t rows)
{
    if (sliceable) {
        r->slice_value = wv;
        push(r, "slice_start");
        push(r, "slice_rows");
    } else {
        push(r, "0");
        push(r, "%lld", (long long)rows);
    }
}

/* ---- the op families ---- */

static int d_embed(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    char rb[32];
    int64_t k = cols_of(c, o->in[1]), v = c->f->values[o->in[1]].dims[0].size;
    start(r, "embed", 64);
    spec(r, 3, (uint32_t)k);
    if (o->a.scale != 0) specf(r, 4, o->a.scale);
    bind_value(r, 0, LP_U32, o->in[0]);
    bool sliceable;
    if (describe_weight(c, r, o->in[1], k, 1, 2, 0, 0, true, &sliceable)) return -1;
    bind_value(r, 3, LP_STORAGE, o->out[0]);
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    push(r, "%s", rows), push(r, "base0"), push(r, "base3"), push(r, "base1"), push(r, "base2");
    slice_push(r, sliceable, o->in[1], v);
    int64_t nb = (k + block_of(c, o->in[1], k) - 1) / block_of(c, o->in[1], k);
    char gx[32];
    snprintf(gx, sizeof gx, "%lld", (long long)((nb + 63) / 64));
    groups(r, gx, rows, "1");
    *nout = 1;
    return 0;
}

static int d_dequantize(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    int64_t k = cols_of(c, o->in[0]), n = c->f->values[o->in[0]].dims[0].size;
    start(r, "dequantize", 64);
    spec(r, 3, (uint32_t)k);
    bool sliceable;
    if (describe_weight(c, r, o->in[0], k, 1, 2, 0, 0, true, &sliceable)) return -1;
    bind_value(r, 3, LP_STORAGE, o->out[0]);
    push(r, "base3"), push(r, "base1"), push(r, "base2");
    slice_push(r, sliceable, o->in[0], n);
    int64_t nb = (k + block_of(c, o->in[0], k) - 1) / block_of(c, o->in[0], k);
    char gx[32], gy[32];
    snprintf(gx, sizeof gx, "%lld", (long long)((nb + 63) / 64));
    snprintf(gy, sizeof gy, "%lld", (long long)n);
    groups(r, gx, sliceable ? "slice_rows" : gy, "1");
    *nout = 1;
    return 0;
}

/* Tiles of the matmul kernel: output columns per invocation (R, at most
 * 8) and tokens per pass (T, at most 4), by optimization level and
 * function. Measured on lavapipe (4096x4096 q4, CPU time a GEMV): R=2 5.3
 * ms, R=4 4.2 ms, R=8 3.4-3.9 ms; prefill of 64 tokens (2048x2048): R=8
 * T=1 50 ms, R=2 T=4 53 ms, R=4 T=4 31 ms. */
static void matmul_tiles(const struct op_ctx *c, bool epilogue, uint32_t *R, uint32_t *T)
{
    (void)epilogue;
    *R = 1, *T = 1;
    if (c->level < 2) return;
    if (c->decode) {
        *R = c->level >= 3 ? 8 : 4;
    } else {
        *R = c->level >= 3 ? 4 : 2;
        *T = c->level >= 3 ? 4 : 2;
    }
}

static int d_matmul(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    char rb[32];
    int64_t k = cols_of(c, o->in[0]), n = cols_of(c, o->out[0]);
    if (o->a.epilogue != EPI_NONE && o->a.epilogue != EPI_SILU_MUL && o->a.epilogue != EPI_GELU_MUL)
        return fail("matmul: epilogue %d has no Vulkan kernel", o->a.epilogue);
    bool epi = o->a.epilogue != EPI_NONE;
    int64_t wrows = c->f->values[o->in[1]].dims[0].size;
    if (wrows != (epi ? 2 * n : n)) return fail("matmul: weight rows %lld do not give %lld outputs", (long long)wrows, (long long)n);
    uint32_t R, T;
    matmul_tiles(c, epi, &R, &T);
    /* decode's few weight rows a workgroup: narrower workgroups share out
     * better among lavapipe's threads (a 2560-row weight at R=8 is 5
     * workgroups of 64, 10 of 32) */
    uint32_t wg = c->decode && c->level >= 3 ? 32 : 64;
    start(r, "matmul", wg);
    /* the kernel's epilogue codes are the module's: 1 SiLU, 2 GELU (tanh) */
    spec(r, 1, R), spec(r, 2, T), spec(r, 3, (uint32_t)k), spec(r, 5, (uint32_t)o->a.epilogue);
    spec(r, 7, k % 4 == 0);
    /* -O0 and -O1 dequantize weight by weight as the scheme's arithmetic
     * does (float16 rounding included); -O2 up take the faster road */
    spec(r, 8, c->level < 2);
    bind_value(r, 0, k % 4 == 0 ? LP_F32X4 : LP_F32, o->in[0]);
    bool sliceable, up_sliceable = true;
    /* with the SiLU epilogue the gate rows [0, n) and the up rows [n, 2n)
     * are bound apart (slots 1, 2 and 5, 6) */
    if (describe_weight(c, r, o->in[1], k, 1, 2, 0, epi ? n : 0, true, &sliceable)) return -1;
    if (epi && describe_weight(c, r, o->in[1], k, 5, 6, n, n, false, &up_sliceable)) return -1;
    int bias = o->nin > 2 ? o->in[2] : -1;
    if (bias >= 0) {
        const struct value *b = &c->f->values[bias];
        const struct param_ref *pb = param_ref(c->m, b->parts[0]);
        int code = pb ? dtype_code(pb->dtype) : -1;
        if (code < 0) return fail("%s: a bias dtype no Vulkan kernel reads", b->name);
        spec(r, 6, (uint32_t)code + 1);
        bind_tensor(r, 3, code == 0 ? LP_U32 : LP_U16, b->parts[0]);
    } else {
        bind_slot(r, 3, LP_U32, LP_NONE);
    }
    bind_value(r, 4, LP_STORAGE, o->out[0]);
    /* FP8 with scales: the activation scale calibration measured */
    const struct value *wval = &c->f->values[o->in[1]];
    bool ascale = wval->kind == VAL_PARAM && strcmp(wval->scheme, "none") && c->scheme->kind == QUANT_PER_TENSOR &&
                  c->scheme->calibration_scale && wval->nparts > 2;
    if (ascale) bind_tensor(r, 7, LP_U32, wval->parts[2]);
    else bind_slot(r, 7, LP_U32, LP_NONE);
    sliceable = sliceable && up_sliceable;
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    push(r, "%s", rows), push(r, "base0"), push(r, "base4"), push(r, "base3"), push(r, "base1"), push(r, "base2");
    slice_push(r, sliceable, o->in[1], n);
    if (!epi) {
        push(r, "0"), push(r, "0");
    } else if (c->f->values[o->in[1]].kind == VAL_PARAM && sliceable) {
        push(r, "base5"), push(r, "base6");
    } else if (c->f->values[o->in[1]].kind == VAL_PARAM) {
        /* transposed (KN): the up half is the stored columns n .. 2n */
        push(r, "base5+%lld", (long long)n), push(r, "base6+%lld", (long long)n);
    } else {
        /* a float32 weight in the arena: the up half starts n rows on */
        push(r, "base5+%lld", (long long)(k % 4 == 0 ? n * k / 4 : n * k)), push(r, "0");
    }
    push(r, "%lld", (long long)n);
    push(r, ascale ? "base7" : "0");
    char gx[64];
    uint32_t per = wg * R;
    if (sliceable) snprintf(gx, sizeof gx, "(slice_rows+%u)/%u", per - 1, per);
    else snprintf(gx, sizeof gx, "%lld", (long long)((n + per - 1) / per));
    groups(r, gx, "1", "1");
    *nout = 1;
    return 0;
}

static int norm_weight_dtype(const struct op_ctx *c, int wv, enum lp_view *view, uint32_t *code)
{
    const struct value *w = &c->f->values[wv];
    const struct param_ref *p = param_ref(c->m, w->parts[0]);
    int d = p ? dtype_code(p->dtype) : -1;
    if (d < 0) return fail("%s: a norm weight dtype no Vulkan kernel reads", w->name);
    *code = (uint32_t)d;
    *view = d == 0 ? LP_U32 : LP_U16;
    return 0;
}

static int d_rms_norm(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    bool add = o->kind == OP_ADD_RMS_NORM;
    int wv = o->in[add ? 2 : 1];
    char rb[32];
    enum lp_view wview;
    uint32_t wdt;
    if (norm_weight_dtype(c, wv, &wview, &wdt)) return -1;
    start(r, "rms_norm", 64);
    spec(r, 1, (uint32_t)cols_of(c, o->in[0])), specf(r, 2, o->a.eps), spec(r, 3, add), spec(r, 4, wdt);
    if (o->a.weight_offset != 0) specf(r, 5, o->a.weight_offset);
    bind_value(r, 0, LP_F32, o->in[0]);
    if (add) bind_value(r, 1, LP_F32, o->in[1]);
    else bind_slot(r, 1, LP_F32, LP_NONE);
    bind_tensor(r, 2, wview, c->f->values[wv].parts[0]);
    if (add) bind_value(r, 3, LP_STORAGE, o->out[0]);
    else bind_slot(r, 3, LP_STORAGE, LP_NONE);
    bind_value(r, 4, LP_STORAGE, o->out[add ? 1 : 0]);
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    push(r, "%s", rows), push(r, "base0"), push(r, "%s", add ? "base1" : "0"), push(r, "%s", add ? "base3" : "0");
    push(r, "base4");
    groups(r, rows, "1", "1");
    *nout = 1;
    return 0;
}

static int d_head_norm(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    enum lp_view wview;
    uint32_t wdt;
    char rb[32], gx[32];
    if (norm_weight_dtype(c, o->in[1], &wview, &wdt)) return -1;
    const struct model_dims *d = &c->m->dims;
    start(r, "head_norm", 64);
    spec(r, 1, (uint32_t)o->a.head_dim), specf(r, 2, o->a.eps), spec(r, 3, (uint32_t)d->num_attention_heads);
    spec(r, 4, (uint32_t)d->num_key_value_heads), spec(r, 5, wdt);
    if (o->a.weight_offset != 0) specf(r, 6, o->a.weight_offset);
    bind_value(r, 0, LP_F32, o->in[0]);
    bind_tensor(r, 1, wview, c->f->values[o->in[1]].parts[0]);
    bind_tensor(r, 2, wview, c->f->values[o->in[2]].parts[0]);
    bind_value(r, 3, LP_STORAGE, o->out[0]);
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    push(r, "%s", rows), push(r, "base0"), push(r, "base3");
    snprintf(gx, sizeof gx, "%d", d->num_attention_heads + 2 * d->num_key_value_heads);
    groups(r, gx, rows, "1");
    *nout = 1;
    return 0;
}

static const struct op *kv_create_op(const struct module *m)
{
    const struct function *f = module_function(m, "create_kv_cache");
    return f && f->nops == 1 && f->ops[0].kind == OP_KV_CREATE ? &f->ops[0] : NULL;
}

/* Rotary embedding; with `append` (the kv_append op reading its output)
 * the keys and values go to the cache in the same launch. */
static int describe_rope(const struct op_ctx *c, const struct op *append, struct launch_req *out, int *nout)
{
    const struct op *o = c->op, *kv = kv_create_op(c->m);
    struct launch_req *r = out;
    const struct op_attrs *a = &o->a;
    char rb[32], gx[32];
    if (append && !kv) return fail("the module has no create_kv_cache function");
    int64_t d = c->m->dims.head_dim;
    if (a->head_dim != d) return fail("rope: head_dim %d differs from the model's %lld", a->head_dim, (long long)d);
    if (a->rotary_dim < 0 || a->rotary_dim > a->head_dim || a->rotary_dim % 2)
        return fail("rope: rotary_dim %d is not an even number up to head_dim %d", a->rotary_dim, a->head_dim);
    int table = lp_rope_table_of(c->m, a);
    if (table < 0) return -1;
    start(r, "rope", 64);
    spec(r, 1, (uint32_t)a->head_dim), spec(r, 2, (uint32_t)a->n_heads), spec(r, 3, (uint32_t)a->n_kv_heads);
    if (append) spec(r, 4, 1), spec(r, 5, (uint32_t)kv->a.capacity);
    if (a->rotary_dim != 0 && a->rotary_dim != a->head_dim) spec(r, 6, (uint32_t)a->rotary_dim);
    bind_value(r, 0, LP_F32, o->in[0]);
    bind_slot(r, 1, LP_F32, LP_STEP);
    bind_value(r, 2, LP_STORAGE, o->out[0]);
    if (append) {
        bind_slot(r, 3, LP_U32, LP_STEP);
        bind_slot(r, 4, LP_STORAGE, LP_KV)->layer = append->a.layer;
    }
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    push(r, "%s", rows), push(r, "base0"), push(r, "base2"), push(r, "%lld", (long long)LP_STEP_ROPE(c->row_bound, d, table));
    push(r, "%lld", (long long)LP_STEP_SEQ(c->row_bound)), push(r, "%lld", (long long)LP_STEP_SLOT(c->row_bound));
    push(r, "kv_dtype");
    snprintf(gx, sizeof gx, "%d", ((a->n_heads + 2 * a->n_kv_heads) * (a->head_dim / 2) + 63) / 64);
    groups(r, gx, rows, "1");
    *nout = 1;
    return 0;
}

static int d_rope(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    return describe_rope(c, NULL, out, nout);
}

static int f_rope_kv_append(const struct op_ctx *c, const struct op *next, struct launch_req *out, int *nout)
{
    *nout = 0;
    if (next->in[0] != c->op->out[0] || next->a.n_kv_heads != c->op->a.n_kv_heads ||
        next->a.head_dim != c->op->a.head_dim || next->a.n_heads != c->op->a.n_heads)
        return 0;
    return describe_rope(c, next, out, nout);
}

static int d_kv_append(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op, *kv = kv_create_op(c->m);
    struct launch_req *r = out;
    const struct op_attrs *a = &o->a;
    char rb[32], gx[32];
    if (!kv) return fail("the module has no create_kv_cache function");
    start(r, "kv_append", 64);
    spec(r, 1, (uint32_t)a->head_dim), spec(r, 2, (uint32_t)a->n_heads), spec(r, 3, (uint32_t)a->n_kv_heads);
    spec(r, 4, (uint32_t)kv->a.capacity);
    bind_value(r, 0, LP_F32, o->in[0]);
    bind_slot(r, 1, LP_U32, LP_STEP);
    bind_slot(r, 2, LP_STORAGE, LP_KV)->layer = a->layer;
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    push(r, "%s", rows), push(r, "base0"), push(r, "%lld", (long long)LP_STEP_SEQ(c->row_bound));
    push(r, "%lld", (long long)LP_STEP_SLOT(c->row_bound)), push(r, "kv_dtype");
    snprintf(gx, sizeof gx, "%d", (a->n_kv_heads * a->head_dim + 63) / 64);
    groups(r, gx, rows, "1");
    *nout = 1;
    return 0;
}

static int d_attention(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op, *kv = kv_create_op(c->m);
    struct launch_req *r = out;
    const struct op_attrs *a = &o->a;
    char rb[32], gx[32];
    if (!kv) return fail("the module has no create_kv_cache function");
    bool vec = a->head_dim % 4 == 0;
    int texels = vec ? a->head_dim / 4 : a->head_dim;
    if (texels > 64) return fail("attention: head_dim %d is larger than the kernel's %d", a->head_dim, vec ? 256 : 64);
    uint32_t wg = 64;
    while ((int)wg < texels) wg *= 2;
    start(r, "attention", wg);
    spec(r, 1, (uint32_t)a->head_dim), spec(r, 2, (uint32_t)a->n_heads), spec(r, 3, (uint32_t)a->n_kv_heads);
    spec(r, 4, (uint32_t)kv->a.capacity), spec(r, 5, (uint32_t)a->sliding_window), spec(r, 6, (uint32_t)a->attention_sink);
    spec(r, 7, vec);
    if (a->attn_scale != 0) specf(r, 11, a->attn_scale);
    if (a->softcap != 0) specf(r, 12, a->softcap);
    if (a->local_window < 0) return fail("attention: local_window %d", a->local_window);
    if (a->local_window) spec(r, 13, (uint32_t)a->local_window);
    /* at -O2 and up a decode workgroup takes up to 4 heads in turn:
     * per-workgroup costs dominate short contexts on lavapipe, and 4 leaves
     * enough workgroups to share among its threads */
    uint32_t hpw = 1, rpw = 1, lane_rows = 0;
    if (c->level >= 2) {
        for (uint32_t k = 4; k >= 1; k--)
            if (a->n_heads % (int)k == 0) {
                hpw = k;
                break;
            }
        /* prefill: an invocation a query row (rows of one sequence share
         * the keys they read) */
        lane_rows = !c->decode;
    }
    if (lane_rows) hpw = 1, rpw = wg;
    spec(r, 8, hpw), spec(r, 9, rpw), spec(r, 10, lane_rows);
    bind_value(r, 0, vec ? LP_F32X4 : LP_F32, o->in[0]);
    bind_slot(r, 1, LP_U32, LP_STEP);
    bind_slot(r, 2, vec ? LP_F32X4 : LP_F32, LP_KV)->layer = a->layer;
    bind_value(r, 3, LP_STORAGE, o->out[0]);
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    push(r, "%s", rows), push(r, "base0"), push(r, "base3"), push(r, "%lld", (long long)LP_STEP_SEQ(c->row_bound));
    push(r, "%lld", (long long)LP_STEP_POS(c->row_bound)), push(r, "base2");
    snprintf(gx, sizeof gx, "%u", (uint32_t)a->n_heads / hpw);
    char gy[64];
    if (rpw > 1) snprintf(gy, sizeof gy, "(%s+%u)/%u", rows, rpw - 1, rpw);
    else snprintf(gy, sizeof gy, "%s", rows);
    groups(r, gx, gy, "1");
    *nout = 1;
    return 0;
}

static int d_silu_mul(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    char rb[32], gx[32];
    int64_t i = cols_of(c, o->out[0]);
    start(r, "silu_mul", 64);
    spec(r, 1, (uint32_t)i);
    if (o->kind == OP_GELU_MUL) spec(r, 2, 1);
    bind_value(r, 0, LP_F32, o->in[0]);
    bind_value(r, 1, LP_STORAGE, o->out[0]);
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    push(r, "%s", rows), push(r, "base0"), push(r, "base1");
    snprintf(gx, sizeof gx, "%lld", (long long)((i + 63) / 64));
    groups(r, gx, rows, "1");
    *nout = 1;
    return 0;
}

static int d_add(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    char rb[32], count[64], gy[96];
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    snprintf(count, sizeof count, "%s*%lld", rows, (long long)cols_of(c, o->in[0]));
    start(r, "add", 64);
    bind_value(r, 0, LP_F32, o->in[0]);
    bind_value(r, 1, LP_F32, o->in[1]);
    bind_value(r, 2, LP_STORAGE, o->out[0]);
    push(r, "%s", count), push(r, "base0"), push(r, "base1"), push(r, "base2");
    /* 1024 workgroups of 64 a row of the grid, as many rows as needed */
    snprintf(gy, sizeof gy, "(%s+65535)/65536", count);
    groups(r, "1024", gy, "1");
    *nout = 1;
    return 0;
}

static int d_softcap(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    char rb[32], count[64], gy[96];
    if (o->a.softcap == 0) return fail("softcap: the cap is 0");
    const char *rows = rows_of(c, o->in[0], rb, sizeof rb);
    snprintf(count, sizeof count, "%s*%lld", rows, (long long)cols_of(c, o->in[0]));
    start(r, "softcap", 64);
    specf(r, 1, o->a.softcap);
    bind_value(r, 0, LP_F32, o->in[0]);
    bind_value(r, 1, LP_STORAGE, o->out[0]);
    push(r, "%s", count), push(r, "base0"), push(r, "base1");
    snprintf(gy, sizeof gy, "(%s+65535)/65536", count);
    groups(r, "1024", gy, "1");
    *nout = 1;
    return 0;
}

static int d_concat(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    char rb[32], gx[32];
    if (o->nin < 2 || o->nin > 6) return fail("concat: %d inputs (the kernel takes 2 to 6)", o->nin);
    start(r, "concat", 64);
    for (int k = 0; k < o->nin; k++) {
        spec(r, (uint32_t)k + 1, (uint32_t)cols_of(c, o->in[k]));
        bind_value(r, (uint32_t)k, LP_F32, o->in[k]);
    }
    bind_value(r, 6, LP_STORAGE, o->out[0]);
    push(r, "%s", rows_of(c, o->out[0], rb, sizeof rb));
    for (int k = 0; k < 6; k++) push(r, k < o->nin ? "base%d" : "0", k);
    push(r, "base6");
    snprintf(gx, sizeof gx, "%lld", (long long)((cols_of(c, o->out[0]) + 63) / 64));
    groups(r, gx, rows_of(c, o->out[0], rb, sizeof rb), "1");
    *nout = 1;
    return 0;
}

static int d_take_last(const struct op_ctx *c, struct launch_req *out, int *nout)
{
    const struct op *o = c->op;
    struct launch_req *r = out;
    char rb[32], gx[32];
    int64_t h = cols_of(c, o->in[0]);
    start(r, "take_last", 64);
    spec(r, 1, (uint32_t)h);
    bind_value(r, 0, LP_F32, o->in[0]);
    bind_value(r, 1, LP_STORAGE, o->out[0]);
    push(r, "%s", rows_of(c, o->in[0], rb, sizeof rb)), push(r, "base0"), push(r, "base1");
    snprintf(gx, sizeof gx, "%lld", (long long)((h + 63) / 64));
    groups(r, gx, "1", "1");
    *nout = 1;
    return 0;
}

/* New op families (and the shaders carrying them) join here. */
static const struct op_kernel table[] = {
    {OP_EMBED, "embed", d_embed},
    {OP_RMS_NORM, "rms_norm", d_rms_norm},
    {OP_ADD, "add", d_add},
    {OP_ADD_RMS_NORM, "rms_norm", d_rms_norm},
    {OP_DEQUANTIZE, "dequantize", d_dequantize},
    {OP_MATMUL, "matmul", d_matmul},
    {OP_SILU_MUL, "silu_mul", d_silu_mul},
    {OP_GELU_MUL, "silu_mul", d_silu_mul},
    {OP_SOFTCAP, "softcap", d_softcap},
    {OP_HEAD_NORM, "head_norm", d_head_norm},
    {OP_ROPE, "rope", d_rope},
    {OP_KV_APPEND, "kv_append", d_kv_append},
    {OP_ATTENTION, "attention", d_attention},
    {OP_TAKE_LAST, "take_last", d_take_last},
    {OP_CONCAT, "concat", d_concat},
    {OP_KV_CREATE, NULL, NULL},
};

const struct op_kernel *op_kernel_for(enum op_kind kind)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].kind == kind) return &table[i];
    return NULL;
}

/* Fewer dispatches: lavapipe pays tens of microseconds a dispatch on an
 * idle machine, and a scheduling delay each on a busy one. */
static const struct op_fusion fusions[] = {
    {OP_ROPE, OP_KV_APPEND, 2, f_rope_kv_append},
};

const struct op_fusion *op_fusion_for(enum op_kind first, enum op_kind second)
{
    for (size_t i = 0; i < sizeof fusions / sizeof fusions[0]; i++)
        if (fusions[i].first == first && fusions[i].second == second) return &fusions[i];
    return NULL;
}
