/* tokenizer.json, tokenizer_config.json and special_tokens_map.json from a
 * GGUF's tokenizer.ggml.* metadata (see gguf_hf.h), built the way
 * HuggingFace's converters build them, so that the ids are the original's.
 *
 * "llama" vocabularies (SentencePiece BPE: pieces, scores, token types)
 * become a BPE model with byte fallback whose merges are every split of a
 * piece into two pieces, ranked by the merged piece's score: SentencePiece
 * merges the adjacent pair whose concatenation scores highest, which is
 * the BPE rule with that ranking. "gpt2" vocabularies (byte-level BPE with
 * merges) keep their merges; tokenizer.ggml.pre names the pre-tokenizer,
 * which llama.cpp keeps only as a name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "formats/gguf_hf.h"

/* llama.cpp's token types */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

struct vocab {
    const struct gguf *g;
    const struct gguf_value *tokens, *scores, *types, *merges;
    char *model;                 /* "llama" or "gpt2" */
    char *pre;
    json_t *vocab;               /* token -> id */
    int64_t bos, eos, unk, pad;
    bool add_bos, add_eos, add_space_prefix;
};

static int64_t token_type(const struct vocab *v, uint64_t i)
{
    return v->types ? gguf_array_int(v->types, i) : TT_NORMAL;
}

static json_t *token_str(const struct vocab *v, uint64_t i)
{
    return json_stringn(v->tokens->strs[i].s, (size_t)v->tokens->strs[i].len);
}

static int64_t opt_id(struct vocab *v, const char *key, int *rc)
{
    uint64_t id;
    int got = gguf_get_uint(v->g, key, &id);
    if (got < 0) *rc = -1;
    if (got == 1 && id >= v->tokens->count) {
        *rc = fail("%s: metadata '%s': token id %llu is past the %llu tokens", v->g->path, key,
                   (unsigned long long)id, (unsigned long long)v->tokens->count);
        return -1;
    }
    return got == 1 ? (int64_t)id : -1;
}

static void opt_bool(struct vocab *v, const char *key, bool *out, int *rc)
{
    if (gguf_get_bool(v->g, key, out) < 0) *rc = -1;
}

static void vocab_free(struct vocab *v)
{
    free(v->model);
    free(v->pre);
    json_decref(v->vocab);
}

