/* A decode step allocates nothing: every allocation function of the C
 * library is replaced here by a counting one (forwarding to glibc's own),
 * and engine_decode runs on stories260K, float32 and 4-bit, on every kernel
 * set, one and three sequences at a time, with the pool's threads working.
 * Under AddressSanitizer, which owns malloc itself, the count is skipped. */
#include <errno.h>
#include <stdatomic.h>

#include "common/engine/engine.h"
#include "common/err.h"
#include "tests/unit/stories.h"
#include "tests/unit/test.h"

#if defined(__SANITIZE_ADDRESS__)
#define COUNTING 0
#else
#define COUNTING 1
static atomic_int counting;
static atomic_long calls;

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void __libc_free(void *p);

static void count(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed)) atomic_fetch_add(&calls, 1);
}

void *malloc(size_t n)
{
    count();
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    count();
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    count();
    return __libc_realloc(p, n);
}

void *memalign(size_t align, size_t n)
{
    count();
    return __libc_memalign(align, n);
}

void *aligned_alloc(size_t align, size_t n)
{
    count();
    return __libc_memalign(align, n);
}

int posix_memalign(void **p, size_t align, size_t n)
{
    count();
    *p = __libc_memalign(align, n);
    return *p ? 0 : ENOMEM;
}

void free(void *p)
{
    __libc_free(p);
}
#endif

static void decode_steps(const struct lower_spec *spec, struct store *s, const struct kernel_set *k)
{
    struct module m;
    CHECK_EQ(lower_build(spec, &m), 0);
    CHECK_EQ(passes_run(&m, 2, NULL, 0, NULL, NULL), 0);
    struct tensor_source src = {store_lookup, s};
    struct engine e;
    memset(&e, 0, sizeof e);
    e.module = &m;
    CHECK_EQ(executor_init(&e.ex, &m, &src, 2, 0), 0);
    e.max_sequences = e.ex.kv.max_sequences;
    CHECK_EQ(executor_use_kernels(&e.ex, k), 0);
    engine_set_sizes(&e);
    int seqs[3];
    int32_t prompt[20], ids[3] = {5, 77, 300};
    for (int i = 0; i < 20; i++) prompt[i] = stories_expected[i];
    float *logits = xmalloc(sizeof(float) * 3 * 512);
    for (int q = 0; q < 3; q++) {
        seqs[q] = engine_new_sequence(&e);
        CHECK_EQ(engine_prefill(&e, seqs[q], prompt, 20 - 5 * q, logits), 0);
    }
    if (engine_decode(&e, seqs, ids, 1, logits) != 0) TEST_FAIL_AT("%s", last_error()); /* a first step outside the count */
#if COUNTING
    atomic_store(&calls, 0);
    atomic_store(&counting, 1);
#endif
    for (int step = 0; step < 8; step++) {
        CHECK_EQ(engine_decode(&e, seqs, ids, 1, logits), 0);
        CHECK_EQ(engine_decode(&e, seqs, ids, 3, logits), 0);
        ids[0] = stories_argmax(logits, 512);
    }
#if COUNTING
    atomic_store(&counting, 0);
    long n = atomic_load(&calls);
    if (n) TEST_FAIL_AT("%s, %s kernels: %ld allocations in 16 decode steps", spec->quantization, k->name, n);
#endif
    free(logits);
    free(e.x);
    executor_free(&e.ex);
    module_free(&m);
}

TEST(decode_allocates_nothing)
{
#if !COUNTING
    printf("# allocation counting skipped under AddressSanitizer\n");
#endif
    const char *names[] = {"reference", "generic", "avx2", "avx512"};
    struct store s, q;
    struct lower_spec spec, qspec;
    load_stories(&s, &spec);
    quantize_stories(&s, &q, &qspec, "q4f16_1");
    for (int i = 0; i < 4; i++) {
        const struct kernel_set *k = kernels_by_name(names[i]);
        if (!k) continue;
        decode_steps(&spec, &s, k);
        decode_steps(&qspec, &q, k);
    }
    free_store(&q);
    free_store(&s);
}

TEST(the_counter_counts)
{
#if COUNTING
    atomic_store(&calls, 0);
    atomic_store(&counting, 1);
    void *p = malloc(16), *a = NULL;
    CHECK_EQ(posix_memalign(&a, 64, 128), 0);
    atomic_store(&counting, 0);
    free(p);
    free(a);
    CHECK_EQ(atomic_load(&calls), 2);
#endif
}

TEST_MAIN()
