#include "formats/hub.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"

/* Hub sizes are real file sizes; anything beyond a petabyte is a hostile or
 * broken listing, refused before it reaches size arithmetic. */
#define HUB_MAX_FILE_SIZE (1ULL << 50)
#define HUB_MAX_NAME 4096

/* ---- names ---- */

bool hub_valid_repo_part(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-' || s[n - 1] == '.') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-') return false;
    }
    return !strstr(s, "..");
}

bool hub_valid_revision(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 256 || s[0] == '/' || s[0] == '-' || strstr(s, "..")) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f || c == '\\') return false;
    }
    return true;
}

static bool is_unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

void url_quote(struct buf *out, const char *s, bool keep_slash)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_unreserved(*p) || (keep_slash && *p == '/')) buf_addc(out, (char)*p);
        else buf_printf(out, "%%%02X", *p);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int url_unquote(struct buf *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            buf_addc(out, s[i]);
            continue;
        }
        int a = i + 1 < len ? hexval((unsigned char)s[i + 1]) : -1;
        int b = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
        if (a < 0 || b < 0 || (a == 0 && b == 0)) return -1;
        buf_addc(out, (char)(a * 16 + b));
        i += 2;
    }
    return 0;
}

static char *endpoint_base(const char *endpoint)
{
    size_t n = strlen(endpoint);
    while (n && endpoint[n - 1] == '/') n--;
    return xstrndup(endpoint, n);
}

char *hub_api_url(const char *endpoint, const char *org, const char *name, const char *revision)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    char *base = endpoint_base(endpoint);
    buf_printf(&b, "%s/api/models/", base);
    url_quote(&b, org, false);
    buf_addc(&b, '/');
    url_quote(&b, name, false);
    buf_adds(&b, "/revision/");
    url_quote(&b, revision, false);
    buf_adds(&b, "?blobs=true");
    free(base);
    return buf_detach(&b, NULL);
}

char *hub_resolve_url(const char *endpoint, const char *org, const char *name, const char *commit,
                      const char *file)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    char *base = endpoint_base(endpoint);
    buf_printf(&b, "%s/", base);
    url_quote(&b, org, false);
    buf_addc(&b, '/');
    url_quote(&b, name, false);
    buf_adds(&b, "/resolve/");
    url_quote(&b, commit, false);
    buf_addc(&b, '/');
    url_quote(&b, file, true);
    free(base);
    return buf_detach(&b, NULL);
}

/* ---- sources ---- */

static int set_repo(struct model_source *s, const char *text, const char *spec, size_t len,
                    const char *revision)
{
    char *copy = xstrndup(spec, len);
    char *slash = strchr(copy, '/');
    int rc = 0;
    if (!slash || strchr(slash + 1, '/')) {
        rc = fail("%s: expected ORG/NAME after the prefix, with exactly one '/'", text);
    } else {
        *slash = 0;
        if (!hub_valid_repo_part(copy) || !hub_valid_repo_part(slash + 1))
            rc = fail("%s: '%s/%s' is not a valid repository id (letters, digits, '-', '_', '.'; "
                      "at most 96 characters each)",
                      text, copy, slash + 1);
    }
    if (rc == 0 && revision && !hub_valid_revision(revision))
        rc = fail("%s: '%s' is not a valid revision", text, revision);
    if (rc == 0) {
        s->type = SOURCE_HUB;
        s->org = xstrdup(copy);
        s->name = xstrdup(slash + 1);
        s->revision = revision ? xstrdup(revision) : NULL;
    }
    free(copy);
    return rc;
}

static int parse_hf_scheme(struct model_source *s, const char *text)
{
    const char *spec = text + 5;
    const char *at = strchr(spec, '@');
    if (!at) return set_repo(s, text, spec, strlen(spec), NULL);
    if (!at[1]) return fail("%s: empty revision after '@'", text);
    return set_repo(s, text, spec, (size_t)(at - spec), at + 1);
}

/* The path of a repository page: ORG/NAME, optionally /tree/REVISION. */
static int parse_repo_path(struct model_source *s, const char *text, const char *path)
{
    size_t len = strcspn(path, "?#");
    while (len && path[len - 1] == '/') len--;
    char *p = xstrndup(path, len);
    int rc = 0;
    if (!strncmp(p, "datasets/", 9) || !strncmp(p, "spaces/", 7)) {
        rc = fail("%s: a dataset or space, not a model repository", text);
        free(p);
        return rc;
    }
    char *first = strchr(p, '/');
    char *second = first ? strchr(first + 1, '/') : NULL;
    if (!second) {
        rc = set_repo(s, text, p, strlen(p), NULL);
    } else if (!strncmp(second, "/tree/", 6) && second[6] && !strchr(second + 6, '/')) {
        struct buf rev = BUF_INIT;
        buf_init(&rev);
        const char *r = second + 6;
        if (url_unquote(&rev, r, strlen(r)) != 0)
            rc = fail("%s: malformed %%-escape in the revision", text);
        else
            rc = set_repo(s, text, p, (size_t)(second - p), rev.data);
        buf_free(&rev);
    } else {
        rc = fail("%s: not a model repository URL (expected .../ORG/NAME or .../ORG/NAME/tree/"
                  "REVISION)",
                  text);
    }
    free(p);
    return rc;
}

