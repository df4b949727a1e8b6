/* The calibration dataset (formats/calib_dataset.h) on the fixture, with
 * the stories260K tokenizer. Expected samples: MLC-LLM's sample_requests
 * run by hand in Python (SentencePiece's encode for the token counts,
 * random.seed(S); random.sample(kept, 16)); t6070 repeats the comparison
 * live with /usr/bin/python3. */
#include <stdio.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "formats/calib_dataset.h"
#include "formats/tokenizer/tokenizer.h"
#include "tests/unit/test.h"

#define DATASET "tests/fixtures/calibration/sharegpt-stories.json"

static struct tokenizer *stories(void)
{
    struct tokenizer *t = tokenizer_load("tests/fixtures/stories260K");
    if (!t) fprintf(stderr, "# %s\n", last_error());
    return t;
}

static void check_sample(uint64_t seed, const size_t want[16][3])
{
    struct tokenizer *t = stories();
    CHECK(t != NULL);
    struct calib_dataset d;
    CHECK_EQ(calib_dataset_load(DATASET, t, 16, seed, &d), 0);
    CHECK_EQ(d.items, 44);
    CHECK_EQ(d.kept, 41);
    CHECK_EQ(d.n, 16);
    for (size_t i = 0; i < 16 && i < d.n; i++) {
        CHECK_EQ(d.requests[i].item, want[i][0]);
        CHECK_EQ(d.requests[i].prompt_tokens, (int64_t)want[i][1]);
        CHECK_EQ(d.requests[i].completion_tokens, (int64_t)want[i][2]);
    }
    calib_dataset_free(&d);
    tokenizer_free(t);
}

TEST(seed_0_draws_what_python_draws)
{
    static const size_t want[16][3] = {{27, 23, 79}, {29, 20, 85}, {2, 26, 88},  {18, 25, 87},
                                       {35, 16, 83}, {34, 25, 73}, {28, 25, 74}, {22, 21, 92},
                                       {33, 25, 82}, {25, 27, 89}, {21, 26, 95}, {31, 20, 82},
                                       {7, 20, 84},  {40, 27, 89}, {4, 24, 79},  {10, 23, 87}};
    check_sample(0, want);
}

TEST(seed_1_draws_another_sample)
{
    static const size_t want[16][3] = {{9, 21, 90},  {39, 17, 78}, {4, 24, 79},  {18, 25, 87},
                                       {8, 22, 104}, {34, 25, 73}, {31, 20, 82}, {33, 25, 82},
                                       {27, 23, 79}, {15, 21, 74}, {3, 13, 83},  {17, 25, 83},
                                       {0, 28, 80},  {29, 20, 85}, {14, 29, 94}, {38, 17, 71}};
    check_sample(1, want);
}

static char *write_temp(const char *text)
{
    char path[] = "/tmp/mlc-calib.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    if (write(fd, text, strlen(text)) < 0) path[0] = 0;
    close(fd);
    return xstrdup(path);
}

static const char *load_error(const char *text, size_t count)
{
    static char msg[1024];
    struct tokenizer *t = stories();
    char *path = write_temp(text);
    struct calib_dataset d;
    int rc = calib_dataset_load(path, t, count, 0, &d);
    snprintf(msg, sizeof msg, "%s", rc == 0 ? "(loaded)" : last_error());
    if (rc == 0) calib_dataset_free(&d);
    unlink(path);
    free(path);
    tokenizer_free(t);
    return msg;
}

TEST(bad_datasets_are_refused_naming_the_reason)
{
    CHECK_CONTAINS(load_error("{\"conversations\": []}", 1), "the top level must be a list");
    CHECK_CONTAINS(load_error("[1]", 1), "item 0 is not an object");
    CHECK_CONTAINS(load_error("[{\"turns\": []}]", 1), "item 0: \"conversations\" is missing, not a list");
    CHECK_CONTAINS(load_error("[{\"conversations\": [{\"value\": \"a b c d e f\"}, {\"from\": \"gpt\"}]}]", 1),
                 "item 0: conversations[1].value is missing");
    CHECK_CONTAINS(load_error("[{\"conversations\": [{\"value\": \"Once upon a time\"}, {\"value\": \"there was a "
                            "dog\"}]}", 1),
                 ":1:81: ']' expected near end of file");   /* truncated */
    CHECK_CONTAINS(load_error("[{\"conversations\": [{\"value\": \"Once upon a time\"}, {\"value\": \"there was a "
                            "dog\"}]}]", 2),
                 "1 of its 1 items are usable");
    CHECK_CONTAINS(load_error("[]", 0), "at least 1");
}

TEST_MAIN()
