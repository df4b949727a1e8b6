#include "formats/calib_dataset.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/pyrandom.h"
#include "formats/tokenizer/tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* The text of turn t of item i, or NULL with an error. */
static const char *turn_text(const char *path, const json_t *turns, size_t i, size_t t, size_t *len)
{
    const json_t *turn = json_array_get(turns, t);
    const json_t *value = json_is_object(turn) ? json_object_get(turn, "value") : NULL;
    if (!json_is_object(turn)) {
        fail("%s: item %zu: conversations[%zu] is not an object", path, i, t);
        return NULL;
    }
    if (!json_is_string(value)) {
        fail("%s: item %zu: conversations[%zu].value is %s, not a string", path, i, t,
             value ? "of another type" : "missing");
        return NULL;
    }
    *len = json_string_length(value);
    return json_string_value(value);
}

static int64_t count_tokens(struct tokenizer *tok, const char *text, size_t len, const char *path, size_t i)
{
    struct tok_ids ids = {0};
    if (tokenizer_encode(tok, text, len, false, &ids) != 0) {
        fail_prefix("%s: item %zu", path, i);
        tok_ids_free(&ids);
        return -1;
    }
    int64_t n = (int64_t)ids.n;
    tok_ids_free(&ids);
    return n;
}

int calib_dataset_load(const char *path, struct tokenizer *tok, size_t count, uint64_t seed,
                       struct calib_dataset *out)
{
    memset(out, 0, sizeof *out);
    if (count < 1) return fail("%s: the number of calibration samples must be at least 1", path);
    struct buf text = BUF_INIT;
    buf_init(&text);
    if (read_file(path, &text, CALIB_MAX_FILE_BYTES) != 0) {
        buf_free(&text);
        return -1;
    }
    hash_hex(HASH_SHA256, text.data, text.len, out->sha256);
    json_t *root = json_load_text(text.data, text.len, path);
    buf_free(&text);
    if (!root) return -1;
    int rc = -1;
    struct calib_request *kept = NULL;
    size_t nkept = 0;
    if (!json_is_array(root)) {
        fail("%s: not a ShareGPT dataset: the top level must be a list of {\"conversations\": [...]} items",
             path);
        goto done;
    }
    out->items = json_array_size(root);
    kept = xcalloc(out->items + 1, sizeof *kept);
    for (size_t i = 0; i < out->items; i++) {
        const json_t *item = json_array_get(root, i);
        const json_t *turns = json_is_object(item) ? json_object_get(item, "conversations") : NULL;
        if (!json_is_object(item)) {
            fail("%s: item %zu is not an object", path, i);
            goto done;
        }
        if (!json_is_array(turns)) {
            fail("%s: item %zu: \"conversations\" is %s, not a list", path, i, turns ? "of another type" : "missing");
            goto done;
        }
        if (json_array_size(turns) < 2) continue;
        size_t plen, clen;
        const char *prompt = turn_text(path, turns, i, 0, &plen);
        const char *completion = prompt ? turn_text(path, turns, i, 1, &clen) : NULL;
        if (!completion) goto done;
        int64_t pt = count_tokens(tok, prompt, plen, path, i);
        int64_t ct = pt < 0 ? -1 : count_tokens(tok, completion, clen, path, i);
        if (ct < 0) goto done;
        if (pt < CALIB_MIN_TOKENS || ct < CALIB_MIN_TOKENS || pt > CALIB_MAX_PROMPT_TOKENS ||
            pt + ct > CALIB_MAX_TOTAL_TOKENS)
            continue;
        if (memchr(prompt, 0, plen)) {
            fail("%s: item %zu: the prompt holds a NUL character", path, i);
            goto done;
        }
        kept[nkept].prompt = xstrdup(prompt);
        kept[nkept].prompt_tokens = pt;
        kept[nkept].completion_tokens = ct;
        kept[nkept].item = i;
        nkept++;
    }
    out->kept = nkept;
    if (nkept < count) {
        fail("%s: %zu of its %zu items are usable for calibration (two turns, 4 to 1024 prompt tokens, at least "
             "4 completion tokens, at most 2048 in all); %zu samples were asked for",
             path, nkept, out->items, count);
        goto done;
    }
    size_t *pick = xmalloc(sizeof *pick * count);
    struct pyrandom rng;
    pyrandom_seed(&rng, seed);
    if (pyrandom_sample(&rng, nkept, count, pick) != 0) {
        free(pick);
        goto done;
    }
    out->requests = xcalloc(count, sizeof *out->requests);
    for (size_t k = 0; k < count; k++) {
        out->requests[k] = kept[pick[k]];
        kept[pick[k]].prompt = NULL;
    }
    out->n = count;
    free(pick);
    out->path = xstrdup(path);
    rc = 0;
done:
    for (size_t i = 0; i < nkept; i++) free(kept[i].prompt);
    free(kept);
    json_decref(root);
    if (rc != 0) calib_dataset_free(out);
    return rc;
}

void calib_dataset_free(struct calib_dataset *d)
{
    for (size_t i = 0; i < d->n; i++) free(d->requests[i].prompt);
    free(d->requests);
    free(d->path);
    memset(d, 0, sizeof *d);
}
