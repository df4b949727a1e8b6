/* GGUF files: the header, metadata and tensor table, then everything that
 * reads the metadata (config.json, tensor names, the tokenizer rebuild). */
#include "tests/fuzz/fuzz.h"

#include "formats/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return gguf_fuzz_one(data, size);
}
