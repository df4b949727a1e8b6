/* The GGUF reader (see gguf.h). Every read goes through struct cursor,
 * which refuses to step past the end; every count is compared with the
 * bytes left before it sizes an allocation. */
#include "formats/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"

#define GGUF_MAGIC "GGUF"
/* A key longer than this is not a key (llama.cpp's keys are < 64 bytes). */
#define GGUF_MAX_KEY 65535

static const struct {
    enum ggml_type type;
    const char *name;
    uint32_t block, bytes;
} ggml_types[] = {
    {GGML_F32, "F32", 1, 4},       {GGML_F16, "F16", 1, 2},       {GGML_Q4_0, "Q4_0", 32, 18},
    {GGML_Q4_1, "Q4_1", 32, 20},   {GGML_Q5_0, "Q5_0", 32, 22},   {GGML_Q5_1, "Q5_1", 32, 24},
    {GGML_Q8_0, "Q8_0", 32, 34},   {GGML_Q8_1, "Q8_1", 32, 36},   {GGML_Q2_K, "Q2_K", 256, 84},
    {GGML_Q3_K, "Q3_K", 256, 110}, {GGML_Q4_K, "Q4_K", 256, 144}, {GGML_Q5_K, "Q5_K", 256, 176},
    {GGML_Q6_K, "Q6_K", 256, 210}, {GGML_Q8_K, "Q8_K", 256, 292}, {GGML_I8, "I8", 1, 1},
    {GGML_I16, "I16", 1, 2},       {GGML_I32, "I32", 1, 4},       {GGML_I64, "I64", 1, 8},
    {GGML_F64, "F64", 1, 8},       {GGML_BF16, "BF16", 1, 2},
};
#define NTYPES (sizeof ggml_types / sizeof ggml_types[0])

const char *ggml_type_name(enum ggml_type t)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (ggml_types[i].type == t) return ggml_types[i].name;
    return NULL;
}

bool ggml_type_block(enum ggml_type t, uint64_t *block, uint64_t *bytes)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (ggml_types[i].type == t) {
            *block = ggml_types[i].block;
            *bytes = ggml_types[i].bytes;
            return true;
        }
    return false;
}

/* Size of one scalar of a metadata type; 0 for strings, arrays, unknown. */
static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    }
    return 0;
}

