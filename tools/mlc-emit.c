/* mlc-emit: turn a lowered module into a model library (see mlc-emit(1)). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/depfile.h"
#include "common/emit/emit.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/lower/memplan.h"
#include "common/mpjson.h"
#include "common/stream.h"
#include "formats/library.h"

static const char help[] =
    "Usage: mlc-emit [OPTION]...\n"
    "Turn the lowered module (the last `module` record on standard input, or\n"
    "--module FILE) into a model library NAME-TARGET.tar holding metadata.json\n"
    "and the execution plan (and for Vulkan the kernel launches and one SPIR-V\n"
    "blob per specialized kernel), and append a `library` record to the stream.\n"
    "\n"
    "  -t, --target=TARGET        cpu (the engine's C kernels) or vulkan (SPIR-V\n"
    "                             compute kernels); default cpu\n"
    "  -O LEVEL                   vulkan: 0 shipped kernels as they are, 1 frozen\n"
    "                             constants and SPIRV-Tools' optimizer, 2 tiled\n"
    "                             variants (default), 3 wider tiles\n"
    "  -o, --output=PATH          the .tar to write, or a directory for\n"
    "                             NAME-TARGET.tar (default: the directory of the\n"
    "                             model's mlc-chat-config.json)\n"
    "      --module=FILE          read the module from this stream file\n"
    "      --system-lib-prefix=P  prefix recorded for static linking\n"
    "                             (default MODEL_QUANT_, as MLC's JIT names it)\n"
    "      --stream=FILE          write the records to FILE instead of stdout\n"
    "      --depfile=FILE         write the files read to FILE (make syntax; the\n"
    "                             target is the .tar)\n"
    "  -q, --quiet                no notes on standard error\n"
    "  -h, --help                 show this help and exit\n"
    "      --version              show the version and exit\n";

struct options {
    const char *target;
    int level;
    const char *output;
    const char *module_file;
    const char *prefix;
    const char *stream;
    const char *depfile;
};

static struct options parse_command_line(int argc, char **argv)
{
    enum { OPT_MODULE = 256, OPT_PREFIX, OPT_STREAM, OPT_DEPFILE, OPT_VERSION };
    static const struct option longopts[] = {
        {"target", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"module", required_argument, NULL, OPT_MODULE},
        {"system-lib-prefix", required_argument, NULL, OPT_PREFIX},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"depfile", required_argument, NULL, OPT_DEPFILE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct options o = {.target = "cpu", .level = EMIT_DEFAULT_LEVEL};
    int c;
    long v;
    while ((c = getopt_long(argc, argv, "t:o:O:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 't': o.target = optarg; break;
        case 'O': parse_int_option("-O", optarg, 0, 3, &v), o.level = (int)v; break;
        case 'o': o.output = optarg; break;
        case OPT_MODULE: o.module_file = optarg; break;
        case OPT_PREFIX: o.prefix = optarg; break;
        case OPT_STREAM: o.stream = optarg; break;
        case OPT_DEPFILE: o.depfile = optarg; break;
        case 'q': quiet = true; break;
        case 'h': print_help(help);
        case OPT_VERSION: print_version();
        default: usage_error("invalid option");
        }
    }
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    if (strcmp(o.target, "cpu") && strcmp(o.target, "vulkan"))
        usage_error("--target %s: the targets are cpu and vulkan", o.target);
    return o;
}

static char *optional_str(const struct record *r, const char *key)
{
    char *s = NULL;
    if (rec_opt_str(r, key, &s) < 0) die_last();
    return s;
}

/* NAME-TARGET.tar: NAME is the model directory's name, like MLC's
 * "Llama-2-7b-chat-hf-q4f16_1-MLC" next to its library. */
