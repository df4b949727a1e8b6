/* Choosing a kernel set, and what every set shares: matrix geometry and
 * the merging of attention pieces. */
#include "common/engine/kernels.h"
#include "common/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t kmat_groups(const struct kmat *w)
{
    return (int64_t)quant_groups(w->scheme, (size_t)w->cols);
}

int64_t kmat_row_words(const struct kmat *w)
{
    return (int64_t)quant_row_words(w->scheme, (size_t)w->cols);
}

int64_t kmat_bytes(const struct kmat *w)
{
    int64_t n = w->rows, k = w->cols;
    switch (w->fmt) {
    case KF_F32: return 4 * n * k;
    case KF_F16:
    case KF_BF16: return 2 * n * k;
    case KF_E4M3:
    case KF_E5M2: return n * k;
    case KF_Q4_NK:
    case KF_Q3_NK:
    case KF_Q4_KN:
    case KF_Q3_KN: return n * (4 * kmat_row_words(w) + kmat_groups(w) * (int64_t)dtype_size(w->scale_dtype));
    case KF_COUNT: break;
    }
    return 0;
}

void attention_merge(int heads, int d, float *max, float *sum, float *out, const float *max2, const float *sum2,
                     const float *out2)
{
    for (int h = 0; h < heads; h++) {
        float m = max[h] > max2[h] ? max[h] : max2[h];
        float a = expf(max[h] - m), b = expf(max2[h] - m);
        sum[h] = sum[h] * a + sum2[h] * b;
        float *o = out + (int64_t)h * d;
        const float *o2 = out2 + (int64_t)h * d;
        for (int i = 0; i < d; i++) o[i] = o[i] * a + o2[i] * b;
        max[h] = m;
    }
}

void attention_finish(int heads, int d, const float *sum, const float *out, float *y)
{
    for (int h = 0; h < heads; h++) {
        float inv = 1.0f / sum[h];
        for (int i = 0; i < d; i++) y[(int64_t)h * d + i] = out[(int64_t)h * d + i] * inv;
    }
}

/* ---- choosing ---- */

static bool usable(const struct kernel_set *k)
{
#if defined(__x86_64__)
    if (k == &kernels_avx512) return kernels_avx512_supported();
    if (k == &kernels_avx2) return kernels_avx2_supported();
#endif
    (void)k;
    return true;
}

static const struct kernel_set *const all_sets[] = {
    &kernels_reference,
    &kernels_generic,
#if defined(__x86_64__)
    &kernels_avx2,
    &kernels_avx512,
#endif
};
#define NSETS (sizeof all_sets / sizeof all_sets[0])

const struct kernel_set *kernels_by_name(const char *name)
{
    if (!strcmp(name, "auto")) {
        for (size_t i = NSETS; i-- > 0;)
            if (usable(all_sets[i])) return all_sets[i];
    }
    for (size_t i = 0; i < NSETS; i++) {
        if (strcmp(all_sets[i]->name, name)) continue;
        if (!usable(all_sets[i]))
            return fail("kernels %s: this CPU cannot run them (it runs %s)", name, kernels_names()), NULL;
        return all_sets[i];
    }
    fail("kernels '%s' are not known: auto, %s", name, kernels_names());
    return NULL;
}

const struct kernel_set *kernels_default(void)
{
    const char *env = getenv("MLC_KERNELS");
    if (env && *env) {
        const struct kernel_set *k = kernels_by_name(env);
        if (!k) fail_prefix("MLC_KERNELS");
        return k;
    }
    return kernels_by_name("auto");
}

const char *kernels_names(void)
{
    static char names[128];
    if (!names[0]) {
        size_t len = 0;
        for (size_t i = 0; i < NSETS; i++) {
            if (!usable(all_sets[i])) continue;
            size_t n = strlen(all_sets[i]->name);
            if (len + n + 3 >= sizeof names) break;
            if (len) names[len++] = ',', names[len++] = ' ';
            memcpy(names + len, all_sets[i]->name, n);
            len += n;
        }
        names[len] = 0;
    }
    return names;
}
