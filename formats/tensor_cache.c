/* tensor-cache.json + params_shard_N.bin: planning, JSON text, reading. */
#include "formats/tensor_cache.h"
#include "common/depfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"

/* ---------------------------------------------------------------- writing */

void tc_plan_init(struct tc_plan *p)
{
    memset(p, 0, sizeof *p);
    p->cap_bytes = TC_SHARD_CAP;
    p->pending = -1;
}

void tc_plan_free(struct tc_plan *p)
{
    for (size_t i = 0; i < p->ntensors; i++) free(p->tensors[i].name);
    for (size_t i = 0; i < p->nshards; i++) free(p->shards[i].members);
    free(p->tensors);
    free(p->shards);
    memset(p, 0, sizeof *p);
    p->pending = -1;
}

int tc_stored_nbytes(enum dtype t, int ndim, const int64_t *shape, uint64_t *out)
{
    uint64_t n = t == DT_F32 ? 2 : dtype_size(t);
    if (!n || ndim < 0 || ndim > TC_MAX_DIMS) return -1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0 || !u64_mul(n, (uint64_t)shape[i], &n)) return -1;
    *out = n;
    return 0;
}

void tc_shard_name(size_t index, char out[40])
{
    snprintf(out, 40, "params_shard_%zu.bin", index);
}

static void shard_add_member(struct tc_plan_shard *s, size_t idx)
{
    s->members = xgrow(s->members, &s->cap, s->nmembers + 1, sizeof *s->members);
    s->members[s->nmembers++] = idx;
}

/* The pending shard lives at the end of the shards array with no number
 * yet; committing it (or an out-of-band tensor) gives the next number.
 * To keep numbers equal to array positions, a committed out-of-band shard is
 * inserted before the pending one. */
static size_t commit_new_shard(struct tc_plan *p)
{
    p->shards = xgrow(p->shards, &p->shards_cap, p->nshards + 1, sizeof *p->shards);
    size_t at = p->nshards;
    if (p->pending >= 0) {
        /* move the pending shard up one slot */
        p->shards[p->nshards] = p->shards[p->pending];
        at = (size_t)p->pending;
        p->pending++;
        for (size_t i = 0; i < p->shards[p->pending].nmembers; i++)
            p->tensors[p->shards[p->pending].members[i]].shard = (size_t)p->pending;
    }
    memset(&p->shards[at], 0, sizeof p->shards[at]);
    p->nshards++;
    return at;
}

long tc_plan_add(struct tc_plan *p, const char *name, enum dtype t, int ndim, const int64_t *shape)
{
    uint64_t n;
    if (tc_stored_nbytes(t, ndim, shape, &n) != 0) return fail("tensor '%s': bad shape or dtype", name);
    p->tensors = xgrow(p->tensors, &p->cap, p->ntensors + 1, sizeof *p->tensors);
    size_t idx = p->ntensors++;
    struct tc_plan_tensor *x = &p->tensors[idx];
    memset(x, 0, sizeof *x);
    x->name = xstrdup(name);
    x->dtype = t;
    x->ndim = ndim;
    memcpy(x->shape, shape, (size_t)ndim * sizeof *shape);
    x->nbytes = n;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (uint64_t)shape[i];
    p->param_bytes += (double)numel * (double)dtype_size(t);
    if (t == DT_F32) p->any_f32 = true;

    uint64_t pending = p->pending >= 0 ? p->shards[p->pending].nbytes : 0;
    if (pending + n >= p->cap_bytes) {
        if (2 * n >= p->cap_bytes) {
            /* out of band: its own shard now; the pending one stays open */
            size_t s = commit_new_shard(p);
            p->tensors[idx].shard = s;
            p->tensors[idx].byte_offset = 0;
            p->shards[s].nbytes = n;
            shard_add_member(&p->shards[s], idx);
            return (long)idx;
        }
        p->pending = -1; /* flush: the pending shard keeps its number */
    }
    if (p->pending < 0) {
        size_t s = commit_new_shard(p);
        p->pending = (long)s;
    }
    struct tc_plan_shard *sh = &p->shards[p->pending];
    p->tensors[idx].shard = (size_t)p->pending;
    p->tensors[idx].byte_offset = sh->nbytes;
    sh->nbytes += n;
    shard_add_member(sh, idx);
    return (long)idx;
}

void tc_plan_finish(struct tc_plan *p)
{
    /* an empty pending shard cannot exist: it is created with a tensor */
    p->pending = -1;
}

static json_t *shape_json(int ndim, const int64_t *shape)
{
    json_t *a = json_array();
    for (int i = 0; i < ndim; i++) json_array_append_new(a, json_integer(shape[i]));
    return a;
}

