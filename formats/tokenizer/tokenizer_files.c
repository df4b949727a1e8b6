/* Tokenizer files: MLC's copy list, tokenizer_info detection and vocabulary
 * figures (see tokenizer_files.h). */
#include "formats/tokenizer/tokenizer_files.h"
#include "formats/tokenizer/tokenizer.h"

#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"

const char *const mlc_tokenizer_files[] = {
    "tokenizer.model", "tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json", "tokenizer_config.json",
    NULL,
};

/* ---- tokenizer_info ---- */

static bool str_is(const json_t *v, const char *s)
{
    return json_is_string(v) && !strcmp(json_string_value(v), s);
}

static const char *type_of(const json_t *o)
{
    return json_string_value(json_object_get(o, "type"));
}

/* The object itself, or the members of a Sequence of them. */
static size_t members(const json_t *o, const char *list_key, const json_t **items, size_t max)
{
    if (!json_is_object(o)) return 0;
    if (!str_is(json_object_get(o, "type"), "Sequence")) {
        items[0] = o;
        return 1;
    }
    const json_t *list = json_object_get(o, list_key);
    size_t n = 0;
    for (size_t i = 0; i < json_array_size(list) && n < max; i++)
        if (json_is_object(json_array_get(list, i))) items[n++] = json_array_get(list, i);
    return n;
}

void tokenizer_info_detect(const json_t *tj, struct tokenizer_info *out)
{
    out->token_postproc_method = "byte_fallback";
    out->prepend_space_in_encode = false;
    out->strip_space_in_decode = false;
    if (!tj) return;
    const json_t *items[64];
    const json_t *decoder = json_object_get(tj, "decoder");
    size_t n = members(decoder, "decoders", items, 64);
    for (size_t i = 0; i < n; i++) {
        const char *t = type_of(items[i]);
        if (t && !strcmp(t, "ByteLevel")) out->token_postproc_method = "byte_level";
        if (t && !strcmp(t, "ByteFallback")) out->token_postproc_method = "byte_fallback";
        if (t && !strcmp(t, "Strip") && str_is(json_object_get(items[i], "content"), " ") &&
            json_is_integer(json_object_get(items[i], "start")) &&
            json_integer_value(json_object_get(items[i], "start")) == 1 &&
            json_is_integer(json_object_get(items[i], "stop")) &&
            json_integer_value(json_object_get(items[i], "stop")) == 0)
            out->strip_space_in_decode = true;
    }
    n = members(json_object_get(tj, "normalizer"), "normalizers", items, 64);
    for (size_t i = 0; i < n; i++)
        if (str_is(json_object_get(items[i], "type"), "Prepend") &&
            str_is(json_object_get(items[i], "prepend"), "\xe2\x96\x81"))
            out->prepend_space_in_encode = true;
}

json_t *tokenizer_info_to_json(const struct tokenizer_info *info)
{
    json_t *o = json_object();
    json_object_set_new(o, "token_postproc_method", json_string(info->token_postproc_method));
    json_object_set_new(o, "prepend_space_in_encode", json_boolean(info->prepend_space_in_encode));
    json_object_set_new(o, "strip_space_in_decode", json_boolean(info->strip_space_in_decode));
    return o;
}

/* ---- vocabulary figures ---- */

void vocab_stats_free(struct vocab_stats *s)
{
    free(s->largest);
    s->largest = NULL;
}

/* A token longer than any tokenizer loads: refused here already, and
 * never quoted whole. */
static int too_long(const char *path, const char *field, const char *token)
{
    size_t n = strlen(token);
    if (n <= TOKENIZER_MAX_TOKEN_BYTES) return 0;
    return fail("%s: %s: a token of %zu bytes (at most %u allowed) starting '%.40s'", path, field, n,
                TOKENIZER_MAX_TOKEN_BYTES, token);
}

static void note_id(struct vocab_stats *s, long long id, const char *token)
{
    if (id + 1 > s->id_end) {
        s->id_end = id + 1;
        free(s->largest);
        s->largest = token ? xstrdup(token) : NULL;
    }
}

/* {token: id}: every id a non-negative integer. `seen` collects the tokens. */
static int add_token_map(struct vocab_stats *s, const json_t *map, json_t *seen, const char *path, const char *field)
{
    const char *tok;
    json_t *id;
    json_object_foreach((json_t *)map, tok, id) {
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX)
            return fail("%s: %s: the id of token '%.60s' must be an integer from 0 to %d", path, field, tok,
                        INT32_MAX);
        if (too_long(path, field, tok)) return -1;
        note_id(s, json_integer_value(id), tok);
        json_object_set_new(seen, tok, json_true());
    }
    return 0;
}

