/* mlc-lower's passes, in their fixed order. Each has a name (for
 * --pass-off and `pass` records) and the lowest -O level that runs it:
 *
 *   fuse-dequantize-matmul  O1  matmul reads the (quantized) weight itself
 *                               instead of a dequantized float32 copy
 *   fuse-add-norm           O2  residual add + RMS norm in one op
 *   fuse-gate-up            O2  SiLU or GELU gating as the up-projection's epilogue
 *   dead-code-elimination   O0  drop ops whose results nothing uses
 *   plan-memory             O0  liveness-based offsets in one arena
 */
#ifndef MLC_PASSES_H
#define MLC_PASSES_H

#include "formats/module.h"

struct pass {
    const char *name;
    int min_level;
    const char *summary;
    int (*run)(struct module *m);
};

const struct pass *pass_list(int *count);
const struct pass *pass_find(const char *name);

/* Run every pass enabled at `level` and not named in `off`, in order;
 * `after` (optional) sees the module after each pass. Records the names in
 * m->passes and refreshes m->mem. */
int passes_run(struct module *m, int level, const char *const *off, int noff,
               void (*after)(const struct module *m, const char *pass, void *ctx), void *ctx);

/* Individually, for tests. */
int pass_fuse_dequantize_matmul(struct module *m);
int pass_fuse_add_norm(struct module *m);
int pass_fuse_gate_up(struct module *m);
int pass_dead_code_elimination(struct module *m);
int pass_plan_memory(struct module *m);

#endif
