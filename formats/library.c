#include "formats/library.h"
#include "common/depfile.h"
#include "common/atomic.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "common/mpscan.h"
#include "common/stream.h"
#include "common/version.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <string.h>

json_t *library_metadata(const struct module *m, const struct library_options *o)
{
    const struct model_dims *d = &m->dims;
    json_t *md = json_object();
    json_object_set_new(md, "model_type", json_string(m->model_type));
    json_object_set_new(md, "quantization", json_string(m->quantization));
    json_object_set_new(md, "context_window_size", json_integer(d->context_window_size));
    json_object_set_new(md, "sliding_window_size", json_integer(d->sliding_window_size));
    json_object_set_new(md, "attention_sink_size", json_integer(d->attention_sink_size));
    json_object_set_new(md, "prefill_chunk_size", json_integer(d->prefill_chunk_size));
    json_object_set_new(md, "tensor_parallel_shards", json_integer(o->tensor_parallel_shards));
    json_object_set_new(md, "pipeline_parallel_stages", json_integer(o->pipeline_parallel_stages));
    json_object_set_new(md, "disaggregation", json_false());
    json_object_set_new(md, "kv_state_kind", json_string("kv_cache"));
    json_object_set_new(md, "max_batch_size", json_integer(d->max_batch_size));
    json_object_set_new(md, "active_vocab_size",
                        d->active_vocab_size > 0 ? json_integer(d->active_vocab_size) : json_null());
    json_object_set_new(md, "model_task", json_string("chat"));
    json_t *params = json_array();
    for (int i = 0; i < m->nparams; i++) {
        const struct param_ref *p = &m->params[i];
        json_t *e = json_object(), *shape = json_array(), *stages = json_array();
        for (int k = 0; k < p->ndim; k++) json_array_append_new(shape, json_integer(p->shape[k]));
        json_array_append_new(stages, json_integer(0));
        json_object_set_new(e, "name", json_string(p->name));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "dtype", json_string(dtype_name(p->dtype)));
        json_object_set_new(e, "preprocs", json_array());
        json_object_set_new(e, "pipeline_stages", stages);
        json_array_append_new(params, e);
    }
    json_object_set_new(md, "params", params);
    json_t *kv = json_object();
    json_object_set_new(kv, "num_hidden_layers", json_integer(d->num_hidden_layers));
    json_object_set_new(kv, "num_attention_heads", json_integer(d->num_attention_heads));
    json_object_set_new(kv, "num_key_value_heads", json_integer(d->num_key_value_heads));
    json_object_set_new(kv, "head_dim", json_integer(d->head_dim));
    json_object_set_new(md, "kv_cache", kv);
    json_t *usage = json_object();
    for (int i = 0; i < m->nfns; i++) json_object_set_new(usage, m->fns[i].name, json_integer(m->fns[i].arena_bytes));
    json_object_set_new(md, "memory_usage", usage);
    /* mlc-pipe's own keys */
    json_object_set_new(md, "target", json_string(o->target));
    json_object_set_new(md, "system_lib_prefix", json_string(o->system_lib_prefix ? o->system_lib_prefix : ""));
    json_t *passes = json_array();
    for (int i = 0; i < m->npasses; i++) json_array_append_new(passes, json_string(m->passes[i]));
    json_object_set_new(md, "passes", passes);
    json_t *mem = json_object();
    json_object_set_new(mem, "params_bytes", json_integer(m->mem.params_bytes));
    json_object_set_new(mem, "kv_bytes_per_token", json_integer(m->mem.kv_bytes_per_token));
    json_object_set_new(mem, "kv_bytes_at_context", json_integer(m->mem.kv_bytes_at_context));
    json_object_set_new(mem, "arena_bytes", json_integer(m->mem.arena_bytes));
    json_object_set_new(mem, "total_bytes", json_integer(m->mem.total_bytes));
    json_object_set_new(md, "memory_estimate", mem);
    json_object_set_new(md, "tool", json_string("mlc-pipe " MLC_VERSION));
    return md;
}

