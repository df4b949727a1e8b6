/* A conversation template of one's own (mlc-cfg --conv-template FILE),
 * then rendering a conversation with it as the engine does. */
#include "tests/fuzz/fuzz.h"

#include "formats/conv_template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct conv_template *t = conv_template_load(fuzz_file("conv.json", data, size));
    if (!t) return 0;
    static const struct chat_message msgs[] = {
        {"system", "Be brief."}, {"user", "Hello {function_string}"}, {"assistant", "<think>x</think>\n\nHi"},
        {"user", "And now?"},
    };
    for (size_t n = 0; n <= 4; n += 2) {
        struct conv_prompt p;
        if (conv_render(t, msgs, n, n ? "[{\"name\": \"f\"}]" : NULL, &p) == 0) conv_prompt_free(&p);
    }
    conv_template_free(t);
    return 0;
}
