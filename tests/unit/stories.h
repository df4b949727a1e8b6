/* The real stories260K model for the executor's unit tests: its float32
 * weights read straight from the fixture's safetensors file, HuggingFace
 * names fused into MLC's by hand (independent of mlc-quant), and, when a
 * test asks, quantized in-process with a scheme's reference quantizer into
 * the tensors that scheme stores (q_weight, q_scale, ...). */
#ifndef MLC_TEST_STORIES_H
#define MLC_TEST_STORIES_H

#include <math.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/engine/executor.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/lower/lower.h"
#include "common/lower/passes.h"
#include "formats/param_map.h"
#include "formats/quant.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#define STORE_MAX 96

/* greedy from BOS: llama2.c's story */
static const int stories_expected[61] = {
    1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337,
    410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266,
    268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267, 414, 270, 333, 415};

struct store {
    struct tensor_view t[STORE_MAX];
    struct tensor_info info[STORE_MAX];
    int n;
    void *owned[STORE_MAX];
};

static const struct tensor_view *store_lookup(void *ctx, const char *name)
{
    struct store *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    return NULL;
}

static void store_add(struct store *s, const char *name, enum dtype t, void *data, int ndim, int64_t d0, int64_t d1)
{
    int i = s->n++;
    size_t numel = (size_t)(d0 * (ndim > 1 ? d1 : 1));
    s->owned[i] = data;
    s->t[i] = (struct tensor_view){xstrdup(name), t, ndim, {d0, ndim > 1 ? d1 : 0}, data, numel * dtype_size(t), 0};
    s->info[i] = (struct tensor_info){s->t[i].name, t, ndim, {d0, ndim > 1 ? d1 : 0}};
}

/* rows of several [r_i, K] tensors stacked along axis 0 */
static float *stories_concat(struct buf *file, size_t base, json_t *hdr, const char **names, int n, int64_t *rows_out)
{
    int64_t rows = 0;
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        json_t *e = json_object_get(hdr, names[i]);
        json_t *off = json_object_get(e, "data_offsets");
        rows += json_integer_value(json_array_get(json_object_get(e, "shape"), 0));
        bytes += (size_t)(json_integer_value(json_array_get(off, 1)) - json_integer_value(json_array_get(off, 0)));
    }
    float *out = xmalloc(bytes);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        json_t *off = json_object_get(json_object_get(hdr, names[i]), "data_offsets");
        size_t s = (size_t)json_integer_value(json_array_get(off, 0)), en = (size_t)json_integer_value(json_array_get(off, 1));
        memcpy((char *)out + at, file->data + base + s, en - s);
        at += en - s;
    }
    *rows_out = rows;
    return out;
}

static void stories_dims(struct lower_spec *spec, const char *quantization)
{
    memset(spec, 0, sizeof *spec);
    spec->model_type = "llama";
    spec->quantization = quantization;
    struct model_dims *d = &spec->dims;
    d->hidden_size = 64, d->intermediate_size = 172, d->vocab_size = 512, d->active_vocab_size = 512;
    d->num_hidden_layers = 5, d->num_attention_heads = 8, d->num_key_value_heads = 4, d->head_dim = 8;
    d->rms_norm_eps = 1e-5, d->rope_theta = 10000.0;
    d->context_window_size = 512, d->prefill_chunk_size = 16, d->sliding_window_size = -1;
    d->attention_sink_size = -1, d->max_batch_size = 8, d->tie_word_embeddings = true;
}

/* float32 weights under MLC's names */
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
    int64_t rows;
    char a[128], b[128], c[128], name[128];
    const char *names[3] = {a, b, c};
#define ONE(src, dst, ndim, cols)                                                                                     \
    do {                                                                                                              \
        snprintf(a, sizeof a, "%s", src);                                                                             \
        float *w_ = stories_concat(&file, base, hdr, names, 1, &rows);                                                \
        store_add(s, dst, DT_F32, w_, ndim, rows, cols);                                                              \
    } while (0)
    ONE("model.embed_tokens.weight", "model.embed_tokens.weight", 2, 64);
    ONE("model.norm.weight", "model.norm.weight", 1, 0);
    for (int i = 0; i < 5; i++) {
        snprintf(a, sizeof a, "model.layers.%d.self_attn.q_proj.weight", i);
        snprintf(b, sizeof b, "model.layers.%d.self_attn.k_proj.weight", i);
        snprintf(c, sizeof c, "model.layers.%d.self_attn.v_proj.weight", i);
        float *w = stories_concat(&file, base, hdr, names, 3, &rows);
        snprintf(name, sizeof name, "model.layers.%d.self_attn.qkv_proj.weight", i);
        store_add(s, name, DT_F32, w, 2, rows, 64);
        snprintf(name, sizeof name, "model.layers.%d.self_attn.o_proj.weight", i);
        ONE(name, name, 2, 64);
        snprintf(a, sizeof a, "model.layers.%d.mlp.gate_proj.weight", i);
        snprintf(b, sizeof b, "model.layers.%d.mlp.up_proj.weight", i);
        w = stories_concat(&file, base, hdr, names, 2, &rows);
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate_up_proj.weight", i);
        store_add(s, name, DT_F32, w, 2, rows, 64);
        snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", i);
        ONE(name, name, 2, 172);
        snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", i);
        ONE(name, name, 1, 0);
        snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", i);
        ONE(name, name, 1, 0);
    }
