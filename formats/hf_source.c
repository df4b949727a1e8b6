#include "formats/hf_source.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "formats/gguf_hf.h"
#include "formats/safetensors.h"
#include "formats/torch_bin.h"

const char *hf_format_name(enum hf_format f)
{
    return f == HF_SAFETENSORS ? "safetensors" : f == HF_TORCH ? "torch" : f == HF_GGUF ? "gguf" : "auto";
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

void hf_source_close(struct hf_source *s)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        struct hf_file *f = &s->files[i];
        if (f->handle) {
            if (s->format == HF_SAFETENSORS) st_close(f->handle);
            else if (s->format == HF_GGUF) gguf_model_close(f->handle);
            else tb_close(f->handle);
            free(f->handle);
        }
        free(f->path);
        free(f->names);
        free(f->numels);
    }
    for (size_t i = 0; i < s->ntensors; i++) free(s->tensors[i].name);
    free(s->files);
    free(s->tensors);
    free(s->by_name);
    free(s->dir);
    free(s->index_path);
    memset(s, 0, sizeof *s);
}

static size_t add_file(struct hf_source *s, const char *path, size_t *cap)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (!strcmp(s->files[i].path, path)) return i;
    s->files = xgrow(s->files, cap, s->nfiles + 1, sizeof *s->files);
    memset(&s->files[s->nfiles], 0, sizeof s->files[s->nfiles]);
    s->files[s->nfiles].path = xstrdup(path);
    return s->nfiles++;
}

/* Open one weight file and list what it holds. */
static int open_file(struct hf_source *s, struct hf_file *f)
{
    if (s->format == HF_GGUF) {
        struct gguf_model *m = xcalloc(1, sizeof *m);
        if (gguf_model_open(m, f->path) != 0) {
            free(m);
            return -1;
        }
        f->handle = m;
        f->nnames = m->ntensors;
        f->names = xcalloc(f->nnames + 1, sizeof *f->names);
        f->numels = xcalloc(f->nnames + 1, sizeof *f->numels);
        for (size_t i = 0; i < m->ntensors; i++) {
            f->names[i] = m->tensors[i].name;
            f->numels[i] = m->tensors[i].numel;
            f->numel_all += m->tensors[i].numel;
        }
        s->nquantized = m->nquantized;
        s->quantized_type = m->nquantized ? ggml_type_name(m->quantized_type) : NULL;
    } else if (s->format == HF_SAFETENSORS) {
        struct st_file *st = xcalloc(1, sizeof *st);
        if (st_open(st, f->path) != 0) {
            free(st);
            return -1;
        }
        f->handle = st;
        f->nnames = st->ntensors;
        f->names = xcalloc(f->nnames + 1, sizeof *f->names);
        f->numels = xcalloc(f->nnames + 1, sizeof *f->numels);
        for (size_t i = 0; i < st->ntensors; i++) {
            f->names[i] = st->tensors[i].name;
            f->numels[i] = st->tensors[i].numel;
            f->numel_all += st->tensors[i].numel;
        }
    } else {
        struct tb_file *tb = xcalloc(1, sizeof *tb);
        if (tb_open(tb, f->path) != 0) {
            free(tb);
            return -1;
        }
        f->handle = tb;
        f->nnames = tb->sd.ntensors;
        f->names = xcalloc(f->nnames + 1, sizeof *f->names);
        f->numels = xcalloc(f->nnames + 1, sizeof *f->numels);
        for (size_t i = 0; i < tb->sd.ntensors; i++) {
            f->names[i] = tb->sd.tensors[i].name;
            f->numels[i] = tb->sd.tensors[i].numel;
            f->numel_all += tb->sd.tensors[i].numel;
        }
    }
    return 0;
}

