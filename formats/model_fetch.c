#include "formats/model_fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/progress.h"

/* A revision listing of a very large repository is a few megabytes. */
#define LISTING_MAX (64u << 20)

void fetch_result_free(struct fetch_result *r)
{
    model_dir_free(&r->dir);
    free(r->revision);
    free(r->commit);
    memset(r, 0, sizeof *r);
}

static bool is_commit_id(const char *s)
{
    return strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

/* ---- local directories ---- */

/* A model given as one file (a .gguf, which holds everything): its
 * directory, with only that file selected. Messages name the directory as
 * the user would: the path given, less the file's name. */
static int open_single_file(const char *path, const char *text, const struct file_rules *rules,
                            struct model_dir *out)
{
    const char *base = path_basename(path);
    size_t n = strlen(base);
    if (n <= 5 || strcmp(base + n - 5, ".gguf"))
        return fail("%s: not a directory (a model is a directory, or a single .gguf file)", text);
    const char *include[] = {base};
    struct file_rules only = {.include = include, .ninclude = 1,
                              .exclude = rules->exclude, .nexclude = rules->nexclude};
    char *dir = path_dirname(path);
    char *display = strlen(text) > n ? xstrndup(text, strlen(text) - n - 1) : xstrdup(".");
    if (!display[0]) {
        free(display);
        display = xstrdup("/");
    }
    int rc = model_dir_open(dir, display, &only, out);
    free(dir);
    free(display);
    return rc;
}

static int fetch_local(const struct model_source *src, const struct fetch_options *o,
                       struct fetch_result *out)
{
    const char *dir = src->dir;
    if (!path_exists(dir)) {
        /* "org/name" typed without HF:// is a common slip */
        const char *slash = strchr(dir, '/');
        if (slash && !strchr(slash + 1, '/') && dir[0] != '.' && dir[0] != '/')
            return fail("%s: no such directory (for a HuggingFace model, write HF://%s)", src->text,
                        dir);
        return fail("%s: no such directory", src->text);
    }
    int rc = is_dir(dir) ? model_dir_open(dir, src->text, &o->rules, &out->dir)
                         : open_single_file(dir, src->text, &o->rules, &out->dir);
    if (rc != 0) return -1;
    char *label = xasprintf("hashing %s", src->text);
    rc = model_dir_hash(&out->dir, o->hash_threads, label);
    free(label);
    out->origin = FROM_LOCAL;
    return rc;
}

/* ---- cache entries ---- */

static bool same_strings(char **a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i])) return false;
    return true;
}

/* An entry we published: its files must be exactly those of the manifest,
 * with the same sizes; their sha256 comes from the manifest unless
 * --verify asks to read everything again. */
static int use_manifest(const char *entry, struct manifest *m, const struct fetch_options *o,
                        struct fetch_result *out)
{
    struct file_rules stored = {
        .include = (const char *const *)m->include, .ninclude = m->ninclude,
        .exclude = (const char *const *)m->exclude, .nexclude = m->nexclude,
    };
    if (!same_strings(m->include, m->ninclude, o->rules.include, o->rules.ninclude) ||
        !same_strings(m->exclude, m->nexclude, o->rules.exclude, o->rules.nexclude))
        warning("%s was fetched with other --include/--exclude options; it is used as it is "
                "(--policy REDO fetches it again)",
                entry);
    if (model_dir_open(entry, entry, &stored, &out->dir) != 0) return -1;
    struct model_dir *d = &out->dir;
    /* both lists are sorted by name: the first difference is the one told */
    for (size_t i = 0; i < d->nfiles || i < m->nfiles; i++) {
        int c = i >= d->nfiles ? 1 : i >= m->nfiles ? -1 : strcmp(d->files[i].name, m->files[i].name);
        if (c > 0) return fail("%s/%s: missing (the manifest lists it)", entry, m->files[i].name);
        if (c < 0) return fail("%s/%s: not in the manifest", entry, d->files[i].name);
        if (d->files[i].size != m->files[i].size)
            return fail("%s/%s: %llu bytes, but the manifest says %llu", entry, d->files[i].name,
                        (unsigned long long)d->files[i].size, (unsigned long long)m->files[i].size);
        memcpy(d->files[i].sha256, m->files[i].sha256, HASH_HEX_MAX);
    }
    if (!o->verify) return 0;
    char *label = xasprintf("verifying %s", entry);
    int rc = model_dir_hash(d, o->hash_threads, label);
    free(label);
    for (size_t i = 0; i < d->nfiles && rc == 0; i++)
        if (strcmp(d->files[i].sha256, m->files[i].sha256))
            rc = fail("%s/%s: sha256 %s, but the manifest says %s", entry, d->files[i].name,
                      d->files[i].sha256, m->files[i].sha256);
    return rc;
}

