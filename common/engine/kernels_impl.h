/* Helpers the kernel sets share (kernels_*.c only). */
#ifndef MLC_KERNELS_IMPL_H
#define MLC_KERNELS_IMPL_H

#include <stdint.h>
#include <string.h>

#include "common/engine/kernels.h"

static inline size_t kern_round64(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

static inline float kern_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* float16 → float32 without a branch for subnormals: the exponent and
 * mantissa moved into place and rescaled by 2^112 (exact), inf and NaN
 * rebuilt. */
static inline float kern_f16(uint16_t h)
{
    uint32_t em = h & 0x7fffu;
    float f = kern_bits_f32(em << 13) * 0x1p112f;
    if (em >= 0x7c00u) f = kern_bits_f32((em << 13) | 0x7f800000u);
    return (h & 0x8000u) ? -f : f;
}

static inline float kern_bf16(uint16_t b)
{
    return kern_bits_f32((uint32_t)b << 16);
}

/* Groups along K of a group-quantized matrix, without a division for the
 * common group sizes (row kernels ask for every row) */
static inline int64_t kern_groups(const struct kmat *w)
{
    int gs = w->scheme->group_size;
    return gs == 32 ? (w->cols + 31) >> 5 : (w->cols + gs - 1) / gs;
}

/* Group scale i, stored as float16, bfloat16 or float32. */
static inline float kern_load_scale(enum dtype t, const void *scales, int64_t i)
{
    if (t == DT_F16) return kern_f16(((const uint16_t *)scales)[i]);
    if (t == DT_BF16) return kern_bf16(((const uint16_t *)scales)[i]);
    return ((const float *)scales)[i];
}

/* FP8 as float16 bits: e5m2 is the top byte of a float16; e4m3's magnitude
 * shifted into a float16's exponent and mantissa is its value / 256 (for
 * subnormals too). e4m3's NaN code reads as 480: weights hold none. */
static inline uint16_t kern_fp8_f16_bits(enum kfmt f, uint8_t b)
{
    if (f == KF_E5M2) return (uint16_t)(b << 8);
    return (uint16_t)(((b & 0x80u) << 8) | ((b & 0x7fu) << 7));
}

/* What the sum of FP8 values times activations is multiplied by: the
 * tensor's scale rounded to float16 as the reference rounds it (or, with
 * FP8 activations, the activation scale times the tensor's scale in float32,
 * as MLC's FP8 matmul multiplies), and the 256 e4m3's float16 reading
 * leaves out. */
static inline float kern_fp8_scale(const struct kmat *w)
{
    float s = w->act_scale > 0                      ? w->act_scale * w->scale
              : w->scheme && w->scheme->use_scale ? quant_round(DT_F16, w->scale)
                                                  : 1.0f;
    return w->fmt == KF_E4M3 ? s * 256.0f : s;
}

/* A calibration build's FP8 weights: dequantized to float16 as MLC's
 * calibration mode does, f16(value · f16(scale)), every weight rounded
 * (fake-quantized activations turn any difference into another FP8 step,
 * so the fast sets round exactly as the reference does). */
static inline bool kern_fp8_rounds(const struct kmat *w)
{
    return (w->fmt == KF_E4M3 || w->fmt == KF_E5M2) && !(w->act_scale > 0) && w->scheme && w->scheme->use_scale;
}

#endif