int vocab_stats_tokenizer_json(const json_t *tj, const char *path, struct vocab_stats *out)
{
    memset(out, 0, sizeof *out);
    out->source = path;
    const json_t *model = json_object_get(tj, "model");
    const json_t *vocab = json_object_get(model, "vocab");
    json_t *seen = json_object();
    int rc = -1;
    if (json_is_object(vocab)) {
        if (add_token_map(out, vocab, seen, path, "model.vocab")) goto done;
    } else if (json_is_array(vocab)) {
        /* Unigram: the id is the position */
        for (size_t i = 0; i < json_array_size(vocab); i++) {
            const json_t *e = json_array_get(vocab, i);
            const json_t *piece = json_array_get(e, 0);
            if (!json_is_string(piece)) {
                fail("%s: model.vocab[%zu] must be [piece, score]", path, i);
                goto done;
            }
            if (too_long(path, "model.vocab", json_string_value(piece))) goto done;
            note_id(out, (long long)i, json_string_value(piece));
            json_object_set_new(seen, json_string_value(piece), json_true());
        }
    } else {
        fail("%s: missing field 'model.vocab' (an object or a list)", path);
        goto done;
    }
    const json_t *added = json_object_get(tj, "added_tokens");
    if (added && !json_is_array(added) && !json_is_null(added)) {
        fail("%s: field 'added_tokens' must be a list", path);
        goto done;
    }
    json_t *contents = json_object();
    for (size_t i = 0; i < json_array_size(added); i++) {
        const json_t *t = json_array_get(added, i);
        const json_t *id = json_object_get(t, "id");
        const char *content = json_string_value(json_object_get(t, "content"));
        if (!content || !json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX) {
            json_decref(contents);
            fail("%s: added_tokens[%zu] must have a string 'content' and an integer 'id' from 0 to %d", path,
                 i, INT32_MAX);
            goto done;
        }
        if (too_long(path, "added_tokens", content)) {
            json_decref(contents);
            goto done;
        }
        if (json_object_get(contents, content)) {
            fail("%s: added_tokens: duplicate content '%s' (ids %lld and %lld); HuggingFace's tokenizer "
                 "misbehaves on it: remove one", path, content,
                 (long long)json_integer_value(json_object_get(contents, content)), (long long)json_integer_value(id));
            json_decref(contents);
            goto done;
        }
        json_object_set(contents, content, (json_t *)id);
        note_id(out, json_integer_value(id), content);
        json_object_set_new(seen, content, json_true());
    }
    json_decref(contents);
    out->distinct = (long long)json_object_size(seen);
    rc = 0;
done:
    json_decref(seen);
    if (rc) vocab_stats_free(out);
    return rc;
}

/* ---- SentencePiece protobuf ---- */

static int read_varint(const unsigned char *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) return -1;
        unsigned char b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

int vocab_stats_sentencepiece(const char *path, struct vocab_stats *out)
{
    memset(out, 0, sizeof *out);
    out->source = path;
    struct buf b = BUF_INIT;
    buf_init(&b);
    if (read_file(path, &b, 0) != 0) {
        buf_free(&b);
        return -1;
    }
    const unsigned char *p = (const unsigned char *)b.data;
    size_t pos = 0, len = b.len;
    long long pieces = 0;
    int rc = 0;
    while (pos < len) {
        uint64_t key, n;
        size_t at = pos;
        if (read_varint(p, len, &pos, &key)) goto bad;
        unsigned wire = (unsigned)(key & 7);
        uint64_t field = key >> 3;
        switch (wire) {
        case 0:
            if (read_varint(p, len, &pos, &n)) goto bad;
            break;
        case 1:
        case 5:
            n = wire == 1 ? 8 : 4;
            if (len - pos < n) goto bad;
            pos += n;
            break;
        case 2:
            if (read_varint(p, len, &pos, &n) || n > len - pos) goto bad;
            pos += n;
            if (field == 1) pieces++;
            break;
        default:
            rc = fail("%s: not a SentencePiece model (protobuf wire type %u at byte %zu)", path, wire, at);
            goto done;
        }
        continue;
    bad:
        rc = fail("%s: not a SentencePiece model (truncated protobuf field at byte %zu)", path, at);
        goto done;
    }
    if (pieces == 0) rc = fail("%s: a SentencePiece model without pieces", path);
    out->distinct = out->id_end = pieces;
done:
    buf_free(&b);
    return rc;
}

int vocab_stats_vocab_json(const char *vocab_path, const char *added_path, struct vocab_stats *out)
{
    memset(out, 0, sizeof *out);
    out->source = vocab_path;
    json_t *vocab = json_load_path(vocab_path);
    if (!vocab) return -1;
    json_t *seen = json_object();
    int rc = -1;
    if (!json_is_object(vocab)) {
        fail("%s: must be an object {token: id}", vocab_path);
        goto done;
    }
    if (add_token_map(out, vocab, seen, vocab_path, "vocabulary")) goto done;
    if (added_path) {
        json_t *added = json_load_path(added_path);
        if (!added) goto done;
        int bad = !json_is_object(added) ? fail("%s: must be an object {content: id}", added_path)
                                         : add_token_map(out, added, seen, added_path, "added tokens");
        json_decref(added);
        if (bad) goto done;
    }
    out->distinct = (long long)json_object_size(seen);
    rc = 0;
done:
    json_decref(vocab);
    json_decref(seen);
    if (rc) vocab_stats_free(out);
    return rc;
}
