/* Parameter names and shapes per architecture, checked without weights:
 * a Llama-2-7B-shaped configuration gives the shapes of mlc-formats.md §2.1. */
#include "common/err.h"
#include "formats/param_map.h"
#include "tests/unit/test.h"

static struct weight_config llama2_7b(void)
{
    struct weight_config c = {0};
    c.model_type = "llama";
    c.quantization = "q4f16_1";
    c.hidden_size = 4096, c.intermediate_size = 11008, c.num_attention_heads = 32;
    c.num_key_value_heads = 32, c.head_dim = 128, c.num_hidden_layers = 32, c.vocab_size = 32000;
    c.tensor_parallel_shards = 1;
    return c;
}

static const struct mlc_param *find(const struct param_map *m, const char *name)
{
    for (size_t i = 0; i < m->nparams; i++)
        if (!strcmp(m->params[i].name, name)) return &m->params[i];
    return NULL;
}

/* outputs of a parameter under a scheme, with its expected rows (vocab 32000) */
static int outs(const char *scheme, const struct mlc_param *p, struct mlc_output o[3])
{
    int64_t rows = p->shape[0] < 0 ? 32000 : p->shape[0], k = p->ndim == 2 ? p->shape[1] : 1;
    return param_outputs(quant_scheme_by_name(scheme), p, rows, k, o);
}

#define CHECK_SHAPE(o, a, b) do { CHECK_EQ((o).shape[0], a); CHECK_EQ((o).shape[1], b); } while (0)

TEST(llama2_7b_q4f16_1_shapes_match_mlc)
{
    struct weight_config c = llama2_7b();
    struct param_map m;
    CHECK_EQ(param_map_build(&m, &c), 0);
    /* embed + 32 * (qkv, o, gate_up, down, 2 norms) + norm + lm_head */
    CHECK_EQ(m.nparams, 1 + 32 * 6 + 2);
    struct mlc_output o[3];
    CHECK_EQ(outs("q4f16_1", find(&m, "model.embed_tokens.weight"), o), 2);
    CHECK_STR(o[0].name, "model.embed_tokens.q_weight");
    CHECK_SHAPE(o[0], 32000, 512);
    CHECK_SHAPE(o[1], 32000, 128);
    CHECK_EQ(o[0].dtype, DT_U32);
    CHECK_EQ(o[1].dtype, DT_F16);
    outs("q4f16_1", find(&m, "lm_head.weight"), o);
    CHECK_STR(o[1].name, "lm_head.q_scale");
    CHECK_SHAPE(o[0], 32000, 512);
    const struct mlc_param *qkv = find(&m, "model.layers.31.self_attn.qkv_proj.weight");
    CHECK_EQ(qkv->nsources, 3);
    CHECK_STR(qkv->sources[1], "model.layers.31.self_attn.k_proj.weight");
    outs("q4f16_1", qkv, o);
    CHECK_SHAPE(o[0], 12288, 512);
    CHECK_SHAPE(o[1], 12288, 128);
    outs("q4f16_1", find(&m, "model.layers.0.self_attn.o_proj.weight"), o);
    CHECK_SHAPE(o[0], 4096, 512);
    CHECK_SHAPE(o[1], 4096, 128);
    const struct mlc_param *gu = find(&m, "model.layers.0.mlp.gate_up_proj.weight");
    CHECK_STR(gu->sources[0], "model.layers.0.mlp.gate_proj.weight");
    outs("q4f16_1", gu, o);
    CHECK_SHAPE(o[0], 22016, 512);
    CHECK_SHAPE(o[1], 22016, 128);
    outs("q4f16_1", find(&m, "model.layers.0.mlp.down_proj.weight"), o);
    CHECK_SHAPE(o[0], 4096, 1376);
    CHECK_SHAPE(o[1], 4096, 344);
    CHECK_EQ(outs("q4f16_1", find(&m, "model.layers.0.input_layernorm.weight"), o), 1);
    CHECK_EQ(o[0].dtype, DT_F16);
    CHECK_EQ(o[0].ndim, 1);
    CHECK(param_map_is_unused(&m, "model.layers.7.self_attn.rotary_emb.inv_freq"));
    /* KN: Linear transposed, the embedding not */
    outs("q4f16_0", find(&m, "model.layers.0.mlp.down_proj.weight"), o);
    CHECK_SHAPE(o[0], 1376, 4096);
    CHECK_SHAPE(o[1], 344, 4096);
    outs("q4f16_0", find(&m, "model.embed_tokens.weight"), o);
    CHECK_SHAPE(o[0], 32000, 512);
    /* int3, group 40: 11008 → 276 groups of 4 words */
    outs("q3f16_1", find(&m, "model.layers.0.mlp.down_proj.weight"), o);
    CHECK_SHAPE(o[0], 4096, 1104);
    CHECK_SHAPE(o[1], 4096, 276);
    /* q4f16_2 leaves the embedding and lm_head; q4f32_1 stores float32 scales */
    CHECK_EQ(outs("q4f16_2", find(&m, "lm_head.weight"), o), 1);
    CHECK_STR(o[0].name, "lm_head.weight");
    outs("q4f32_1", find(&m, "lm_head.weight"), o);
    CHECK_EQ(o[1].dtype, DT_F32);
    /* FP8: [N, K] float8 weights, float32 [1] scales, a calibration scale */
    CHECK_EQ(outs("e4m3_e4m3_f16", qkv, o), 3);
    CHECK_SHAPE(o[0], 12288, 4096);
    CHECK_EQ(o[0].dtype, DT_F8_E4M3);
    CHECK_STR(o[2].name, "model.layers.31.self_attn.qkv_proj.q_calibration_scale");
    CHECK_EQ(o[2].shape[0], 1);
    CHECK_EQ(outs("e4m3_e4m3_f16", find(&m, "lm_head.weight"), o), 1);
    CHECK_EQ(outs("e5m2_e5m2_f16", qkv, o), 1);
    CHECK_EQ(o[0].dtype, DT_F8_E5M2);
    param_map_free(&m);
}