int tc_json_text(const struct tc_plan *p, const json_t *metadata, bool b16, struct buf *out)
{
    json_t *root = json_object();
    json_object_set(root, "metadata", (json_t *)metadata);
    json_t *records = json_array();
    for (size_t s = 0; s < p->nshards; s++) {
        const struct tc_plan_shard *sh = &p->shards[s];
        char name[40];
        tc_shard_name(s, name);
        json_t *shard = json_object();
        json_object_set_new(shard, "dataPath", json_string(name));
        json_object_set_new(shard, "format", json_string("raw-shard"));
        json_object_set_new(shard, "nbytes", json_integer((json_int_t)sh->nbytes));
        json_t *recs = json_array();
        for (size_t m = 0; m < sh->nmembers; m++) {
            const struct tc_plan_tensor *t = &p->tensors[sh->members[m]];
            bool as_b16 = b16 && t->dtype == DT_F32;
            json_t *r = json_object();
            json_object_set_new(r, "name", json_string(t->name));
            json_object_set_new(r, "shape", shape_json(t->ndim, t->shape));
            json_object_set_new(r, "dtype", json_string(as_b16 ? "bfloat16" : dtype_name(t->dtype)));
            json_object_set_new(r, "format", json_string(as_b16 ? "raw" : "f32-to-bf16"));
            json_object_set_new(r, "nbytes", json_integer((json_int_t)t->nbytes));
            json_object_set_new(r, "byteOffset", json_integer((json_int_t)t->byte_offset));
            json_array_append_new(recs, r);
        }
        json_object_set_new(shard, "records", recs);
        json_object_set_new(shard, "md5sum", json_string(sh->md5));
        json_array_append_new(records, shard);
    }
    json_object_set_new(root, "records", records);
    struct pyjson_style st = pyjson_indent(4);
    int rc = pyjson_dump(out, root, &st);
    json_decref(root);
    return rc;
}

json_t *tc_metadata(size_t param_size, double param_bytes, uint64_t total_source_params)
{
    json_t *m = json_object();
    json_object_set_new(m, "ParamSize", json_integer((json_int_t)param_size));
    json_object_set_new(m, "ParamBytes", json_real(param_bytes));
    json_object_set_new(m, "BitsPerParam", json_real(param_bytes * 8.0 / (double)total_source_params));
    return m;
}

void tc_encode_f32(const float *in, uint16_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) out[i] = f32_to_bf16_storage(in[i]);
}

/* ---------------------------------------------------------------- reading */

void tensor_cache_close(struct tensor_cache *tc)
{
    for (size_t i = 0; i < tc->nshards; i++) {
        free(tc->shards[i].data_path);
        if (tc->shards[i].map) munmap((void *)tc->shards[i].map, tc->shards[i].map_len);
    }
    for (size_t i = 0; i < tc->nrecords; i++) {
        free(tc->records[i].name);
        free(tc->records[i].format);
    }
    free(tc->shards);
    free(tc->records);
    free(tc->dir);
    free(tc->json_path);
    if (tc->metadata) json_decref(tc->metadata);
    memset(tc, 0, sizeof *tc);
}

uint64_t tc_record_numel(const struct tc_record *r)
{
    uint64_t n = 1;
    for (int i = 0; i < r->ndim; i++) n *= (uint64_t)r->shape[i];
    return n;
}

