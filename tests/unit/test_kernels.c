/* Every kernel set against the reference (kernels.h), ggml style: random
 * weights in every storage format the schemes produce, odd shapes (K not a
 * multiple of the group, N not a multiple of the SIMD width, 1 and many
 * activation rows), and tolerances stated from the arithmetic:
 *
 *  - the reference rounds each dequantized weight to float16 for the f16
 *    schemes (relative 2^-11) and sums in another order than the fast sets:
 *    allow (2^-10 + K·2^-23) · Σ|w·x|;
 *  - sets that quantize activations to int8 per block of 32 move each x by
 *    at most half a step, max|x of its block| / 254: allow Σ|w| · that.
 *
 * The generic set runs everywhere, so the CI machine tests it too; the SIMD
 * sets run where the CPU has them. Results must also not depend on how
 * rows are batched or how weight rows are split into ranges (batched
 * decode equals one-by-one decode). */
#include <math.h>
#include <stdlib.h>

#include "common/buf.h"
#include "common/engine/cpu_kernels.h"
#include "common/engine/kernels.h"
#include "common/err.h"
#include "tests/unit/test.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float uniform(void)
{
    return (float)(rnd32() & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

static const struct kernel_set *fast_sets[4];
static int nfast;

static void find_sets(void)
{
    if (nfast) return;
    const char *names[] = {"generic", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        const struct kernel_set *k = kernels_by_name(names[i]);
        if (k) fast_sets[nfast++] = k;
        else printf("# %s kernels: not on this CPU\n", names[i]);
    }
}

/* FP8 matrices made with this activation scale (an inference build's
 * calibration scale; 0: none) */
static float fp8_act_scale;

/* A weight matrix in one storage format, with the buffers it owns. */
struct matrix {
    struct kmat m;
    void *data, *scales;
    float *ref;        /* dequantized by the reference, [N, K] */
};

static void free_matrix(struct matrix *w)
{
    free(w->data);
    free(w->scales);
    free(w->ref);
}

/* fmt by scheme: "q4f16_1" etc., or "f32"/"f16"/"bf16"; scale_dtype for
 * group formats overrides the model dtype (q4f32_1 stored as bf16) */
static void make_matrix(struct matrix *w, const char *scheme, int64_t N, int64_t K, enum dtype scale_dtype)
{
    memset(w, 0, sizeof *w);
    struct kmat *m = &w->m;
    m->rows = N;
    m->cols = K;
    m->scale = 1.0f;
    float *v = xmalloc(sizeof(float) * (size_t)(N * K));
    for (int64_t i = 0; i < N * K; i++) v[i] = uniform() * (1 + (i % 7 == 0) * 3);
    if (!strcmp(scheme, "f32") || !strcmp(scheme, "f16") || !strcmp(scheme, "bf16")) {
        enum dtype t = !strcmp(scheme, "f32") ? DT_F32 : !strcmp(scheme, "f16") ? DT_F16 : DT_BF16;
        m->fmt = t == DT_F32 ? KF_F32 : t == DT_F16 ? KF_F16 : KF_BF16;
        w->data = xmalloc(dtype_size(t) * (size_t)(N * K));
        for (int64_t i = 0; i < N * K; i++) quant_store(t, w->data, (size_t)i, v[i]);
    } else {
        const struct quant_scheme *s = quant_scheme_by_name(scheme);
        m->scheme = s;
        if (s->kind == QUANT_GROUP) {
            size_t words = quant_row_words(s, (size_t)K), groups = quant_groups(s, (size_t)K);
            size_t ms = dtype_size(s->model_dtype);
            uint32_t *q = xmalloc(4 * words * (size_t)N);
            unsigned char *sc = xmalloc(ms * groups * (size_t)N);
            float *row = xmalloc(sizeof(float) * (size_t)K);
            for (int64_t n = 0; n < N; n++) {
                for (int64_t k = 0; k < K; k++) row[k] = quant_round(s->model_dtype, v[n * K + k]);
                quant_group_row_ref(s, row, (size_t)K, q + n * words, sc + (size_t)n * groups * ms);
            }
            free(row);
            /* scales in the storage asked for */
            m->scale_dtype = scale_dtype ? scale_dtype : s->model_dtype;
            unsigned char *st = xmalloc(dtype_size(m->scale_dtype) * groups * (size_t)N);
            for (size_t i = 0; i < groups * (size_t)N; i++)
                quant_store(m->scale_dtype, st, i, quant_load(s->model_dtype, sc, i));
            free(sc);
            bool kn = s->layout == QUANT_KN;
            if (kn) { /* transpose into [words, N] and [groups, N] */
                uint32_t *qt = xmalloc(4 * words * (size_t)N);
                unsigned char *stt = xmalloc(dtype_size(m->scale_dtype) * groups * (size_t)N);
                for (int64_t n = 0; n < N; n++) {
                    for (size_t j = 0; j < words; j++) qt[j * (size_t)N + (size_t)n] = q[(size_t)n * words + j];
                    for (size_t g = 0; g < groups; g++)
                        memcpy(stt + (g * (size_t)N + (size_t)n) * dtype_size(m->scale_dtype),
                               st + ((size_t)n * groups + g) * dtype_size(m->scale_dtype), dtype_size(m->scale_dtype));
                }
                free(q);
                free(st);
                q = qt;
                st = stt;
            }
            m->fmt = s->bits == 4 ? (kn ? KF_Q4_KN : KF_Q4_NK) : (kn ? KF_Q3_KN : KF_Q3_NK);
            w->data = q;
            w->scales = st;
        } else {
            float mx = 0;
            for (int64_t i = 0; i < N * K; i++) mx = fabsf(v[i]) > mx ? fabsf(v[i]) : mx;
            m->scale = s->use_scale ? quant_fp8_scale(s, mx) : 1.0f;
            w->data = xmalloc((size_t)(N * K));
            for (int64_t i = 0; i < N * K; i++) v[i] = quant_round(DT_F16, v[i]);
            quant_fp8_ref(s, v, (size_t)(N * K), m->scale, w->data);
            m->fmt = s->storage_dtype == DT_F8_E4M3 ? KF_E4M3 : KF_E5M2;
            m->act_scale = fp8_act_scale;
        }
    }
    m->data = w->data;
    m->scales = w->scales;
    free(v);
    w->ref = xmalloc(sizeof(float) * (size_t)(N * K));
    for (int64_t n = 0; n < N; n++) kmat_dequant_row(m, n, w->ref + n * K);
}

static bool int8_activations(const struct kernel_set *k, const struct kmat *m)
{
    return strcmp(k->name, "generic") && (m->fmt == KF_Q4_NK || m->fmt == KF_Q4_KN);
}

/* y = x · Wᵀ with kernel set k, rows [n0, n1) */
static void run_matmul(const struct kernel_set *k, const struct kmat *m, const float *x, int64_t rows, int64_t n0,
                       int64_t n1, float *y, int64_t ldy)
{
    size_t stride = k->act_bytes(m);
    CHECK(stride % 64 == 0);
    unsigned char *act = NULL;
    CHECK(posix_memalign((void **)&act, 64, stride * (size_t)rows) == 0);
    for (int64_t r = 0; r < rows; r++) k->act_prepare(m, x + r * m->cols, act + (size_t)r * stride);
    void *scratch = xmalloc(k->scratch_bytes(m));
    k->matmul(m, n0, n1, act, stride, rows, y, ldy, scratch);
    free(scratch);
    free(act);
}

static void check_against_reference(const char *scheme, int64_t N, int64_t K, int64_t rows, enum dtype scale_dtype)
{
    find_sets();
    struct matrix w;
    make_matrix(&w, scheme, N, K, scale_dtype);
    float *x = xmalloc(sizeof(float) * (size_t)(rows * K));
    for (int64_t i = 0; i < rows * K; i++) x[i] = uniform() * (i % 13 == 0 ? 8 : 1);
    float *ref = xmalloc(sizeof(float) * (size_t)(rows * N)), *y = xmalloc(sizeof(float) * (size_t)(rows * N));
    run_matmul(&kernels_reference, &w.m, x, rows, 0, N, ref, N);
    /* the reference itself: row n of the dequantized matrix dotted by k_dot
     * (FP8 times FP8 activations: the stored values, then both scales) */
    float after = w.m.act_scale > 0 ? w.m.act_scale * w.m.scale : 1.0f;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t n = 0; n < N; n++)
            if (ref[r * N + n] != k_dot(x + r * K, w.ref + n * K, K) * after) {
                TEST_FAIL_AT("%s: the reference is not dequantize + k_dot", scheme);
                r = rows;
                break;
            }
    for (int s = 0; s < nfast; s++) {
        const struct kernel_set *k = fast_sets[s];
        run_matmul(k, &w.m, x, rows, 0, N, y, N);
        double worst = 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t n = 0; n < N; n++) {
                double mag = 0, quant = 0;
                for (int64_t kk = 0; kk < K; kk++) {
                    mag += fabs((double)w.ref[n * K + kk] * x[r * K + kk]);
                    if (int8_activations(k, &w.m)) {
                        double amax = 0;
                        for (int64_t j = kk / 32 * 32; j < kk / 32 * 32 + 32 && j < K; j++)
                            amax = fabs(x[r * K + j]) > amax ? fabs(x[r * K + j]) : amax;
                        quant += fabs(w.ref[n * K + kk]) * amax / 254.0;
                    }
                }
                double tol = (quant * 1.001 + (0x1p-10 + (double)K * 0x1p-23) * mag) * fabs(after) + 1e-30;
                double err = fabs((double)y[r * N + n] - ref[r * N + n]);
                if (err / tol > worst) worst = err / tol;
                if (!(err <= tol)) {
                    TEST_FAIL_AT("%s %s N=%lld K=%lld rows=%lld: y[%lld][%lld] = %.9g, reference %.9g (tolerance %.3g)",
                                 k->name, scheme, (long long)N, (long long)K, (long long)rows, (long long)r,
                                 (long long)n, y[r * N + n], ref[r * N + n], tol);
                    r = rows;
                    break;
                }
            }
        /* one row at a time, and an inner range of weight rows, give the
         * same bits */
        float *one = xmalloc(sizeof(float) * (size_t)N);
        for (int64_t r = 0; r < rows; r++) {
            run_matmul(k, &w.m, x + r * K, 1, 0, N, one, N);
            if (memcmp(one, y + r * N, sizeof(float) * (size_t)N)) {
                TEST_FAIL_AT("%s %s: row %lld alone differs from the batch of %lld", k->name, scheme, (long long)r,
                             (long long)rows);
                break;
            }
        }
        if (N > 2) {
            run_matmul(k, &w.m, x, 1, 1, N - 1, one, N);
            if (memcmp(one, y + 1, sizeof(float) * (size_t)(N - 2)))
                TEST_FAIL_AT("%s %s: rows 1..%lld computed alone differ", k->name, scheme, (long long)N - 1);
        }
        free(one);
    }
    free(x);
    free(ref);
    free(y);
    free_matrix(&w);
}

