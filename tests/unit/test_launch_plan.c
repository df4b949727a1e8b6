/* The Vulkan plan: expressions evaluated as integer arithmetic with their
 * errors caught; mlc-emit's back end on a small module gives valid kernels
 * and the same bytes every time; a library that carries them reads back,
 * and one whose kernels or launches were tampered with is refused, naming
 * what is wrong. */
#include <unistd.h>

#include "common/buf.h"
#include "common/emit/emit.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/lower/lower.h"
#include "common/lower/passes.h"
#include "formats/library.h"
#include "tests/unit/test.h"

static int64_t eval(const char *text, int64_t rows)
{
    struct lp_expr e;
    int64_t vars[LP_NVARS] = {0}, out = -1;
    vars[LPV_ROWS] = rows;
    vars[LPV_SLICE_START] = 100;
    vars[LPV_SLICE_ROWS] = 7;
    vars[LPV_KV_DTYPE] = 1;
    vars[LPV_BASE0 + 3] = 12;
    if (lp_expr_compile(&e, text, "seq_len", "test") != 0) return -1000;
    if (lp_expr_eval(&e, vars, LP_NVARS, &out) != 0) out = -2000;
    free(e.text);
    free(e.items);
    return out;
}

TEST(expressions_are_integer_arithmetic_over_the_plan_variables)
{
    CHECK_EQ(eval("seq_len", 9), 9);
    CHECK_EQ(eval("(seq_len+63)/64", 1), 1);
    CHECK_EQ(eval("(seq_len+63)/64", 64), 1);
    CHECK_EQ(eval("(seq_len+63)/64", 65), 2);
    CHECK_EQ(eval("2+3*4", 0), 14);
    CHECK_EQ(eval("10-2-3", 0), 5);
    CHECK_EQ(eval("100/10/5", 0), 2);
    CHECK_EQ(eval("7 % 3", 0), 1);
    CHECK_EQ(eval("(1+2)*(3+4)", 0), 21);
    CHECK_EQ(eval("base3+slice_start+slice_rows", 0), 119);
    CHECK_EQ(eval("kv_dtype", 0), 1);
    CHECK_EQ(eval("base3*10", 0), 120);
    CHECK_EQ(eval("4294967295", 0), 4294967295LL);
}

TEST(bad_expressions_are_refused)
{
    CHECK_EQ(eval("seq_len +", 1), -1000);
    CHECK_CONTAINS(last_error(), "test: expression \"seq_len +\": number, variable or '(' expected at offset 9");
    CHECK_EQ(eval("batch", 1), -1000);
    CHECK_CONTAINS(last_error(), "unknown variable at offset 0");
    CHECK_EQ(eval("base16", 1), -1000);
    CHECK_EQ(eval("(1", 1), -1000);
    CHECK_CONTAINS(last_error(), "')' expected");
    CHECK_EQ(eval("1 2", 1), -1000);
    CHECK_EQ(eval("((((((((((((((((((1))))))))))))))))))", 1), -1000);
    CHECK_CONTAINS(last_error(), "nested too deeply");
    CHECK_EQ(eval("99999999999999999999", 1), -1000);
    /* evaluation */
    CHECK_EQ(eval("1/(seq_len-1)", 1), -2000);
    CHECK_CONTAINS(last_error(), "divides by 0");
    CHECK_EQ(eval("0-1", 1), -2000);
    CHECK_CONTAINS(last_error(), "outside 0..4294967295");
    CHECK_EQ(eval("4294967296", 1), -2000);
    CHECK_EQ(eval("9223372036854775807*2", 1), -2000);
    CHECK_CONTAINS(last_error(), "overflows");
}

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
    struct lower_spec s = {"llama", "q0f32", {0}, t, n};
    struct model_dims *d = &s.dims;
    d->hidden_size = 16, d->intermediate_size = 24, d->vocab_size = 32, d->active_vocab_size = 30;
    d->num_hidden_layers = 1, d->num_attention_heads = 2, d->num_key_value_heads = 1, d->head_dim = 8;
    d->rms_norm_eps = 1e-6, d->rope_theta = 10000, d->context_window_size = 64, d->prefill_chunk_size = 8;
    d->sliding_window_size = -1, d->attention_sink_size = -1, d->max_batch_size = 2, d->tie_word_embeddings = true;
    if (lower_build(&s, m) || passes_run(m, 2, NULL, 0, NULL, NULL)) abort();
}

static char *write_library(const char *dir, const char *name, const struct module *m, const struct launch_plan *lp)
{
    struct library_options o = {"vulkan", "", 1, 1};
    json_t *md = library_metadata(m, &o);
    library_metadata_add_kernels(md, lp);
    char *path = path_join(dir, name);
    if (library_write_vulkan(path, m, md, lp) != 0) TEST_FAIL_AT("%s", last_error());
    json_decref(md);
    return path;
}

