/* Atomic publishing of files and directories.
 *
 * Everything a stage writes goes under a temporary name in the destination's
 * own directory (".NAME.tmp.PID.XXXXXX", so rename(2) never crosses file
 * systems), is fsync'ed, and is renamed into place only when complete. A stage
 * killed at any moment therefore leaves either the old state or the new one;
 * temporaries of a killed run are removed by atomic_clean_stale() on a later
 * run (the PID in the name tells whether their writer is still alive). */
#ifndef MLC_ATOMIC_H
#define MLC_ATOMIC_H

#include <stdbool.h>
#include <stddef.h>

struct atomic_file {
    char *final;   /* destination path */
    char *tmp;     /* temporary path beside it */
    int fd;        /* open for writing */
    bool unchanged;/* (commit: the bytes equal the file already there) */
    bool replace;  /* commit renames even over the same bytes (to break a hard link) */
};

int atomic_file_begin(struct atomic_file *f, const char *path);
/* fsync, rename over the destination, fsync the directory. A destination
 * that already holds exactly these bytes is left alone, mtime and all, so
 * that a stage run again on the same inputs changes nothing for make. */
int atomic_file_commit(struct atomic_file *f);
void atomic_file_abort(struct atomic_file *f);
/* Whole-buffer convenience. */
int atomic_write_file(const char *path, const void *data, size_t len);
/* Copy the contents of the file src into f (begun, not yet committed). */
int atomic_file_fill_from(struct atomic_file *f, const char *src);
/* Publish n begun files as one unit: every one is synced and closed before
 * the first is renamed, so a write error (a full disk) publishes none of
 * them; the renames, in order, need no space. All are finished or aborted
 * on return. */
int atomic_files_commit(struct atomic_file *f, size_t n);

struct atomic_dir {
    char *final;
    char *tmp;
};

/* Create an empty temporary directory beside `path`. */
int atomic_dir_begin(struct atomic_dir *d, const char *path);
/* Begin replacing the existing directory `path`: the temporary starts as a
 * copy of it made of hard links (files are shared, not copied), so a
 * change to a few files of a large tree costs only those files. A file must
 * be unshared (atomic_unshare_file) before it is modified in place; new
 * files and renames need nothing. Commit with replace == true. */
int atomic_dir_begin_update(struct atomic_dir *d, const char *path);
/* Give a hard-linked file of such a temporary tree its own copy of the
 * bytes, so that writing to it leaves the original alone. */
int atomic_unshare_file(const char *path);
/* fsync the tree and rename it into place. If the destination exists:
 * replace == true swaps it atomically (RENAME_EXCHANGE) and removes the old
 * tree; replace == false fails. */
int atomic_dir_commit(struct atomic_dir *d, bool replace);
void atomic_dir_abort(struct atomic_dir *d);

/* Copy a regular file (to a temporary name beside dst, then renamed). */
int copy_file(const char *src, const char *dst);

/* Remove temporaries in `dir` left by writers that no longer run. Returns
 * how many were removed. */
int atomic_clean_stale(const char *dir);

#endif
