/* tcupdate DIR NAME=V[,V...] ...: write float32 tensors (1-D) into the
 * tensor cache in DIR with tensor_cache_update, for tests that compare the
 * result with TVM's semantics (tests/helpers/tc_update_ref.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cli.h"
#include "common/err.h"
#include "formats/tensor_cache.h"

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    if (argc < 2) usage_error("usage: tcupdate DIR NAME=V[,V...] ...");
    size_t n = (size_t)argc - 2;
    struct tc_update *u = xcalloc(n + 1, sizeof *u);
    float **vals = xcalloc(n + 1, sizeof *vals);
    for (size_t i = 0; i < n; i++) {
        char *arg = xstrdup(argv[i + 2]), *eq = strchr(arg, '=');
        if (!eq) usage_error("%s: expected NAME=V[,V...]", argv[i + 2]);
        *eq = 0;
        size_t cap = 1;
        for (char *c = eq + 1; *c; c++) cap += *c == ',';
        vals[i] = xcalloc(cap, sizeof **vals);
        size_t k = 0;
        for (char *tok = strtok(eq + 1, ","); tok; tok = strtok(NULL, ",")) vals[i][k++] = strtof(tok, NULL);
        u[i].name = arg;
        u[i].ndim = 1;
        u[i].shape[0] = (int64_t)k;
        u[i].values = vals[i];
    }
    size_t replaced, added;
    if (tensor_cache_update(argv[1], u, n, &replaced, &added) != 0) die_last();
    printf("%zu replaced, %zu added\n", replaced, added);
    for (size_t i = 0; i < n; i++) {
        free((char *)u[i].name);
        free(vals[i]);
    }
    free(u);
    free(vals);
    return 0;
}
