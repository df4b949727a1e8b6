/* What every libFuzzer harness shares: the input written to a file of a
 * scratch directory (most parsers take a path, as the tools give them),
 * and splitting one input into several files.
 *
 * A harness calls the parser's own entry point, the one the tools call,
 * and frees what it returns: a crash, a leak, a timeout or an allocation
 * over libFuzzer's malloc limit is a finding. */
#ifndef MLC_FUZZ_H
#define MLC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_scratch[64];

static void fuzz_remove_scratch(void)
{
    remove_tree(fuzz_scratch);
}

/* A scratch directory of this process, made once, removed at exit. */
static inline const char *fuzz_dir(void)
{
    if (!fuzz_scratch[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_scratch, sizeof fuzz_scratch, "%s/mlc-fuzz.%ld", tmp && *tmp ? tmp : "/tmp",
                 (long)getpid());
        if (mkdir(fuzz_scratch, 0700) != 0 && access(fuzz_scratch, W_OK) != 0) abort();
        atexit(fuzz_remove_scratch);
        quiet = true;
    }
    return fuzz_scratch;
}

/* Write data to NAME in the scratch directory; the path lives until the
 * next call with the same name. */
static inline const char *fuzz_file(const char *name, const void *data, size_t len)
{
    static char path[8][256];
    static const char *names[8];
    int slot = 0;
    while (slot < 7 && names[slot] && strcmp(names[slot], name)) slot++;
    names[slot] = name;
    snprintf(path[slot], sizeof path[slot], "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path[slot], "wb");
    if (!f) abort();
    if (len && fwrite(data, 1, len, f) != len) abort();
    if (fclose(f) != 0) abort();
    return path[slot];
}

/* The part of data before the first occurrence of sep (all of it when
 * there is none) in *a, the rest after sep in *b. */
static inline void fuzz_split(const uint8_t *data, size_t size, const char *sep, const uint8_t **a, size_t *alen,
                       const uint8_t **b, size_t *blen)
{
    size_t n = strlen(sep);
    const uint8_t *hit = size >= n ? memmem(data, size, sep, n) : NULL;
    *a = data;
    *alen = hit ? (size_t)(hit - data) : size;
    *b = hit ? hit + n : data + size;
    *blen = (size_t)(data + size - *b);
}

#endif
