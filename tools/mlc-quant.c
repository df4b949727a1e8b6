/* mlc-quant: convert and quantize HuggingFace weights into MLC's tensor
 * cache (see mlc-quant(1)). */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/depfile.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/mpjson.h"
#include "common/stream.h"
#include "formats/model_record.h"
#include "formats/weight_convert.h"

static const char help[] =
    "Usage: mlc-quant [OPTION]...\n"
    "Convert a HuggingFace model's weights (safetensors or pytorch_model.bin)\n"
    "into MLC's tensor cache (params_shard_*.bin + tensor-cache.json),\n"
    "quantized with the scheme named in mlc-chat-config.json.\n"
    "\n"
    "The model and the configuration come from the `model` and `config`\n"
    "records on standard input (written by mlc-fetch and mlc-cfg), or from:\n"
    "  -m, --model=DIR          HuggingFace model directory (or its index\n"
    "                           .json, or one weight file)\n"
    "  -c, --config=FILE        mlc-chat-config.json\n"
    "  -o, --output=DIR         where to write (default: the directory of the\n"
    "                           configuration)\n"
    "  -Q, --quantization=NAME  use this scheme instead of the configuration's\n"
    "      --source-format=FMT  auto (default: safetensors when both exist),\n"
    "                           safetensors or torch\n"
    "  -j, --threads=N          worker threads (default: $MLC_NUM_THREADS or\n"
    "                           the number of CPUs)\n"
    "      --stream=FILE        write the records to FILE, not standard output\n"
    "      --depfile=FILE       write the files read to FILE (make syntax; the\n"
    "                           target is OUTPUT/tensor-cache.json)\n"
    "  -q, --quiet              no notes or progress on standard error\n"
    "  -h, --help               show this help and exit\n"
    "      --version            show the version and exit\n"
    "\n"
    "Records: every input record is copied to the output, then one `tensor`\n"
    "record per tensor written and a `weights` record (see mlc-stream(5)).\n"
    "Exit status: 0 on success, 1 on an error, 2 on a usage error.\n";

struct options {
    const char *model;
    const char *config;
    const char *output;
    const char *quantization;
    enum hf_format format;
    int threads;
    const char *stream;
    const char *depfile;
};

static struct options parse_command_line(int argc, char **argv)
{
    enum { OPT_SOURCE_FORMAT = 256, OPT_STREAM, OPT_DEPFILE, OPT_VERSION };
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},          {"config", required_argument, NULL, 'c'},
        {"output", required_argument, NULL, 'o'},         {"quantization", required_argument, NULL, 'Q'},
        {"source-format", required_argument, NULL, OPT_SOURCE_FORMAT},
        {"threads", required_argument, NULL, 'j'},        {"stream", required_argument, NULL, OPT_STREAM},
        {"depfile", required_argument, NULL, OPT_DEPFILE},
        {"quiet", no_argument, NULL, 'q'},                {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},      {NULL, 0, NULL, 0},
    };
    struct options o = {0};
    int c;
    long n;
    while ((c = getopt_long(argc, argv, "m:c:o:Q:j:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'c': o.config = optarg; break;
        case 'o': o.output = optarg; break;
        case 'Q': o.quantization = optarg; break;
        case OPT_SOURCE_FORMAT:
            if (!strcmp(optarg, "auto")) o.format = HF_AUTO;
            else if (!strcmp(optarg, "safetensors") || !strcmp(optarg, "huggingface-safetensor"))
                o.format = HF_SAFETENSORS;
            else if (!strcmp(optarg, "torch") || !strcmp(optarg, "huggingface-torch")) o.format = HF_TORCH;
            else usage_error("--source-format: '%s' is not auto, safetensors or torch", optarg);
            break;
        case 'j':
            if (parse_int_option("--threads", optarg, 1, 1024, &n) != 0) usage_error("%s", last_error());
            o.threads = (int)n;
            break;
        case OPT_STREAM: o.stream = optarg; break;
        case OPT_DEPFILE: o.depfile = optarg; break;
        case 'q': quiet = true; break;
        case 'h': print_help(help);
        case OPT_VERSION: print_version();
        default: usage_error("invalid option");
        }
    }
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    return o;
}

/* What the input records say (the last of each type wins). */
struct inputs {
    char *model_path;
    char *config_path;
    char *config_dir;
    json_t *config_json;
};

static void read_records(struct record_set *set, struct inputs *in)
{
    const struct record *m = record_set_last(set, "model");
    char *format = NULL;
    if (m && (rec_get_str(m, "path", &in->model_path) != 0 || rec_opt_str(m, "format", &format) < 0)) die_last();
    if (format && !strcmp(format, "gguf")) {
        free(in->model_path);
        if (!(in->model_path = model_record_source(m))) die_last();
    }
    free(format);
    const struct record *c = record_set_last(set, "config");
    if (!c) return;
    if (rec_get_str(c, "path", &in->config_path) != 0) die_last();
    if (rec_opt_str(c, "dir", &in->config_dir) < 0) die_last();
    /* mlc-cfg --model DIR | mlc-quant: the config record names the model */
    if (!in->model_path && rec_opt_str(c, "model", &in->model_path) < 0) die_last();
    const msgpack_object *cfg = rec_field(c, "config");
    if (cfg) {
        in->config_json = mp_to_json(cfg, "config record: field 'config'");
        if (!in->config_json) die_last();
    }
}

static char *absolute(const char *path)
{
    char *r = realpath(path, NULL);
    return r ? r : xstrdup(path);
}

static void pack_shape(msgpack_packer *pk, int ndim, const int64_t *shape)
{
    msgpack_pack_array(pk, (size_t)ndim);
    for (int i = 0; i < ndim; i++) msgpack_pack_int64(pk, shape[i]);
}

