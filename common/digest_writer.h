/* Write a byte stream to a file while digesting it on a second thread.
 *
 * A download is verified by digests of the bytes it wrote, and hashing
 * sha256 costs about as much CPU as receiving and writing: done on the
 * receiving thread it would halve the transfer rate. Here the receiving
 * thread only writes, exactly as a plain download would, and a hashing
 * thread follows behind it, reading the new bytes back from the page cache
 * (where they still are) with pread. The receiver never waits for the
 * hasher; finishing waits for the hasher to catch up. Streams shorter than
 * a chunk are digested at the end, without a thread. */
#ifndef MLC_DIGEST_WRITER_H
#define MLC_DIGEST_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

enum {
    DIGEST_SHA256 = 1 << 0,
    DIGEST_MD5 = 1 << 1,
    DIGEST_GIT_BLOB = 1 << 2,  /* sha1 over "blob SIZE\0" + bytes */
};

struct digests {
    char sha256[HASH_HEX_MAX];
    char md5[HASH_HEX_MAX];
    char git_blob[HASH_HEX_MAX];
};

struct digest_writer;

/* fd is the caller's, open for reading and writing, empty. git_size is the
 * size the git blob header states (the expected size: a file of another
 * size fails its size check anyway). */
struct digest_writer *digest_writer_new(int fd, unsigned which, uint64_t git_size);
/* Append bytes. -1 with last_error() set on a write error. */
int digest_writer_add(struct digest_writer *w, const void *data, size_t len);
/* Bytes written so far. */
uint64_t digest_writer_offset(const struct digest_writer *w);
/* Throw away everything: truncate the file and start the digests afresh
 * (when a server ignores a resume request and sends the whole file). */
int digest_writer_restart(struct digest_writer *w);
/* Finish the digests and free the writer (also on failure). The caller
 * closes fd. */
int digest_writer_finish(struct digest_writer *w, struct digests *out);
/* Abandon: stop the thread and free. */
void digest_writer_free(struct digest_writer *w);

#endif
