/* Quantization schemes by MLC-LLM name, and their arithmetic.
 *
 * The scheme table gives what a stage needs to know about a scheme (kind,
 * model dtype, bits, group size, layout, which modules are quantized, storage
 * dtype). The arithmetic reproduces MLC's CPU path (TVM on LLVM):
 *  - float16 model dtype: every operation is rounded to float16 (LLVM's half
 *    type rounds after each op);
 *  - bfloat16 model dtype: TVM promotes bf16 compute to float32 and rounds to
 *    bf16 only when storing (the scale); intermediates are float32;
 *  - float32: plain float32.
 * Ties round to even. Reductions run in index order with TVM's select-based
 * max (a > b ? a : b), which fixes what NaN inputs do.
 *
 * Every function here is a scalar reference. quant_fast.c has the fast
 * versions (SIMD with run-time CPU dispatch); tests check they agree bit for
 * bit. Values "in model dtype" are passed as float (exactly representable). */
#ifndef MLC_QUANT_H
#define MLC_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/dtype.h"

enum quant_kind {
    QUANT_NONE,        /* q0f16, q0bf16, q0f32: cast to model dtype */
    QUANT_GROUP,       /* q3f16_*, q4f16_*, q4bf16_*, q4f32_1 */
    QUANT_PER_TENSOR,  /* e4m3_e4m3_f16, e5m2_e5m2_f16: FP8 weights */
};

enum quant_layout {
    QUANT_NK,          /* q_weight [N, G*wpg], q_scale [N, G] */
    QUANT_KN,          /* Linear only: transposed, [G*wpg, N] and [G, N] */
};

struct quant_scheme {
    const char *name;
    enum quant_kind kind;
    enum dtype model_dtype;
    /* group quantization */
    int bits;                  /* 3 or 4 */
    int group_size;            /* 40 or 32 */
    int elems_per_word;        /* 32 / bits: 10 or 8 */
    int words_per_group;       /* group_size / elems_per_word: 4 */
    int max_int;               /* 2^(bits-1) - 1: 3 or 7 */
    enum quant_layout layout;  /* for Linear weights; embeddings are always NK */
    bool quantize_embedding;
    bool quantize_final_fc;    /* lm_head */
    enum dtype storage_dtype;  /* uint32 (group), float8_* (per-tensor) */
    /* per-tensor FP8 */
    bool use_scale;            /* q_scale float32 [1] (e4m3) */
    bool calibration_scale;    /* q_calibration_scale placeholder (e4m3 inference build) */
    float fp8_max;             /* 448 (e4m3fn) or 57344 (e5m2) */
};

const struct quant_scheme *quant_scheme_by_name(const char *name);
size_t quant_scheme_count(void);
const struct quant_scheme *quant_scheme_at(size_t i);
/* "q0f16, q0bf16, ..." for messages */
const char *quant_scheme_names(void);

/* ---- group quantization geometry ---- */

/* Groups along K: ceil(K / group_size). */
size_t quant_groups(const struct quant_scheme *s, size_t k);
/* uint32 words per row of q_weight: groups * words_per_group. */
size_t quant_row_words(const struct quant_scheme *s, size_t k);

/* ---- element conversions (MLC's loader casts with numpy/ml_dtypes) ---- */

/* Read element i of a float32/float16/bfloat16 array as float. */
float quant_load(enum dtype t, const void *data, size_t i);
/* Round a float to the model dtype (result exactly representable in it):
 * RNE, ml_dtypes rules (bfloat16 NaN → canonical NaN). */
float quant_round(enum dtype model, float v);
/* Store v (already in model dtype) as element i of an array of that dtype. */
void quant_store(enum dtype t, void *data, size_t i, float v);
/* Cast n elements from src (f32/f16/bf16) to dst (f32/f16/bf16). */
void quant_convert_ref(enum dtype src_t, const void *src, enum dtype dst_t, void *dst, size_t n);
/* Load n elements of src (f32/f16/bf16) rounded to the model dtype, as MLC's
 * loader cast does: out[i] = quant_round(model, quant_load(src_t, src, i)). */
void quant_to_model_ref(enum dtype src_t, const void *src, size_t n, enum dtype model, float *out);
void quant_to_model(enum dtype src_t, const void *src, size_t n, enum dtype model, float *out);
/* Encode n model-dtype values as they are stored on disk: float16 and
 * bfloat16 bits, float32 in MLC's "f32-to-bf16" encoding (2 bytes each). */
void quant_encode_ref(enum dtype model, const float *v, size_t n, void *out);
void quant_encode(enum dtype model, const float *v, size_t n, void *out);

