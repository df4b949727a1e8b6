/* mlc-lower: build a model's compute graph and run the optimisation passes
 * (see mlc-lower(1)). */
#include <getopt.h>
#include <stdnoreturn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"
#include "common/depfile.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/mpjson.h"
#include "common/lower/lower.h"
#include "common/lower/passes.h"
#include "common/progress.h"
#include "common/stream.h"
#include "formats/chat_config.h"
#include "formats/tensor_cache.h"

static const char help[] =
    "Usage: mlc-lower [OPTION]...\n"
    "Build the decoder graph of a model from its mlc-chat-config.json and the\n"
    "tensors of its weights, run the optimisation passes, plan activation\n"
    "memory, and append a `module` record to the stream.\n"
    "\n"
    "Inputs: the last `config` and `weights` records on standard input, or:\n"
    "      --config=FILE          mlc-chat-config.json\n"
    "      --weights=PATH         tensor-cache.json, or its directory\n"
    "\n"
    "  -O0, -O1, -O2, -O3         optimisation level (default -O2)\n"
    "      --pass-off=NAME        skip a pass (repeatable; see --list-passes)\n"
    "      --list-passes          print the passes and the level of each\n"
    "      --overrides='K=V;...'  MLC's ModelConfigOverride keys:\n"
    "                             context_window_size, sliding_window_size,\n"
    "                             prefill_chunk_size, attention_sink_size,\n"
    "                             max_batch_size, tensor_parallel_shards,\n"
    "                             pipeline_parallel_stages\n"
    "      --max-memory=BYTES     fail unless the estimate fits (k/M/G suffixes)\n"
    "      --dump                 append a `pass` record after every pass\n"
    "      --stream=FILE          write the records to FILE instead of stdout\n"
    "      --depfile=FILE         write the files read to FILE (make syntax; the\n"
    "                             target is the --stream FILE)\n"
    "  -q, --quiet                no notes on standard error\n"
    "  -h, --help                 show this help and exit\n"
    "      --version              show the version and exit\n";

struct options {
    const char *config;
    const char *weights;
    int level;
    const char **off;
    int noff;
    const char *overrides;
    unsigned long long max_memory;
    int dump;
    const char *stream;
    const char *depfile;
};

static noreturn void list_passes(void)
{
    int n;
    const struct pass *p = pass_list(&n);
    for (int i = 0; i < n; i++) printf("%-24s O%d  %s\n", p[i].name, p[i].min_level, p[i].summary);
    exit(0);
}

static struct options parse_command_line(int argc, char **argv)
{
    enum { OPT_CONFIG = 256, OPT_WEIGHTS, OPT_PASS_OFF, OPT_LIST, OPT_OVERRIDES, OPT_MAX_MEMORY, OPT_DUMP,
           OPT_STREAM, OPT_DEPFILE, OPT_VERSION };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"weights", required_argument, NULL, OPT_WEIGHTS},
        {"pass-off", required_argument, NULL, OPT_PASS_OFF},
        {"list-passes", no_argument, NULL, OPT_LIST},
        {"overrides", required_argument, NULL, OPT_OVERRIDES},
        {"max-memory", required_argument, NULL, OPT_MAX_MEMORY},
        {"dump", no_argument, NULL, OPT_DUMP},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"depfile", required_argument, NULL, OPT_DEPFILE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct options o = {.level = 2};
    o.off = xcalloc((size_t)argc + 1, sizeof *o.off);
    int c;
    while ((c = getopt_long(argc, argv, "O:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'O':
            if (strlen(optarg) != 1 || optarg[0] < '0' || optarg[0] > '3') usage_error("-O takes 0, 1, 2 or 3");
            o.level = optarg[0] - '0';
            break;
        case OPT_CONFIG: o.config = optarg; break;
        case OPT_WEIGHTS: o.weights = optarg; break;
        case OPT_PASS_OFF:
            if (!pass_find(optarg)) usage_error("--pass-off: no pass named '%s' (see --list-passes)", optarg);
            o.off[o.noff++] = optarg;
            break;
        case OPT_LIST: list_passes();
        case OPT_OVERRIDES: o.overrides = optarg; break;
        case OPT_MAX_MEMORY:
            if (parse_u64(optarg, &o.max_memory, 1) != 0 || !o.max_memory)
                usage_error("--max-memory: expected a positive number of bytes, got '%s'", optarg);
            break;
        case OPT_DUMP: o.dump = 1; break;
        case OPT_STREAM: o.stream = optarg; break;
        case OPT_DEPFILE: o.depfile = optarg; break;
        case 'q': quiet = true; break;
        case 'h': print_help(help);
        case OPT_VERSION: print_version();
        default: usage_error("invalid option");
        }
    }
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    if (o.depfile && !o.stream) usage_error("--depfile describes the --stream FILE: give both");
    return o;
}

