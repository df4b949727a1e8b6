/* The GGUF reader and ggml's block dequantizers, against hand-computed
 * values; every truncation and every single-byte corruption of a small file
 * is refused or read without touching memory outside the buffer (ASan). */
#include <math.h>

#include "common/buf.h"
#include "common/err.h"
#include "formats/gguf.h"
#include "formats/gguf_hf.h"
#include "tests/unit/test.h"

static void put_u32(struct buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    buf_add(b, x, 4);
}

static void put_u64(struct buf *b, uint64_t v)
{
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}

static void put_str(struct buf *b, const char *s)
{
    put_u64(b, strlen(s));
    buf_adds(b, s);
}

/* A small llama GGUF: a few metadata values, a 3-token vocabulary, and one
 * 2 x 4 float32 embedding. */
static void small_gguf(struct buf *b)
{
    buf_init(b);
    buf_adds(b, "GGUF");
    put_u32(b, 3);
    put_u64(b, 1); /* tensors */
    put_u64(b, 6); /* metadata */
    put_str(b, "tokenizer.ggml.model");
    put_u32(b, GGUF_STRING);
    put_str(b, "llama");
    put_str(b, "general.architecture");
    put_u32(b, GGUF_STRING);
    put_str(b, "llama");
    put_str(b, "llama.attention.head_count");
    put_u32(b, GGUF_U32);
    put_u32(b, 2);
    put_str(b, "llama.attention.layer_norm_rms_epsilon");
    put_u32(b, GGUF_F32);
    float eps = 1e-5f;
    uint32_t bits;
    memcpy(&bits, &eps, 4);
    put_u32(b, bits);
    put_str(b, "tokenizer.ggml.tokens");
    put_u32(b, GGUF_ARRAY);
    put_u32(b, GGUF_STRING);
    put_u64(b, 3);
    put_str(b, "<unk>");
    put_str(b, "a");
    put_str(b, "b");
    put_str(b, "tokenizer.ggml.scores");
    put_u32(b, GGUF_ARRAY);
    put_u32(b, GGUF_F32);
    put_u64(b, 3);
    for (int i = 0; i < 3; i++) put_u32(b, 0);
    put_str(b, "token_embd.weight");
    put_u32(b, 2);
    put_u64(b, 4);
    put_u64(b, 2);
    put_u32(b, GGML_F32);
    put_u64(b, 0);
    while (b->len % 32) buf_addc(b, 0);
    for (int i = 0; i < 8; i++) {
        float f = (float)i;
        memcpy(&bits, &f, 4);
        put_u32(b, bits);
    }
}

TEST(reads_metadata_and_tensors)
{
    struct buf b;
    small_gguf(&b);
    struct gguf g;
    CHECK_EQ(gguf_parse(&g, b.data, b.len, "small.gguf"), 0);
    CHECK_EQ(g.nkv, 6);
    CHECK_EQ(g.ntensors, 1);
    char *arch = NULL;
    CHECK_EQ(gguf_get_string(&g, "general.architecture", &arch), 1);
    CHECK_STR(arch, "llama");
    free(arch);
    uint64_t heads;
    CHECK_EQ(gguf_get_uint(&g, "llama.attention.head_count", &heads), 1);
    CHECK_EQ(heads, 2);
    double eps;
    CHECK_EQ(gguf_get_float(&g, "llama.attention.layer_norm_rms_epsilon", &eps), 1);
    CHECK(gguf_float32_decimal(eps) == 1e-5);
    CHECK_EQ(gguf_get_uint(&g, "missing.key", &heads), 0);
    CHECK_EQ(gguf_get_uint(&g, "general.architecture", &heads), -1);
    CHECK_CONTAINS(last_error(), "small.gguf: metadata 'general.architecture': must be a non-negative integer");
    const struct gguf_value *toks;
    CHECK_EQ(gguf_get_array(&g, "tokenizer.ggml.tokens", 's', &toks), 1);
    CHECK_EQ(toks->count, 3);
    CHECK_EQ(toks->strs[2].len, 1);
    CHECK(toks->strs[2].s[0] == 'b');
    const struct gguf_tensor *t = gguf_find_tensor(&g, "token_embd.weight");
    CHECK(t != NULL);
    CHECK_EQ(t->ne[0], 4);
    CHECK_EQ(t->ne[1], 2);
    CHECK_EQ(t->nbytes, 32);
    CHECK_EQ(t->offset % 32, 0);
    float last;
    memcpy(&last, gguf_tensor_bytes(&g, t) + 28, 4);
    CHECK(last == 7.0f);
    json_t *tok, *cfg, *special;
    CHECK_EQ(gguf_tokenizer_files(&g, &tok, &cfg, &special), 0);
    CHECK_EQ(json_integer_value(json_object_get(json_object_get(json_object_get(tok, "model"), "vocab"), "b")), 2);
    /* no token types, no unknown_token_id: no unknown token; no BOS id: none added */
    CHECK(json_is_null(json_object_get(json_object_get(tok, "model"), "unk_token")));
    CHECK(json_is_null(json_object_get(tok, "post_processor")));
    json_decref(tok);
    json_decref(cfg);
    json_decref(special);
    gguf_close(&g);
    buf_free(&b);
}

