/* Quantization arithmetic: MLC's worked example byte for byte, the fast
 * (SIMD) versions against the scalar reference on random and adversarial
 * inputs, round-trip error bounds, FP8 encodings. */
#include <math.h>
#include <stdlib.h>

#include "formats/quant.h"
#include "tests/unit/test.h"

static uint64_t rng = 88172645463325252ull;
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

TEST(worked_example_q4f16_1_byte_for_byte)
{
    const struct quant_scheme *s = quant_scheme_by_name("q4f16_1");
    CHECK(s != NULL);
    float w[32];
    for (int k = 0; k < 32; k++) w[k] = (float)(k - 16) / 8.0f;
    uint32_t words[4];
    uint16_t scale;
    quant_group_row_ref(s, w, 32, words, &scale);
    static const unsigned char want[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x54, 0x65, 0x76,
                                           0x77, 0x88, 0x99, 0xaa, 0xba, 0xcb, 0xdc, 0xed};
    CHECK_MEM(words, want, 16);
    CHECK_EQ(scale, 0x3492);
    CHECK_EQ(words[0], 0x33221100u);
    CHECK_EQ(words[3], 0xEDDCCBBAu);
    /* the fast path gives the same bytes */
    uint32_t fw[4];
    uint16_t fs;
    quant_group_row(s, w, 32, fw, &fs);
    CHECK_MEM(fw, want, 16);
    CHECK_EQ(fs, 0x3492);
    /* q = 0 → −7·0.28564 = −2.0; q = 14 → 2.0 */
    float back[32];
    quant_dequant_row_nk(s, words, &scale, 32, back);
    CHECK(back[0] == -2.0f);
    CHECK(back[31] == 2.0f);
    /* k = 10: −0.75/0.2856 = −2.625 (f16) + 7 = 4.375 → 4 */
    CHECK_EQ((words[1] >> 8) & 0xf, 4);
}

TEST(scheme_table_matches_mlc)
{
    const struct quant_scheme *s = quant_scheme_by_name("q3f16_1");
    CHECK_EQ(s->bits, 3);
    CHECK_EQ(s->group_size, 40);
    CHECK_EQ(s->elems_per_word, 10);
    CHECK_EQ(s->words_per_group, 4);
    CHECK_EQ(s->max_int, 3);
    CHECK_EQ(s->layout, QUANT_NK);
    s = quant_scheme_by_name("q4f16_0");
    CHECK_EQ(s->layout, QUANT_KN);
    s = quant_scheme_by_name("q4f16_2");
    CHECK(!s->quantize_embedding && !s->quantize_final_fc);
    s = quant_scheme_by_name("q4f32_1");
    CHECK_EQ(s->model_dtype, DT_F32);
    s = quant_scheme_by_name("q4bf16_1");
    CHECK_EQ(s->model_dtype, DT_BF16);
    s = quant_scheme_by_name("e4m3_e4m3_f16");
    CHECK(s->kind == QUANT_PER_TENSOR && s->use_scale && s->calibration_scale);
    CHECK_EQ(s->storage_dtype, DT_F8_E4M3);
    s = quant_scheme_by_name("e5m2_e5m2_f16");
    CHECK(!s->use_scale && !s->calibration_scale);
    s = quant_scheme_by_name("q0bf16");
    CHECK(s->kind == QUANT_NONE && s->model_dtype == DT_BF16);
    CHECK(quant_scheme_by_name("q4f16_autoawq") == NULL);
    CHECK_CONTAINS(quant_scheme_names(), "q4f16_1, q4bf16_0");
    /* 4096 → 128 groups of 32 → 512 words; 11008 with g40 → 276 groups */
    CHECK_EQ(quant_row_words(quant_scheme_by_name("q4f16_1"), 4096), 512);
    CHECK_EQ(quant_groups(quant_scheme_by_name("q3f16_1"), 11008), 276);
}