static int parse_http(struct model_source *s, const char *text, const char *endpoint)
{
    static const char *const hosts[] = {
        "https://huggingface.co/", "https://hf.co/", "https://www.huggingface.co/",
        "http://huggingface.co/", "http://hf.co/", NULL,
    };
    for (size_t i = 0; hosts[i]; i++)
        if (!strncasecmp(text, hosts[i], strlen(hosts[i])))
            return parse_repo_path(s, text, text + strlen(hosts[i]));
    char *base = endpoint ? endpoint_base(endpoint) : NULL;
    size_t n = base ? strlen(base) : 0;
    int rc;
    if (base && n && !strncasecmp(text, base, n) && text[n] == '/')
        rc = parse_repo_path(s, text, text + n + 1);
    else
        rc = fail("%s: not a HuggingFace URL (https://huggingface.co/ORG/NAME, or a URL under "
                  "HF_ENDPOINT)",
                  text);
    free(base);
    return rc;
}

static int parse_file_url(struct model_source *s, const char *text)
{
    const char *p = text + 5; /* after "file:" */
    if (!strncmp(p, "//localhost/", 12)) p += 11;
    else if (!strncmp(p, "///", 3)) p += 2;
    else if (!strncmp(p, "//", 2)) return fail("%s: file URLs name a local path (file:///PATH)", text);
    if (p[0] != '/') return fail("%s: file URLs need an absolute path (file:///PATH)", text);
    struct buf path = BUF_INIT;
    buf_init(&path);
    if (url_unquote(&path, p, strlen(p)) != 0) {
        buf_free(&path);
        return fail("%s: malformed %%-escape", text);
    }
    s->type = SOURCE_LOCAL;
    s->dir = buf_detach(&path, NULL);
    return 0;
}

int source_parse(const char *text, const char *endpoint, struct model_source *out)
{
    memset(out, 0, sizeof *out);
    int rc;
    if (!text[0]) return fail("empty model source");
    if (!strncasecmp(text, "hf://", 5)) {
        rc = parse_hf_scheme(out, text);
    } else if (!strncasecmp(text, "https://", 8) || !strncasecmp(text, "http://", 7)) {
        rc = parse_http(out, text, endpoint);
    } else if (!strncasecmp(text, "file:", 5)) {
        rc = parse_file_url(out, text);
    } else {
        out->type = SOURCE_LOCAL;
        out->dir = xstrdup(text);
        rc = 0;
    }
    if (rc != 0) {
        source_free(out);
        return -1;
    }
    out->text = xstrdup(text);
    return 0;
}

void source_free(struct model_source *s)
{
    free(s->text);
    free(s->dir);
    free(s->org);
    free(s->name);
    free(s->revision);
    memset(s, 0, sizeof *s);
}

/* ---- the revision API's listing ---- */

static bool lower_hex(const char *s, size_t n, char out[HASH_HEX_MAX])
{
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++) {
        int v = hexval((unsigned char)s[i]);
        if (v < 0) return false;
        out[i] = "0123456789abcdef"[v];
    }
    out[n] = 0;
    return true;
}

