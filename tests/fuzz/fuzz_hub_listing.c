/* The hub's revision listing (the JSON answer mlc-fetch trusts for names,
 * sizes and digests). */
#include "tests/fuzz/fuzz.h"

#include "formats/hub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hub_listing l;
    if (hub_listing_parse((const char *)data, size, "listing", &l) == 0) hub_listing_free(&l);
    return 0;
}