/* every group scheme, ref vs fast on one matrix */
static int compare_rows(const struct quant_scheme *s, const float *w, size_t rows, size_t k)
{
    size_t nw = quant_row_words(s, k), ng = quant_groups(s, k), ss = dtype_size(s->model_dtype);
    uint32_t *a = calloc(nw, 4), *b = calloc(nw, 4);
    unsigned char *sa = calloc(ng, ss), *sb = calloc(ng, ss);
    int bad = 0;
    for (size_t r = 0; r < rows && !bad; r++) {
        memset(a, 0xa5, nw * 4);
        memset(b, 0x5a, nw * 4);
        quant_group_row_ref(s, w + r * k, k, a, sa);
        quant_group_row(s, w + r * k, k, b, sb);
        if (memcmp(a, b, nw * 4) || memcmp(sa, sb, ng * ss)) {
            printf("# %s: row %zu of K=%zu differs\n", s->name, r, k);
            bad = 1;
        }
    }
    free(a), free(b), free(sa), free(sb);
    return bad;
}

static void fill_model(const struct quant_scheme *s, float *w, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) w[i] = quant_round(s->model_dtype, uniform() * scale);
}

TEST(fast_group_quant_equals_reference_on_random_rows)
{
    if (!quant_simd_active()) printf("# no AVX2/F16C here: the fast path is the reference\n");
    static const size_t ks[] = {32, 40, 64, 120, 128, 13, 1, 33, 200, 4096, 4097, 5632};
    for (size_t si = 0; si < quant_scheme_count(); si++) {
        const struct quant_scheme *s = quant_scheme_at(si);
        if (s->kind != QUANT_GROUP) continue;
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            size_t k = ks[ki], rows = k > 1000 ? 4 : 16;
            float *w = malloc(rows * k * sizeof *w);
            fill_model(s, w, rows * k, ki % 2 ? 0.05f : 3.0f);
            CHECK(!compare_rows(s, w, rows, k));
            free(w);
        }
    }
}

TEST(fast_group_quant_equals_reference_on_adversarial_rows)
{
    /* zeros, exact ties, infinities, NaN (first, middle, last in a group),
     * subnormals, huge values, negative zero */
    for (size_t si = 0; si < quant_scheme_count(); si++) {
        const struct quant_scheme *s = quant_scheme_at(si);
        if (s->kind != QUANT_GROUP) continue;
        size_t k = 160 + 7, rows = 14;
        float *w = calloc(rows * k, sizeof *w);
        for (size_t j = 0; j < k; j++) {
            w[1 * k + j] = (float)((int)(j % 15) - 7) * 0.5f;     /* ties of x.5 after scaling */
            w[2 * k + j] = j == 5 ? INFINITY : uniform();
            w[3 * k + j] = j == 0 ? NAN : uniform();
            w[4 * k + j] = j % 40 == 39 || j % 32 == 31 ? NAN : uniform();
            w[5 * k + j] = j == 17 ? -INFINITY : (j == 18 ? NAN : uniform());
            w[6 * k + j] = quant_round(s->model_dtype, ldexpf(uniform(), -20));   /* subnormal halves */
            w[7 * k + j] = quant_round(s->model_dtype, uniform() * 65000.0f);
            w[8 * k + j] = j % 2 ? -0.0f : 0.0f;
            w[9 * k + j] = j % 5 == 0 ? ldexpf(1.0f, -24) : 0.0f;     /* scale rounds to 0 */
            w[10 * k + j] = (float)(j % 8) * 0.125f - 0.4375f;        /* more exact ties */
            w[11 * k + j] = j == k - 1 ? NAN : uniform();             /* NaN before padding */
            w[12 * k + j] = quant_round(s->model_dtype, uniform() * 3.4e38f);
            w[13 * k + j] = j < 40 ? 7.0f : -7.0f;
        }
        for (size_t i = 0; i < rows * k; i++)
            if (!isnan(w[i]) && !isinf(w[i])) w[i] = quant_round(s->model_dtype, w[i]);
        CHECK(!compare_rows(s, w, rows, k));
        /* all-zero groups quantize to 0 with a zero scale, as MLC's CPU path */
        uint32_t words[32];
        unsigned char sc[64];
        quant_group_row_ref(s, w, k, words, sc);
        CHECK_EQ(words[0], 0);
        free(w);
    }
}

