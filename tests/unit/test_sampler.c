/* Sampler and stop rules, on hand-made logits with hand-computed results. */
#include <math.h>

#include "common/engine/genstop.h"
#include "common/engine/sampler.h"
#include "tests/unit/test.h"

static struct sampler_params greedy(void)
{
    struct sampler_params p = sampler_defaults();
    p.temperature = 0;
    return p;
}

TEST(greedy_takes_the_first_largest_logit)
{
    float l[] = {1, 3, 2, 3};
    struct sampler_params p = greedy();
    CHECK_EQ(sampler_sample(&p, l, 4, NULL, NULL), 1);
    /* temperature at MLC's threshold 1e-5 is still greedy */
    float l2[] = {1, 3, 2, 3};
    p.temperature = 1e-5;
    CHECK_EQ(sampler_sample(&p, l2, 4, NULL, NULL), 1);
}

TEST(penalties_follow_mlc_formula)
{
    /* id0 seen twice, id1 once; presence .5, frequency .25, repetition 2:
     * id0: 2 - (.5 + 2*.25) = 1 > 0 -> 1/2 = .5
     * id1: -2 - (.5 + .25) = -2.75 < 0 -> *2 = -5.5
     * id2 never generated: unchanged */
    struct penalty_state ps;
    penalty_init(&ps, 3);
    penalty_add(&ps, 0);
    penalty_add(&ps, 1);
    penalty_add(&ps, 0);
    struct sampler_params p = greedy();
    p.presence_penalty = 0.5;
    p.frequency_penalty = 0.25;
    p.repetition_penalty = 2.0;
    float l[] = {2.0f, -2.0f, 1.0f};
    sampler_process_logits(&p, l, 3, &ps);
    CHECK(l[0] == 0.5f);
    CHECK(l[1] == -5.5f);
    CHECK(l[2] == 1.0f);
    /* so greedy now picks id2 where it would have picked id0 */
    float l2[] = {2.0f, -2.0f, 1.0f};
    CHECK_EQ(sampler_sample(&p, l2, 3, &ps, NULL), 2);
    float l3[] = {2.0f, -2.0f, 1.0f};
    struct sampler_params plain = greedy();
    CHECK_EQ(sampler_sample(&plain, l3, 3, &ps, NULL), 0);
    penalty_reset(&ps);
    float l4[] = {2.0f, -2.0f, 1.0f};
    CHECK_EQ(sampler_sample(&p, l4, 3, &ps, NULL), 0);
    penalty_free(&ps);
}

TEST(repetition_penalty_alone_divides_positive_and_multiplies_negative)
{
    struct penalty_state ps;
    penalty_init(&ps, 2);
    penalty_add(&ps, 0);
    penalty_add(&ps, 1);
    struct sampler_params p = greedy();
    p.repetition_penalty = 1.25;
    float l[] = {5.0f, -4.0f};
    sampler_process_logits(&p, l, 2, &ps);
    CHECK(l[0] == 4.0f);
    CHECK(l[1] == -5.0f);
    penalty_free(&ps);
}

TEST(logits_past_active_vocab_size_are_masked)
{
    float l[] = {0, 1, 5, 7};
    struct sampler_params p = greedy();
    p.active_vocab_size = 2;
    CHECK_EQ(sampler_sample(&p, l, 4, NULL, NULL), 1);
    CHECK(isinf(l[2]) && l[2] < 0);
    /* sampling never picks a masked token either */
    struct sampler_params q = sampler_defaults();
    q.active_vocab_size = 2;
    for (int i = 0; i < 20; i++) {
        float m[] = {0, 0, 50, 50};
        CHECK(sampler_sample_u(&q, m, 4, NULL, i / 20.0) < 2);
    }
}

/* probabilities .5, .3, .2 */
static void three(float *l)
{
    l[0] = logf(0.5f);
    l[1] = logf(0.3f);
    l[2] = logf(0.2f);
}