#undef ONE
    json_decref(hdr);
    buf_free(&file);
    stories_dims(spec, "q0f32");
    spec->tensors = s->info;
    spec->ntensors = s->n;
}

static void free_store(struct store *s)
{
    for (int i = 0; i < s->n; i++) {
        free((char *)s->t[i].name);
        free(s->owned[i]);
    }
    s->n = 0;
}

/* The float32 store re-stored as `scheme` stores it. */
static void quantize_stories(const struct store *in, struct store *out, struct lower_spec *spec, const char *scheme)
{
    const struct quant_scheme *s = quant_scheme_by_name(scheme);
    memset(out, 0, sizeof *out);
    for (int i = 0; i < in->n; i++) {
        const struct tensor_view *t = &in->t[i];
        const float *v = t->data;
        int64_t rows = t->shape[0], cols = t->ndim > 1 ? t->shape[1] : 1;
        enum param_role role = t->ndim == 1 ? ROLE_VECTOR
                               : !strcmp(t->name, "model.embed_tokens.weight") ? ROLE_EMBEDDING
                                                                                : ROLE_LINEAR;
        struct mlc_output o[3];
        int n = weight_storage(s, t->name, role, rows, cols, o);
        if (o[0].kind == OUT_PLAIN) {
            void *d = xmalloc(dtype_size(o[0].dtype) * (size_t)(rows * cols));
            for (int64_t k = 0; k < rows * cols; k++) quant_store(o[0].dtype, d, (size_t)k, quant_round(o[0].dtype, v[k]));
            store_add(out, o[0].name, o[0].dtype, d, o[0].ndim, o[0].shape[0], o[0].shape[1]);
            continue;
        }
        if (s->kind == QUANT_GROUP) {
            size_t words = quant_row_words(s, (size_t)cols), groups = quant_groups(s, (size_t)cols);
            size_t ms = dtype_size(s->model_dtype);
            uint32_t *q = xmalloc(4 * words * (size_t)rows);
            unsigned char *sc = xmalloc(ms * groups * (size_t)rows);
            float *row = xmalloc(sizeof(float) * (size_t)cols);
            for (int64_t r = 0; r < rows; r++) {
                for (int64_t k = 0; k < cols; k++) row[k] = quant_round(s->model_dtype, v[r * cols + k]);
                quant_group_row_ref(s, row, (size_t)cols, q + r * (int64_t)words, sc + (size_t)r * groups * ms);
            }
            free(row);
            if (s->layout == QUANT_KN && role == ROLE_LINEAR) { /* stored transposed */
                uint32_t *qt = xmalloc(4 * words * (size_t)rows);
                unsigned char *st = xmalloc(ms * groups * (size_t)rows);
                for (int64_t r = 0; r < rows; r++) {
                    for (size_t j = 0; j < words; j++) qt[j * (size_t)rows + (size_t)r] = q[(size_t)r * words + j];
                    for (size_t g = 0; g < groups; g++)
                        memcpy(st + (g * (size_t)rows + (size_t)r) * ms, sc + ((size_t)r * groups + g) * ms, ms);
                }
                free(q);
                free(sc);
                q = qt;
                sc = (unsigned char *)st;
            }
            store_add(out, o[0].name, o[0].dtype, q, 2, o[0].shape[0], o[0].shape[1]);
            store_add(out, o[1].name, o[1].dtype, sc, 2, o[1].shape[0], o[1].shape[1]);
        } else {
            float mx = 0;
            float *m = xmalloc(sizeof(float) * (size_t)(rows * cols));
            for (int64_t k = 0; k < rows * cols; k++) {
                m[k] = quant_round(DT_F16, v[k]);
                mx = fabsf(m[k]) > mx ? fabsf(m[k]) : mx;
            }
            float scale = s->use_scale ? quant_fp8_scale(s, mx) : 1.0f;
            uint8_t *q = xmalloc((size_t)(rows * cols));
            quant_fp8_ref(s, m, (size_t)(rows * cols), scale, q);
            free(m);
            store_add(out, o[0].name, o[0].dtype, q, 2, rows, cols);
            for (int k = 1; k < n; k++) { /* the scale, and an activation scale of 1 */
                float *f = xmalloc(sizeof(float));
                *f = o[k].kind == OUT_CALIBRATION ? 1.0f : scale;
                store_add(out, o[k].name, DT_F32, f, o[k].ndim, o[k].shape[0], o[k].shape[1]);
            }
        }
    }
    stories_dims(spec, scheme);
    spec->tensors = out->info;
    spec->ntensors = out->n;
}

static int stories_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

#endif