TEST(round_trip_error_is_within_half_a_step)
{
    for (size_t si = 0; si < quant_scheme_count(); si++) {
        const struct quant_scheme *s = quant_scheme_at(si);
        if (s->kind != QUANT_GROUP) continue;
        size_t k = 333, rows = 64;
        size_t nw = quant_row_words(s, k), ng = quant_groups(s, k), ss = dtype_size(s->model_dtype);
        float *w = malloc(k * sizeof *w), *back = malloc(k * sizeof *back);
        uint32_t *q = malloc(nw * 4);
        unsigned char *sc = malloc(ng * ss);
        double worst = 0, sum_sq = 0, sum_w = 0;
        for (size_t r = 0; r < rows; r++) {
            fill_model(s, w, k, 0.02f + (float)r);
            quant_group_row(s, w, k, q, sc);
            quant_dequant_row_nk(s, q, sc, k, back);
            for (size_t j = 0; j < k; j++) {
                float scale = quant_load(s->model_dtype, sc, j / (size_t)s->group_size);
                double err = fabs((double)back[j] - w[j]);
                /* half a quantization step, plus the model dtype's own
                 * rounding of the intermediate steps */
                double bound = 0.5 * scale * 1.01 + fabs(w[j]) * (s->model_dtype == DT_F16 ? 2e-3 : 1e-2);
                if (err > bound) {
                    printf("# %s row %zu col %zu: |%g - %g| = %g > %g\n", s->name, r, j, back[j], w[j], err, bound);
                    worst = 1e9;
                }
                sum_sq += err * err;
                sum_w += (double)w[j] * w[j];
            }
        }
        CHECK(worst < 1e9);
        /* uniform weights in [-a, a]: the step is a/max_int and the error is
         * uniform within half a step, so the relative RMS error is
         * (a/max_int)/sqrt(12) / (a/sqrt(3)) = 1/(2*max_int): 0.071 for
         * int4, 0.167 for int3 */
        double rel = sqrt(sum_sq / sum_w), want = 1.0 / (2.0 * s->max_int);
        if (fabs(rel - want) > 0.1 * want) printf("# %s: relative RMS error %g, expected %g\n", s->name, rel, want);
        CHECK(fabs(rel - want) < 0.1 * want);
        free(w), free(back), free(q), free(sc);
    }
}

TEST(kn_dequant_reads_the_transpose)
{
    const struct quant_scheme *nk = quant_scheme_by_name("q4f16_1"), *kn = quant_scheme_by_name("q4f16_0");
    size_t n = 5, k = 70, nw = quant_row_words(nk, k), ng = quant_groups(nk, k);
    float *w = malloc(n * k * sizeof *w);
    fill_model(nk, w, n * k, 1.0f);
    uint32_t *q = malloc(n * nw * 4), *qt = malloc(n * nw * 4);
    uint16_t *sc = malloc(n * ng * 2), *sct = malloc(n * ng * 2);
    for (size_t r = 0; r < n; r++) quant_group_row_ref(nk, w + r * k, k, q + r * nw, sc + r * ng);
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < nw; i++) qt[i * n + r] = q[r * nw + i];
        for (size_t g = 0; g < ng; g++) sct[g * n + r] = sc[r * ng + g];
    }
    float a[70], b[70];
    for (size_t r = 0; r < n; r++) {
        quant_dequant_row_nk(nk, q + r * nw, sc + r * ng, k, a);
        quant_dequant_row_kn(kn, qt, sct, n, k, r, b);
        CHECK_MEM(a, b, sizeof a);
    }
    free(w), free(q), free(qt), free(sc), free(sct);
}

