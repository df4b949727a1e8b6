/* The record stream reader (mlc-stream(5)), as every stage reads standard
 * input, and each record to JSON and back, as mlc-dump and mlc-dump --pack
 * do. The first byte picks the read size (1 to 64 bytes), so records span
 * many reads as from a slow pipe. */
#include "tests/fuzz/fuzz.h"

#include <fcntl.h>
#include <jansson.h>

#include "common/mpjson.h"
#include "common/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    const char *path = fuzz_file("stream.mp", data + 1, size - 1);
    int fd = open(path, O_RDONLY);
    if (fd < 0) abort();
    struct stream_reader r;
    stream_reader_init(&r, fd, path);
    stream_reader_set_chunk(&r, 1 + data[0] % 64);
    struct record rec;
    while (stream_next(&r, &rec) == 1) {
        json_t *j = mp_to_json_tagged(rec.map);
        if (j) {
            msgpack_sbuffer sb;
            msgpack_packer pk;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            mp_pack_json_tagged(&pk, j);
            msgpack_sbuffer_destroy(&sb);
            json_decref(j);
        }
    }
    stream_reader_free(&r);
    close(fd);
    return 0;
}
