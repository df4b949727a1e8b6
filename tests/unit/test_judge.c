/* The judging criteria on hand-made inputs. */
#include <math.h>

#include "common/engine/check.h"
#include "common/engine/judge.h"
#include "tests/unit/test.h"

TEST(kl_divergence_and_log_softmax_match_hand_values)
{
    float p[2] = {0.0f, 0.0f};            /* (1/2, 1/2) */
    float q[2] = {0.0f, (float)log(3.0)}; /* (1/4, 3/4) */
    /* KL = 1/2 ln(2) + 1/2 ln(2/3) */
    CHECK(fabs(kl_divergence(p, q, 2) - (0.5 * log(2.0) + 0.5 * log(2.0 / 3.0))) < 1e-7);
    CHECK(kl_divergence(p, p, 2) == 0);
    float shifted[2] = {5.0f, 5.0f};      /* logits are shift invariant */
    CHECK(fabs(kl_divergence(p, shifted, 2)) < 1e-12);
    double ls[3];
    float l[3] = {1, 2, 3};
    log_softmax(l, 3, ls);
    double z = log(exp(1.0) + exp(2.0) + exp(3.0));
    CHECK(fabs(ls[2] - (3 - z)) < 1e-12);
    CHECK_EQ(argmax_f(l, 3), 2);
}

TEST(repeated_tails_are_found)
{
    int32_t loop[] = {5, 6, 7, 1, 2, 1, 2, 1, 2, 1, 2};
    CHECK_EQ(repeated_tail(loop, 11, 8), 8);
    int32_t same[] = {9, 9, 9, 9};
    CHECK_EQ(repeated_tail(same, 4, 8), 4);
    int32_t story[] = {1, 2, 3, 4, 5, 6, 7, 8, 2, 3};
    CHECK_EQ(repeated_tail(story, 10, 8), 0);
    int32_t once[] = {1, 2, 3, 1, 2};
    CHECK_EQ(repeated_tail(once, 5, 8), 0); /* less than two full cycles */
}

TEST(utf8_and_printable)
{
    CHECK(text_is_clean_utf8("caf\xc3\xa9", 5));
    CHECK(!text_is_clean_utf8("caf\xc3", 4));           /* cut mid-character */
    CHECK(!text_is_clean_utf8("a\xef\xbf\xbd" "b", 5)); /* U+FFFD */
    CHECK(!text_is_clean_utf8("\xed\xa0\x80", 3));      /* a surrogate */
    CHECK(printable_ratio("hello\n", 6) == 1.0);
    CHECK(printable_ratio("a\x01\x02\x03", 4) == 0.25);
}

static struct judge_input good_input(void)
{
    static const int32_t ids[] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26};
    return (struct judge_input){ids, 17, "Once upon a time, there was a girl.", 35,
                                17 * log(8.0), 17, 17 * log(3.0), true, "eos", true, 512};
}

TEST(a_healthy_answer_passes)
{
    struct judge_input in = good_input();
    struct judge_thresholds t = judge_default_thresholds();
    struct judgement j;
    judge(&in, &t, &j);
    CHECK(j.pass);
    CHECK(fabs(j.prompt_ppl - 8.0) < 1e-9);
    CHECK(fabs(j.output_ppl - 3.0) < 1e-9);
    CHECK(judge_diagnosis(&j, NULL) == NULL);
}

