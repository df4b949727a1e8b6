/* tokbench: tokenizer load time and single-thread encode speed.
 *
 *   tokbench MODEL_DIR TEXT_FILE [ROUNDS]
 *
 * Prints "load_ms N" (best of five loads, wall clock) and "load_cpu_ms N"
 * (CPU time of that load: on a shared machine the wall clock also counts
 * other programs), then "encode_mb_s N" / "encode_cpu_mb_s N" for encoding
 * TEXT_FILE (line by line, as a chat engine meets text) ROUNDS times
 * (default 3, best round reported), on one thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/progress.h"
#include "formats/tokenizer/tokenizer.h"

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    if (argc < 3) die("usage: tokbench MODEL_DIR TEXT_FILE [ROUNDS]");
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    double best_load = 1e9, best_load_cpu = 1e9;
    struct tokenizer *t = NULL;
    for (int i = 0; i < 5; i++) {
        double t0 = now_seconds(), c0 = cpu_seconds();
        struct tokenizer *x = tokenizer_load(argv[1]);
        double dt = now_seconds() - t0, dc = cpu_seconds() - c0;
        if (!x) die_last();
        if (dt < best_load) best_load = dt;
        if (dc < best_load_cpu) best_load_cpu = dc;
        if (t) tokenizer_free(t);
        t = x;
    }
    printf("load_ms %.1f\n", best_load * 1e3);
    printf("load_cpu_ms %.1f\n", best_load_cpu * 1e3);
    struct buf text = BUF_INIT;
    buf_init(&text);
    if (read_file(argv[2], &text, 0)) die_last();
    double best = 1e9, best_cpu = 1e9;
    size_t tokens = 0;
    struct tok_ids ids = {0};
    for (int r = 0; r < rounds; r++) {
        /* a fresh tokenizer: the word cache starts empty every round */
        tokenizer_free(t);
        t = tokenizer_load(argv[1]);
        ids.n = 0;
        double t0 = now_seconds(), c0 = cpu_seconds();
        size_t pos = 0;
        while (pos < text.len) {
            char *nl = memchr(text.data + pos, '\n', text.len - pos);
            size_t end = nl ? (size_t)(nl - text.data) + 1 : text.len;
            if (tokenizer_encode(t, text.data + pos, end - pos, false, &ids)) die_last();
            pos = end;
        }
        double dt = now_seconds() - t0, dc = cpu_seconds() - c0;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
        tokens = ids.n;
    }
    printf("encode_mb_s %.1f\n", text.len / best / 1e6);
    printf("encode_cpu_mb_s %.1f\n", text.len / best_cpu / 1e6);
    printf("tokens %zu\n", tokens);
    printf("bytes %zu\n", text.len);
    tok_ids_free(&ids);
    buf_free(&text);
    tokenizer_free(t);
    return 0;
}
