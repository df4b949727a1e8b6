/* vocab.json + merges.txt (GPT-2's files): the input is the vocabulary, a
 * line "#merges" and the merges. */
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_tok_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *v, *m;
    size_t vlen, mlen;
    fuzz_split(data, size, "\n#merges\n", &v, &vlen, &m, &mlen);
    const char *vocab = fuzz_file("vocab.json", v, vlen);
    const char *merges = fuzz_file("merges.txt", m, mlen);
    struct tokenizer *t = tokenizer_load_bpe_files(vocab, merges, NULL);
    if (t) fuzz_use_tokenizer(t);
    return 0;
}
