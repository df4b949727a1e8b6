/* Which files of a repository the pipeline takes: layouts, default
 * selection, --include/--exclude, index parsing, LFS pointers. */
#include <string.h>

#include "common/err.h"
#include "common/json.h"
#include "formats/model_layout.h"
#include "tests/unit/test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* The selected files joined with spaces, for one comparison per case. */
static const char *joined(const struct layout *l)
{
    static char text[2048];
    text[0] = 0;
    for (size_t i = 0; i < l->nfiles; i++) {
        if (i) strcat(text, " ");
        strcat(text, l->files[i]);
    }
    return text;
}

TEST(raw_hf_repo_takes_config_tokenizer_and_safetensors_only)
{
    const char *names[] = {
        ".gitattributes", "README.md", "config.json", "generation_config.json",
        "model.safetensors", "pytorch_model.bin", "model.gguf", "onnx/model.onnx",
        "flax_model.msgpack", "tf_model.h5", "tokenizer.json", "tokenizer.model",
        "tokenizer_config.json", "special_tokens_map.json", "training_args.bin",
        "original/consolidated.00.pth", "qwen.tiktoken", "sub/tokenizer.json",
    };
    struct layout l;
    CHECK_EQ(layout_plan(names, N(names), NULL, "R", &l), 0);
    CHECK_EQ(l.kind, MODEL_HF);
    CHECK_EQ(l.format, WEIGHTS_SAFETENSORS);
    CHECK(l.index == NULL);
    CHECK_STR(l.config, "config.json");
    CHECK_STR(joined(&l), "config.json generation_config.json model.safetensors qwen.tiktoken "
                          "special_tokens_map.json tokenizer.json tokenizer.model "
                          "tokenizer_config.json");
    layout_free(&l);
}

