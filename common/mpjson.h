/* Conversions between msgpack objects and jansson values.
 *
 * Plain conversion is for structured data that is JSON at heart (a config
 * map inline in a record): strings must be UTF-8, keys strings, floats
 * finite.
 *
 * Tagged conversion is mlc-dump's: every msgpack value gets a JSON form, and
 * packing that form gives back the same value:
 *   bin                       {"$bin": "<base64>"}
 *   ext                       {"$ext": [TYPE, "<base64>"]}
 *   str that is not UTF-8     {"$str": "<base64>"}
 *   float32                   {"$f32": NUMBER}   (or a "$float" form)
 *   NaN / ±infinity           {"$float": "nan" | "inf" | "-inf"}
 *   uint64 above INT64_MAX    {"$uint": "DECIMAL"}
 *   map with a non-string key, or whose only key starts with '$'
 *                             {"$map": [[KEY, VALUE], ...]}
 * Integers and float64 map to JSON numbers, so dump → pack → dump is exact
 * and packing a dump of a canonically encoded stream gives its bytes back.
 */
#ifndef MLC_MPJSON_H
#define MLC_MPJSON_H

#include <jansson.h>
#include <msgpack.h>

/* NULL with last_error() set on values JSON cannot hold; `what` names the
 * value in messages ("config record: field 'config'"). */
json_t *mp_to_json(const msgpack_object *o, const char *what);
/* Objects → maps, integers → ints, reals → float64. */
void mp_pack_json(msgpack_packer *pk, const json_t *v);

json_t *mp_to_json_tagged(const msgpack_object *o);
/* -1 with last_error() set on a malformed tag. */
int mp_pack_json_tagged(msgpack_packer *pk, const json_t *v);

#endif