/* Describe entry i of a file as an hf_tensor. */
static void describe(struct hf_source *s, size_t file, size_t i, struct hf_tensor *t)
{
    memset(t, 0, sizeof *t);
    t->file = file;
    t->index = i;
    if (s->format == HF_GGUF) {
        const struct gguf_model *m = s->files[file].handle;
        const struct gguf_hf_tensor *x = &m->tensors[i];
        t->name = xstrdup(x->name);
        t->dtype = x->dtype;
        t->dtype_label = ggml_type_name(m->g.tensors[x->index].type);
        t->ndim = x->ndim;
        t->shape[0] = x->shape[0];
        t->shape[1] = x->shape[1];
        t->numel = x->numel;
    } else if (s->format == HF_SAFETENSORS) {
        const struct st_tensor *x = &((struct st_file *)s->files[file].handle)->tensors[i];
        t->name = xstrdup(x->name);
        t->dtype = x->dtype;
        t->dtype_label = x->st_dtype;
        t->ndim = x->ndim;
        memcpy(t->shape, x->shape, sizeof t->shape);
        t->numel = x->numel;
    } else {
        const struct tp_tensor *x = &((struct tb_file *)s->files[file].handle)->sd.tensors[i];
        t->name = xstrdup(x->name);
        t->dtype = x->dtype == DT_F32 || x->dtype == DT_F16 || x->dtype == DT_BF16 ? x->dtype : DT_INVALID;
        t->dtype_label = x->storage_type;
        t->ndim = x->ndim;
        memcpy(t->shape, x->shape, sizeof t->shape);
        t->numel = x->numel;
    }
}

static int cmp_st_names(const void *a, const void *b)
{
    const struct hf_tensor *x = a, *y = b;
    return strcmp(x->name, y->name);
}

static int cmp_by_name(const void *a, const void *b, void *ctx)
{
    const struct hf_source *s = ctx;
    return strcmp(s->tensors[*(const size_t *)a].name, s->tensors[*(const size_t *)b].name);
}

static int load_index(struct hf_source *s, size_t *files_cap)
{
    json_t *idx = json_load_path(s->index_path);
    if (!idx) return -1;
    json_t *map = json_object_get(idx, "weight_map");
    if (!json_is_object(map)) {
        json_decref(idx);
        return fail("%s: field 'weight_map' missing or not an object", s->index_path);
    }
    size_t n = json_object_size(map), k = 0;
    char **names = xcalloc(n + 1, sizeof *names);
    size_t *file_of = xcalloc(n + 1, sizeof *file_of);
    const char *key;
    json_t *val;
    int rc = 0;
    json_object_foreach(map, key, val) {
        const char *fn = json_string_value(val);
        if (!fn) {
            rc = fail("%s: weight_map: '%s': value must be a file name", s->index_path, key);
            break;
        }
        if (!path_is_safe_relative(fn)) {
            rc = fail("%s: weight_map: '%s': '%s' is not a plain relative path", s->index_path, key, fn);
            break;
        }
        char *p = path_join(s->dir, fn);
        file_of[k] = add_file(s, p, files_cap);
        free(p);
        names[k++] = xstrdup(key);
    }
    json_decref(idx);
    for (size_t i = 0; rc == 0 && i < s->nfiles; i++)
        if (open_file(s, &s->files[i]) != 0) rc = -1;
    if (rc == 0) {
        s->tensors = xcalloc(k + 1, sizeof *s->tensors);
        for (size_t i = 0; i < k && rc == 0; i++) {
            struct hf_file *f = &s->files[file_of[i]];
            size_t at = f->nnames;
            for (size_t j = 0; j < f->nnames; j++)
                if (!strcmp(f->names[j], names[i])) at = j;
            if (at == f->nnames) {
                rc = fail("%s: weight_map puts '%s' in %s, which does not hold it", s->index_path, names[i],
                          path_basename(f->path));
                break;
            }
            describe(s, file_of[i], at, &s->tensors[s->ntensors++]);
        }
    }
    for (size_t i = 0; i < k; i++) free(names[i]);
    free(names);
    free(file_of);
    return rc;
}

