/* The model library archive: reproducible bytes, a faithful round trip, and
 * refusal of archives that are not what they claim. */
#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/lower/lower.h"
#include "common/lower/passes.h"
#include "formats/library.h"
#include "tests/unit/test.h"

static void tiny_module(struct module *m)
{
    static struct tensor_info t[16];
    static char names[16][80];
    int n = 0;
#define T(name_, dt, a, b) (snprintf(names[n], 80, "%s", name_), t[n] = (struct tensor_info){names[n], dt, b ? 2 : 1, {a, b}}, n++)
    T("model.embed_tokens.weight", DT_F32, 32, 16);
    T("model.norm.weight", DT_F32, 16, 0);
    T("model.layers.0.input_layernorm.weight", DT_F32, 16, 0);
    T("model.layers.0.post_attention_layernorm.weight", DT_F32, 16, 0);
    T("model.layers.0.self_attn.qkv_proj.weight", DT_F32, 32, 16);
    T("model.layers.0.self_attn.o_proj.weight", DT_F32, 16, 16);
    T("model.layers.0.mlp.gate_up_proj.weight", DT_F32, 48, 16);
    T("model.layers.0.mlp.down_proj.weight", DT_F32, 16, 24);
#undef T
    struct lower_spec s = {"llama", "q0f32", {0}, t, n, false};
    struct model_dims *d = &s.dims;
    d->hidden_size = 16, d->intermediate_size = 24, d->vocab_size = 32, d->active_vocab_size = 30;
    d->num_hidden_layers = 1, d->num_attention_heads = 2, d->num_key_value_heads = 1, d->head_dim = 8;
    d->rms_norm_eps = 1e-6, d->rope_theta = 10000, d->context_window_size = 64, d->prefill_chunk_size = 8;
    d->sliding_window_size = -1, d->attention_sink_size = -1, d->max_batch_size = 2, d->tie_word_embeddings = true;
    if (lower_build(&s, m) || passes_run(m, 2, NULL, 0, NULL, NULL)) abort();
}

static char *scratch(void)
{
    char tmpl[] = "/tmp/mlc-lib.XXXXXX";
    return xstrdup(mkdtemp(tmpl));
}

TEST(archives_are_reproducible_and_read_back)
{
    struct module m;
    tiny_module(&m);
    struct library_options o = {"cpu", "llama_q0f32_", 1, 1};
    json_t *md = library_metadata(&m, &o);
    char *dir = scratch(), *a = path_join(dir, "a.tar"), *b = path_join(dir, "b.tar");
    CHECK_EQ(library_write(a, &m, md), 0);
    CHECK_EQ(library_write(b, &m, md), 0);
    struct buf x = BUF_INIT, y = BUF_INIT;
    buf_init(&x);
    buf_init(&y);
    read_file(a, &x, 0);
    read_file(b, &y, 0);
    CHECK(x.len > 0 && x.len == y.len && !memcmp(x.data, y.data, x.len));
    struct library lib;
    CHECK_EQ(library_read(a, &lib), 0);
    CHECK_STR(lib.target, "cpu");
    CHECK_EQ(lib.module.nparams, m.nparams);
    CHECK_EQ(json_integer_value(json_object_get(lib.metadata, "active_vocab_size")), 30);
    CHECK_STR(json_string_value(json_object_get(lib.metadata, "kv_state_kind")), "kv_cache");
    /* MLC's key order comes first */
    const char *first = json_object_iter_key(json_object_iter(lib.metadata));
    CHECK_STR(first, "model_type");
    library_free(&lib);
    json_decref(md);
    module_free(&m);
    buf_free(&x);
    buf_free(&y);
    remove_tree(dir);
    free(a);
    free(b);
    free(dir);
}

/* A tar with the given entries (name, contents). */
static void write_tar(const char *path, int n, const char *const *names, const char *const *bodies, int type)
{
    struct archive *a = archive_write_new();
    archive_write_set_format_ustar(a);
    archive_write_open_filename(a, path);
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, names[i]);
        archive_entry_set_size(e, (la_int64_t)strlen(bodies[i]));
        archive_entry_set_filetype(e, i == n - 1 && type ? (unsigned)type : AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_write_header(a, e);
        archive_write_data(a, bodies[i], strlen(bodies[i]));
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
}

TEST(hostile_archives_are_refused)
{
    char *dir = scratch(), *p = path_join(dir, "bad.tar");
    struct library lib;
    const char *n1[] = {"metadata.json", "../../etc/evil"};
    const char *b1[] = {"{}", "x"};
    write_tar(p, 2, n1, b1, 0);
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "unexpected entry '../../etc/evil'");
    const char *n2[] = {"metadata.json"};
    write_tar(p, 1, n2, b1, 0);
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "the library lacks plan.msgpack");
    const char *n3[] = {"metadata.json", "plan.msgpack"};
    const char *b3[] = {"{}", "\x81\xa4type\xa4plan"};
    write_tar(p, 2, n3, b3, 0);
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "plan.msgpack: field 'version' is missing");
    const char *b4[] = {"{\"a\":", "x"};
    write_tar(p, 2, n3, b4, 0);
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "metadata.json:1:");
    write_tar(p, 2, n3, b1, AE_IFLNK);
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "is not a regular file");
    /* a truncated archive */
    struct module m;
    tiny_module(&m);
    struct library_options o = {"cpu", "", 1, 1};
    json_t *md = library_metadata(&m, &o);
    CHECK_EQ(library_write(p, &m, md), 0);
    CHECK_EQ(truncate(p, 700), 0);
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "bad.tar");
    json_decref(md);
    module_free(&m);
    remove_tree(dir);
    free(p);
    free(dir);
}

TEST_MAIN()
