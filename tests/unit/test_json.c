/* Python-compatible JSON output and the tagged msgpack <-> JSON mapping. */
#include <math.h>

#include "common/json.h"
#include "common/mpjson.h"
#include "common/stream.h"
#include "tests/unit/test.h"

static void check_repr(double v, const char *want)
{
    char got[32];
    py_float_repr(v, got);
    if (strcmp(got, want)) TEST_FAIL_AT("repr(%.17g) = %s, Python gives %s", v, got, want);
}

TEST(float_repr_matches_python)
{
    /* expected strings are Python 3's repr() of the same doubles */
    check_repr(0.1, "0.1");
    check_repr(1.0, "1.0");
    check_repr(-0.0, "-0.0");
    check_repr(0.0, "0.0");
    check_repr(1e-05, "1e-05");
    check_repr(0.0001, "0.0001");
    check_repr(1e16, "1e+16");
    check_repr(1234567890123456.0, "1234567890123456.0");
    check_repr(3616972800.0, "3616972800.0");
    check_repr(2.5e-05, "2.5e-05");
    check_repr(1e22, "1e+22");
    check_repr(5e-324, "5e-324");
    check_repr(1.7976931348623157e308, "1.7976931348623157e+308");
    check_repr(123.456, "123.456");
    check_repr(1.0 / 3, "0.3333333333333333");
    check_repr(4.3500000000000005, "4.3500000000000005");
    check_repr(-1.5e-7, "-1.5e-07");
    check_repr(NAN, "NaN");
    check_repr(-INFINITY, "-Infinity");
}

TEST(indent4_matches_python_json_dump)
{
    json_t *v = json_loads("{\"metadata\": {\"ParamSize\": 2, \"ParamBytes\": 18.0, \"BitsPerParam\": 4.5},"
                           " \"records\": [{\"shape\": [1, 4], \"e\": [], \"o\": {}}], \"s\": \"caf\\u00e9 \\ud83d\\ude00\\n\\u0001\"}",
                           0, NULL);
    CHECK(v != NULL);
    struct buf out = BUF_INIT;
    buf_init(&out);
    struct pyjson_style st = pyjson_indent(4);
    CHECK_EQ(pyjson_dump(&out, v, &st), 0);
    /* json.dump(obj, f, indent=4) of the same object */
    CHECK_STR(out.data, "{\n"
                        "    \"metadata\": {\n"
                        "        \"ParamSize\": 2,\n"
                        "        \"ParamBytes\": 18.0,\n"
                        "        \"BitsPerParam\": 4.5\n"
                        "    },\n"
                        "    \"records\": [\n"
                        "        {\n"
                        "            \"shape\": [\n"
                        "                1,\n"
                        "                4\n"
                        "            ],\n"
                        "            \"e\": [],\n"
                        "            \"o\": {}\n"
                        "        }\n"
                        "    ],\n"
                        "    \"s\": \"caf\\u00e9 \\ud83d\\ude00\\n\\u0001\"\n"
                        "}");
    buf_reset(&out);
    st = pyjson_compact();
    pyjson_dump(&out, v, &st);
    CHECK_CONTAINS(out.data, "\"s\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\\n\\u0001\"");
    buf_free(&out);
    json_decref(v);
}

TEST(base64_round_trip)
{
    for (size_t len = 0; len < 40; len++) {
        unsigned char data[40];
        for (size_t i = 0; i < len; i++) data[i] = (unsigned char)(i * 37 + len);
        struct buf enc = BUF_INIT, dec = BUF_INIT;
        buf_init(&enc);
        buf_init(&dec);
        base64_encode(&enc, data, len);
        CHECK_EQ(base64_decode(&dec, enc.data, enc.len), 0);
        CHECK_EQ(dec.len, len);
        CHECK_MEM(dec.data, data, len);
        buf_free(&enc);
        buf_free(&dec);
    }
    struct buf dec = BUF_INIT;
    buf_init(&dec);
    CHECK_EQ(base64_decode(&dec, "AB=C", 4), -1);
    CHECK_EQ(base64_decode(&dec, "ABC", 3), -1);
    buf_free(&dec);
}