static const char *role_name(enum pm_out_kind k)
{
    switch (k) {
    case OUT_Q_WEIGHT: return "q_weight";
    case OUT_Q_SCALE: return "q_scale";
    case OUT_CALIBRATION: return "q_calibration_scale";
    default: return "weight";
    }
}

static void write_records(struct stream_writer *w, const struct convert_result *r, const struct weight_config *cfg,
                          const char *out_dir, const char *model_path)
{
    char *dir = absolute(out_dir);
    for (size_t i = 0; i < r->ntensors; i++) {
        const struct converted_tensor *ct = &r->tensors[i];
        const struct tc_plan_tensor *t = &r->plan.tensors[ct->plan_index];
        const struct mlc_param *p = &r->map.params[ct->param];
        struct rec_builder b;
        char shard[40];
        tc_shard_name(t->shard, shard);
        rb_init(&b, "tensor");
        rb_str(&b, "name", t->name);
        rb_str(&b, "param", p->name);
        rb_str(&b, "role", role_name(ct->kind));
        rb_str(&b, "dtype", dtype_name(t->dtype));
        pack_shape(rb_key(&b, "shape"), t->ndim, t->shape);
        rb_str(&b, "format", "f32-to-bf16");
        rb_str(&b, "dir", dir);
        rb_str(&b, "shard", shard);
        rb_int(&b, "byte_offset", (int64_t)t->byte_offset);
        rb_int(&b, "nbytes", (int64_t)t->nbytes);
        msgpack_packer *pk = rb_key(&b, "source");
        msgpack_pack_array(pk, (size_t)p->nsources);
        for (int s = 0; s < p->nsources; s++) mp_pack_cstr(pk, p->sources[s]);
        rb_write(&b, w);
    }
    char *json = absolute(r->json_path), *model = absolute(model_path);
    struct rec_builder b;
    rb_init(&b, "weights");
    rb_str(&b, "path", json);
    rb_str(&b, "dir", dir);
    rb_str(&b, "scheme", r->scheme->name);
    rb_str(&b, "model_type", cfg->model_type);
    rb_int(&b, "param_count", (int64_t)r->plan.ntensors);
    rb_double(&b, "param_bytes", r->plan.param_bytes);
    rb_double(&b, "bits_per_param", r->plan.param_bytes * 8.0 / (double)r->total_source_params);
    rb_int(&b, "total_params", (int64_t)r->total_source_params);
    rb_int(&b, "shards", (int64_t)r->nshards);
    rb_str(&b, "source", model);
    rb_str(&b, "source_format", hf_format_name(r->format));
    rb_str(&b, "calibration", r->uncalibrated ? "uncalibrated" : r->reused ? "calibrated" : "none");
    rb_write(&b, w);
    free(json);
    free(model);
    free(dir);
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    struct options o = parse_command_line(argc, argv);

    struct stream_writer out;
    /* input records pass through as they arrive */
    struct inputs in = {0};
    struct record_set set = {0};
    filter_start(&out, o.stream, false, &set);
    read_records(&set, &in);

    const char *model = o.model ? o.model : in.model_path;
    if (!model) usage_error("no model: give --model DIR or pipe in a `model` or `config` record");
    if (o.depfile) deps_record();
    struct weight_config cfg;
    char *config_dir = NULL;
    if (o.config) {
        if (weight_config_load(&cfg, o.config) != 0) die_last();
        config_dir = path_dirname(o.config);
    } else if (in.config_json) {
        if (weight_config_from_json(&cfg, in.config_json, in.config_path) != 0) die_last();
        config_dir = in.config_dir ? xstrdup(in.config_dir) : path_dirname(in.config_path);
    } else if (in.config_path) {
        if (weight_config_load(&cfg, in.config_path) != 0) die_last();
        config_dir = path_dirname(in.config_path);
    } else {
        usage_error("no configuration: give --config FILE or pipe in a `config` record");
    }
    const char *out_dir = o.output ? o.output : config_dir;
    if (o.quantization && strcmp(o.quantization, cfg.quantization))
        warning("--quantization %s differs from the configuration's %s", o.quantization, cfg.quantization);

    struct convert_options co = {
        .model_path = model, .format = o.format, .config = &cfg, .scheme = o.quantization,
        .out_dir = out_dir, .threads = o.threads,
    };
    struct convert_result res;
    if (weight_convert(&co, &res) != 0) die_last();
    if (o.depfile) {
        char *target = path_join(out_dir, "tensor-cache.json");
        if (deps_write(o.depfile, target) != 0) die_last();
        free(target);
    }
    if (res.reused)
        note("%s: kept the calibrated %s weights already there (%zu tensors in %zu shards, activation scales "
             "measured by calibration)",
             out_dir, res.scheme->name, res.plan.ntensors, res.nshards);
    else
        note("wrote %zu tensors in %zu shards to %s (%.3f bits per parameter)", res.plan.ntensors, res.nshards,
             out_dir, res.plan.param_bytes * 8.0 / (double)res.total_source_params);
    if (res.uncalibrated)
        note("%s: activation scales are uncalibrated placeholders (NaN); calibrate before running", res.scheme->name);
    write_records(&out, &res, &cfg, out_dir, model);
    if (stream_writer_close(&out) != 0) die_last();
    convert_result_free(&res);
    weight_config_free(&cfg);
    record_set_free(&set);
    free(config_dir);
    free(in.model_path);
    free(in.config_path);
    free(in.config_dir);
    if (in.config_json) json_decref(in.config_json);
    return 0;
}
