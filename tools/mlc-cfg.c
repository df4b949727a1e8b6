/* mlc-cfg: write mlc-chat-config.json and copy the tokenizer files of a
 * HuggingFace model, as MLC-LLM's gen_config does (see mlc-cfg(1)). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cli.h"
#include "common/depfile.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/mpjson.h"
#include "common/stream.h"
#include "formats/chat_config.h"
#include "formats/conv_template.h"
#include "formats/gen_config.h"
#include "formats/model_record.h"
#include "formats/quant.h"

static const char help[] =
    "Usage: mlc-cfg [OPTION]... --quantization NAME -o DIR\n"
    "Write DIR/mlc-chat-config.json for a HuggingFace model and copy its tokenizer\n"
    "files, as MLC-LLM's gen_config does. The model is the last `model` record on\n"
    "standard input, or --model DIR. Input records are copied to standard output,\n"
    "followed by a `config` record.\n"
    "\n"
    "  -m, --model=DIR                the HuggingFace model directory\n"
    "  -o, --output=DIR               where to write (created if needed)\n"
    "      --quantization=NAME        the quantization scheme (required)\n"
    "      --conv-template=NAME|FILE  a built-in conversation template, or a JSON\n"
    "                                 file holding one; default: chosen from the\n"
    "                                 model's chat template\n"
    "      --context-window-size=N    the longest sequence the model will handle\n"
    "      --sliding-window-size=N    attention window (mistral; -1: none)\n"
    "      --prefill-chunk-size=N     tokens per prefill step\n"
    "      --attention-sink-size=N    tokens kept at the start of a sliding window\n"
    "      --tensor-parallel-shards=N devices to split the model over\n"
    "      --pipeline-parallel-stages=N  pipeline stages (llama)\n"
    "      --max-batch-size=N         the largest decode batch (default 128)\n"
    "      --override=KEY=VALUE       set any model_config field (repeatable)\n"
    "      --stream=FILE              write the records to FILE, not standard output\n"
    "      --depfile=FILE             write the files read to FILE (make syntax;\n"
    "                                 the target is DIR/mlc-chat-config.json)\n"
    "      --list-templates           print the built-in template names and exit\n"
    "  -q, --quiet                    no notes on standard error\n"
    "  -h, --help                     show this help and exit\n"
    "      --version                  show the version and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on an error in the model or a stream, 2 on a\n"
    "usage error.\n";

struct options {
    const char *model;
    const char *output;
    const char *stream;
    const char *depfile;
    struct gen_options gen;
    struct gen_override *overrides;
    size_t n_overrides;
};

enum {
    OPT_QUANT = 256, OPT_CONV, OPT_CTX, OPT_SLIDING, OPT_PREFILL, OPT_SINK, OPT_TP, OPT_PP, OPT_BATCH,
    OPT_OVERRIDE, OPT_STREAM, OPT_DEPFILE, OPT_LIST, OPT_VERSION,
};

/* Named options and the model_config field each sets, with its range. */
static const struct {
    int opt;
    const char *field;
    long min;
} named[] = {
    {OPT_CTX, "context_window_size", 1},      {OPT_SLIDING, "sliding_window_size", -1},
    {OPT_PREFILL, "prefill_chunk_size", 1},    {OPT_SINK, "attention_sink_size", 0},
    {OPT_TP, "tensor_parallel_shards", 1},     {OPT_PP, "pipeline_parallel_stages", 1},
};

static void add_override(struct options *o, const char *key, const char *value, int strict)
{
    o->overrides = xrealloc(o->overrides, (o->n_overrides + 1) * sizeof *o->overrides);
    o->overrides[o->n_overrides++] = (struct gen_override){key, value, strict};
}

static void list_templates(void)
{
    for (size_t i = 0; i < conv_template_builtin_count(); i++) printf("%s\n", conv_template_builtin_name(i));
    exit(0);
}

