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
    struct buf md = BUF_INIT, plan = BUF_INIT;
    buf_init(&md);
    buf_init(&plan);
    /* json.dumps default separators, as MLC's _metadata string */
    struct pyjson_style st = {-1, ", ", ": ", true};
    pyjson_dump(&md, metadata, &st);
    struct rec_builder b;
    rb_init(&b, "plan");
    module_pack_fields(&b, m);
    rb_finish(&b, &plan);

    struct atomic_file f;
    if (atomic_file_begin(&f, path) != 0) {
        buf_free(&md);
        buf_free(&plan);
        return -1;
    }
    struct archive *a = archive_write_new();
    int rc = 0;
    if (archive_write_set_format_ustar(a) != ARCHIVE_OK || archive_write_open_fd(a, f.fd) != ARCHIVE_OK)
        rc = fail("%s: %s", path, archive_error_string(a));
    if (rc == 0) rc = add_entry(a, "metadata.json", md.data, md.len, path);
    if (rc == 0) rc = add_entry(a, "plan.msgpack", plan.data, plan.len, path);
    if (archive_write_close(a) != ARCHIVE_OK && rc == 0) rc = fail("%s: %s", path, archive_error_string(a));
    archive_write_free(a);
    buf_free(&md);
    buf_free(&plan);
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
    struct buf md = BUF_INIT, plan = BUF_INIT;
    buf_init(&md);
    buf_init(&plan);
    bool have_md = false, have_plan = false;
    int rc = 0;
    struct archive_entry *e;
    int r;
    while (rc == 0 && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        const char *name = archive_entry_pathname(e);
        if (archive_entry_filetype(e) != AE_IFREG) {
            rc = fail("%s: entry %s is not a regular file", path, name ? name : "?");
        } else if (name && !strcmp(name, "metadata.json")) {
            if (have_md) rc = fail("%s: metadata.json appears twice", path);
            else rc = read_entry(a, e, LIBRARY_MAX_METADATA, &md, path), have_md = true;
        } else if (name && !strcmp(name, "plan.msgpack")) {
            if (have_plan) rc = fail("%s: plan.msgpack appears twice", path);
            else rc = read_entry(a, e, LIBRARY_MAX_PLAN, &plan, path), have_plan = true;
        } else {
            rc = fail("%s: unexpected entry '%s' (a library holds metadata.json and plan.msgpack)", path,
                      name ? name : "?");
        }
    }
    if (rc == 0 && r != ARCHIVE_EOF) rc = fail("%s: not a valid tar archive: %s", path, archive_error_string(a));
    archive_read_free(a);
    if (rc == 0 && (!have_md || !have_plan))
        rc = fail("%s: the library lacks %s", path, have_md ? "plan.msgpack" : "metadata.json");
    if (rc == 0) {
        char *what = xasprintf("%s: metadata.json", path);
        lib->metadata = json_load_text(md.data, md.len, what);
        free(what);
        if (!lib->metadata) rc = -1;
        else if (!json_is_object(lib->metadata)) rc = fail("%s: metadata.json is not an object", path);
    }
    if (rc == 0) {
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        char *what = xasprintf("%s: plan.msgpack", path);
        if (mp_unpack_bounded(plan.data, plan.len, &up, what) != 0)
            rc = -1;
        else if (up.data.type != MSGPACK_OBJECT_MAP)
            rc = fail("%s: not a single msgpack map", what);
        else
            rc = module_from_msgpack(&up.data, &lib->module, what);
        free(what);
        msgpack_unpacked_destroy(&up);
    }
    buf_free(&md);
    buf_free(&plan);
    if (rc == 0) {
        const json_t *t = json_object_get(lib->metadata, "target");
        lib->target = json_is_string(t) ? json_string_value(t) : "cpu";
        lib->path = xstrdup(path);
        return 0;
    }
    json_decref(lib->metadata);
    lib->metadata = NULL;
    return -1;
}

void library_free(struct library *lib)
{
    json_decref(lib->metadata);
    module_free(&lib->module);
    free(lib->path);
    memset(lib, 0, sizeof *lib);
}
