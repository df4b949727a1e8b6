/* The Vulkan plan of a model library (launches.msgpack beside plan.msgpack
 * in NAME-vulkan.tar, written by mlc-emit --target vulkan): the specialized
 * kernels, and for each entry function the ordered kernel launches that
 * carry out its ops.
 *
 * A launch names its kernel, the op of the module's function it belongs to
 * (or the run of consecutive ops a fused kernel carries out),
 * what each descriptor binding sees (an activation of the function, a
 * tensor of the weights, a layer of the KV cache, the per-call step data)
 * and through which view, its push constants and workgroup counts as
 * expressions of the function's symbolic row count, and whether it must
 * wait for the launches before it. The engine builds descriptor sets from
 * the bindings once, and evaluates the expressions at every call.
 *
 * Expressions are integer arithmetic: decimal constants, + - * / % (floor
 * division) and parentheses over the variables
 *   seq_len | batch      the function's row count (as the module names it)
 *   baseN                element offset, in binding N's view, of what it sees
 *                        (views start at aligned offsets: the rest is here)
 *   slice_start          first row of a weight slice (see slice_value),
 *   slice_rows           and its row count: a launch whose weight is too big
 *                        for one binding runs once per slice (a binding of
 *                        a row window of the weight sees that window's
 *                        slice).
 *   kv_dtype             how the KV cache rounds what it keeps: 0 float32,
 *                        1 float16, 2 bfloat16 (the engine's choice, the
 *                        same as its CPU executor's)
 *
 * Reading validates everything (indices, names, expressions); kernels'
 * SPIR-V is checked against what the launches bind by
 * launch_plan_check_kernels. */
#ifndef MLC_LAUNCH_PLAN_H
#define MLC_LAUNCH_PLAN_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/module.h"
#include "formats/spirv.h"

/* The step data of one call of a function whose row bound is B, written
 * by the engine before each call (32-bit words; kernels get these offsets
 * as push constants):
 *   [0, B)          the sequence (its KV cache index) of each row
 *   [B, 2B)         the position of each row in its sequence
 *   [2B, 3B)        the KV cache slot of that position
 *   [3B, 3B + B·D)  cos and sin of each row's rotary angles as float32 bits:
 *                   row r, pair i (i < D/2) at 3B + 2·(r·D/2 + i) */
#define LP_STEP_SEQ(B) 0
#define LP_STEP_POS(B) (B)
#define LP_STEP_SLOT(B) (2 * (B))
#define LP_STEP_ROPE(B) (3 * (B))
#define LP_STEP_WORDS(B, D) (3 * (B) + (B) * (D))

#define LAUNCH_PLAN_VERSION 1
#define LP_MAX_BINDINGS 16
#define LP_MAX_PUSH 32          /* 128 bytes: the smallest maxPushConstantsSize */
#define LP_MAX_SPEC 48

/* How a binding sees its buffer: a storage buffer of 32-bit words, or a
 * uniform texel buffer of a format. Kernels decode stored numbers
 * themselves (float16 and bfloat16 arrive as u16 bits, float32 weights as
 * u32 bits); activations are float32 (f32 views). */
enum lp_view {
    LP_STORAGE,
    LP_F32, LP_F32X4,          /* R32_SFLOAT, R32G32B32A32_SFLOAT */
    LP_U16, LP_U16X4,          /* R16_UINT, R16G16B16A16_UINT */
    LP_U32, LP_U32X4,          /* R32_UINT, R32G32B32A32_UINT */
    LP_VIEW_COUNT
};

enum lp_source {
    LP_VALUE,                  /* an activation of the function (arena slot) */
    LP_TENSOR,                 /* a tensor of the weights */
    LP_KV,                     /* one layer of the KV cache */
    LP_STEP,                   /* the per-call step data (see shaders/README) */
    LP_NONE,                   /* nothing: a slot the kernel declares but this launch never reads */
};

