#include "common/atomic.h"
#include "common/buf.h"
#include "common/cleanup.h"
#include "common/depfile.h"
#include "common/err.h"
#include "common/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static mode_t current_umask(void)
{
    static mode_t mask = (mode_t)-1;
    if (mask == (mode_t)-1) {
        mask = umask(022);
        umask(mask);
    }
    return mask;
}

static char *temp_name_for(const char *path)
{
    char *dir = path_dirname(path);
    const char *base = path_basename(path);
    char *tmp = xasprintf("%s/.%s.tmp.%ld.XXXXXX", dir, base, (long)getpid());
    free(dir);
    return tmp;
}

static int fsync_dir_of(const char *path)
{
    char *dir = path_dirname(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int atomic_file_begin(struct atomic_file *f, const char *path)
{
    /* A device or a pipe (/dev/null, /dev/stdout, a FIFO) is written in
     * place: renaming a file over it would replace the device itself. */
    struct stat st;
    f->unchanged = false;
    f->replace = false;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        f->tmp = NULL;
        f->final = NULL;
        f->fd = open(path, O_WRONLY | O_CLOEXEC);
        if (f->fd < 0) return fail("%s: cannot open: %s", path, strerror(errno));
        f->final = xstrdup(path);
        return 0;
    }
    f->final = xstrdup(path);
    f->tmp = temp_name_for(path);
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    if (f->fd < 0) {
        int e = errno;
        fail("%s: cannot create temporary file: %s", path, strerror(e));
        free(f->final);
        free(f->tmp);
        f->final = f->tmp = NULL;
        return -1;
    }
    cleanup_register(f->tmp);
    fchmod(f->fd, 0666 & ~current_umask());
    return 0;
}

/* Does the file at `path` hold exactly the bytes of the open file fd? */
static bool same_content(int fd, const char *path)
{
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(path, &b) != 0 || !S_ISREG(b.st_mode) || a.st_size != b.st_size) return false;
    int other = open(path, O_RDONLY | O_CLOEXEC);
    if (other < 0) return false;
    enum { CHUNK = 1 << 16 };
    char *x = xmalloc(2 * CHUNK), *y = x + CHUNK;
    bool same = true;
    for (off_t at = 0; same && at < a.st_size;) {
        ssize_t n = pread(fd, x, CHUNK, at), m = n > 0 ? pread(other, y, (size_t)n, at) : -1;
        same = n > 0 && m == n && !memcmp(x, y, (size_t)n);
        at += n > 0 ? n : 0;
    }
    free(x);
    close(other);
    return same;
}

int atomic_file_commit(struct atomic_file *f)
{
    int rc = 0;
    if (!f->tmp) { /* written in place */
        if (close(f->fd) != 0) rc = fail("%s: close: %s", f->final, strerror(errno));
        f->fd = -1;
        free(f->final);
        f->final = NULL;
        return rc;
    }
    /* the same bytes as the file already there: keep that one, and its
     * mtime, so that make and ninja see nothing changed downstream */
    bool unchanged = f->unchanged;
    if (f->fd >= 0) { /* (atomic_files_commit closed it already) */
        unchanged = !f->replace && same_content(f->fd, f->final);
        if (!unchanged && fsync(f->fd) != 0) rc = fail("%s: fsync: %s", f->tmp, strerror(errno));
        if (close(f->fd) != 0 && rc == 0) rc = fail("%s: close: %s", f->tmp, strerror(errno));
    }
    f->fd = -1;
    if (!unchanged && rc == 0 && rename(f->tmp, f->final) != 0)
        rc = fail("%s: cannot rename into place: %s", f->final, strerror(errno));
    if (unchanged || rc != 0) unlink(f->tmp);
    else fsync_dir_of(f->final);
    cleanup_unregister(f->tmp);
    free(f->tmp);
    free(f->final);
    f->tmp = f->final = NULL;
    return rc;
}

void atomic_file_abort(struct atomic_file *f)
{
    if (!f->tmp) { /* nothing begun, or written in place */
        if (f->final && f->fd >= 0) close(f->fd);
        free(f->final);
        f->final = NULL;
        f->fd = -1;
        return;
    }
    if (f->fd >= 0) close(f->fd);
    unlink(f->tmp);
    cleanup_unregister(f->tmp);
    free(f->tmp);
    free(f->final);
    f->tmp = f->final = NULL;
    f->fd = -1;
}

