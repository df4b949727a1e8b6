/* Python's random module, where sampling must be reproducible: the
 * Mersenne Twister (MT19937) seeded as random.seed(int) seeds it, and
 * random.sample() with its exact algorithm, so a seed picks the same items
 * here as in Python (MLC-LLM's calibration samples its dataset with
 * random.seed(seed); random.sample(items, n)). */
#ifndef MLC_PYRANDOM_H
#define MLC_PYRANDOM_H

#include <stddef.h>
#include <stdint.h>

struct pyrandom {
    uint32_t mt[624];
    int index;
};

/* random.seed(seed) for a non-negative integer seed. */
void pyrandom_seed(struct pyrandom *r, uint64_t seed);
/* random.getrandbits(k), 1 <= k <= 32. */
uint32_t pyrandom_getrandbits(struct pyrandom *r, int k);
/* random._randbelow(n), n >= 1 (n < 2^32). */
uint32_t pyrandom_randbelow(struct pyrandom *r, uint32_t n);
/* random.sample(range(n), k): k distinct indices in Python's order.
 * 0 <= k <= n. -1 (with last_error set) when k > n. */
int pyrandom_sample(struct pyrandom *r, size_t n, size_t k, size_t *out);

#endif