static int use_entry(const char *entry, const char *revision, const struct fetch_options *o,
                     enum fetch_origin origin, struct fetch_result *out)
{
    struct manifest m;
    int got = manifest_read(entry, &m);
    int rc;
    if (got < 0) {
        rc = -1;
    } else if (got == 1) {
        /* made by MLC-LLM or by hand: check and hash it like a local directory */
        rc = model_dir_open(entry, entry, &o->rules, &out->dir);
        if (rc == 0) {
            char *label = xasprintf("hashing %s", entry);
            rc = model_dir_hash(&out->dir, o->hash_threads, label);
            free(label);
        }
    } else {
        rc = use_manifest(entry, &m, o, out);
        if (rc == 0 && m.commit) out->commit = xstrdup(m.commit);
        manifest_free(&m);
    }
    if (rc != 0) {
        model_dir_free(&out->dir);
        free(out->commit);
        out->commit = NULL;
        char why[1024];
        snprintf(why, sizeof why, "%s", last_error());
        return fail("cache entry %s; --policy REDO fetches it again", why);
    }
    out->revision = xstrdup(revision);
    out->origin = origin;
    return 0;
}

/* MLC-LLM uses a read-only entry when it holds mlc-chat-config.json; raw
 * HuggingFace entries hold config.json. */
static bool looks_like_entry(const char *dir)
{
    char *a = path_join(dir, "mlc-chat-config.json"), *b = path_join(dir, "config.json");
    bool yes = is_dir(dir) && (path_exists(a) || path_exists(b));
    free(a);
    free(b);
    return yes;
}

/* ---- the hub ---- */

struct hub_fetch {
    const struct model_source *src;
    const struct fetch_options *o;
    const char *revision;
    char *api_url;
    struct hub_listing listing;
    const char **names;          /* the listing's names */
    char *tmp;                   /* the entry being built */
    struct progress progress;
    struct download_result {
        char *name;
        char sha256[HASH_HEX_MAX];
    } *results;
    size_t nresults, cap_results;
    uint64_t total_bytes;
};

static int api_error(const struct hub_fetch *h, const struct http_response *r)
{
    const char *text = h->src->text;
    const char *said = r->error_message;
    if (r->status == 401)
        return fail("%s: 401 Unauthorized: %s", text,
                    h->o->http.token ? "the hub refused the token (HF_TOKEN or --token-file)"
                                     : "the repository is private or gated: set HF_TOKEN or "
                                       "--token-file");
    if (r->status == 403)
        return fail("%s: 403 Forbidden: %s", text,
                    said[0] ? said : "access denied (a gated repository: accept its terms on the hub)");
    if (r->status == 404 && !strcmp(r->error_code, "RevisionNotFound"))
        return fail("%s: revision '%s' not found", text, h->revision);
    if (r->status == 404)
        return fail("%s: repository not found%s", text,
                    h->o->http.token ? "" : " (or private: set HF_TOKEN)");
    return fail("%s: %s answered %s%s%s", text, h->api_url, http_status_text(r->status),
                said[0] ? ": " : "", said);
}