/* A name fit for a message: control and non-ASCII bytes as '?', shortened. */
static void printable(const char *s, char out[128])
{
    size_t i = 0;
    for (; s[i] && i < 120; i++) out[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? '?' : s[i];
    if (s[i]) out[i++] = '.', out[i++] = '.', out[i++] = '.';
    out[i] = 0;
}

static int entry_fail(const char *what, size_t i, const char *name, const char *why)
{
    char shown[128];
    printable(name ? name : "", shown);
    return fail("%s: siblings[%zu] '%s': %s", what, i, shown, why);
}

static bool component_lengths_ok(const char *name)
{
    for (const char *p = name; *p;) {
        size_t n = strcspn(p, "/");
        if (n > 255) return false;
        p += n;
        if (*p) p++;
    }
    return true;
}

static int parse_sibling(const json_t *sib, size_t i, const char *what, struct hub_file *f)
{
    if (!json_is_object(sib)) return fail("%s: siblings[%zu]: not a JSON object", what, i);
    const json_t *jname = json_object_get(sib, "rfilename");
    if (!json_is_string(jname)) return fail("%s: siblings[%zu]: field 'rfilename' must be a string", what, i);
    const char *name = json_string_value(jname);
    if (strlen(name) != json_string_length(jname))
        return entry_fail(what, i, name, "refusing a file name with a NUL byte");
    if (!path_is_safe_relative(name) || strlen(name) > HUB_MAX_NAME || !component_lengths_ok(name))
        return entry_fail(what, i, name,
                          "refusing a file name that is absolute, has '..', '.' or empty "
                          "components, control characters or backslashes, or is too long: it "
                          "could escape the model directory");
    const json_t *size = json_object_get(sib, "size");
    if (!json_is_integer(size))
        return entry_fail(what, i, name, "no integer 'size' (the listing must come from ?blobs=true)");
    if (json_integer_value(size) < 0 || (uint64_t)json_integer_value(size) > HUB_MAX_FILE_SIZE)
        return entry_fail(what, i, name, "size out of range");
    f->size = (uint64_t)json_integer_value(size);
    const json_t *lfs = json_object_get(sib, "lfs");
    if (lfs && !json_is_null(lfs)) {
        const json_t *sha = json_object_get(lfs, "sha256");
        const json_t *lsize = json_object_get(lfs, "size");
        if (!json_is_object(lfs) || !json_is_string(sha) ||
            !lower_hex(json_string_value(sha), 64, f->sha256))
            return entry_fail(what, i, name, "field 'lfs.sha256' must be 64 hexadecimal digits");
        if (lsize && (!json_is_integer(lsize) || (uint64_t)json_integer_value(lsize) != f->size))
            return entry_fail(what, i, name, "'lfs.size' differs from 'size'");
        f->lfs = true;
    } else {
        const json_t *blob = json_object_get(sib, "blobId");
        if (!json_is_string(blob) || !lower_hex(json_string_value(blob), 40, f->blob_id))
            return entry_fail(what, i, name, "field 'blobId' must be 40 hexadecimal digits");
    }
    f->name = xstrdup(name);
    return 0;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct hub_file *)a)->name, ((const struct hub_file *)b)->name);
}

/* Sorted names: a duplicate sits next to its twin, and a file that is also
 * a directory ("a" and "a/b") directly before some "a/..." entry. */
static int check_clashes(const struct hub_listing *l, const char *what)
{
    for (size_t i = 0; i + 1 < l->nfiles; i++) {
        const char *a = l->files[i].name;
        size_t n = strlen(a);
        char shown[128];
        printable(a, shown);
        if (!strcmp(a, l->files[i + 1].name))
            return fail("%s: refusing a listing that names '%s' twice", what, shown);
        for (size_t j = i + 1; j < l->nfiles && !strncmp(l->files[j].name, a, n); j++)
            if (l->files[j].name[n] == '/')
                return fail("%s: refusing a listing where '%s' is both a file and a directory", what,
                            shown);
    }
    return 0;
}

int hub_listing_parse(const char *text, size_t len, const char *what, struct hub_listing *out)
{
    memset(out, 0, sizeof *out);
    json_t *root = json_load_text(text, len, what);
    if (!root) return -1;
    int rc = 0;
    char commit[HASH_HEX_MAX];
    const json_t *sha = json_object_get(root, "sha");
    const json_t *siblings = json_object_get(root, "siblings");
    if (!json_is_object(root)) rc = fail("%s: not a JSON object", what);
    else if (!json_is_string(sha) || !lower_hex(json_string_value(sha), 40, commit))
        rc = fail("%s: field 'sha' must be a 40-digit commit id", what);
    else if (!json_is_array(siblings)) rc = fail("%s: field 'siblings' must be an array", what);
    if (rc == 0) {
        out->commit = xstrdup(commit);
        size_t n = json_array_size(siblings);
        out->files = xcalloc(n ? n : 1, sizeof *out->files);
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = parse_sibling(json_array_get(siblings, i), i, what, &out->files[i]);
            if (rc == 0) out->nfiles++;
        }
    }
    if (rc == 0) {
        qsort(out->files, out->nfiles, sizeof *out->files, cmp_file);
        rc = check_clashes(out, what);
    }
    json_decref(root);
    if (rc != 0) hub_listing_free(out);
    return rc;
}

const struct hub_file *hub_listing_find(const struct hub_listing *l, const char *name)
{
    struct hub_file key = {.name = (char *)name};
    return bsearch(&key, l->files, l->nfiles, sizeof *l->files, cmp_file);
}

void hub_listing_free(struct hub_listing *l)
{
    for (size_t i = 0; i < l->nfiles; i++) free(l->files[i].name);
    free(l->files);
    free(l->commit);
    memset(l, 0, sizeof *l);
}
