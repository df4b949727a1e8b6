/* Reading mlc-chat-config.json (formats/chat_config.h), the architecture
 * table's derivation (formats/model_arch.h) and tokenizer_info detection. */
#include <fcntl.h>
#include <msgpack.h>
#include <unistd.h>

#include "common/json.h"
#include "common/mpjson.h"
#include "common/stream.h"
#include "formats/chat_config.h"
#include "formats/model_arch.h"
#include "formats/tokenizer/tokenizer_files.h"
#include "tests/unit/test.h"

/* A config as MLC writes it for a small Qwen3 (fields trimmed to what the
 * reader needs, plus some it must ignore). */
static const char qwen3_config[] =
    "{\"version\": \"0.1.0\", \"model_type\": \"qwen3\", \"quantization\": \"q4f16_1\","
    " \"model_config\": {\"hidden_act\": \"silu\", \"hidden_size\": 1024, \"intermediate_size\": 3072,"
    "  \"attention_bias\": false, \"num_attention_heads\": 16, \"num_hidden_layers\": 28,"
    "  \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000, \"vocab_size\": 151936,"
    "  \"tie_word_embeddings\": true, \"context_window_size\": 40960, \"prefill_chunk_size\": 2048,"
    "  \"tensor_parallel_shards\": 1, \"head_dim\": 128, \"dtype\": \"float32\", \"max_batch_size\": 80,"
    "  \"weight_block_size\": null},"
    " \"vocab_size\": 151936, \"context_window_size\": 40960, \"sliding_window_size\": -1,"
    " \"prefill_chunk_size\": 2048, \"attention_sink_size\": -1, \"tensor_parallel_shards\": 1,"
    " \"pipeline_parallel_stages\": 1, \"active_vocab_size\": 151669, \"temperature\": 0.6,"
    " \"presence_penalty\": 0.0, \"frequency_penalty\": 0.0, \"repetition_penalty\": 1.0, \"top_p\": 0.95,"
    " \"tokenizer_files\": [\"tokenizer.json\", \"vocab.json\", \"merges.txt\", \"tokenizer_config.json\"],"
    " \"tokenizer_info\": {\"token_postproc_method\": \"byte_level\", \"prepend_space_in_encode\": false,"
    "  \"strip_space_in_decode\": false},"
    " \"conv_template\": {\"name\": \"qwen3\", \"system_template\": \"<|im_start|>system\\n{system_message}<|im_end|>\\n\","
    "  \"system_message\": \"You are a helpful assistant.\", \"system_prefix_token_ids\": null,"
    "  \"add_role_after_system_message\": true, \"roles\": {\"user\": \"<|im_start|>user\","
    "  \"assistant\": \"<|im_start|>assistant\"}, \"role_templates\": {\"user\": \"{user_message}\","
    "  \"assistant\": \"{assistant_message}\", \"tool\": \"{tool_message}\"}, \"messages\": [],"
    "  \"seps\": [\"<|im_end|>\\n\"], \"role_content_sep\": \"\\n\", \"role_empty_sep\": \"\\n\","
    "  \"stop_str\": [\"<|endoftext|>\", \"<|im_end|>\"], \"stop_token_ids\": [151643, 151645],"
    "  \"strip_reasoning_in_history\": true, \"function_string\": \"\", \"use_function_calling\": false,"
    "  \"a_future_field\": 1},"
    " \"pad_token_id\": 151643, \"bos_token_id\": 151643, \"eos_token_id\": [151645, 151643],"
    " \"model_task\": \"chat\", \"embedding_metadata\": null}";

static json_t *doc_with(const char *key, const char *value_json)
{
    json_t *doc = json_loads(qwen3_config, 0, NULL);
    if (key) {
        json_t *target = doc;
        const char *dot = strchr(key, '.');
        if (dot) {
            char head[64];
            snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
            target = json_object_get(doc, head);
            key = dot + 1;
        }
        if (value_json) json_object_set_new(target, key, json_loads(value_json, JSON_DECODE_ANY, NULL));
        else json_object_del(target, key);
    }
    return doc;
}

