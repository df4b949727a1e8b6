/* Small file-system helpers shared by every tool. All return -1 and set
 * last_error() (naming the path) on failure. */
#ifndef MLC_FSUTIL_H
#define MLC_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Read a whole file (up to max_bytes; 0 = no limit) into out. */
int read_file(const char *path, struct buf *out, size_t max_bytes);
/* Write all bytes to fd, retrying short writes and EINTR. */
int write_all(int fd, const void *data, size_t len);
/* Read up to len bytes, retrying EINTR; returns bytes read (short only at
 * EOF) or -1. */
long long read_full(int fd, void *data, size_t len);

bool path_exists(const char *path);
bool is_dir(const char *path);
/* mkdir -p */
int make_dirs(const char *path, unsigned mode);
/* rm -rf; missing paths are not an error. Does not follow symlinks. */
int remove_tree(const char *path);

/* "a" + "/" + "b" (b absolute → b). Caller frees. */
char *path_join(const char *a, const char *b);
/* Directory part of path ("." if none). Caller frees. */
char *path_dirname(const char *path);
const char *path_basename(const char *path);
/* True if a relative path stays inside its directory: not absolute, no
 * ".." component, no empty component, no backslash or NUL. */
bool path_is_safe_relative(const char *rel);

#endif
