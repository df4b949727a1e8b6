/* Buffers, paths, atomic publishing, digests and the thread pool. */
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic.h"
#include "common/buf.h"
#include "common/cli.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/pool.h"
#include "tests/unit/test.h"

static char *scratch(void)
{
    char tmpl[] = "/tmp/mlc-unit.XXXXXX";
    return xstrdup(mkdtemp(tmpl));
}

static int count_entries(const char *dir)
{
    char *cmd = xasprintf("ls -A '%s' | wc -l", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p && fscanf(p, "%d", &n) != 1) n = -1;
    if (p) pclose(p);
    free(cmd);
    return n;
}

TEST(buffer_grows_and_formats)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    CHECK_STR(b.data, "");
    for (int i = 0; i < 1000; i++) buf_printf(&b, "%d,", i);
    CHECK_EQ(b.len, strlen(b.data));
    CHECK(!strncmp(b.data, "0,1,2,", 6));
    buf_reset(&b);
    buf_add(&b, "a\0b", 3);
    CHECK_EQ(b.len, 3);
    size_t len;
    char *p = buf_detach(&b, &len);
    CHECK_EQ(len, 3);
    free(p);
    size_t out;
    CHECK(!size_mul(SIZE_MAX / 2, 3, &out));
    CHECK(size_add(1, 2, &out) && out == 3);
}

TEST(safe_relative_paths)
{
    CHECK(path_is_safe_relative("model.safetensors"));
    CHECK(path_is_safe_relative("sub/dir/file.bin"));
    CHECK(!path_is_safe_relative("/etc/passwd"));
    CHECK(!path_is_safe_relative("../x"));
    CHECK(!path_is_safe_relative("a/../../x"));
    CHECK(!path_is_safe_relative("a/.."));
    CHECK(!path_is_safe_relative("a//b"));
    CHECK(!path_is_safe_relative("./a"));
    CHECK(!path_is_safe_relative("a\\..\\b"));
    CHECK(!path_is_safe_relative(""));
    CHECK(!path_is_safe_relative("a\nb"));
}

TEST(atomic_file_appears_only_on_commit)
{
    char *dir = scratch();
    char *path = path_join(dir, "out.json");
    struct atomic_file f;
    CHECK_EQ(atomic_file_begin(&f, path), 0);
    CHECK_EQ(write(f.fd, "new", 3), 3);
    CHECK(!path_exists(path));
    CHECK_EQ(count_entries(dir), 1); /* only the temporary */
    CHECK_EQ(atomic_file_commit(&f), 0);
    struct buf b = BUF_INIT;
    buf_init(&b);
    CHECK_EQ(read_file(path, &b, 0), 0);
    CHECK_STR(b.data, "new");
    CHECK_EQ(count_entries(dir), 1);
    /* an aborted rewrite leaves the old content */
    CHECK_EQ(atomic_file_begin(&f, path), 0);
    CHECK_EQ(write(f.fd, "half", 4), 4);
    atomic_file_abort(&f);
    CHECK_EQ(read_file(path, &b, 0), 0);
    CHECK_STR(b.data, "new");
    CHECK_EQ(count_entries(dir), 1);
    struct stat st;
    stat(path, &st);
    CHECK((st.st_mode & 0777) != 0600); /* not mkstemp's private mode */
    buf_free(&b);
    remove_tree(dir);
    free(path);
    free(dir);
}

TEST(atomic_file_writes_devices_in_place)
{
    /* a device must stay the device: no temporary beside it, no rename
     * (/dev/zero: writes succeed and vanish, like /dev/null) */
    struct stat before, after;
    CHECK_EQ(stat("/dev/zero", &before), 0);
    struct atomic_file f;
    CHECK_EQ(atomic_file_begin(&f, "/dev/zero"), 0);
    CHECK(f.tmp == NULL);
    CHECK_EQ(write(f.fd, "x", 1), 1);
    CHECK_EQ(atomic_file_commit(&f), 0);
    CHECK_EQ(atomic_file_begin(&f, "/dev/zero"), 0);
    atomic_file_abort(&f);
    CHECK_EQ(stat("/dev/zero", &after), 0);
    CHECK(S_ISCHR(after.st_mode));
    CHECK_EQ(after.st_ino, before.st_ino);
}

TEST(atomic_dir_replaces_whole_trees)
{
    char *dir = scratch();
    char *dest = path_join(dir, "entry");
    struct atomic_dir d;
    CHECK_EQ(atomic_dir_begin(&d, dest), 0);
    char *f1 = path_join(d.tmp, "a");
    CHECK_EQ(atomic_write_file(f1, "1", 1), 0);
    free(f1);
    CHECK(!path_exists(dest));
    CHECK_EQ(atomic_dir_commit(&d, false), 0);
    CHECK(is_dir(dest));
    /* second version, replacing */
    CHECK_EQ(atomic_dir_begin(&d, dest), 0);
    char *f2 = path_join(d.tmp, "b");
    CHECK_EQ(atomic_write_file(f2, "2", 1), 0);
    free(f2);
    CHECK_EQ(atomic_dir_commit(&d, true), 0);
    char *a = path_join(dest, "a"), *b = path_join(dest, "b");
    CHECK(!path_exists(a));
    CHECK(path_exists(b));
    CHECK_EQ(count_entries(dir), 1);
    /* refusing to replace */
    CHECK_EQ(atomic_dir_begin(&d, dest), 0);
    char *f3 = path_join(d.tmp, "c");
    atomic_write_file(f3, "3", 1);
    free(f3);
    CHECK_EQ(atomic_dir_commit(&d, false), -1);
    CHECK_CONTAINS(last_error(), "already exists");
    CHECK_EQ(count_entries(dir), 1);
    free(a);
    free(b);
    remove_tree(dir);
    free(dest);
    free(dir);
}

