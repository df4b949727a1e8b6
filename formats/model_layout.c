#include "formats/model_layout.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"

const char lfs_pointer_fix[] = "install git-lfs and run 'git lfs pull' in the repository";

const char *model_kind_name(enum model_kind k)
{
    return k == MODEL_MLC ? "mlc" : "hf";
}

int model_kind_from_name(const char *s, enum model_kind *out)
{
    if (!strcmp(s, "hf")) *out = MODEL_HF;
    else if (!strcmp(s, "mlc")) *out = MODEL_MLC;
    else return -1;
    return 0;
}

const char *weight_format_name(enum weight_format f)
{
    switch (f) {
    case WEIGHTS_PYTORCH: return "pytorch";
    case WEIGHTS_MLC: return "mlc";
    case WEIGHTS_GGUF: return "gguf";
    case WEIGHTS_SAFETENSORS: break;
    }
    return "safetensors";
}

int weight_format_from_name(const char *s, enum weight_format *out)
{
    if (!strcmp(s, "safetensors")) *out = WEIGHTS_SAFETENSORS;
    else if (!strcmp(s, "pytorch")) *out = WEIGHTS_PYTORCH;
    else if (!strcmp(s, "mlc")) *out = WEIGHTS_MLC;
    else if (!strcmp(s, "gguf")) *out = WEIGHTS_GGUF;
    else return -1;
    return 0;
}

static bool matches_any(const char *const *patterns, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (fnmatch(patterns[i], name, 0) == 0) return true;
    return false;
}

bool rules_excluded(const struct file_rules *r, const char *name)
{
    return r && matches_any(r->exclude, r->nexclude, name);
}

bool name_is_hidden(const char *name)
{
    for (const char *p = name;;) {
        if (*p == '.') return true;
        p = strchr(p, '/');
        if (!p) return false;
        p++;
    }
}

static bool rules_included(const struct file_rules *r, const char *name)
{
    return r && matches_any(r->include, r->ninclude, name);
}

/* Files the pipeline reads besides the weights: mlc-cfg copies the tokenizer
 * files MLC's gen_config copies, and reads the chat template files newer
 * repositories keep outside tokenizer_config.json. */
static const char *const tokenizer_files[] = {
    "tokenizer.json",   "tokenizer.model",    "tokenizer_config.json", "special_tokens_map.json",
    "added_tokens.json", "vocab.json",        "merges.txt",            "vocab.txt",
    "chat_template.json", "chat_template.jinja", NULL,
};

static bool is_tokenizer_file(const char *name)
{
    for (size_t i = 0; tokenizer_files[i]; i++)
        if (!strcmp(name, tokenizer_files[i])) return true;
    return !strchr(name, '/') && fnmatch("*.tiktoken", name, 0) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_name(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name)) return true;
    return false;
}

static void add_file(struct layout *l, size_t *cap, const char *name)
{
    l->files = xgrow(l->files, cap, l->nfiles + 1, sizeof *l->files);
    l->files[l->nfiles++] = xstrdup(name);
}

static void sort_unique(struct layout *l)
{
    if (!l->nfiles) return;
    qsort(l->files, l->nfiles, sizeof *l->files, cmp_str);
    size_t out = 1;
    for (size_t i = 1; i < l->nfiles; i++) {
        if (!strcmp(l->files[i], l->files[out - 1])) free(l->files[i]);
        else l->files[out++] = l->files[i];
    }
    l->nfiles = out;
}

static int need_file(const struct file_rules *rules, const char *name, const char *where)
{
    if (rules_excluded(rules, name))
        return fail("%s: --exclude removes %s, which the model needs", where, name);
    return 0;
}

static bool is_gguf_name(const char *name)
{
    size_t n = strlen(name);
    return n > 5 && !strcmp(name + n - 5, ".gguf") && !name_is_hidden(name);
}

/* A GGUF file holds the configuration and the tokenizer too, so it is the
 * whole model: the one .gguf the names hold, or the one that --include
 * picks among several (a repository of quantizations). */