static void every_shape(const char *scheme, enum dtype scale_dtype)
{
    static const int64_t shapes[][3] = {
        {1, 32, 1}, {7, 40, 1}, {13, 100, 3}, {17, 172, 5}, {33, 257, 2}, {16, 640, 4}, {3, 2048, 1}, {9, 8, 6},
        {5, 96, 11},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_against_reference(scheme, shapes[i][0], shapes[i][1], shapes[i][2], scale_dtype);
}

/* every group and FP8 scheme of the table, with its scales in the model's
 * dtype; then q4f32_1's scales as a tensor cache stores them (bfloat16) */
TEST(every_quantized_scheme)
{
    for (size_t i = 0; i < quant_scheme_count(); i++) {
        const struct quant_scheme *s = quant_scheme_at(i);
        if (s->kind != QUANT_NONE) every_shape(s->name, DT_INVALID);
    }
}
/* e4m3 of an inference build: FP8 activations (x / c), the sum multiplied
 * by c and the weight scale after it, the weights not rounded */
TEST(e4m3_times_fp8_activations)
{
    fp8_act_scale = 0.0371f;
    every_shape("e4m3_e4m3_f16", DT_INVALID);
    fp8_act_scale = 0;
}
TEST(q4f32_1_nk_scales_as_stored_bf16) { every_shape("q4f32_1", DT_BF16); }
TEST(q0_rows_f32_f16_bf16)
{
    every_shape("f32", DT_INVALID);
    every_shape("f16", DT_INVALID);
    every_shape("bf16", DT_INVALID);
}

/* ---- attention pieces against a double-precision softmax ---- */

static void check_attention(int G, int d, int64_t n, int64_t first, enum dtype t, float softcap)
{
    find_sets();
    int64_t cap = first + n + 5; /* the run starts at slot `first` of a larger cache */
    float *q = xmalloc(sizeof(float) * (size_t)(G * d));
    for (int i = 0; i < G * d; i++) q[i] = uniform();
    size_t es = dtype_size(t);
    unsigned char *keys = xcalloc((size_t)(d * (cap + KV_BLOCK)), es), *vals = xcalloc((size_t)(cap * d * 2), es);
    float *kf = xmalloc(sizeof(float) * (size_t)(d * n)), *vf = xmalloc(sizeof(float) * (size_t)(d * n));
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < d; k++) {
            float a = uniform() * 3, b = uniform();
            size_t ki = (size_t)kv_cache_key_index(d, first + i, k);
            quant_store(t, keys, ki, a);
            quant_store(t, vals, (size_t)((first + i) * 2 * d + k), b); /* values of 2 heads per slot: ours first */
            kf[i * d + k] = quant_load(t, keys, ki);
            vf[i * d + k] = quant_load(t, vals, (size_t)((first + i) * 2 * d + k));
        }
    float scale = 1.0f / sqrtf((float)d);
    float *scores = xmalloc(sizeof(float) * (size_t)G * ATTN_SCORES), *state = xmalloc(sizeof(float) * (size_t)G * (d + 2));
    for (int s = 0; s < nfast; s++) {
        struct attn_piece p = {q, G, d, keys, first, vals + (size_t)first * 2 * d * es, 2 * d, t, n, scale,
                               scores, state, state + G, state + 2 * G, softcap};
        fast_sets[s]->attend(&p);
        for (int h = 0; h < G; h++) {
            double sc[ATTN_PIECE], mx = -INFINITY, sum = 0;
            for (int64_t i = 0; i < n; i++) {
                double acc = 0;
                for (int k = 0; k < d; k++) acc += (double)q[h * d + k] * kf[i * d + k];
                sc[i] = acc * scale;
                if (softcap > 0) sc[i] = softcap * tanh(sc[i] / softcap);
                mx = sc[i] > mx ? sc[i] : mx;
            }
            for (int64_t i = 0; i < n; i++) sum += exp(sc[i] - mx);
            CHECK(fabs(state[h] - mx) <= 1e-5 * (1 + fabs(mx)));
            /* the partial state, rescaled to the exact max, normalized */
            double rescale = exp((double)state[h] - mx);
            CHECK(fabs(state[G + h] * rescale - sum) <= 1e-5 * sum);
            for (int k = 0; k < d; k++) {
                double o = 0;
                for (int64_t i = 0; i < n; i++) o += exp(sc[i] - mx) * vf[i * d + k];
                double got = state[2 * G + h * d + k] / state[G + h];
                if (fabs(got - o / sum) > 2e-5) {
                    TEST_FAIL_AT("%s attention G=%d d=%d n=%lld from %lld %s softcap %g: head %d dim %d: %.7g, "
                                 "expected %.7g", fast_sets[s]->name, G, d, (long long)n, (long long)first,
                                 dtype_name(t), softcap, h, k, got, o / sum);
                    h = G;
                    break;
                }
            }
        }
    }
    free(q);
    free(keys);
    free(vals);
    free(kf);
    free(vf);
    free(scores);
    free(state);
}