TEST(stale_temporaries_of_dead_writers_are_removed)
{
    char *dir = scratch();
    /* pid 1 is alive; a pid past pid_max is not */
    char *dead = xasprintf("%s/.entry.tmp.%d.abc123", dir, 4194305 + 7);
    char *live = xasprintf("%s/.entry.tmp.1.abc123", dir);
    char *other = xasprintf("%s/keep.tmp", dir);
    mkdir(dead, 0700);
    mkdir(live, 0700);
    atomic_write_file(other, "", 0);
    CHECK_EQ(atomic_clean_stale(dir), 1);
    CHECK(!path_exists(dead));
    CHECK(path_exists(live));
    CHECK(path_exists(other));
    remove_tree(dir);
    free(dead);
    free(live);
    free(other);
    free(dir);
}

TEST(digests_match_known_vectors)
{
    char hex[HASH_HEX_MAX];
    hash_hex(HASH_SHA256, "abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    hash_hex(HASH_MD5, "abc", 3, hex);
    CHECK_STR(hex, "900150983cd24fb0d6963f7d28e17f72");
    hash_hex(HASH_SHA1, "abc", 3, hex);
    CHECK_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    /* incremental == one shot */
    struct hasher h;
    hasher_init(&h, HASH_SHA256);
    hasher_update(&h, "a", 1);
    hasher_update(&h, "bc", 2);
    hasher_final_hex(&h, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* git hash-object of "hello\n" */
    char *dir = scratch();
    char *p = path_join(dir, "hello");
    atomic_write_file(p, "hello\n", 6);
    CHECK_EQ(git_blob_id_file(p, hex), 0);
    CHECK_STR(hex, "ce013625030ba8dba906f756967f9e9ca394464a");
    CHECK_EQ(hash_file_hex(HASH_MD5, p, hex), 0);
    CHECK_STR(hex, "b1946ac92492d2347c6235b4d2611184");
    remove_tree(dir);
    free(p);
    free(dir);
}

static void add_square(void *ctx, size_t i)
{
    atomic_fetch_add((atomic_ullong *)ctx, (unsigned long long)(i * i));
}

static void add_one(void *arg)
{
    atomic_fetch_add((atomic_ullong *)arg, 1);
}

TEST(pool_runs_every_index_once)
{
    for (int threads = 1; threads <= 4; threads++) {
        struct pool *p = pool_create(threads);
        atomic_ullong sum = 0;
        pool_for(p, 1000, add_square, &sum);
        CHECK_EQ(sum, 332833500ULL); /* sum of i^2, i < 1000 */
        atomic_ullong count = 0;
        for (int i = 0; i < 100; i++) pool_submit(p, add_one, &count);
        pool_wait(p);
        CHECK_EQ(count, 100);
        pool_destroy(p);
    }
}

struct loop_check {
    atomic_int *hits;
    int threads;
    atomic_int bad_worker;
};

static void hit(void *ctx, size_t i, int worker)
{
    struct loop_check *c = ctx;
    if (worker < 0 || worker >= c->threads) atomic_store(&c->bad_worker, 1);
    atomic_fetch_add(&c->hits[i], 1);
}

TEST(pool_loops_back_to_back_run_each_item_once)
{
    /* thousands of short loops, as an engine runs them, with sizes from 0
     * to more items than threads: every item exactly once, on a thread
     * index inside the pool */
    atomic_int hits[64];
    for (int threads = 1; threads <= 3; threads++) {
        struct pool *p = pool_create(threads);
        struct loop_check c = {hits, threads, 0};
        for (int round = 0; round < 3000; round++) {
            size_t n = (size_t)(round * 7 % 65);
            for (size_t i = 0; i < n; i++) atomic_store(&hits[i], 0);
            pool_for_workers(p, n, hit, &c);
            for (size_t i = 0; i < n; i++)
                if (atomic_load(&hits[i]) != 1) {
                    TEST_FAIL_AT("%d threads, loop %d: item %zu ran %d times", threads, round, i, atomic_load(&hits[i]));
                    round = 3000;
                    break;
                }
            if (round % 500 == 0) usleep(2000); /* let the workers fall asleep now and then */
        }
        CHECK_EQ(atomic_load(&c.bad_worker), 0);
        pool_destroy(p);
    }
}

TEST(number_parsing_with_suffixes)
{
    unsigned long long v;
    CHECK_EQ(parse_u64("123", &v, 0), 0);
    CHECK_EQ(v, 123);
    CHECK_EQ(parse_u64("4G", &v, 1), 0);
    CHECK_EQ(v, 4ULL << 30);
    CHECK_EQ(parse_u64("512MiB", &v, 1), 0);
    CHECK_EQ(v, 512ULL << 20);
    CHECK_EQ(parse_u64("-1", &v, 1), -1);
    CHECK_EQ(parse_u64("12x", &v, 1), -1);
    CHECK_EQ(parse_u64("99999999999999T", &v, 1), -1);
}

TEST_MAIN()
