/* Graph building, parameter binding, passes, memory planning and the
 * module's msgpack form (including hostile plans). */
#include "common/lower/lower.h"
#include "common/lower/memplan.h"
#include "common/lower/passes.h"
#include "common/stream.h"
#include "tests/unit/test.h"

/* A Llama-2-7B-shaped q4f16_1 config with 2 layers: the tensor list is
 * what mlc-formats.md §2.1 gives for the 7B model. */
struct spec_store {
    struct tensor_info t[128];
    char names[128][96];
    int n;
};

static void t_add(struct spec_store *s, const char *name, enum dtype dt, int64_t d0, int64_t d1)
{
    snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
    s->t[s->n] = (struct tensor_info){s->names[s->n], dt, d1 ? 2 : 1, {d0, d1}};
    s->n++;
}

static void llama7b_q4(struct spec_store *s, struct lower_spec *spec, int layers)
{
    memset(s, 0, sizeof *s);
    t_add(s, "model.embed_tokens.q_weight", DT_U32, 32000, 512);
    t_add(s, "model.embed_tokens.q_scale", DT_F16, 32000, 128);
    t_add(s, "lm_head.q_weight", DT_U32, 32000, 512);
    t_add(s, "lm_head.q_scale", DT_F16, 32000, 128);
    t_add(s, "model.norm.weight", DT_F16, 4096, 0);
    char n[96];
    for (int i = 0; i < layers; i++) {
#define T(fmt, dt, a, b) (snprintf(n, sizeof n, "model.layers.%d." fmt, i), t_add(s, n, dt, a, b))
        T("self_attn.qkv_proj.q_weight", DT_U32, 12288, 512);
        T("self_attn.qkv_proj.q_scale", DT_F16, 12288, 128);
        T("self_attn.o_proj.q_weight", DT_U32, 4096, 512);
        T("self_attn.o_proj.q_scale", DT_F16, 4096, 128);
        T("mlp.gate_up_proj.q_weight", DT_U32, 22016, 512);
        T("mlp.gate_up_proj.q_scale", DT_F16, 22016, 128);
        T("mlp.down_proj.q_weight", DT_U32, 4096, 1376);
        T("mlp.down_proj.q_scale", DT_F16, 4096, 344);
        T("input_layernorm.weight", DT_F16, 4096, 0);
        T("post_attention_layernorm.weight", DT_F16, 4096, 0);
#undef T
    }
    memset(spec, 0, sizeof *spec);
    spec->model_type = "llama";
    spec->quantization = "q4f16_1";
    struct model_dims *d = &spec->dims;
    d->hidden_size = 4096, d->intermediate_size = 11008, d->vocab_size = 32000, d->active_vocab_size = 32000;
    d->num_hidden_layers = layers, d->num_attention_heads = 32, d->num_key_value_heads = 32, d->head_dim = 128;
    d->rms_norm_eps = 1e-5, d->rope_theta = 10000;
    d->context_window_size = 4096, d->prefill_chunk_size = 2048, d->sliding_window_size = -1;
    d->attention_sink_size = -1, d->max_batch_size = 80;
    spec->tensors = s->t;
    spec->ntensors = s->n;
}

static int count_ops(const struct function *f, enum op_kind k)
{
    int n = 0;
    for (int i = 0; i < f->nops; i++) n += f->ops[i].kind == k;
    return n;
}

TEST(llama7b_q4f16_1_binds_every_parameter_with_section_2_1_shapes)
{
    struct spec_store s;
    struct lower_spec spec;
    llama7b_q4(&s, &spec, 2);
    struct module m;
    if (lower_build(&spec, &m) != 0) {
        TEST_FAIL_AT("%s", last_error());
        return;
    }
    CHECK_EQ(m.nparams, s.n);
    CHECK(module_function(&m, "embed") && module_function(&m, "prefill") && module_function(&m, "decode") &&
          module_function(&m, "create_kv_cache"));
    const struct function *pf = module_function(&m, "prefill");
    CHECK_EQ(count_ops(pf, OP_DEQUANTIZE), 2 * 4 + 1); /* 4 linears per layer + lm_head */
    CHECK_EQ(count_ops(pf, OP_ATTENTION), 2);
    CHECK_EQ(count_ops(pf, OP_TAKE_LAST), 1);
    CHECK_EQ(count_ops(module_function(&m, "decode"), OP_TAKE_LAST), 0);
    /* params: stored bytes of every tensor */
    int64_t bytes = 0;
    for (int i = 0; i < s.n; i++) bytes += s.t[i].shape[0] * (s.t[i].ndim > 1 ? s.t[i].shape[1] : 1) * (int64_t)dtype_size(s.t[i].dtype);
    CHECK_EQ(m.mem.params_bytes, bytes);
    CHECK_EQ(m.mem.kv_bytes_per_token, 2 * 2 * 32 * 128 * 4);
    CHECK_EQ(m.mem.kv_bytes_at_context, m.mem.kv_bytes_per_token * 4096);
    module_free(&m);
}