static int vocab_load(struct vocab *v, const struct gguf *g)
{
    memset(v, 0, sizeof *v);
    v->g = g;
    int got = gguf_get_string(g, "tokenizer.ggml.model", &v->model);
    if (got <= 0) return got < 0 ? -1 : fail("%s: metadata 'tokenizer.ggml.model': missing (the file has no tokenizer)", g->path);
    if (strcmp(v->model, "llama") && strcmp(v->model, "gpt2"))
        return fail("%s: metadata 'tokenizer.ggml.model': '%s' is not supported (llama and gpt2 are)", g->path, v->model);
    bool spm = !strcmp(v->model, "llama");
    if ((got = gguf_get_array(g, "tokenizer.ggml.tokens", 's', &v->tokens)) <= 0)
        return got < 0 ? -1 : fail("%s: metadata 'tokenizer.ggml.tokens': missing", g->path);
    if (gguf_get_array(g, "tokenizer.ggml.token_type", 'i', &v->types) < 0 ||
        gguf_get_array(g, "tokenizer.ggml.scores", 'f', &v->scores) < 0 ||
        gguf_get_array(g, "tokenizer.ggml.merges", 's', &v->merges) < 0)
        return -1;
    if (v->tokens->count == 0 || v->tokens->count > INT32_MAX)
        return fail("%s: metadata 'tokenizer.ggml.tokens': %llu tokens", g->path, (unsigned long long)v->tokens->count);
    if (v->types && v->types->count != v->tokens->count)
        return fail("%s: metadata 'tokenizer.ggml.token_type': %llu entries for %llu tokens", g->path,
                    (unsigned long long)v->types->count, (unsigned long long)v->tokens->count);
    if (v->scores && v->scores->count != v->tokens->count)
        return fail("%s: metadata 'tokenizer.ggml.scores': %llu entries for %llu tokens", g->path,
                    (unsigned long long)v->scores->count, (unsigned long long)v->tokens->count);
    if (spm && !v->scores) return fail("%s: metadata 'tokenizer.ggml.scores': missing (a llama vocabulary needs them)", g->path);
    if (!spm && !v->merges) return fail("%s: metadata 'tokenizer.ggml.merges': missing (a gpt2 vocabulary needs them)", g->path);
    int rc = 0;
    v->bos = opt_id(v, "tokenizer.ggml.bos_token_id", &rc);
    v->eos = opt_id(v, "tokenizer.ggml.eos_token_id", &rc);
    v->unk = opt_id(v, "tokenizer.ggml.unknown_token_id", &rc);
    v->pad = opt_id(v, "tokenizer.ggml.padding_token_id", &rc);
    /* llama.cpp's defaults: SentencePiece vocabularies add BOS and a space */
    v->add_bos = spm;
    v->add_space_prefix = spm;
    opt_bool(v, "tokenizer.ggml.add_bos_token", &v->add_bos, &rc);
    opt_bool(v, "tokenizer.ggml.add_eos_token", &v->add_eos, &rc);
    opt_bool(v, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix, &rc);
    if (rc) return -1;
    if (gguf_get_string(g, "tokenizer.ggml.pre", &v->pre) < 0) return -1;
    /* the default asks for a BOS only when there is one */
    if (v->add_bos && v->bos < 0 && !gguf_find(g, "tokenizer.ggml.add_bos_token")) v->add_bos = false;
    if (v->add_bos && v->bos < 0) return fail("%s: metadata 'tokenizer.ggml.add_bos_token': true, but there is no bos_token_id", g->path);
    if (v->add_eos && v->eos < 0) return fail("%s: metadata 'tokenizer.ggml.add_eos_token': true, but there is no eos_token_id", g->path);
    if (spm && v->unk < 0)
        for (uint64_t i = 0; i < v->tokens->count && v->unk < 0; i++)
            if (token_type(v, i) == TT_UNKNOWN) v->unk = (int64_t)i;
    v->vocab = json_object();
    for (uint64_t i = 0; i < v->tokens->count; i++) {
        json_t *s = token_str(v, i);
        if (!s) return fail("%s: metadata 'tokenizer.ggml.tokens': token %llu is not valid UTF-8", g->path, (unsigned long long)i);
        const char *key = json_string_value(s);
        /* a repeated piece keeps its first id, as a dict built in id order would not: HuggingFace's
         * converters keep the first */
        if (strlen(key) == json_string_length(s) && !json_object_get(v->vocab, key))
            json_object_set_new(v->vocab, key, json_integer((json_int_t)i));
        json_decref(s);
    }
    return 0;
}

/* ---- pieces of tokenizer.json ---- */

static json_t *added_token(const struct vocab *v, uint64_t i, bool special)
{
    json_t *a = json_object();
    json_object_set_new(a, "id", json_integer((json_int_t)i));
    json_object_set_new(a, "content", token_str(v, i));
    json_object_set_new(a, "single_word", json_false());
    json_object_set_new(a, "lstrip", json_false());
    json_object_set_new(a, "rstrip", json_false());
    json_object_set_new(a, "normalized", json_false());
    json_object_set_new(a, "special", json_boolean(special));
    return a;
}

static json_t *added_tokens(const struct vocab *v)
{
    json_t *list = json_array();
    bool spm = !strcmp(v->model, "llama");
    for (uint64_t i = 0; i < v->tokens->count; i++) {
        int64_t t = token_type(v, i);
        bool special = t == TT_CONTROL || (spm && t == TT_UNKNOWN);
        if (special || t == TT_USER) json_array_append_new(list, added_token(v, i, special));
    }
    return list;
}

static json_t *string_pattern(const char *s)
{
    return json_pack("{s:s}", "String", s);
}

