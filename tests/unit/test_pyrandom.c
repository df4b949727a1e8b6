/* Python's random module (common/pyrandom.h): values printed by CPython
 * 3.11's random.seed / getrandbits / sample for the same seeds. t6070
 * compares many more cases with /usr/bin/python3 directly. */
#include "common/pyrandom.h"
#include "tests/unit/test.h"

TEST(getrandbits_matches_python_seed_0)
{
    struct pyrandom r;
    pyrandom_seed(&r, 0);
    CHECK_EQ(pyrandom_getrandbits(&r, 32), 3626764237u);
    CHECK_EQ(pyrandom_getrandbits(&r, 32), 1654615998u);
    CHECK_EQ(pyrandom_getrandbits(&r, 32), 3255389356u);
}

TEST(a_seed_above_32_bits_uses_both_words)
{
    struct pyrandom r;
    pyrandom_seed(&r, 12345678901ull);
    CHECK_EQ(pyrandom_getrandbits(&r, 32), 4063089813u);
    CHECK_EQ(pyrandom_getrandbits(&r, 32), 2562312935u);
}

static void check_sample(uint64_t seed, size_t n, size_t k, const size_t *want)
{
    struct pyrandom r;
    size_t got[32];
    pyrandom_seed(&r, seed);
    CHECK_EQ(pyrandom_sample(&r, n, k, got), 0);
    for (size_t i = 0; i < k; i++) CHECK_EQ(got[i], want[i]);
}

TEST(sample_from_a_small_population_uses_the_pool)
{
    static const size_t a[] = {6, 9, 0, 2};
    check_sample(0, 10, 4, a);
    static const size_t b[] = {24, 26, 2, 16, 32, 31, 25, 19, 30, 11, 18, 28, 6, 36, 4, 9};
    check_sample(0, 40, 16, b);
}

TEST(sample_from_a_large_population_rejects_repeats)
{
    static const size_t a[] = {331, 970, 154, 404, 666, 49, 74, 840, 548, 96, 374, 596, 59, 931, 519, 219};
    check_sample(7, 1000, 16, a);
}

TEST(sample_of_more_than_the_population_fails)
{
    struct pyrandom r;
    size_t out[4];
    pyrandom_seed(&r, 0);
    CHECK_EQ(pyrandom_sample(&r, 3, 4, out), -1);
}

TEST_MAIN()