int atomic_write_file(const char *path, const void *data, size_t len)
{
    struct atomic_file f;
    if (atomic_file_begin(&f, path) != 0) return -1;
    if (write_all(f.fd, data, len) != 0) {
        int e = errno;
        atomic_file_abort(&f);
        return fail("%s: write error: %s", path, strerror(e));
    }
    return atomic_file_commit(&f);
}

int atomic_dir_begin(struct atomic_dir *d, const char *path)
{
    d->final = xstrdup(path);
    d->tmp = temp_name_for(path);
    if (!mkdtemp(d->tmp)) {
        int e = errno;
        fail("%s: cannot create temporary directory: %s", path, strerror(e));
        free(d->final);
        free(d->tmp);
        d->final = d->tmp = NULL;
        return -1;
    }
    cleanup_register(d->tmp);
    chmod(d->tmp, 0777 & ~current_umask());
    return 0;
}

/* Fill directory dst_fd with the tree below src_fd: hard links to regular
 * files, the same symlinks, subdirectories recreated. */
static int link_tree(int src_fd, int dst_fd, const char *src_path)
{
    int dup_fd = dup(src_fd);
    DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!dir) {
        if (dup_fd >= 0) close(dup_fd);
        return fail("%s: cannot read directory: %s", src_path, strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if (fstatat(src_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = fail("%s/%s: %s", src_path, e->d_name, strerror(errno));
        } else if (S_ISDIR(st.st_mode)) {
            int a = -1, b = -1;
            if (mkdirat(dst_fd, e->d_name, st.st_mode & 07777) != 0 ||
                (a = openat(src_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
                (b = openat(dst_fd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                rc = fail("%s/%s: cannot copy directory: %s", src_path, e->d_name, strerror(errno));
            } else {
                char *sub = path_join(src_path, e->d_name);
                rc = link_tree(a, b, sub);
                free(sub);
            }
            if (a >= 0) close(a);
            if (b >= 0) close(b);
        } else if (S_ISLNK(st.st_mode)) {
            char target[4096];
            ssize_t n = readlinkat(src_fd, e->d_name, target, sizeof target - 1);
            if (n < 0 || (target[n] = 0, symlinkat(target, dst_fd, e->d_name) != 0))
                rc = fail("%s/%s: cannot copy symlink: %s", src_path, e->d_name, strerror(errno));
        } else if (linkat(src_fd, e->d_name, dst_fd, e->d_name, 0) != 0) {
            rc = fail("%s/%s: cannot link: %s", src_path, e->d_name, strerror(errno));
        }
    }
    closedir(dir);
    return rc;
}

int atomic_dir_begin_update(struct atomic_dir *d, const char *path)
{
    int src = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (src < 0) return fail("%s: %s", path, strerror(errno));
    if (atomic_dir_begin(d, path) != 0) {
        close(src);
        return -1;
    }
    int dst = open(d->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = dst >= 0 ? link_tree(src, dst, path) : fail("%s: %s", d->tmp, strerror(errno));
    struct stat st;
    if (rc == 0 && fstat(src, &st) == 0) fchmod(dst, st.st_mode & 07777);
    if (dst >= 0) close(dst);
    close(src);
    if (rc != 0) atomic_dir_abort(d);
    return rc;
}

int atomic_unshare_file(const char *path)
{
    /* a new file written beside it, then renamed over the link even though
     * its bytes are the same: the point is a new inode */
    struct atomic_file out;
    if (atomic_file_begin(&out, path) != 0) return -1;
    out.replace = true;
    if (atomic_file_fill_from(&out, path) != 0) {
        atomic_file_abort(&out);
        return -1;
    }
    return atomic_file_commit(&out);
}

/* fsync every regular file and directory below fd (depth first). */
static void sync_tree(int fd)
{
    int dup_fd = dup(fd);
    if (dup_fd < 0) return;
    DIR *dir = fdopendir(dup_fd);
    if (!dir) {
        close(dup_fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        int child = openat(fd, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (child < 0) continue;
        struct stat st;
        if (fstat(child, &st) == 0) {
            if (S_ISDIR(st.st_mode)) sync_tree(child);
            else if (S_ISREG(st.st_mode)) fsync(child);
        }
        close(child);
    }
    closedir(dir);
    fsync(fd);
}

int atomic_dir_commit(struct atomic_dir *d, bool replace)
{
    int fd = open(d->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        sync_tree(fd);
        close(fd);
    }
    int rc = 0;
    if (rename(d->tmp, d->final) == 0) {
        /* destination did not exist, or was an empty directory */
    } else if ((errno == ENOTEMPTY || errno == EEXIST) && replace) {
        if (renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->final, RENAME_EXCHANGE) == 0) {
            remove_tree(d->tmp); /* now holds the old tree */
        } else {
            /* No RENAME_EXCHANGE on this file system: move the old tree
             * aside first. A crash between the two renames leaves the
             * new tree under its temporary name, never a mixture. */
            char *dir = path_dirname(d->final);
            char *old = xasprintf("%s/.%s.tmp.%ld.old", dir, path_basename(d->final),
                                  (long)getpid());
            free(dir);
            if (rename(d->final, old) != 0 || rename(d->tmp, d->final) != 0)
                rc = fail("%s: cannot replace directory: %s", d->final, strerror(errno));
            else
                remove_tree(old);
            free(old);
        }
    } else if (errno == ENOTEMPTY || errno == EEXIST) {
        rc = fail("%s: already exists", d->final);
    } else {
        rc = fail("%s: cannot rename into place: %s", d->final, strerror(errno));
    }
    if (rc != 0) remove_tree(d->tmp);
    else fsync_dir_of(d->final);
    cleanup_unregister(d->tmp);
    free(d->tmp);
    free(d->final);
    d->tmp = d->final = NULL;
    return rc;
}

void atomic_dir_abort(struct atomic_dir *d)
{
    if (!d->tmp) return;
    remove_tree(d->tmp);
    cleanup_unregister(d->tmp);
    free(d->tmp);
    free(d->final);
    d->tmp = d->final = NULL;
}

/* ".NAME.tmp.PID.XXXXXX" → PID, or 0 if the name is not one of ours. */
static long temp_owner(const char *name)
{
    if (name[0] != '.') return 0;
    const char *t = strstr(name, ".tmp.");
    if (!t) return 0;
    char *end;
    long pid = strtol(t + 5, &end, 10);
    if (pid <= 0 || *end != '.') return 0;
    return pid;
}

int atomic_clean_stale(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = temp_owner(e->d_name);
        if (!pid) continue;
        if (pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            char *p = path_join(dir, e->d_name);
            if (remove_tree(p) == 0) removed++;
            free(p);
        }
    }
    closedir(d);
    return removed;
}

int atomic_file_fill_from(struct atomic_file *f, const char *src)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return fail("%s: %s", src, strerror(errno));
    deps_note(src);
    char *chunk = xmalloc(1 << 20);
    int rc = 0;
    for (;;) {
        long long n = read_full(in, chunk, 1 << 20);
        if (n < 0) {
            rc = fail("%s: read error: %s", src, strerror(errno));
            break;
        }
        if (n == 0) break;
        if (write_all(f->fd, chunk, (size_t)n) != 0) {
            rc = fail("%s: write error: %s", f->tmp ? f->tmp : f->final, strerror(errno));
            break;
        }
    }
    free(chunk);
    close(in);
    return rc;
}

int copy_file(const char *src, const char *dst)
{
    struct atomic_file out;
    if (atomic_file_begin(&out, dst) != 0) return -1;
    if (atomic_file_fill_from(&out, src) != 0) {
        atomic_file_abort(&out);
        return -1;
    }
    return atomic_file_commit(&out);
}

int atomic_files_commit(struct atomic_file *f, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!f[i].tmp) continue; /* written in place */
        f[i].unchanged = !f[i].replace && same_content(f[i].fd, f[i].final);
        if (!f[i].unchanged && fsync(f[i].fd) != 0) rc = fail("%s: fsync: %s", f[i].tmp, strerror(errno));
        else if (close(f[i].fd) != 0) rc = fail("%s: close: %s", f[i].tmp, strerror(errno));
        else f[i].fd = -1;
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) atomic_file_abort(&f[i]);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (rc == 0 && atomic_file_commit(&f[i]) != 0) rc = -1;
        else if (rc != 0) atomic_file_abort(&f[i]);
    }
    return rc;
}