TEST(reads_every_field_later_stages_need)
{
    struct chat_config c;
    CHECK_EQ(chat_config_from_json(doc_with(NULL, NULL), "x/mlc-chat-config.json", "x", &c), 0);
    CHECK_STR(c.model_type, "qwen3");
    CHECK_STR(c.quantization, "q4f16_1");
    CHECK_EQ(c.hidden_size, 1024);
    CHECK_EQ(c.intermediate_size, 3072);
    CHECK_EQ(c.num_attention_heads, 16);
    CHECK_EQ(c.num_key_value_heads, 8);
    CHECK_EQ(c.head_dim, 128);
    CHECK_EQ(c.num_hidden_layers, 28);
    CHECK_EQ(c.vocab_size, 151936);
    CHECK(c.rms_norm_eps == 1e-6);
    CHECK(c.position_embedding_base == 1e6);
    CHECK(c.rope_scaling == NULL);
    CHECK(c.tie_word_embeddings);
    CHECK(!c.qkv_bias);
    CHECK(c.qk_norm);
    CHECK_EQ(c.context_window_size, 40960);
    CHECK_EQ(c.sliding_window_size, -1);
    CHECK_EQ(c.prefill_chunk_size, 2048);
    CHECK_EQ(c.max_batch_size, 80);
    CHECK_EQ(c.active_vocab_size, 151669);
    CHECK(c.temperature == 0.6 && c.top_p == 0.95 && c.repetition_penalty == 1.0);
    CHECK_EQ(c.bos_token_id, 151643);
    CHECK_EQ(c.n_eos_token_ids, 2);
    CHECK_EQ(c.eos_token_ids[0], 151645);
    CHECK_EQ(c.n_tokenizer_files, 4);
    CHECK_STR(c.tokenizer_files[2], "merges.txt");
    CHECK_STR(c.tokenizer_info.token_postproc_method, "byte_level");
    CHECK(c.conv_template && c.conv_template->strip_reasoning_in_history);
    CHECK_EQ(c.conv_template->stop_token_ids[1], 151645);
    CHECK_STR(c.dir, "x");
    CHECK(json_is_object(c.json));
    chat_config_free(&c);
}

TEST(architecture_flags_follow_the_model_type)
{
    struct chat_config c;
    json_t *doc = doc_with("model_config.attention_bias", "true");
    CHECK_EQ(chat_config_from_json(doc, "c", NULL, &c), 0);
    CHECK(c.qkv_bias); /* qwen3 takes it from attention_bias */
    chat_config_free(&c);
    doc = doc_with(NULL, NULL);
    json_object_set_new(doc, "model_type", json_string("qwen2"));
    CHECK_EQ(chat_config_from_json(doc, "c", NULL, &c), 0);
    CHECK(c.qkv_bias && !c.qk_norm); /* qwen2 always has q/k/v biases */
    chat_config_free(&c);
    doc = doc_with(NULL, NULL);
    json_object_set_new(doc, "model_type", json_string("mistral"));
    CHECK_EQ(chat_config_from_json(doc, "c", NULL, &c), 0);
    CHECK(!c.tie_word_embeddings && !c.qkv_bias); /* mistral always has its lm_head */
    chat_config_free(&c);
}