static json_t *template_processing(const struct vocab *v)
{
    json_t *single = json_array(), *pair = json_array(), *specials = json_object();
    for (int part = 0; part < 2; part++) {
        json_t *list = part ? pair : single;
        for (int seq = 0; seq <= part; seq++) {
            if (v->add_bos)
                json_array_append_new(list, json_pack("{s:{s:o,s:i}}", "SpecialToken", "id", token_str(v, (uint64_t)v->bos), "type_id", seq));
            json_array_append_new(list, json_pack("{s:{s:s,s:i}}", "Sequence", "id", seq ? "B" : "A", "type_id", seq));
            if (v->add_eos)
                json_array_append_new(list, json_pack("{s:{s:o,s:i}}", "SpecialToken", "id", token_str(v, (uint64_t)v->eos), "type_id", seq));
        }
    }
    int64_t ids[2] = {v->add_bos ? v->bos : -1, v->add_eos ? v->eos : -1};
    for (int k = 0; k < 2; k++) {
        if (ids[k] < 0) continue;
        json_t *name = token_str(v, (uint64_t)ids[k]);
        json_object_set_new(specials, json_string_value(name),
                            json_pack("{s:O,s:[I],s:[O]}", "id", name, "ids", (json_int_t)ids[k], "tokens", name));
        json_decref(name);
    }
    return json_pack("{s:s,s:o,s:o,s:o}", "type", "TemplateProcessing", "single", single, "pair", pair, "special_tokens",
                     specials);
}

/* ---- SentencePiece ("llama") ---- */

struct merge {
    int64_t left, right, merged;
    double score;
};

static int cmp_merge(const void *a, const void *b)
{
    const struct merge *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->merged != y->merged) return x->merged < y->merged ? -1 : 1;
    return x->left < y->left ? -1 : x->left > y->left;
}

/* Pieces BPE may build: normal ones and user-defined ones (Gemma's
 * whitespace runs, which HuggingFace's converter also merges into). */
static bool mergeable(const struct vocab *v, uint64_t i)
{
    int64_t t = token_type(v, i);
    return t == TT_NORMAL || t == TT_USER;
}

static int64_t piece_id(const struct vocab *v, const char *s, size_t n)
{
    json_t *id = json_object_getn(v->vocab, s, n);
    if (!id) return -1;
    int64_t i = json_integer_value(id);
    return mergeable(v, (uint64_t)i) ? i : -1;
}

/* Every split of every piece is looked up, so a piece's length bounds the
 * work: SentencePiece's pieces are a few dozen bytes (16 characters by
 * default); anything near this is not a vocabulary. */
#define SPM_PIECE_MAX 4096

static json_t *spm_merges(const struct vocab *v)
{
    struct merge *m = NULL;
    size_t n = 0, cap = 0;
    for (uint64_t i = 0; i < v->tokens->count; i++) {
        if (!mergeable(v, i)) continue;
        const struct gguf_str *p = &v->tokens->strs[i];
        if (p->len > SPM_PIECE_MAX) {
            free(m);
            fail("%s: metadata 'tokenizer.ggml.tokens': token %llu is %llu bytes long (a SentencePiece piece has "
                 "at most %d here)", v->g->path, (unsigned long long)i, (unsigned long long)p->len, SPM_PIECE_MAX);
            return NULL;
        }
        if (piece_id(v, p->s, (size_t)p->len) != (int64_t)i) continue;
        for (uint64_t cut = 1; cut < p->len; cut++) {
            if (((unsigned char)p->s[cut] & 0xC0) == 0x80) continue; /* inside a character */
            int64_t l = piece_id(v, p->s, (size_t)cut), r = piece_id(v, p->s + cut, (size_t)(p->len - cut));
            if (l < 0 || r < 0) continue;
            m = xgrow(m, &cap, n + 1, sizeof *m);
            m[n++] = (struct merge){l, r, (int64_t)i, gguf_array_float(v->scores, i)};
        }
    }
    if (n) qsort(m, n, sizeof *m, cmp_merge);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, json_pack("[o,o]", token_str(v, (uint64_t)m[i].left), token_str(v, (uint64_t)m[i].right)));
    free(m);
    return list;
}