void library_metadata_add_kernels(json_t *md, const struct launch_plan *lp)
{
    json_t *ks = json_array();
    for (int k = 0; k < lp->nkernels; k++) {
        const struct lp_kernel *kn = &lp->kernels[k];
        json_t *e = json_object();
        char *file = xasprintf("kernels/%s.spv", kn->name);
        json_object_set_new(e, "name", json_string(kn->name));
        json_object_set_new(e, "shader", json_string(kn->shader));
        json_object_set_new(e, "file", json_string(file));
        json_object_set_new(e, "bytes", json_integer((json_int_t)(kn->nwords * 4)));
        json_object_set_new(e, "sha256", json_string(kn->sha256));
        json_array_append_new(ks, e);
        free(file);
    }
    json_object_set_new(md, "kernels", ks);
}

static int add_entry(struct archive *a, const char *name, const void *data, size_t len, const char *path)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 0, 0);
    archive_entry_set_uid(e, 0);
    archive_entry_set_gid(e, 0);
    int rc = 0;
    if (archive_write_header(a, e) != ARCHIVE_OK || archive_write_data(a, data, len) != (la_ssize_t)len)
        rc = fail("%s: cannot write %s: %s", path, name,
                  archive_errno(a) > 0 ? strerror(archive_errno(a)) : archive_error_string(a));
    archive_entry_free(e);
    return rc;
}

int library_write(const char *path, const struct module *m, const json_t *metadata)
{
    return library_write_vulkan(path, m, metadata, NULL);
}

int library_write_vulkan(const char *path, const struct module *m, const json_t *metadata,
                         const struct launch_plan *lp)
{
    struct buf md = BUF_INIT, plan = BUF_INIT;
    buf_init(&md);
    buf_init(&plan);
    struct buf launches = BUF_INIT;
    buf_init(&launches);
    struct rec_builder b;
    if (lp) {
        rb_init(&b, "launches");
        launch_plan_pack_fields(&b, lp);
        rb_finish(&b, &launches);
    }
    /* json.dumps default separators, as MLC's _metadata string */
    struct pyjson_style st = {-1, ", ", ": ", true};
    pyjson_dump(&md, metadata, &st);
    rb_init(&b, "plan");
    module_pack_fields(&b, m);
    rb_finish(&b, &plan);

    struct atomic_file f;
    if (atomic_file_begin(&f, path) != 0) {
        buf_free(&md);
        buf_free(&plan);
        buf_free(&launches);
        return -1;
    }
    struct archive *a = archive_write_new();
    int rc = 0;
    if (archive_write_set_format_ustar(a) != ARCHIVE_OK || archive_write_open_fd(a, f.fd) != ARCHIVE_OK)
        rc = fail("%s: %s", path, archive_error_string(a));
    if (rc == 0) rc = add_entry(a, "metadata.json", md.data, md.len, path);
    if (rc == 0) rc = add_entry(a, "plan.msgpack", plan.data, plan.len, path);
    if (rc == 0 && lp) rc = add_entry(a, "launches.msgpack", launches.data, launches.len, path);
    for (int k = 0; rc == 0 && lp && k < lp->nkernels; k++) {
        char *name = xasprintf("kernels/%s.spv", lp->kernels[k].name);
        rc = add_entry(a, name, lp->kernels[k].words, lp->kernels[k].nwords * 4, path);
        free(name);
    }
    if (archive_write_close(a) != ARCHIVE_OK && rc == 0) rc = fail("%s: %s", path, archive_error_string(a));
    archive_write_free(a);
    buf_free(&md);
    buf_free(&plan);
    buf_free(&launches);
    if (rc != 0) {
        atomic_file_abort(&f);
        return -1;
    }
    return atomic_file_commit(&f);
}

