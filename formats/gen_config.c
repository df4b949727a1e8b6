/* mlc-chat-config.json generation (see gen_config.h). The steps and their
 * order follow MLC-LLM's interface/gen_config.py. */
#include "formats/gen_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "formats/chat_config.h"
#include "common/atomic.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/cleanup.h"
#include "formats/conv_template.h"
#include "formats/gguf_hf.h"
#include "formats/model_arch.h"
#include "formats/tokenizer/tokenizer_files.h"

void gen_result_free(struct gen_result *r)
{
    if (r->staged) {
        remove_tree(r->source_dir);
        cleanup_unregister(r->source_dir);
    }
    free(r->source_dir);
    free(r->staged_from);
    json_decref(r->config);
    for (size_t i = 0; i < r->n_files; i++) free(r->files[i]);
    free(r->files);
    memset(r, 0, sizeof *r);
}

/* Everything gen_config_build gathers before it assembles the document. */
struct gen_state {
    const struct gen_options *o;
    const struct model_arch *arch;
    char *config_path;
    char *config_name;           /* how messages name it (the GGUF it was made from) */
    json_t *config;              /* config.json */
    json_t *generation;          /* generation_config.json, or NULL */
    json_t *model_config;
    char *tokenizer_path;        /* the tokenizer MLC's runtime would load */
    json_t *tokenizer_json;      /* the model's tokenizer.json, or NULL */
    struct vocab_stats vocab;    /* what the tokenizer can produce (id_end 0: none) */
    bool have_vocab;
    json_t *gen_fields;          /* temperature ... eos_token_id, with their values */
    json_t *gen_sources;         /* field -> file it came from */
    struct conv_template *conv;
    struct gen_result *out;
};

static char *in_model(const struct gen_state *s, const char *name)
{
    return path_join(s->out->source_dir, name);
}

static bool model_has(const struct gen_state *s, const char *name)
{
    char *p = in_model(s, name);
    bool ok = path_exists(p);
    free(p);
    return ok;
}

/* ---- config.json and the overrides ---- */

static json_t *build_overrides(const struct gen_state *s)
{
    json_t *ov = json_object();
    json_object_set_new(ov, "max_batch_size", json_integer(s->o->max_batch_size));
    for (size_t i = 0; i < s->o->n_overrides; i++) {
        const struct gen_override *g = &s->o->overrides[i];
        const struct arch_field *f = model_arch_field(s->arch, g->key);
        if (!f && g->strict) {
            fail("--override %s: %s's model_config has no field '%s' (fields: %s)", g->key, s->arch->name, g->key,
                 model_arch_field_names(s->arch));
            goto bad;
        }
        json_t *v = f ? model_arch_parse_value(f, g->value) : json_string(g->value);
        if (!v) {
            fail_prefix("%s", g->strict ? "--override" : "option");
            goto bad;
        }
        json_object_set_new(ov, g->key, v);
    }
    return ov;
bad:
    json_decref(ov);
    return NULL;
}

static int load_model_config(struct gen_state *s)
{
    s->config_path = in_model(s, "config.json");
    if (!path_exists(s->config_path)) {
        if (model_has(s, "mlc-chat-config.json"))
            return fail("%s: no config.json: this is an already converted MLC model; mlc-cfg needs the "
                        "HuggingFace model", s->out->source_dir);
        return fail("%s: missing (not a HuggingFace model directory?)", s->config_path);
    }
    s->config_name = s->out->staged_from ? xasprintf("%s (its metadata as config.json)", s->out->staged_from)
                                         : xstrdup(s->config_path);
    s->config = json_load_path(s->config_path);
    if (!s->config) return -1;
    if (!json_is_object(s->config)) return fail("%s: not a JSON object", s->config_name);
    const json_t *mt = json_object_get(s->config, "model_type");
    if (!mt) return fail("%s: missing field 'model_type'", s->config_name);
    if (!json_is_string(mt)) return fail("%s: field 'model_type' must be a string", s->config_name);
    s->arch = model_arch_find(json_string_value(mt));
    if (!s->arch)
        return fail("%s: model_type '%s' is not supported (supported: %s)", s->config_name, json_string_value(mt),
                    model_arch_names());
    if (!mlc_quantization_known(s->o->quantization))
        return fail("unknown quantization '%s' (known: %s)", s->o->quantization, mlc_quantization_names());
    json_t *ov = build_overrides(s);
    if (!ov) return -1;
    s->model_config = model_arch_build_config(s->arch, s->config, s->config_name, ov);
    json_decref(ov);
    return s->model_config ? 0 : -1;
}

