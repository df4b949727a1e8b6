/* SPIR-V as a format: every kernel shipped in the library validates and
 * reflects as its shader declares it; damaged or hostile modules are refused
 * with a message; specialization freezes every constant and stays valid. */
#include "common/buf.h"
#include "common/emit/shaders.h"
#include "common/emit/specialize.h"
#include "common/err.h"
#include "formats/spirv.h"
#include "tests/unit/test.h"

TEST(every_shipped_kernel_validates_and_reflects)
{
    CHECK(shader_blob_count >= 11);
    for (size_t i = 0; i < shader_blob_count; i++) {
        const struct shader_blob *b = &shader_blobs[i];
        struct spirv_info in;
        if (spirv_validate(b->words, b->nwords, b->name) != 0) TEST_FAIL_AT("%s", last_error());
        if (spirv_reflect(b->words, b->nwords, &in, b->name) != 0) TEST_FAIL_AT("%s", last_error());
        /* every kernel takes its workgroup width from constant 0, set 0 only */
        CHECK_EQ(in.local_size_spec[0], 0);
        CHECK(in.nbindings >= 2);
        CHECK(in.push_bytes > 0 && in.push_bytes <= 128);
    }
}

TEST(matmul_declares_what_the_emitter_binds)
{
    const struct shader_blob *b = shader_find("matmul");
    CHECK(b != NULL);
    struct spirv_info in;
    CHECK_EQ(spirv_reflect(b->words, b->nwords, &in, "matmul"), 0);
    CHECK_EQ(in.nbindings, 8);   /* x, w, s, bias, y, w2, s2, the FP8 activation scale */
    for (int i = 0; i < in.nbindings; i++) {
        CHECK_EQ(in.bindings[i].binding, i);
        CHECK_EQ(in.bindings[i].type, i == 4 ? SPIRV_STORAGE_BUFFER : SPIRV_UNIFORM_TEXEL_BUFFER);
    }
    CHECK_EQ(in.push_bytes, 48);
    CHECK_EQ(in.local_size_spec[0], 0);
    CHECK_EQ(in.local_size_spec[1], -1);
    CHECK_EQ(in.local_size[1], 1);
    CHECK(shader_find("no_such_kernel") == NULL);
}

TEST(damaged_modules_are_refused)
{
    const struct shader_blob *b = shader_find("rope");
    size_t n = b->nwords;
    uint32_t *w = xmalloc(n * 4);
    struct spirv_info in;
    /* a bad magic number */
    memcpy(w, b->words, n * 4);
    w[0] ^= 1;
    CHECK_EQ(spirv_validate(w, n, "x.spv"), -1);
    CHECK_CONTAINS(last_error(), "x.spv: not a SPIR-V module");
    CHECK_EQ(spirv_reflect(w, n, &in, "x.spv"), -1);
    /* an instruction whose word count runs past the end */
    memcpy(w, b->words, n * 4);
    w[5] = (0xffffu << 16) | (w[5] & 0xffff);
    CHECK_EQ(spirv_reflect(w, n, &in, "y.spv"), -1);
    CHECK_CONTAINS(last_error(), "y.spv: malformed instruction at word 5");
    CHECK_EQ(spirv_validate(w, n, "y.spv"), -1);
    CHECK_CONTAINS(last_error(), "y.spv: invalid SPIR-V");
    /* truncated */
    CHECK_EQ(spirv_validate(b->words, 3, "z.spv"), -1);
    CHECK_EQ(spirv_validate(b->words, n - 1, "z.spv"), -1);
    CHECK_CONTAINS(last_error(), "z.spv: invalid SPIR-V");
    free(w);
}

TEST(specialization_freezes_every_constant)
{
    const struct shader_blob *b = shader_find("rms_norm");
    float eps = 1e-6f;
    uint32_t eps_bits;
    memcpy(&eps_bits, &eps, 4);
    struct spec_value v[] = {{0, 32, false}, {1, 2048, false}, {2, eps_bits, true}, {3, 1, false}, {4, 1, false}};
    uint32_t *out = NULL;
    size_t nout = 0;
    char err[256];
    CHECK_EQ(spirv_specialize(b->words, b->nwords, v, 5, true, &out, &nout, err, sizeof err), 0);
    CHECK_EQ(spirv_validate(out, nout, "rms_norm"), 0);
    struct spirv_info in;
    CHECK_EQ(spirv_reflect(out, nout, &in, "rms_norm"), 0);
    CHECK_EQ(in.nspec, 0);
    CHECK_EQ(in.local_size[0], 32);
    CHECK_EQ(in.local_size_spec[0], -1);
    free(out);
    /* not SPIR-V: the optimizer's error comes back */
    uint32_t junk[8] = {0x07230203, 0x10300, 0, 1, 0, 0, 0, 0};
    CHECK_EQ(spirv_specialize(junk, 8, v, 1, true, &out, &nout, err, sizeof err), -1);
    CHECK(err[0] != 0);
}

TEST_MAIN()