TEST(fp8_e4m3_known_values)
{
    CHECK_EQ(fp8_e4m3_from_f32(1.0f), 0x38);
    CHECK_EQ(fp8_e4m3_from_f32(-2.0f), 0xc0);
    CHECK_EQ(fp8_e4m3_from_f32(448.0f), 0x7e);
    CHECK_EQ(fp8_e4m3_from_f32(460.0f), 0x7e);        /* rounds down to 448 */
    CHECK_EQ(fp8_e4m3_from_f32(1e6f), 0x7e);          /* saturates */
    CHECK_EQ(fp8_e4m3_from_f32(-INFINITY), 0xfe);
    CHECK_EQ(fp8_e4m3_from_f32(NAN) & 0x7f, 0x7f);
    CHECK_EQ(fp8_e4m3_from_f32(ldexpf(1, -9)), 0x01); /* smallest subnormal */
    CHECK_EQ(fp8_e4m3_from_f32(ldexpf(1, -10)), 0x00); /* tie → even (0) */
    CHECK_EQ(fp8_e4m3_from_f32(ldexpf(3, -10)), 0x02); /* 1.5 units → 2 */
    CHECK_EQ(fp8_e4m3_from_f32(1.0625f), 0x38);       /* tie between 1 and 1.125 → 1 */
    CHECK_EQ(fp8_e4m3_from_f32(1.1875f), 0x3a);       /* tie → 1.25 (even) */
    CHECK_EQ(fp8_e4m3_from_f32(0.015625f), 0x08);     /* smallest normal 2^-6 */
    CHECK(fp8_e4m3_to_f32(0x7e) == 448.0f);
    CHECK(isnan(fp8_e4m3_to_f32(0xff)));
    CHECK(fp8_e4m3_to_f32(0x01) == ldexpf(1, -9));
}

TEST(fp8_e5m2_known_values)
{
    CHECK_EQ(fp8_e5m2_from_f32(1.0f), 0x3c);
    CHECK_EQ(fp8_e5m2_from_f32(1.125f), 0x3c);        /* tie → even */
    CHECK_EQ(fp8_e5m2_from_f32(1.375f), 0x3e);        /* tie → 1.5 */
    CHECK_EQ(fp8_e5m2_from_f32(57344.0f), 0x7b);
    CHECK_EQ(fp8_e5m2_from_f32(65504.0f), 0x7b);      /* saturates */
    CHECK_EQ(fp8_e5m2_from_f32(INFINITY), 0x7b);
    CHECK_EQ(fp8_e5m2_from_f32(ldexpf(1, -16)), 0x01);
    CHECK(isinf(fp8_e5m2_to_f32(0x7c)));
    CHECK(isnan(fp8_e5m2_to_f32(0x7e)));
    CHECK(fp8_e5m2_to_f32(0x7b) == 57344.0f);
}

TEST(fp8_every_code_round_trips)
{
    for (int c = 0; c < 256; c++) {
        float v = fp8_e4m3_to_f32((uint8_t)c);
        if (!isnan(v)) CHECK_EQ(fp8_e4m3_from_f32(v), c);
        float u = fp8_e5m2_to_f32((uint8_t)c);
        if (!isnan(u) && !isinf(u)) CHECK_EQ(fp8_e5m2_from_f32(u), c);
        /* midpoints between neighbours round to the even code */
        if ((c & 0x7f) < 0x7e && c != 0x80) {
            float hi = fp8_e4m3_to_f32((uint8_t)(c + 1));
            if (!isnan(hi) && (c & 0x80) == 0) {
                float mid = (v + hi) / 2;
                CHECK_EQ(fp8_e4m3_from_f32(mid), (c & 1) ? c + 1 : c);
            }
        }
    }
}

TEST(fp8_scale_and_quantization)
{
    const struct quant_scheme *s = quant_scheme_by_name("e4m3_e4m3_f16");
    /* maxabs 448 → scale 1; tiny tensors get the floor 1/(448*512) in f16 */
    CHECK(quant_fp8_scale(s, 448.0f) == 1.0f);
    CHECK(quant_fp8_scale(s, 0.0f) == 73.0f * ldexpf(1, -24));
    CHECK(quant_fp8_scale(s, NAN) == 73.0f * ldexpf(1, -24));
    float w[300];
    for (int i = 0; i < 300; i++) w[i] = quant_round(DT_F16, uniform() * 10);
    w[7] = NAN;
    w[8] = INFINITY;
    w[9] = -0.0f;
    float scale = quant_fp8_scale(s, 10.0f);
    uint8_t a[300], b[300];
    quant_fp8_ref(s, w, 300, scale, a);
    quant_fp8(s, w, 300, scale, b);
    CHECK_MEM(a, b, 300);
    float back[300];
    quant_fp8_dequant(s, a, 300, scale, back);
    for (int i = 10; i < 300; i++) CHECK(fabsf(back[i] - w[i]) <= fabsf(w[i]) / 16 + scale);
    const struct quant_scheme *e5 = quant_scheme_by_name("e5m2_e5m2_f16");
    quant_fp8_ref(e5, w, 300, 1.0f, a);
    quant_fp8(e5, w, 300, 1.0f, b);
    CHECK_MEM(a, b, 300);
}