/* ---- tokenizer ---- */


/* How many bytes of s to quote in a message: at most max, whole UTF-8
 * characters. */
static int quote_len(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n <= max) return (int)n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
    return (int)n;
}
static int load_tokenizer(struct gen_state *s)
{
    /* the runtime's order: tokenizer.json, tokenizer.model, vocab.json */
    static const char *const kinds[] = {"tokenizer.json", "tokenizer.model", "vocab.json"};
    for (size_t i = 0; i < 3 && !s->tokenizer_path; i++)
        if (model_has(s, kinds[i])) s->tokenizer_path = in_model(s, kinds[i]);
    const char *path = s->tokenizer_path;
    int rc;
    if (!path) {
        rc = fail("%s: no tokenizer (tokenizer.json, tokenizer.model, or vocab.json with merges.txt)", s->out->source_dir);
    } else if (!strcmp(path_basename(path), "tokenizer.json")) {
        s->tokenizer_json = json_load_path(path);
        rc = !s->tokenizer_json                 ? -1
             : !json_is_object(s->tokenizer_json) ? fail("%s: not a JSON object", path)
                                                 : vocab_stats_tokenizer_json(s->tokenizer_json, path, &s->vocab);
    } else if (!strcmp(path_basename(path), "tokenizer.model")) {
        rc = vocab_stats_sentencepiece(path, &s->vocab);
    } else if (!model_has(s, "merges.txt")) {
        rc = fail("%s: vocab.json without merges.txt is not a tokenizer MLC can load", s->out->source_dir);
    } else {
        char *added = in_model(s, "added_tokens.json");
        rc = vocab_stats_vocab_json(path, path_exists(added) ? added : NULL, &s->vocab);
        free(added);
    }
    s->have_vocab = rc == 0;
    if (rc) return -1;
    long long vocab_size = model_config_int(s->model_config, "vocab_size", 0);
    if (s->vocab.id_end > vocab_size)
    {
        /* a token's text may be anything, of any length: quote the start */
        const char *tok = s->vocab.largest ? s->vocab.largest : "";
        int q = quote_len(tok, 60);
        return fail("%s: token id %lld%s%.*s%s is past %s's vocab_size %lld: the embedding has only %lld rows",
                    s->vocab.source, s->vocab.id_end - 1, s->vocab.largest ? " ('" : "", q, tok,
                    !s->vocab.largest ? "" : tok[q] ? "...')" : "')", s->config_name, vocab_size, vocab_size);
    }
    for (size_t i = 0; mlc_tokenizer_files[i]; i++) {
        if (!model_has(s, mlc_tokenizer_files[i])) continue;
        s->out->files = xrealloc(s->out->files, (s->out->n_files + 1) * sizeof *s->out->files);
        s->out->files[s->out->n_files++] = xstrdup(mlc_tokenizer_files[i]);
    }
    return 0;
}

/* ---- generation settings ---- */

static const char *const gen_keys[] = {
    "temperature",  "presence_penalty", "frequency_penalty", "repetition_penalty", "top_p",
    "pad_token_id", "bos_token_id",     "eos_token_id",      NULL,
};

static bool is_token_field(const char *key)
{
    size_t n = strlen(key);
    return n >= 9 && !strcmp(key + n - 9, "_token_id");
}

static int check_gen_value(const char *file, const char *key, const json_t *v)
{
    if (!is_token_field(key)) return json_is_number(v) ? 0 : fail("%s: field '%s' must be a number", file, key);
    if (json_is_integer(v)) return 0;
    if (!strcmp(key, "eos_token_id") && json_is_array(v) && json_array_size(v) > 0) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!json_is_integer(json_array_get(v, i)))
                return fail("%s: eos_token_id[%zu] must be an integer", file, i);
        return 0;
    }
    return fail("%s: field '%s' must be %s", file, key,
                strcmp(key, "eos_token_id") ? "an integer" : "an integer or a list of integers");
}

/* generation_config.json, then config.json: the first non-null value of
 * each field wins and is kept as written; MLC's defaults fill the rest. */