TEST(a_zero_dimension_is_refused_by_name)
{
    /* an empty q projection would divide by its row count when unpermuted */
    struct buf b;
    buf_init(&b);
    buf_adds(&b, "GGUF");
    put_u32(&b, 3);
    put_u64(&b, 2);
    put_u64(&b, 2);
    put_str(&b, "general.architecture");
    put_u32(&b, GGUF_STRING);
    put_str(&b, "llama");
    put_str(&b, "llama.attention.head_count");
    put_u32(&b, GGUF_U32);
    put_u32(&b, 2);
    put_str(&b, "token_embd.weight");
    put_u32(&b, 2);
    put_u64(&b, 4);
    put_u64(&b, 2);
    put_u32(&b, GGML_F32);
    put_u64(&b, 0);
    put_str(&b, "blk.0.attn_q.weight");
    put_u32(&b, 2);
    put_u64(&b, 4);
    put_u64(&b, 0);
    put_u32(&b, GGML_F32);
    put_u64(&b, 32);
    while (b.len % 32) buf_addc(&b, 0);
    for (int i = 0; i < 32; i++) buf_addc(&b, 0);
    struct gguf g;
    CHECK_EQ(gguf_parse(&g, b.data, b.len, "zero.gguf"), 0);
    struct gguf_model m;
    CHECK_EQ(gguf_model_from(&m, &g), -1);
    CHECK_CONTAINS(last_error(), "zero.gguf: tensor 'blk.0.attn_q.weight': a dimension is 0");
    CHECK_EQ(gguf_fuzz_one((const uint8_t *)b.data, b.len), 0);
    buf_free(&b);
}

TEST(every_truncation_is_refused)
{
    struct buf b;
    small_gguf(&b);
    for (size_t n = 0; n < b.len; n++) {
        /* a copy of exactly n bytes, so ASan sees any read past them */
        char *copy = xmalloc(n ? n : 1);
        memcpy(copy, b.data, n);
        struct gguf g;
        if (gguf_parse(&g, copy, n, "cut.gguf") == 0) {
            TEST_FAIL_AT("a file cut to %zu of %zu bytes was accepted", n, b.len);
            gguf_close(&g);
        }
        CHECK_CONTAINS(last_error(), "cut.gguf: ");
        free(copy);
    }
    buf_free(&b);
}

TEST(every_single_byte_corruption_is_survived)
{
    struct buf b;
    small_gguf(&b);
    static const unsigned char values[] = {0x00, 0x01, 0x7F, 0x80, 0xFF};
    for (size_t i = 0; i < b.len; i++)
        for (size_t v = 0; v < sizeof values; v++) {
            unsigned char *copy = xmalloc(b.len);
            memcpy(copy, b.data, b.len);
            copy[i] = values[v];
            gguf_fuzz_one(copy, b.len);
            free(copy);
        }
    buf_free(&b);
}

static void put_half(unsigned char *p, uint16_t h)
{
    p[0] = (unsigned char)h;
    p[1] = (unsigned char)(h >> 8);
}

