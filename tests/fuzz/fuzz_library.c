/* The model library archive NAME-TARGET.tar, through the reader's entry
 * point (whatever the archive holds for a target). */
#include "tests/fuzz/fuzz.h"

#include "formats/library.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct library lib;
    if (library_read(fuzz_file("model-cpu.tar", data, size), &lib) == 0) library_free(&lib);
    return 0;
}
