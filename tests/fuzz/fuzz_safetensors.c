/* safetensors files: st_open validates the header and every span. */
#include "tests/fuzz/fuzz.h"

#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct st_file f;
    if (st_open(&f, fuzz_file("model.safetensors", data, size)) == 0) st_close(&f);
    return 0;
}
