/* MLC-LLM's weight cache: where downloaded models live, the read-only
 * caches searched before it, the download policy, and the manifest each of
 * our entries carries.
 *
 *   home:      $MLC_LLM_HOME, else $XDG_CACHE_HOME/mlc_llm, else ~/.cache/mlc_llm
 *   entry:     HOME/model_weights/hf/ORG/NAME          (revision not pinned)
 *              HOME/model_weights/hf/ORG/NAME@REVISION (pinned; the revision
 *                                                       %-encoded, so '/' stays
 *                                                       inside one component)
 *   read-only: BASE/hf/ORG/NAME[@REVISION] for each BASE in the colon-separated
 *              $MLC_LLM_READONLY_WEIGHT_CACHE, searched first. */
#ifndef MLC_WEIGHT_CACHE_H
#define MLC_WEIGHT_CACHE_H

#include <stdbool.h>
#include <stddef.h>

#include "formats/model_dir.h"

enum cache_policy {
    POLICY_ON,       /* use an entry if there is one, download on a miss */
    POLICY_OFF,      /* never touch the network; a miss is an error */
    POLICY_REDO,     /* download again, replacing the entry */
    POLICY_READONLY, /* search the caches only, never write them */
};

/* "ON", "OFF", "REDO", "READONLY" (any case); -1 otherwise. */
int cache_policy_parse(const char *s, enum cache_policy *out);
const char *cache_policy_name(enum cache_policy p);

/* The writable home (not created); NULL with last_error() set when no
 * variable gives one. */
char *cache_home(void);
/* "hf/ORG/NAME" or "hf/ORG/NAME@REVISION" (REVISION %-encoded). */
char *cache_entry_rel(const char *org, const char *name, const char *revision);
/* The bases of $MLC_LLM_READONLY_WEIGHT_CACHE, empty parts skipped. */
char **cache_readonly_bases(size_t *n);
void cache_strings_free(char **v, size_t n);

/* The manifest: what was fetched, from where, with which --include and
 * --exclude, and every file's size and sha256, so that a cache hit needs no
 * rehashing. Written into the entry before it is published. */
#define CACHE_MANIFEST ".mlc-fetch.json"

struct manifest {
    char *source, *revision, *commit;
    char **include, **exclude;
    size_t ninclude, nexclude;
    struct model_file *files;    /* sorted by name */
    size_t nfiles;
};

int manifest_write(const char *entry_dir, const struct manifest *m);
/* 0: read; 1: the entry has no manifest (made by another tool); -1: error. */
int manifest_read(const char *entry_dir, struct manifest *m);
void manifest_free(struct manifest *m);

#endif
