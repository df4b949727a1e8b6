/* tensor-cache.json: the schema, then the shards it names (none exist in
 * the scratch directory unless the input names tensor-cache.json itself,
 * so validation checks missing and wrong-sized shards). */
#include "tests/fuzz/fuzz.h"

#include "formats/tensor_cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tensor_cache tc;
    if (tensor_cache_open(&tc, fuzz_file("tensor-cache.json", data, size)) != 0) return 0;
    tensor_cache_validate(&tc, true);
    tensor_cache_close(&tc);
    return 0;
}
