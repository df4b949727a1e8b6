/* The key/value cache of the CPU engine: per sequence and layer, keys and
 * values in float32 at the slot of their position. Without a sliding window
 * the slot is the position itself (up to the context window). With one, the
 * first `sink` positions keep their slots forever and the rest rotate
 * through the remaining capacity, which mlc-lower sizes so that a whole
 * prefill chunk can be appended before its first token's window is read. */
#ifndef MLC_KV_CACHE_H
#define MLC_KV_CACHE_H

#include <stdint.h>

struct kv_cache {
    int n_layers, n_kv_heads, head_dim;
    int64_t capacity;          /* slots per sequence */
    int max_sequences;
    int sliding_window, sink;  /* 0: none */
    float **seq;               /* per sequence: [layer][2][capacity][kv_heads*head_dim], or NULL */
    int64_t *length;           /* tokens stored per sequence */
};

int kv_cache_init(struct kv_cache *c, int n_layers, int n_kv_heads, int head_dim, int64_t capacity,
                  int max_sequences, int sliding_window, int sink);
void kv_cache_free(struct kv_cache *c);

/* A free sequence id (its storage allocated), or -1 when all are in use. */
int kv_cache_add_sequence(struct kv_cache *c);
void kv_cache_remove_sequence(struct kv_cache *c, int seq);
/* Can `n` more tokens be appended to seq? (Always, with a sliding window.) */
int kv_cache_check_room(const struct kv_cache *c, int seq, int64_t n);

int64_t kv_cache_slot(const struct kv_cache *c, int64_t pos);
float *kv_cache_key(const struct kv_cache *c, int seq, int layer, int64_t pos);
float *kv_cache_value(const struct kv_cache *c, int seq, int layer, int64_t pos);

#endif
