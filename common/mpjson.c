#include "common/mpjson.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "common/stream.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- plain ---- */

json_t *mp_to_json(const msgpack_object *o, const char *what)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX) return fail("%s: integer %llu too large", what, (unsigned long long)o->via.u64), NULL;
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) return fail("%s: non-finite number", what), NULL;
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        json_t *s = json_stringn(o->via.str.ptr, o->via.str.size);
        if (!s) fail("%s: string is not valid UTF-8", what);
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *e = mp_to_json(&o->via.array.ptr[i], what);
            if (!e) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, e);
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            char *key = mp_strdup(&kv->key);
            json_t *v = key ? mp_to_json(&kv->val, what) : NULL;
            if (!key) fail("%s: map key is not a string", what);
            if (!v) {
                free(key);
                json_decref(m);
                return NULL;
            }
            json_object_set_new(m, key, v);
            free(key);
        }
        return m;
    }
    case MSGPACK_OBJECT_BIN: return fail("%s: binary data where JSON was expected", what), NULL;
    case MSGPACK_OBJECT_EXT: return fail("%s: extension type where JSON was expected", what), NULL;
    }
    return fail("%s: unknown msgpack type", what), NULL;
}

void mp_pack_json(msgpack_packer *pk, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: msgpack_pack_nil(pk); return;
    case JSON_TRUE: msgpack_pack_true(pk); return;
    case JSON_FALSE: msgpack_pack_false(pk); return;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(v)); return;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(v)); return;
    case JSON_STRING: msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v)); return;
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++) mp_pack_json(pk, json_array_get(v, i));
        return;
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *key;
        size_t klen;
        json_t *val;
        json_object_keylen_foreach((json_t *)v, key, klen, val) {
            msgpack_pack_str_with_body(pk, key, klen);
            mp_pack_json(pk, val);
        }
        return;
    }
    }
}

/* ---- tagged ---- */

static json_t *tag(const char *name, json_t *value)
{
    json_t *o = json_object();
    json_object_set_new(o, name, value);
    return o;
}

static json_t *b64(const void *data, size_t len)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    base64_encode(&b, data, len);
    json_t *s = json_stringn(b.data, b.len);
    buf_free(&b);
    return s;
}

static json_t *float_json(double v, bool f32)
{
    if (isnan(v)) return tag(f32 ? "$f32" : "$float", json_string("nan"));
    if (isinf(v)) return tag(f32 ? "$f32" : "$float", json_string(v < 0 ? "-inf" : "inf"));
    return f32 ? tag("$f32", json_real(v)) : json_real(v);
}

static bool needs_map_tag(const msgpack_object *o)
{
    for (uint32_t i = 0; i < o->via.map.size; i++)
        if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) return true;
    if (o->via.map.size == 1) {
        const msgpack_object *k = &o->via.map.ptr[0].key;
        if (k->via.str.size && k->via.str.ptr[0] == '$') return true;
    }
    /* Keys jansson cannot hold (invalid UTF-8, NUL) also go the long way. */
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (memchr(k->via.str.ptr, 0, k->via.str.size)) return true;
        json_t *probe = json_stringn(k->via.str.ptr, k->via.str.size);
        if (!probe) return true;
        json_decref(probe);
    }
    return false;
}

static json_t *map_as_pairs(const msgpack_object *o)
{
    json_t *pairs = json_array();
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        json_t *pair = json_array();
        json_array_append_new(pair, mp_to_json_tagged(&o->via.map.ptr[i].key));
        json_array_append_new(pair, mp_to_json_tagged(&o->via.map.ptr[i].val));
        json_array_append_new(pairs, pair);
    }
    return tag("$map", pairs);
}

json_t *mp_to_json_tagged(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX) {
            char dec[32];
            snprintf(dec, sizeof dec, "%llu", (unsigned long long)o->via.u64);
            return tag("$uint", json_string(dec));
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32: return float_json(o->via.f64, true);
    case MSGPACK_OBJECT_FLOAT64: return float_json(o->via.f64, false);
    case MSGPACK_OBJECT_STR: {
        json_t *s = json_stringn(o->via.str.ptr, o->via.str.size);
        return s ? s : tag("$str", b64(o->via.str.ptr, o->via.str.size));
    }
    case MSGPACK_OBJECT_BIN: return tag("$bin", b64(o->via.bin.ptr, o->via.bin.size));
    case MSGPACK_OBJECT_EXT: {
        json_t *a = json_array();
        json_array_append_new(a, json_integer(o->via.ext.type));
        json_array_append_new(a, b64(o->via.ext.ptr, o->via.ext.size));
        return tag("$ext", a);
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++)
            json_array_append_new(a, mp_to_json_tagged(&o->via.array.ptr[i]));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        if (needs_map_tag(o)) return map_as_pairs(o);
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            /* duplicate keys would collapse in a JSON object: use $map */
            if (json_object_getn(m, kv->key.via.str.ptr, kv->key.via.str.size)) {
                json_decref(m);
                return map_as_pairs(o);
            }
            json_object_setn_new(m, kv->key.via.str.ptr, kv->key.via.str.size,
                                 mp_to_json_tagged(&kv->val));
        }
        return m;
    }
    }
    return json_null();
}

