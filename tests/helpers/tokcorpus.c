/* tokcorpus: check a tokenizer against expected ids and texts.
 *
 *   tokcorpus MODEL_DIR EXPECTED.jsonl
 *
 * Each line of EXPECTED is {"text", "ids", "ids_special", "decoded",
 * "decoded_skip"} as tests/tokenizer-oracle/oracle.mjs writes it (the
 * decoded fields are optional). For every line it encodes the text with and
 * without special tokens, decodes ids_special (keeping and skipping special
 * tokens) and streams ids_special through the streaming decoder, and
 * prints every disagreement. Exit status 1 if any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/jdom.h"
#include "common/json.h"
#include "formats/tokenizer/tokenizer.h"

static void print_ids(const char *label, const int32_t *v, size_t n)
{
    printf("    %s:", label);
    for (size_t i = 0; i < n && i < 60; i++) printf(" %d", v[i]);
    if (n > 60) printf(" ... (%zu ids)", n);
    printf("\n");
}

static void show_str(const char *label, const char *s, size_t n)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    pyjson_string(&b, s, n > 300 ? 300 : n, true);
    printf("    %s: %s\n", label, b.data);
    buf_free(&b);
}

static bool same_ids(const struct jd *arr, const struct tok_ids *got)
{
    if (!jd_is(arr, JD_ARRAY) || arr->n != got->n) return false;
    for (uint32_t i = 0; i < arr->n; i++)
        if (arr->u.kids[i].ival != got->v[i]) return false;
    return true;
}

static void jd_ids(const struct jd *arr, struct tok_ids *out)
{
    out->n = 0;
    for (uint32_t i = 0; arr && i < arr->n; i++) tok_ids_push(out, (int32_t)arr->u.kids[i].ival);
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    if (argc != 3) die("usage: tokcorpus MODEL_DIR EXPECTED.jsonl");
    struct tokenizer *t = tokenizer_load(argv[1]);
    if (!t) die_last();
    struct buf text = BUF_INIT;
    buf_init(&text);
    if (read_file(argv[2], &text, 0)) die_last();
    size_t lines = 0, bad = 0, pos = 0;
    struct tok_ids got = {0}, want = {0};
    struct buf dec = BUF_INIT;
    buf_init(&dec);
    while (pos < text.len) {
        char *nl = memchr(text.data + pos, '\n', text.len - pos);
        size_t end = nl ? (size_t)(nl - text.data) : text.len;
        if (end == pos) { pos++; continue; }
        lines++;
        struct jd_doc doc;
        char name[64];
        snprintf(name, sizeof name, "%s line %zu", argv[2], lines);
        if (jd_parse(&doc, text.data + pos, end - pos, name)) die_last();
        pos = end + 1;
        const struct jd *r = &doc.root, *tx = jd_get(r, "text");
        if (!jd_is(tx, JD_STRING)) die("%s: no text", name);
        int problems = 0;
        const char *fields[] = {"ids", "ids_special"};
        for (int k = 0; k < 2; k++) {
            got.n = 0;
            if (tokenizer_encode(t, tx->u.str, tx->n, k == 1, &got)) die("%s: %s", name, last_error());
            if (!same_ids(jd_get(r, fields[k]), &got)) {
                if (!problems++) show_str("text", tx->u.str, tx->n);
                jd_ids(jd_get(r, fields[k]), &want);
                printf("  %s differ\n", fields[k]);
                print_ids("want", want.v, want.n);
                print_ids("got ", got.v, got.n);
            }
        }
        jd_ids(jd_get(r, "ids_special"), &want);
        const char *dfields[] = {"decoded", "decoded_skip"};
        for (int k = 0; k < 2; k++) {
            const struct jd *d = jd_get(r, dfields[k]);
            if (!jd_is(d, JD_STRING)) continue;
            buf_reset(&dec);
            tokenizer_decode(t, want.v, want.n, k == 1, &dec);
            if (dec.len != d->n || memcmp(dec.data, d->u.str, d->n)) {
                if (!problems++) show_str("text", tx->u.str, tx->n);
                printf("  %s differs\n", dfields[k]);
                show_str("want", d->u.str, d->n);
                show_str("got ", dec.data, dec.len);
            }
            /* streaming gives the same text, in whole characters */
            struct tok_stream *s = tok_stream_new(t, k == 1);
            struct buf st = BUF_INIT;
            buf_init(&st);
            for (size_t i = 0; i < want.n; i++) tok_stream_put(s, want.v[i], &st);
            tok_stream_finish(s, &st);
            tok_stream_free(s);
            if (st.len != d->n || memcmp(st.data, d->u.str, d->n)) {
                if (!problems++) show_str("text", tx->u.str, tx->n);
                printf("  streamed %s differs\n", dfields[k]);
                show_str("want", d->u.str, d->n);
                show_str("got ", st.data, st.len);
            }
            buf_free(&st);
        }
        if (problems) bad++;
        jd_free(&doc);
    }
    printf("tokcorpus: %s: %zu of %zu strings agree\n", argv[1], lines - bad, lines);
    tok_ids_free(&got);
    tok_ids_free(&want);
    buf_free(&dec);
    buf_free(&text);
    tokenizer_free(t);
    return bad ? 1 : 0;
}
