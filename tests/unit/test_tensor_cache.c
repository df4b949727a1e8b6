/* Tensor cache: MLC's shard packing algorithm, JSON schema, and the reader's
 * checks. The JSON text itself is compared with Python's json.dump in
 * tests/t4000-tensor-cache.sh. */
#include <stdlib.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/json.h"
#include "formats/tensor_cache.h"
#include "tests/unit/test.h"

#define MiB ((int64_t)1 << 20)

/* a uint8 tensor of n bytes */
static long add_bytes(struct tc_plan *p, const char *name, int64_t n)
{
    return tc_plan_add(p, name, DT_U8, 1, &n);
}

TEST(packing_follows_the_mlc_example)
{
    /* A=10 MiB, B=30, C=5, D=20 → shard0=[B], shard1=[D], shard2=[A@0, C@10 MiB] */
    struct tc_plan p;
    tc_plan_init(&p);
    long a = add_bytes(&p, "A", 10 * MiB), b = add_bytes(&p, "B", 30 * MiB);
    long c = add_bytes(&p, "C", 5 * MiB), d = add_bytes(&p, "D", 20 * MiB);
    tc_plan_finish(&p);
    CHECK_EQ(p.nshards, 3);
    CHECK_EQ(p.tensors[b].shard, 0);
    CHECK_EQ(p.tensors[d].shard, 1);
    CHECK_EQ(p.tensors[a].shard, 2);
    CHECK_EQ(p.tensors[c].shard, 2);
    CHECK_EQ(p.tensors[c].byte_offset, 10 * MiB);
    CHECK_EQ(p.shards[2].nbytes, 15 * MiB);
    CHECK_EQ(p.shards[2].nmembers, 2);
    CHECK_EQ(p.shards[2].members[0], a);
    tc_plan_free(&p);
}

TEST(packing_edge_cases)
{
    struct tc_plan p;
    /* exactly half the cap joins the pending shard; a second half does not
     * fit (16+16 >= 32) and, being >= half, goes out of band */
    tc_plan_init(&p);
    long h1 = add_bytes(&p, "h1", 16 * MiB), h2 = add_bytes(&p, "h2", 16 * MiB);
    long s = add_bytes(&p, "s", 1);
    tc_plan_finish(&p);
    CHECK_EQ(p.nshards, 2);
    CHECK_EQ(p.tensors[h2].shard, 0);
    CHECK_EQ(p.tensors[h1].shard, 1);
    CHECK_EQ(p.tensors[s].shard, 1);
    CHECK_EQ(p.tensors[s].byte_offset, 16 * MiB);
    tc_plan_free(&p);

    /* a small tensor that would exactly fill the cap flushes the pending
     * shard (the test is >=), so no shard ever reaches 32 MiB */
    tc_plan_init(&p);
    long f1 = add_bytes(&p, "f1", 31 * MiB);
    long f2 = add_bytes(&p, "f2", 1 * MiB);
    tc_plan_finish(&p);
    CHECK_EQ(p.nshards, 2);
    CHECK_EQ(p.tensors[f1].shard, 0);
    CHECK_EQ(p.tensors[f2].shard, 1);
    CHECK_EQ(p.tensors[f2].byte_offset, 0);
    tc_plan_free(&p);

    /* one byte short of the cap still fits */
    tc_plan_init(&p);
    add_bytes(&p, "g1", 15 * MiB);
    long g2 = add_bytes(&p, "g2", 17 * MiB - 1);
    tc_plan_finish(&p);
    CHECK_EQ(p.nshards, 1);
    CHECK_EQ(p.tensors[g2].byte_offset, 15 * MiB);
    tc_plan_free(&p);

    /* larger than the cap: its own shard, even first */
    tc_plan_init(&p);
    long big = add_bytes(&p, "big", 40 * MiB);
    long after = add_bytes(&p, "after", 2);
    tc_plan_finish(&p);
    CHECK_EQ(p.nshards, 2);
    CHECK_EQ(p.tensors[big].shard, 0);
    CHECK_EQ(p.shards[0].nbytes, 40 * MiB);
    CHECK_EQ(p.tensors[after].shard, 1);
    tc_plan_free(&p);
}