static int load_generation(struct gen_state *s)
{
    char *gen_path = in_model(s, "generation_config.json");
    int rc = 0;
    if (path_exists(gen_path)) {
        s->generation = json_load_path(gen_path);
        if (!s->generation || !json_is_object(s->generation)) {
            rc = s->generation ? fail("%s: not a JSON object", gen_path) : -1;
            goto out;
        }
    }
    static const double defaults[] = {1.0, 0.0, 0.0, 1.0, 1.0};
    s->gen_fields = json_object();
    s->gen_sources = json_object();
    const json_t *files[2] = {s->generation, s->config};
    const char *names[2] = {gen_path, s->config_name};
    for (size_t k = 0; gen_keys[k]; k++) {
        json_t *v = NULL;
        const char *from = "MLC's default";
        for (int f = 0; f < 2 && !v; f++) {
            json_t *x = json_object_get(files[f], gen_keys[k]);
            if (!x || json_is_null(x)) continue;
            if (check_gen_value(names[f], gen_keys[k], x)) {
                rc = -1;
                goto out;
            }
            v = json_incref(x);
            from = names[f];
        }
        if (!v) v = k < 5 ? json_real(defaults[k]) : json_integer(k == 5 ? 0 : k == 6 ? 1 : 2);
        json_object_set_new(s->gen_fields, gen_keys[k], v);
        json_object_set_new(s->gen_sources, gen_keys[k], json_string(from));
    }
out:
    free(gen_path);
    return rc;
}

/* bos and eos ids must name real tokens: rows of the embedding and ids the
 * tokenizer knows. */
static int check_special_ids(struct gen_state *s)
{
    long long vocab_size = model_config_int(s->model_config, "vocab_size", 0);
    long long end = s->have_vocab && s->vocab.id_end < vocab_size ? s->vocab.id_end : vocab_size;
    static const char *const keys[] = {"bos_token_id", "eos_token_id"};
    for (int k = 0; k < 2; k++) {
        const json_t *v = json_object_get(s->gen_fields, keys[k]);
        size_t n = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; i < n; i++) {
            long long id = json_integer_value(json_is_array(v) ? json_array_get(v, i) : v);
            if (id >= 0 && id < end) continue;
            return fail("%s: field '%s': id %lld is outside the vocabulary (ids 0 to %lld: %s)",
                        json_string_value(json_object_get(s->gen_sources, keys[k])), keys[k], id, end - 1,
                        end < vocab_size ? s->vocab.source : "vocab_size");
        }
    }
    return 0;
}

static long long active_vocab_size(const struct gen_state *s)
{
    long long vocab_size = model_config_int(s->model_config, "vocab_size", 0);
    /* MLC asks HuggingFace for len(tokenizer) when there is a tokenizer.json */
    if (!s->tokenizer_json) return vocab_size;
    if (s->vocab.id_end > s->vocab.distinct) {
        note("tokenizer.json has %lld distinct tokens but ids up to %lld: active_vocab_size %lld keeps "
             "every id samplable", s->vocab.distinct, s->vocab.id_end - 1, s->vocab.id_end);
        return s->vocab.id_end;
    }
    return s->vocab.distinct;
}

/* ---- conversation template ---- */

static bool str_is(const json_t *v, const char *s)
{
    return json_is_string(v) && !strcmp(json_string_value(v), s);
}

/* The chat template text: tokenizer_config.json's chat_template (a string,
 * or a list of named templates: "default" or the first), or a
 * chat_template.jinja file. Malformed files give NULL. */
static char *chat_template_text(const struct gen_state *s)
{
    char *path = in_model(s, "tokenizer_config.json");
    json_t *tc = NULL;
    struct buf b = BUF_INIT;
    buf_init(&b);
    if (path_exists(path)) {
        /* HuggingFace writes model_max_length as int(1e30), too big for
         * jansson's integers; only the chat template is needed here */
        json_error_t err;
        if (read_file(path, &b, 0) != 0)
            warning("cannot read the chat template: %s", last_error());
        else if (!(tc = json_loadb(b.data, b.len, JSON_DECODE_INT_AS_REAL, &err)))
            warning("%s:%d:%d: cannot read the chat template: %s", path, err.line, err.column, err.text);
    }
    buf_free(&b);
    free(path);
    char *text = NULL;
    const json_t *ct = json_object_get(tc, "chat_template");
    if (json_is_string(ct)) text = xstrdup(json_string_value(ct));
    const json_t *pick = json_array_get(ct, 0);
    for (size_t i = 0; i < json_array_size(ct); i++)
        if (str_is(json_object_get(json_array_get(ct, i), "name"), "default")) pick = json_array_get(ct, i);
    if (json_is_string(json_object_get(pick, "template")))
        text = xstrdup(json_string_value(json_object_get(pick, "template")));
    json_decref(tc);
    if (!text) {
        path = in_model(s, "chat_template.jinja");
        buf_init(&b);
        if (path_exists(path) && read_file(path, &b, 1 << 24) == 0) text = buf_detach(&b, NULL);
        buf_free(&b);
        free(path);
    }
    return text;
}

