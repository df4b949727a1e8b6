#include "common/hash.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const EVP_MD *md_for(enum hash_kind kind)
{
    switch (kind) {
    case HASH_MD5: return EVP_md5();
    case HASH_SHA1: return EVP_sha1();
    case HASH_SHA256: break;
    }
    return EVP_sha256();
}

void hasher_init(struct hasher *h, enum hash_kind kind)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, md_for(kind), NULL) != 1) die("OpenSSL: cannot start a digest");
    h->ctx = ctx;
    h->kind = kind;
}

void hasher_update(struct hasher *h, const void *data, size_t len)
{
    if (len && EVP_DigestUpdate(h->ctx, data, len) != 1) die("OpenSSL: digest update failed");
}

void hasher_final_hex(struct hasher *h, char hex[HASH_HEX_MAX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->ctx, md, &n) != 1) die("OpenSSL: digest final failed");
    for (unsigned i = 0; i < n && 2 * i + 2 < HASH_HEX_MAX; i++) sprintf(hex + 2 * i, "%02x", md[i]);
    hex[2 * n] = 0;
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

void hasher_abort(struct hasher *h)
{
    if (h->ctx) EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

void hash_hex(enum hash_kind kind, const void *data, size_t len, char hex[HASH_HEX_MAX])
{
    struct hasher h;
    hasher_init(&h, kind);
    hasher_update(&h, data, len);
    hasher_final_hex(&h, hex);
}

static int hash_fd(struct hasher *h, int fd, const char *path)
{
    char *chunk = xmalloc(1 << 20);
    for (;;) {
        long long n = read_full(fd, chunk, 1 << 20);
        if (n < 0) {
            free(chunk);
            return fail("%s: read error: %s", path, strerror(errno));
        }
        if (n == 0) break;
        hasher_update(h, chunk, (size_t)n);
    }
    free(chunk);
    return 0;
}

/* Digest of a file's bytes, after `blob_header` when asked (git's object
 * format: "blob SIZE" and a NUL). */
static int digest_file(enum hash_kind kind, const char *path, bool blob_header, char hex[HASH_HEX_MAX])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail("%s: %s", path, strerror(errno));
    struct hasher h;
    hasher_init(&h, kind);
    if (blob_header) {
        struct stat st;
        if (fstat(fd, &st) != 0) {
            int e = errno;
            close(fd);
            hasher_abort(&h);
            return fail("%s: %s", path, strerror(e));
        }
        char header[64];
        int n = snprintf(header, sizeof header, "blob %lld", (long long)st.st_size);
        hasher_update(&h, header, (size_t)n + 1); /* includes the NUL */
    }
    int rc = hash_fd(&h, fd, path);
    close(fd);
    if (rc != 0) {
        hasher_abort(&h);
        return -1;
    }
    hasher_final_hex(&h, hex);
    return 0;
}

int hash_file_hex(enum hash_kind kind, const char *path, char hex[HASH_HEX_MAX])
{
    return digest_file(kind, path, false, hex);
}

int git_blob_id_file(const char *path, char hex[HASH_HEX_MAX])
{
    return digest_file(HASH_SHA1, path, true, hex);
}