/* Architectures mlc-cfg and mlc-quant prepare but whose graph (soft-capping,
 * sliding-window layers, LongRoPE) is not built here yet: refused up front,
 * before their configuration is read as one this compiler knows. */
static void refuse_unbuilt(const json_t *doc, const char *where)
{
    static const char *const prepared_only[] = {"gemma2", "gemma3", "gemma3_text", "phi3"};
    const char *mt = json_string_value(json_object_get(doc, "model_type"));
    for (size_t i = 0; mt && i < sizeof prepared_only / sizeof prepared_only[0]; i++)
        if (!strcmp(mt, prepared_only[i]))
            die("%s: model_type '%s': mlc-lower cannot build this architecture's graph yet (it builds %s); "
                "mlc-cfg and mlc-quant already prepare its configuration and weights",
                where, mt, lower_supported_models());
}

/* Returns the path of mlc-chat-config.json. */
static char *load_config(const struct options *o, const struct record_set *in, struct chat_config *cfg)
{
    if (o->config) {
        json_t *doc = json_load_path(o->config);
        if (doc) refuse_unbuilt(doc, o->config);
        json_decref(doc);
        if (chat_config_load(o->config, cfg) != 0) die_last();
        return xstrdup(o->config);
    }
    const struct record *r = record_set_last(in, "config");
    if (!r) die("no config: give --config FILE or pipe in mlc-cfg's output");
    const msgpack_object *inline_cfg = rec_field(r, "config");
    json_t *doc = inline_cfg ? mp_to_json(inline_cfg, "config record: field 'config'") : NULL;
    if (doc) refuse_unbuilt(doc, "config record");
    json_decref(doc);
    if (chat_config_from_record(r->map, cfg) != 0) die_last();
    char *path = NULL;
    if (rec_get_str(r, "path", &path) != 0) die_last();
    return path;
}

/* tensor-cache.json of the weights, and the scheme they were written with
 * (when a weights record says). */
static char *weights_path(const struct options *o, const struct record_set *in, char **scheme)
{
    *scheme = NULL;
    if (o->weights) return xstrdup(o->weights);
    const struct record *r = record_set_last(in, "weights");
    if (!r) die("no weights: give --weights PATH or pipe in mlc-quant's output");
    char *path = NULL;
    if (rec_get_str(r, "path", &path) != 0) die_last();
    if (rec_opt_str(r, "scheme", scheme) < 0) die_last();
    return path;
}

struct dump_ctx {
    struct stream_writer *out;
    const char *config, *weights;
    int index;
};

static void write_module_record(struct stream_writer *out, const char *type, const struct module *m,
                                const char *config, const char *weights, const char *pass, int index)
{
    struct rec_builder b;
    rb_init(&b, type);
    if (pass) {
        rb_str(&b, "pass", pass);
        rb_int(&b, "index", index);
    }
    rb_str(&b, "config", config);
    rb_str(&b, "weights", weights);
    module_pack_fields(&b, m);
    rb_write(&b, out);
}

static void after_pass(const struct module *m, const char *pass, void *ctx)
{
    struct dump_ctx *d = ctx;
    write_module_record(d->out, "pass", m, d->config, d->weights, pass, d->index++);
}

