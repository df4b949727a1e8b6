/* Specializing a kernel for a model: its specialization constants set to
 * the model's values and frozen into ordinary constants, then SPIRV-Tools'
 * performance passes, which can now fold the sizes, unroll loops of known
 * trip count and drop the branches a model never takes.
 *
 * SPIRV-Tools 2023.1 (Debian 12) has its optimizer in C++ only
 * (spvtools::Optimizer; the C API has the validator): specialize.cpp is the
 * small C++ part of the project, and this is its C interface. */
#ifndef MLC_SPECIALIZE_H
#define MLC_SPECIALIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct spec_value {
    uint32_t id;
    uint32_t bits;        /* the value: an unsigned integer, or a float's bits */
    bool is_float;
};

/* The specialized copy of in[0..n) into *out (malloc'ed, *nout words).
 * With optimize false the constants are frozen and nothing else changes.
 * -1 with the optimizer's first error in err (NUL-terminated). */
int spirv_specialize(const uint32_t *in, size_t n, const struct spec_value *v, int nv, bool optimize,
                     uint32_t **out, size_t *nout, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
