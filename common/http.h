/* HTTP(S) transfers through libcurl's multi interface.
 *
 * http_download_all() fetches a batch of files, several at once, each into
 * its own new file, digesting the bytes as they arrive (digest_writer.h). A
 * transfer that fails on the way is retried with exponential backoff after
 * connection errors, stalls, 429 and 5xx answers; one that dropped its
 * connection resumes where it stopped with a Range request (and starts over
 * if the server ignores the range). The batch stops at the first permanent
 * failure (4xx, too many retries, a local write error, a server sending more
 * than the expected size).
 *
 * TLS certificates and host names are always verified. A bearer token is
 * sent to the host (and port) of each URL only, never to the hosts it
 * redirects to, and never appears in any message. */
#ifndef MLC_HTTP_H
#define MLC_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/digest_writer.h"
#include "common/progress.h"

struct http_config {
    const char *token;          /* bearer token, or NULL */
    const char *ca_bundle;      /* CA certificates (PEM file), or NULL for the system's */
    int parallel;               /* transfers at once */
    int retries;                /* retries in a row without progress before giving up */
    double retry_delay;         /* seconds before the first retry; doubles each time */
    long connect_timeout;       /* seconds */
    long stall_timeout;         /* seconds without a byte before a transfer is retried */
};

/* Defaults: 8 at once, 5 retries from 1 s, 30 s to connect, 60 s of stall. */
void http_config_init(struct http_config *c);

struct http_download {
    /* in */
    const char *url;
    const char *path;           /* created; must not exist; its directory must */
    const char *name;           /* how messages name the file */
    int64_t size;               /* expected size, or -1 if unknown */
    unsigned digests;           /* DIGEST_* to compute while receiving */
    /* out */
    struct digests got;         /* on success */
    uint64_t received;          /* bytes in the file */
    long status;                /* last HTTP status seen (0: none) */
    int attempts;
    bool failed;                /* this transfer stopped the batch */
};

/* 0 when every file arrived whole (the caller compares the digests); -1
 * with last_error() naming the file that failed (and its `failed` set). The
 * files stay where they are either way. progress may be NULL. */
int http_download_all(const struct http_config *c, struct http_download *d, size_t n,
                      struct progress *progress);

struct http_response {
    long status;
    struct buf body;
    char error_code[64];        /* the X-Error-Code header (HuggingFace), or "" */
    char error_message[256];    /* X-Error-Message, or the body's "error", or "" */
};

/* GET a document into memory (at most max_body bytes), with the same
 * retries. 0 with the final status filled in (any status: the caller judges
 * 4xx); -1 when there was no usable answer. */
int http_get(const struct http_config *c, const char *url, size_t max_body,
             struct http_response *out);
void http_response_free(struct http_response *r);

/* The text of a status: "404 Not Found". */
const char *http_status_text(long status);

#endif
