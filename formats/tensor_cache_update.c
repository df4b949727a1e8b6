/* Updating a tensor cache in place, as TVM's dump_tensor_cache does with
 * update_if_exists (how MLC-LLM's calibrate saves its scales):
 *
 *  - the existing tensor-cache.json is kept as it is (metadata included);
 *  - a name it already holds is overwritten at its byteOffset (the stored
 *    size must be the same) and that shard's md5sum recomputed;
 *  - new names are packed into new shards numbered after the existing ones,
 *    with the usual packing rule;
 *  - float32 values are stored f32-to-bf16, and tensor-cache-b16.json is
 *    rewritten beside the JSON.
 *
 * TVM writes the shards in place. Here the whole directory is replaced at
 * once instead (a temporary copy made of hard links, changed shards copied
 * before they are written, then swapped in), so an interrupted update
 * leaves the old cache and never a shard that disagrees with its JSON. */
#include "formats/tensor_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomic.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"

static json_t *shape_json(int ndim, const int64_t *shape)
{
    json_t *a = json_array();
    for (int i = 0; i < ndim; i++) json_array_append_new(a, json_integer(shape[i]));
    return a;
}

static uint64_t numel_of(int ndim, const int64_t *shape)
{
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (uint64_t)shape[i];
    return n;
}

static int write_at(const char *path, uint64_t offset, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail("%s: %s", path, strerror(errno));
    int rc = 0;
    const unsigned char *p = data;
    while (len && rc == 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) rc = fail("%s: write error: %s", path, n < 0 ? strerror(errno) : "short write");
        else {
            p += n;
            len -= (size_t)n;
            offset += (uint64_t)n;
        }
    }
    if (close(fd) != 0 && rc == 0) rc = fail("%s: close: %s", path, strerror(errno));
    return rc;
}

/* The JSON object of a shard in the loaded tree, by index. */
static json_t *shard_json(json_t *root, size_t s)
{
    return json_array_get(json_object_get(root, "records"), s);
}

static int write_tree_json(const char *dir, const char *name, const json_t *root)
{
    char *p = path_join(dir, name);
    struct pyjson_style st = pyjson_indent(4);
    int rc = pyjson_write_file(p, root, &st);
    free(p);
    return rc;
}

/* The b16 variant: every float32 record as bfloat16 "raw" (the same bytes). */
static json_t *b16_variant(const json_t *root)
{
    json_t *copy = json_deep_copy(root);
    size_t i, j;
    json_t *shard, *rec;
    json_array_foreach(json_object_get(copy, "records"), i, shard) {
        json_array_foreach(json_object_get(shard, "records"), j, rec) {
            if (json_is_string(json_object_get(rec, "dtype")) &&
                !strcmp(json_string_value(json_object_get(rec, "dtype")), "float32")) {
                json_object_set_new(rec, "format", json_string("raw"));
                json_object_set_new(rec, "dtype", json_string("bfloat16"));
            }
        }
    }
    return copy;
}

