/* How each quantization scheme stores a model's weights (mlc-formats.md
 * §2): which tensors a logical weight becomes, with their dtypes and shapes.
 * mlc-lower uses it to bind parameters by name and check their shapes; the
 * engine uses it to know what it is reading. */
#ifndef MLC_WEIGHT_LAYOUT_H
#define MLC_WEIGHT_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "formats/dtype.h"

enum scheme_kind { SCHEME_NONE, SCHEME_GROUP, SCHEME_PER_TENSOR };

struct scheme_info {
    const char *name;
    enum scheme_kind kind;
    enum dtype model_dtype;      /* norms, biases, scales, unquantized weights */
    int bits;                    /* group: 3 or 4 */
    int group_size;              /* group: elements per scale */
    bool kn_layout;              /* group: linear weights stored transposed */
    bool quantize_embedding;
    bool quantize_final_fc;      /* lm_head */
    enum dtype fp8;              /* per-tensor: storage type */
    bool fp8_scaled;             /* per-tensor: has a q_scale */
};

enum weight_role { ROLE_LINEAR, ROLE_EMBEDDING, ROLE_FINAL_FC };

struct stored_part {
    char suffix[24];             /* appended to the module path: ".weight", ".q_weight", ... */
    enum dtype dtype;
    int ndim;
    int64_t shape[2];
};

#define WEIGHT_MAX_PARTS 3

const struct scheme_info *scheme_lookup(const char *name);
/* Space-separated names of every scheme, for messages. */
const char *scheme_names(void);

/* Elements per 32-bit word and words per group, for group schemes. */
static inline int scheme_elems_per_word(const struct scheme_info *s) { return 32 / s->bits; }
static inline int64_t scheme_groups(const struct scheme_info *s, int64_t k)
{
    return (k + s->group_size - 1) / s->group_size;
}

/* The tensors a logical [N, K] weight of this role is stored as. Returns the
 * number of parts. */
int weight_parts(const struct scheme_info *s, enum weight_role role, int64_t n, int64_t k,
                 struct stored_part parts[WEIGHT_MAX_PARTS]);
/* Whether a weight of this role is quantized under the scheme. */
bool weight_quantized(const struct scheme_info *s, enum weight_role role);

#endif