static const char *vtype_name(uint32_t t)
{
    static const char *const names[] = {"uint8", "int8",   "uint16", "int16", "uint32", "int32", "float32",
                                         "bool",  "string", "array",  "uint64", "int64", "float64"};
    return t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

/* ---- the cursor ---- */

struct cursor {
    const struct gguf *g;
    uint64_t pos;
    const char *field;     /* what is being read, for messages */
};

static uint64_t left(const struct cursor *c)
{
    return c->g->size - c->pos;
}

static int need(struct cursor *c, uint64_t n, const char *what)
{
    if (n > left(c))
        return fail("%s: %s: %s needs %llu bytes at offset %llu, but the file ends after %llu", c->g->path,
                    c->field, what, (unsigned long long)n, (unsigned long long)c->pos,
                    (unsigned long long)left(c));
    return 0;
}

static uint64_t le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static int read_u32(struct cursor *c, uint32_t *out, const char *what)
{
    if (need(c, 4, what)) return -1;
    *out = (uint32_t)le(c->g->map + c->pos, 4);
    c->pos += 4;
    return 0;
}

static int read_u64(struct cursor *c, uint64_t *out, const char *what)
{
    if (need(c, 8, what)) return -1;
    *out = le(c->g->map + c->pos, 8);
    c->pos += 8;
    return 0;
}

static int read_str(struct cursor *c, struct gguf_str *out, const char *what)
{
    uint64_t len;
    if (read_u64(c, &len, what)) return -1;
    if (len > left(c))
        return fail("%s: %s: %s length %llu is past the end of the file (%llu bytes left)", c->g->path,
                    c->field, what, (unsigned long long)len, (unsigned long long)left(c));
    out->s = (const char *)c->g->map + c->pos;
    out->len = len;
    c->pos += len;
    return 0;
}

static int read_scalar(struct cursor *c, uint32_t type, struct gguf_value *v)
{
    size_t n = scalar_size(type);
    if (need(c, n, "the value")) return -1;
    uint64_t raw = le(c->g->map + c->pos, n);
    c->pos += n;
    v->type = (enum gguf_vtype)type;
    switch (type) {
    case GGUF_BOOL:
        if (raw > 1) return fail("%s: %s: a bool must be 0 or 1, not %llu", c->g->path, c->field, (unsigned long long)raw);
        /* fallthrough */
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: v->u = raw; break;
    case GGUF_I8: v->i = (int8_t)raw; break;
    case GGUF_I16: v->i = (int16_t)raw; break;
    case GGUF_I32: v->i = (int32_t)raw; break;
    case GGUF_I64: v->i = (int64_t)raw; break;
    case GGUF_F32: {
        uint32_t u = (uint32_t)raw;
        float f;
        memcpy(&f, &u, 4);
        v->f = f;
        break;
    }
    case GGUF_F64: memcpy(&v->f, &raw, 8); break;
    }
    return 0;
}

static int read_value(struct cursor *c, uint32_t type, struct gguf_value *v)
{
    memset(v, 0, sizeof *v);
    if (type == GGUF_STRING) {
        v->type = GGUF_STRING;
        return read_str(c, &v->str, "the string");
    }
    if (type != GGUF_ARRAY) {
        if (!scalar_size(type)) return fail("%s: %s: unknown value type %u", c->g->path, c->field, type);
        return read_scalar(c, type, v);
    }
    v->type = GGUF_ARRAY;
    uint32_t et;
    if (read_u32(c, &et, "the array's element type") || read_u64(c, &v->count, "the array's length")) return -1;
    v->elem_type = (enum gguf_vtype)et;
    if (et == GGUF_ARRAY) return fail("%s: %s: arrays of arrays are not supported", c->g->path, c->field);
    if (et == GGUF_STRING) {
        /* every string takes at least its 8-byte length */
        if (v->count > left(c) / 8)
            return fail("%s: %s: array of %llu strings cannot fit in the %llu bytes left", c->g->path, c->field,
                        (unsigned long long)v->count, (unsigned long long)left(c));
        v->strs = xcalloc(v->count ? v->count : 1, sizeof *v->strs);
        for (uint64_t i = 0; i < v->count; i++)
            if (read_str(c, &v->strs[i], "an array string")) return -1;
        return 0;
    }
    size_t n = scalar_size(et);
    if (!n) return fail("%s: %s: unknown array element type %u", c->g->path, c->field, et);
    if (v->count > left(c) / n)
        return fail("%s: %s: array of %llu %s values is past the end of the file (%llu bytes left)", c->g->path,
                    c->field, (unsigned long long)v->count, vtype_name(et), (unsigned long long)left(c));
    v->elems = c->g->map + c->pos;
    if (et == GGUF_BOOL)
        for (uint64_t i = 0; i < v->count; i++)
            if (v->elems[i] > 1) return fail("%s: %s: element %llu: a bool must be 0 or 1", c->g->path, c->field, (unsigned long long)i);
    c->pos += v->count * n;
    return 0;
}

/* ---- the parts of the file ---- */

static char *str_dup(const struct gguf_str *s)
{
    return xstrndup(s->s, (size_t)s->len);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp((*(const struct gguf_kv *const *)a)->key, (*(const struct gguf_kv *const *)b)->key);
}

static int read_metadata(struct cursor *c, struct gguf *g, uint64_t nkv)
{
    /* a key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes */
    if (nkv > left(c) / 13)
        return fail("%s: header: metadata count %llu cannot fit in the file", g->path, (unsigned long long)nkv);
    g->kvs = xcalloc(nkv ? nkv : 1, sizeof *g->kvs);
    char field[96];
    for (uint64_t i = 0; i < nkv; i++) {
        snprintf(field, sizeof field, "metadata entry %llu", (unsigned long long)i);
        c->field = field;
        struct gguf_str key;
        uint32_t type;
        if (read_str(c, &key, "the key")) return -1;
        if (key.len == 0 || key.len > GGUF_MAX_KEY || memchr(key.s, 0, (size_t)key.len))
            return fail("%s: %s: the key is empty, too long or holds a NUL byte", g->path, field);
        struct gguf_kv *kv = &g->kvs[g->nkv++];
        kv->key = str_dup(&key);
        snprintf(field, sizeof field, "metadata '%.64s'", kv->key);
        if (read_u32(c, &type, "the value type") || read_value(c, type, &kv->v)) return -1;
    }
    struct gguf_kv **sorted = xcalloc(g->nkv ? g->nkv : 1, sizeof *sorted);
    for (size_t i = 0; i < g->nkv; i++) sorted[i] = &g->kvs[i];
    qsort(sorted, g->nkv, sizeof *sorted, cmp_key);
    int rc = 0;
    for (size_t i = 1; i < g->nkv && !rc; i++)
        if (!strcmp(sorted[i]->key, sorted[i - 1]->key))
            rc = fail("%s: metadata '%s' appears twice", g->path, sorted[i]->key);
    free(sorted);
    return rc;
}

static int read_tensor_info(struct cursor *c, struct gguf *g, struct gguf_tensor *t, uint64_t index)
{
    char field[96];
    snprintf(field, sizeof field, "tensor %llu", (unsigned long long)index);
    c->field = field;
    struct gguf_str name;
    uint32_t ndim, type;
    if (read_str(c, &name, "the name")) return -1;
    if (name.len == 0 || name.len > GGUF_MAX_KEY || memchr(name.s, 0, (size_t)name.len))
        return fail("%s: %s: the name is empty, too long or holds a NUL byte", g->path, field);
    t->name = str_dup(&name);
    snprintf(field, sizeof field, "tensor '%.64s'", t->name);
    if (read_u32(c, &ndim, "the dimension count")) return -1;
    if (ndim < 1 || ndim > GGUF_MAX_DIMS)
        return fail("%s: %s: %u dimensions (1 to %d are allowed)", g->path, field, ndim, GGUF_MAX_DIMS);
    t->ndim = (int)ndim;
    t->numel = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        if (read_u64(c, &t->ne[d], "a dimension")) return -1;
        if (t->ne[d] > INT64_MAX || !u64_mul(t->numel, t->ne[d], &t->numel) || t->numel > INT64_MAX)
            return fail("%s: %s: the dimensions overflow (dimension %u is %llu)", g->path, field, d,
                        (unsigned long long)t->ne[d]);
    }
    for (uint32_t d = ndim; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    if (read_u32(c, &type, "the type")) return -1;
    uint64_t block, bytes;
    if (!ggml_type_block((enum ggml_type)type, &block, &bytes))
        return fail("%s: %s: unknown tensor type %u", g->path, field, type);
    t->type = (enum ggml_type)type;
    if (t->ne[0] % block)
        return fail("%s: %s: first dimension %llu is not a whole number of %s blocks of %llu", g->path, field,
                    (unsigned long long)t->ne[0], ggml_type_name(t->type), (unsigned long long)block);
    if (!u64_mul(t->numel / block, bytes, &t->nbytes))
        return fail("%s: %s: the byte size overflows", g->path, field);
    if (read_u64(c, &t->offset, "the data offset")) return -1;
    return 0;
}

static int cmp_tensor_offset(const void *a, const void *b)
{
    const struct gguf_tensor *x = *(const struct gguf_tensor *const *)a, *y = *(const struct gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const struct gguf_tensor *const *)a)->name, (*(const struct gguf_tensor *const *)b)->name);
}

