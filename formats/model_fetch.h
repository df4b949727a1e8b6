/* Getting a model directory from a source: a local directory (used in
 * place), a cache entry (local or read-only), or the hub (downloaded into
 * the cache, verified file by file against the hub's listing, checked as a
 * whole, and published atomically). This is the library behind mlc-fetch(1);
 * the tool itself only parses options and writes the record. */
#ifndef MLC_MODEL_FETCH_H
#define MLC_MODEL_FETCH_H

#include <stdbool.h>

#include "common/http.h"
#include "formats/hub.h"
#include "formats/model_dir.h"
#include "formats/weight_cache.h"

struct fetch_options {
    enum cache_policy policy;
    const char *endpoint;        /* hub endpoint (HF_ENDPOINT or the default) */
    struct file_rules rules;     /* --include / --exclude */
    struct http_config http;
    bool verify;                 /* rehash cache entries that have a manifest */
    int hash_threads;
};

enum fetch_origin { FROM_LOCAL, FROM_READONLY_CACHE, FROM_CACHE, FROM_DOWNLOAD };

struct fetch_result {
    struct model_dir dir;        /* path, kind, format, files with sha256 */
    char *revision;              /* as requested ("main" when not pinned); NULL for local */
    char *commit;                /* the commit the files came from, or NULL */
    enum fetch_origin origin;
};

int model_fetch(const struct model_source *src, const struct fetch_options *o,
                struct fetch_result *out);
void fetch_result_free(struct fetch_result *r);

#endif