static int decode_b64(const json_t *v, struct buf *out, const char *tagname)
{
    if (!json_is_string(v)) return fail("%s: value must be a base64 string", tagname);
    if (base64_decode(out, json_string_value(v), json_string_length(v)) != 0)
        return fail("%s: invalid base64", tagname);
    return 0;
}

static int special_float(const json_t *v, double *out, const char *tagname)
{
    const char *s = json_string_value(v);
    if (!strcmp(s, "nan")) *out = NAN;
    else if (!strcmp(s, "inf")) *out = INFINITY;
    else if (!strcmp(s, "-inf")) *out = -INFINITY;
    else return fail("%s: expected \"nan\", \"inf\" or \"-inf\"", tagname);
    return 0;
}

static int pack_tag(msgpack_packer *pk, const char *name, const json_t *v)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    int rc = 0;
    if (!strcmp(name, "$bin")) {
        if ((rc = decode_b64(v, &b, name)) == 0) msgpack_pack_bin_with_body(pk, b.data, b.len);
    } else if (!strcmp(name, "$str")) {
        if ((rc = decode_b64(v, &b, name)) == 0) msgpack_pack_str_with_body(pk, b.data, b.len);
    } else if (!strcmp(name, "$ext")) {
        if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0)) ||
            json_integer_value(json_array_get(v, 0)) < -128 || json_integer_value(json_array_get(v, 0)) > 127)
            rc = fail("$ext: value must be [TYPE (-128..127), BASE64]");
        else if ((rc = decode_b64(json_array_get(v, 1), &b, name)) == 0)
            msgpack_pack_ext_with_body(pk, b.data, b.len, (int8_t)json_integer_value(json_array_get(v, 0)));
    } else if (!strcmp(name, "$f32") || !strcmp(name, "$float")) {
        double d = 0;
        if (json_is_number(v)) d = json_number_value(v);
        else if (json_is_string(v)) rc = special_float(v, &d, name);
        else rc = fail("%s: value must be a number or a string", name);
        if (rc == 0) {
            if (name[2] == '3') msgpack_pack_float(pk, (float)d);
            else msgpack_pack_double(pk, d);
        }
    } else if (!strcmp(name, "$uint")) {
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        char *end;
        errno = 0;
        unsigned long long u = strtoull(s, &end, 10);
        if (!*s || *end || errno || s[0] == '-') rc = fail("$uint: value must be a decimal string");
        else msgpack_pack_uint64(pk, u);
    } else if (!strcmp(name, "$map")) {
        if (!json_is_array(v)) rc = fail("$map: value must be an array of [KEY, VALUE] pairs");
        else {
            msgpack_pack_map(pk, json_array_size(v));
            for (size_t i = 0; i < json_array_size(v) && rc == 0; i++) {
                const json_t *pair = json_array_get(v, i);
                if (!json_is_array(pair) || json_array_size(pair) != 2)
                    rc = fail("$map: element %zu is not a [KEY, VALUE] pair", i);
                else if ((rc = mp_pack_json_tagged(pk, json_array_get(pair, 0))) == 0)
                    rc = mp_pack_json_tagged(pk, json_array_get(pair, 1));
            }
        }
    } else {
        rc = fail("unknown tag '%s' (an object whose only key starts with '$' must be one of "
                  "$bin $str $ext $f32 $float $uint $map)", name);
    }
    buf_free(&b);
    return rc;
}

int mp_pack_json_tagged(msgpack_packer *pk, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            if (mp_pack_json_tagged(pk, json_array_get(v, i)) != 0) return -1;
        return 0;
    case JSON_OBJECT: {
        if (json_object_size(v) == 1) {
            const char *key = json_object_iter_key(json_object_iter((json_t *)v));
            if (key[0] == '$') return pack_tag(pk, key, json_object_get(v, key));
        }
        msgpack_pack_map(pk, json_object_size(v));
        const char *key;
        size_t klen;
        json_t *val;
        json_object_keylen_foreach((json_t *)v, key, klen, val) {
            msgpack_pack_str_with_body(pk, key, klen);
            if (mp_pack_json_tagged(pk, val) != 0) return -1;
        }
        return 0;
    }
    default:
        mp_pack_json(pk, v);
        return 0;
    }
}
