#include "formats/torch_bin.h"
#include "common/depfile.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"

/* A state_dict's pickle is ~100 bytes per tensor: 64 MiB is room for far
 * more tensors than the unpickler's object limit allows. */
#define MAX_PICKLE (64u << 20)

static struct archive *open_archive(const char *path)
{
    struct archive *a = archive_read_new();
    archive_read_support_format_zip_seekable(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        fail("%s: not a readable zip archive: %s", path, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

static int read_entry_data(struct archive *a, const char *path, const char *name, uint64_t size, void **out)
{
    if (size > SIZE_MAX - 1) return fail("%s: %s: too large", path, name);
    unsigned char *buf = xmalloc((size_t)size + 1);
    size_t got = 0;
    while (got < size) {
        la_ssize_t n = archive_read_data(a, buf + got, (size_t)size - got);
        if (n < 0) {
            free(buf);
            return fail("%s: %s: %s", path, name, archive_error_string(a));
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if (got != size) {
        free(buf);
        return fail("%s: %s: entry holds %zu bytes, its header says %llu", path, name, got, (unsigned long long)size);
    }
    *out = buf;
    return 0;
}

void tb_close(struct tb_file *f)
{
    tp_state_dict_free(&f->sd);
    for (size_t i = 0; i < f->nentries; i++) free(f->entries[i].key);
    free(f->entries);
    free(f->prefix);
    free(f->path);
    memset(f, 0, sizeof *f);
}

static const struct tb_entry *find_entry(const struct tb_file *f, const char *key)
{
    for (size_t i = 0; i < f->nentries; i++)
        if (!strcmp(f->entries[i].key, key)) return &f->entries[i];
    return NULL;
}

static int check_storages(struct tb_file *f);

int tb_open(struct tb_file *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = xstrdup(path);
    deps_note(path);
    /* the pre-1.6 format is a bare pickle stream, not a zip */
    unsigned char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail("%s: cannot open: %m", path);
        goto bad;
    }
    ssize_t got = read(fd, magic, 4);
    close(fd);
    if (got == 4 && magic[0] == 0x80 && magic[1] <= 5) {
        fail("%s: a legacy (pre-zip) PyTorch checkpoint; re-save it with a current torch.save", path);
        goto bad;
    }
    struct archive *a = open_archive(path);
    if (!a) goto bad;
    struct archive_entry *e;
    void *pickle = NULL;
    size_t pickle_len = 0, cap = 0;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (!name) continue;
        uint64_t size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
        const char *slash = strchr(name, '/');
        if (!slash) continue;
        if (!strcmp(slash, "/data.pkl")) {
            if (pickle) {
                fail("%s: more than one data.pkl", path);
                goto bad_archive;
            }
            if (size > MAX_PICKLE) {
                fail("%s: %s is %llu bytes, over the %u-byte limit", path, name, (unsigned long long)size, MAX_PICKLE);
                goto bad_archive;
            }
            f->prefix = xstrndup(name, (size_t)(slash - name) + 1);
            if (read_entry_data(a, path, name, size, &pickle) != 0) goto bad_archive;
            pickle_len = (size_t)size;
        } else if (!strncmp(slash, "/data/", 6) && slash[6]) {
            f->entries = xgrow(f->entries, &cap, f->nentries + 1, sizeof *f->entries);
            f->entries[f->nentries].key = xstrdup(slash + 6);
            f->entries[f->nentries++].size = size;
        }
    }
    if (r != ARCHIVE_EOF) {
        fail("%s: %s", path, archive_error_string(a));
        goto bad_archive;
    }
    archive_read_free(a);
    a = NULL;
    if (!pickle) {
        fail("%s: no data.pkl: not a torch.save archive", path);
        goto bad;
    }
    char what[600];
    snprintf(what, sizeof what, "%s: %sdata.pkl", path, f->prefix);
    int rc = tp_parse_state_dict(pickle, pickle_len, what, &f->sd);
    free(pickle);
    pickle = NULL;
    if (rc != 0) goto bad;
    if (check_storages(f) != 0) goto bad;
    return 0;
bad_archive:
    free(pickle);
    if (a) archive_read_free(a);
bad:
    tb_close(f);
    return -1;
}

/* Every tensor's storage exists with the size its persistent id declares,
 * and is not far larger than the views of it: a zip entry can inflate to
 * gigabytes from a few megabytes, and a storage nobody looks at is only
 * that. */
static int check_storages(struct tb_file *f)
{
    const char *path = f->path;
    uint64_t *used = xcalloc(f->nentries ? f->nentries : 1, sizeof *used);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < f->sd.ntensors; i++) {
        const struct tp_tensor *t = &f->sd.tensors[i];
        const struct tb_entry *en = find_entry(f, t->storage_key);
        size_t item = t->dtype == DT_INVALID ? 0 : dtype_size(t->dtype);
        uint64_t want;
        if (!en) {
            rc = fail("%s: tensor '%s': storage data/%s is missing", path, t->name, t->storage_key);
            break;
        }
        if (item && (!u64_mul(t->storage_numel, item, &want) || want != en->size)) {
            rc = fail("%s: tensor '%s': storage data/%s has %llu bytes, but %llu %s elements were declared", path,
                      t->name, t->storage_key, (unsigned long long)en->size,
                      (unsigned long long)t->storage_numel, t->storage_type);
            break;
        }
        /* the unpickler checked offset + numel <= storage_numel */
        uint64_t end = (t->offset + t->numel) * item;
        size_t k = (size_t)(en - f->entries);
        if (end > used[k]) used[k] = end;
    }
    for (size_t i = 0; rc == 0 && i < f->sd.ntensors; i++) {
        const struct tp_tensor *t = &f->sd.tensors[i];
        const struct tb_entry *en = find_entry(f, t->storage_key);
        uint64_t u = used[en - f->entries];
        if (en->size > TB_STORAGE_SLACK && (en->size - TB_STORAGE_SLACK) / 2 > u)
            rc = fail("%s: tensor '%s': storage data/%s holds %llu bytes, but its tensors use only %llu "
                      "(a storage may be at most twice what its tensors use, plus %u bytes)",
                      path, t->name, t->storage_key, (unsigned long long)en->size, (unsigned long long)u,
                      TB_STORAGE_SLACK);
    }
    free(used);
    return rc;
}

/* Skip n bytes of the current entry. */
static int skip_span(struct archive *a, const struct tb_file *f, const char *name, uint64_t n)
{
    static _Thread_local unsigned char discard[1 << 16];
    while (n > 0) {
        la_ssize_t got = archive_read_data(a, discard, n < sizeof discard ? (size_t)n : sizeof discard);
        if (got < 0) return fail("%s: %s: %s", f->path, name, archive_error_string(a));
        if (got == 0) return fail("%s: %s: the entry is shorter than its header says", f->path, name);
        n -= (uint64_t)got;
    }
    return 0;
}

/* The next n bytes of the current entry, in memory that grows with what
 * really arrives: a header may promise gigabytes the entry does not hold. */
static int read_span(struct archive *a, const struct tb_file *f, const char *name, uint64_t n, void **out)
{
    size_t cap = n < (1u << 20) ? (size_t)n : (1u << 20), got = 0;
    unsigned char *buf = xmalloc(cap + 1);
    while (got < n) {
        if (got == cap) {
            cap = n - got > cap ? cap * 2 : (size_t)n;
            if (cap > n) cap = (size_t)n;
            buf = xrealloc(buf, cap + 1);
        }
        la_ssize_t r = archive_read_data(a, buf + got, cap - got);
        if (r <= 0) {
            free(buf);
            if (r < 0) return fail("%s: %s: %s", f->path, name, archive_error_string(a));
            return fail("%s: %s: the entry is shorter than its header says", f->path, name);
        }
        got += (size_t)r;
    }
    *out = buf;
    return 0;
}

int tb_read_tensor(struct tb_file *f, size_t i, void **data, size_t *len)
{
    const struct tp_tensor *t = &f->sd.tensors[i];
    size_t item = dtype_size(t->dtype);
    struct archive *a = open_archive(f->path);
    if (!a) return -1;
    char *want = xasprintf("%sdata/%s", f->prefix, t->storage_key);
    struct archive_entry *e;
    int rc = -1, r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (!name || strcmp(name, want)) continue;
        uint64_t size = (uint64_t)archive_entry_size(e);
        /* only the view's bytes are read: the elements before its storage
         * offset are skipped, those after it never inflated (checked
         * again: the file may have changed since it was opened) */
        uint64_t off, n;
        if (!u64_mul(t->offset, item, &off) || !u64_mul(t->numel, item, &n) || off > size ||
            n > size - off || n > SIZE_MAX - 1) {
            fail("%s: tensor '%s': storage data/%s is too short", f->path, t->name, t->storage_key);
            break;
        }
        void *buf = NULL;
        if (skip_span(a, f, name, off) != 0 || read_span(a, f, name, n, &buf) != 0) break;
        *data = buf;
        *len = (size_t)n;
        rc = 0;
        break;
    }
    if (rc != 0 && r == ARCHIVE_EOF) fail("%s: %s disappeared while reading", f->path, want);
    else if (rc != 0 && r != ARCHIVE_OK) fail("%s: %s", f->path, archive_error_string(a));
    free(want);
    archive_read_free(a);
    return rc;
}
