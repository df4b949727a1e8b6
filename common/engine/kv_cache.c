#include "common/engine/kv_cache.h"
#include "common/buf.h"
#include "common/err.h"
#include "formats/quant.h"

#include <stdlib.h>
#include <string.h>

enum dtype kv_cache_dtype_for(const char *quantization)
{
    const struct quant_scheme *s = quantization ? quant_scheme_by_name(quantization) : NULL;
    return s ? s->model_dtype : DT_F32;
}

int kv_cache_init(struct kv_cache *c, int n_layers, int n_kv_heads, int head_dim, int64_t capacity,
                  int max_sequences, int sliding_window, int sink, enum dtype dtype)
{
    memset(c, 0, sizeof *c);
    if (n_layers < 1 || n_kv_heads < 1 || head_dim < 1 || capacity < 1 || max_sequences < 1)
        return fail("KV cache: every dimension must be positive");
    if (sliding_window && capacity <= sink)
        return fail("KV cache: capacity %lld leaves no room beyond %d sink tokens", (long long)capacity, sink);
    c->n_layers = n_layers;
    c->n_kv_heads = n_kv_heads;
    c->head_dim = head_dim;
    c->capacity = capacity;
    c->max_sequences = max_sequences;
    c->sliding_window = sliding_window;
    c->sink = sliding_window ? sink : 0;
    if (dtype != DT_F32 && dtype != DT_F16 && dtype != DT_BF16)
        return fail("KV cache: %s is not a cache dtype", dtype_name(dtype));
    c->dtype = dtype;
    c->seq = xcalloc((size_t)max_sequences, sizeof *c->seq);
    c->length = xcalloc((size_t)max_sequences, sizeof *c->length);
    return 0;
}

void kv_cache_free(struct kv_cache *c)
{
    for (int i = 0; i < c->max_sequences; i++) free(c->seq[i]);
    free(c->seq);
    free(c->length);
    memset(c, 0, sizeof *c);
}

/* Elements of one layer's keys (slots rounded up to whole blocks) and
 * values. */
static size_t key_elems(const struct kv_cache *c)
{
    size_t blocks = ((size_t)c->capacity + KV_BLOCK - 1) / KV_BLOCK;
    return (size_t)c->n_kv_heads * blocks * KV_BLOCK * (size_t)c->head_dim;
}

static size_t value_elems(const struct kv_cache *c)
{
    return (size_t)c->n_kv_heads * (size_t)c->head_dim * (size_t)c->capacity;
}

int kv_cache_add_sequence(struct kv_cache *c)
{
    for (int i = 0; i < c->max_sequences; i++) {
        if (c->seq[i]) continue;
        size_t n;
        if (!size_mul(key_elems(c) + value_elems(c), (size_t)c->n_layers, &n) || !size_mul(n, dtype_size(c->dtype), &n))
            return fail("KV cache: sequence size overflows");
        c->seq[i] = calloc(1, n);
        if (!c->seq[i]) return fail("KV cache: cannot allocate %zu bytes for a sequence", n);
        c->length[i] = 0;
        return i;
    }
    return fail("KV cache: all %d sequences are in use", c->max_sequences);
}

void kv_cache_remove_sequence(struct kv_cache *c, int seq)
{
    if (seq < 0 || seq >= c->max_sequences) return;
    free(c->seq[seq]);
    c->seq[seq] = NULL;
    c->length[seq] = 0;
}

int kv_cache_check_room(const struct kv_cache *c, int seq, int64_t n)
{
    if (seq < 0 || seq >= c->max_sequences || !c->seq[seq]) return fail("KV cache: no sequence %d", seq);
    if (!c->sliding_window && c->length[seq] + n > c->capacity)
        return fail("context window exceeded: %lld tokens in the cache + %lld new > %lld",
                    (long long)c->length[seq], (long long)n, (long long)c->capacity);
    return 0;
}

int64_t kv_cache_slot(const struct kv_cache *c, int64_t pos)
{
    if (!c->sliding_window || pos < c->sink) return pos;
    return c->sink + (pos - c->sink) % (c->capacity - c->sink);
}

static char *layer_base(const struct kv_cache *c, int seq, int layer)
{
    return (char *)c->seq[seq] + (size_t)layer * (key_elems(c) + value_elems(c)) * dtype_size(c->dtype);
}

void *kv_cache_keys(const struct kv_cache *c, int seq, int layer, int head)
{
    size_t per_head = key_elems(c) / (size_t)c->n_kv_heads;
    return layer_base(c, seq, layer) + (size_t)head * per_head * dtype_size(c->dtype);
}

void *kv_cache_value(const struct kv_cache *c, int seq, int layer, int64_t pos)
{
    size_t per_token = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t elem = key_elems(c) + (size_t)kv_cache_slot(c, pos) * per_token;
    return layer_base(c, seq, layer) + elem * dtype_size(c->dtype);
}

float kv_cache_load(const struct kv_cache *c, const void *base, int64_t i)
{
    return quant_load(c->dtype, base, (size_t)i);
}

float kv_cache_key_at(const struct kv_cache *c, int seq, int layer, int head, int64_t pos, int i)
{
    return kv_cache_load(c, kv_cache_keys(c, seq, layer, head), kv_cache_key_index(c->head_dim, kv_cache_slot(c, pos), i));
}