static int plan_gguf(struct layout *l, const char *const *names, size_t n, const struct file_rules *rules,
                     const char *where)
{
    size_t found = 0, picked = 0;
    const char *first = NULL, *second = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!is_gguf_name(names[i])) continue;
        found++;
        if (rules && rules->ninclude && !rules_included(rules, names[i])) continue;
        if (rules_excluded(rules, names[i])) continue;
        if (!picked++) first = names[i];
        else if (!second) second = names[i];
    }
    if (!found) return 1;
    if (picked == 1) {
        l->kind = MODEL_HF;
        l->format = WEIGHTS_GGUF;
        l->gguf = xstrdup(first);
        size_t cap = 0;
        add_file(l, &cap, first);
        return 0;
    }
    if (!picked) return fail("%s: --include/--exclude leave none of its %zu .gguf files", where, found);
    return fail("%s: %zu .gguf files (%s, %s%s): choose one with --include (or name the file)", where, picked, first,
                second, picked > 2 ? ", ..." : "");
}

/* Which files hold the weights of a raw HuggingFace checkpoint, in the order
 * transformers looks for them, safetensors first. */
static int plan_hf_weights(struct layout *l, const char *const *names, size_t n, const char *where)
{
    static const struct {
        const char *name;
        enum weight_format format;
        bool is_index;
    } choices[] = {
        {"model.safetensors.index.json", WEIGHTS_SAFETENSORS, true},
        {"model.safetensors", WEIGHTS_SAFETENSORS, false},
        {"pytorch_model.bin.index.json", WEIGHTS_PYTORCH, true},
        {"pytorch_model.bin", WEIGHTS_PYTORCH, false},
    };
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
        if (!has_name(names, n, choices[i].name)) continue;
        l->format = choices[i].format;
        l->index = choices[i].is_index ? choices[i].name : NULL;
        return 0;
    }
    return fail("%s: no weights in HuggingFace layout (model.safetensors[.index.json] or "
                "pytorch_model.bin[.index.json]) and no .gguf file; other formats such as .onnx "
                "are not read",
                where);
}

int layout_plan(const char *const *names, size_t n, const struct file_rules *rules,
                const char *where, struct layout *out)
{
    memset(out, 0, sizeof *out);
    bool mlc_config = has_name(names, n, "mlc-chat-config.json");
    bool tensor_cache = has_name(names, n, "tensor-cache.json");
    bool ndarray_cache = has_name(names, n, "ndarray-cache.json");
    bool hf_config = has_name(names, n, "config.json");
    bool hf_weights = false;
    static const char *const weight_names[] = {"model.safetensors.index.json", "model.safetensors",
                                               "pytorch_model.bin.index.json", "pytorch_model.bin"};
    for (size_t i = 0; i < 4; i++) hf_weights = hf_weights || has_name(names, n, weight_names[i]);

    if (!mlc_config && !hf_weights) {
        int g = plan_gguf(out, names, n, rules, where);
        if (g <= 0) {
            if (g < 0) layout_free(out);
            return g;
        }
    }
    if (mlc_config && (tensor_cache || ndarray_cache || !hf_config)) {
        out->kind = MODEL_MLC;
        out->format = WEIGHTS_MLC;
        out->config = "mlc-chat-config.json";
        /* The file was renamed from ndarray-cache.json in late 2025; older
         * repositories only have the old name. */
        out->index = tensor_cache ? "tensor-cache.json" : ndarray_cache ? "ndarray-cache.json" : NULL;
        if (!out->index)
            return fail("%s: mlc-chat-config.json but no tensor-cache.json (or ndarray-cache.json)",
                        where);
    } else if (hf_config) {
        out->kind = MODEL_HF;
        out->config = "config.json";
        if (plan_hf_weights(out, names, n, where) != 0) return -1;
    } else {
        return fail("%s: neither config.json nor mlc-chat-config.json: not a model repository",
                    where);
    }

    size_t cap = 0;
    if (need_file(rules, out->config, where) != 0) goto fail;
    add_file(out, &cap, out->config);
    if (out->index) {
        if (need_file(rules, out->index, where) != 0) goto fail;
        add_file(out, &cap, out->index);
    } else {
        const char *single = out->format == WEIGHTS_PYTORCH ? "pytorch_model.bin" : "model.safetensors";
        if (need_file(rules, single, where) != 0) goto fail;
        add_file(out, &cap, single);
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        if (name_is_hidden(name)) continue;
        bool wanted = rules_included(rules, name);
        if (!wanted && is_tokenizer_file(name)) wanted = true;
        if (!wanted && out->kind == MODEL_HF && !strcmp(name, "generation_config.json")) wanted = true;
        if (wanted && !rules_excluded(rules, name)) add_file(out, &cap, name);
    }
    sort_unique(out);
    return 0;
fail:
    layout_free(out);
    return -1;
}