TEST(maxabs_pieces_merge_to_the_sequential_result)
{
    float w[97];
    for (int trial = 0; trial < 400; trial++) {
        for (int i = 0; i < 97; i++) w[i] = uniform();
        int nn = trial % 4;
        for (int j = 0; j < nn; j++) w[rnd32() % 97] = NAN;
        if (trial % 7 == 0) w[96] = NAN;
        float want = quant_maxabs_ref(DT_F16, w, 97);
        size_t cut1 = 1 + rnd32() % 40, cut2 = cut1 + 1 + rnd32() % 40;
        struct quant_maxabs_part p[3];
        quant_maxabs_part(w, cut1, &p[0]);
        quant_maxabs_part(w + cut1, cut2 - cut1, &p[1]);
        quant_maxabs_part(w + cut2, 97 - cut2, &p[2]);
        float got = quant_maxabs_merge(DT_F16, p, 3);
        CHECK((isnan(want) && isnan(got)) || want == got);
    }
}

TEST(fast_conversions_equal_reference_for_every_16_bit_pattern)
{
    static uint16_t src[65536];
    static float a[65536], b[65536];
    static uint16_t ea[65536], eb[65536];
    for (int i = 0; i < 65536; i++) src[i] = (uint16_t)i;
    enum dtype srcs[] = {DT_F16, DT_BF16}, models[] = {DT_F16, DT_BF16, DT_F32};
    for (int si = 0; si < 2; si++)
        for (int mi = 0; mi < 3; mi++) {
            quant_to_model_ref(srcs[si], src, 65536, models[mi], a);
            quant_to_model(srcs[si], src, 65536, models[mi], b);
            CHECK_MEM(a, b, sizeof a);
            quant_encode_ref(models[mi], a, 65536, ea);
            quant_encode(models[mi], a, 65536, eb);
            CHECK_MEM(ea, eb, sizeof ea);
        }
    /* float32 sources, including ties to even and NaN */
    static float f[4096];
    for (int i = 0; i < 4096; i++) f[i] = f32_from_bits(rnd32() ^ (rnd32() << 16));
    f[0] = f32_from_bits(0x3f808000); /* bf16 tie → even */
    f[1] = f32_from_bits(0x33000000); /* f16 tie at 2^-25 */
    f[2] = NAN;
    for (int mi = 0; mi < 3; mi++) {
        quant_to_model_ref(DT_F32, f, 4096, models[mi], a);
        quant_to_model(DT_F32, f, 4096, models[mi], b);
        CHECK_MEM(a, b, 4096 * sizeof(float));
    }
}

TEST(float32_values_are_stored_as_tvmjs_bfloat16)
{
    float v[6] = {1.0f, f32_from_bits(0x3f808000), f32_from_bits(0x3f818000), INFINITY, NAN,
                  f32_from_bits(0x7f7fffff)};
    uint16_t out[6];
    quant_encode(DT_F32, v, 6, out);
    CHECK_EQ(out[0], 0x3f80);
    CHECK_EQ(out[1], 0x3f80); /* tie → even */
    CHECK_EQ(out[2], 0x3f82); /* tie → even (up) */
    CHECK_EQ(out[3], 0x7f80);
    CHECK_EQ(out[4], 0x7fc0);
    CHECK_EQ(out[5], 0x7f7f); /* beyond the bf16 limit: truncated, not inf */
}

TEST_MAIN()