static bool is_builtin(const char *name)
{
    for (size_t i = 0; i < conv_template_builtin_count(); i++)
        if (!strcmp(conv_template_builtin_name(i), name)) return true;
    return false;
}

static int choose_template(struct gen_state *s)
{
    const char *arg = s->o->conv_template;
    if (arg) {
        /* a built-in name, else a file; a bare word that is neither gets
         * the list of names rather than "no such file" */
        bool file = !is_builtin(arg) && (strchr(arg, '/') || strstr(arg, ".json") || path_exists(arg));
        s->conv = file ? conv_template_load(arg) : conv_template_builtin(arg);
        return s->conv ? 0 : -1;
    }
    char *text = chat_template_text(s);
    const char *why;
    const char *name = conv_template_guess(text, s->arch->name, &why);
    free(text);
    note("conversation template %s: %s (--conv-template chooses another)", name, why);
    s->conv = conv_template_builtin(name);
    return s->conv ? 0 : -1;
}

/* Stop and prefix ids the model cannot produce mean the wrong template. */
static void check_template_ids(const struct gen_state *s)
{
    long long end = model_config_int(s->model_config, "vocab_size", 0);
    if (s->have_vocab && s->vocab.id_end < end) end = s->vocab.id_end;
    const struct conv_template *t = s->conv;
    for (size_t i = 0; i < t->n_stop_token_ids + t->n_system_prefix; i++) {
        bool stop = i < t->n_stop_token_ids;
        int32_t id = stop ? t->stop_token_ids[i] : t->system_prefix_token_ids[i - t->n_stop_token_ids];
        if (id < end) continue;
        warning("conversation template %s: %s token id %d is outside the vocabulary (ids 0 to %lld): is it "
                "the template for this model?", t->name ? t->name : "(unnamed)", stop ? "stop" : "system prefix",
                (int)id, end - 1);
        return;
    }
}

/* ---- assembly ---- */

static json_t *top_int(const json_t *mc, const char *key, long long absent)
{
    const json_t *v = json_object_get(mc, key);
    return v ? json_incref((json_t *)v) : json_integer(absent);
}

