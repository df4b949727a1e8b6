#include "formats/tokenizer/tok_batch.h"
#include "common/buf.h"
#include "common/err.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int tokenize_lines(struct tokenizer *t, FILE *in, const char *name, bool add_special, FILE *out)
{
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    struct buf ids_text = BUF_INIT;
    buf_init(&ids_text);
    int rc = 0;
    while (rc == 0 && (n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (n && line[n - 1] == '\n') line[--n] = 0;
        if (n && line[n - 1] == '\r') line[--n] = 0;
        const char *text = line;
        size_t len = (size_t)n;
        json_t *doc = NULL;
        if (n && line[0] == '{') {
            json_error_t err;
            doc = json_loadb(line, (size_t)n, 0, &err);
            json_t *v = doc ? json_object_get(doc, "text") : NULL;
            if (!doc) {
                rc = fail("%s:%zu: not a JSON object: %s", name, lineno, err.text);
                break;
            }
            if (!json_is_string(v)) {
                json_decref(doc);
                rc = fail("%s:%zu: a JSON line needs a string field \"text\"", name, lineno);
                break;
            }
            text = json_string_value(v);
            len = json_string_length(v);
        }
        struct tok_ids ids = {0};
        if (tokenizer_encode(t, text, len, add_special, &ids) != 0) {
            rc = fail_prefix("%s:%zu", name, lineno);
        } else {
            buf_reset(&ids_text);
            for (size_t i = 0; i < ids.n; i++) buf_printf(&ids_text, "%s%d", i ? " " : "", ids.v[i]);
            buf_addc(&ids_text, '\n');
            if (fwrite(ids_text.data, 1, ids_text.len, out) != ids_text.len) rc = -2;
        }
        tok_ids_free(&ids);
        if (doc) json_decref(doc);
    }
    if (rc == 0 && ferror(in)) rc = fail("%s: read error", name);
    free(line);
    buf_free(&ids_text);
    return rc;
}