static int read_entry(struct archive *a, struct archive_entry *e, size_t max, struct buf *out, const char *path)
{
    la_int64_t size = archive_entry_size(e);
    const char *name = archive_entry_pathname(e);
    if (size < 0 || (uint64_t)size > max)
        return fail("%s: entry %s is %lld bytes (at most %zu allowed)", path, name, (long long)size, max);
    buf_reset(out);
    /* memory grows with the bytes that arrive, not with what the header
     * promises */
    la_ssize_t n;
    do {
        buf_grow(out, 1u << 16);
        n = archive_read_data(a, out->data + out->len, 1u << 16);
        if (n > 0) out->len += (size_t)n;
        if (out->len > (size_t)size) return fail("%s: entry %s is longer than its header says", path, name);
    } while (n > 0);
    if (n < 0) return fail("%s: entry %s: %s", path, name, archive_error_string(a));
    if (out->len != (size_t)size) return fail("%s: entry %s is truncated", path, name);
    out->data[out->len] = 0;
    return 0;
}

/* One kernels/NAME.spv entry, kept until the plan says which kernels exist. */
struct blob {
    char *name;                 /* NAME */
    struct buf data;
};

static int parse_single_map(const struct buf *b, msgpack_unpacked *up, const char *what)
{
    if (mp_unpack_bounded(b->data, b->len, up, what) != 0) return -1;
    if (up->data.type != MSGPACK_OBJECT_MAP) return fail("%s: not a single msgpack map", what);
    return 0;
}

/* The Vulkan plan and its kernels' blobs, checked against each other. */
static int read_launches(struct library *lib, const struct buf *launches, struct blob *blobs, size_t nblobs,
                         const char *path)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    char *what = xasprintf("%s: launches.msgpack", path);
    lib->launches = xcalloc(1, sizeof *lib->launches);
    int rc = parse_single_map(launches, &up, what);
    if (rc == 0) rc = launch_plan_from_msgpack(&up.data, &lib->module, lib->launches, what);
    msgpack_unpacked_destroy(&up);
    free(what);
    if (rc) {
        free(lib->launches);
        lib->launches = NULL;
        return -1;
    }
    for (size_t i = 0; rc == 0 && i < nblobs; i++) {
        struct lp_kernel *k = NULL;
        for (int j = 0; j < lib->launches->nkernels; j++)
            if (!strcmp(lib->launches->kernels[j].name, blobs[i].name)) k = &lib->launches->kernels[j];
        if (!k) rc = fail("%s: kernels/%s.spv is no kernel of launches.msgpack", path, blobs[i].name);
        else if (blobs[i].data.len % 4) rc = fail("%s: kernels/%s.spv is %zu bytes, not whole 32-bit words", path, blobs[i].name, blobs[i].data.len);
        else {
            k->nwords = blobs[i].data.len / 4;
            k->words = xmalloc(blobs[i].data.len + 4);
            memcpy(k->words, blobs[i].data.data, blobs[i].data.len);
        }
    }
    if (rc == 0) rc = launch_plan_check_kernels(lib->launches, path);
    if (rc) {
        launch_plan_free(lib->launches);
        free(lib->launches);
        lib->launches = NULL;
    }
    return rc;
}

