/* Generating mlc-chat-config.json from a HuggingFace model directory, as
 * MLC-LLM's gen_config does (mlc-formats.md §4): the work of mlc-cfg.
 *
 * gen_config_build() reads and checks everything and builds the document
 * without writing anything; gen_config_write() then copies the tokenizer
 * files and publishes mlc-chat-config.json, each file atomically, the
 * config last. */
#ifndef MLC_GEN_CONFIG_H
#define MLC_GEN_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A model_config setting from the command line. strict: an --override,
 * which must name a field of the architecture; otherwise (the named
 * options) a field the architecture lacks is skipped with a warning, as
 * MLC does. */
struct gen_override {
    const char *key;
    const char *value;
    int strict;
};

struct gen_options {
    const char *model_dir;       /* HuggingFace model directory, or a .gguf file (or a directory
                                  * with no config.json that holds one) */
    const char *quantization;    /* one of mlc_quantization_names() */
    const char *conv_template;   /* a built-in name or a FILE.json; NULL: choose */
    long long max_batch_size;    /* MLC's default is 128 */
    const struct gen_override *overrides;
    size_t n_overrides;
};

struct gen_result {
    json_t *config;              /* the mlc-chat-config.json document */
    char **files;                /* tokenizer files to copy (names in source_dir) */
    size_t n_files;
    char *source_dir;            /* model_dir, or for a GGUF the temporary directory holding the
                                  * config.json and tokenizer files made from its metadata */
    bool staged;                 /* source_dir is that temporary directory (removed by free) */
    char *staged_from;           /* the GGUF file it was made from, or NULL */
};

int gen_config_build(const struct gen_options *o, struct gen_result *out);
/* Copy the tokenizer files into out_dir (created if needed) and write
 * out_dir/mlc-chat-config.json (Python json.dump(indent=2) bytes). */
int gen_config_write(const struct gen_options *o, const struct gen_result *r, const char *out_dir);
void gen_result_free(struct gen_result *r);

#endif
