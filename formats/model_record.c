#include "formats/model_record.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"

static void str_or_nil(struct rec_builder *b, const char *key, const char *value)
{
    if (value) rb_str(b, key, value);
    else rb_nil(b, key);
}

void model_record_build(struct rec_builder *b, const char *source, const struct model_dir *d,
                        const char *revision, const char *commit)
{
    rb_init(b, "model");
    rb_str(b, "source", source);
    rb_str(b, "kind", model_kind_name(d->kind));
    rb_str(b, "format", weight_format_name(d->format));
    str_or_nil(b, "revision", revision);
    str_or_nil(b, "commit", commit);
    rb_str(b, "path", d->path);
    msgpack_packer *pk = rb_key(b, "files");
    msgpack_pack_array(pk, (uint32_t)d->nfiles);
    for (size_t i = 0; i < d->nfiles; i++) {
        msgpack_pack_map(pk, 3);
        mp_pack_cstr(pk, "name");
        mp_pack_cstr(pk, d->files[i].name);
        mp_pack_cstr(pk, "size");
        msgpack_pack_uint64(pk, d->files[i].size);
        mp_pack_cstr(pk, "sha256");
        mp_pack_cstr(pk, d->files[i].sha256);
    }
}

/* nil or absent → NULL; a string → a copy; anything else → -1. */
static int opt_str_or_nil(const struct record *r, const char *key, char **out)
{
    const msgpack_object *o = rec_field(r, key);
    *out = NULL;
    if (!o || o->type == MSGPACK_OBJECT_NIL) return 0;
    if (!(*out = mp_strdup(o))) return fail("model record: field '%s' must be a string or nil", key);
    return 0;
}

static int read_file_entry(const msgpack_object *o, size_t i, struct model_file *f)
{
    if (o->type != MSGPACK_OBJECT_MAP) return fail("model record: files[%zu] must be a map", i);
    const msgpack_object *name = map_field(o, "name"), *size = map_field(o, "size"),
                         *sha = map_field(o, "sha256");
    char *n = name ? mp_strdup(name) : NULL;
    if (!n || !path_is_safe_relative(n)) {
        free(n);
        return fail("model record: files[%zu]: field 'name' must be a relative path", i);
    }
    f->name = n;
    if (!size || size->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return fail("model record: files[%zu] (%s): field 'size' must be a non-negative integer", i, n);
    f->size = size->via.u64;
    char *s = sha ? mp_strdup(sha) : NULL;
    bool ok = s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
    if (ok) memcpy(f->sha256, s, 65);
    free(s);
    if (!ok)
        return fail("model record: files[%zu] (%s): field 'sha256' must be 64 lowercase hexadecimal "
                    "digits",
                    i, n);
    return 0;
}

static int read_fields(const struct record *r, struct model_info *m)
{
    char *kind = NULL, *format = NULL;
    const msgpack_object *files;
    if (rec_get_str(r, "source", &m->source) != 0 || rec_get_str(r, "kind", &kind) != 0) {
        free(kind);
        return -1;
    }
    int bad = model_kind_from_name(kind, &m->kind);
    free(kind);
    if (bad) return fail("model record: field 'kind' must be \"hf\" or \"mlc\"");
    if (rec_opt_str(r, "format", &format) < 0) return -1;
    if (format) {
        bad = weight_format_from_name(format, &m->format);
        free(format);
        if (bad) return fail("model record: field 'format' must be \"safetensors\", \"pytorch\", \"gguf\" or \"mlc\"");
        m->has_format = true;
    }
    if (opt_str_or_nil(r, "revision", &m->revision) != 0 || opt_str_or_nil(r, "commit", &m->commit) != 0)
        return -1;
    if (rec_get_str(r, "path", &m->path) != 0) return -1;
    if (m->path[0] != '/') return fail("model record: field 'path' must be an absolute path");
    if (rec_get_array(r, "files", &files) != 0) return -1;
    m->files = xcalloc(files->via.array.size + 1, sizeof *m->files);
    for (uint32_t i = 0; i < files->via.array.size; i++) {
        m->nfiles++;
        if (read_file_entry(&files->via.array.ptr[i], i, &m->files[i]) != 0) return -1;
    }
    return 0;
}

int model_record_read(const struct record *r, struct model_info *out)
{
    memset(out, 0, sizeof *out);
    if (strcmp(r->type, "model")) return fail("not a model record (type '%s')", r->type);
    if (read_fields(r, out) != 0) {
        model_info_free(out);
        return -1;
    }
    return 0;
}

void model_info_free(struct model_info *m)
{
    free(m->source);
    free(m->revision);
    free(m->commit);
    free(m->path);
    for (size_t i = 0; i < m->nfiles; i++) free(m->files[i].name);
    free(m->files);
    memset(m, 0, sizeof *m);
}

char *model_record_source(const struct record *r)
{
    struct model_info m;
    if (model_record_read(r, &m) != 0) return NULL;
    char *out = NULL;
    if (m.has_format && m.format == WEIGHTS_GGUF) {
        for (size_t i = 0; i < m.nfiles && !out; i++) {
            size_t n = strlen(m.files[i].name);
            if (n > 5 && !strcmp(m.files[i].name + n - 5, ".gguf")) out = path_join(m.path, m.files[i].name);
        }
        if (!out) fail("model record: format \"gguf\" but no .gguf file among its files");
    } else {
        out = xstrdup(m.path);
    }
    model_info_free(&m);
    return out;
}
