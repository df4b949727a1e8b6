/* tokenizer.json: loading (the JSON model, normalizers, pre-tokenizers,
 * regexes, decoders, added tokens), then encoding and decoding. */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_tok_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tokenizer *t = tokenizer_load_json(fuzz_file("tokenizer.json", data, size), NULL);
    if (t) fuzz_use_tokenizer(t);
    return 0;
}