bool layout_has(const struct layout *l, const char *name)
{
    return bsearch(&name, l->files, l->nfiles, sizeof *l->files, cmp_str) != NULL;
}

void layout_free(struct layout *l)
{
    free(l->gguf);
    l->gguf = NULL;
    for (size_t i = 0; i < l->nfiles; i++) free(l->files[i]);
    free(l->files);
    l->files = NULL;
    l->nfiles = 0;
}

/* ---- indexes ---- */

static int cmp_indexed(const void *a, const void *b)
{
    return strcmp(((const struct indexed_file *)a)->name, ((const struct indexed_file *)b)->name);
}

void indexed_files_free(struct indexed_file *f, size_t n)
{
    for (size_t i = 0; i < n; i++) free(f[i].name);
    free(f);
}

static const char *safe_name(const json_t *v)
{
    if (!json_is_string(v)) return NULL;
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || !path_is_safe_relative(s)) return NULL;
    return s;
}

static int weight_map_files(const json_t *index, const char *file, struct indexed_file **out,
                            size_t *n)
{
    const json_t *map = json_object_get(index, "weight_map");
    if (!json_is_object(map)) return fail("%s: field 'weight_map' must be an object", file);
    if (json_object_size(map) == 0) return fail("%s: weight_map is empty", file);
    size_t cap = 0;
    const char *tensor;
    const json_t *value;
    json_object_foreach((json_t *)map, tensor, value) {
        const char *name = safe_name(value);
        if (!name)
            return fail("%s: weight_map: '%s': the file name must be a relative path inside the "
                        "model directory",
                        file, tensor);
        bool seen = false;
        for (size_t i = 0; i < *n && !seen; i++) seen = !strcmp((*out)[i].name, name);
        if (seen) continue;
        *out = xgrow(*out, &cap, *n + 1, sizeof **out);
        (*out)[*n] = (struct indexed_file){.name = xstrdup(name), .nbytes = -1};
        ++*n;
    }
    return 0;
}

static bool is_md5_hex(const char *s)
{
    if (strlen(s) != 32) return false;
    for (size_t i = 0; i < 32; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i])) return false;
    return true;
}