TEST(errors_name_the_source_and_the_field)
{
    static const struct {
        const char *key, *value, *message;
    } cases[] = {
        {"model_type", NULL, "c.json: missing field 'model_type'"},
        {"model_type", "\"gpt2\"", "c.json: model_type 'gpt2' is not supported"},
        {"quantization", "\"q9\"", "c.json: unknown quantization 'q9'"},
        {"model_config", NULL, "c.json: missing field 'model_config'"},
        {"model_config.hidden_size", NULL, "c.json: missing field 'model_config.hidden_size'"},
        {"model_config.head_dim", "\"128\"", "c.json: field 'model_config.head_dim' must be an integer"},
        {"model_config.num_key_value_heads", "5", "not divisible by num_key_value_heads 5"},
        {"model_config.rope_theta", NULL, "missing field 'model_config.rope_theta'"},
        {"prefill_chunk_size", "0", "field 'prefill_chunk_size' is 0: must be at least 1"},
        {"context_window_size", NULL, "missing field 'context_window_size'"},
        {"temperature", "\"hot\"", "field 'temperature' must be a number"},
        {"eos_token_id", "[1, \"2\"]", "field 'eos_token_id' must be a token id"},
        {"tokenizer_files", "[\"../../etc/passwd\"]", "tokenizer_files[0] must be a file name inside"},
        {"tokenizer_files", "[\"/etc/passwd\"]", "tokenizer_files[0]"},
        {"tokenizer_info", "{\"token_postproc_method\": \"bytes\"}", "token_postproc_method"},
        {"conv_template", NULL, "missing field 'conv_template'"},
        {"conv_template", "{\"roles\": {}, \"seps\": [\"\"]}", "c.json: conv_template: field 'roles' needs"},
        {"conv_template", "\"nonesuch\"", "c.json: conv_template: unknown conversation template"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct chat_config c;
        CHECK_EQ(chat_config_from_json(doc_with(cases[i].key, cases[i].value), "c.json", NULL, &c), -1);
        CHECK_CONTAINS(last_error(), cases[i].message);
    }
}

TEST(a_bare_template_name_is_looked_up)
{
    struct chat_config c;
    CHECK_EQ(chat_config_from_json(doc_with("conv_template", "\"chatml\""), "c", NULL, &c), 0);
    CHECK_STR(c.conv_template->name, "chatml");
    chat_config_free(&c);
}

TEST(reads_the_config_record)
{
    json_t *doc = json_loads(qwen3_config, 0, NULL);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    mp_pack_cstr(&pk, "type");
    mp_pack_cstr(&pk, "config");
    mp_pack_cstr(&pk, "path");
    mp_pack_cstr(&pk, "/m/mlc-chat-config.json");
    mp_pack_cstr(&pk, "dir");
    mp_pack_cstr(&pk, "/m");
    mp_pack_cstr(&pk, "config");
    mp_pack_json(&pk, doc);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CHECK_EQ(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    struct chat_config c;
    CHECK_EQ(chat_config_from_record(&u.data, &c), 0);
    CHECK_STR(c.dir, "/m");
    CHECK_CONTAINS(c.source, "/m/mlc-chat-config.json");
    CHECK(json_equal(c.json, doc));
    CHECK_EQ(c.head_dim, 128);
    chat_config_free(&c);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    json_decref(doc);
}

TEST(quantization_names_are_mlcs)
{
    CHECK(mlc_quantization_known("q4f16_1"));
    CHECK(mlc_quantization_known("q4f16_autoawq"));
    CHECK(mlc_quantization_known("fp8_e4m3fn_bf16_block_scale_static_activation"));
    CHECK(!mlc_quantization_known("q4f16"));
    CHECK(!mlc_quantization_known(NULL));
}

/* ---- the architecture table ---- */

static json_t *build(const char *arch, const char *config, const char *overrides)
{
    json_t *c = json_loads(config, 0, NULL);
    json_t *o = overrides ? json_loads(overrides, 0, NULL) : NULL;
    json_t *mc = model_arch_build_config(model_arch_find(arch), c, "config.json", o);
    json_decref(c);
    json_decref(o);
    return mc;
}

#define LLAMA_BASE                                                                                    \
    "\"hidden_size\": 64, \"intermediate_size\": 128, \"num_attention_heads\": 4, \"num_hidden_layers\": 2," \
    " \"rms_norm_eps\": 1e-5, \"vocab_size\": 100"

TEST(llama_derivation)
{
    json_t *mc = build("llama", "{" LLAMA_BASE ", \"max_sequence_length\": 100000}", NULL);
    CHECK(mc != NULL);
    CHECK_EQ(model_config_int(mc, "context_window_size", 0), 100000); /* the fallback name */
    CHECK_EQ(model_config_int(mc, "prefill_chunk_size", 0), 8192);
    CHECK_EQ(model_config_int(mc, "num_key_value_heads", 0), 4);
    CHECK_EQ(model_config_int(mc, "head_dim", 0), 16);
    CHECK(json_is_integer(json_object_get(mc, "position_embedding_base")));
    CHECK_EQ(model_config_int(mc, "max_batch_size", 0), 1); /* the dataclass default */
    json_decref(mc);
    /* a config.json that already gives context and prefill keeps them */
    mc = build("llama", "{" LLAMA_BASE ", \"context_window_size\": 300, \"prefill_chunk_size\": 100}", NULL);
    CHECK_EQ(model_config_int(mc, "context_window_size", 0), 300);
    CHECK_EQ(model_config_int(mc, "prefill_chunk_size", 0), 100);
    json_decref(mc);
}

TEST(overrides_rerun_the_derivation)
{
    /* pass 1: prefill = min(4096, 8192) = 4096; override context 1024;
     * pass 2: prefill 4096 > 1024 is clamped to min(1024, 8192) */
    quiet = true; /* the clamp's note */
    json_t *mc = build("llama", "{" LLAMA_BASE ", \"max_position_embeddings\": 4096}",
                       "{\"context_window_size\": 1024, \"max_batch_size\": 128}");
    CHECK_EQ(model_config_int(mc, "prefill_chunk_size", 0), 1024);
    CHECK_EQ(model_config_int(mc, "max_batch_size", 0), 128);
    json_decref(mc);
    /* an override to 0 means "derive again", and kwargs are gone by then */
    mc = build("llama", "{" LLAMA_BASE ", \"max_position_embeddings\": 4096}", "{\"context_window_size\": 0}");
    CHECK(mc == NULL);
    CHECK_CONTAINS(last_error(), "missing field 'max_position_embeddings'");
    /* the same for mistral's sliding window: 0 becomes -1 (none) */
    mc = build("mistral", "{" LLAMA_BASE ", \"max_position_embeddings\": 4096, \"sliding_window\": 512}",
               "{\"sliding_window_size\": 0, \"context_window_size\": 2048}");
    CHECK_EQ(model_config_int(mc, "sliding_window_size", 0), -1);
    CHECK_EQ(model_config_int(mc, "context_window_size", 0), 2048);
    CHECK_EQ(model_config_int(mc, "prefill_chunk_size", 0), 512);
    json_decref(mc);
}

TEST(parsing_values_for_fields)
{
    const struct model_arch *a = model_arch_find("llama");
    json_t *v = model_arch_parse_value(model_arch_field(a, "context_window_size"), "4096");
    CHECK(json_is_integer(v) && json_integer_value(v) == 4096);
    json_decref(v);
    CHECK(model_arch_parse_value(model_arch_field(a, "context_window_size"), "4k") == NULL);
    CHECK(model_arch_parse_value(model_arch_field(a, "context_window_size"), "") == NULL);
    v = model_arch_parse_value(model_arch_field(a, "rms_norm_eps"), "1e-6");
    CHECK(json_is_real(v));
    json_decref(v);
    v = model_arch_parse_value(model_arch_field(a, "disaggregation"), "1");
    CHECK(json_is_true(v));
    json_decref(v);
    CHECK(model_arch_parse_value(model_arch_field(a, "disaggregation"), "yes") == NULL);
    v = model_arch_parse_value(model_arch_field(a, "rope_scaling"), "null");
    CHECK(json_is_null(v));
    json_decref(v);
    CHECK(model_arch_parse_value(model_arch_field(a, "rope_scaling"), "[1]") == NULL);
    CHECK_CONTAINS(last_error(), "rope_scaling: '[1]' is not an object or null");
    CHECK(model_arch_find("gemma") == NULL);
    CHECK_STR(model_arch_names(), "llama, mistral, qwen2, qwen3, gemma2, gemma3, gemma3_text, phi3");
}

/* ---- tokenizer_info ---- */

static void detect(const char *json, struct tokenizer_info *info)
{
    json_t *j = json_loads(json, 0, NULL);
    tokenizer_info_detect(j, info);
    json_decref(j);
}

TEST(tokenizer_info_detection)
{
    struct tokenizer_info i;
    tokenizer_info_detect(NULL, &i);
    CHECK_STR(i.token_postproc_method, "byte_fallback");
    CHECK(!i.prepend_space_in_encode && !i.strip_space_in_decode);
    detect("{\"decoder\": {\"type\": \"ByteLevel\"}}", &i);
    CHECK_STR(i.token_postproc_method, "byte_level");
    /* in a Sequence the last of ByteLevel / ByteFallback wins */
    detect("{\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}, {\"type\": \"ByteLevel\"}]}}", &i);
    CHECK_STR(i.token_postproc_method, "byte_level");
    detect("{\"decoder\": {\"type\": \"WordPiece\"}}", &i);
    CHECK_STR(i.token_postproc_method, "byte_fallback");
    detect("{\"normalizer\": {\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
           " \"decoder\": {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}}", &i);
    CHECK(i.prepend_space_in_encode && i.strip_space_in_decode);
    detect("{\"normalizer\": {\"type\": \"Prepend\", \"prepend\": \" \"},"
           " \"decoder\": {\"type\": \"Strip\", \"content\": \" \", \"start\": 2, \"stop\": 0}}", &i);
    CHECK(!i.prepend_space_in_encode && !i.strip_space_in_decode);
}

TEST(vocabulary_figures)
{
    json_t *tj = json_loads("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0], [\"b\", -1.0], [\"a\", -2.0]]},"
                            " \"added_tokens\": [{\"id\": 9, \"content\": \"<x>\"}, {\"id\": 1, \"content\": \"b\"}]}",
                            0, NULL);
    struct vocab_stats s;
    CHECK_EQ(vocab_stats_tokenizer_json(tj, "t.json", &s), 0);
    CHECK_EQ(s.distinct, 3); /* a, b, <x> */
    CHECK_EQ(s.id_end, 10);
    CHECK_STR(s.largest, "<x>");
    vocab_stats_free(&s);
    json_decref(tj);
    tj = json_loads("{\"model\": {\"vocab\": {\"a\": -3}}}", 0, NULL);
    CHECK_EQ(vocab_stats_tokenizer_json(tj, "t.json", &s), -1);
    CHECK_CONTAINS(last_error(), "t.json: model.vocab: the id of token 'a'");
    json_decref(tj);
    tj = json_loads("{\"model\": {\"type\": \"BPE\"}}", 0, NULL);
    CHECK_EQ(vocab_stats_tokenizer_json(tj, "t.json", &s), -1);
    CHECK_CONTAINS(last_error(), "missing field 'model.vocab'");
    json_decref(tj);
}

TEST(sentencepiece_pieces_are_counted_from_the_protobuf)
{
    /* ModelProto: piece {piece: "a"} x2, trainer_spec (field 2) with a
     * varint, a fixed32 field, then normalizer_spec (field 3) */
    static const unsigned char model[] = {
        0x0a, 0x03, 0x0a, 0x01, 'a', 0x0a, 0x03, 0x0a, 0x01, 'b', 0x12, 0x02, 0x08, 0x05,
        0x1d, 1, 2, 3, 4, 0x1a, 0x00,
    };
    char path[] = "/tmp/mlc-unit-spXXXXXX";
    int fd = mkstemp(path);
    CHECK(write(fd, model, sizeof model) == (ssize_t)sizeof model);
    close(fd);
    struct vocab_stats s;
    CHECK_EQ(vocab_stats_sentencepiece(path, &s), 0);
    CHECK_EQ(s.id_end, 2);
    /* cut inside the fixed32 field */
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, model, 16) == 16);
    close(fd);
    CHECK_EQ(vocab_stats_sentencepiece(path, &s), -1);
    CHECK_CONTAINS(last_error(), "truncated protobuf field at byte 14");
    /* wire type 3 (groups) is not in SentencePiece models */
    fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(write(fd, "\x0b", 1) == 1);
    close(fd);
    CHECK_EQ(vocab_stats_sentencepiece(path, &s), -1);
    CHECK_CONTAINS(last_error(), "wire type 3");
    unlink(path);
}

TEST_MAIN()