static int get_listing(struct hub_fetch *h)
{
    h->api_url = hub_api_url(h->o->endpoint, h->src->org, h->src->name, h->revision);
    struct http_response r;
    int rc = http_get(&h->o->http, h->api_url, LISTING_MAX, &r);
    if (rc != 0) fail_prefix("%s", h->src->text);
    else if (r.status != 200) rc = api_error(h, &r);
    else rc = hub_listing_parse(r.body.data, r.body.len, h->api_url, &h->listing);
    http_response_free(&r);
    if (rc != 0) return -1;
    if (is_commit_id(h->revision) && strcmp(h->revision, h->listing.commit))
        return fail("%s: asked for commit %s, the hub answered with %s", h->src->text, h->revision,
                    h->listing.commit);
    h->names = xcalloc(h->listing.nfiles + 1, sizeof *h->names);
    for (size_t i = 0; i < h->listing.nfiles; i++) h->names[i] = h->listing.files[i].name;
    return 0;
}

static void add_result(struct hub_fetch *h, const char *name, const char *sha256)
{
    h->results = xgrow(h->results, &h->cap_results, h->nresults + 1, sizeof *h->results);
    h->results[h->nresults].name = xstrdup(name);
    memcpy(h->results[h->nresults].sha256, sha256, HASH_HEX_MAX);
    h->nresults++;
}

/* A file that failed its size or digest check may be an LFS pointer served
 * in place of the content: say so, with the fix. */
static int explain_bad_file(const struct hub_fetch *h, const char *name, const char *path)
{
    if (file_is_lfs_pointer(path) == 1)
        return fail("%s: %s: the server sent a Git LFS pointer instead of the file (%s)",
                    h->src->text, name, lfs_pointer_fix);
    return -1;
}

static int verify(const struct hub_fetch *h, const struct http_download *d, const struct hub_file *f,
                  const char *md5)
{
    const char *kind, *want, *got;
    if (f->lfs) kind = "sha256", want = f->sha256, got = d->got.sha256;
    else kind = "git blob id", want = f->blob_id, got = d->got.git_blob;
    if (strcmp(want, got) == 0 && md5 && strcmp(md5, d->got.md5))
        kind = "md5 (from the tensor cache)", want = md5, got = d->got.md5;
    if (strcmp(want, got) == 0) return 0;
    fail("%s: %s: %s mismatch: expected %s, got %s; the download is corrupt and nothing was cached",
         h->src->text, f->name, kind, want, got);
    return explain_bad_file(h, f->name, d->path);
}

/* Download files into the temporary entry and check each against the hub's
 * listing (and, for MLC shards, the md5 of the tensor cache). */
static int download(struct hub_fetch *h, char **names, size_t n, const struct indexed_file *w, size_t nw)
{
    if (!n) return 0;
    struct http_download *d = xcalloc(n, sizeof *d);
    char **urls = xcalloc(n, sizeof *urls), **paths = xcalloc(n, sizeof *paths);
    const char **md5 = xcalloc(n, sizeof *md5);
    int rc = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct hub_file *f = hub_listing_find(&h->listing, names[i]);
        urls[i] = hub_resolve_url(h->o->endpoint, h->src->org, h->src->name, h->listing.commit, f->name);
        paths[i] = path_join(h->tmp, f->name);
        char *parent = path_dirname(paths[i]);
        rc = make_dirs(parent, 0777);
        free(parent);
        for (size_t j = 0; j < nw; j++)
            if (!strcmp(w[j].name, f->name) && w[j].md5[0]) md5[i] = w[j].md5;
        d[i] = (struct http_download){
            .url = urls[i], .path = paths[i], .name = f->name, .size = (int64_t)f->size,
            .digests = DIGEST_SHA256 | (f->lfs ? 0 : DIGEST_GIT_BLOB) | (md5[i] ? DIGEST_MD5 : 0),
        };
        bytes += f->size;
    }
    if (rc == 0) {
        h->total_bytes += bytes;
        progress_set_total(&h->progress, h->total_bytes);
        rc = http_download_all(&h->o->http, d, n, &h->progress);
        if (rc != 0) {
            fail_prefix("%s", h->src->text);
            for (size_t i = 0; i < n; i++)
                if (d[i].failed) explain_bad_file(h, d[i].name, d[i].path);
        }
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = verify(h, &d[i], hub_listing_find(&h->listing, names[i]), md5[i]);
        if (rc == 0) add_result(h, names[i], d[i].got.sha256);
    }
    for (size_t i = 0; i < n; i++) {
        free(urls[i]);
        free(paths[i]);
    }
    free(urls);
    free(paths);
    free(md5);
    free(d);
    return rc;
}