TEST(q8_0_and_q4_0_blocks)
{
    unsigned char q8[34] = {0};
    put_half(q8, 0x3800); /* 0.5 */
    q8[2] = (unsigned char)-2;
    q8[3] = 3;
    q8[33] = 127;
    float y[32];
    CHECK(ggml_to_f32(GGML_Q8_0, q8, y, 32));
    CHECK(y[0] == -1.0f && y[1] == 1.5f && y[2] == 0.0f && y[31] == 63.5f);
    unsigned char q4[18] = {0};
    put_half(q4, 0x4000); /* 2.0 */
    memset(q4 + 2, 0x88, 16);   /* every value 0 */
    q4[2] = 0x9F;               /* value 0: 15 - 8, value 16: 9 - 8 */
    CHECK(ggml_to_f32(GGML_Q4_0, q4, y, 32));
    CHECK(y[0] == 14.0f && y[16] == 2.0f && y[1] == 0.0f && y[17] == 0.0f);
}

TEST(q4_k_block)
{
    unsigned char b[144] = {0};
    put_half(b, 0x3C00);     /* d = 1 */
    put_half(b + 2, 0x3800); /* dmin = 0.5 */
    unsigned char *sc = b + 4, *qs = b + 16;
    /* sub-block 0: scale 3, min 4; 1: scale 5, min 2; 4: scale 33, min 18 */
    sc[0] = 3 | (33 >> 4) << 6;
    sc[4] = 4 | (18 >> 4) << 6;
    sc[1] = 5;
    sc[5] = 2;
    sc[8] = (33 & 15) | (18 & 15) << 4;
    qs[0] = 0x7A;  /* sub-block 0 value 0: 10; sub-block 1 value 0: 7 */
    qs[64] = 0x03; /* sub-block 4 value 0: 3 */
    float y[256];
    CHECK(ggml_to_f32(GGML_Q4_K, b, y, 256));
    CHECK(y[0] == 1 * 3 * 10 - 0.5f * 4);
    CHECK(y[32] == 1 * 5 * 7 - 0.5f * 2);
    CHECK(y[128] == 1 * 33 * 3 - 0.5f * 18);
    CHECK(y[1] == -0.5f * 4);          /* q 0: just the min */
    CHECK(y[64] == 0.0f);              /* sub-block 2: scale 0, min 0 */
}

TEST(q6_k_block)
{
    unsigned char b[210] = {0};
    unsigned char *ql = b, *qh = b + 128;
    signed char *sc = (signed char *)(b + 192);
    put_half(b + 208, 0x3400); /* d = 0.25 */
    memset(ql, 0, 128);
    memset(qh, 0, 64);
    sc[0] = 2;
    sc[2] = -1;
    sc[4] = 1;
    ql[0] = 0x15;  /* value 0: low 5; value 64: low 1 */
    qh[0] = 0x03;  /* value 0: high 3; values 32, 64, 96: high 0 */
    float y[256];
    CHECK(ggml_to_f32(GGML_Q6_K, b, y, 256));
    CHECK(y[0] == 0.25f * 2 * ((5 | 3 << 4) - 32));
    CHECK(y[32] == 0.25f * -1 * (0 - 32));
    CHECK(y[64] == 0.25f * 1 * (1 - 32));
}

TEST(rotary_rows_unpermuted)
{
    /* 2 heads of 4 rows: stored h*4 + 2i + j is HuggingFace's h*4 + 2j + i */
    int src[8] = {0, 1, 2, 3, 4, 5, 6, 7}, dst[8];
    gguf_unpermute_rows(src, dst, 8, sizeof(int), 2);
    static const int want[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    CHECK_MEM(dst, want, sizeof want);
}

TEST(float32_decimals)
{
    CHECK(gguf_float32_decimal((float)1e-6) == 1e-6);
    CHECK(gguf_float32_decimal((float)10000.0) == 10000.0);
    CHECK(gguf_float32_decimal((float)0.02) == 0.02);
    CHECK(gguf_float32_decimal(50.0) == 50.0);
}

TEST_MAIN()