static int need_u64(const json_t *obj, const char *key, uint64_t *out, const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return fail("%s: missing field '%s'", where, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail("%s: field '%s' must be a non-negative integer", where, key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int need_string(const json_t *obj, const char *key, const char **out, const char *where)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return fail("%s: missing field '%s'", where, key);
    if (!json_is_string(v)) return fail("%s: field '%s' must be a string", where, key);
    *out = json_string_value(v);
    return 0;
}

static int parse_record(struct tensor_cache *tc, const json_t *r, size_t shard, size_t ri, const char *file)
{
    char where[600];
    snprintf(where, sizeof where, "%s: records[%zu].records[%zu]", file, shard, ri);
    if (!json_is_object(r)) return fail("%s: must be an object", where);
    const char *name, *dtype, *format;
    if (need_string(r, "name", &name, where)) return -1;
    snprintf(where, sizeof where, "%s: record '%s'", file, name);
    if (need_string(r, "dtype", &dtype, where) || need_string(r, "format", &format, where)) return -1;
    struct tc_record rec = {0};
    rec.dtype = dtype_from_name(dtype);
    if (rec.dtype == DT_INVALID) return fail("%s: field 'dtype': unknown dtype '%s'", where, dtype);
    rec.dtype_name = dtype_name(rec.dtype);
    if (strcmp(format, "f32-to-bf16") && strcmp(format, "raw"))
        return fail("%s: field 'format': unknown format '%s'", where, format);
    json_t *shape = json_object_get(r, "shape");
    if (!json_is_array(shape)) return fail("%s: field 'shape' must be an array", where);
    if (json_array_size(shape) > TC_MAX_DIMS) return fail("%s: field 'shape': too many dimensions", where);
    rec.ndim = (int)json_array_size(shape);
    for (int d = 0; d < rec.ndim; d++) {
        json_t *x = json_array_get(shape, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return fail("%s: field 'shape': dimensions must be non-negative integers", where);
        rec.shape[d] = json_integer_value(x);
    }
    if (need_u64(r, "nbytes", &rec.nbytes, where) || need_u64(r, "byteOffset", &rec.byte_offset, where))
        return -1;
    uint64_t want = rec.dtype == DT_F32 && !strcmp(format, "f32-to-bf16") ? 2 : dtype_size(rec.dtype);
    for (int d = 0; d < rec.ndim; d++)
        if (!u64_mul(want, (uint64_t)rec.shape[d], &want)) return fail("%s: field 'shape': too large", where);
    if (want != rec.nbytes)
        return fail("%s: field 'nbytes': %llu, but the shape and dtype give %llu", where,
                    (unsigned long long)rec.nbytes, (unsigned long long)want);
    rec.name = xstrdup(name);
    rec.format = xstrdup(format);
    rec.shard = shard;
    rec.record_index = ri;
    tc->records = xgrow(tc->records, &tc->records_cap, tc->nrecords + 1, sizeof *tc->records);
    tc->records[tc->nrecords++] = rec;
    return 0;
}

int tensor_cache_open(struct tensor_cache *tc, const char *path)
{
    memset(tc, 0, sizeof *tc);
    char *json_path;
    if (is_dir(path)) {
        json_path = path_join(path, TC_JSON_NAME);
        if (!path_exists(json_path)) {
            char *old = path_join(path, TC_JSON_OLD_NAME);
            if (path_exists(old)) {
                free(json_path);
                json_path = old;
            } else {
                free(old);
                int rc = fail("%s: no %s (nor %s)", path, TC_JSON_NAME, TC_JSON_OLD_NAME);
                free(json_path);
                return rc;
            }
        }
        tc->dir = xstrdup(path);
    } else {
        json_path = xstrdup(path);
        tc->dir = path_dirname(path);
    }
    tc->json_path = json_path;
    const char *file = json_path;
    json_t *root = json_load_path(file);
    if (!root) goto bad;
    if (!json_is_object(root)) {
        fail("%s: not a JSON object", file);
        goto bad_root;
    }
    json_t *meta = json_object_get(root, "metadata");
    if (meta && !json_is_object(meta)) {
        fail("%s: field 'metadata' must be an object", file);
        goto bad_root;
    }
    tc->metadata = meta ? json_incref(meta) : json_object();
    json_t *records = json_object_get(root, "records");
    if (!json_is_array(records)) {
        fail("%s: field 'records' must be an array", file);
        goto bad_root;
    }
    tc->nshards = json_array_size(records);
    tc->shards = xcalloc(tc->nshards ? tc->nshards : 1, sizeof *tc->shards);
    for (size_t s = 0; s < tc->nshards; s++) {
        json_t *sh = json_array_get(records, s);
        char where[600];
        snprintf(where, sizeof where, "%s: records[%zu]", file, s);
        if (!json_is_object(sh)) {
            fail("%s: must be an object", where);
            goto bad_root;
        }
        const char *dp, *format;
        if (need_string(sh, "dataPath", &dp, where) || need_string(sh, "format", &format, where) ||
            need_u64(sh, "nbytes", &tc->shards[s].nbytes, where))
            goto bad_root;
        if (!path_is_safe_relative(dp)) {
            fail("%s: field 'dataPath': '%s' is not a plain relative path", where, dp);
            goto bad_root;
        }
        if (strcmp(format, "raw-shard")) {
            fail("%s: field 'format': '%s', expected 'raw-shard'", where, format);
            goto bad_root;
        }
        tc->shards[s].data_path = xstrdup(dp);
        json_t *md5 = json_object_get(sh, "md5sum");
        if (md5) { /* optional in very old caches */
            const char *m = json_string_value(md5);
            if (!m || strlen(m) != 32 || strspn(m, "0123456789abcdef") != 32) {
                fail("%s: field 'md5sum' must be 32 lowercase hex digits", where);
                goto bad_root;
            }
            memcpy(tc->shards[s].md5, m, 33);
        }
        json_t *recs = json_object_get(sh, "records");
        if (!json_is_array(recs)) {
            fail("%s: field 'records' must be an array", where);
            goto bad_root;
        }
        for (size_t r = 0; r < json_array_size(recs); r++)
            if (parse_record(tc, json_array_get(recs, r), s, r, file) != 0) goto bad_root;
    }
    json_decref(root);
    return 0;
bad_root:
    json_decref(root);
bad:
    tensor_cache_close(tc);
    return -1;
}

static int map_shard(struct tensor_cache *tc, size_t s)
{
    struct tc_shard *sh = &tc->shards[s];
    if (sh->map || sh->nbytes == 0) return 0;
    char *path = path_join(tc->dir, sh->data_path);
    deps_note(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = fail("%s: cannot open: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != sh->nbytes) {
        int rc = fail("%s: %lld bytes, but %s says %llu (corrupted parameter shard)", path,
                      (long long)st.st_size, path_basename(tc->json_path), (unsigned long long)sh->nbytes);
        close(fd);
        free(path);
        return rc;
    }
    void *m = mmap(NULL, (size_t)sh->nbytes, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        int rc = fail("%s: cannot map: %s", path, strerror(errno));
        free(path);
        return rc;
    }
    free(path);
#ifdef MADV_HUGEPAGE
    /* The engine reads every weight on every decoded token: where the
     * kernel fills the page cache in 2 MiB folios, one TLB entry maps what
     * 512 would (1.1B q0f16 decode on a 2-core VM, one thread: 9 to 14
     * tokens/s, against 1 to 9 with the same bytes in 4 KiB pages). Only a
     * hint: pages already cached keep their size, and kernels without file
     * huge pages ignore it. */
    (void)madvise(m, (size_t)sh->nbytes, MADV_HUGEPAGE);
#endif
    sh->map = m;
    sh->map_len = (size_t)sh->nbytes;
    return 0;
}

int tensor_cache_validate(struct tensor_cache *tc, bool check_md5)
{
    for (size_t s = 0; s < tc->nshards; s++) {
        if (map_shard(tc, s) != 0) return -1;
        if (check_md5 && tc->shards[s].md5[0]) {
            char hex[HASH_HEX_MAX];
            hash_hex(HASH_MD5, tc->shards[s].map ? tc->shards[s].map : (const void *)"", tc->shards[s].map_len, hex);
            if (strcmp(hex, tc->shards[s].md5))
                return fail("%s: md5 %s, but %s says %s", tc->shards[s].data_path, hex,
                            path_basename(tc->json_path), tc->shards[s].md5);
        }
    }
    for (size_t i = 0; i < tc->nrecords; i++) {
        const struct tc_record *r = &tc->records[i];
        uint64_t end;
        if (!u64_add(r->byte_offset, r->nbytes, &end) || end > tc->shards[r->shard].nbytes)
            return fail("%s: record '%s': bytes %llu..%llu lie outside %s (%llu bytes)", tc->json_path, r->name,
                        (unsigned long long)r->byte_offset, (unsigned long long)(r->byte_offset + r->nbytes),
                        tc->shards[r->shard].data_path, (unsigned long long)tc->shards[r->shard].nbytes);
    }
    return 0;
}

const struct tc_record *tensor_cache_find(const struct tensor_cache *tc, const char *name)
{
    for (size_t i = 0; i < tc->nrecords; i++)
        if (!strcmp(tc->records[i].name, name)) return &tc->records[i];
    return NULL;
}

int tensor_cache_raw(struct tensor_cache *tc, const struct tc_record *r, const void **data)
{
    if (map_shard(tc, r->shard) != 0) return -1;
    uint64_t end;
    if (!u64_add(r->byte_offset, r->nbytes, &end) || end > tc->shards[r->shard].nbytes)
        return fail("%s: record '%s': span lies outside %s", tc->json_path, r->name,
                    tc->shards[r->shard].data_path);
    *data = tc->shards[r->shard].map ? tc->shards[r->shard].map + r->byte_offset : (const void *)"";
    return 0;
}

int tensor_cache_read_f32(struct tensor_cache *tc, const struct tc_record *r, float *out)
{
    const void *data;
    if (tensor_cache_raw(tc, r, &data) != 0) return -1;
    uint64_t n = tc_record_numel(r);
    const uint16_t *h = data;
    switch (r->dtype) {
    case DT_F32:
        if (!strcmp(r->format, "f32-to-bf16"))
            for (uint64_t i = 0; i < n; i++) {
                uint16_t b;
                memcpy(&b, h + i, 2);
                out[i] = bf16_to_f32(b);
            }
        else
            memcpy(out, data, (size_t)n * 4);
        return 0;
    case DT_F16:
    case DT_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t b;
            memcpy(&b, h + i, 2);
            out[i] = r->dtype == DT_F16 ? f16_to_f32(b) : bf16_to_f32(b);
        }
        return 0;
    default:
        return fail("%s: record '%s': dtype %s is not a float type", tc->json_path, r->name, r->dtype_name);
    }
}