int tensor_cache_update(const char *dir, const struct tc_update *u, size_t n, size_t *replaced, size_t *added)
{
    *replaced = *added = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < i; k++)
            if (!strcmp(u[i].name, u[k].name)) return fail("%s: tensor %s is updated twice", dir, u[i].name);
    struct tensor_cache tc;
    if (tensor_cache_open(&tc, dir) != 0) return -1;
    if (strcmp(path_basename(tc.json_path), TC_JSON_NAME)) {
        int rc = fail("%s: only a %s can be updated (this cache is older: convert it again)", tc.json_path,
                      TC_JSON_NAME);
        tensor_cache_close(&tc);
        return rc;
    }
    json_t *root = json_load_path(tc.json_path);
    if (!root) {
        tensor_cache_close(&tc);
        return -1;
    }
    int rc = -1;
    struct atomic_dir tmp = {0};
    bool *touched = xcalloc(tc.nshards + 1, sizeof *touched);
    struct tc_plan plan;
    tc_plan_init(&plan);
    const struct tc_update **fresh = xcalloc(n + 1, sizeof *fresh);
    uint16_t **encoded = xcalloc(n + 1, sizeof *encoded);

    char *parent = path_dirname(tc.dir);
    atomic_clean_stale(parent); /* a killed update's temporary tree */
    free(parent);
    if (atomic_dir_begin_update(&tmp, tc.dir) != 0) goto out;
    for (size_t i = 0; i < n; i++) {
        uint64_t numel = numel_of(u[i].ndim, u[i].shape);
        encoded[i] = xmalloc(sizeof **encoded * (size_t)(numel ? numel : 1));
        tc_encode_f32(u[i].values, encoded[i], (size_t)numel);
        const struct tc_record *r = tensor_cache_find(&tc, u[i].name);
        if (!r) {
            if (tc_plan_add(&plan, u[i].name, DT_F32, u[i].ndim, u[i].shape) < 0) goto out;
            fresh[plan.ntensors - 1] = &u[i];
            continue;
        }
        if (r->dtype != DT_F32 || strcmp(r->format, "f32-to-bf16") || r->nbytes != numel * 2) {
            fail("%s: cannot update %s: it is stored as %s (%s, %llu bytes), not as %llu float32 values",
                 tc.json_path, r->name, r->dtype_name, r->format, (unsigned long long)r->nbytes,
                 (unsigned long long)numel);
            goto out;
        }
        char *shard = path_join(tmp.tmp, tc.shards[r->shard].data_path);
        int ok = (touched[r->shard] || atomic_unshare_file(shard) == 0) &&
                 write_at(shard, r->byte_offset, encoded[i], (size_t)numel * 2) == 0;
        free(shard);
        if (!ok) goto out;
        touched[r->shard] = true;
        (*replaced)++;
    }
    for (size_t s = 0; s < tc.nshards; s++) {
        if (!touched[s]) continue;
        char *shard = path_join(tmp.tmp, tc.shards[s].data_path);
        char md5[HASH_HEX_MAX];
        int ok = hash_file_hex(HASH_MD5, shard, md5) == 0;
        free(shard);
        if (!ok) goto out;
        json_object_set_new(shard_json(root, s), "md5sum", json_string(md5));
    }
    /* new shards, numbered after the existing ones */
    tc_plan_finish(&plan);
    for (size_t s = 0; s < plan.nshards; s++) {
        struct buf bytes = BUF_INIT;
        buf_init(&bytes);
        json_t *recs = json_array();
        for (size_t m = 0; m < plan.shards[s].nmembers; m++) {
            const struct tc_plan_tensor *t = &plan.tensors[plan.shards[s].members[m]];
            size_t src = (size_t)(fresh[plan.shards[s].members[m]] - u);
            buf_add(&bytes, encoded[src], (size_t)t->nbytes);
            json_t *rec = json_object();
            json_object_set_new(rec, "name", json_string(t->name));
            json_object_set_new(rec, "shape", shape_json(t->ndim, t->shape));
            json_object_set_new(rec, "dtype", json_string("float32"));
            json_object_set_new(rec, "format", json_string("f32-to-bf16"));
            json_object_set_new(rec, "nbytes", json_integer((json_int_t)t->nbytes));
            json_object_set_new(rec, "byteOffset", json_integer((json_int_t)t->byte_offset));
            json_array_append_new(recs, rec);
        }
        char name[40], md5[HASH_HEX_MAX];
        tc_shard_name(tc.nshards + s, name);
        char *path = path_join(tmp.tmp, name);
        /* (a stale file of that name is not in the JSON: replaced) */
        int ok = atomic_write_file(path, bytes.data, bytes.len) == 0;
        if (ok) hash_hex(HASH_MD5, bytes.data, bytes.len, md5);
        free(path);
        json_t *shard = json_object();
        json_object_set_new(shard, "dataPath", json_string(name));
        json_object_set_new(shard, "format", json_string("raw-shard"));
        json_object_set_new(shard, "nbytes", json_integer((json_int_t)bytes.len));
        json_object_set_new(shard, "records", recs);
        json_object_set_new(shard, "md5sum", json_string(ok ? md5 : ""));
        json_array_append_new(json_object_get(root, "records"), shard);
        buf_free(&bytes);
        if (!ok) goto out;
        *added += plan.shards[s].nmembers;
    }
    if (write_tree_json(tmp.tmp, TC_JSON_NAME, root) != 0) goto out;
    if (n > 0) { /* float32 values were written: the b16 variant too */
        json_t *b16 = b16_variant(root);
        int ok = write_tree_json(tmp.tmp, TC_JSON_B16_NAME, b16) == 0;
        json_decref(b16);
        if (!ok) goto out;
    }
    rc = atomic_dir_commit(&tmp, true);
out:
    if (rc != 0) atomic_dir_abort(&tmp);
    for (size_t i = 0; i < n; i++) free(encoded[i]);
    free(encoded);
    free(fresh);
    free(touched);
    tc_plan_free(&plan);
    json_decref(root);
    tensor_cache_close(&tc);
    return rc;
}