static json_t *spm_tokenizer(const struct vocab *v)
{
    json_t *merges = spm_merges(v);
    if (!merges) return NULL;
    json_t *model = json_pack("{s:s,s:n,s:o,s:n,s:n,s:b,s:b,s:b,s:O,s:o}", "type", "BPE", "dropout", "unk_token",
                              v->unk >= 0 ? token_str(v, (uint64_t)v->unk) : json_null(), "continuing_subword_prefix",
                              "end_of_word_suffix", "fuse_unk", 1, "byte_fallback", 1, "ignore_merges", 0, "vocab", v->vocab,
                              "merges", merges);
    json_t *replace = json_pack("{s:s,s:o,s:s}", "type", "Replace", "pattern", string_pattern(" "), "content", "\u2581");
    json_t *normalizer = v->add_space_prefix
                             ? json_pack("{s:s,s:[{s:s,s:s},o]}", "type", "Sequence", "normalizers", "type", "Prepend",
                                         "prepend", "\u2581", replace)
                             : replace;
    json_t *decoders = json_pack("[{s:s,s:o,s:s},{s:s},{s:s}]", "type", "Replace", "pattern", string_pattern("\u2581"),
                                 "content", " ", "type", "ByteFallback", "type", "Fuse");
    if (v->add_space_prefix)
        json_array_append_new(decoders, json_pack("{s:s,s:s,s:i,s:i}", "type", "Strip", "content", " ", "start", 1, "stop", 0));
    json_t *post = v->add_bos || v->add_eos ? template_processing(v) : json_null();
    return json_pack("{s:s,s:n,s:n,s:o,s:o,s:n,s:o,s:{s:s,s:o},s:o}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added_tokens(v), "normalizer", normalizer, "pre_tokenizer", "post_processor", post,
                     "decoder", "type", "Sequence", "decoders", decoders, "model", model);
}

/* ---- byte-level BPE ("gpt2") ---- */

static const char LLAMA3_SPLIT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char QWEN2_SPLIT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static json_t *byte_level(bool use_regex)
{
    return json_pack("{s:s,s:b,s:b,s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0, "use_regex",
                     use_regex);
}

static json_t *split_then_bytes(const char *regex)
{
    return json_pack("{s:s,s:[{s:s,s:{s:s},s:s,s:b},o]}", "type", "Sequence", "pretokenizers", "type", "Split", "pattern",
                     "Regex", regex, "behavior", "Isolated", "invert", 0, byte_level(false));
}

/* The pre-tokenizer llama.cpp names by tokenizer.ggml.pre; NULL when the
 * name is not known. ignore_merges: Llama 3 looks whole words up first. */
static json_t *gpt2_pretokenizer(const char *pre, json_t **normalizer, bool *ignore_merges)
{
    *normalizer = json_null();
    *ignore_merges = false;
    if (!pre || !strcmp(pre, "default") || !strcmp(pre, "gpt-2") || !strcmp(pre, "gpt2")) return byte_level(true);
    if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3")) {
        *ignore_merges = true;
        return split_then_bytes(LLAMA3_SPLIT);
    }
    if (!strcmp(pre, "qwen2")) {
        json_decref(*normalizer);
        *normalizer = json_pack("{s:s}", "type", "NFC");
        return split_then_bytes(QWEN2_SPLIT);
    }
    if (!strcmp(pre, "smollm") || !strcmp(pre, "starcoder"))
        return json_pack("{s:s,s:[{s:s,s:b},o]}", "type", "Sequence", "pretokenizers", "type", "Digits",
                         "individual_digits", 1, byte_level(true));
    return NULL;
}

