/* mlc-chat-config.json, as mlc-quant, mlc-lower and mlc-check read it. */
#include "tests/fuzz/fuzz.h"

#include "formats/chat_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chat_config c;
    if (chat_config_load(fuzz_file("mlc-chat-config.json", data, size), &c) == 0) chat_config_free(&c);
    return 0;
}