TEST(top_p_keeps_tokens_until_the_sum_reaches_top_p)
{
    float l[3];
    struct sampler_params p = sampler_defaults();
    p.top_p = 0.6;   /* .5 < .6 so .3 joins; kept {0,1}, renormalised by .8 */
    three(l);
    CHECK_EQ(sampler_sample_u(&p, l, 3, NULL, 0.62), 0);   /* .62*.8 = .496 < .5 */
    three(l);
    CHECK_EQ(sampler_sample_u(&p, l, 3, NULL, 0.63), 1);   /* .504 >= .5 */
    three(l);
    CHECK_EQ(sampler_sample_u(&p, l, 3, NULL, 0.999), 1);  /* never token 2 */
    p.top_p = 0.5;   /* .5 alone reaches it */
    three(l);
    CHECK_EQ(sampler_sample_u(&p, l, 3, NULL, 0.99), 0);
}

TEST(top_k_keeps_the_k_most_likely)
{
    float l[3];
    struct sampler_params p = sampler_defaults();
    p.top_k = 2;
    three(l);
    CHECK_EQ(sampler_sample_u(&p, l, 3, NULL, 0.7), 1);    /* .56 in [.5, .8) */
    three(l);
    CHECK_EQ(sampler_sample_u(&p, l, 3, NULL, 0.999), 1);
    p.top_k = 1;
    three(l);
    CHECK_EQ(sampler_sample_u(&p, l, 3, NULL, 0.999), 0);
}

TEST(full_distribution_is_sampled_in_id_order)
{
    /* probabilities .25 and .75 */
    struct sampler_params p = sampler_defaults();
    float l[] = {0, logf(3)};
    CHECK_EQ(sampler_sample_u(&p, l, 2, NULL, 0.2), 0);
    float l2[] = {0, logf(3)};
    CHECK_EQ(sampler_sample_u(&p, l2, 2, NULL, 0.3), 1);
    /* temperature 2: probabilities 1/(1+sqrt 3) = .366 and .634 */
    p.temperature = 2;
    float l3[] = {0, logf(3)};
    CHECK_EQ(sampler_sample_u(&p, l3, 2, NULL, 0.3), 0);
    float l4[] = {0, logf(3)};
    CHECK_EQ(sampler_sample_u(&p, l4, 2, NULL, 0.37), 1);
}

TEST(generator_matches_reference_xoshiro256ss)
{
    /* values from an independent Python implementation (splitmix64 seeding,
     * xoshiro256**), seed 42 */
    struct sampler_rng r;
    sampler_seed(&r, 42);
    CHECK(sampler_next(&r) == 0x15780b2e0c2ec716ULL);
    CHECK(sampler_next(&r) == 0x6104d9866d113a7eULL);
    CHECK(sampler_next(&r) == 0xae17533239e499a1ULL);
    sampler_seed(&r, 42);
    CHECK(sampler_uniform(&r) == 0.08386297105988216);
}

TEST(same_seed_same_tokens_and_frequencies_follow_probabilities)
{
    struct sampler_params p = sampler_defaults();
    struct sampler_rng a, b;
    sampler_seed(&a, 7);
    sampler_seed(&b, 7);
    int ones = 0, same = 1;
    for (int i = 0; i < 20000; i++) {
        float l[] = {0, logf(3)}, m[] = {0, logf(3)};
        int32_t x = sampler_sample(&p, l, 2, NULL, &a), y = sampler_sample(&p, m, 2, NULL, &b);
        same &= x == y;
        ones += x == 1;
    }
    CHECK(same);
    CHECK(fabs(ones / 20000.0 - 0.75) < 0.015);
}

TEST(own_exp_is_accurate_and_exact_where_it_must_be)
{
    CHECK(sampler_exp(0) == 1.0);
    CHECK(sampler_exp(-1000) == 0.0);
    double worst = 0;
    for (double x = -700; x <= 700; x += 0.37) {
        double e = fabs(sampler_exp(x) - exp(x)) / exp(x);
        if (e > worst) worst = e;
    }
    CHECK(worst < 1e-14);
}

TEST(all_masked_gives_minus_one)
{
    float l[] = {-INFINITY, -INFINITY};
    struct sampler_params p = sampler_defaults();
    CHECK_EQ(sampler_sample_u(&p, l, 2, NULL, 0.5), -1);
}