/* Whether the fast functions use SIMD on this CPU (AVX2 + F16C), unless
 * MLC_QUANT_SIMD=0 in the environment turns it off. */
bool quant_simd_active(void);

/* ---- group quantization ---- */

/* Quantize one row of K weights (already in model dtype, as floats) into
 * quant_row_words() words and quant_groups() scales (model dtype, stored
 * as that dtype's bytes). Padding positions of the last word are 0. */
void quant_group_row_ref(const struct quant_scheme *s, const float *w, size_t k,
                         uint32_t *q_words, void *scales);
/* The fast version of the same (SIMD when the CPU has it); identical bits. */
void quant_group_row(const struct quant_scheme *s, const float *w, size_t k,
                     uint32_t *q_words, void *scales);

/* Dequantize row n of an NK group-quantized weight: q_row is its
 * quant_row_words() words, scales its quant_groups() scales (model dtype
 * bytes; a tensor cache stores float32 scales, q4f32_1's, as bfloat16:
 * decode them with tensor_cache_read_f32() first). Writes k floats: (q - max_int) * scale, rounded to the model dtype
 * as MLC's dequantize does (float16: rounded; bfloat16 and float32: exact
 * float32 product). */
void quant_dequant_row_nk(const struct quant_scheme *s, const uint32_t *q_row, const void *scales,
                          size_t k, float *out);
/* The same for output channel n of a KN (transposed) weight of n_total
 * columns: q_weight [G*wpg, n_total], q_scale [G, n_total]. */
void quant_dequant_row_kn(const struct quant_scheme *s, const uint32_t *q_weight, const void *q_scale,
                          size_t n_total, size_t k, size_t n, float *out);
/* The same two with the scales stored as scale_dtype (float16, bfloat16 or
 * float32) rather than the model dtype: a tensor cache keeps q4f32_1's
 * float32 scales as bfloat16, which the engine reads where they lie. */
void quant_dequant_row_nk_scales(const struct quant_scheme *s, const uint32_t *q_row, const void *scales,
                                 enum dtype scale_dtype, size_t k, float *out);
void quant_dequant_row_kn_scales(const struct quant_scheme *s, const uint32_t *q_weight, const void *q_scale,
                                 enum dtype scale_dtype, size_t n_total, size_t k, size_t n, float *out);

/* ---- FP8 ---- */

/* Round to nearest even, saturating to the largest finite value (as CUDA's
 * __NV_SATFINITE conversions used by MLC's GPU path); ±inf saturate too;
 * NaN → 0x7f (e4m3fn) / 0x7e (e5m2) with the sign kept. */
uint8_t fp8_e4m3_from_f32(float v);
uint8_t fp8_e5m2_from_f32(float v);
float fp8_e4m3_to_f32(uint8_t b);
float fp8_e5m2_to_f32(uint8_t b);

/* Per-tensor scale from a tensor's max |w| (float16 model dtype):
 * max(f16(maxabs / fp8_max), f16(1 / (fp8_max * 512))) as float32. */
float quant_fp8_scale(const struct quant_scheme *s, float maxabs);
/* max |w| over n values in TVM's reduction order and NaN rules. */
float quant_maxabs_ref(enum dtype model, const float *w, size_t n);
/* Partial maxima for splitting a tensor across threads: the result over a
 * whole tensor is quant_maxabs_merge() of its pieces in order. */
struct quant_maxabs_part {
    float max_after_nan;   /* max |w| over the elements after the last NaN */
    bool has_nan;
    bool last_is_nan;      /* the piece's final element is NaN */
};
void quant_maxabs_part(const float *w, size_t n, struct quant_maxabs_part *out);
float quant_maxabs_merge(enum dtype model, const struct quant_maxabs_part *parts, size_t nparts);
/* Quantize n values (model dtype floats) with scale (1 when !use_scale). */
void quant_fp8_ref(const struct quant_scheme *s, const float *w, size_t n, float scale, uint8_t *out);
void quant_fp8(const struct quant_scheme *s, const float *w, size_t n, float scale, uint8_t *out);
/* Decode n FP8 values of the scheme's storage dtype, times scale. */
void quant_fp8_dequant(const struct quant_scheme *s, const uint8_t *q, size_t n, float scale, float *out);

/* The value written for a q_calibration_scale placeholder: a quiet NaN, so
 * that an uncalibrated FP8 model is recognisable (see mlc-quant(1)). */
#define QUANT_UNCALIBRATED_SCALE_BITS 0x7fc00000u

#endif
