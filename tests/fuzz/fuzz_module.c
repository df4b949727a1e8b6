/* The lowered module (mlc-emit --module, the library's plan.msgpack):
 * bounded unpacking, then the strict reader and its validation. */
#include "tests/fuzz/fuzz.h"

#include "common/mpscan.h"
#include "formats/module.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (mp_unpack_bounded((const char *)data, size, &up, "plan.msgpack") == 0 &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        struct module m;
        if (module_from_msgpack(&up.data, &m, "plan.msgpack") == 0) module_free(&m);
    }
    msgpack_unpacked_destroy(&up);
    return 0;
}