static void report_memory(const struct module *m)
{
    char p[16], kv[16], ctx[16], arena[16], total[16];
    format_bytes((uint64_t)m->mem.params_bytes, p);
    format_bytes((uint64_t)m->mem.kv_bytes_per_token, kv);
    format_bytes((uint64_t)m->mem.kv_bytes_at_context, ctx);
    format_bytes((uint64_t)m->mem.arena_bytes, arena);
    format_bytes((uint64_t)m->mem.total_bytes, total);
    note("memory: parameters %s, KV cache %s per token (%s for one sequence at the context window), "
         "activations %s: total %s",
         p, kv, ctx, arena, total);
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    struct options o = parse_command_line(argc, argv);
    if (o.depfile) deps_record();
    struct stream_writer out;
    struct record_set in = {0};
    filter_start(&out, o.stream, false, &in);

    struct chat_config cfg;
    char *cfg_path = load_config(&o, &in, &cfg);
    char *scheme = NULL;
    char *wpath = weights_path(&o, &in, &scheme);
    if (scheme && strcmp(scheme, cfg.quantization))
        die("the weights were quantized as %s but %s says %s", scheme, cfg.source, cfg.quantization);
    struct tensor_cache tc;
    if (tensor_cache_open(&tc, wpath) != 0) die_last();

    struct lower_spec spec = {cfg.model_type, cfg.quantization, {0}, NULL, 0};
    if (lower_dims_from_config(&cfg, &spec.dims) != 0 || lower_apply_overrides(&spec.dims, o.overrides) != 0)
        die_last();
    struct tensor_info *tensors = xcalloc(tc.nrecords + 1, sizeof *tensors);
    for (size_t i = 0; i < tc.nrecords; i++) {
        const struct tc_record *r = &tc.records[i];
        if (r->ndim > MOD_MAX_DIMS) die("%s: tensor %s has %d dimensions", tc.json_path, r->name, r->ndim);
        tensors[i].name = r->name;
        tensors[i].dtype = r->dtype;
        tensors[i].ndim = r->ndim;
        for (int d = 0; d < r->ndim; d++) tensors[i].shape[d] = r->shape[d];
    }
    spec.tensors = tensors;
    spec.ntensors = (int)tc.nrecords;

    struct module m;
    if (lower_build(&spec, &m) != 0) die("%s: %s", tc.json_path, last_error());
    char *config_path = realpath(cfg_path, NULL);
    char *weights_dir = realpath(tc.dir, NULL);
    if (!config_path) config_path = xstrdup(cfg_path);
    if (!weights_dir) weights_dir = xstrdup(tc.dir);
    struct dump_ctx dump = {&out, config_path, weights_dir, 0};
    if (passes_run(&m, o.level, o.off, o.noff, o.dump ? after_pass : NULL, &dump) != 0) die_last();
    report_memory(&m);
    if (o.max_memory && (unsigned long long)m.mem.total_bytes > o.max_memory)
        die("the model needs %lld bytes (parameters %lld, KV cache %lld at a context of %lld tokens, activations "
            "%lld), more than --max-memory %llu; a smaller context_window_size or prefill_chunk_size "
            "(--overrides) lowers the last two",
            (long long)m.mem.total_bytes, (long long)m.mem.params_bytes, (long long)m.mem.kv_bytes_at_context,
            (long long)(m.mem.kv_bytes_per_token ? m.mem.kv_bytes_at_context / m.mem.kv_bytes_per_token : 0),
            (long long)m.mem.arena_bytes, o.max_memory);
    write_module_record(&out, "module", &m, config_path, weights_dir, NULL, 0);
    if (o.depfile && deps_write(o.depfile, o.stream) != 0) die_last();
    if (stream_writer_close(&out) != 0) die_last();

    module_free(&m);
    free(tensors);
    tensor_cache_close(&tc);
    chat_config_free(&cfg);
    record_set_free(&in);
    free(wpath);
    free(scheme);
    free(config_path);
    free(weights_dir);
    free(cfg_path);
    free(o.off);
    return 0;
}