/* Offsets are relative to the aligned data section; make them absolute and
 * check each tensor lies inside the file, aligned, overlapping no other. */
static int place_tensors(struct gguf *g)
{
    for (size_t i = 0; i < g->ntensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        if (t->offset % g->alignment)
            return fail("%s: tensor '%s': data offset %llu is not a multiple of the alignment %llu", g->path, t->name,
                        (unsigned long long)t->offset, (unsigned long long)g->alignment);
        if (!u64_add(g->data_start, t->offset, &t->offset) || !u64_add(t->offset, t->nbytes, &end) || end > g->size)
            return fail("%s: tensor '%s': its %llu bytes at data offset %llu lie past the end of the file", g->path,
                        t->name, (unsigned long long)t->nbytes, (unsigned long long)(t->offset - g->data_start));
    }
    struct gguf_tensor **by = xcalloc(g->ntensors ? g->ntensors : 1, sizeof *by);
    for (size_t i = 0; i < g->ntensors; i++) by[i] = &g->tensors[i];
    int rc = 0;
    qsort(by, g->ntensors, sizeof *by, cmp_tensor_offset);
    for (size_t i = 1; i < g->ntensors && !rc; i++)
        if (by[i]->nbytes && by[i - 1]->offset + by[i - 1]->nbytes > by[i]->offset)
            rc = fail("%s: tensor '%s': its data overlaps tensor '%s'", g->path, by[i]->name, by[i - 1]->name);
    qsort(by, g->ntensors, sizeof *by, cmp_tensor_name);
    for (size_t i = 1; i < g->ntensors && !rc; i++)
        if (!strcmp(by[i]->name, by[i - 1]->name)) rc = fail("%s: tensor '%s' appears twice", g->path, by[i]->name);
    free(by);
    return rc;
}

