#include "formats/weight_layout.h"

#include <stdio.h>
#include <string.h>

static const struct scheme_info schemes[] = {
    {"q0f16", SCHEME_NONE, DT_F16, 0, 0, false, false, false, DT_INVALID, false},
    {"q0bf16", SCHEME_NONE, DT_BF16, 0, 0, false, false, false, DT_INVALID, false},
    {"q0f32", SCHEME_NONE, DT_F32, 0, 0, false, false, false, DT_INVALID, false},
    {"q3f16_0", SCHEME_GROUP, DT_F16, 3, 40, true, true, true, DT_INVALID, false},
    {"q3f16_1", SCHEME_GROUP, DT_F16, 3, 40, false, true, true, DT_INVALID, false},
    {"q4f16_0", SCHEME_GROUP, DT_F16, 4, 32, true, true, true, DT_INVALID, false},
    {"q4f16_1", SCHEME_GROUP, DT_F16, 4, 32, false, true, true, DT_INVALID, false},
    {"q4bf16_0", SCHEME_GROUP, DT_BF16, 4, 32, true, true, true, DT_INVALID, false},
    {"q4bf16_1", SCHEME_GROUP, DT_BF16, 4, 32, false, true, true, DT_INVALID, false},
    {"q4f32_1", SCHEME_GROUP, DT_F32, 4, 32, false, true, true, DT_INVALID, false},
    {"q4f16_2", SCHEME_GROUP, DT_F16, 4, 32, false, false, false, DT_INVALID, false},
    {"e4m3_e4m3_f16", SCHEME_PER_TENSOR, DT_F16, 8, 0, false, false, false, DT_F8_E4M3, true},
    {"e5m2_e5m2_f16", SCHEME_PER_TENSOR, DT_F16, 8, 0, false, false, false, DT_F8_E5M2, false},
};

const struct scheme_info *scheme_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
        if (!strcmp(schemes[i].name, name)) return &schemes[i];
    return NULL;
}

const char *scheme_names(void)
{
    static char list[256];
    if (!list[0])
        for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? " " : "", schemes[i].name);
    return list;
}

bool weight_quantized(const struct scheme_info *s, enum weight_role role)
{
    if (s->kind == SCHEME_NONE) return false;
    if (role == ROLE_EMBEDDING) return s->quantize_embedding;
    if (role == ROLE_FINAL_FC) return s->quantize_final_fc;
    return true;
}

static void part(struct stored_part *p, const char *suffix, enum dtype dt, int ndim, int64_t d0, int64_t d1)
{
    snprintf(p->suffix, sizeof p->suffix, "%s", suffix);
    p->dtype = dt;
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = d1;
}

int weight_parts(const struct scheme_info *s, enum weight_role role, int64_t n, int64_t k,
                 struct stored_part parts[WEIGHT_MAX_PARTS])
{
    if (!weight_quantized(s, role)) {
        part(&parts[0], ".weight", s->model_dtype, 2, n, k);
        return 1;
    }
    if (s->kind == SCHEME_GROUP) {
        int64_t g = scheme_groups(s, k);
        int64_t words = g * (s->group_size / scheme_elems_per_word(s));
        /* KN applies to linear layers only; embeddings stay row-major */
        if (s->kn_layout && role != ROLE_EMBEDDING) {
            part(&parts[0], ".q_weight", DT_U32, 2, words, n);
            part(&parts[1], ".q_scale", s->model_dtype, 2, g, n);
        } else {
            part(&parts[0], ".q_weight", DT_U32, 2, n, words);
            part(&parts[1], ".q_scale", s->model_dtype, 2, n, g);
        }
        return 2;
    }
    int np = 0;
    part(&parts[np++], ".q_weight", s->fp8, 2, n, k);
    if (s->fp8_scaled) part(&parts[np++], ".q_scale", DT_F32, 1, 1, 0);
    part(&parts[np++], ".q_calibration_scale", DT_F32, 1, 1, 0);
    return np;
}
