#include "formats/tokenizer/tok_map.h"

#include <stdlib.h>
#include <string.h>

/* 64-bit FNV-1a over 8-byte words, finished with a strong mix: quick for
 * the short keys of vocabularies and good enough for open addressing. */
uint64_t tok_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ (len * 0x9E3779B97F4A7C15ULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = (h ^ w) * 0x100000001b3ULL;
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ULL;
    h ^= h >> 32;
    return h ? h : 1;
}

static size_t table_size(size_t expected)
{
    size_t n = 16;
    while (n < expected * 2) n *= 2;
    return n;
}

static inline const char *slot_key(const struct strmap *m, const struct strmap_slot *s)
{
    return s->len <= sizeof s->inl ? s->inl : m->keys.data + s->off;
}

void strmap_init(struct strmap *m, size_t expected)
{
    size_t n = table_size(expected);
    m->slots = xcalloc(n, sizeof *m->slots);
    m->mask = n - 1;
    m->count = 0;
    buf_init(&m->keys);
}

void strmap_free(struct strmap *m)
{
    free(m->slots);
    buf_free(&m->keys);
    memset(m, 0, sizeof *m);
}

static void strmap_rehash(struct strmap *m)
{
    size_t n = (m->mask + 1) * 2;
    struct strmap_slot *old = m->slots;
    size_t oldn = m->mask + 1;
    m->slots = xcalloc(n, sizeof *m->slots);
    m->mask = n - 1;
    for (size_t i = 0; i < oldn; i++) {
        if (!old[i].hash) continue;
        size_t j = old[i].hash & m->mask;
        while (m->slots[j].hash) j = (j + 1) & m->mask;
        m->slots[j] = old[i];
    }
    free(old);
}

bool strmap_put(struct strmap *m, const char *key, size_t len, int32_t value)
{
    return strmap_put_hashed(m, key, len, tok_hash_bytes(key, len), value);
}

bool strmap_put_hashed(struct strmap *m, const char *key, size_t len, uint64_t h, int32_t value)
{
    if ((m->count + 1) * 4 > (m->mask + 1) * 3) strmap_rehash(m);
    size_t j = h & m->mask;
    while (m->slots[j].hash) {
        struct strmap_slot *s = &m->slots[j];
        if (s->hash == h && s->len == len && !memcmp(slot_key(m, s), key, len)) {
            s->value = value;
            return false;
        }
        j = (j + 1) & m->mask;
    }
    if (len > UINT32_MAX || m->keys.len > UINT32_MAX - len) die("token map too large");
    struct strmap_slot *s = &m->slots[j];
    s->hash = h;
    s->len = (uint32_t)len;
    s->value = value;
    if (len <= sizeof s->inl) {
        memcpy(s->inl, key, len);
        s->off = 0;
    } else {
        s->off = (uint32_t)m->keys.len;
        buf_add(&m->keys, key, len);
    }
    m->count++;
    return true;
}

int32_t strmap_get(const struct strmap *m, const char *key, size_t len)
{
    return strmap_get_hashed(m, key, len, tok_hash_bytes(key, len));
}

void strmap_prefetch(const struct strmap *m, uint64_t hash)
{
    if (m->slots) __builtin_prefetch(&m->slots[hash & m->mask]);
}

int32_t strmap_get_hashed(const struct strmap *m, const char *key, size_t len, uint64_t h)
{
    if (!m->slots) return -1;
    size_t j = h & m->mask;
    while (m->slots[j].hash) {
        const struct strmap_slot *s = &m->slots[j];
        if (s->hash == h && s->len == len && !memcmp(slot_key(m, s), key, len)) return s->value;
        j = (j + 1) & m->mask;
    }
    return -1;
}

static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

void u64map_init(struct u64map *m, size_t expected)
{
    size_t n = table_size(expected);
    m->slots = xmalloc(n * sizeof *m->slots);
    memset(m->slots, 0xFF, n * sizeof *m->slots);
    m->mask = n - 1;
    m->count = 0;
}

void u64map_free(struct u64map *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static void u64map_rehash(struct u64map *m)
{
    struct u64map_slot *old = m->slots;
    size_t oldn = m->mask + 1;
    u64map_init(m, oldn);
    for (size_t i = 0; i < oldn; i++) {
        if (old[i].key == UINT64_MAX) continue;
        size_t j = mix64(old[i].key) & m->mask;
        while (m->slots[j].key != UINT64_MAX) j = (j + 1) & m->mask;
        m->slots[j] = old[i];
        m->count++;
    }
    free(old);
}

bool u64map_put_new(struct u64map *m, uint64_t key, uint64_t value)
{
    if ((m->count + 1) * 4 > (m->mask + 1) * 3) u64map_rehash(m);
    size_t j = mix64(key) & m->mask;
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == key) return false;
        j = (j + 1) & m->mask;
    }
    m->slots[j].key = key;
    m->slots[j].value = value;
    m->count++;
    return true;
}

void u64map_put(struct u64map *m, uint64_t key, uint64_t value)
{
    if ((m->count + 1) * 4 > (m->mask + 1) * 3) u64map_rehash(m);
    size_t j = mix64(key) & m->mask;
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == key) {
            m->slots[j].value = value;
            return;
        }
        j = (j + 1) & m->mask;
    }
    m->slots[j].key = key;
    m->slots[j].value = value;
    m->count++;
}

void u64map_prefetch(const struct u64map *m, uint64_t key)
{
    __builtin_prefetch(&m->slots[mix64(key) & m->mask]);
}

bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *value)
{
    if (!m->slots) return false;
    size_t j = mix64(key) & m->mask;
    while (m->slots[j].key != UINT64_MAX) {
        if (m->slots[j].key == key) {
            *value = m->slots[j].value;
            return true;
        }
        j = (j + 1) & m->mask;
    }
    return false;
}
