/* The model record: what is written reads back, and malformed records are
 * refused naming the field. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "common/stream.h"
#include "formats/model_record.h"
#include "tests/unit/test.h"

/* Parse the first record of bytes (through a temporary file). */
static int first_record(const struct buf *bytes, struct record_set *set)
{
    char path[] = "/tmp/test_model_record.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, bytes->data, bytes->len) != (ssize_t)bytes->len) abort();
    lseek(fd, 0, SEEK_SET);
    unlink(path);
    struct stream_reader r;
    stream_reader_init(&r, fd, "test");
    int rc = stream_slurp(&r, NULL, set);
    stream_reader_free(&r);
    close(fd);
    return rc;
}

static struct model_dir sample_dir(void)
{
    static struct model_file files[2] = {
        {.name = "config.json", .size = 493},
        {.name = "model.safetensors", .size = 0},
    };
    memset(files[0].sha256, 'a', 64);
    memset(files[1].sha256, '0', 64);
    struct model_dir d = {.path = "/cache/hf/org/name", .kind = MODEL_HF,
                          .format = WEIGHTS_SAFETENSORS, .files = files, .nfiles = 2};
    return d;
}

TEST(written_record_reads_back)
{
    struct model_dir d = sample_dir();
    struct rec_builder b;
    struct buf bytes = BUF_INIT;
    buf_init(&bytes);
    model_record_build(&b, "HF://org/name", &d, "main", "0123456789abcdef0123456789abcdef01234567");
    rb_finish(&b, &bytes);
    struct record_set set = {0};
    CHECK_EQ(first_record(&bytes, &set), 0);
    const struct record *r = record_set_last(&set, "model");
    CHECK(r != NULL);
    struct model_info m;
    CHECK_EQ(model_record_read(r, &m), 0);
    CHECK_STR(m.source, "HF://org/name");
    CHECK_EQ(m.kind, MODEL_HF);
    CHECK(m.has_format);
    CHECK_EQ(m.format, WEIGHTS_SAFETENSORS);
    CHECK_STR(m.revision, "main");
    CHECK_STR(m.commit, "0123456789abcdef0123456789abcdef01234567");
    CHECK_STR(m.path, "/cache/hf/org/name");
    CHECK_EQ(m.nfiles, 2);
    CHECK_STR(m.files[0].name, "config.json");
    CHECK_EQ(m.files[0].size, 493);
    CHECK_STR(m.files[0].sha256, d.files[0].sha256);
    CHECK_EQ(m.files[1].size, 0);
    model_info_free(&m);
    record_set_free(&set);
    buf_free(&bytes);
}

TEST(nil_revision_and_commit_read_as_null)
{
    struct model_dir d = sample_dir();
    struct rec_builder b;
    struct buf bytes = BUF_INIT;
    buf_init(&bytes);
    model_record_build(&b, "./m", &d, NULL, NULL);
    rb_finish(&b, &bytes);
    struct record_set set = {0};
    CHECK_EQ(first_record(&bytes, &set), 0);
    struct model_info m;
    CHECK_EQ(model_record_read(record_set_last(&set, "model"), &m), 0);
    CHECK(m.revision == NULL);
    CHECK(m.commit == NULL);
    model_info_free(&m);
    record_set_free(&set);
    buf_free(&bytes);
}

/* A record built by hand with one field changed. */
static const char *read_error(const char *kind, const char *path, const char *name, const char *sha)
{
    struct rec_builder b;
    rb_init(&b, "model");
    rb_str(&b, "source", "x");
    rb_str(&b, "kind", kind);
    rb_str(&b, "path", path);
    msgpack_packer *pk = rb_key(&b, "files");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 3);
    mp_pack_cstr(pk, "name");
    mp_pack_cstr(pk, name);
    mp_pack_cstr(pk, "size");
    msgpack_pack_int64(pk, 1);
    mp_pack_cstr(pk, "sha256");
    mp_pack_cstr(pk, sha);
    struct buf bytes = BUF_INIT;
    buf_init(&bytes);
    rb_finish(&b, &bytes);
    struct record_set set = {0};
    static char text[512];
    snprintf(text, sizeof text, "(accepted)");
    if (first_record(&bytes, &set) == 0) {
        struct model_info m;
        if (model_record_read(record_set_last(&set, "model"), &m) != 0) snprintf(text, sizeof text, "%s", last_error());
        else model_info_free(&m);
    }
    record_set_free(&set);
    buf_free(&bytes);
    return text;
}

TEST(malformed_records_are_refused_naming_the_field)
{
    const char *sha = "0000000000000000000000000000000000000000000000000000000000000000";
    CHECK_STR(read_error("hf", "/m", "config.json", sha), "(accepted)");
    CHECK_CONTAINS(read_error("gguf", "/m", "config.json", sha), "field 'kind' must be");
    CHECK_CONTAINS(read_error("hf", "m", "config.json", sha), "field 'path' must be an absolute path");
    CHECK_CONTAINS(read_error("hf", "/m", "../x", sha), "files[0]: field 'name' must be a relative path");
    CHECK_CONTAINS(read_error("hf", "/m", "a", "ABC"), "files[0] (a): field 'sha256' must be 64");
}

TEST_MAIN()
