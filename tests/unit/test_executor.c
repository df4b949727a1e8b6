/* The lowering, passes and CPU executor on the real stories260K model, with
 * weights read straight from its safetensors file (float32, HuggingFace
 * names fused into MLC's by hand here) — independent of mlc-quant. Greedy
 * decoding must give the known 60 tokens at every optimisation level, and
 * batched decoding the same logits as one-by-one decoding. */
#include <math.h>
#include <stdint.h>

#include "common/engine/executor.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/lower/lower.h"
#include "common/lower/passes.h"
#include "tests/unit/test.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

static const int expected[61] = {
    1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
    410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266,
    268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415};

struct store {
    struct tensor_view t[64];
    struct tensor_info info[64];
    int n;
    float *owned[64];
};

static const struct tensor_view *lookup(void *ctx, const char *name)
{
    struct store *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    return NULL;
}

static void add(struct store *s, const char *name, float *data, int64_t d0, int64_t d1)
{
    int i = s->n++;
    s->owned[i] = data;
    s->t[i] = (struct tensor_view){xstrdup(name), DT_F32, d1 ? 2 : 1, {d0, d1}, data, sizeof(float) * (size_t)(d0 * (d1 ? d1 : 1))};
    s->info[i] = (struct tensor_info){s->t[i].name, DT_F32, s->t[i].ndim, {d0, d1}};
}

/* rows of several [r_i, K] tensors stacked along axis 0 */
static float *concat(struct buf *file, size_t base, json_t *hdr, const char **names, int n, int64_t *rows_out, int64_t K)
{
    int64_t rows = 0;
    for (int i = 0; i < n; i++) rows += json_integer_value(json_array_get(json_object_get(json_object_get(hdr, names[i]), "shape"), 0));
    float *out = xmalloc(sizeof(float) * (size_t)(rows * K));
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        json_t *e = json_object_get(hdr, names[i]);
        json_t *off = json_object_get(e, "data_offsets");
        size_t s = (size_t)json_integer_value(json_array_get(off, 0)), en = (size_t)json_integer_value(json_array_get(off, 1));
        memcpy((char *)out + at, file->data + base + s, en - s);
        at += en - s;
    }
    *rows_out = rows;
    return out;
}

static void load_stories(struct store *s, struct lower_spec *spec)
{
    memset(s, 0, sizeof *s);
    struct buf file = BUF_INIT;
    buf_init(&file);
    if (read_file(FIXTURES "/stories260K/model.safetensors", &file, 0)) abort();
    uint64_t n = 0;
    memcpy(&n, file.data, 8);
    json_t *hdr = json_loadb(file.data + 8, n, 0, NULL);
    size_t base = 8 + n;
    int L = 5;
    int64_t rows = 0;
    char a[128], b[128], c[128];
    const char *one[1];
    one[0] = "model.embed_tokens.weight";
    { float *w_ = concat(&file, base, hdr, one, 1, &rows, 64); add(s, "model.embed_tokens.weight", w_, rows, 64); }
    one[0] = "model.norm.weight";
    { float *w_ = concat(&file, base, hdr, one, 1, &rows, 1); add(s, "model.norm.weight", w_, rows, 0); }
    for (int i = 0; i < L; i++) {
        const char *qkv[3] = {a, b, c};
        snprintf(a, sizeof a, "model.layers.%d.self_attn.q_proj.weight", i);
        snprintf(b, sizeof b, "model.layers.%d.self_attn.k_proj.weight", i);
        snprintf(c, sizeof c, "model.layers.%d.self_attn.v_proj.weight", i);
        float *w = concat(&file, base, hdr, qkv, 3, &rows, 64);
        char name[128]; /* rows is set by concat above */
        snprintf(name, sizeof name, "model.layers.%d.self_attn.qkv_proj.weight", i);
        add(s, name, w, rows, 64);
        snprintf(a, sizeof a, "model.layers.%d.self_attn.o_proj.weight", i);
        snprintf(name, sizeof name, "%s", a);
        { float *w_ = concat(&file, base, hdr, qkv, 1, &rows, 64); add(s, name, w_, rows, 64); }
        snprintf(a, sizeof a, "model.layers.%d.mlp.gate_proj.weight", i);
        snprintf(b, sizeof b, "model.layers.%d.mlp.up_proj.weight", i);
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate_up_proj.weight", i);
        { float *w_ = concat(&file, base, hdr, qkv, 2, &rows, 64); add(s, name, w_, rows, 64); }
        snprintf(a, sizeof a, "model.layers.%d.mlp.down_proj.weight", i);
        { float *w_ = concat(&file, base, hdr, qkv, 1, &rows, 172); add(s, a, w_, rows, 172); }
        snprintf(a, sizeof a, "model.layers.%d.input_layernorm.weight", i);
        { float *w_ = concat(&file, base, hdr, qkv, 1, &rows, 1); add(s, a, w_, rows, 0); }
        snprintf(a, sizeof a, "model.layers.%d.post_attention_layernorm.weight", i);
        { float *w_ = concat(&file, base, hdr, qkv, 1, &rows, 1); add(s, a, w_, rows, 0); }
    }
    json_decref(hdr);
    buf_free(&file);
    memset(spec, 0, sizeof *spec);
    spec->model_type = "llama";
    spec->quantization = "q0f32";
    struct model_dims *d = &spec->dims;
    d->hidden_size = 64, d->intermediate_size = 172, d->vocab_size = 512, d->active_vocab_size = 512;
    d->num_hidden_layers = 5, d->num_attention_heads = 8, d->num_key_value_heads = 4, d->head_dim = 8;
    d->rms_norm_eps = 1e-5, d->rope_theta = 10000.0;
    d->context_window_size = 512, d->prefill_chunk_size = 16, d->sliding_window_size = -1;
    d->attention_sink_size = -1, d->max_batch_size = 8, d->tie_word_embeddings = true;
    spec->tensors = s->info;
    spec->ntensors = s->n;
}