static struct options parse_command_line(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"output", required_argument, NULL, 'o'},
        {"quantization", required_argument, NULL, OPT_QUANT},
        {"conv-template", required_argument, NULL, OPT_CONV},
        {"context-window-size", required_argument, NULL, OPT_CTX},
        {"sliding-window-size", required_argument, NULL, OPT_SLIDING},
        {"prefill-chunk-size", required_argument, NULL, OPT_PREFILL},
        {"attention-sink-size", required_argument, NULL, OPT_SINK},
        {"tensor-parallel-shards", required_argument, NULL, OPT_TP},
        {"pipeline-parallel-stages", required_argument, NULL, OPT_PP},
        {"max-batch-size", required_argument, NULL, OPT_BATCH},
        {"override", required_argument, NULL, OPT_OVERRIDE},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"depfile", required_argument, NULL, OPT_DEPFILE},
        {"list-templates", no_argument, NULL, OPT_LIST},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct options o = {0};
    o.gen.max_batch_size = 128;
    long n;
    int c;
    while ((c = getopt_long(argc, argv, "m:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'o': o.output = optarg; break;
        case OPT_QUANT: o.gen.quantization = optarg; break;
        case OPT_CONV: o.gen.conv_template = optarg; break;
        case OPT_BATCH:
            parse_int_option("--max-batch-size", optarg, 1, INT_MAX, &n);
            o.gen.max_batch_size = n;
            break;
        case OPT_OVERRIDE: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) usage_error("--override: expected KEY=VALUE, got '%s'", optarg);
            *eq = 0;
            add_override(&o, optarg, eq + 1, 1);
            break;
        }
        case OPT_STREAM: o.stream = optarg; break;
        case OPT_DEPFILE: o.depfile = optarg; break;
        case OPT_LIST: list_templates(); break;
        case 'q': quiet = true; break;
        case 'h': print_help(help);
        case OPT_VERSION: print_version();
        default: {
            size_t i = 0;
            while (i < sizeof named / sizeof named[0] && named[i].opt != c) i++;
            if (i == sizeof named / sizeof named[0]) usage_error("invalid option");
            char *opt = xasprintf("--%s", named[i].field);
            parse_int_option(opt, optarg, named[i].min, INT_MAX, &n);
            free(opt);
            add_override(&o, named[i].field, optarg, 0);
        }
        }
    }
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    if (!o.output) usage_error("-o DIR is required");
    if (!o.gen.quantization) usage_error("--quantization NAME is required (one of %s)", mlc_quantization_names());
    if (!mlc_quantization_known(o.gen.quantization))
        usage_error("--quantization: unknown scheme '%s' (one of %s)", o.gen.quantization, quant_scheme_names());
    /* a scheme MLC-LLM names but mlc-quant cannot write would only fail
     * two stages later */
    if (!quant_scheme_by_name(o.gen.quantization))
        usage_error("--quantization: mlc-quant cannot write %s weights; the schemes it writes: %s",
                    o.gen.quantization, quant_scheme_names());
    o.gen.overrides = o.overrides;
    o.gen.n_overrides = o.n_overrides;
    return o;
}

/* The model directory named by the last `model` record. */
static char *model_from_stream(const struct record_set *set)
{
    const struct record *m = record_set_last(set, "model");
    if (!m) return NULL;
    char *path = NULL, *kind = NULL, *format = NULL;
    if (rec_get_str(m, "path", &path) != 0) die_last();
    if (rec_opt_str(m, "kind", &kind) < 0 || rec_opt_str(m, "format", &format) < 0) die_last();
    if (kind && !strcmp(kind, "mlc"))
        die("model record: %s is an already converted MLC model; mlc-cfg needs a HuggingFace model", path);
    if (format && !strcmp(format, "gguf")) {
        free(path);
        if (!(path = model_record_source(m))) die_last();
    }
    free(kind);
    free(format);
    return path;
}

static void write_config_record(struct stream_writer *w, const char *out_dir, const json_t *config,
                                const char *model_dir)
{
    char *abs_dir = realpath(out_dir, NULL);
    if (!abs_dir) die("%s: %m", out_dir);
    char *path = path_join(abs_dir, "mlc-chat-config.json");
    struct rec_builder b;
    rb_init(&b, "config");
    rb_str(&b, "path", path);
    rb_str(&b, "dir", abs_dir);
    /* the model it was made from: mlc-quant finds its weights there when
     * no model record came before */
    char *model = realpath(model_dir, NULL);
    rb_str(&b, "model", model ? model : model_dir);
    free(model);
    mp_pack_json(rb_key(&b, "config"), config);
    rb_write(&b, w);
    free(path);
    free(abs_dir);
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    struct options o = parse_command_line(argc, argv);
    struct stream_writer out;
    struct record_set records = {0};
    char *from_stream = NULL;
    filter_start(&out, o.stream, false, &records);
    from_stream = model_from_stream(&records);
    o.gen.model_dir = o.model ? o.model : from_stream;
    if (!o.gen.model_dir) usage_error("no model: give --model DIR or a model record on standard input");

    if (o.depfile) deps_record();
    struct gen_result result;
    if (gen_config_build(&o.gen, &result) != 0) die_last();
    if (gen_config_write(&o.gen, &result, o.output) != 0) die_last();
    if (o.depfile) {
        char *target = path_join(o.output, "mlc-chat-config.json");
        if (deps_write(o.depfile, target) != 0) die_last();
        free(target);
    }
    write_config_record(&out, o.output, result.config, o.gen.model_dir);
    if (stream_writer_close(&out) != 0) die_last();

    gen_result_free(&result);
    record_set_free(&records);
    free(from_stream);
    free(o.overrides);
    return 0;
}