/* Weights named by the index: the index is already in the temporary entry. */
static int download_indexed(struct hub_fetch *h, struct layout *plan)
{
    char *path = path_join(h->tmp, plan->index);
    char *shown = xasprintf("%s/%s", h->src->text, plan->index);
    struct buf text = BUF_INIT;
    buf_init(&text);
    json_t *index = read_file(path, &text, 0) == 0 ? json_load_text(text.data, text.len, shown) : NULL;
    buf_free(&text);
    struct indexed_file *w = NULL;
    size_t nw = 0;
    int rc = 0;
    if (!index) rc = -1;
    else if (index_weight_files(index, plan->format, shown, &w, &nw) != 0) rc = -1;
    /* An MLC shard's size is in the tensor cache too: both must agree. */
    for (size_t i = 0; i < nw && rc == 0; i++) {
        const struct hub_file *f = hub_listing_find(&h->listing, w[i].name);
        if (f && w[i].nbytes >= 0 && (uint64_t)w[i].nbytes != f->size)
            rc = fail("%s: %s says %s has %lld bytes, the hub lists %llu", h->src->text, plan->index,
                      w[i].name, (long long)w[i].nbytes, (unsigned long long)f->size);
    }
    /* the weights not already fetched (an --include may have taken some) */
    char **todo = xcalloc(nw + 1, sizeof *todo);
    size_t ntodo = 0;
    for (size_t i = 0; i < nw; i++)
        if (!layout_has(plan, w[i].name)) todo[ntodo++] = w[i].name;
    if (rc == 0 && layout_add_indexed(plan, w, nw, h->names, h->listing.nfiles, &h->o->rules,
                                      h->src->text) != 0)
        rc = -1;
    if (rc == 0) rc = download(h, todo, ntodo, w, nw);
    free(todo);
    indexed_files_free(w, nw);
    json_decref(index);
    free(shown);
    free(path);
    return rc;
}

/* The downloaded tree is checked as a local directory would be, and its
 * files get the digests computed while they arrived. */
static int check_tree(struct hub_fetch *h, struct fetch_result *out)
{
    if (model_dir_open(h->tmp, h->src->text, &h->o->rules, &out->dir) != 0) return -1;
    for (size_t i = 0; i < out->dir.nfiles; i++) {
        struct model_file *f = &out->dir.files[i];
        for (size_t j = 0; j < h->nresults && !f->sha256[0]; j++)
            if (!strcmp(h->results[j].name, f->name)) memcpy(f->sha256, h->results[j].sha256, HASH_HEX_MAX);
        if (!f->sha256[0]) return fail("%s: %s: not downloaded", h->src->text, f->name);
    }
    return 0;
}

static int write_manifest(struct hub_fetch *h, const struct fetch_result *out)
{
    struct manifest m = {
        .source = h->src->text, .revision = (char *)h->revision, .commit = h->listing.commit,
        .include = (char **)h->o->rules.include, .ninclude = h->o->rules.ninclude,
        .exclude = (char **)h->o->rules.exclude, .nexclude = h->o->rules.nexclude,
        .files = out->dir.files, .nfiles = out->dir.nfiles,
    };
    return manifest_write(h->tmp, &m);
}

static void hub_fetch_free(struct hub_fetch *h)
{
    free(h->api_url);
    hub_listing_free(&h->listing);
    free(h->names);
    for (size_t i = 0; i < h->nresults; i++) free(h->results[i].name);
    free(h->results);
}

