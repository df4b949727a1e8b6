/* Reference float32 kernels of the CPU executor, one row at a time. Plain
 * C in the order the maths goes; each result element is computed the same
 * way whatever the batch or thread count, so batched and one-by-one runs
 * give identical numbers. */
#ifndef MLC_CPU_KERNELS_H
#define MLC_CPU_KERNELS_H

#include <stdint.h>

#include "formats/module.h"

/* Σ a[i]·b[i], accumulated in eight interleaved float lanes (a fixed order
 * the compiler can vectorise). */
float k_dot(const float *a, const float *b, int64_t n);
void k_rms_norm(const float *x, const float *w, int64_t n, double eps, float *y);
void k_add(const float *a, const float *b, int64_t n, float *out);
float k_silu(float x);
/* out[i] = silu(gate[i]) · up[i], gate = gu[0..n), up = gu[n..2n) */
void k_silu_mul(const float *gu, int64_t n, float *out);

/* Rotary embedding frequencies θ^(-2i/d) for i < d/2, with Llama-3 scaling
 * when asked (transformers' "llama3" rope type). */
void k_rope_frequencies(int head_dim, double theta, const struct rope_scaling *rs, float *inv_freq);
/* Rotate one head vector in place (rotate-half layout: pairs (i, i + d/2)). */
void k_rope(float *head, int head_dim, int64_t pos, const float *inv_freq);
/* The same in two steps, so that a step computes the angles of a position
 * once for every head and layer: cos and sin (head_dim / 2 each) of pos,
 * then the rotation. */
void k_rope_table(int head_dim, int64_t pos, const float *inv_freq, float *cos_out, float *sin_out);
void k_rope_apply(float *head, int head_dim, const float *cos_t, const float *sin_t);

#endif