TEST(attention_pieces)
{
    /* heads, dimensions, slots, first slot (runs that start and end
     * inside key blocks) */
    static const int shapes[][4] = {{1, 8, 1, 0},   {8, 64, 17, 3},  {8, 64, 256, 0}, {8, 64, 256, 5},
                                    {3, 72, 15, 9}, {12, 16, 33, 31}, {4, 128, 100, 16}, {2, 8, 1, 15}};
    enum dtype types[] = {DT_F32, DT_F16, DT_BF16};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int t = 0; t < 3; t++) check_attention(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], types[t], 0);
}

TEST(attention_pieces_with_soft_capped_scores)
{
    /* Gemma 2: scores s → c · tanh(s / c) before the softmax; caps that
     * bite hard (0.5), a little (3) and hardly at all (50), keys up to 3 */
    static const int shapes[][4] = {{2, 32, 1, 0}, {2, 32, 37, 5}, {8, 64, 256, 3}, {3, 72, 15, 9}};
    static const float caps[] = {0.5f, 3.0f, 50.0f};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int c = 0; c < 3; c++) {
            check_attention(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], DT_F32, caps[c]);
            check_attention(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3], DT_F16, caps[c]);
        }
}

TEST(attention_merge_equals_one_piece)
{
    /* merging the partials of two runs gives what one run over both gives */
    find_sets();
    int G = 2, d = 16;
    int64_t n = 40;
    float q[32], keys[16 * 48], vals[40 * 16];
    for (int i = 0; i < 32; i++) q[i] = uniform();
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < d; k++) keys[kv_cache_key_index(d, i, k)] = uniform() * 2, vals[i * d + k] = uniform();
    float scores[2 * ATTN_SCORES], whole[2 * 18], a[2 * 18], b[2 * 18], y1[32], y2[32];
    for (int s = 0; s < nfast; s++) {
        struct attn_piece p = {q, G, d, keys, 0, vals, d, DT_F32, n, 0.25f, scores, whole, whole + G, whole + 2 * G, 0};
        fast_sets[s]->attend(&p);
        p.n = 25, p.max = a, p.sum = a + G, p.out = a + 2 * G;
        fast_sets[s]->attend(&p);
        p.first = 25, p.v = vals + 25 * d, p.n = 15, p.max = b, p.sum = b + G, p.out = b + 2 * G;
        fast_sets[s]->attend(&p);
        attention_merge(G, d, a, a + G, a + 2 * G, b, b + G, b + 2 * G);
        attention_finish(G, d, whole + G, whole + 2 * G, y1);
        attention_finish(G, d, a + G, a + 2 * G, y2);
        for (int i = 0; i < 32; i++) CHECK(fabsf(y1[i] - y2[i]) <= 1e-6f);
    }
}