TEST(missing_and_misshaped_parameters_are_named)
{
    struct spec_store s;
    struct lower_spec spec;
    llama7b_q4(&s, &spec, 2);
    struct module m;
    /* drop layer 1's down_proj scale */
    for (int i = 0; i < s.n; i++)
        if (!strcmp(s.t[i].name, "model.layers.1.mlp.down_proj.q_scale")) s.t[i].name = "renamed";
    CHECK_EQ(lower_build(&spec, &m), -1);
    CHECK_STR(last_error(), "parameter model.layers.1.mlp.down_proj.q_scale float16 [4096, 344] is missing from the weights");
    llama7b_q4(&s, &spec, 2);
    s.t[4].shape[0] = 4095; /* model.norm.weight */
    CHECK_EQ(lower_build(&spec, &m), -1);
    CHECK_STR(last_error(), "parameter model.norm.weight has shape [4095] in the weights, but the config implies [4096]");
    llama7b_q4(&s, &spec, 2);
    spec.quantization = "q4f32_1"; /* scales would be float32 */
    CHECK_EQ(lower_build(&spec, &m), -1);
    CHECK_CONTAINS(last_error(), "is float16 in the weights, but q4f32_1 implies float32");
    llama7b_q4(&s, &spec, 2);
    spec.model_type = "gpt2";
    CHECK_EQ(lower_build(&spec, &m), -1);
    CHECK_CONTAINS(last_error(), "model_type 'gpt2' is not supported (supported: llama mistral qwen2 qwen3 gemma2 gemma3 gemma3_text phi3)");
}

/* The most bytes live at any op (a lower bound for any plan). */
static int64_t live_peak(const struct function *f)
{
    int64_t peak = 0;
    for (int i = 0; i < f->nops; i++) {
        int64_t live = 0;
        for (int v = 0; v < f->nvalues; v++) {
            if (f->values[v].kind == VAL_PARAM) continue;
            int def = f->values[v].kind == VAL_INPUT ? -1 : 1 << 30, last = f->values[v].kind == VAL_OUTPUT ? f->nops : -1;
            for (int j = 0; j < f->nops; j++) {
                for (int k = 0; k < f->ops[j].nout; k++)
                    if (f->ops[j].out[k] == v && j < def) def = j;
                for (int k = 0; k < f->ops[j].nin; k++)
                    if (f->ops[j].in[k] == v && j > last) last = j;
            }
            if (def <= i && (last >= i || def == i)) live += value_bytes(&f->values[v]);
        }
        if (live > peak) peak = live;
    }
    return peak;
}