int hf_source_open(struct hf_source *s, const char *path, enum hf_format format)
{
    memset(s, 0, sizeof *s);
    size_t files_cap = 0;
    char *single = NULL;
    if (is_dir(path)) {
        s->dir = xstrdup(path);
        static const struct {
            enum hf_format f;
            const char *index, *file;
        } layouts[] = {
            {HF_SAFETENSORS, "model.safetensors.index.json", "model.safetensors"},
            {HF_TORCH, "pytorch_model.bin.index.json", "pytorch_model.bin"},
        };
        for (size_t i = 0; i < 2 && !s->index_path && !single; i++) {
            if (format != HF_AUTO && format != layouts[i].f) continue;
            char *ip = path_join(path, layouts[i].index), *fp = path_join(path, layouts[i].file);
            if (path_exists(ip)) s->index_path = ip, ip = NULL, s->format = layouts[i].f;
            else if (path_exists(fp)) single = fp, fp = NULL, s->format = layouts[i].f;
            free(ip);
            free(fp);
        }
        if (!s->index_path && !single && (format == HF_AUTO || format == HF_GGUF)) {
            single = gguf_in_dir(path);
            if (single) s->format = HF_GGUF;
            else if (format == HF_GGUF) goto bad;
        }
        if (!s->index_path && !single) {
            fail("%s: no weights found (%s)", path,
                 format == HF_TORCH ? "pytorch_model.bin[.index.json]"
                 : format == HF_SAFETENSORS ? "model.safetensors[.index.json]"
                                            : "model.safetensors[.index.json], pytorch_model.bin[.index.json] or one .gguf file");
            goto bad;
        }
    } else if (path_exists(path)) {
        s->dir = path_dirname(path);
        if (ends_with(path, ".json")) {
            s->index_path = xstrdup(path);
            s->format = ends_with(path, ".bin.index.json") ? HF_TORCH : HF_SAFETENSORS;
        } else {
            single = xstrdup(path);
            s->format = ends_with(path, ".safetensors") ? HF_SAFETENSORS
                        : ends_with(path, ".gguf")      ? HF_GGUF
                                                        : HF_TORCH;
        }
        if (format != HF_AUTO && format != s->format) {
            fail("%s: not a %s file", path, hf_format_name(format));
            goto bad;
        }
    } else {
        fail("%s: no such file or directory", path);
        goto bad;
    }
    if (s->index_path) {
        if (load_index(s, &files_cap) != 0) goto bad;
    } else {
        add_file(s, single, &files_cap);
        if (open_file(s, &s->files[0]) != 0) goto bad;
        struct hf_file *f = &s->files[0];
        s->tensors = xcalloc(f->nnames + 1, sizeof *s->tensors);
        for (size_t i = 0; i < f->nnames; i++) describe(s, 0, i, &s->tensors[s->ntensors++]);
        /* safetensors' safe_open().keys() is sorted; a state_dict keeps its order;
         * a GGUF's tensors are listed under HuggingFace's names, sorted */
        if (s->format == HF_SAFETENSORS) qsort(s->tensors, s->ntensors, sizeof *s->tensors, cmp_st_names);
    }
    free(single);
    s->by_name = xcalloc(s->ntensors + 1, sizeof *s->by_name);
    for (size_t i = 0; i < s->ntensors; i++) s->by_name[i] = i;
    qsort_r(s->by_name, s->ntensors, sizeof *s->by_name, cmp_by_name, s);
    for (size_t i = 1; i < s->ntensors; i++)
        if (!strcmp(s->tensors[s->by_name[i]].name, s->tensors[s->by_name[i - 1]].name)) {
            fail("%s: tensor '%s' is listed twice", s->index_path ? s->index_path : s->files[0].path,
                 s->tensors[s->by_name[i]].name);
            hf_source_close(s);
            return -1;
        }
    return 0;
bad:
    free(single);
    hf_source_close(s);
    return -1;
}

const struct hf_tensor *hf_source_find(const struct hf_source *s, const char *name)
{
    size_t lo = 0, hi = s->ntensors;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->tensors[s->by_name[mid]].name, name);
        if (!c) return &s->tensors[s->by_name[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int hf_tensor_data(struct hf_source *s, const struct hf_tensor *t, struct hf_data *out)
{
    memset(out, 0, sizeof *out);
    if (t->dtype == DT_INVALID)
        return fail("%s: tensor '%s': dtype %s is not supported (float32, float16 and bfloat16 are)",
                    s->files[t->file].path, t->name, t->dtype_label);
    if (s->format == HF_SAFETENSORS) {
        const struct st_file *f = s->files[t->file].handle;
        out->data = f->data + f->tensors[t->index].begin;
        return 0;
    }
    if (s->format == HF_GGUF) {
        const struct gguf_model *m = s->files[t->file].handle;
        return gguf_model_tensor_data(m, &m->tensors[t->index], &out->data, &out->owned);
    }
    size_t len;
    if (tb_read_tensor(s->files[t->file].handle, t->index, &out->owned, &len) != 0) return -1;
    out->data = out->owned;
    return 0;
}

void hf_tensor_release(struct hf_source *s, const struct hf_tensor *t, struct hf_data *d)
{
    if (d->owned) free(d->owned);
    else if (d->data && s->format == HF_SAFETENSORS) {
        const struct st_file *f = s->files[t->file].handle;
        st_release(f, &f->tensors[t->index]);
    }
    memset(d, 0, sizeof *d);
}