TEST(each_failure_names_its_stage)
{
    struct judge_thresholds t = judge_default_thresholds();
    struct judgement j;
    struct judge_input in = good_input();
    in.text = "   ";
    in.text_len = 3;
    judge(&in, &t, &j);
    CHECK(!j.non_empty);
    CHECK_STR(judge_diagnosis(&j, NULL), "config/tokenizer");

    /* a prompt read much worse than a working model reads it, by a model
     * whose tokenizer round-trips: a damaged model, not a tokenizer */
    in = good_input();
    in.prompt_nll = 17 * log(400.0); /* ppl 400 of a 512 vocabulary */
    judge(&in, &t, &j);
    CHECK(!j.coherent && !j.misread);
    CHECK_CONTAINS(j.incoherence, "prompt perplexity");
    CHECK_STR(judge_diagnosis(&j, NULL), "quantization");
    struct judge_evidence no_round_trip = {.round_trips = false, .quality_ok = true};
    CHECK_STR(judge_diagnosis(&j, &no_round_trip), "config/tokenizer");

    /* confidently wrong about every prompt token: ids of another vocabulary */
    in = good_input();
    in.prompt_nll = 17 * log(512.0 * 4.5);
    judge(&in, &t, &j);
    CHECK(!j.coherent && j.misread);
    CHECK_CONTAINS(j.incoherence, "cannot read the tokenized prompt");
    CHECK_STR(judge_diagnosis(&j, NULL), "config/tokenizer");

    /* the unquantized reference agrees and is just as incoherent */
    in = good_input();
    in.output_nll = 17 * log(100.0);
    judge(&in, &t, &j);
    struct judge_evidence alike = {.round_trips = true, .has_reference = true, .quality_ok = true,
                                   .reference_fails_too = true};
    CHECK_STR(judge_diagnosis(&j, &alike), "source model");
    alike.quality_ok = false;     /* ... but far from the compiled model */
    CHECK_STR(judge_diagnosis(&j, &alike), "quantization");
    alike.quality_ok = true;
    alike.reference_fails_too = false;
    CHECK_STR(judge_diagnosis(&j, &alike), "quantization");

    in = good_input();
    in.output_nll = 17 * log(100.0); /* unsure of itself */
    judge(&in, &t, &j);
    CHECK(!j.coherent);
    CHECK_STR(judge_diagnosis(&j, NULL), "quantization");

    static const int32_t loop[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    in = good_input();
    in.ids = loop;
    in.n_ids = 20;
    judge(&in, &t, &j);
    CHECK(!j.coherent);
    CHECK_CONTAINS(j.incoherence, "repeating loop");
    CHECK_STR(judge_diagnosis(&j, NULL), "quantization");

    in = good_input();
    in.text = "ab\xc3";
    in.text_len = 3;
    judge(&in, &t, &j);
    CHECK(!j.valid_utf8 && !j.pass);

    in = good_input();
    in.logits_finite = false;
    judge(&in, &t, &j);
    CHECK(!j.finite && !j.pass);
    CHECK_STR(judge_diagnosis(&j, NULL), "quantization");

    /* a short prompt is not judged by its perplexity */
    in = good_input();
    in.prompt_nll = 2 * log(5000.0);
    in.prompt_scored = 2;
    judge(&in, &t, &j);
    CHECK(j.coherent && j.pass);
    in.prompt_nll = 8 * log(5000.0);
    in.prompt_scored = 8;
    judge(&in, &t, &j);
    CHECK(!j.coherent);

    in = good_input();
    in.deterministic = false;
    judge(&in, &t, &j);
    CHECK(!j.pass);
}

TEST(activation_scales_fit_within_bounds)
{
    CHECK(judge_scale_fits(1.0));
    CHECK(judge_scale_fits(0.2));                /* the prompts are milder than the sample */
    CHECK(judge_scale_fits(1.0 / 256) && judge_scale_fits(4.0));
    CHECK(!judge_scale_fits(1.0 / 1000));        /* scales a thousand times too large */
    CHECK(!judge_scale_fits(1000.0));            /* ... too small: activations saturate */
    CHECK(!judge_scale_fits(4.01));
    CHECK(!judge_scale_fits(NAN));
}

TEST(kl_percentiles_interpolate_like_numpy)
{
    /* numpy.percentile([0..9] shuffled, q) with linear interpolation:
     * median 4.5, 99% 8.91, 99.9% 8.991 */
    double v[10] = {7, 2, 9, 0, 5, 3, 8, 1, 6, 4};
    struct kl_stats k;
    kl_stats_of(v, 10, &k);
    CHECK(fabs(k.median - 4.5) < 1e-12);
    CHECK(fabs(k.p99 - 8.91) < 1e-12);
    CHECK(fabs(k.p999 - 8.991) < 1e-12);
    CHECK(k.min == 0 && k.max == 9 && fabs(k.mean - 4.5) < 1e-12);
    double one = 0.25;
    kl_stats_of(&one, 1, &k);
    CHECK(k.median == 0.25 && k.p999 == 0.25);
}

TEST_MAIN()
