/* The key/value cache of the CPU engine: per sequence and layer, keys and
 * values at the slot of their position, in the model's dtype as MLC keeps
 * them (float16 for the f16 schemes, bfloat16, or float32). Keys are kept
 * transposed in blocks of KV_BLOCK slots (per head and block,
 * [head_dim][KV_BLOCK]), so that the scores of consecutive positions are
 * one vector operation and appending a key touches one block; values per
 * slot. Without a sliding window
 * the slot is the position itself (up to the context window). With one, the
 * first `sink` positions keep their slots forever and the rest rotate
 * through the remaining capacity, which mlc-lower sizes so that a whole
 * prefill chunk can be appended before its first token's window is read. */
#ifndef MLC_KV_CACHE_H
#define MLC_KV_CACHE_H

#include <stdint.h>

#include "formats/dtype.h"

#define KV_BLOCK 16

struct kv_cache {
    int n_layers, n_kv_heads, head_dim;
    int64_t capacity;          /* slots per sequence */
    int max_sequences;
    int sliding_window, sink;  /* 0: none */
    enum dtype dtype;          /* float32, float16 or bfloat16 */
    void **seq;                /* per sequence, per layer: keys [kv_heads][blocks][head_dim][KV_BLOCK],
                                  then values [capacity][kv_heads * head_dim]; or NULL */
    int64_t *length;           /* tokens stored per sequence */
};

/* The dtype a cache for a model quantized with `quantization` keeps: the
 * scheme's model dtype, as MLC's cache does; float32 for an unknown name.
 * Both executors take it from here so that they round alike. */
enum dtype kv_cache_dtype_for(const char *quantization);

int kv_cache_init(struct kv_cache *c, int n_layers, int n_kv_heads, int head_dim, int64_t capacity,
                  int max_sequences, int sliding_window, int sink, enum dtype dtype);
void kv_cache_free(struct kv_cache *c);

/* A free sequence id (its storage allocated), or -1 when all are in use. */
int kv_cache_add_sequence(struct kv_cache *c);
void kv_cache_remove_sequence(struct kv_cache *c, int seq);
/* Can `n` more tokens be appended to seq? (Always, with a sliding window.) */
int kv_cache_check_room(const struct kv_cache *c, int seq, int64_t n);

int64_t kv_cache_slot(const struct kv_cache *c, int64_t pos);
/* The keys of one head: blocks of [head_dim][KV_BLOCK] elements of
 * c->dtype; kv_cache_key_index() places dimension i of a slot in them. */
void *kv_cache_keys(const struct kv_cache *c, int seq, int layer, int head);
static inline int64_t kv_cache_key_index(int head_dim, int64_t slot, int i)
{
    return ((slot / KV_BLOCK) * head_dim + i) * KV_BLOCK + slot % KV_BLOCK;
}
/* The values at a position's slot: kv_heads × head_dim elements. */
void *kv_cache_value(const struct kv_cache *c, int seq, int layer, int64_t pos);
/* Element i of an array of c->dtype as float. */
float kv_cache_load(const struct kv_cache *c, const void *base, int64_t i);
/* Dimension i of a head's key at a position, as float. */
float kv_cache_key_at(const struct kv_cache *c, int seq, int layer, int head, int64_t pos, int i);

#endif
