/* The lowering, passes and CPU executor on the real stories260K model
 * (tests/unit/stories.h). Greedy decoding must give the known 60 tokens at
 * every optimisation level on every kernel set, and batched decoding the
 * same logits as one-by-one decoding, for float32 weights and for weights
 * quantized with every kind of scheme. */
#include "common/err.h"
#include "tests/unit/stories.h"
#include "tests/unit/test.h"

static const struct kernel_set *sets[4];
static int nsets;

static void find_sets(void)
{
    if (nsets) return;
    const char *names[] = {"reference", "generic", "avx2", "avx512"};
    for (int i = 0; i < 4; i++)
        if ((sets[nsets] = kernels_by_name(names[i]))) nsets++;
}

static int build(struct module *m, const struct lower_spec *spec, int level)
{
    if (lower_build(spec, m) != 0) {
        TEST_FAIL_AT("lower_build: %s", last_error());
        return -1;
    }
    CHECK_EQ(passes_run(m, level, NULL, 0, NULL, NULL), 0);
    return 0;
}

static void greedy(int level, const struct kernel_set *k)
{
    struct store s;
    struct lower_spec spec;
    load_stories(&s, &spec);
    struct module m;
    if (build(&m, &spec, level) != 0) {
        free_store(&s);
        return;
    }
    struct tensor_source src = {store_lookup, &s};
    struct executor ex;
    CHECK_EQ(executor_init(&ex, &m, &src, 2, 0), 0);
    if (k) CHECK_EQ(executor_use_kernels(&ex, k), 0);
    int seq = kv_cache_add_sequence(&ex.kv);
    int32_t ids[64] = {1};
    float x[64 * 64], logits[512];
    CHECK_EQ(executor_embed(&ex, ids, 1, x), 0);
    CHECK_EQ(executor_prefill(&ex, seq, x, 1, logits), 0);
    for (int t = 1; t < 61; t++) {
        ids[t] = stories_argmax(logits, 512);
        if (ids[t] != stories_expected[t]) {
            TEST_FAIL_AT("O%d, %s kernels: token %d is %d, expected %d", level, ex.k->name, t, ids[t],
                         stories_expected[t]);
            break;
        }
        CHECK_EQ(executor_embed(&ex, &ids[t], 1, x), 0);
        CHECK_EQ(executor_decode(&ex, &seq, x, 1, logits), 0);
    }
    executor_free(&ex);
    module_free(&m);
    free_store(&s);
}

TEST(greedy_stories_O0) { greedy(0, NULL); }
TEST(greedy_stories_O1) { greedy(1, NULL); }
TEST(greedy_stories_O2) { greedy(2, NULL); }
TEST(greedy_stories_every_kernel_set)
{
    find_sets();
    for (int i = 0; i < nsets; i++) greedy(2, sets[i]);
}

/* Three sequences prefilled in chunks, then decoded together and one by
 * one: the logits must be the same bits. */
static void batched_equals_single(const struct lower_spec *spec, struct store *s, const struct kernel_set *k)
{
    struct module m;
    if (build(&m, spec, 2) != 0) return;
    struct tensor_source src = {store_lookup, s};
    struct executor ex;
    if (executor_init(&ex, &m, &src, 2, 0) != 0) {
        TEST_FAIL_AT("%s: executor_init: %s", spec->quantization, last_error());
        module_free(&m);
        return;
    }
    CHECK_EQ(executor_use_kernels(&ex, k), 0);
    int32_t prompts[3][40];
    int lens[3] = {37, 5, 20};
    for (int q = 0; q < 3; q++)
        for (int i = 0; i < lens[q]; i++) prompts[q][i] = (int32_t)(stories_expected[i % 61] + q) % 512;
    float *x = xmalloc(sizeof(float) * 64 * 64), batch_logits[3 * 512], single[512];
    int seqs[3], solo[3];
    for (int q = 0; q < 3; q++) {
        seqs[q] = kv_cache_add_sequence(&ex.kv);
        solo[q] = kv_cache_add_sequence(&ex.kv);
        float lg[512];
        for (int at = 0; at < lens[q]; at += 16) {
            int n = lens[q] - at < 16 ? lens[q] - at : 16;
            CHECK_EQ(executor_embed(&ex, prompts[q] + at, n, x), 0);
            CHECK_EQ(executor_prefill(&ex, seqs[q], x, n, lg), 0);
            CHECK_EQ(executor_prefill(&ex, solo[q], x, n, lg), 0);
        }
    }
    int32_t next[3] = {7, 300, 42};
    for (int step = 0; step < 3; step++) {
        CHECK_EQ(executor_embed(&ex, next, 3, x), 0);
        CHECK_EQ(executor_decode(&ex, seqs, x, 3, batch_logits), 0);
        for (int q = 0; q < 3; q++) {
            float one[64];
            CHECK_EQ(executor_embed(&ex, &next[q], 1, one), 0);
            CHECK_EQ(executor_decode(&ex, &solo[q], one, 1, single), 0);
            if (memcmp(single, batch_logits + q * 512, sizeof single)) {
                TEST_FAIL_AT("%s, %s kernels: step %d, sequence %d: batched logits differ", spec->quantization,
                             k->name, step, q);
                step = 3;
                break;
            }
        }
        for (int q = 0; q < 3; q++) next[q] = stories_argmax(batch_logits + q * 512, 512);
    }
    free(x);
    executor_free(&ex);
    module_free(&m);
}

TEST(chunked_prefill_and_batched_decode_agree_exactly)
{
    find_sets();
    struct store s;
    struct lower_spec spec;
    load_stories(&s, &spec);
    for (int i = 0; i < nsets; i++) batched_equals_single(&spec, &s, sets[i]);
    free_store(&s);
}

TEST(batched_decode_equals_single_on_quantized_weights)
{
    find_sets();
    static const char *schemes[] = {"q4f16_1", "q4bf16_1", "q4f32_1", "q4f16_0", "q3f16_1", "q3f16_0",
                                    "q0f16",   "q0bf16",   "e5m2_e5m2_f16", "e4m3_e4m3_f16"};
    struct store s;
    struct lower_spec spec;
    load_stories(&s, &spec);
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        struct store q;
        struct lower_spec qspec;
        quantize_stories(&s, &q, &qspec, schemes[i]);
        for (int k = 0; k < nsets; k++) batched_equals_single(&qspec, &q, sets[k]);
        free_store(&q);
    }
    free_store(&s);
}

TEST(errors_name_the_limit)
{
    struct store s;
    struct lower_spec spec;
    load_stories(&s, &spec);
    struct module m;
    CHECK_EQ(build(&m, &spec, 2), 0);
    struct tensor_source src = {store_lookup, &s};
    struct executor ex;
    CHECK_EQ(executor_init(&ex, &m, &src, 2, 0), 0);
    int seq = kv_cache_add_sequence(&ex.kv);
    float *x = xmalloc(sizeof(float) * 64 * 64), logits[512];
    /* a chunk larger than the prefill bound is refused */
    CHECK_EQ(executor_prefill(&ex, seq, x, 17, logits), -1);
    CHECK_CONTAINS(last_error(), "the library allows 1 to 16");
    int32_t bad = 512;
    CHECK_EQ(executor_embed(&ex, &bad, 1, x), -1);
    CHECK_CONTAINS(last_error(), "token id 512 is outside the vocabulary");
    free(x);
    executor_free(&ex);
    module_free(&m);
    free_store(&s);
}

TEST_MAIN()