TEST(passes_fuse_and_plan_at_each_level)
{
    struct spec_store s;
    struct lower_spec spec;
    llama7b_q4(&s, &spec, 2);
    struct module m;
    CHECK_EQ(lower_build(&spec, &m), 0);
    CHECK_EQ(passes_run(&m, 0, NULL, 0, NULL, NULL), 0);
    const struct function *pf = module_function(&m, "prefill");
    CHECK_EQ(count_ops(pf, OP_DEQUANTIZE), 9);
    CHECK_EQ(m.npasses, 2);
    CHECK(memplan_is_planned(pf));
    module_free(&m);

    CHECK_EQ(lower_build(&spec, &m), 0);
    CHECK_EQ(passes_run(&m, 2, NULL, 0, NULL, NULL), 0);
    pf = module_function(&m, "prefill");
    CHECK_EQ(count_ops(pf, OP_DEQUANTIZE), 0);
    CHECK_EQ(count_ops(pf, OP_SILU_MUL), 0);
    /* per layer: post-attention add+norm, and the next layer's input
     * norm after the MLP residual (not after the last layer: take_last) */
    CHECK_EQ(count_ops(pf, OP_ADD_RMS_NORM), 3);
    CHECK_EQ(count_ops(pf, OP_ADD), 1);
    CHECK_EQ(count_ops(module_function(&m, "decode"), OP_ADD_RMS_NORM), 4);
    int epi = 0;
    for (int i = 0; i < pf->nops; i++) epi += pf->ops[i].kind == OP_MATMUL && pf->ops[i].a.epilogue == EPI_SILU_MUL;
    CHECK_EQ(epi, 2);
    /* DCE dropped the orphaned dequantized temporaries and gate_up values */
    for (int v = 0; v < pf->nvalues; v++) {
        CHECK(!strstr(pf->values[v].name, ".dequantized"));
        CHECK(pf->values[v].kind == VAL_PARAM || !strstr(pf->values[v].name, "gate_up"));
    }
    CHECK_EQ(m.npasses, 5);
    /* liveness packing: never below the largest set of values live at
     * once, close to it, and independent of the number of layers */
    int64_t peak = live_peak(pf);
    CHECK(pf->arena_bytes >= peak);
    CHECK(pf->arena_bytes <= peak + peak / 2);
    int64_t arena2 = pf->arena_bytes;
    module_free(&m);
    llama7b_q4(&s, &spec, 6);
    CHECK_EQ(lower_build(&spec, &m), 0);
    CHECK_EQ(passes_run(&m, 2, NULL, 0, NULL, NULL), 0);
    CHECK_EQ(module_function(&m, "prefill")->arena_bytes, arena2);
    module_free(&m);

    /* --pass-off */
    CHECK_EQ(lower_build(&spec, &m), 0);
    const char *off[] = {"fuse-gate-up"};
    CHECK_EQ(passes_run(&m, 3, off, 1, NULL, NULL), 0);
    CHECK_EQ(count_ops(module_function(&m, "prefill"), OP_SILU_MUL), 6); /* one per layer */
    module_free(&m);
}

TEST(fused_add_norm_keeps_the_norm_weight_offset)
{
    struct spec_store s;
    struct lower_spec spec;
    llama7b_q4(&s, &spec, 2);
    struct module m;
    CHECK_EQ(lower_build(&spec, &m), 0);
    for (int fi = 0; fi < m.nfns; fi++)
        for (int i = 0; i < m.fns[fi].nops; i++)
            if (m.fns[fi].ops[i].kind == OP_RMS_NORM) m.fns[fi].ops[i].a.weight_offset = 1.0;
    CHECK_EQ(passes_run(&m, 2, NULL, 0, NULL, NULL), 0);
    const struct function *f = module_function(&m, "decode");
    CHECK(count_ops(f, OP_ADD_RMS_NORM) >= 3);
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i].kind == OP_ADD_RMS_NORM || f->ops[i].kind == OP_RMS_NORM) CHECK(f->ops[i].a.weight_offset == 1.0);
    module_free(&m);
}

static int pack_and_parse(const struct module *m, struct module *back, struct buf *bytes)
{
    struct rec_builder b;
    rb_init(&b, "module");
    module_pack_fields(&b, m);
    buf_reset(bytes);
    rb_finish(&b, bytes);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (msgpack_unpack_next(&up, bytes->data, bytes->len, &off) != MSGPACK_UNPACK_SUCCESS) return -2;
    int rc = module_from_msgpack(&up.data, back, "module record");
    msgpack_unpacked_destroy(&up);
    return rc;
}

TEST(module_round_trips_through_msgpack)
{
    struct spec_store s;
    struct lower_spec spec;
    llama7b_q4(&s, &spec, 2);
    struct module m, back;
    CHECK_EQ(lower_build(&spec, &m), 0);
    CHECK_EQ(passes_run(&m, 2, NULL, 0, NULL, NULL), 0);
    struct buf a = BUF_INIT, b = BUF_INIT;
    buf_init(&a);
    buf_init(&b);
    CHECK_EQ(pack_and_parse(&m, &back, &a), 0);
    struct module again;
    CHECK_EQ(pack_and_parse(&back, &again, &b), 0);
    CHECK_EQ(a.len, b.len);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    module_free(&back);
    module_free(&again);
    module_free(&m);
    buf_free(&a);
    buf_free(&b);
}