/* ---- the elementwise hooks ---- */

TEST(norm_silu_gelu_and_cache_stores)
{
    find_sets();
    int64_t ns[] = {1, 8, 15, 64, 172, 2049};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        int64_t n = ns[t];
        float *x = xmalloc(sizeof(float) * (size_t)n), *b = xmalloc(sizeof(float) * (size_t)n),
              *w = xmalloc(sizeof(float) * (size_t)n), *ref = xmalloc(sizeof(float) * (size_t)n),
              *y = xmalloc(sizeof(float) * (size_t)n), *sum = xmalloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++) x[i] = uniform() * 10, b[i] = uniform(), w[i] = uniform() + 1;
        uint16_t *h = xmalloc(2 * (size_t)n * 3);
        for (int s = 0; s < nfast; s++) {
            const struct kernel_set *k = fast_sets[s];
            if (k->rms_norm) {
                k_rms_norm(x, w, n, 1e-5, ref);
                k->rms_norm(x, w, n, 1e-5, y);
                for (int64_t i = 0; i < n; i++) CHECK(fabsf(y[i] - ref[i]) <= 1e-5f * (1 + fabsf(ref[i])));
            }
            if (k->add_rms_norm) {
                float *s2 = xmalloc(sizeof(float) * (size_t)n);
                k_add(x, b, n, s2);
                k_rms_norm(s2, w, n, 1e-6, ref);
                k->add_rms_norm(x, b, w, n, 1e-6, sum, y);
                CHECK_MEM(sum, s2, sizeof(float) * (size_t)n);
                for (int64_t i = 0; i < n; i++) CHECK(fabsf(y[i] - ref[i]) <= 1e-5f * (1 + fabsf(ref[i])));
                free(s2);
            }
            if (k->silu_mul) {
                k->silu_mul(x, b, n, y);
                for (int64_t i = 0; i < n; i++) {
                    float want = k_silu(x[i]) * b[i];
                    CHECK(fabsf(y[i] - want) <= 2e-6f * (1 + fabsf(want)));
                }
            }
            if (k->gelu_mul) { /* x up to ±10: both tails and the bend between */
                k->gelu_mul(x, b, n, y);
                for (int64_t i = 0; i < n; i++) {
                    float want = k_gelu_tanh(x[i]) * b[i];
                    if (!(fabsf(y[i] - want) <= 2e-6f * (1 + fabsf(want)))) {
                        TEST_FAIL_AT("%s gelu_mul: element %lld (x %.7g): %.7g, expected %.7g", k->name, (long long)i,
                                     x[i], y[i], want);
                        break;
                    }
                }
            }
            if (k->store) {
                enum dtype types[] = {DT_F16, DT_BF16};
                for (int ti = 0; ti < 2; ti++) {
                    k->store(types[ti], x, n, h, 3);
                    for (int64_t i = 0; i < n; i++) {
                        uint16_t want = types[ti] == DT_F16 ? f32_to_f16(x[i]) : f32_to_bf16(x[i]);
                        if (h[i * 3] != want) {
                            TEST_FAIL_AT("%s store %s: element %lld is %04x, expected %04x", k->name,
                                         dtype_name(types[ti]), (long long)i, h[i * 3], want);
                            break;
                        }
                    }
                }
            }
        }
        free(h);
        free(x);
        free(b);
        free(w);
        free(ref);
        free(y);
        free(sum);
    }
}

