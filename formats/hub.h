/* The HuggingFace hub, as a client sees it: what users type to name a model,
 * the URLs of the revision API and of file downloads, and the revision API's
 * file listing, which is untrusted input (names become paths on disk). */
#ifndef MLC_HUB_H
#define MLC_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/hash.h"

#define HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define HUB_DEFAULT_REVISION "main"

enum source_type { SOURCE_LOCAL, SOURCE_HUB };

struct model_source {
    enum source_type type;
    char *text;        /* as given */
    char *dir;         /* SOURCE_LOCAL: the directory (file:// URLs decoded) */
    char *org, *name;  /* SOURCE_HUB: the repository id */
    char *revision;    /* SOURCE_HUB: branch, tag or commit if pinned, else NULL */
};

/* Accepts HF://org/name[@revision], https://huggingface.co/org/name
 * [/tree/revision] (hf.co too, and URLs under `endpoint`, the effective
 * HF_ENDPOINT), file:///abs/path and file:/abs/path, and anything else as a
 * local path (whether it exists is checked later). */
int source_parse(const char *text, const char *endpoint, struct model_source *out);
void source_free(struct model_source *s);

/* The parts of a repository id and revisions that are accepted: they become
 * path components of the cache, so nothing that could escape it. */
bool hub_valid_repo_part(const char *s);
bool hub_valid_revision(const char *s);

/* Percent-encoding as Python's urllib.parse.quote: unreserved characters
 * kept, and '/' too when keep_slash. */
void url_quote(struct buf *out, const char *s, bool keep_slash);
/* %XX decoding; -1 on a malformed escape or a decoded NUL. */
int url_unquote(struct buf *out, const char *s, size_t len);

/* {endpoint}/api/models/{org}/{name}/revision/{revision}?blobs=true */
char *hub_api_url(const char *endpoint, const char *org, const char *name, const char *revision);
/* {endpoint}/{org}/{name}/resolve/{commit}/{file} */
char *hub_resolve_url(const char *endpoint, const char *org, const char *name, const char *commit,
                      const char *file);

struct hub_file {
    char *name;
    uint64_t size;
    bool lfs;
    char sha256[HASH_HEX_MAX];  /* LFS files: the content's sha256 */
    char blob_id[HASH_HEX_MAX]; /* other files: git blob id of the content */
};

struct hub_listing {
    char *commit;               /* 40 hex digits */
    struct hub_file *files;     /* sorted by name */
    size_t nfiles;
};

/* Parse the revision API's answer (with ?blobs=true). Refuses, naming the
 * entry: file names that are absolute, contain '..' or empty components,
 * control characters or backslashes, or that clash with another entry (a
 * duplicate, or a file that is also a directory); sizes, digests and the
 * commit id not of the published form. `what` names the answer (its URL)
 * in messages. */
int hub_listing_parse(const char *text, size_t len, const char *what, struct hub_listing *out);
const struct hub_file *hub_listing_find(const struct hub_listing *l, const char *name);
void hub_listing_free(struct hub_listing *l);

#endif