TEST(parameters_are_checked)
{
    struct sampler_params p = sampler_defaults();
    CHECK_EQ(sampler_check(&p), 0);
    p.top_p = 0;
    CHECK_EQ(sampler_check(&p), -1);
    p = sampler_defaults();
    p.temperature = -1;
    CHECK_EQ(sampler_check(&p), -1);
    p = sampler_defaults();
    p.repetition_penalty = 0;
    CHECK_EQ(sampler_check(&p), -1);
}

static enum stop_reason feed(struct gen_stop *g, int32_t id, const char *text, struct buf *out)
{
    return gen_stop_feed(g, id, text, strlen(text), out);
}

TEST(stop_token_ends_without_showing_its_text)
{
    int32_t ids[] = {2, 128009};
    struct gen_stop g;
    gen_stop_init(&g, ids, 2, NULL, 0, 0);
    struct buf out = BUF_INIT;
    buf_init(&out);
    CHECK_EQ(feed(&g, 5, "Hello", &out), STOP_NONE);
    CHECK_EQ(feed(&g, 128009, "<|eot_id|>", &out), STOP_TOKEN);
    CHECK_STR(out.data, "Hello");
    gen_stop_free(&g);
    buf_free(&out);
}

TEST(stop_string_is_found_across_tokens_and_not_shown)
{
    const char *strs[] = {"<|end|>"};
    struct gen_stop g;
    gen_stop_init(&g, NULL, 0, strs, 1, 0);
    struct buf out = BUF_INIT;
    buf_init(&out);
    CHECK_EQ(feed(&g, 1, "Hello <", &out), STOP_NONE);
    CHECK_STR(out.data, "Hello ");          /* "<" might start the stop string */
    CHECK_EQ(feed(&g, 2, "|en", &out), STOP_NONE);
    CHECK_STR(out.data, "Hello ");
    CHECK_EQ(feed(&g, 3, "d|> after", &out), STOP_STRING);
    CHECK_STR(out.data, "Hello ");
    gen_stop_free(&g);
    buf_free(&out);
}

TEST(held_text_is_released_when_it_is_no_stop_string)
{
    const char *strs[] = {"STOP", "<|end|>"};
    struct gen_stop g;
    gen_stop_init(&g, NULL, 0, strs, 2, 0);
    struct buf out = BUF_INIT;
    buf_init(&out);
    CHECK_EQ(feed(&g, 1, "a <|e", &out), STOP_NONE);
    CHECK_STR(out.data, "a ");
    CHECK_EQ(feed(&g, 2, "x ST", &out), STOP_NONE);
    CHECK_STR(out.data, "a <|ex ");
    CHECK_EQ(feed(&g, 3, "OP", &out), STOP_STRING);
    CHECK_STR(out.data, "a <|ex ");
    gen_stop_free(&g);
    buf_free(&out);
}

TEST(earliest_stop_string_wins)
{
    const char *strs[] = {"bb", "a"};
    struct gen_stop g;
    gen_stop_init(&g, NULL, 0, strs, 2, 0);
    struct buf out = BUF_INIT;
    buf_init(&out);
    CHECK_EQ(feed(&g, 1, "xbbya", &out), STOP_STRING);
    CHECK_STR(out.data, "x");
    gen_stop_free(&g);
    buf_free(&out);
}

TEST(max_tokens_stops_and_flushes)
{
    const char *strs[] = {"!!"};
    struct gen_stop g;
    gen_stop_init(&g, NULL, 0, strs, 1, 3);
    struct buf out = BUF_INIT;
    buf_init(&out);
    CHECK_EQ(feed(&g, 1, "a", &out), STOP_NONE);
    CHECK_EQ(feed(&g, 1, "b", &out), STOP_NONE);
    CHECK_EQ(feed(&g, 1, "c!", &out), STOP_LENGTH);
    CHECK_STR(out.data, "abc!");
    CHECK_EQ(feed(&g, 1, "d", &out), STOP_LENGTH);  /* stays stopped */
    CHECK_STR(out.data, "abc!");
    gen_stop_free(&g);
    buf_free(&out);
}

TEST_MAIN()