static json_t *assemble(struct gen_state *s)
{
    const json_t *mc = s->model_config;
    json_t *c = json_object();
    json_object_set_new(c, "version", json_string("0.1.0"));
    json_object_set_new(c, "model_type", json_string(s->arch->name));
    json_object_set_new(c, "quantization", json_string(s->o->quantization));
    json_object_set(c, "model_config", (json_t *)mc);
    json_object_set_new(c, "vocab_size", top_int(mc, "vocab_size", 0));
    json_object_set_new(c, "context_window_size", top_int(mc, "context_window_size", -1));
    json_object_set_new(c, "sliding_window_size", top_int(mc, "sliding_window_size", -1));
    json_object_set_new(c, "prefill_chunk_size", top_int(mc, "prefill_chunk_size", 0));
    json_object_set_new(c, "attention_sink_size", top_int(mc, "attention_sink_size", -1));
    json_object_set_new(c, "tensor_parallel_shards", top_int(mc, "tensor_parallel_shards", 1));
    json_object_set_new(c, "pipeline_parallel_stages", top_int(mc, "pipeline_parallel_stages", 1));
    json_object_set_new(c, "active_vocab_size", json_integer(active_vocab_size(s)));
    for (size_t k = 0; k < 5; k++) json_object_set(c, gen_keys[k], json_object_get(s->gen_fields, gen_keys[k]));
    json_t *files = json_array();
    for (size_t i = 0; i < s->out->n_files; i++) json_array_append_new(files, json_string(s->out->files[i]));
    json_object_set_new(c, "tokenizer_files", files);
    struct tokenizer_info info;
    tokenizer_info_detect(s->tokenizer_json, &info);
    json_object_set_new(c, "tokenizer_info", tokenizer_info_to_json(&info));
    json_object_set_new(c, "conv_template", conv_template_to_json(s->conv));
    for (size_t k = 5; gen_keys[k]; k++) json_object_set(c, gen_keys[k], json_object_get(s->gen_fields, gen_keys[k]));
    json_object_set_new(c, "model_task", json_string("chat"));
    json_object_set_new(c, "embedding_metadata", json_null());
    return c;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* A GGUF holds its configuration and tokenizer as metadata: they are
 * written as HuggingFace's files into a temporary directory, which then
 * stands for the model directory. */
static int stage_source(const struct gen_options *o, struct gen_result *out)
{
    char *gguf = NULL;
    if (!is_dir(o->model_dir) && ends_with(o->model_dir, ".gguf")) {
        gguf = xstrdup(o->model_dir);
    } else if (is_dir(o->model_dir)) {
        char *config = path_join(o->model_dir, "config.json"), *mlc = path_join(o->model_dir, "mlc-chat-config.json");
        if (!path_exists(config) && !path_exists(mlc)) gguf = gguf_in_dir(o->model_dir);
        free(config);
        free(mlc);
        if (!gguf && strstr(last_error(), ".gguf files")) return -1;
    }
    if (!gguf) {
        out->source_dir = xstrdup(o->model_dir);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    char *dir = xasprintf("%s/mlc-cfg-gguf-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fail("cannot make a temporary directory %s: %s", dir, strerror(errno));
        free(dir);
        free(gguf);
        return -1;
    }
    cleanup_register(dir);
    out->source_dir = dir;
    out->staged = true;
    out->staged_from = gguf;
    return gguf_export_side_files(gguf, dir);
}

int gen_config_build(const struct gen_options *o, struct gen_result *out)
{
    memset(out, 0, sizeof *out);
    struct gen_state s = {.o = o, .out = out};
    if (stage_source(o, out) != 0) {
        gen_result_free(out);
        return -1;
    }
    int rc = load_model_config(&s) || load_tokenizer(&s) || load_generation(&s) || check_special_ids(&s) ||
             choose_template(&s);
    if (!rc) {
        check_template_ids(&s);
        out->config = assemble(&s);
    }
    free(s.config_path);
    free(s.config_name);
    json_decref(s.config);
    json_decref(s.generation);
    json_decref(s.model_config);
    json_decref(s.tokenizer_json);
    free(s.tokenizer_path);
    json_decref(s.gen_fields);
    json_decref(s.gen_sources);
    vocab_stats_free(&s.vocab);
    conv_template_free(s.conv);
    if (rc) gen_result_free(out);
    return rc ? -1 : 0;
}

int gen_config_write(const struct gen_options *o, const struct gen_result *r, const char *out_dir)
{
    (void)o; /* the files come from r->source_dir, which may differ from o->model_dir */
    if (make_dirs(out_dir, 0777) != 0) return -1;
    atomic_clean_stale(out_dir);
    /* the tokenizer files and the config are published together: all are
     * written before any is renamed, so a full disk leaves none of them
     * (and the config, renamed last, never names files that are not
     * there) */
    struct atomic_file *files = xcalloc(r->n_files + 1, sizeof *files);
    size_t begun = 0;
    int rc = 0;
    for (size_t i = 0; i < r->n_files && rc == 0; i++) {
        char *src = path_join(r->source_dir, r->files[i]);
        char *dst = path_join(out_dir, r->files[i]);
        if (atomic_file_begin(&files[begun], dst) != 0) rc = -1;
        else if (atomic_file_fill_from(&files[begun++], src) != 0) rc = -1;
        free(src);
        free(dst);
    }
    if (rc == 0) {
        char *path = path_join(out_dir, "mlc-chat-config.json");
        struct pyjson_style style = pyjson_indent(2);
        struct buf text = BUF_INIT;
        buf_init(&text);
        if (pyjson_dump(&text, r->config, &style) != 0) rc = fail_prefix("%s", path);
        else if (atomic_file_begin(&files[begun], path) != 0) rc = -1;
        else if (write_all(files[begun++].fd, text.data, text.len) != 0)
            rc = fail("%s: write error: %s", path, strerror(errno));
        buf_free(&text);
        free(path);
    }
    if (rc == 0) rc = atomic_files_commit(files, begun);
    else
        for (size_t i = 0; i < begun; i++) atomic_file_abort(&files[i]);
    free(files);
    return rc;
}
