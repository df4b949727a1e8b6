#include "formats/weight_cache.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "formats/hub.h"

static const char *const policy_names[] = {"ON", "OFF", "REDO", "READONLY"};

int cache_policy_parse(const char *s, enum cache_policy *out)
{
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(s, policy_names[i])) {
            *out = (enum cache_policy)i;
            return 0;
        }
    return -1;
}

const char *cache_policy_name(enum cache_policy p)
{
    return (unsigned)p < 4 ? policy_names[p] : "?";
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

/* Relative values are taken relative to the working directory, as a Python
 * Path would be, but made absolute so records name the same place from
 * anywhere. */
static char *absolute(const char *path)
{
    if (path[0] == '/') return xstrdup(path);
    char *cwd = getcwd(NULL, 0);
    if (!cwd) die("cannot get the working directory: %s", strerror(errno));
    char *p = path_join(cwd, path);
    free(cwd);
    return p;
}

char *cache_home(void)
{
    const char *v;
    if ((v = env_nonempty("MLC_LLM_HOME"))) return absolute(v);
    if ((v = env_nonempty("XDG_CACHE_HOME"))) {
        char *base = absolute(v), *home = path_join(base, "mlc_llm");
        free(base);
        return home;
    }
    const char *home = env_nonempty("HOME");
    if (!home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw && pw->pw_dir && pw->pw_dir[0] ? pw->pw_dir : NULL;
    }
    if (!home) {
        fail("no cache directory: set MLC_LLM_HOME (or XDG_CACHE_HOME or HOME)");
        return NULL;
    }
    char *base = absolute(home), *dir = path_join(base, ".cache/mlc_llm");
    free(base);
    return dir;
}

char *cache_entry_rel(const char *org, const char *name, const char *revision)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    buf_printf(&b, "hf/%s/%s", org, name);
    if (revision) {
        buf_addc(&b, '@');
        url_quote(&b, revision, false);
    }
    return buf_detach(&b, NULL);
}

char **cache_readonly_bases(size_t *n)
{
    *n = 0;
    const char *v = env_nonempty("MLC_LLM_READONLY_WEIGHT_CACHE");
    if (!v) return NULL;
    char **out = NULL;
    size_t cap = 0;
    for (const char *p = v; *p;) {
        size_t len = strcspn(p, ":");
        if (len) {
            char *part = xstrndup(p, len);
            out = xgrow(out, &cap, *n + 1, sizeof *out);
            out[(*n)++] = absolute(part);
            free(part);
        }
        p += len;
        if (*p) p++;
    }
    return out;
}

void cache_strings_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* ---- manifest ---- */

static json_t *string_array(char **v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(v[i]));
    return a;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

int manifest_write(const char *entry_dir, const struct manifest *m)
{
    json_t *root = json_object();
    json_object_set_new(root, "source", str_or_null(m->source));
    json_object_set_new(root, "revision", str_or_null(m->revision));
    json_object_set_new(root, "commit", str_or_null(m->commit));
    json_object_set_new(root, "include", string_array(m->include, m->ninclude));
    json_object_set_new(root, "exclude", string_array(m->exclude, m->nexclude));
    json_t *files = json_array();
    for (size_t i = 0; i < m->nfiles; i++) {
        json_t *f = json_object();
        json_object_set_new(f, "name", json_string(m->files[i].name));
        json_object_set_new(f, "size", json_integer((json_int_t)m->files[i].size));
        json_object_set_new(f, "sha256", json_string(m->files[i].sha256));
        json_array_append_new(files, f);
    }
    json_object_set_new(root, "files", files);
    char *path = path_join(entry_dir, CACHE_MANIFEST);
    struct pyjson_style style = pyjson_indent(2);
    int rc = pyjson_write_file(path, root, &style);
    free(path);
    json_decref(root);
    return rc;
}

static int read_strings(const json_t *root, const char *key, const char *file, char ***out, size_t *n)
{
    const json_t *a = json_object_get(root, key);
    if (!json_is_array(a)) return fail("%s: field '%s' must be an array", file, key);
    *out = xcalloc(json_array_size(a) + 1, sizeof **out);
    for (size_t i = 0; i < json_array_size(a); i++) {
        if (!json_is_string(json_array_get(a, i)))
            return fail("%s: %s[%zu] must be a string", file, key, i);
        (*out)[(*n)++] = xstrdup(json_string_value(json_array_get(a, i)));
    }
    return 0;
}

static int read_file_entry(const json_t *f, size_t i, const char *file, struct model_file *out)
{
    const json_t *name = json_object_get(f, "name");
    const json_t *size = json_object_get(f, "size");
    const json_t *sha = json_object_get(f, "sha256");
    if (!json_is_string(name) || !path_is_safe_relative(json_string_value(name)))
        return fail("%s: files[%zu]: field 'name' must be a relative path", file, i);
    if (!json_is_integer(size) || json_integer_value(size) < 0)
        return fail("%s: files[%zu]: field 'size' must be a non-negative integer", file, i);
    if (!json_is_string(sha) || strlen(json_string_value(sha)) != 64 ||
        strspn(json_string_value(sha), "0123456789abcdef") != 64)
        return fail("%s: files[%zu]: field 'sha256' must be 64 lowercase hexadecimal digits", file, i);
    out->name = xstrdup(json_string_value(name));
    out->size = (uint64_t)json_integer_value(size);
    memcpy(out->sha256, json_string_value(sha), 65);
    return 0;
}

static int opt_string(const json_t *root, const char *key, const char *file, char **out)
{
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return fail("%s: field '%s' must be a string", file, key);
    *out = xstrdup(json_string_value(v));
    return 0;
}

int manifest_read(const char *entry_dir, struct manifest *m)
{
    memset(m, 0, sizeof *m);
    char *path = path_join(entry_dir, CACHE_MANIFEST);
    if (!path_exists(path)) {
        free(path);
        return 1;
    }
    json_t *root = json_load_path(path);
    int rc = root ? 0 : -1;
    if (rc == 0 && !json_is_object(root)) rc = fail("%s: not a JSON object", path);
    if (rc == 0)
        rc = opt_string(root, "source", path, &m->source) || opt_string(root, "revision", path, &m->revision) ||
                     opt_string(root, "commit", path, &m->commit) ||
                     read_strings(root, "include", path, &m->include, &m->ninclude) ||
                     read_strings(root, "exclude", path, &m->exclude, &m->nexclude)
                 ? -1
                 : 0;
    const json_t *files = rc == 0 ? json_object_get(root, "files") : NULL;
    if (rc == 0 && !json_is_array(files)) rc = fail("%s: field 'files' must be an array", path);
    if (rc == 0) {
        m->files = xcalloc(json_array_size(files) + 1, sizeof *m->files);
        for (size_t i = 0; i < json_array_size(files) && rc == 0; i++) {
            rc = read_file_entry(json_array_get(files, i), i, path, &m->files[i]);
            if (rc == 0) m->nfiles++;
            if (rc == 0 && i > 0 && strcmp(m->files[i - 1].name, m->files[i].name) >= 0)
                rc = fail("%s: files are not sorted by name", path);
        }
    }
    json_decref(root);
    free(path);
    if (rc != 0) manifest_free(m);
    return rc;
}

void manifest_free(struct manifest *m)
{
    free(m->source);
    free(m->revision);
    free(m->commit);
    cache_strings_free(m->include, m->ninclude);
    cache_strings_free(m->exclude, m->nexclude);
    for (size_t i = 0; i < m->nfiles; i++) free(m->files[i].name);
    free(m->files);
    memset(m, 0, sizeof *m);
}