TEST(float32_counts_4_bytes_but_stores_2)
{
    struct tc_plan p;
    tc_plan_init(&p);
    int64_t shape[2] = {3, 5};
    long i = tc_plan_add(&p, "w", DT_F32, 2, shape);
    tc_plan_add(&p, "q", DT_U32, 2, shape);
    tc_plan_finish(&p);
    CHECK_EQ(p.tensors[i].nbytes, 30);
    CHECK(p.param_bytes == 15 * 4 + 15 * 4);
    CHECK(p.any_f32);
    json_t *meta = tc_metadata(2, p.param_bytes, 60);
    struct buf b = BUF_INIT;
    buf_init(&b);
    CHECK_EQ(tc_json_text(&p, meta, true, &b), 0);
    CHECK_CONTAINS(b.data, "\"dtype\": \"bfloat16\",\n                    \"format\": \"raw\"");
    buf_reset(&b);
    tc_json_text(&p, meta, false, &b);
    CHECK_CONTAINS(b.data, "\"dtype\": \"float32\",\n                    \"format\": \"f32-to-bf16\"");
    CHECK_CONTAINS(b.data, "\"ParamBytes\": 120.0,\n        \"BitsPerParam\": 16.0");
    json_decref(meta);
    buf_free(&b);
    tc_plan_free(&p);
}

TEST(json_text_is_python_json_dump_indent_4)
{
    /* json.dumps(obj, indent=4) of the same hand-written object, by Python */
    static const char want[] =
        "{\n    \"metadata\": {\n        \"ParamSize\": 3,\n        \"ParamBytes\": 3616972800.0,\n"
        "        \"BitsPerParam\": 4.501991089549218\n    },\n    \"records\": [\n        {\n"
        "            \"dataPath\": \"params_shard_0.bin\",\n            \"format\": \"raw-shard\",\n"
        "            \"nbytes\": 20,\n            \"records\": [\n                {\n"
        "                    \"name\": \"lm_head.q_weight\",\n                    \"shape\": [\n"
        "                        1,\n                        4\n                    ],\n"
        "                    \"dtype\": \"uint32\",\n                    \"format\": \"f32-to-bf16\",\n"
        "                    \"nbytes\": 16,\n                    \"byteOffset\": 0\n                },\n"
        "                {\n                    \"name\": \"lm_head.q_scale\",\n                    \"shape\": [\n"
        "                        1,\n                        1\n                    ],\n"
        "                    \"dtype\": \"float16\",\n                    \"format\": \"f32-to-bf16\",\n"
        "                    \"nbytes\": 2,\n                    \"byteOffset\": 16\n                },\n"
        "                {\n                    \"name\": \"model.norm.weight\",\n                    \"shape\": [\n"
        "                        1\n                    ],\n                    \"dtype\": \"float32\",\n"
        "                    \"format\": \"f32-to-bf16\",\n                    \"nbytes\": 2,\n"
        "                    \"byteOffset\": 18\n                }\n            ],\n"
        "            \"md5sum\": \"0123456789abcdef0123456789abcdef\"\n        }\n    ]\n}";
    struct tc_plan p;
    tc_plan_init(&p);
    int64_t s14[2] = {1, 4}, s11[2] = {1, 1}, s1[1] = {1};
    tc_plan_add(&p, "lm_head.q_weight", DT_U32, 2, s14);
    tc_plan_add(&p, "lm_head.q_scale", DT_F16, 2, s11);
    tc_plan_add(&p, "model.norm.weight", DT_F32, 1, s1);
    tc_plan_finish(&p);
    strcpy(p.shards[0].md5, "0123456789abcdef0123456789abcdef");
    json_t *meta = json_object();
    json_object_set_new(meta, "ParamSize", json_integer(3));
    json_object_set_new(meta, "ParamBytes", json_real(3616972800.0));
    json_object_set_new(meta, "BitsPerParam", json_real(4.501991089549218));
    struct buf b = BUF_INIT;
    buf_init(&b);
    CHECK_EQ(tc_json_text(&p, meta, false, &b), 0);
    CHECK_STR(b.data, want);
    json_decref(meta);
    buf_free(&b);
    tc_plan_free(&p);
}

static char dir[] = "/tmp/test_tensor_cache.XXXXXX";

static void put(const char *name, const char *text)
{
    char *p = path_join(dir, name);
    FILE *f = fopen(p, "wb");
    fputs(text, f);
    fclose(f);
    free(p);
}

static const char *open_error(void)
{
    struct tensor_cache tc;
    if (tensor_cache_open(&tc, dir) == 0) {
        int rc = tensor_cache_validate(&tc, true);
        tensor_cache_close(&tc);
        if (rc == 0) return "(no error)";
    }
    return last_error();
}

#define GOOD_RECORD                                                                                \
    "{\"name\":\"w\",\"shape\":[2,2],\"dtype\":\"float32\",\"format\":\"f32-to-bf16\",\"nbytes\":8," \
    "\"byteOffset\":0}"