int gguf_parse(struct gguf *g, const void *data, size_t size, const char *name)
{
    memset(g, 0, sizeof *g);
    g->path = xstrdup(name);
    g->map = data;
    g->size = size;
    struct cursor c = {.g = g, .field = "header"};
    uint64_t ntensors, nkv;
    if (size < 4 || memcmp(data, GGUF_MAGIC, 4)) {
        fail("%s: header: not a GGUF file (no 'GGUF' magic)", name);
        goto bad;
    }
    c.pos = 4;
    if (read_u32(&c, &g->version, "the version")) goto bad;
    if (g->version != 2 && g->version != 3) {
        fail("%s: header: GGUF version %u is not supported (2 and 3 are)%s", name, g->version,
             g->version == 1 ? "; convert the file again with a current llama.cpp" : "");
        goto bad;
    }
    if (read_u64(&c, &ntensors, "the tensor count") || read_u64(&c, &nkv, "the metadata count")) goto bad;
    if (read_metadata(&c, g, nkv)) goto bad;
    /* a tensor entry takes at least 8 (name length) + 1 + 4 + 8 + 4 + 8 bytes */
    c.field = "header";
    if (ntensors > left(&c) / 33) {
        fail("%s: header: tensor count %llu cannot fit in the file", name, (unsigned long long)ntensors);
        goto bad;
    }
    g->tensors = xcalloc(ntensors ? ntensors : 1, sizeof *g->tensors);
    for (uint64_t i = 0; i < ntensors; i++) {
        g->ntensors++;
        if (read_tensor_info(&c, g, &g->tensors[i], i)) goto bad;
    }
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct gguf_kv *al = gguf_find(g, "general.alignment");
    if (al) {
        if (al->v.type != GGUF_U32 || al->v.u == 0 || (al->v.u & (al->v.u - 1))) {
            fail("%s: metadata 'general.alignment': must be a uint32 power of two", name);
            goto bad;
        }
        g->alignment = al->v.u;
    }
    g->data_start = c.pos + (g->alignment - c.pos % g->alignment) % g->alignment;
    if (g->ntensors && g->data_start > size) {
        fail("%s: header: the data section would start at %llu, past the end of the file", name,
             (unsigned long long)g->data_start);
        goto bad;
    }
    if (place_tensors(g)) goto bad;
    return 0;
bad:
    gguf_close(g);
    return -1;
}

bool gguf_has_magic(const void *data, size_t size)
{
    return size >= 4 && !memcmp(data, GGUF_MAGIC, 4);
}

