#include "formats/safetensors.h"
#include "common/depfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"

static const struct {
    const char *name;
    enum dtype dtype;     /* what mlc-pipe converts */
    size_t size;
} st_dtypes[] = {
    {"F32", DT_F32, 4},         {"F16", DT_F16, 2},         {"BF16", DT_BF16, 2},
    {"F64", DT_INVALID, 8},     {"I64", DT_INVALID, 8},     {"U64", DT_INVALID, 8},
    {"I32", DT_INVALID, 4},     {"U32", DT_INVALID, 4},     {"I16", DT_INVALID, 2},
    {"U16", DT_INVALID, 2},     {"I8", DT_INVALID, 1},      {"U8", DT_INVALID, 1},
    {"BOOL", DT_INVALID, 1},    {"F8_E4M3", DT_INVALID, 1}, {"F8_E5M2", DT_INVALID, 1},
};

void st_close(struct st_file *f)
{
    for (size_t i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap((void *)f->map, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

static int cmp_begin(const void *a, const void *b)
{
    const struct st_tensor *x = *(const struct st_tensor *const *)a, *y = *(const struct st_tensor *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static int parse_tensor(struct st_file *f, const char *name, json_t *v, struct st_tensor *t)
{
    const char *p = f->path;
    if (!json_is_object(v)) return fail("%s: tensor '%s': not an object", p, name);
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
            return fail("%s: tensor '%s': unknown field '%s'", p, name, key);
    }
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt)) return fail("%s: tensor '%s': field 'dtype' missing or not a string", p, name);
    size_t item = 0;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(st_dtypes[i].name, json_string_value(dt))) {
            t->st_dtype = st_dtypes[i].name;
            t->dtype = st_dtypes[i].dtype;
            item = st_dtypes[i].size;
        }
    if (!item) return fail("%s: tensor '%s': field 'dtype': unknown dtype '%s'", p, name, json_string_value(dt));
    if (!json_is_array(shape)) return fail("%s: tensor '%s': field 'shape' missing or not an array", p, name);
    if (json_array_size(shape) > ST_MAX_DIMS) return fail("%s: tensor '%s': field 'shape': too many dimensions", p, name);
    t->ndim = (int)json_array_size(shape);
    uint64_t numel = 1;
    for (int d = 0; d < t->ndim; d++) {
        json_t *x = json_array_get(shape, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            return fail("%s: tensor '%s': field 'shape': dimensions must be non-negative integers", p, name);
        t->shape[d] = json_integer_value(x);
        if (!u64_mul(numel, (uint64_t)t->shape[d], &numel))
            return fail("%s: tensor '%s': field 'shape': too many elements", p, name);
    }
    t->numel = numel;
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_is_integer(json_array_get(offs, 0)) ||
        !json_is_integer(json_array_get(offs, 1)))
        return fail("%s: tensor '%s': field 'data_offsets' must be [begin, end]", p, name);
    json_int_t b = json_integer_value(json_array_get(offs, 0)), e = json_integer_value(json_array_get(offs, 1));
    if (b < 0 || e < b) return fail("%s: tensor '%s': field 'data_offsets': [%lld, %lld] is not a span", p, name,
                                    (long long)b, (long long)e);
    t->begin = (uint64_t)b;
    t->end = (uint64_t)e;
    uint64_t bytes;
    if (!u64_mul(numel, item, &bytes))
        return fail("%s: tensor '%s': shape and dtype give %llu elements of %zu bytes, more bytes than 64 bits count",
                    p, name, (unsigned long long)numel, item);
    if (bytes != t->end - t->begin)
        return fail("%s: tensor '%s': shape and dtype give %llu bytes, but data_offsets span %llu", p, name,
                    (unsigned long long)bytes, (unsigned long long)(t->end - t->begin));
    if (t->end > f->data_len)
        return fail("%s: tensor '%s': field 'data_offsets': end %llu is past the end of the data (%zu bytes)", p,
                    name, (unsigned long long)t->end, f->data_len);
    return 0;
}

static int parse_header(struct st_file *f, const char *text, size_t len)
{
    const char *p = f->path;
    json_error_t err;
    json_t *h = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    if (!h) return fail("%s: header: %s (at byte %d of the JSON)", p, err.text, err.position);
    int rc = -1;
    if (!json_is_object(h)) {
        fail("%s: header is not a JSON object", p);
        goto out;
    }
    size_t n = json_object_size(h);
    f->tensors = xcalloc(n ? n : 1, sizeof *f->tensors);
    const char *key;
    json_t *val;
    json_object_foreach(h, key, val) {
        if (!strcmp(key, "__metadata__")) {
            const char *k2;
            json_t *v2;
            if (!json_is_object(val)) {
                fail("%s: __metadata__ must be an object of strings", p);
                goto out;
            }
            json_object_foreach(val, k2, v2) if (!json_is_string(v2)) {
                fail("%s: __metadata__: field '%s' must be a string", p, k2);
                goto out;
            }
            continue;
        }
        if (!*key) {
            fail("%s: a tensor has an empty name", p);
            goto out;
        }
        struct st_tensor *t = &f->tensors[f->ntensors];
        if (parse_tensor(f, key, val, t) != 0) goto out;
        t->name = xstrdup(key);
        f->ntensors++;
    }
    /* the spans, sorted, must tile the data section exactly */
    struct st_tensor **order = xcalloc(f->ntensors ? f->ntensors : 1, sizeof *order);
    for (size_t i = 0; i < f->ntensors; i++) order[i] = &f->tensors[i];
    qsort(order, f->ntensors, sizeof *order, cmp_begin);
    uint64_t at = 0;
    for (size_t i = 0; i < f->ntensors; i++) {
        if (order[i]->begin < at) {
            fail("%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'", p, order[i]->name,
                 (unsigned long long)order[i]->begin, (unsigned long long)order[i]->end, order[i - 1]->name);
            free(order);
            goto out;
        }
        if (order[i]->begin > at) {
            fail("%s: tensor '%s': data_offsets start at %llu, leaving a gap after byte %llu", p, order[i]->name,
                 (unsigned long long)order[i]->begin, (unsigned long long)at);
            free(order);
            goto out;
        }
        at = order[i]->end;
    }
    free(order);
    if (at != f->data_len) {
        fail("%s: the data section has %zu bytes, but the tensors cover %llu", p, f->data_len,
             (unsigned long long)at);
        goto out;
    }
    rc = 0;
out:
    json_decref(h);
    return rc;
}

int st_open(struct st_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = xstrdup(path);
    deps_note(path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail("%s: cannot open: %s", path, strerror(errno));
        goto bad;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        fail("%s: not a regular file", path);
        goto bad;
    }
    f->size = (size_t)st.st_size;
    if (f->size < 8) {
        close(fd);
        fail("%s: %zu bytes: too short for a safetensors file", path, f->size);
        goto bad;
    }
    void *m = mmap(NULL, f->size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        fail("%s: cannot map: %s", path, strerror(errno));
        goto bad;
    }
    f->map = m;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->map[i];
    if (hlen > ST_MAX_HEADER) {
        fail("%s: header length %llu exceeds the %u-byte limit", path, (unsigned long long)hlen, ST_MAX_HEADER);
        goto bad;
    }
    if (hlen > f->size - 8) {
        fail("%s: header length %llu is past the end of the file (%zu bytes)", path, (unsigned long long)hlen,
             f->size);
        goto bad;
    }
    if (hlen < 2 || f->map[8] != '{') {
        fail("%s: header does not start with '{': not a safetensors file", path);
        goto bad;
    }
    f->data = f->map + 8 + hlen;
    f->data_len = f->size - 8 - (size_t)hlen;
    if (parse_header(f, (const char *)f->map + 8, (size_t)hlen) != 0) goto bad;
    return 0;
bad:
    st_close(f);
    return -1;
}

void st_release(const struct st_file *f, const struct st_tensor *t)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)(f->data + t->begin), end = (uintptr_t)(f->data + t->end);
    /* only whole pages inside the tensor: neighbours may still be in use */
    start = (start + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    end &= ~((uintptr_t)page - 1);
    if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
}
