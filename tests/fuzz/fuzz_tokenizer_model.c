/* tokenizer.model: SentencePiece's protobuf, then encoding and decoding. */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_tok_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tokenizer *t = tokenizer_load_sentencepiece(fuzz_file("tokenizer.model", data, size));
    if (t) fuzz_use_tokenizer(t);
    return 0;
}