/* The attributes Gemma 2/3 and Phi-3 need, set on a built module's ops. */
static void set_new_attributes(struct module *m)
{
    m->dims.local_window = 8, m->dims.local_window_pattern = 2, m->dims.rope_local_theta = 10000;
    m->dims.query_pre_attn_scalar = 24, m->dims.attn_softcap = 50, m->dims.final_softcap = 30;
    m->dims.rotary_dim = 96;
    struct rope_scaling lr = {.kind = ROPE_SCALING_LONGROPE, .original_max_position = 4096, .n_factors = 48,
                              .attention_factor = 1.19};
    for (int i = 0; i < 48; i++) lr.short_factor[i] = 1.0f + 0.01f * (float)i, lr.long_factor[i] = 1.5f * (float)(i + 1);
    m->dims.rope_scaling = lr;
    for (int fi = 0; fi < m->nfns; fi++)
        for (int i = 0, ropes = 0; i < m->fns[fi].nops; i++) {
            struct op *o = &m->fns[fi].ops[i];
            if (o->kind == OP_EMBED) o->a.scale = 64.0;
            if (o->kind == OP_RMS_NORM || o->kind == OP_ADD_RMS_NORM) o->a.weight_offset = 1.0;
            if (o->kind == OP_MATMUL && o->a.epilogue == EPI_SILU_MUL) o->a.epilogue = EPI_GELU_MUL;
            if (o->kind == OP_ATTENTION) o->a.attn_scale = 0.125, o->a.softcap = 50, o->a.local_window = 4096;
            if (o->kind == OP_ROPE) {
                o->a.rotary_dim = 96;
                if (ropes++ % 2 == 0) o->a.rope_scaling = lr; /* the first layer's */
                else o->a.rope_scaling = (struct rope_scaling){.kind = ROPE_SCALING_LINEAR, .factor = 8};
            }
        }
}

TEST(new_attributes_round_trip_and_default_to_absent)
{
    struct spec_store s;
    struct lower_spec spec;
    llama7b_q4(&s, &spec, 2);
    struct module m, back;
    CHECK_EQ(lower_build(&spec, &m), 0);
    CHECK_EQ(passes_run(&m, 2, NULL, 0, NULL, NULL), 0);
    struct buf plain = BUF_INIT, a = BUF_INIT, b = BUF_INIT;
    buf_init(&plain);
    buf_init(&a);
    buf_init(&b);
    /* none set: none packed (older plans keep their bytes) */
    CHECK_EQ(pack_and_parse(&m, &back, &plain), 0);
    CHECK(!memmem(plain.data, plain.len, "weight_offset", 13) && !memmem(plain.data, plain.len, "softcap", 7) &&
          !memmem(plain.data, plain.len, "rotary_dim", 10) && !memmem(plain.data, plain.len, "local_window", 12));
    module_free(&back);
    set_new_attributes(&m);
    CHECK_EQ(pack_and_parse(&m, &back, &a), 0);
    struct module again;
    CHECK_EQ(pack_and_parse(&back, &again, &b), 0);
    CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    const struct function *f = module_function(&back, "decode");
    int seen = 0, ropes = 0;
    for (int i = 0; i < f->nops; i++) {
        const struct op *o = &f->ops[i];
        if (o->kind == OP_ATTENTION) {
            seen |= 1;
            CHECK(o->a.attn_scale == 0.125 && o->a.softcap == 50 && o->a.local_window == 4096);
        }
        if (o->kind == OP_ADD_RMS_NORM) {
            seen |= 2;
            CHECK(o->a.weight_offset == 1.0);
        }
        if (o->kind == OP_MATMUL && o->a.epilogue) {
            seen |= 4;
            CHECK_EQ(o->a.epilogue, EPI_GELU_MUL);
        }
        if (o->kind == OP_ROPE && ropes++ == 0) {
            seen |= 8;
            CHECK_EQ(o->a.rope_scaling.kind, ROPE_SCALING_LONGROPE);
            CHECK_EQ(o->a.rope_scaling.n_factors, 48);
            CHECK(o->a.rope_scaling.long_factor[47] == 72.0f && o->a.rope_scaling.short_factor[3] == 1.03f);
            CHECK(o->a.rope_scaling.attention_factor == 1.19 && o->a.rotary_dim == 96);
        }
        else if (o->kind == OP_ROPE) {
            seen |= 16;
            CHECK(o->a.rope_scaling.kind == ROPE_SCALING_LINEAR && o->a.rope_scaling.factor == 8);
        }
    }
    CHECK_EQ(seen, 31);
    CHECK(module_function(&back, "embed")->ops[0].a.scale == 64.0);
    CHECK(back.dims.local_window == 8 && back.dims.local_window_pattern == 2 && back.dims.rope_local_theta == 10000 &&
          back.dims.query_pre_attn_scalar == 24 && back.dims.attn_softcap == 50 && back.dims.final_softcap == 30 &&
          back.dims.rotary_dim == 96 && back.dims.rope_scaling.kind == ROPE_SCALING_LONGROPE);
    module_free(&back);
    module_free(&again);
    module_free(&m);
    buf_free(&plain);
    buf_free(&a);
    buf_free(&b);
}