TEST(tied_embeddings_and_architectures)
{
    struct weight_config c = llama2_7b();
    c.tie_word_embeddings = true;
    struct param_map m;
    param_map_build(&m, &c);
    CHECK(find(&m, "lm_head.weight") == NULL);
    param_map_free(&m);
    c.model_type = "mistral"; /* always has its own lm_head */
    param_map_build(&m, &c);
    CHECK(find(&m, "lm_head.weight") != NULL);
    CHECK_EQ(find(&m, "lm_head.weight")->shape[0], -1); /* symbolic vocab_size */
    param_map_free(&m);
    c.model_type = "qwen2";
    c.num_key_value_heads = 8;
    param_map_build(&m, &c);
    CHECK(find(&m, "lm_head.weight") == NULL);
    const struct mlc_param *b = find(&m, "model.layers.0.self_attn.c_attn.bias");
    CHECK(b != NULL);
    CHECK_EQ(b->shape[0], (32 + 2 * 8) * 128);
    CHECK_STR(b->sources[2], "model.layers.0.self_attn.v_proj.bias");
    CHECK_EQ(find(&m, "model.embed_tokens.weight")->shape[0], 32000); /* concrete vocab */
    CHECK(find(&m, "model.layers.0.self_attn.o_proj.bias") == NULL);
    CHECK(!param_map_is_unused(&m, "model.layers.0.self_attn.rotary_emb.inv_freq"));
    param_map_free(&m);
    c.model_type = "qwen3";
    c.head_dim = 64;
    param_map_build(&m, &c);
    CHECK(find(&m, "model.layers.0.self_attn.c_attn.bias") == NULL);
    CHECK_EQ(find(&m, "model.layers.3.self_attn.q_norm.weight")->shape[0], 64);
    CHECK_EQ(find(&m, "model.layers.0.self_attn.c_attn.weight")->shape[0], (32 + 16) * 64);
    param_map_free(&m);
    c.attention_bias = true;
    param_map_build(&m, &c);
    CHECK(find(&m, "model.layers.0.self_attn.c_attn.bias") != NULL);
    CHECK(find(&m, "model.layers.0.self_attn.o_proj.bias") != NULL);
    param_map_free(&m);
    c.model_type = "gpt2";
    CHECK_EQ(param_map_build(&m, &c), -1);
    CHECK_CONTAINS(last_error(), "model_type 'gpt2' is not supported");
}

TEST_MAIN()