int library_read(const char *path, struct library *lib)
{
    memset(lib, 0, sizeof *lib);
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    deps_note(path);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        fail("%s: cannot open the library: %s", path, archive_error_string(a));
        archive_read_free(a);
        return -1;
    }
    struct buf md = BUF_INIT, plan = BUF_INIT, launches = BUF_INIT;
    buf_init(&md);
    buf_init(&plan);
    buf_init(&launches);
    struct blob *blobs = NULL;
    size_t nblobs = 0, cap = 0, blob_bytes = 0;
    bool have_md = false, have_plan = false, have_launches = false;
    int rc = 0;
    struct archive_entry *e;
    int r;
    while (rc == 0 && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        size_t len = name ? strlen(name) : 0;
        if (archive_entry_filetype(e) != AE_IFREG) {
            rc = fail("%s: entry %s is not a regular file", path, name ? name : "?");
        } else if (name && !strcmp(name, "metadata.json")) {
            if (have_md) rc = fail("%s: metadata.json appears twice", path);
            else rc = read_entry(a, e, LIBRARY_MAX_METADATA, &md, path), have_md = true;
        } else if (name && !strcmp(name, "plan.msgpack")) {
            if (have_plan) rc = fail("%s: plan.msgpack appears twice", path);
            else rc = read_entry(a, e, LIBRARY_MAX_PLAN, &plan, path), have_plan = true;
        } else if (name && !strcmp(name, "launches.msgpack")) {
            if (have_launches) rc = fail("%s: launches.msgpack appears twice", path);
            else rc = read_entry(a, e, LIBRARY_MAX_PLAN, &launches, path), have_launches = true;
        } else if (name && len > 12 && len < 300 && !strncmp(name, "kernels/", 8) && !strcmp(name + len - 4, ".spv") &&
                   !strchr(name + 8, '/')) {
            char *kname = xstrndup(name + 8, len - 12);
            for (size_t i = 0; rc == 0 && i < nblobs; i++)
                if (!strcmp(blobs[i].name, kname)) rc = fail("%s: %s appears twice", path, name);
            if (rc == 0 && nblobs == 4096) rc = fail("%s: more than 4096 kernels", path);
            if (rc) {
                free(kname);
                break;
            }
            blobs = xgrow(blobs, &cap, nblobs + 1, sizeof *blobs);
            blobs[nblobs].name = kname;
            buf_init(&blobs[nblobs].data);
            rc = read_entry(a, e, LIBRARY_MAX_KERNEL, &blobs[nblobs].data, path);
            blob_bytes += blobs[nblobs++].data.len;
            if (rc == 0 && blob_bytes > LIBRARY_MAX_PLAN) rc = fail("%s: the kernels exceed %u bytes", path, LIBRARY_MAX_PLAN);
        } else {
            rc = fail("%s: unexpected entry '%s' (a library holds metadata.json, plan.msgpack and, for Vulkan, "
                      "launches.msgpack and kernels/*.spv)",
                      path, name ? name : "?");
        }
    }
    if (rc == 0 && r != ARCHIVE_EOF) rc = fail("%s: not a valid tar archive: %s", path, archive_error_string(a));
    archive_read_free(a);
    if (rc == 0 && (!have_md || !have_plan))
        rc = fail("%s: the library lacks %s", path, have_md ? "plan.msgpack" : "metadata.json");
    if (rc == 0 && nblobs && !have_launches) rc = fail("%s: the library has kernels but no launches.msgpack", path);
    if (rc == 0) {
        char *what = xasprintf("%s: metadata.json", path);
        lib->metadata = json_load_text(md.data, md.len, what);
        free(what);
        if (!lib->metadata) rc = -1;
        else if (!json_is_object(lib->metadata)) rc = fail("%s: metadata.json is not an object", path);
    }
    bool have_module = false;
    if (rc == 0) {
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        char *what = xasprintf("%s: plan.msgpack", path);
        rc = parse_single_map(&plan, &up, what);
        if (rc == 0) rc = module_from_msgpack(&up.data, &lib->module, what);
        have_module = rc == 0;
        free(what);
        msgpack_unpacked_destroy(&up);
    }
    if (rc == 0) {
        const json_t *t = json_object_get(lib->metadata, "target");
        lib->target = json_is_string(t) ? json_string_value(t) : "cpu";
        if (!strcmp(lib->target, "vulkan") && !have_launches)
            rc = fail("%s: a vulkan library without launches.msgpack", path);
    }
    if (rc == 0 && have_launches) rc = read_launches(lib, &launches, blobs, nblobs, path);
    buf_free(&md);
    buf_free(&plan);
    buf_free(&launches);
    for (size_t i = 0; i < nblobs; i++) {
        free(blobs[i].name);
        buf_free(&blobs[i].data);
    }
    free(blobs);
    if (rc == 0) {
        lib->path = xstrdup(path);
        return 0;
    }
    if (have_module) module_free(&lib->module);
    json_decref(lib->metadata);
    memset(lib, 0, sizeof *lib);
    return -1;
}

void library_free(struct library *lib)
{
    if (lib->launches) {
        launch_plan_free(lib->launches);
        free(lib->launches);
    }
    json_decref(lib->metadata);
    module_free(&lib->module);
    free(lib->path);
    memset(lib, 0, sizeof *lib);
}