static char *output_path(const struct options *o, const char *config_path, const struct module *m)
{
    char *dir = NULL, *name = NULL;
    if (o->output && strlen(o->output) > 4 && !strcmp(o->output + strlen(o->output) - 4, ".tar"))
        return xstrdup(o->output);
    if (config_path) {
        char *cdir = path_dirname(config_path);
        char *abs = realpath(cdir, NULL);
        name = xstrdup(path_basename(abs ? abs : cdir));
        dir = o->output ? xstrdup(o->output) : xstrdup(cdir);
        free(abs);
        free(cdir);
    } else {
        if (!o->output) die("no output: give -o (the module names no mlc-chat-config.json)");
        dir = xstrdup(o->output);
        name = xasprintf("%s-%s", m->model_type, m->quantization);
    }
    if (!is_dir(dir)) die("%s: not a directory", dir);
    char *file = xasprintf("%s-%s.tar", name, o->target);
    char *path = path_join(dir, file);
    free(file);
    free(dir);
    free(name);
    return path;
}

static char *default_prefix(const struct module *m)
{
    char *p = xasprintf("%s_%s_", m->model_type, m->quantization);
    for (char *c = p; *c; c++)
        if (*c == '-') *c = '_';
    return p;
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    struct options o = parse_command_line(argc, argv);

    struct stream_writer out;
    struct record_set in = {0};
    filter_start(&out, o.stream, false, &in);
    struct record_set from_file = {0};
    if (o.depfile) deps_record();
    if (o.module_file) {
        deps_note(o.module_file);
        int fd = open(o.module_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) die("%s: %m", o.module_file);
        struct stream_reader r;
        stream_reader_init(&r, fd, o.module_file);
        if (stream_slurp(&r, NULL, &from_file) != 0) die_last();
        stream_reader_free(&r);
        close(fd);
    }
    const struct record *mrec = record_set_last(o.module_file ? &from_file : &in, "module");
    if (!mrec) die("no module record on the input (run mlc-lower first, or give --module FILE)");

    struct module m;
    if (module_from_msgpack(mrec->map, &m, "module record") != 0) die_last();
    for (int i = 0; i < m.nfns; i++)
        if (!memplan_is_planned(&m.fns[i]))
            die("module record: function %s has no memory plan (mlc-lower ran with --pass-off plan-memory); "
                "the engine needs one",
                m.fns[i].name);
    char *config_path = optional_str(mrec, "config");
    char *weights_dir = optional_str(mrec, "weights");
    char *path = output_path(&o, config_path, &m);
    char *prefix = o.prefix ? xstrdup(o.prefix) : default_prefix(&m);

    struct library_options lo = {o.target, prefix, 1, 1};
    struct launch_plan lp = {0};
    bool vulkan = !strcmp(o.target, "vulkan");
    /* kernels first: a model the target cannot run is refused before
     * anything else is built */
    if (vulkan && emit_vulkan(&m, o.level, &lp) != 0) die("--target vulkan: %s", last_error());
    json_t *md = library_metadata(&m, &lo);
    if (vulkan) library_metadata_add_kernels(md, &lp);
    if (library_write_vulkan(path, &m, md, vulkan ? &lp : NULL) != 0) die_last();
    if (o.depfile && deps_write(o.depfile, path) != 0) die_last();
    char *abs = realpath(path, NULL);
    if (vulkan)
        note("wrote %s (%d parameters, %d kernels, %lld-byte arena)", abs ? abs : path, m.nparams, lp.nkernels,
             (long long)m.mem.arena_bytes);
    else
        note("wrote %s (%d parameters, %lld-byte arena)", abs ? abs : path, m.nparams, (long long)m.mem.arena_bytes);
    launch_plan_free(&lp);

    struct rec_builder b;
    rb_init(&b, "library");
    rb_str(&b, "path", abs ? abs : path);
    rb_str(&b, "target", o.target);
    if (config_path) rb_str(&b, "config", config_path);
    if (weights_dir) rb_str(&b, "weights", weights_dir);
    mp_pack_json(rb_key(&b, "metadata"), md);
    rb_write(&b, &out);
    if (stream_writer_close(&out) != 0) die_last();

    json_decref(md);
    module_free(&m);
    record_set_free(&in);
    record_set_free(&from_file);
    free(abs);
    free(path);
    free(prefix);
    free(config_path);
    free(weights_dir);
    return 0;
}
