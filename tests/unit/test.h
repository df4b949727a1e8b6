/* A tiny unit-test harness printing TAP ("ok N - name" / "not ok N - name"
 * with "# ..." details), which tests/run counts.
 *
 *   TEST(rounds_ties_to_even) { CHECK_EQ(f32_to_f16(x), 0x3c00); }
 *   TEST_MAIN()
 */
#ifndef MLC_TEST_H
#define MLC_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
};

extern struct test_case test_cases[];
extern int test_count;
extern int test_failed_now;

#define TEST(test_fn)                                                           \
    static void test_fn(void);                                                  \
    __attribute__((constructor)) static void register_##test_fn(void)          \
    {                                                                           \
        test_cases[test_count].name = #test_fn;                                 \
        test_cases[test_count++].fn = test_fn;                                  \
    }                                                                           \
    static void test_fn(void)

#define TEST_FAIL_AT(...)                                                       \
    do {                                                                        \
        printf("# %s:%d: ", __FILE__, __LINE__);                                \
        printf(__VA_ARGS__);                                                    \
        printf("\n");                                                           \
        test_failed_now = 1;                                                    \
    } while (0)

#define CHECK(cond)                                                             \
    do {                                                                        \
        if (!(cond)) TEST_FAIL_AT("CHECK(%s) failed", #cond);                   \
    } while (0)

#define CHECK_EQ(a, b)                                                          \
    do {                                                                        \
        long long va_ = (long long)(a), vb_ = (long long)(b);                   \
        if (va_ != vb_) TEST_FAIL_AT("%s == %lld, expected %s == %lld", #a, va_, #b, vb_); \
    } while (0)

#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *sa_ = (a), *sb_ = (b);                                      \
        if (!sa_ || !sb_ || strcmp(sa_, sb_))                                   \
            TEST_FAIL_AT("%s is \"%s\", expected \"%s\"", #a, sa_ ? sa_ : "(null)", \
                         sb_ ? sb_ : "(null)");                                 \
    } while (0)

/* substring */
#define CHECK_CONTAINS(hay, needle)                                             \
    do {                                                                        \
        const char *h_ = (hay), *n_ = (needle);                                 \
        if (!h_ || !strstr(h_, n_))                                             \
            TEST_FAIL_AT("\"%s\" does not contain \"%s\"", h_ ? h_ : "(null)", n_); \
    } while (0)

#define CHECK_MEM(a, b, n)                                                      \
    do {                                                                        \
        if (memcmp((a), (b), (n))) TEST_FAIL_AT("%s and %s differ", #a, #b);    \
    } while (0)

#define TEST_MAIN()                                                             \
    struct test_case test_cases[512];                                           \
    int test_count;                                                             \
    int test_failed_now;                                                        \
    int main(int argc, char **argv)                                             \
    {                                                                           \
        int failed = 0;                                                         \
        const char *only = argc > 1 ? argv[1] : NULL;                           \
        int n = 0;                                                              \
        for (int i = 0; i < test_count; i++) {                                  \
            if (only && strcmp(only, test_cases[i].name)) continue;             \
            test_failed_now = 0;                                                \
            test_cases[i].fn();                                                 \
            fflush(stderr);                                                     \
            printf("%s %d - %s\n", test_failed_now ? "not ok" : "ok", ++n,     \
                   test_cases[i].name);                                         \
            fflush(stdout);                                                     \
            failed += test_failed_now;                                          \
        }                                                                       \
        printf("1..%d\n", n);                                                   \
        return failed ? 1 : 0;                                                  \
    }

#endif
