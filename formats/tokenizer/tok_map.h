/* Hash maps used by the tokenizer: byte string -> int32 (vocabularies,
 * added tokens) and uint64 -> uint64 (BPE merge pairs). Open addressing,
 * power-of-two tables, keys copied into the map. */
#ifndef MLC_TOK_MAP_H
#define MLC_TOK_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct strmap_slot {
    uint64_t hash;       /* 0: empty */
    uint32_t off;        /* key bytes in keys.data (keys longer than inl) */
    uint32_t len;
    int32_t value;
    char inl[12];        /* short keys live here: one cache line per probe */
};

struct strmap {
    struct strmap_slot *slots;
    size_t mask, count;
    struct buf keys;
};

void strmap_init(struct strmap *m, size_t expected);
void strmap_free(struct strmap *m);
/* Insert or overwrite; returns true if the key was new. */
bool strmap_put(struct strmap *m, const char *key, size_t len, int32_t value);
bool strmap_put_hashed(struct strmap *m, const char *key, size_t len, uint64_t hash, int32_t value);
/* Value for key, or -1. */
int32_t strmap_get(const struct strmap *m, const char *key, size_t len);
/* The same with the key's tok_hash_bytes() given, and a prefetch of the
 * slot a lookup of that hash will read first: bulk loaders hash a batch,
 * prefetch it, then look it up, and so wait for memory once per batch. */
int32_t strmap_get_hashed(const struct strmap *m, const char *key, size_t len, uint64_t hash);
void strmap_prefetch(const struct strmap *m, uint64_t hash);

struct u64map_slot {
    uint64_t key;
    uint64_t value;
};

struct u64map {
    struct u64map_slot *slots;   /* key UINT64_MAX: empty */
    size_t mask, count;
};

void u64map_init(struct u64map *m, size_t expected);
void u64map_free(struct u64map *m);
/* Insert if absent (keeps the first value); returns true if inserted. */
bool u64map_put_new(struct u64map *m, uint64_t key, uint64_t value);
/* Insert or overwrite. */
void u64map_put(struct u64map *m, uint64_t key, uint64_t value);
void u64map_prefetch(const struct u64map *m, uint64_t key);
/* true and *value if present. key must not be UINT64_MAX. */
bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *value);

uint64_t tok_hash_bytes(const void *data, size_t len);

#endif
