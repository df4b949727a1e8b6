/* HuggingFace → MLC parameter names and shapes per architecture
 * (mlc-formats.md §3, MLC's *_loader.py), and the tensors a quantization
 * scheme turns each parameter into (§2: q_weight, q_scale, ...). */
#ifndef MLC_PARAM_MAP_H
#define MLC_PARAM_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/module.h"
#include "formats/quant.h"
#include "formats/weight_config.h"

#define PM_MAX_SOURCES 3
#define PM_NAME_MAX 192

enum pm_module { PM_LINEAR, PM_EMBEDDING, PM_OTHER };

struct mlc_param {
    char name[PM_NAME_MAX];                  /* e.g. model.layers.0.self_attn.qkv_proj.weight */
    char sources[PM_MAX_SOURCES][PM_NAME_MAX]; /* concatenated along axis 0 */
    int nsources;
    int ndim;
    int64_t shape[2];                        /* expected; -1: any (symbolic vocab_size) */
    enum pm_module module;                   /* what kind of layer the weight belongs to */
    bool final_fc;                           /* lm_head */
    bool add_one;                            /* Gemma's norms: MLC stores 1 + w, computed in the
                                              * source's dtype, then cast */
};

struct param_map {
    struct mlc_param *params;                /* MLC's parameter order */
    size_t nparams;
    char (*unused)[PM_NAME_MAX];             /* source names MLC declares unused */
    size_t nunused;
};

/* -1 with a message for an unknown model_type or impossible shapes. */
int param_map_build(struct param_map *m, const struct weight_config *c);
void param_map_free(struct param_map *m);
bool param_map_is_unused(const struct param_map *m, const char *source_name);
/* "llama, mistral, qwen2, qwen3, gemma2, gemma3, gemma3_text, phi3" */
const char *param_map_architectures(void);

/* One tensor written for a parameter. */
enum pm_out_kind { OUT_PLAIN, OUT_Q_WEIGHT, OUT_Q_SCALE, OUT_CALIBRATION };

struct mlc_output {
    char name[PM_NAME_MAX + 32];
    enum pm_out_kind kind;
    enum dtype dtype;
    int ndim;
    int64_t shape[2];
};

/* The tensors (1 to 3, in MLC's order) that scheme s writes for parameter p
 * whose actual shape is rows x k (k = 1 for vectors). Returns the count. */
int param_outputs(const struct quant_scheme *s, const struct mlc_param *p, int64_t rows, int64_t k,
                  struct mlc_output out[3]);

/* The tensors (1 to 3) scheme s stores a parameter of this role and
 * logical shape as (a plan parameter; see param_outputs). */
int weight_storage(const struct quant_scheme *s, const char *name, enum param_role role, int64_t rows,
                   int64_t cols, struct mlc_output out[3]);

#endif