static void free_store(struct store *s)
{
    for (int i = 0; i < s->n; i++) {
        free((char *)s->t[i].name);
        free(s->owned[i]);
    }
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void greedy(int level)
{
    struct store s;
    struct lower_spec spec;
    load_stories(&s, &spec);
    struct module m;
    if (lower_build(&spec, &m) != 0) {
        TEST_FAIL_AT("lower_build: %s", last_error());
        free_store(&s);
        return;
    }
    CHECK_EQ(passes_run(&m, level, NULL, 0, NULL, NULL), 0);
    struct tensor_source src = {lookup, &s};
    struct executor ex;
    CHECK_EQ(executor_init(&ex, &m, &src, 2, 0), 0);
    int seq = kv_cache_add_sequence(&ex.kv);
    int32_t ids[64] = {1};
    float x[64 * 64], logits[512];
    CHECK_EQ(executor_embed(&ex, ids, 1, x), 0);
    CHECK_EQ(executor_prefill(&ex, seq, x, 1, logits), 0);
    for (int t = 1; t < 61; t++) {
        ids[t] = argmax(logits, 512);
        if (ids[t] != expected[t]) {
            TEST_FAIL_AT("O%d: token %d is %d, expected %d", level, t, ids[t], expected[t]);
            break;
        }
        CHECK_EQ(executor_embed(&ex, &ids[t], 1, x), 0);
        CHECK_EQ(executor_decode(&ex, &seq, x, 1, logits), 0);
    }
    executor_free(&ex);
    module_free(&m);
    free_store(&s);
}

TEST(greedy_stories_O0) { greedy(0); }
TEST(greedy_stories_O1) { greedy(1); }
TEST(greedy_stories_O2) { greedy(2); }

TEST(chunked_prefill_and_batched_decode_agree_exactly)
{
    struct store s;
    struct lower_spec spec;
    load_stories(&s, &spec);
    struct module m;
    CHECK_EQ(lower_build(&spec, &m), 0);
    CHECK_EQ(passes_run(&m, 2, NULL, 0, NULL, NULL), 0);
    struct tensor_source src = {lookup, &s};
    struct executor ex;
    CHECK_EQ(executor_init(&ex, &m, &src, 2, 0), 0);
    /* three sequences with different prompts (prefilled in chunks of up to
     * 16), then decoded together and one by one */
    int32_t prompts[3][40];
    int lens[3] = {37, 5, 20};
    for (int q = 0; q < 3; q++)
        for (int i = 0; i < lens[q]; i++) prompts[q][i] = (int32_t)(expected[i % 61] + q) % 512;
    float *x = xmalloc(sizeof(float) * 64 * 64), batch_logits[3 * 512], single[512];
    int seqs[3], solo[3];
    for (int q = 0; q < 3; q++) {
        seqs[q] = kv_cache_add_sequence(&ex.kv);
        solo[q] = kv_cache_add_sequence(&ex.kv);
        float lg[512];
        for (int at = 0; at < lens[q]; at += 16) {
            int n = lens[q] - at < 16 ? lens[q] - at : 16;
            CHECK_EQ(executor_embed(&ex, prompts[q] + at, n, x), 0);
            CHECK_EQ(executor_prefill(&ex, seqs[q], x, n, lg), 0);
            CHECK_EQ(executor_prefill(&ex, solo[q], x, n, lg), 0);
        }
    }
    int32_t next[3] = {7, 300, 42};
    for (int step = 0; step < 3; step++) {
        CHECK_EQ(executor_embed(&ex, next, 3, x), 0);
        CHECK_EQ(executor_decode(&ex, seqs, x, 3, batch_logits), 0);
        for (int q = 0; q < 3; q++) {
            float one[64];
            CHECK_EQ(executor_embed(&ex, &next[q], 1, one), 0);
            CHECK_EQ(executor_decode(&ex, &solo[q], one, 1, single), 0);
            CHECK(memcmp(single, batch_logits + q * 512, sizeof single) == 0);
        }
        for (int q = 0; q < 3; q++) next[q] = argmax(batch_logits + q * 512, 512);
    }
    /* a chunk larger than the prefill bound is refused */
    CHECK_EQ(executor_prefill(&ex, seqs[0], x, 17, single), -1);
    CHECK_CONTAINS(last_error(), "the library allows 1 to 16");
    int32_t bad = 512;
    CHECK_EQ(executor_embed(&ex, &bad, 1, x), -1);
    CHECK_CONTAINS(last_error(), "token id 512 is outside the vocabulary");
    free(x);
    executor_free(&ex);
    module_free(&m);
    free_store(&s);
}

TEST_MAIN()
