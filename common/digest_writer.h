/* Write a byte stream to a file while digesting it on a second thread.
 *
 * A download is verified by the digests of the bytes as they arrive, not by
 * reading the file again afterwards. Hashing sha256 costs about as much CPU
 * as receiving and writing, so doing it on the receiving thread would halve
 * the transfer rate; here the receiving thread only copies into 1 MiB
 * chunks and writes them, and a hashing thread digests the chunks in order.
 * A stream that fits in one chunk is digested inline, without a thread. */
#ifndef MLC_DIGEST_WRITER_H
#define MLC_DIGEST_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "hash.h"

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

/* fd is the caller's, open for writing at offset 0. git_size is the size
 * the git blob header states (the expected size: a file of another size
 * fails its size check anyway). */
struct digest_writer *digest_writer_new(int fd, unsigned which, uint64_t git_size);
/* Append bytes. -1 with last_error() set on a write error. */
int digest_writer_add(struct digest_writer *w, const void *data, size_t len);
/* Bytes accepted so far (written or buffered). */
uint64_t digest_writer_offset(const struct digest_writer *w);
/* Write what is buffered to the file now (the digests are unaffected), so
 * that the bytes of a transfer that stopped can be looked at. */
int digest_writer_flush(struct digest_writer *w);
/* Throw away everything: truncate the file and start the digests afresh
 * (when a server ignores a resume request and sends the whole file). */
int digest_writer_restart(struct digest_writer *w);
/* Write what is buffered, finish the digests and free the writer (also on
 * failure). The caller closes fd. */
int digest_writer_finish(struct digest_writer *w, struct digests *out);
/* Abandon: stop the thread and free. */
void digest_writer_free(struct digest_writer *w);

#endif