static json_t *gpt2_tokenizer(const struct vocab *v)
{
    json_t *normalizer;
    bool ignore_merges;
    json_t *pretok = gpt2_pretokenizer(v->pre, &normalizer, &ignore_merges);
    if (!pretok) {
        fail("%s: metadata 'tokenizer.ggml.pre': pre-tokenizer '%s' is not known (default, gpt-2, llama-bpe, qwen2, "
             "smollm and starcoder are)", v->g->path, v->pre);
        return NULL;
    }
    json_t *merges = json_array();
    for (uint64_t i = 0; i < v->merges->count; i++) {
        const struct gguf_str *s = &v->merges->strs[i];
        const char *space = memchr(s->s, ' ', (size_t)s->len);
        json_t *l = space ? json_stringn(s->s, (size_t)(space - s->s)) : NULL;
        json_t *r = space ? json_stringn(space + 1, (size_t)(s->len - (uint64_t)(space - s->s) - 1)) : NULL;
        if (!l || !r) {
            json_decref(l);
            json_decref(r);
            json_decref(merges);
            json_decref(normalizer);
            json_decref(pretok);
            fail("%s: metadata 'tokenizer.ggml.merges': merge %llu is not two UTF-8 pieces separated by a space",
                 v->g->path, (unsigned long long)i);
            return NULL;
        }
        json_array_append_new(merges, json_pack("[o,o]", l, r));
    }
    json_t *model = json_pack("{s:s,s:n,s:n,s:s,s:s,s:b,s:b,s:b,s:O,s:o}", "type", "BPE", "dropout", "unk_token",
                              "continuing_subword_prefix", "", "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0,
                              "ignore_merges", ignore_merges, "vocab", v->vocab, "merges", merges);
    json_t *post = v->add_bos || v->add_eos ? template_processing(v) : byte_level(false);
    return json_pack("{s:s,s:n,s:n,s:o,s:o,s:o,s:o,s:o,s:o}", "version", "1.0", "truncation", "padding", "added_tokens",
                     added_tokens(v), "normalizer", normalizer, "pre_tokenizer", pretok, "post_processor", post, "decoder",
                     byte_level(false), "model", model);
}

/* ---- the files ---- */

static json_t *token_or_null(const struct vocab *v, int64_t id)
{
    return id >= 0 ? token_str(v, (uint64_t)id) : json_null();
}

int gguf_tokenizer_files(const struct gguf *g, json_t **tokenizer, json_t **config, json_t **special_map)
{
    *tokenizer = *config = *special_map = NULL;
    struct vocab v;
    if (vocab_load(&v, g)) {
        vocab_free(&v);
        return -1;
    }
    bool spm = !strcmp(v.model, "llama");
    *tokenizer = spm ? spm_tokenizer(&v) : gpt2_tokenizer(&v);
    if (!*tokenizer) {
        vocab_free(&v);
        return -1;
    }
    json_t *c = json_object();
    json_object_set_new(c, "add_bos_token", json_boolean(v.add_bos));
    json_object_set_new(c, "add_eos_token", json_boolean(v.add_eos));
    json_object_set_new(c, "bos_token", token_or_null(&v, v.bos));
    json_object_set_new(c, "eos_token", token_or_null(&v, v.eos));
    json_object_set_new(c, "unk_token", token_or_null(&v, v.unk));
    json_object_set_new(c, "pad_token", token_or_null(&v, v.pad));
    json_object_set_new(c, "clean_up_tokenization_spaces", json_false());
    char *chat = NULL;
    if (gguf_get_string(g, "tokenizer.chat_template", &chat) < 0) {
        vocab_free(&v);
        json_decref(c);
        json_decref(*tokenizer);
        *tokenizer = NULL;
        return -1;
    }
    if (chat) json_object_set_new(c, "chat_template", json_string(chat));
    free(chat);
    json_object_set_new(c, "tokenizer_class", json_string(spm ? "LlamaTokenizerFast" : "PreTrainedTokenizerFast"));
    *config = c;
    json_t *sm = json_object();
    static const char *const names[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    int64_t ids[] = {v.bos, v.eos, v.unk, v.pad};
    for (int k = 0; k < 4; k++)
        if (ids[k] >= 0) json_object_set_new(sm, names[k], token_str(&v, (uint64_t)ids[k]));
    *special_map = sm;
    vocab_free(&v);
    return 0;
}
