/* The CPU executor's kernels, in sets chosen at run time.
 *
 * Following ggml, every kernel has a plain reference and optimised versions
 * beside it, tested against it (tests/unit/test_kernels.c):
 *
 *   reference  kernels_ref.c     the readable yardstick: every weight row
 *                                dequantized as MLC's TVM kernels round it
 *                                (formats/quant.h), float32 dot products,
 *                                one attention head at a time
 *   generic    kernels_generic.c portable C on the stored layouts, no
 *                                rounding through the model dtype: what
 *                                runs where there is no SIMD path
 *   avx2       kernels_avx2.c    AVX2 + FMA + F16C
 *   avx512     kernels_avx512.c  AVX-512 F/BW/VL + VNNI
 *
 * The fast sets read weights in MLC's layouts as they lie in the mapped
 * shards (no float copies, no re-layout at load). Group-quantized weights
 * meet int8 activations, quantized once per matmul in blocks of 32 with a
 * scale each, in integer dot products; everything else is float32
 * arithmetic. The choice is process-wide by default ($MLC_KERNELS, or the
 * best the CPU has) and per executor when asked (executor_use_kernels). */
#ifndef MLC_KERNELS_H
#define MLC_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/engine/kv_cache.h"
#include "formats/dtype.h"
#include "formats/quant.h"

/* How a weight matrix is stored. */
enum kfmt {
    KF_F32,       /* float32 rows */
    KF_F16,       /* float16 rows */
    KF_BF16,      /* bfloat16 rows (q0bf16, and float32 stored as bf16) */
    KF_Q4_NK,     /* 4-bit groups of 32, row-major words, element 0 in the low bits */
    KF_Q3_NK,     /* 3-bit groups of 40, ten elements to a word */
    KF_Q4_KN,     /* the same, transposed: words [K / 8, N], scales [G, N] */
    KF_Q3_KN,
    KF_E4M3,      /* FP8 bytes, one scale for the tensor */
    KF_E5M2,
    KF_COUNT
};

/* A weight matrix as the kernels see it: logical [rows = N, cols = K]. */
struct kmat {
    enum kfmt fmt;
    int64_t rows, cols;
    const void *data;                  /* values, q_weight words or FP8 bytes */
    const void *scales;                /* group scales, [N, G] (NK) or [G, N] (KN) */
    enum dtype scale_dtype;            /* how the group scales are stored */
    float scale;                       /* FP8: the tensor's scale (1 when none) */
    float act_scale;                   /* FP8 inference build: the activations arrive as
                                        * fp8(x / act_scale) and each sum is multiplied by
                                        * act_scale * scale in float32, the weights not
                                        * rounded (MLC's FP8 matmul); 0: activations as
                                        * they are, weights dequantized as MLC does */
    const struct quant_scheme *scheme; /* group and FP8 formats: geometry, reference arithmetic */
};

/* Row n as float32 with the reference arithmetic (formats/quant.h). */
void kmat_dequant_row(const struct kmat *w, int64_t n, float *out);
/* Groups along K, and words per row (group formats). */
int64_t kmat_groups(const struct kmat *w);
int64_t kmat_row_words(const struct kmat *w);
/* Bytes the matrix occupies in memory (what one pass over it reads). */
int64_t kmat_bytes(const struct kmat *w);

/* Attention of one query row over one contiguous run of cache slots, for
 * the query heads that share one key/value head: the partial softmax state
 * that attention_merge() combines. Keys lie as the cache keeps them
 * (kv_cache.h): transposed in blocks of KV_BLOCK slots. */
struct attn_piece {
    const float *q;            /* heads × d query values */
    int heads, d;
    const void *k;             /* the head's keys (its first block) */
    int64_t first;             /* the run's first slot */
    const void *v;             /* the run's first value of this head */
    int64_t v_stride;          /* elements from one slot's value to the next */
    enum dtype kv_dtype;       /* float32, float16 or bfloat16 */
    int64_t n;                 /* slots in the run (1..ATTN_PIECE) */
    float scale;               /* the softmax scale (1/sqrt(d) unless the model says) */
    float *scores;             /* scratch: heads × ATTN_SCORES */
    float *max, *sum, *out;    /* results: per head max score, Σ exp(score - max), Σ exp(...)·v [heads × d] */
    float softcap;             /* scores s → softcap · tanh(s / softcap) before the softmax; 0: none */
};
#define ATTN_PIECE 256
/* a head's row of scores: a piece, and room to start it mid-block */
#define ATTN_SCORES (ATTN_PIECE + KV_BLOCK)

struct kernel_set {
    const char *name;
    /* ---- matmul: y = x · Wᵀ ---- */
    /* bytes of one prepared activation row for w (a multiple of 64) */
    size_t (*act_bytes)(const struct kmat *w);
    /* x (cols floats) → one row in the layout matmul reads */
    void (*act_prepare)(const struct kmat *w, const float *x, void *act);
    /* per-thread scratch bytes matmul needs */
    size_t (*scratch_bytes)(const struct kmat *w);
    /* y[r * ldy + (n - n0)] = row n of w · activation row r, for n0 <= n <
     * n1 and r < rows; activation row r at act + r * act_stride. Each
     * result is computed the same way whatever n0, n1 and rows are. */
    void (*matmul)(const struct kmat *w, int64_t n0, int64_t n1, const void *act, size_t act_stride,
                   int64_t rows, float *y, int64_t ldy, void *scratch);
    /* ---- the rest of the step; NULL: the executor's reference code ---- */
    void (*attend)(const struct attn_piece *p);
    void (*rms_norm)(const float *x, const float *w, int64_t n, double eps, float *y);
    /* sum = a + b; y = rms_norm(sum) */
    void (*add_rms_norm)(const float *a, const float *b, const float *w, int64_t n, double eps, float *sum, float *y);
    /* out[i] = silu(gate[i]) · up[i] */
    void (*silu_mul)(const float *gate, const float *up, int64_t n, float *out);
    /* out[i] = gelu_tanh(gate[i]) · up[i] */
    void (*gelu_mul)(const float *gate, const float *up, int64_t n, float *out);
    /* float32 → the KV cache's dtype: out[i * stride] = x[i] */
    void (*store)(enum dtype t, const float *x, int64_t n, void *out, int64_t stride);
    /* Σ of n bytes read as 64-bit words: the memory-bandwidth probe */
    uint64_t (*read_sum)(const void *p, size_t n);
};

extern const struct kernel_set kernels_reference, kernels_generic;
#if defined(__x86_64__)
extern const struct kernel_set kernels_avx2, kernels_avx512;
bool kernels_avx2_supported(void);
bool kernels_avx512_supported(void);
#endif

/* By name: "reference", "generic", "avx2", "avx512", or "auto" (the best
 * this CPU runs). NULL with an error when unknown or not supported here. */
const struct kernel_set *kernels_by_name(const char *name);
/* The default: $MLC_KERNELS when set (an unusable value is an error the
 * first executor reports), else "auto". */
const struct kernel_set *kernels_default(void);
/* "reference, generic, avx2, avx512" (those this CPU runs) */
const char *kernels_names(void);

/* Shared by every set: merge a later piece's partial state into `into`
 * (heads × d), and turn the merged state into the attention output. */
void attention_merge(int heads, int d, float *max, float *sum, float *out, const float *max2, const float *sum2,
                     const float *out2);
void attention_finish(int heads, int d, const float *sum, const float *out, float *y);

#endif
