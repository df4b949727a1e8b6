/* MLC's tensor cache: tensor-cache.json plus params_shard_N.bin files
 * (mlc-formats.md §1), written exactly as TVM's tvmjs.dump_tensor_cache
 * writes them and read as MLC's runtime reads them.
 *
 * Writing is planned up front: tensor sizes are known from their shapes, so
 * tc_plan_add() places each tensor (shard and byte offset) with MLC's
 * packing algorithm before any byte is computed. The bytes can then be
 * produced in any order and the result is the same. */
#ifndef MLC_TENSOR_CACHE_H
#define MLC_TENSOR_CACHE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/hash.h"
#include "formats/dtype.h"

#define TC_MAX_DIMS 8
/* 32 MiB: convert_weight's shard_cap_mb=32 */
#define TC_SHARD_CAP ((uint64_t)32 << 20)
#define TC_JSON_NAME "tensor-cache.json"
#define TC_JSON_OLD_NAME "ndarray-cache.json"
#define TC_JSON_B16_NAME "tensor-cache-b16.json"

struct tc_record {
    char *name;
    enum dtype dtype;
    const char *dtype_name;   /* as written in the JSON */
    int ndim;
    int64_t shape[TC_MAX_DIMS];
    char *format;             /* "f32-to-bf16" or "raw" */
    uint64_t nbytes;          /* bytes on disk */
    uint64_t byte_offset;
    size_t shard;             /* index into shards */
    size_t record_index;      /* position inside its shard's "records" */
};

struct tc_shard {
    char *data_path;          /* relative to the cache directory */
    uint64_t nbytes;
    char md5[HASH_HEX_MAX];   /* "" when the record has none */
    /* mapped on first use */
    const unsigned char *map;
    size_t map_len;
};

/* ---- reading ---- */

struct tensor_cache {
    char *dir;
    char *json_path;
    json_t *metadata;         /* the "metadata" object (may be empty) */
    struct tc_shard *shards;
    size_t nshards;
    struct tc_record *records;
    size_t nrecords, records_cap;
};

/* Open DIR/tensor-cache.json, falling back to DIR/ndarray-cache.json (or a
 * JSON file given directly). Checks the schema: every field present with its
 * type, dtype known, nbytes == numel * size (numel * 2 for "f32-to-bf16"
 * float32), dataPath a safe relative name. Errors name the file, the record
 * and the field. Does not touch the shards. */
int tensor_cache_open(struct tensor_cache *tc, const char *path);
void tensor_cache_close(struct tensor_cache *tc);
/* Check every shard as MLC's loader does (format "raw-shard", file length ==
 * nbytes) and every record's span lies inside its shard; with check_md5,
 * also each shard's md5sum. */
int tensor_cache_validate(struct tensor_cache *tc, bool check_md5);
const struct tc_record *tensor_cache_find(const struct tensor_cache *tc, const char *name);
/* The record's bytes as stored (the shard is mmap'ed on first use). */
int tensor_cache_raw(struct tensor_cache *tc, const struct tc_record *r, const void **data);
/* The tensor's numel. */
uint64_t tc_record_numel(const struct tc_record *r);
/* Decode a float32/float16/bfloat16 tensor to float32 (undoing the
 * "f32-to-bf16" storage encoding); -1 for other dtypes. out holds numel. */
int tensor_cache_read_f32(struct tensor_cache *tc, const struct tc_record *r, float *out);

/* ---- writing ---- */

struct tc_plan_tensor {
    char *name;
    enum dtype dtype;         /* in-memory dtype (float32 is stored as bf16) */
    int ndim;
    int64_t shape[TC_MAX_DIMS];
    uint64_t nbytes;          /* bytes on disk */
    size_t shard;
    uint64_t byte_offset;
};

struct tc_plan_shard {
    uint64_t nbytes;
    size_t *members;          /* plan indices in shard order (a big tensor
                                 can take a shard ahead of smaller ones
                                 still pending, so these are not ranges) */
    size_t nmembers, cap;
    char md5[HASH_HEX_MAX];   /* filled by the writer */
};

struct tc_plan {
    struct tc_plan_tensor *tensors;
    size_t ntensors, cap;
    struct tc_plan_shard *shards;
    size_t nshards, shards_cap;
    uint64_t cap_bytes;       /* TC_SHARD_CAP unless a test changes it */
    long pending;             /* shard index still open, or -1 */
    double param_bytes;       /* Σ numel * in-memory itemsize */
    bool any_f32;
};

void tc_plan_init(struct tc_plan *p);
void tc_plan_free(struct tc_plan *p);
/* Bytes a tensor takes on disk in MLC's "f32-to-bf16" encoding. -1 on
 * overflow or a bad shape. */
int tc_stored_nbytes(enum dtype t, int ndim, const int64_t *shape, uint64_t *out);
/* Place the next tensor (in loader order). Returns its plan index, or -1. */
long tc_plan_add(struct tc_plan *p, const char *name, enum dtype t, int ndim, const int64_t *shape);
/* Close the pending shard. Call once, after the last tc_plan_add. */
void tc_plan_finish(struct tc_plan *p);
/* "params_shard_N.bin" */
void tc_shard_name(size_t index, char out[40]);

/* The tensor-cache.json text as json.dump(indent=4) writes it; with b16, the
 * tensor-cache-b16.json variant (float32 records as bfloat16/raw). The
 * metadata object is written as given. Shard md5s come from the plan. */
int tc_json_text(const struct tc_plan *p, const json_t *metadata, bool b16, struct buf *out);
/* MLC's metadata object: ParamSize, ParamBytes, BitsPerParam. */
json_t *tc_metadata(size_t param_size, double param_bytes, uint64_t total_source_params);

/* ---- updating ---- */

/* A float32 tensor to write into an existing cache. */
struct tc_update {
    const char *name;
    int ndim;
    int64_t shape[TC_MAX_DIMS];
    const float *values;      /* numel values */
};

/* Write float32 tensors into the cache in directory `dir` as TVM's
 * dump_tensor_cache(update_if_exists=True) does (see tensor_cache_update.c):
 * names it holds are overwritten where they lie, new ones go to new shards.
 * The directory is replaced as a whole: interrupted, the old cache stays. */
int tensor_cache_update(const char *dir, const struct tc_update *u, size_t n, size_t *replaced, size_t *added);

/* MLC's float32 storage encoding of n values into n bf16 halves. */
void tc_encode_f32(const float *in, uint16_t *out, size_t n);

#endif
