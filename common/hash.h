/* Incremental digests through OpenSSL's EVP interface, and hex output. */
#ifndef MLC_HASH_H
#define MLC_HASH_H

#include <stddef.h>

enum hash_kind { HASH_SHA256, HASH_MD5, HASH_SHA1 };

struct hasher {
    void *ctx;               /* EVP_MD_CTX */
    enum hash_kind kind;
};

/* Longest hex digest (sha256) plus NUL. */
#define HASH_HEX_MAX 65

void hasher_init(struct hasher *h, enum hash_kind kind);
void hasher_update(struct hasher *h, const void *data, size_t len);
/* Writes lowercase hex and frees the context. */
void hasher_final_hex(struct hasher *h, char hex[HASH_HEX_MAX]);
void hasher_abort(struct hasher *h);

void hash_hex(enum hash_kind kind, const void *data, size_t len, char hex[HASH_HEX_MAX]);
int hash_file_hex(enum hash_kind kind, const char *path, char hex[HASH_HEX_MAX]);
/* Git's blob id: sha1 over "blob SIZE\0" followed by the bytes. */
int git_blob_id_file(const char *path, char hex[HASH_HEX_MAX]);

#endif