TEST(sharded_safetensors_wait_for_their_index)
{
    const char *names[] = {"config.json", "model.safetensors.index.json",
                           "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                           "pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin"};
    struct layout l;
    CHECK_EQ(layout_plan(names, N(names), NULL, "R", &l), 0);
    CHECK_EQ(l.format, WEIGHTS_SAFETENSORS);
    CHECK_STR(l.index, "model.safetensors.index.json");
    CHECK_STR(joined(&l), "config.json model.safetensors.index.json");

    json_t *index = json_pack("{s:{s:i},s:{s:s,s:s,s:s}}", "metadata", "total_size", 10,
                              "weight_map", "b", "model-00002-of-00002.safetensors", "a",
                              "model-00001-of-00002.safetensors", "c",
                              "model-00002-of-00002.safetensors");
    struct indexed_file *w;
    size_t nw;
    CHECK_EQ(index_weight_files(index, l.format, "idx", &w, &nw), 0);
    CHECK_EQ(nw, 2);
    CHECK_STR(w[0].name, "model-00001-of-00002.safetensors");
    CHECK_EQ(w[0].nbytes, -1);
    CHECK_EQ(layout_add_indexed(&l, w, nw, names, N(names), NULL, "R"), 0);
    CHECK_STR(joined(&l), "config.json model-00001-of-00002.safetensors "
                          "model-00002-of-00002.safetensors model.safetensors.index.json");
    indexed_files_free(w, nw);
    json_decref(index);
    layout_free(&l);
}

TEST(pytorch_weights_when_there_are_no_safetensors)
{
    const char *one[] = {"config.json", "pytorch_model.bin", "training_args.bin"};
    const char *many[] = {"config.json", "pytorch_model.bin.index.json", "pytorch_model-1.bin"};
    struct layout l;
    CHECK_EQ(layout_plan(one, N(one), NULL, "R", &l), 0);
    CHECK_EQ(l.format, WEIGHTS_PYTORCH);
    CHECK_STR(joined(&l), "config.json pytorch_model.bin");
    layout_free(&l);
    CHECK_EQ(layout_plan(many, N(many), NULL, "R", &l), 0);
    CHECK_STR(l.index, "pytorch_model.bin.index.json");
    layout_free(&l);
}

TEST(mlc_repo_prefers_tensor_cache_over_the_old_name)
{
    const char *both[] = {"mlc-chat-config.json", "ndarray-cache.json", "tensor-cache.json",
                          "params_shard_0.bin", "tokenizer.json", "config.json"};
    const char *old[] = {"mlc-chat-config.json", "ndarray-cache.json", "params_shard_0.bin"};
    struct layout l;
    CHECK_EQ(layout_plan(both, N(both), NULL, "R", &l), 0);
    CHECK_EQ(l.kind, MODEL_MLC);
    CHECK_EQ(l.format, WEIGHTS_MLC);
    CHECK_STR(l.index, "tensor-cache.json");
    CHECK_STR(joined(&l), "mlc-chat-config.json tensor-cache.json tokenizer.json");
    layout_free(&l);
    CHECK_EQ(layout_plan(old, N(old), NULL, "R", &l), 0);
    CHECK_STR(l.index, "ndarray-cache.json");
    layout_free(&l);
}

TEST(repositories_fitting_no_layout_are_refused)
{
    const char *none[] = {"README.md", "model.onnx"};
    const char *noweights[] = {"config.json", "model.onnx", "tokenizer.json"};
    const char *nocache[] = {"mlc-chat-config.json", "params_shard_0.bin"};
    struct layout l;
    CHECK_EQ(layout_plan(none, N(none), NULL, "HF://a/b", &l), -1);
    CHECK_CONTAINS(last_error(), "HF://a/b: neither config.json nor mlc-chat-config.json");
    CHECK_EQ(layout_plan(noweights, N(noweights), NULL, "R", &l), -1);
    CHECK_CONTAINS(last_error(), "no weights in HuggingFace layout");
    CHECK_EQ(layout_plan(nocache, N(nocache), NULL, "R", &l), -1);
    CHECK_CONTAINS(last_error(), "no tensor-cache.json");
}

TEST(a_gguf_file_is_the_whole_model)
{
    /* no HuggingFace weights: the one .gguf, nothing else (config and
     * tokenizer files beside it are not what the model is) */
    const char *one[] = {"README.md", "config.json", "model-Q8_0.gguf", "tokenizer.json"};
    struct layout l;
    CHECK_EQ(layout_plan(one, N(one), NULL, "R", &l), 0);
    CHECK_EQ(l.kind, MODEL_HF);
    CHECK_EQ(l.format, WEIGHTS_GGUF);
    CHECK(l.config == NULL);
    CHECK_STR(l.gguf, "model-Q8_0.gguf");
    CHECK_STR(joined(&l), "model-Q8_0.gguf");
    layout_free(&l);
    /* several: --include picks one, else an error naming two of them */
    const char *many[] = {"m-Q4_K_M.gguf", "m-Q8_0.gguf", "README.md"};
    CHECK_EQ(layout_plan(many, N(many), NULL, "HF://a/b", &l), -1);
    CHECK_CONTAINS(last_error(), "HF://a/b: 2 .gguf files (m-Q4_K_M.gguf, m-Q8_0.gguf): choose one with --include");
    const char *inc[] = {"*Q8_0*"};
    struct file_rules r = {inc, 1, NULL, 0};
    CHECK_EQ(layout_plan(many, N(many), &r, "R", &l), 0);
    CHECK_STR(l.gguf, "m-Q8_0.gguf");
    layout_free(&l);
    const char *nothing[] = {"*Q2*"};
    struct file_rules r2 = {nothing, 1, NULL, 0};
    CHECK_EQ(layout_plan(many, N(many), &r2, "R", &l), -1);
    CHECK_CONTAINS(last_error(), "R: --include/--exclude leave none of its 2 .gguf files");
    /* beside HuggingFace weights a .gguf is not the model */
    const char *both[] = {"config.json", "model.gguf", "model.safetensors"};
    CHECK_EQ(layout_plan(both, N(both), NULL, "R", &l), 0);
    CHECK_EQ(l.format, WEIGHTS_SAFETENSORS);
    layout_free(&l);
}

TEST(include_adds_exclude_removes_hidden_never)
{
    const char *names[] = {"config.json", "model.safetensors", "model.gguf", "tokenizer.json",
                           "tokenizer.model", ".gitattributes", "onnx/model.onnx", ".git/HEAD"};
    const char *inc[] = {"*.gguf", "onnx/*", ".*"};
    const char *exc[] = {"tokenizer.model"};
    struct file_rules r = {inc, N(inc), exc, N(exc)};
    struct layout l;
    CHECK_EQ(layout_plan(names, N(names), &r, "R", &l), 0);
    CHECK_STR(joined(&l), "config.json model.gguf model.safetensors onnx/model.onnx tokenizer.json");
    layout_free(&l);

    const char *star[] = {"*"};
    struct file_rules all = {star, 1, NULL, 0};
    CHECK_EQ(layout_plan(names, N(names), &all, "R", &l), 0);
    CHECK_STR(joined(&l), "config.json model.gguf model.safetensors onnx/model.onnx tokenizer.json "
                          "tokenizer.model");
    layout_free(&l);

    const char *need[] = {"config.*"};
    struct file_rules bad = {NULL, 0, need, 1};
    CHECK_EQ(layout_plan(names, N(names), &bad, "R", &l), -1);
    CHECK_CONTAINS(last_error(), "R: --exclude removes config.json, which the model needs");
}

TEST(hidden_names_are_recognised_at_any_depth)
{
    CHECK(name_is_hidden(".git/HEAD"));
    CHECK(name_is_hidden("a/.cache/b"));
    CHECK(name_is_hidden(".gitattributes"));
    CHECK(!name_is_hidden("a/b.c"));
    CHECK(!name_is_hidden("config.json"));
}

TEST(weight_map_names_are_paths_that_must_stay_inside)
{
    const char *bad[] = {"../model.safetensors", "/etc/passwd", "a//b", "a/./b", "x\\y"};
    for (size_t i = 0; i < N(bad); i++) {
        json_t *index = json_pack("{s:{s:s}}", "weight_map", "t", bad[i]);
        struct indexed_file *w;
        size_t nw;
        CHECK_EQ(index_weight_files(index, WEIGHTS_SAFETENSORS, "idx", &w, &nw), -1);
        CHECK_CONTAINS(last_error(), "idx: weight_map: 't': the file name must be a relative path");
        json_decref(index);
    }
    json_t *empty = json_pack("{s:{}}", "weight_map");
    struct indexed_file *w;
    size_t nw;
    CHECK_EQ(index_weight_files(empty, WEIGHTS_SAFETENSORS, "idx", &w, &nw), -1);
    CHECK_CONTAINS(last_error(), "weight_map is empty");
    json_decref(empty);
}

static json_t *tensor_cache(const char *path, long long nbytes, const char *md5, long long off,
                            long long len)
{
    return json_pack("{s:[{s:s,s:s,s:I,s:s,s:[{s:s,s:I,s:I}]}]}", "records", "dataPath", path,
                     "format", "raw-shard", "nbytes", nbytes, "md5sum", md5, "records", "name",
                     "w", "byteOffset", off, "nbytes", len);
}

TEST(tensor_cache_records_are_checked)
{
    struct indexed_file *w;
    size_t nw;
    json_t *ok = tensor_cache("params_shard_0.bin", 100, "0123456789ABCDEF0123456789abcdef", 60, 40);
    CHECK_EQ(index_weight_files(ok, WEIGHTS_MLC, "tc", &w, &nw), 0);
    CHECK_EQ(nw, 1);
    CHECK_EQ(w[0].nbytes, 100);
    CHECK_STR(w[0].md5, "0123456789abcdef0123456789abcdef");
    indexed_files_free(w, nw);
    json_decref(ok);

    json_t *past = tensor_cache("params_shard_0.bin", 100, "0123456789abcdef0123456789abcdef", 61, 40);
    CHECK_EQ(index_weight_files(past, WEIGHTS_MLC, "tc", &w, &nw), -1);
    CHECK_CONTAINS(last_error(), "tc: records[0].records[0]: tensor 'w' (byteOffset 61, nbytes 40) "
                                 "ends past the end of its 100-byte shard");
    json_decref(past);

    json_t *huge = tensor_cache("params_shard_0.bin", 100, "0123456789abcdef0123456789abcdef",
                                0x7fffffffffffffffLL, 0x7fffffffffffffffLL);
    CHECK_EQ(index_weight_files(huge, WEIGHTS_MLC, "tc", &w, &nw), -1);
    CHECK_CONTAINS(last_error(), "ends past the end");
    json_decref(huge);

    json_t *md5 = tensor_cache("params_shard_0.bin", 100, "xyz", 0, 1);
    CHECK_EQ(index_weight_files(md5, WEIGHTS_MLC, "tc", &w, &nw), -1);
    CHECK_CONTAINS(last_error(), "field 'md5sum' must be 32 hexadecimal digits");
    json_decref(md5);

    json_t *escape = tensor_cache("../params_shard_0.bin", 100, "0123456789abcdef0123456789abcdef", 0, 1);
    CHECK_EQ(index_weight_files(escape, WEIGHTS_MLC, "tc", &w, &nw), -1);
    CHECK_CONTAINS(last_error(), "field 'dataPath' must be a relative path");
    json_decref(escape);

    json_t *twice = json_pack("{s:[{s:s,s:s,s:i,s:[]},{s:s,s:s,s:i,s:[]}]}", "records", "dataPath",
                              "a.bin", "format", "raw-shard", "nbytes", 1, "records", "dataPath",
                              "a.bin", "format", "raw-shard", "nbytes", 1, "records");
    CHECK_EQ(index_weight_files(twice, WEIGHTS_MLC, "tc", &w, &nw), -1);
    CHECK_CONTAINS(last_error(), "records[1]: shard a.bin is listed twice");
    json_decref(twice);
}

TEST(indexed_files_must_be_in_the_repository)
{
    const char *names[] = {"config.json", "model.safetensors.index.json", "a.safetensors"};
    struct layout l;
    CHECK_EQ(layout_plan(names, N(names), NULL, "R", &l), 0);
    struct indexed_file w[] = {{.name = "a.safetensors", .nbytes = -1}, {.name = "b.safetensors", .nbytes = -1}};
    CHECK_EQ(layout_add_indexed(&l, w, 2, names, N(names), NULL, "R"), -1);
    CHECK_CONTAINS(last_error(), "R: model.safetensors.index.json names b.safetensors, which is not in the repository");
    layout_free(&l);
}

TEST(lfs_pointers_are_recognised)
{
    const char ptr[] = "version https://git-lfs.github.com/spec/v1\n"
                       "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
                       "size 12345\n";
    CHECK(is_lfs_pointer(ptr, sizeof ptr - 1));
    CHECK(!is_lfs_pointer("{\"a\": 1}", 8));
    CHECK(!is_lfs_pointer("version", 7));
    char big[LFS_POINTER_MAX + 1];
    memset(big, 'x', sizeof big);
    memcpy(big, ptr, sizeof ptr - 1);
    CHECK(!is_lfs_pointer(big, sizeof big));
}

TEST_MAIN()