/* Corrupt one field of a packed module (through its JSON form). */
static void check_rejects(const char *path_desc, void (*mutate)(struct module *), const char *want)
{
    struct spec_store s;
    struct lower_spec spec;
    llama7b_q4(&s, &spec, 1);
    struct module m, back;
    CHECK_EQ(lower_build(&spec, &m), 0);
    CHECK_EQ(passes_run(&m, 2, NULL, 0, NULL, NULL), 0);
    mutate(&m);
    struct buf bytes = BUF_INIT;
    buf_init(&bytes);
    int rc = pack_and_parse(&m, &back, &bytes);
    if (rc != -1) TEST_FAIL_AT("%s: accepted", path_desc);
    else CHECK_CONTAINS(last_error(), want);
    if (rc == 0) module_free(&back);
    module_free(&m);
    buf_free(&bytes);
}

static void bad_index(struct module *m) { module_function(m, "decode")->ops[3].in[0] = 99999; }
static void overlap(struct module *m)
{
    struct function *f = module_function(m, "decode");
    for (int v = 0; v < f->nvalues; v++) f->values[v].offset = f->values[v].kind == VAL_PARAM ? -1 : 0;
}
static void outside_arena(struct module *m) { module_function(m, "prefill")->arena_bytes = 64; }
static void wrong_shape(struct module *m)
{
    struct function *f = module_function(m, "decode");
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i].kind == OP_ATTENTION) f->ops[i].a.n_heads = 16;
}
static void bad_layer(struct module *m)
{
    struct function *f = module_function(m, "decode");
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i].kind == OP_KV_APPEND) f->ops[i].a.layer = 7;
}
static void read_before_write(struct module *m)
{
    struct function *f = module_function(m, "decode");
    struct op t = f->ops[1];
    f->ops[1] = f->ops[2];
    f->ops[2] = t;
}

static void odd_rotary(struct module *m)
{
    set_new_attributes(m);
    struct function *f = module_function(m, "prefill");
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i].kind == OP_ROPE) f->ops[i].a.rotary_dim = 130;
}
static void short_factors(struct module *m)
{
    set_new_attributes(m);
    struct function *f = module_function(m, "decode");
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i].kind == OP_ROPE) f->ops[i].a.rope_scaling.n_factors = 47;
}
static void window_and_rolling(struct module *m)
{
    set_new_attributes(m);
    struct function *f = module_function(m, "decode");
    for (int i = 0; i < f->nops; i++)
        if (f->ops[i].kind == OP_ATTENTION) f->ops[i].a.sliding_window = 4096;
}

TEST(hostile_plans_are_rejected_with_the_reason)
{
    check_rejects("index", bad_index, "holds an index that names no value");
    check_rejects("overlap", overlap, "share memory while both are live");
    check_rejects("arena", outside_arena, "does not fit it inside the 64-byte arena");
    check_rejects("shape", wrong_shape, "head counts differ from the module's dims");
    check_rejects("layer", bad_layer, "layer out of range");
    check_rejects("order", read_before_write, "reads a value before it is written");
    check_rejects("rotary_dim", odd_rotary, "rotary_dim must be even and at most head_dim");
    check_rejects("longrope", short_factors, "longrope needs rotary_dim / 2 short and long factors");
    check_rejects("windows", window_and_rolling, "exclude each other");
}

TEST_MAIN()