TEST(reader_decodes_and_checks)
{
    CHECK(mkdtemp(dir) != NULL);
    /* bf16 bits of 1, -2, 0.5, 3 */
    static const unsigned char data[8] = {0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f, 0x40, 0x40};
    char *p = path_join(dir, "params_shard_0.bin");
    FILE *f = fopen(p, "wb");
    fwrite(data, 1, 8, f);
    fclose(f);
    char md5[HASH_HEX_MAX], text[1024];
    hash_hex(HASH_MD5, data, 8, md5);
    snprintf(text, sizeof text,
             "{\"metadata\":{\"ParamSize\":1},\"records\":[{\"dataPath\":\"params_shard_0.bin\","
             "\"format\":\"raw-shard\",\"nbytes\":8,\"records\":[" GOOD_RECORD "],\"md5sum\":\"%s\"}]}",
             md5);
    /* the older name is found when tensor-cache.json is absent */
    put("ndarray-cache.json", text);
    struct tensor_cache tc;
    CHECK_EQ(tensor_cache_open(&tc, dir), 0);
    CHECK_EQ(tensor_cache_validate(&tc, true), 0);
    const struct tc_record *r = tensor_cache_find(&tc, "w");
    CHECK(r != NULL);
    float out[4];
    CHECK_EQ(tensor_cache_read_f32(&tc, r, out), 0);
    CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 0.5f && out[3] == 3.0f);
    tensor_cache_close(&tc);
    unlink(p);

    f = fopen(p, "wb");
    fwrite(data, 1, 7, f);
    fclose(f);
    put("tensor-cache.json", text);
    CHECK_CONTAINS(open_error(), "7 bytes, but tensor-cache.json says 8 (corrupted parameter shard)");
    f = fopen(p, "wb");
    fwrite("xxxxxxxx", 1, 8, f);
    fclose(f);
    CHECK_CONTAINS(open_error(), "params_shard_0.bin: md5 ");

    put("tensor-cache.json", "{\"records\":[{\"dataPath\":\"../x.bin\",\"format\":\"raw-shard\",\"nbytes\":8,"
                             "\"records\":[]}]}");
    CHECK_CONTAINS(open_error(), "records[0]: field 'dataPath': '../x.bin' is not a plain relative path");
    put("tensor-cache.json", "{\"records\":[{\"dataPath\":\"params_shard_0.bin\",\"format\":\"raw-shard\","
                             "\"nbytes\":8,\"records\":[{\"name\":\"w\",\"shape\":[2,2],\"dtype\":\"float33\","
                             "\"format\":\"raw\",\"nbytes\":8,\"byteOffset\":0}]}]}");
    CHECK_CONTAINS(open_error(), "record 'w': field 'dtype': unknown dtype 'float33'");
    put("tensor-cache.json", "{\"records\":[{\"dataPath\":\"params_shard_0.bin\",\"format\":\"raw-shard\","
                             "\"nbytes\":8,\"records\":[{\"name\":\"w\",\"shape\":[2,2],\"dtype\":\"float32\","
                             "\"format\":\"raw\",\"nbytes\":8,\"byteOffset\":0}]}]}");
    CHECK_CONTAINS(open_error(), "record 'w': field 'nbytes': 8, but the shape and dtype give 16");
    put("tensor-cache.json", "{\"records\":[{\"dataPath\":\"params_shard_0.bin\",\"format\":\"raw-shard\","
                             "\"nbytes\":8,\"records\":[{\"name\":\"w\",\"shape\":[2,2],\"dtype\":\"float32\","
                             "\"format\":\"f32-to-bf16\",\"nbytes\":8,\"byteOffset\":4}]}]}");
    CHECK_CONTAINS(open_error(), "record 'w': bytes 4..12 lie outside params_shard_0.bin (8 bytes)");
    put("tensor-cache.json", "{\"records\":[{\"dataPath\":\"params_shard_0.bin\",\"format\":\"zip\","
                             "\"nbytes\":8,\"records\":[]}]}");
    CHECK_CONTAINS(open_error(), "records[0]: field 'format': 'zip', expected 'raw-shard'");
    put("tensor-cache.json", "{\"records\":[{\"dataPath\":\"params_shard_0.bin\",\"format\":\"raw-shard\","
                             "\"records\":[]}]}");
    CHECK_CONTAINS(open_error(), "records[0]: missing field 'nbytes'");
    put("tensor-cache.json", "{\"records\":[");
    CHECK_CONTAINS(open_error(), "tensor-cache.json:1:");
    remove_tree(dir);
    free(p);
}

TEST_MAIN()
