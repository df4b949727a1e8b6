/* Digests computed on the hashing thread equal one-shot digests of the same
 * bytes, whatever the write sizes, across restarts and flushes. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/digest_writer.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "tests/unit/test.h"

static int temp_file(void)
{
    char path[] = "/tmp/test_digest_writer.XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    return fd;
}

static char *file_bytes(int fd, size_t *len)
{
    off_t n = lseek(fd, 0, SEEK_END);
    char *data = malloc((size_t)n + 1);
    if (pread(fd, data, (size_t)n, 0) != n) abort();
    *len = (size_t)n;
    return data;
}

TEST(known_vectors)
{
    int fd = temp_file();
    struct digest_writer *w = digest_writer_new(fd, DIGEST_SHA256 | DIGEST_MD5 | DIGEST_GIT_BLOB, 3);
    CHECK_EQ(digest_writer_add(w, "ab", 2), 0);
    CHECK_EQ(digest_writer_add(w, "c", 1), 0);
    struct digests d;
    CHECK_EQ(digest_writer_finish(w, &d), 0);
    CHECK_STR(d.sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK_STR(d.md5, "900150983cd24fb0d6963f7d28e17f72");
    /* printf abc | git hash-object --stdin */
    CHECK_STR(d.git_blob, "f2ba8f84ab5c1bce84a7b441cb1959cfc7093b7f");
    size_t n;
    char *bytes = file_bytes(fd, &n);
    CHECK_EQ(n, 3);
    CHECK_MEM(bytes, "abc", 3);
    free(bytes);
    close(fd);
}

/* Several MiB through odd write sizes: the file and the digests match. */
TEST(many_chunks_in_odd_pieces)
{
    size_t total = (5u << 20) + 12345;
    unsigned char *data = malloc(total);
    for (size_t i = 0; i < total; i++) data[i] = (unsigned char)(i * 2654435761u >> 13);
    int fd = temp_file();
    struct digest_writer *w = digest_writer_new(fd, DIGEST_SHA256 | DIGEST_GIT_BLOB, total);
    size_t at = 0, step = 1;
    while (at < total) {
        size_t n = step < total - at ? step : total - at;
        CHECK_EQ(digest_writer_add(w, data + at, n), 0);
        at += n;
        step = step * 3 + 7;
        if (step > 3000000) step = 1;
    }
    CHECK_EQ(digest_writer_offset(w), total);
    struct digests d;
    CHECK_EQ(digest_writer_finish(w, &d), 0);
    char want[HASH_HEX_MAX];
    hash_hex(HASH_SHA256, data, total, want);
    CHECK_STR(d.sha256, want);
    size_t n;
    char *bytes = file_bytes(fd, &n);
    CHECK_EQ(n, total);
    CHECK(n == total && memcmp(bytes, data, total) == 0);
    char path[] = "/tmp/test_digest_writer_blob.XXXXXX";
    int fd2 = mkstemp(path);
    CHECK_EQ(write_all(fd2, data, total), 0);
    close(fd2);
    char blob[HASH_HEX_MAX];
    CHECK_EQ(git_blob_id_file(path, blob), 0);
    CHECK_STR(d.git_blob, blob);
    unlink(path);
    free(bytes);
    free(data);
    close(fd);
}

TEST(restart_forgets_everything_before)
{
    size_t total = 3u << 20;
    char *junk = malloc(total), *good = malloc(total);
    memset(junk, 'j', total);
    for (size_t i = 0; i < total; i++) good[i] = (char)(i % 251);
    int fd = temp_file();
    struct digest_writer *w = digest_writer_new(fd, DIGEST_SHA256, 0);
    CHECK_EQ(digest_writer_add(w, junk, total - 5), 0);
    CHECK_EQ(digest_writer_restart(w), 0);
    CHECK_EQ(digest_writer_offset(w), 0);
    CHECK_EQ(digest_writer_add(w, good, total), 0);
    struct digests d;
    CHECK_EQ(digest_writer_finish(w, &d), 0);
    char want[HASH_HEX_MAX];
    hash_hex(HASH_SHA256, good, total, want);
    CHECK_STR(d.sha256, want);
    size_t n;
    char *bytes = file_bytes(fd, &n);
    CHECK(n == total && memcmp(bytes, good, total) == 0);
    free(bytes);
    free(junk);
    free(good);
    close(fd);
}

TEST(bytes_are_in_the_file_as_soon_as_added)
{
    int fd = temp_file();
    struct digest_writer *w = digest_writer_new(fd, DIGEST_SHA256, 0);
    CHECK_EQ(digest_writer_add(w, "hello ", 6), 0);
    size_t n;
    char *bytes = file_bytes(fd, &n);
    CHECK_EQ(n, 6);
    free(bytes);
    CHECK_EQ(digest_writer_add(w, "world", 5), 0);
    struct digests d;
    CHECK_EQ(digest_writer_finish(w, &d), 0);
    char want[HASH_HEX_MAX];
    hash_hex(HASH_SHA256, "hello world", 11, want);
    CHECK_STR(d.sha256, want);
    bytes = file_bytes(fd, &n);
    CHECK(n == 11 && memcmp(bytes, "hello world", 11) == 0);
    free(bytes);
    close(fd);
}

/* A file shortened behind the writer's back cannot be digested whole. */
TEST(a_file_that_shrinks_fails_to_finish)
{
    int fd = temp_file();
    struct digest_writer *w = digest_writer_new(fd, DIGEST_SHA256, 0);
    CHECK_EQ(digest_writer_add(w, "0123456789", 10), 0);
    CHECK_EQ(ftruncate(fd, 4), 0);
    struct digests d;
    CHECK_EQ(digest_writer_finish(w, &d), -1);
    CHECK_CONTAINS(last_error(), "cannot read back what was written");
    close(fd);
}

TEST(abandoning_a_writer_mid_stream_is_clean)
{
    int fd = temp_file();
    struct digest_writer *w = digest_writer_new(fd, DIGEST_SHA256 | DIGEST_MD5, 0);
    char *data = calloc(1, 3u << 20);
    CHECK_EQ(digest_writer_add(w, data, 3u << 20), 0);
    digest_writer_free(w);
    free(data);
    close(fd);
}

TEST(a_write_error_is_reported)
{
    int fd = open("/dev/full", O_WRONLY);
    if (fd < 0) return;
    struct digest_writer *w = digest_writer_new(fd, DIGEST_SHA256, 0);
    char *data = calloc(1, 2u << 20);
    CHECK_EQ(digest_writer_add(w, data, 2u << 20), -1);
    digest_writer_free(w);
    free(data);
    close(fd);
}

TEST_MAIN()
