/* The Vulkan back end of the compiler (mlc-emit --target vulkan): every op
 * of every entry function becomes one or more launches of a shipped kernel
 * (shaders/), and every distinct (kernel, specialization) becomes one
 * SPIR-V blob: specialized for the model, optimized, validated and
 * reflected. The result is a launch plan (formats/launch_plan.h) whose
 * kernels hold their words, ready for library_write_vulkan().
 *
 * Optimization levels:
 *   -O0  the shipped kernels as they are; the engine gives the
 *        specialization constants when it creates the pipelines
 *   -O1  constants frozen into each blob, SPIRV-Tools' performance passes
 *   -O2  and the fast kernel variants: quantized weights multiplied without
 *        rounding each to float16 (float16 schemes' logits then differ from
 *        the CPU's by up to about 1e-3 relative), tiled for throughput
 *        (several output columns per invocation in decode, several tokens
 *        per pass in prefill)
 *   -O3  and wider tiles */
#ifndef MLC_EMIT_H
#define MLC_EMIT_H

#include "formats/launch_plan.h"
#include "formats/module.h"

#define EMIT_DEFAULT_LEVEL 2

/* -1 with a message naming the function and op that has no kernel. */
int emit_vulkan(const struct module *m, int level, struct launch_plan *out);

#endif
