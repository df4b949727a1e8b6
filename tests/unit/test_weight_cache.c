/* MLC's cache locations and policies, and the manifest of an entry. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/atomic.h"
#include "common/fsutil.h"
#include "formats/weight_cache.h"
#include "tests/unit/test.h"

static void set(const char *name, const char *value)
{
    if (value) setenv(name, value, 1);
    else unsetenv(name);
}

TEST(home_follows_mlc_then_xdg_then_home)
{
    set("MLC_LLM_HOME", "/m");
    set("XDG_CACHE_HOME", "/x");
    set("HOME", "/h");
    char *h = cache_home();
    CHECK_STR(h, "/m");
    free(h);
    set("MLC_LLM_HOME", "");
    h = cache_home();
    CHECK_STR(h, "/x/mlc_llm");
    free(h);
    set("MLC_LLM_HOME", NULL);
    set("XDG_CACHE_HOME", NULL);
    h = cache_home();
    CHECK_STR(h, "/h/.cache/mlc_llm");
    free(h);
    /* relative values are made absolute against the working directory */
    set("MLC_LLM_HOME", "rel/cache");
    char *cwd = getcwd(NULL, 0);
    char *want = path_join(cwd, "rel/cache");
    h = cache_home();
    CHECK_STR(h, want);
    free(h);
    free(want);
    free(cwd);
    set("MLC_LLM_HOME", NULL);
}

TEST(entries_are_named_like_mlc_with_the_revision_encoded)
{
    char *e = cache_entry_rel("org", "name", NULL);
    CHECK_STR(e, "hf/org/name");
    free(e);
    e = cache_entry_rel("org", "name", "v1.0");
    CHECK_STR(e, "hf/org/name@v1.0");
    free(e);
    e = cache_entry_rel("org", "name", "refs/pr/1");
    CHECK_STR(e, "hf/org/name@refs%2Fpr%2F1");
    free(e);
}

TEST(readonly_bases_split_on_colons)
{
    set("MLC_LLM_READONLY_WEIGHT_CACHE", "/a::/b/c:");
    size_t n;
    char **b = cache_readonly_bases(&n);
    CHECK_EQ(n, 2);
    CHECK_STR(b[0], "/a");
    CHECK_STR(b[1], "/b/c");
    cache_strings_free(b, n);
    set("MLC_LLM_READONLY_WEIGHT_CACHE", NULL);
    b = cache_readonly_bases(&n);
    CHECK_EQ(n, 0);
    CHECK(b == NULL);
}

TEST(policies_parse_in_any_case)
{
    enum cache_policy p;
    CHECK_EQ(cache_policy_parse("ON", &p), 0);
    CHECK_EQ(p, POLICY_ON);
    CHECK_EQ(cache_policy_parse("off", &p), 0);
    CHECK_EQ(p, POLICY_OFF);
    CHECK_EQ(cache_policy_parse("Redo", &p), 0);
    CHECK_EQ(p, POLICY_REDO);
    CHECK_EQ(cache_policy_parse("READONLY", &p), 0);
    CHECK_EQ(p, POLICY_READONLY);
    CHECK_EQ(cache_policy_parse("READ_ONLY", &p), -1);
    CHECK_EQ(cache_policy_parse("", &p), -1);
    CHECK_STR(cache_policy_name(POLICY_READONLY), "READONLY");
}

TEST(manifest_round_trip_and_damage)
{
    char dir[] = "/tmp/test_weight_cache.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    struct model_file files[2] = {{.name = "a.json", .size = 3}, {.name = "b/c.bin", .size = 0}};
    memset(files[0].sha256, 'a', 64);
    memset(files[1].sha256, '1', 64);
    char *inc[] = {"*.gguf"};
    struct manifest m = {.source = "HF://o/n", .revision = "main",
                         .commit = "0123456789abcdef0123456789abcdef01234567",
                         .include = inc, .ninclude = 1, .files = files, .nfiles = 2};
    CHECK_EQ(manifest_write(dir, &m), 0);
    struct manifest r;
    CHECK_EQ(manifest_read(dir, &r), 0);
    CHECK_STR(r.source, "HF://o/n");
    CHECK_STR(r.commit, m.commit);
    CHECK_EQ(r.ninclude, 1);
    CHECK_STR(r.include[0], "*.gguf");
    CHECK_EQ(r.nexclude, 0);
    CHECK_EQ(r.nfiles, 2);
    CHECK_STR(r.files[1].name, "b/c.bin");
    CHECK_STR(r.files[0].sha256, files[0].sha256);
    manifest_free(&r);

    char *path = path_join(dir, CACHE_MANIFEST);
    const char *bad = "{\"include\": [], \"exclude\": [], \"files\": [{\"name\": \"../x\", "
                      "\"size\": 1, \"sha256\": \"aa\"}]}";
    CHECK_EQ(atomic_write_file(path, bad, strlen(bad)), 0);
    CHECK_EQ(manifest_read(dir, &r), -1);
    CHECK_CONTAINS(last_error(), "files[0]: field 'name' must be a relative path");
    unlink(path);
    CHECK_EQ(manifest_read(dir, &r), 1); /* no manifest: made by another tool */
    free(path);
    rmdir(dir);
}

TEST_MAIN()