TEST(emitted_kernels_are_valid_and_the_bytes_reproducible)
{
    struct module m;
    tiny_module(&m);
    char tmpl[] = "/tmp/mlc-lp.XXXXXX";
    char *dir = mkdtemp(tmpl);
    for (int level = 0; level <= 3; level++) {
        struct launch_plan a, b;
        CHECK_EQ(emit_vulkan(&m, level, &a), 0);
        CHECK_EQ(emit_vulkan(&m, level, &b), 0);
        CHECK_EQ(a.nkernels, b.nkernels);
        CHECK_EQ(a.nfns, 3);  /* embed, prefill, decode; create_kv_cache has no launches */
        for (int k = 0; k < a.nkernels; k++) {
            CHECK_EQ(spirv_validate(a.kernels[k].words, a.kernels[k].nwords, a.kernels[k].name), 0);
            CHECK(a.kernels[k].nwords == b.kernels[k].nwords &&
                  !memcmp(a.kernels[k].words, b.kernels[k].words, a.kernels[k].nwords * 4));
            /* -O0 leaves the constants to the pipeline, the others freeze them */
            CHECK(level == 0 ? a.kernels[k].nspec > 0 : a.kernels[k].nspec == 0);
        }
        char *pa = write_library(dir, "a.tar", &m, &a), *pb = write_library(dir, "b.tar", &m, &b);
        struct buf x = BUF_INIT, y = BUF_INIT;
        buf_init(&x);
        buf_init(&y);
        read_file(pa, &x, 0);
        read_file(pb, &y, 0);
        CHECK(x.len > 0 && x.len == y.len && !memcmp(x.data, y.data, x.len));
        struct library lib;
        if (library_read(pa, &lib) != 0) {
            TEST_FAIL_AT("-O%d: %s", level, last_error());
            break;
        }
        CHECK(lib.launches != NULL);
        CHECK_STR(lib.target, "vulkan");
        CHECK_EQ(lib.launches->nkernels, a.nkernels);
        const struct lp_function *pf = launch_plan_function(lib.launches, "prefill");
        CHECK(pf && pf->nlaunches > 0);
        /* every op of prefill has its launches, in order */
        for (int l = 1; pf && l < pf->nlaunches; l++) CHECK(pf->launches[l].op >= pf->launches[l - 1].op);
        library_free(&lib);
        buf_free(&x);
        buf_free(&y);
        free(pa);
        free(pb);
        launch_plan_free(&a);
        launch_plan_free(&b);
    }
    remove_tree(dir);
    module_free(&m);
}

TEST(tampered_kernels_and_launches_are_refused)
{
    struct module m;
    tiny_module(&m);
    char tmpl[] = "/tmp/mlc-lp.XXXXXX";
    char *dir = mkdtemp(tmpl);
    struct launch_plan lp;
    CHECK_EQ(emit_vulkan(&m, 2, &lp), 0);
    struct library lib;
    /* a blob changed after the plan recorded its digest */
    lp.kernels[1].words[lp.kernels[1].nwords / 2] ^= 0x10;
    char *p = write_library(dir, "x.tar", &m, &lp);
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "x.tar: kernels/");
    CHECK_CONTAINS(last_error(), ".spv: sha256 ");
    CHECK_CONTAINS(last_error(), "the blob is corrupted");
    free(p);
    /* the same damage with a matching digest: the validator catches it */
    lp.kernels[1].words[5] = 0xffff0000u | (lp.kernels[1].words[5] & 0xffff);
    char hex[HASH_HEX_MAX];
    hash_hex(HASH_SHA256, lp.kernels[1].words, lp.kernels[1].nwords * 4, hex);
    free(lp.kernels[1].sha256);
    lp.kernels[1].sha256 = xstrdup(hex);
    p = write_library(dir, "y.tar", &m, &lp);
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "invalid SPIR-V");
    CHECK_CONTAINS(last_error(), lp.kernels[1].name);
    free(p);
    launch_plan_free(&lp);
    /* a launch binding a storage slot as a texel view */
    CHECK_EQ(emit_vulkan(&m, 2, &lp), 0);
    struct lp_launch *l = &lp.fns[1].launches[0];
    for (int b = 0; b < l->nbind; b++)
        if (l->bind[b].view == LP_STORAGE) l->bind[b].view = LP_F32;
    p = write_library(dir, "z.tar", &m, &lp);
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "launch 0 binds slot");
    CHECK_CONTAINS(last_error(), "declares storage buffer");
    free(p);
    launch_plan_free(&lp);
    /* a launch pushing fewer constants than the kernel takes */
    CHECK_EQ(emit_vulkan(&m, 2, &lp), 0);
    lp.fns[2].launches[1].npush--;
    p = write_library(dir, "w.tar", &m, &lp);
    lp.fns[2].launches[1].npush++;
    CHECK_EQ(library_read(p, &lib), -1);
    CHECK_CONTAINS(last_error(), "decode launch 1 pushes");
    free(p);
    launch_plan_free(&lp);
    remove_tree(dir);
    module_free(&m);
}

TEST_MAIN()