int gguf_open(struct gguf *g, const char *path)
{
    memset(g, 0, sizeof *g);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fail("%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode) || st.st_size == 0) {
        close(fd);
        return fail("%s: %s", path, S_ISREG(st.st_mode) ? "empty file" : "not a regular file");
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return fail("%s: cannot map: %s", path, strerror(errno));
    if (gguf_parse(g, map, (size_t)st.st_size, path) != 0) {
        munmap(map, (size_t)st.st_size);
        return -1;
    }
    g->mapped = true;
    return 0;
}

void gguf_close(struct gguf *g)
{
    for (size_t i = 0; i < g->nkv; i++) {
        free(g->kvs[i].key);
        free(g->kvs[i].v.strs);
    }
    free(g->kvs);
    for (size_t i = 0; i < g->ntensors; i++) free(g->tensors[i].name);
    free(g->tensors);
    if (g->mapped) munmap((void *)g->map, g->size);
    free(g->path);
    memset(g, 0, sizeof *g);
}

/* ---- lookups ---- */

const struct gguf_kv *gguf_find(const struct gguf *g, const char *key)
{
    for (size_t i = 0; i < g->nkv; i++)
        if (!strcmp(g->kvs[i].key, key)) return &g->kvs[i];
    return NULL;
}

const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name)
{
    for (size_t i = 0; i < g->ntensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

const unsigned char *gguf_tensor_bytes(const struct gguf *g, const struct gguf_tensor *t)
{
    return g->map + t->offset;
}

static bool is_uint_type(uint32_t t)
{
    return t == GGUF_U8 || t == GGUF_U16 || t == GGUF_U32 || t == GGUF_U64;
}

static bool is_int_type(uint32_t t)
{
    return t == GGUF_I8 || t == GGUF_I16 || t == GGUF_I32 || t == GGUF_I64;
}

int gguf_get_uint(const struct gguf *g, const char *key, uint64_t *out)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (is_uint_type(kv->v.type)) *out = kv->v.u;
    else if (is_int_type(kv->v.type) && kv->v.i >= 0) *out = (uint64_t)kv->v.i;
    else return fail("%s: metadata '%s': must be a non-negative integer (it is %s)", g->path, key, vtype_name(kv->v.type));
    return 1;
}

int gguf_get_float(const struct gguf *g, const char *key, double *out)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->v.type == GGUF_F32 || kv->v.type == GGUF_F64) *out = kv->v.f;
    else if (is_uint_type(kv->v.type)) *out = (double)kv->v.u;
    else if (is_int_type(kv->v.type)) *out = (double)kv->v.i;
    else return fail("%s: metadata '%s': must be a number (it is %s)", g->path, key, vtype_name(kv->v.type));
    return 1;
}

int gguf_get_bool(const struct gguf *g, const char *key, bool *out)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->v.type != GGUF_BOOL) return fail("%s: metadata '%s': must be a bool (it is %s)", g->path, key, vtype_name(kv->v.type));
    *out = kv->v.u != 0;
    return 1;
}

int gguf_get_string(const struct gguf *g, const char *key, char **out)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->v.type != GGUF_STRING) return fail("%s: metadata '%s': must be a string (it is %s)", g->path, key, vtype_name(kv->v.type));
    if (memchr(kv->v.str.s, 0, (size_t)kv->v.str.len)) return fail("%s: metadata '%s': the string holds a NUL byte", g->path, key);
    *out = str_dup(&kv->v.str);
    return 1;
}

int gguf_get_array(const struct gguf *g, const char *key, char kind, const struct gguf_value **out)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    uint32_t et = kv->v.elem_type;
    bool ok = kv->v.type == GGUF_ARRAY &&
              (kind == 's' ? et == GGUF_STRING
               : kind == 'i' ? is_uint_type(et) || is_int_type(et)
                             : et == GGUF_F32 || et == GGUF_F64 || is_uint_type(et) || is_int_type(et));
    if (!ok)
        return fail("%s: metadata '%s': must be an array of %s", g->path, key,
                    kind == 's' ? "strings" : kind == 'i' ? "integers" : "numbers");
    *out = &kv->v;
    return 1;
}

int64_t gguf_array_int(const struct gguf_value *v, uint64_t i)
{
    size_t n = scalar_size(v->elem_type);
    uint64_t raw = le(v->elems + i * n, n);
    switch (v->elem_type) {
    case GGUF_I8: return (int8_t)raw;
    case GGUF_I16: return (int16_t)raw;
    case GGUF_I32: return (int32_t)raw;
    case GGUF_F32: case GGUF_F64: return (int64_t)gguf_array_float(v, i);
    default: return (int64_t)raw;
    }
}

double gguf_array_float(const struct gguf_value *v, uint64_t i)
{
    size_t n = scalar_size(v->elem_type);
    uint64_t raw = le(v->elems + i * n, n);
    if (v->elem_type == GGUF_F32) {
        uint32_t u = (uint32_t)raw;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    if (v->elem_type == GGUF_F64) {
        double d;
        memcpy(&d, &raw, 8);
        return d;
    }
    return (double)gguf_array_int(v, i);
}