struct lp_binding {
    uint32_t slot;
    enum lp_view view;
    enum lp_source source;
    int value;                 /* LP_VALUE: value index in the function */
    char *tensor;              /* LP_TENSOR: tensor-cache name */
    int64_t row0, nrows;       /* LP_TENSOR: only these rows (of its parameter's
                                  logical rows); nrows 0: all of it */
    int layer;                 /* LP_KV */
};

/* A compiled expression: reverse Polish notation. */
enum lp_tok { LPT_CONST, LPT_VAR, LPT_ADD, LPT_SUB, LPT_MUL, LPT_DIV, LPT_MOD };
enum lp_var { LPV_ROWS, LPV_SLICE_START, LPV_SLICE_ROWS, LPV_KV_DTYPE, LPV_BASE0 /* + N */ };
struct lp_expr {
    char *text;
    int n;
    struct { enum lp_tok tok; int64_t v; } *items;
};

struct lp_launch {
    int kernel;
    int op;                    /* index of the op in the function's ops */
    int nops;                  /* ops it carries out: op .. op + nops - 1 (fused) */
    int nbind;
    struct lp_binding *bind;
    int npush;
    struct lp_expr *push;      /* one 32-bit word each */
    struct lp_expr groups[3];
    bool barrier;              /* wait for every earlier launch's writes */
    int slice_value;           /* a parameter value whose tensors may be bound in row slices, or -1 */
};

struct lp_function {
    char *name;
    int nlaunches;
    struct lp_launch *launches;
};

struct lp_kernel {
    char *name;                /* unique; the blob is kernels/NAME.spv */
    char *shader;              /* the shipped kernel it was specialized from */
    char *sha256;              /* of the blob */
    int nspec;                 /* values still to give at pipeline creation */
    uint32_t spec_id[LP_MAX_SPEC], spec_bits[LP_MAX_SPEC];
    uint32_t *words;           /* the SPIR-V (library_read fills it) */
    size_t nwords;
    struct spirv_info info;    /* reflected by launch_plan_check_kernels */
};

struct launch_plan {
    int version;
    int nkernels;
    struct lp_kernel *kernels;
    int nfns;
    struct lp_function *fns;
};

const char *lp_view_name(enum lp_view v);
/* Bytes of one element of a view (a texel, or a 32-bit word). */
uint32_t lp_view_bytes(enum lp_view v);
const char *lp_source_name(enum lp_source s);

/* Expressions. `rows` is the function's row variable ("seq_len", "batch").
 * Compile: -1 with a message naming `what`. */
int lp_expr_compile(struct lp_expr *e, const char *text, const char *rows, const char *what);
/* vars[LPV_ROWS], [LPV_SLICE_START], [LPV_SLICE_ROWS], [LPV_KV_DTYPE], [LPV_BASE0 + slot];
 * -1 on overflow, division by zero or a result outside 0..UINT32_MAX. */
int lp_expr_eval(const struct lp_expr *e, const int64_t *vars, int nvars, int64_t *out);
#define LP_NVARS (LPV_BASE0 + LP_MAX_BINDINGS)

const struct lp_function *launch_plan_function(const struct launch_plan *p, const char *name);
void launch_plan_free(struct launch_plan *p);

/* The fields of launches.msgpack, a record of type "launches" (so that
 * mlc-dump prints it); the kernels' blobs travel separately. */
struct rec_builder;
void launch_plan_pack_fields(struct rec_builder *b, const struct launch_plan *p);
/* Parse and validate against the module: function names, op and value
 * indices, tensors among the parameters' tensors, layers in range,
 * expressions. -1 with a message naming `what`. */
int launch_plan_from_msgpack(const msgpack_object *o, const struct module *m, struct launch_plan *p,
                             const char *what);
/* Every kernel has its blob: sha256 as recorded, valid SPIR-V, and bindings
 * and push constants that match every launch using it. */
int launch_plan_check_kernels(struct launch_plan *p, const char *what);

#endif