TEST(gelu_tanh_and_softcap_by_hand)
{
    /* values worked out from the definitions in double precision */
    static const double xs[] = {-6.0, -1.5, -0.25, 0.0, 1e-3, 0.5, 2.0, 7.0};
    for (size_t i = 0; i < sizeof xs / sizeof xs[0]; i++) {
        double x = xs[i], want = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        CHECK(fabs(k_gelu_tanh((float)x) - want) <= 1e-6 * (1 + fabs(want)));
    }
    float x[4] = {-100.0f, -1.0f, 0.25f, 30.0f}, y[4];
    k_softcap(x, 4, 5.0f, y);
    CHECK(fabsf(y[0] + 5.0f) < 1e-6f && fabsf(y[3] - 5.0f * (float)tanh(6.0)) < 1e-6f);
    CHECK(fabsf(y[1] - 5.0f * (float)tanh(-0.2)) < 1e-6f && fabsf(y[2] - 5.0f * (float)tanh(0.05)) < 1e-6f);
    k_softcap(x, 4, 5.0f, x); /* in place */
    CHECK_MEM(x, y, sizeof y);
}

TEST(read_sum_adds_every_word)
{
    find_sets();
    size_t n = 1 << 16;
    uint64_t *buf = NULL;
    CHECK(posix_memalign((void **)&buf, 64, n) == 0);
    uint64_t want = 0;
    for (size_t i = 0; i < n / 8; i++) want += buf[i] = (uint64_t)rnd32() * 977;
    CHECK_EQ(kernels_reference.read_sum(buf, n), want);
    for (int s = 0; s < nfast; s++) CHECK_EQ(fast_sets[s]->read_sum(buf, n), want);
    free(buf);
}

TEST(sets_by_name)
{
    CHECK(kernels_by_name("reference") == &kernels_reference);
    CHECK(kernels_by_name("generic") == &kernels_generic);
    CHECK(kernels_by_name("auto") != NULL);
    CHECK(kernels_by_name("sse9") == NULL);
    CHECK_CONTAINS(last_error(), "kernels 'sse9' are not known");
    CHECK_CONTAINS(kernels_names(), "reference, generic");
}

TEST_MAIN()
