/* The restricted unpickler, on data.pkl bytes alone. */
#include "tests/fuzz/fuzz.h"

#include "formats/torch_pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tp_state_dict sd;
    if (tp_parse_state_dict(data, size, "data.pkl", &sd) == 0) tp_state_dict_free(&sd);
    return 0;
}
