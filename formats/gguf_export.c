/* The side files of a GGUF (see gguf_hf.h): config.json and the tokenizer
 * files HuggingFace would have next to the weights, written where mlc-cfg
 * reads a model directory. Also the fuzzing entry point, which runs the
 * same readers over a buffer. */
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "formats/gguf_hf.h"

static int write_json(const char *dir, const char *name, const json_t *v, struct pyjson_style style)
{
    char *path = path_join(dir, name);
    int rc = pyjson_write_file(path, v, &style);
    free(path);
    return rc;
}

int gguf_export_side_files(const char *path, const char *dir)
{
    struct gguf_model m;
    if (gguf_model_open(&m, path)) return -1;
    json_t *config = gguf_model_hf_config(&m), *gen = gguf_model_generation_config(&m);
    json_t *tok = NULL, *tok_config = NULL, *special = NULL;
    int rc = config && gen ? gguf_tokenizer_files(&m.g, &tok, &tok_config, &special) : -1;
    struct pyjson_style compact = pyjson_compact();
    if (!rc) rc = write_json(dir, "config.json", config, pyjson_indent(2));
    if (!rc && json_object_size(gen)) rc = write_json(dir, "generation_config.json", gen, pyjson_indent(2));
    if (!rc) rc = write_json(dir, "tokenizer.json", tok, compact);
    if (!rc) rc = write_json(dir, "tokenizer_config.json", tok_config, pyjson_indent(2));
    if (!rc) rc = write_json(dir, "special_tokens_map.json", special, pyjson_indent(2));
    json_decref(config);
    json_decref(gen);
    json_decref(tok);
    json_decref(tok_config);
    json_decref(special);
    gguf_model_close(&m);
    return rc;
}

int gguf_fuzz_one(const uint8_t *data, size_t size)
{
    struct gguf g;
    if (gguf_parse(&g, data, size, "fuzz.gguf")) return 0;
    json_t *tok = NULL, *tok_config = NULL, *special = NULL;
    if (!gguf_tokenizer_files(&g, &tok, &tok_config, &special)) {
        json_decref(tok);
        json_decref(tok_config);
        json_decref(special);
    }
    struct gguf_model m;
    if (gguf_model_from(&m, &g)) return 0;
    json_decref(gguf_model_hf_config(&m));
    json_decref(gguf_model_generation_config(&m));
    /* every tensor's values, as the converter would take them */
    for (size_t i = 0; i < m.ntensors; i++) {
        const void *d;
        void *owned;
        if (m.tensors[i].numel <= (1u << 20) && !gguf_model_tensor_data(&m, &m.tensors[i], &d, &owned)) free(owned);
    }
    gguf_model_close(&m);
    return 0;
}