/* pack tagged JSON, unpack, convert back: same JSON text */
static void round_trip(const char *json_text)
{
    json_t *v = json_loads(json_text, JSON_DECODE_ANY, NULL);
    if (!v) {
        TEST_FAIL_AT("bad test JSON %s", json_text);
        return;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    CHECK_EQ(mp_pack_json_tagged(&pk, v), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    CHECK_EQ(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    json_t *back = mp_to_json_tagged(&up.data);
    struct buf a = BUF_INIT, b = BUF_INIT;
    buf_init(&a);
    buf_init(&b);
    struct pyjson_style st = pyjson_compact();
    pyjson_dump(&a, v, &st);
    pyjson_dump(&b, back, &st);
    if (strcmp(a.data, b.data)) TEST_FAIL_AT("%s came back as %s", a.data, b.data);
    buf_free(&a);
    buf_free(&b);
    json_decref(back);
    json_decref(v);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

TEST(tagged_values_round_trip)
{
    round_trip("{\"type\":\"x\",\"b\":{\"$bin\":\"AAEC/w==\"}}");
    round_trip("{\"e\":{\"$ext\":[5,\"AQI=\"]}}");
    round_trip("{\"s\":{\"$str\":\"/w==\"}}");
    round_trip("{\"f\":{\"$f32\":1.5},\"g\":{\"$f32\":\"nan\"},\"h\":{\"$float\":\"-inf\"}}");
    round_trip("{\"u\":{\"$uint\":\"18446744073709551615\"}}");
    round_trip("{\"m\":{\"$map\":[[1,2],[\"a\",null]]}}");
    round_trip("{\"m\":{\"$map\":[[\"$bin\",1]]}}");
    round_trip("[1,-1,0.5,1e+300,true,false,null,\"\",[],{}]");
}

TEST(plain_conversion_rejects_what_json_cannot_hold)
{
    msgpack_object o = {.type = MSGPACK_OBJECT_BIN};
    CHECK(mp_to_json(&o, "config record: field 'config'") == NULL);
    CHECK_STR(last_error(), "config record: field 'config': binary data where JSON was expected");
    msgpack_object s = {.type = MSGPACK_OBJECT_STR, .via.str = {1, "\xff"}};
    CHECK(mp_to_json(&s, "x") == NULL);
    CHECK_CONTAINS(last_error(), "not valid UTF-8");
}

TEST(typed_json_lookups_name_file_and_field)
{
    json_t *v = json_loads("{\"a\": 3, \"b\": \"x\", \"c\": 2.0, \"d\": 2.5, \"n\": null}", 0, NULL);
    long long i;
    const char *s;
    CHECK_EQ(json_need_int(v, "a", &i, "config.json"), 0);
    CHECK_EQ(i, 3);
    CHECK_EQ(json_need_int(v, "c", &i, "config.json"), 0);
    CHECK_EQ(i, 2);
    CHECK_EQ(json_need_int(v, "d", &i, "config.json"), -1);
    CHECK_STR(last_error(), "config.json: field 'd' must be an integer");
    CHECK_EQ(json_need_int(v, "zz", &i, "config.json"), -1);
    CHECK_STR(last_error(), "config.json: missing field 'zz'");
    CHECK_EQ(json_opt_str(v, "n", &s, "f"), 0);
    CHECK_EQ(json_need_str(v, "a", &s, "f"), -1);
    CHECK_STR(last_error(), "f: field 'a' must be a string");
    json_decref(v);
    CHECK(json_load_text("{\"a\": }", 7, "bad.json") == NULL);
    CHECK_CONTAINS(last_error(), "bad.json:1:");
}

TEST_MAIN()
