#include "formats/model_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/pool.h"
#include "common/progress.h"
#include "formats/gguf.h"
#include "formats/weight_check.h"

/* A model directory has tens of files; a walk that finds more than this is
 * pointed at the wrong place (a home directory), and stops. */
#define WALK_MAX_FILES 100000
#define WALK_MAX_DEPTH 16

struct listing {
    char **names;
    uint64_t *sizes;
    size_t n, cap, cap_sizes;
};

static void listing_add(struct listing *l, char *name, uint64_t size)
{
    l->names = xgrow(l->names, &l->cap, l->n + 1, sizeof *l->names);
    l->sizes = xgrow(l->sizes, &l->cap_sizes, l->n + 1, sizeof *l->sizes);
    l->names[l->n] = name;
    l->sizes[l->n++] = size;
}

static int walk(int dirfd, const char *prefix, int depth, const char *display, struct listing *l)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return fail("%s/%s: cannot read directory: %s", display, prefix, strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .., .git, .gitattributes, our temporaries */
        char *rel = prefix[0] ? xasprintf("%s/%s", prefix, e->d_name) : xstrdup(e->d_name);
        struct stat st;
        bool link = fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
        if (fstatat(dirfd, e->d_name, &st, 0) != 0) {
            if (link) listing_add(l, rel, UINT64_MAX); /* broken link: reported if needed */
            else free(rel);
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            if (l->n >= WALK_MAX_FILES) {
                free(rel);
                rc = fail("%s: more than %d files: not a model directory", display, WALK_MAX_FILES);
                break;
            }
            listing_add(l, rel, (uint64_t)st.st_size);
        } else if (S_ISDIR(st.st_mode) && !link && depth < WALK_MAX_DEPTH) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                rc = walk(sub, rel, depth + 1, display, l);
                close(sub);
            }
            free(rel);
        } else {
            free(rel);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_entry_names(const void *a, const void *b, void *ctx)
{
    const struct listing *l = ctx;
    return strcmp(l->names[*(const size_t *)a], l->names[*(const size_t *)b]);
}

int dir_list_files(const char *dir, const char *display, char ***names, uint64_t **sizes, size_t *n)
{
    struct listing l = {0};
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail("%s: %s", display, errno == ENOTDIR ? "not a directory" : strerror(errno));
    int rc = walk(fd, "", 0, display, &l);
    close(fd);
    if (rc != 0) {
        dir_list_free(l.names, l.sizes, l.n);
        return -1;
    }
    /* sort names and sizes together */
    size_t *order = xcalloc(l.n ? l.n : 1, sizeof *order);
    for (size_t i = 0; i < l.n; i++) order[i] = i;
    qsort_r(order, l.n, sizeof *order, cmp_entry_names, &l);
    *names = xcalloc(l.n ? l.n : 1, sizeof **names);
    *sizes = xcalloc(l.n ? l.n : 1, sizeof **sizes);
    for (size_t i = 0; i < l.n; i++) {
        (*names)[i] = l.names[order[i]];
        (*sizes)[i] = l.sizes[order[i]];
    }
    *n = l.n;
    free(order);
    free(l.names);
    free(l.sizes);
    return 0;
}

void dir_list_free(char **names, uint64_t *sizes, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(sizes);
}

/* ---- checks ---- */

struct opener {
    const char *path;      /* the directory */
    const char *display;
    char **names;
    uint64_t *sizes;
    size_t n;
};

static char *full(const struct opener *o, const char *name)
{
    return path_join(o->path, name);
}

static char *shown(const struct opener *o, const char *name)
{
    return xasprintf("%s/%s", o->display, name);
}

static long find_name(const struct opener *o, const char *name)
{
    size_t lo = 0, hi = o->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(o->names[mid], name);
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* Present, a real file (not a broken link, not an LFS pointer). */
static int check_present(const struct opener *o, const char *name, uint64_t *size)
{
    long i = find_name(o, name);
    char *s = shown(o, name);
    int rc = 0;
    if (i < 0) rc = fail("%s: missing", s);
    else if (o->sizes[i] == UINT64_MAX) rc = fail("%s: broken symbolic link", s);
    if (rc == 0 && o->sizes[i] <= LFS_POINTER_MAX) {
        char *p = full(o, name);
        int ptr = file_is_lfs_pointer(p);
        free(p);
        if (ptr < 0) rc = fail_prefix("%s", o->display);
        else if (ptr) rc = fail("%s: a Git LFS pointer, not the real file: %s", s, lfs_pointer_fix);
    }
    if (rc == 0) *size = o->sizes[i];
    free(s);
    return rc;
}

static json_t *load_json(const struct opener *o, const char *name)
{
    char *p = full(o, name), *s = shown(o, name);
    struct buf text = BUF_INIT;
    buf_init(&text);
    json_t *v = NULL;
    if (read_file(p, &text, 256u << 20) != 0) fail("%s: cannot read: %s", s, strerror(errno));
    else v = json_load_text(text.data, text.len, s);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
        fail("%s: not a JSON object", s);
    }
    buf_free(&text);
    free(p);
    free(s);
    return v;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every safetensors file parses and fills its size exactly; with an index,
 * every tensor the index places in a file is in that file's header, and
 * total_size is the sum of the data sections. */
static int check_safetensors(const struct opener *o, const struct model_dir *d, const json_t *index)
{
    struct st_header *h = xcalloc(d->nweights ? d->nweights : 1, sizeof *h);
    int rc = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < d->nweights && rc == 0; i++) {
        char *p = full(o, d->weights[i].name), *s = shown(o, d->weights[i].name);
        rc = safetensors_check(p, s, &h[i]);
        if (rc == 0 && !u64_add(total, h[i].data_bytes, &total)) rc = fail("%s: size overflow", s);
        free(p);
        free(s);
    }
    if (rc == 0 && index) {
        char *s = shown(o, d->index);
        const char *tensor;
        json_t *file;
        json_object_foreach(json_object_get(index, "weight_map"), tensor, file) {
            const char *name = json_string_value(file);
            const struct st_header *hh = NULL;
            for (size_t i = 0; i < d->nweights && !hh; i++)
                if (!strcmp(d->weights[i].name, name)) hh = &h[i];
            if (hh && !bsearch(&tensor, hh->names, hh->ntensors, sizeof *hh->names, cmp_str)) {
                rc = fail("%s: weight_map puts tensor '%s' in %s, whose header does not have it", s,
                          tensor, name);
                break;
            }
        }
        long long declared;
        const json_t *meta = json_object_get(index, "metadata");
        int got = rc == 0 && json_is_object(meta)
                      ? json_opt_int(meta, "total_size", &declared, s)
                      : 0;
        if (got < 0) rc = -1;
        else if (got > 0 && (declared < 0 || (uint64_t)declared != total))
            rc = fail("%s: metadata.total_size is %lld but the weight files hold %llu bytes of "
                      "tensors",
                      s, declared, (unsigned long long)total);
        free(s);
    }
    for (size_t i = 0; i < d->nweights; i++) st_header_free(&h[i]);
    free(h);
    return rc;
}

static int check_weights(const struct opener *o, struct model_dir *d, const json_t *index)
{
    for (size_t i = 0; i < d->nweights; i++) {
        const struct model_file *f = model_dir_find(d, d->weights[i].name);
        if (!f) return fail("%s: %s: not selected", o->display, d->weights[i].name);
        char *s = shown(o, f->name);
        int rc = 0;
        if (f->size == 0) rc = fail("%s: empty weight file", s);
        else if (d->weights[i].nbytes >= 0 && (uint64_t)d->weights[i].nbytes != f->size)
            rc = fail("%s: %llu bytes, but %s says %lld", s, (unsigned long long)f->size, d->index,
                      (long long)d->weights[i].nbytes);
        else if (d->format == WEIGHTS_PYTORCH) {
            char *p = full(o, f->name);
            rc = torch_check_magic(p, s);
            free(p);
        }
        free(s);
        if (rc != 0) return -1;
    }
    return d->format == WEIGHTS_SAFETENSORS ? check_safetensors(o, d, index) : 0;
}

/* A GGUF model is its one file: present, not an LFS pointer, and its
 * header, metadata and tensor table valid (the data is not read). */
static int open_gguf(const struct opener *o, struct model_dir *d, const struct layout *l)
{
    uint64_t size;
    d->files = xcalloc(1, sizeof *d->files);
    if (check_present(o, l->gguf, &size) != 0) return -1;
    d->files[0] = (struct model_file){.name = xstrdup(l->gguf), .size = size};
    d->nfiles = 1;
    d->weights = xcalloc(1, sizeof *d->weights);
    d->weights[0] = (struct indexed_file){.name = xstrdup(l->gguf), .nbytes = -1};
    d->nweights = 1;
    char *p = full(o, l->gguf), *s = shown(o, l->gguf);
    struct gguf g;
    int rc = gguf_open(&g, p);
    if (rc == 0) gguf_close(&g);
    else if (strncmp(last_error(), p, strlen(p)) == 0) {
        /* name the file as the user gave it */
        char *why = xstrdup(last_error() + strlen(p));
        rc = fail("%s%s", s, why);
        free(why);
    }
    free(p);
    free(s);
    return rc;
}

static int open_checked(const struct opener *o, const struct file_rules *rules, struct model_dir *d)
{
    struct layout l;
    if (layout_plan((const char *const *)o->names, o->n, rules, o->display, &l) != 0) return -1;
    d->kind = l.kind;
    d->format = l.format;
    d->config = l.config ? xstrdup(l.config) : NULL;
    d->index = l.index ? xstrdup(l.index) : NULL;
    if (l.format == WEIGHTS_GGUF) {
        int rc = open_gguf(o, d, &l);
        layout_free(&l);
        return rc;
    }

    int rc = 0;
    json_t *index = NULL;
    uint64_t size;
    /* Configuration and index first: they name everything else, and an LFS
     * pointer in their place deserves its own message, not a JSON error. */
    json_t *config = NULL;
    if (check_present(o, d->config, &size) != 0 || !(config = load_json(o, d->config))) rc = -1;
    json_decref(config);
    if (rc == 0 && d->index) {
        char *s = shown(o, d->index);
        if (check_present(o, d->index, &size) != 0 || !(index = load_json(o, d->index)) ||
            index_weight_files(index, d->format, s, &d->weights, &d->nweights) != 0 ||
            layout_add_indexed(&l, d->weights, d->nweights, (const char *const *)o->names, o->n,
                               rules, o->display) != 0)
            rc = -1;
        free(s);
    } else if (rc == 0) {
        const char *single = l.format == WEIGHTS_PYTORCH ? "pytorch_model.bin" : "model.safetensors";
        d->weights = xcalloc(1, sizeof *d->weights);
        d->weights[0] = (struct indexed_file){.name = xstrdup(single), .nbytes = -1};
        d->nweights = 1;
    }

    if (rc == 0) {
        d->files = xcalloc(l.nfiles ? l.nfiles : 1, sizeof *d->files);
        for (size_t i = 0; i < l.nfiles && rc == 0; i++) {
            rc = check_present(o, l.files[i], &size);
            d->files[i] = (struct model_file){.name = xstrdup(l.files[i]), .size = size};
            d->nfiles++;
        }
    }
    if (rc == 0) rc = check_weights(o, d, index);
    json_decref(index);
    layout_free(&l);
    return rc;
}

int model_dir_open(const char *path, const char *display, const struct file_rules *rules,
                   struct model_dir *out)
{
    memset(out, 0, sizeof *out);
    char *abs = realpath(path, NULL);
    if (!abs) return fail("%s: %s", display, strerror(errno));
    if (!is_dir(abs)) {
        free(abs);
        return fail("%s: not a directory", display);
    }
    out->path = abs;
    out->display = xstrdup(display);
    struct opener o = {.path = abs, .display = display};
    if (dir_list_files(abs, display, &o.names, &o.sizes, &o.n) != 0) {
        model_dir_free(out);
        return -1;
    }
    int rc = open_checked(&o, rules, out);
    dir_list_free(o.names, o.sizes, o.n);
    if (rc != 0) model_dir_free(out);
    return rc;
}

const struct model_file *model_dir_find(const struct model_dir *d, const char *name)
{
    for (size_t i = 0; i < d->nfiles; i++)
        if (!strcmp(d->files[i].name, name)) return &d->files[i];
    return NULL;
}

void model_dir_free(struct model_dir *d)
{
    for (size_t i = 0; i < d->nfiles; i++) free(d->files[i].name);
    free(d->files);
    indexed_files_free(d->weights, d->nweights);
    free(d->path);
    free(d->display);
    free(d->config);
    free(d->index);
    memset(d, 0, sizeof *d);
}

/* ---- hashing ---- */

struct hash_job {
    struct model_dir *d;
    struct progress *progress;
    char **errors;           /* per file, NULL when fine */
};

static const char *expected_md5(const struct model_dir *d, const char *name)
{
    for (size_t i = 0; i < d->nweights; i++)
        if (!strcmp(d->weights[i].name, name)) return d->weights[i].md5[0] ? d->weights[i].md5 : NULL;
    return NULL;
}

static int hash_one(struct model_dir *d, struct model_file *f, struct progress *progress)
{
    char *path = path_join(d->path, f->name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0) return fail("%s: %s", f->name, strerror(errno));
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    const char *md5_want = expected_md5(d, f->name);
    struct hasher sha, md5;
    hasher_init(&sha, HASH_SHA256);
    if (md5_want) hasher_init(&md5, HASH_MD5);
    size_t chunk = 1u << 20;
    char *data = xmalloc(chunk);
    uint64_t total = 0;
    int rc = 0;
    for (;;) {
        long long n = read_full(fd, data, chunk);
        if (n < 0) {
            rc = fail("%s: read error: %s", f->name, strerror(errno));
            break;
        }
        if (n == 0) break;
        hasher_update(&sha, data, (size_t)n);
        if (md5_want) hasher_update(&md5, data, (size_t)n);
        total += (uint64_t)n;
        if (progress) progress_add(progress, (uint64_t)n);
    }
    free(data);
    close(fd);
    if (rc == 0 && total != f->size)
        rc = fail("%s: changed while being read (%llu bytes, then %llu)", f->name,
                  (unsigned long long)f->size, (unsigned long long)total);
    if (rc != 0) {
        hasher_abort(&sha);
        if (md5_want) hasher_abort(&md5);
        return -1;
    }
    hasher_final_hex(&sha, f->sha256);
    if (md5_want) {
        char got[HASH_HEX_MAX];
        hasher_final_hex(&md5, got);
        if (strcmp(got, md5_want))
            return fail("%s: md5 mismatch: %s says %s, the file has %s", f->name, d->index, md5_want,
                        got);
    }
    return 0;
}

static void hash_worker(void *ctx, size_t i)
{
    struct hash_job *job = ctx;
    if (hash_one(job->d, &job->d->files[i], job->progress) != 0)
        job->errors[i] = xstrdup(last_error());
}

int model_dir_hash(struct model_dir *d, int threads, const char *label)
{
    struct progress progress;
    uint64_t total = 0;
    for (size_t i = 0; i < d->nfiles; i++) total += d->files[i].size;
    if (label) progress_begin(&progress, label, total, true);
    struct hash_job job = {
        .d = d,
        .progress = label ? &progress : NULL,
        .errors = xcalloc(d->nfiles ? d->nfiles : 1, sizeof(char *)),
    };
    if (threads < 1) threads = 1;
    if ((size_t)threads > d->nfiles) threads = d->nfiles ? (int)d->nfiles : 1;
    struct pool *pool = pool_create(threads);
    pool_for(pool, d->nfiles, hash_worker, &job);
    pool_destroy(pool);
    if (label) progress_end(&progress);
    int rc = 0;
    for (size_t i = 0; i < d->nfiles; i++) {
        if (job.errors[i] && rc == 0) rc = fail("%s/%s", d->display, job.errors[i]);
        free(job.errors[i]);
    }
    free(job.errors);
    return rc;
}
