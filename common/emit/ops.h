/* The op -> kernel table of the Vulkan back end (private to emit.c and
 * ops.c). Each op family is one shipped kernel and one entry in ops.c's
 * table: a function that describes the launch of an op (specialization
 * constants, bindings, push constants, workgroup counts). emit.c turns the
 * descriptions into launches and specialized blobs. */
#ifndef MLC_EMIT_OPS_H
#define MLC_EMIT_OPS_H

#include <stdbool.h>

#include "common/emit/specialize.h"
#include "formats/launch_plan.h"
#include "formats/module.h"
#include "formats/quant.h"

/* A launch before its kernel exists. Strings are owned (freed by emit.c). */
struct launch_req {
    const char *shader;
    int nspec;
    struct spec_value spec[LP_MAX_SPEC];
    int nbind;
    struct lp_binding bind[LP_MAX_BINDINGS];
    int npush;
    char *push[LP_MAX_PUSH];
    char *groups[3];
    int slice_value;
};

/* What an op's describer knows. */
struct op_ctx {
    const struct module *m;
    const struct quant_scheme *scheme;
    const struct function *f;
    const struct op *op;
    int level;
    const char *rows;          /* the function's row variable */
    int64_t row_bound;         /* its bound */
    bool decode;               /* the decode function (batched single tokens) */
};

typedef int (*op_describe_fn)(const struct op_ctx *c, struct launch_req *out, int *nout);

struct op_kernel {
    enum op_kind kind;
    const char *shader;        /* shaders/NAME.comp */
    op_describe_fn describe;   /* up to 2 launches; NULL: no launch (kv_create) */
};

const struct op_kernel *op_kernel_for(enum op_kind kind);

/* Fusions: an op and the op after it carried out by one launch, from
 * -O min_level on. The describer leaves *nout 0 when the pair does not
 * qualify (the second op does not read what the first wrote). */
typedef int (*fusion_describe_fn)(const struct op_ctx *c, const struct op *next, struct launch_req *out, int *nout);

struct op_fusion {
    enum op_kind first, second;
    int min_level;
    fusion_describe_fn describe;
};

const struct op_fusion *op_fusion_for(enum op_kind first, enum op_kind second);

#endif
