/* Element types by their MLC/TVM names, and the float conversions every
 * stage shares. The scalar conversions here are the reference: faster
 * (SIMD) versions elsewhere are tested against them. */
#ifndef MLC_DTYPE_H
#define MLC_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dtype {
    DT_INVALID = 0,
    DT_F32,
    DT_F16,
    DT_BF16,
    DT_F64,
    DT_U32,
    DT_I32,
    DT_I64,
    DT_U8,
    DT_I8,
    DT_I16,
    DT_BOOL,
    DT_F8_E4M3,
    DT_F8_E5M2,
};

/* "float32", "float16", "bfloat16", "uint32", "int8", "float8_e4m3fn", ... */
const char *dtype_name(enum dtype t);
enum dtype dtype_from_name(const char *name);
size_t dtype_size(enum dtype t);

/* IEEE binary16, round to nearest even; overflow → ±inf; NaN stays NaN. */
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);

/* bfloat16 with round to nearest even, NaN → the canonical quiet NaN
 * (ml_dtypes/Eigen casting, used when a model is cast to bfloat16). */
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t b);
/* MLC's "f32-to-bf16" storage encoding of float32 tensors (tvmjs): round to
 * nearest even below the largest finite bf16 magnitude, plain truncation
 * above it (so inf stays inf and huge values clip). */
uint16_t f32_to_bf16_storage(float f);

static inline uint32_t f32_bits(float f)
{
    union { float f; uint32_t u; } v = {.f = f};
    return v.u;
}
static inline float f32_from_bits(uint32_t u)
{
    union { uint32_t u; float f; } v = {.u = u};
    return v.f;
}

#endif