static int download_entry(const struct model_source *src, const struct fetch_options *o,
                          const char *revision, const char *entry, bool replace,
                          struct fetch_result *out)
{
    struct hub_fetch h = {.src = src, .o = o, .revision = revision};
    struct layout plan = {0};
    struct atomic_dir tmp = {0};
    char *parent = path_dirname(entry);
    int rc = make_dirs(parent, 0777);
    if (rc == 0) rc = get_listing(&h);
    if (rc == 0) rc = layout_plan(h.names, h.listing.nfiles, &o->rules, src->text, &plan);
    if (rc == 0) rc = atomic_dir_begin(&tmp, entry);
    if (rc == 0) {
        h.tmp = tmp.tmp;
        note("%s: commit %s", src->text, h.listing.commit);
        progress_begin(&h.progress, src->text, 0, true);
        /* first the configuration, tokenizer and index, then what the index names */
        rc = download(&h, plan.files, plan.nfiles, NULL, 0);
        if (rc == 0 && plan.index) rc = download_indexed(&h, &plan);
        progress_end(&h.progress);
    }
    if (rc == 0) rc = check_tree(&h, out);
    if (rc == 0) rc = write_manifest(&h, out);
    if (rc == 0) {
        rc = atomic_dir_commit(&tmp, replace);
        if (rc != 0 && !replace && is_dir(entry)) {
            /* Another run published the same entry first: use theirs. */
            model_dir_free(&out->dir);
            rc = use_entry(entry, revision, o, FROM_CACHE, out);
        } else if (rc == 0) {
            free(out->dir.path);
            out->dir.path = realpath(entry, NULL);
            if (!out->dir.path) rc = fail("%s: %s", entry, strerror(errno));
            out->commit = xstrdup(h.listing.commit);
            out->revision = xstrdup(revision);
            out->origin = FROM_DOWNLOAD;
        }
    } else if (tmp.tmp) {
        atomic_dir_abort(&tmp);
    }
    layout_free(&plan);
    hub_fetch_free(&h);
    free(parent);
    return rc;
}

static int fetch_hub(const struct model_source *src, const struct fetch_options *o,
                     struct fetch_result *out)
{
    const char *revision = src->revision ? src->revision : HUB_DEFAULT_REVISION;
    /* main is what an unpinned source means: one entry for both */
    bool pinned = strcmp(revision, HUB_DEFAULT_REVISION) != 0;
    char *rel = cache_entry_rel(src->org, src->name, pinned ? revision : NULL);
    struct buf looked = BUF_INIT;
    buf_init(&looked);
    int rc = 1; /* 1: not found yet */

    if (o->policy != POLICY_REDO) {
        size_t nbases;
        char **bases = cache_readonly_bases(&nbases);
        for (size_t i = 0; i < nbases && rc == 1; i++) {
            char *dir = path_join(bases[i], rel);
            buf_printf(&looked, "%s%s", looked.len ? ", " : "", dir);
            if (looks_like_entry(dir)) rc = use_entry(dir, revision, o, FROM_READONLY_CACHE, out);
            free(dir);
        }
        cache_strings_free(bases, nbases);
    }
    char *home = rc == 1 ? cache_home() : NULL;
    char *entry = NULL;
    if (rc == 1 && !home) rc = -1;
    if (rc == 1) {
        char *weights = path_join(home, "model_weights");
        entry = path_join(weights, rel);
        free(weights);
        buf_printf(&looked, "%s%s", looked.len ? ", " : "", entry);
        char *parent = path_dirname(entry);
        if (o->policy != POLICY_READONLY) atomic_clean_stale(parent);
        free(parent);
        if (o->policy != POLICY_REDO && path_exists(entry))
            rc = use_entry(entry, revision, o, FROM_CACHE, out);
    }
    if (rc == 1 && o->policy == POLICY_OFF)
        rc = fail("%s: not in the cache (%s) and the download policy is OFF", src->text, looked.data);
    else if (rc == 1 && o->policy == POLICY_READONLY)
        rc = fail("%s: not in any cache and the download policy is READONLY; looked in: %s",
                  src->text, looked.data);
    else if (rc == 1)
        rc = download_entry(src, o, revision, entry, o->policy == POLICY_REDO && path_exists(entry), out);
    free(entry);
    free(home);
    free(rel);
    buf_free(&looked);
    return rc;
}

int model_fetch(const struct model_source *src, const struct fetch_options *o,
                struct fetch_result *out)
{
    memset(out, 0, sizeof *out);
    int rc = src->type == SOURCE_LOCAL ? fetch_local(src, o, out) : fetch_hub(src, o, out);
    if (rc != 0) fetch_result_free(out);
    return rc;
}
