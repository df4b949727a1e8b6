#include "common/pyrandom.h"
#include "common/buf.h"
#include "common/err.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* MT19937 as in CPython's _randommodule.c (the reference implementation of
 * Matsumoto and Nishimura). */
static void init_genrand(struct pyrandom *r, uint32_t s)
{
    r->mt[0] = s;
    for (int i = 1; i < 624; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->index = 624;
}

static void init_by_array(struct pyrandom *r, const uint32_t *key, size_t len)
{
    init_genrand(r, 19650218u);
    size_t i = 1, j = 0;
    for (size_t k = 624 > len ? 624 : len; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] + (uint32_t)j;
        i++;
        j++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
        if (j >= len) j = 0;
    }
    for (size_t k = 623; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - (uint32_t)i;
        i++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
    }
    r->mt[0] = 0x80000000u;
}

void pyrandom_seed(struct pyrandom *r, uint64_t seed)
{
    /* Python splits abs(seed) into 32-bit words, least significant first;
     * zero is one word of 0. */
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    init_by_array(r, key, key[1] ? 2 : 1);
}

static uint32_t genrand_uint32(struct pyrandom *r)
{
    if (r->index >= 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (r->mt[k] & 0x80000000u) | (r->mt[(k + 1) % 624] & 0x7fffffffu);
            r->mt[k] = r->mt[(k + 397) % 624] ^ (y >> 1) ^ (y & 1 ? 0x9908b0dfu : 0);
        }
        r->index = 0;
    }
    uint32_t y = r->mt[r->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint32_t pyrandom_getrandbits(struct pyrandom *r, int k)
{
    return genrand_uint32(r) >> (32 - k);
}

uint32_t pyrandom_randbelow(struct pyrandom *r, uint32_t n)
{
    int k = 0;
    while (k < 32 && (n >> k)) k++; /* n.bit_length() */
    uint32_t v = pyrandom_getrandbits(r, k);
    while (v >= n) v = pyrandom_getrandbits(r, k);
    return v;
}

int pyrandom_sample(struct pyrandom *r, size_t n, size_t k, size_t *out)
{
    if (k > n) return fail("cannot sample %zu items from %zu", k, n);
    if (n > UINT32_MAX) return fail("cannot sample from %zu items (more than 2^32)", n);
    /* Python picks its method by comparing n with the size of the set it
     * would need: a shrinking pool for small populations, rejection of
     * repeats otherwise. Both consume the generator differently, so the
     * choice must be the same. */
    size_t setsize = 21;
    if (k > 5) setsize += (size_t)pow(4.0, ceil(log((double)k * 3) / log(4.0)));
    if (n <= setsize) {
        size_t *pool = xmalloc(sizeof *pool * (n ? n : 1));
        for (size_t i = 0; i < n; i++) pool[i] = i;
        for (size_t i = 0; i < k; i++) {
            size_t j = pyrandom_randbelow(r, (uint32_t)(n - i));
            out[i] = pool[j];
            pool[j] = pool[n - i - 1];
        }
        free(pool);
        return 0;
    }
    bool *taken = xcalloc(n, sizeof *taken);
    for (size_t i = 0; i < k; i++) {
        size_t j = pyrandom_randbelow(r, (uint32_t)n);
        while (taken[j]) j = pyrandom_randbelow(r, (uint32_t)n);
        taken[j] = true;
        out[i] = j;
    }
    free(taken);
    return 0;
}
