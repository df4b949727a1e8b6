/* pytorch_model.bin: the zip, its pickle and every tensor's bytes. */
#include "tests/fuzz/fuzz.h"

#include "formats/torch_bin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tb_file f;
    if (tb_open(&f, fuzz_file("pytorch_model.bin", data, size)) != 0) return 0;
    for (size_t i = 0; i < f.sd.ntensors; i++) {
        if (f.sd.tensors[i].dtype == DT_INVALID) continue;
        void *bytes;
        size_t len;
        if (tb_read_tensor(&f, i, &bytes, &len) == 0) free(bytes);
    }
    tb_close(&f);
    return 0;
}
