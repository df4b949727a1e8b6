#include "formats/weight_check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"

/* The safetensors library refuses headers above 100 MB; so do we, before
 * allocating anything a hostile length asks for. */
#define ST_HEADER_MAX (100u * 1000 * 1000)

unsigned safetensors_dtype_size(const char *dtype)
{
    static const struct {
        const char *name;
        unsigned size;
    } table[] = {
        {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1},
        {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
        {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(dtype, table[i].name)) return table[i].size;
    return 0;
}

struct span {
    uint64_t begin, end;
    const char *name;
};

static int cmp_span(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int get_u64(const json_t *v, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* One tensor entry: its span, checked against its dtype and shape. */
static int check_tensor(const char *display, const char *name, const json_t *t, uint64_t data_size,
                        struct span *s)
{
    if (!json_is_object(t)) return fail("%s: tensor '%s': not a JSON object", display, name);
    const json_t *dtype = json_object_get(t, "dtype");
    const json_t *shape = json_object_get(t, "shape");
    const json_t *offs = json_object_get(t, "data_offsets");
    if (!json_is_string(dtype)) return fail("%s: tensor '%s': field 'dtype' must be a string", display, name);
    if (!json_is_array(shape)) return fail("%s: tensor '%s': field 'shape' must be an array", display, name);
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        get_u64(json_array_get(offs, 0), &s->begin) != 0 ||
        get_u64(json_array_get(offs, 1), &s->end) != 0 || s->begin > s->end)
        return fail("%s: tensor '%s': field 'data_offsets' must be [begin, end] with begin <= end",
                    display, name);
    if (s->end > data_size)
        return fail("%s: tensor '%s': data_offsets [%llu, %llu] end past the %llu-byte data "
                    "section (truncated file?)",
                    display, name, (unsigned long long)s->begin, (unsigned long long)s->end,
                    (unsigned long long)data_size);
    uint64_t numel = 1;
    for (size_t i = 0; i < json_array_size(shape); i++) {
        uint64_t d;
        if (get_u64(json_array_get(shape, i), &d) != 0 || !u64_mul(numel, d, &numel))
            return fail("%s: tensor '%s': field 'shape' must hold non-negative integers", display,
                        name);
    }
    unsigned item = safetensors_dtype_size(json_string_value(dtype));
    uint64_t bytes;
    /* Newer sub-byte dtypes are not sized here; their spans are still checked. */
    if (item && (!u64_mul(numel, item, &bytes) || bytes != s->end - s->begin))
        return fail("%s: tensor '%s': %s shape needs %llu bytes but data_offsets span %llu",
                    display, name, json_string_value(dtype),
                    (unsigned long long)(u64_mul(numel, item, &bytes) ? bytes : 0),
                    (unsigned long long)(s->end - s->begin));
    s->name = name;
    return 0;
}

static int read_header(int fd, const char *display, uint64_t file_size, struct buf *text)
{
    unsigned char len8[8];
    if (file_size < 8 || read_full(fd, len8, 8) != 8)
        return fail("%s: too short for a safetensors file (%llu bytes)", display,
                    (unsigned long long)file_size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
    if (n > ST_HEADER_MAX || n > file_size - 8)
        return fail("%s: header length %llu does not fit the %llu-byte file (not safetensors, or "
                    "truncated)",
                    display, (unsigned long long)n, (unsigned long long)file_size);
    buf_grow(text, (size_t)n);
    long long got = read_full(fd, text->data, (size_t)n);
    if (got != (long long)n) return fail("%s: read error: %s", display, strerror(errno));
    text->len = (size_t)n;
    text->data[n] = 0;
    return 0;
}

int safetensors_check(const char *path, const char *display, struct st_header *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("%s: %s", display, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return fail("%s: %s", display, strerror(errno));
    }
    uint64_t file_size = (uint64_t)st.st_size;
    struct buf text = BUF_INIT;
    buf_init(&text);
    int rc = read_header(fd, display, file_size, &text);
    close(fd);
    if (rc != 0) {
        buf_free(&text);
        return -1;
    }
    uint64_t data_size = file_size - 8 - text.len;
    char what[512];
    snprintf(what, sizeof what, "%s: header", display);
    json_t *header = json_load_text(text.data, text.len, what);
    buf_free(&text);
    if (!header) return -1;
    if (!json_is_object(header)) {
        json_decref(header);
        return fail("%s: header is not a JSON object", display);
    }

    size_t n = json_object_size(header);
    struct span *spans = xcalloc(n ? n : 1, sizeof *spans);
    size_t ns = 0;
    const char *key;
    json_t *value;
    rc = 0;
    json_object_foreach(header, key, value) {
        if (!strcmp(key, "__metadata__")) continue;
        if (check_tensor(display, key, value, data_size, &spans[ns]) != 0) {
            rc = -1;
            break;
        }
        ns++;
    }
    /* Spans must tile [0, data_size): no gap, no overlap, nothing after. */
    if (rc == 0) {
        qsort(spans, ns, sizeof *spans, cmp_span);
        uint64_t at = 0;
        for (size_t i = 0; i < ns && rc == 0; i++) {
            if (spans[i].begin != at)
                rc = fail("%s: tensor '%s' starts at byte %llu of the data section, expected %llu "
                          "(overlapping or missing data)",
                          display, spans[i].name, (unsigned long long)spans[i].begin,
                          (unsigned long long)at);
            at = spans[i].end;
        }
        if (rc == 0 && at != data_size)
            rc = fail("%s: the tensors cover %llu bytes but the data section holds %llu", display,
                      (unsigned long long)at, (unsigned long long)data_size);
    }
    if (rc == 0) {
        out->names = xcalloc(ns ? ns : 1, sizeof *out->names);
        for (size_t i = 0; i < ns; i++) out->names[i] = xstrdup(spans[i].name);
        out->ntensors = ns;
        qsort(out->names, ns, sizeof *out->names, cmp_str);
        out->data_bytes = data_size;
    }
    free(spans);
    json_decref(header);
    return rc;
}

void st_header_free(struct st_header *h)
{
    for (size_t i = 0; i < h->ntensors; i++) free(h->names[i]);
    free(h->names);
    memset(h, 0, sizeof *h);
}

int torch_check_magic(const char *path, const char *display)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("%s: %s", display, strerror(errno));
    unsigned char head[4] = {0};
    long long got = read_full(fd, head, sizeof head);
    close(fd);
    if (got == 4 && !memcmp(head, "PK\3\4", 4)) return 0;
    if (got >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5) return 0;
    return fail("%s: not a PyTorch checkpoint (neither a zip archive nor a pickle)", display);
}