static int get_count(const json_t *obj, const char *key, uint64_t *out, const char *file,
                     const char *where)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail("%s: %s: field '%s' must be a non-negative integer", file, where, key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* One shard of an MLC tensor cache: every tensor record must lie inside it. */
static int check_shard(const json_t *shard, size_t idx, const char *file, struct indexed_file *f)
{
    char where[48];
    snprintf(where, sizeof where, "records[%zu]", idx);
    if (!json_is_object(shard)) return fail("%s: %s must be an object", file, where);
    const char *name = safe_name(json_object_get(shard, "dataPath"));
    if (!name)
        return fail("%s: %s: field 'dataPath' must be a relative path inside the model directory",
                    file, where);
    const json_t *format = json_object_get(shard, "format");
    if (!json_is_string(format) || strcmp(json_string_value(format), "raw-shard"))
        return fail("%s: %s: field 'format' must be \"raw-shard\"", file, where);
    uint64_t nbytes;
    if (get_count(shard, "nbytes", &nbytes, file, where) != 0) return -1;
    if (nbytes > INT64_MAX) return fail("%s: %s: nbytes too large", file, where);
    const json_t *md5 = json_object_get(shard, "md5sum");
    f->md5[0] = 0;
    if (md5 && !json_is_null(md5)) {
        if (!json_is_string(md5) || !is_md5_hex(json_string_value(md5)))
            return fail("%s: %s: field 'md5sum' must be 32 hexadecimal digits", file, where);
        for (size_t i = 0; i < 32; i++) {
            char c = json_string_value(md5)[i];
            f->md5[i] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
        }
        f->md5[32] = 0;
    }
    const json_t *tensors = json_object_get(shard, "records");
    if (!json_is_array(tensors)) return fail("%s: %s: field 'records' must be an array", file, where);
    for (size_t t = 0; t < json_array_size(tensors); t++) {
        const json_t *rec = json_array_get(tensors, t);
        char twhere[96];
        snprintf(twhere, sizeof twhere, "%s.records[%zu]", where, t);
        if (!json_is_object(rec)) return fail("%s: %s must be an object", file, twhere);
        if (!json_is_string(json_object_get(rec, "name")))
            return fail("%s: %s: field 'name' must be a string", file, twhere);
        uint64_t off, len, end;
        if (get_count(rec, "byteOffset", &off, file, twhere) != 0 ||
            get_count(rec, "nbytes", &len, file, twhere) != 0)
            return -1;
        if (!u64_add(off, len, &end) || end > nbytes)
            return fail("%s: %s: tensor '%s' (byteOffset %llu, nbytes %llu) ends past the end of "
                        "its %llu-byte shard %s",
                        file, twhere, json_string_value(json_object_get(rec, "name")),
                        (unsigned long long)off, (unsigned long long)len,
                        (unsigned long long)nbytes, name);
    }
    f->name = xstrdup(name);
    f->nbytes = (int64_t)nbytes;
    return 0;
}

static int tensor_cache_files(const json_t *index, const char *file, struct indexed_file **out,
                              size_t *n)
{
    const json_t *records = json_object_get(index, "records");
    if (!json_is_array(records)) return fail("%s: field 'records' must be an array", file);
    size_t cap = 0;
    for (size_t i = 0; i < json_array_size(records); i++) {
        *out = xgrow(*out, &cap, *n + 1, sizeof **out);
        struct indexed_file *f = &(*out)[*n];
        memset(f, 0, sizeof *f);
        if (check_shard(json_array_get(records, i), i, file, f) != 0) return -1;
        for (size_t j = 0; j < *n; j++)
            if (!strcmp((*out)[j].name, f->name)) {
                int rc = fail("%s: records[%zu]: shard %s is listed twice", file, i, f->name);
                free(f->name);
                return rc;
            }
        ++*n;
    }
    return 0;
}

int index_weight_files(const json_t *index, enum weight_format format, const char *file,
                       struct indexed_file **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!json_is_object(index)) return fail("%s: not a JSON object", file);
    int rc = format == WEIGHTS_MLC ? tensor_cache_files(index, file, out, n)
                                   : weight_map_files(index, file, out, n);
    if (rc != 0) {
        indexed_files_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    qsort(*out, *n, sizeof **out, cmp_indexed);
    return 0;
}

int layout_add_indexed(struct layout *l, const struct indexed_file *w, size_t nw,
                       const char *const *names, size_t n, const struct file_rules *rules,
                       const char *where)
{
    size_t cap = l->nfiles;
    for (size_t i = 0; i < nw; i++) {
        if (!has_name(names, n, w[i].name))
            return fail("%s: %s names %s, which is not in the repository", where,
                        l->index ? l->index : "the index", w[i].name);
        if (rules_excluded(rules, w[i].name))
            return fail("%s: --exclude removes %s, which %s names", where, w[i].name, l->index);
        add_file(l, &cap, w[i].name);
    }
    sort_unique(l);
    return 0;
}

/* ---- LFS pointers ---- */

bool is_lfs_pointer(const void *head, size_t len)
{
    static const char magic[] = "version https://git-lfs";
    return len <= LFS_POINTER_MAX && len >= sizeof magic - 1 && !memcmp(head, magic, sizeof magic - 1);
}

int file_is_lfs_pointer(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("%s: %s", path, strerror(errno));
    char head[LFS_POINTER_MAX + 1];
    long long got = read_full(fd, head, sizeof head);
    int e = errno;
    close(fd);
    if (got < 0) return fail("%s: read error: %s", path, strerror(e));
    return is_lfs_pointer(head, (size_t)got);
}
