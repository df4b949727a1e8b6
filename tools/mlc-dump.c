/* mlc-dump: print a record stream as JSON lines, or pack JSON lines back
 * into a stream (see mlc-dump(1)). */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/mpjson.h"
#include "common/stream.h"
#include "formats/tensor_inspect.h"
#include "formats/tensor_report.h"

static const char help[] =
    "Usage: mlc-dump [OPTION]... [FILE]\n"
    "  or:  mlc-dump --tensor=NAME [--scheme=NAME] DIR\n"
    "  or:  mlc-dump --tensors [--source=HF_DIR] DIR\n"
    "Print an mlc-pipe record stream (FILE, or standard input) as JSON lines,\n"
    "one record per line. Binary fields print as {\"$bin\": BASE64}.\n"
    "With --tensor, describe one tensor of the tensor cache in DIR instead.\n"
    "\n"
    "  -t, --type=TYPE   print only records of this type\n"
    "  -p, --pretty      indent each record over several lines\n"
    "  -P, --pack        read JSON records (as printed) and write the msgpack\n"
    "                    stream to standard output\n"
    "  -T, --tensor=NAME shape, dtype, scheme and statistics of tensor NAME in\n"
    "                    the tensor cache DIR, dequantized (NAME may be a\n"
    "                    parameter such as x.weight stored as x.q_weight)\n"
    "  -s, --scheme=NAME the quantization scheme, when DIR has no\n"
    "                    mlc-chat-config.json\n"
    "      --tensors     a table of every parameter of the tensor cache DIR:\n"
    "                    scheme, shape, bytes (what quantization did)\n"
    "      --source=HF_DIR  with --tensors: also the RMS and largest error of\n"
    "                    each dequantized tensor against the HuggingFace source\n"
    "  -q, --quiet       no notes on standard error\n"
    "  -h, --help        show this help and exit\n"
    "      --version     show the version and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on a malformed stream, 2 on a usage error.\n";

struct options {
    const char *type;
    int pretty;
    int pack;
    const char *tensor;
    const char *scheme;
    const char *file;
    int tensors;
    const char *source;
};

static struct options parse_command_line(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"type", required_argument, NULL, 't'}, {"pretty", no_argument, NULL, 'p'},
        {"pack", no_argument, NULL, 'P'},       {"quiet", no_argument, NULL, 'q'},
        {"tensor", required_argument, NULL, 'T'}, {"scheme", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},       {"version", no_argument, NULL, 'V'},
        {"tensors", no_argument, NULL, 'R'},    {"source", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    struct options o = {0};
    int c;
    while ((c = getopt_long(argc, argv, "t:pPT:s:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 't': o.type = optarg; break;
        case 'p': o.pretty = 1; break;
        case 'P': o.pack = 1; break;
        case 'T': o.tensor = optarg; break;
        case 's': o.scheme = optarg; break;
        case 'R': o.tensors = 1; break;
        case 'S': o.source = optarg; break;
        case 'q': quiet = true; break;
        case 'h': print_help(help);
        case 'V': print_version();
        default: usage_error("invalid option");
        }
    }
    if (optind < argc) o.file = argv[optind++];
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    if (o.tensor && !o.file) usage_error("--tensor needs the tensor cache directory");
    if (o.scheme && !o.tensor) usage_error("--scheme goes with --tensor");
    if (o.tensors && !o.file) usage_error("--tensors needs the tensor cache directory");
    if (o.source && !o.tensors) usage_error("--source goes with --tensors");
    if (o.tensors && (o.tensor || o.pack || o.type)) usage_error("--tensors goes alone");
    return o;
}

static int open_input(const char *file)
{
    if (!file || !strcmp(file, "-")) return 0;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("%s: cannot open: %m", file);
    return fd;
}

static void dump(const struct options *o, const char *name, int fd)
{
    struct stream_reader r;
    struct stream_writer out;
    stream_reader_init(&r, fd, name);
    stream_writer_init_fd(&out, 1, "<stdout>");
    struct pyjson_style style = o->pretty ? pyjson_indent(2) : pyjson_compact();
    style.ensure_ascii = false;
    struct buf line = BUF_INIT;
    buf_init(&line);
    struct record rec;
    int got;
    while ((got = stream_next(&r, &rec)) == 1) {
        if (o->type && strcmp(rec.type, o->type)) continue;
        json_t *j = mp_to_json_tagged(rec.map);
        buf_reset(&line);
        pyjson_dump(&line, j, &style);
        buf_addc(&line, '\n');
        stream_write_raw(&out, line.data, line.len);
        json_decref(j);
    }
    buf_free(&line);
    if (stream_writer_close(&out) != 0) die_last();
    if (got < 0) die_last();
    stream_reader_free(&r);
}

static void pack(const char *name, int fd)
{
    struct buf in = BUF_INIT;
    buf_init(&in);
    for (;;) {
        buf_grow(&in, 1 << 20);
        long long n = read_full(fd, in.data + in.len, in.cap - in.len - 1);
        if (n < 0) die("%s: read error: %m", name);
        if (n == 0) break;
        in.len += (size_t)n;
        in.data[in.len] = 0;
    }
    struct stream_writer out;
    stream_writer_init_stdout(&out);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    size_t off = 0, line = 1;
    for (;;) {
        while (off < in.len && strchr(" \t\r\n", in.data[off]))
            if (in.data[off++] == '\n') line++;
        if (off >= in.len) break;
        json_error_t err;
        json_t *v = json_loadb(in.data + off, in.len - off, JSON_DISABLE_EOF_CHECK | JSON_ALLOW_NUL, &err);
        if (!v) die("%s:%zu: %s", name, line + (size_t)err.line - 1, err.text);
        if (!json_is_object(v) || !json_is_string(json_object_get(v, "type")))
            die("%s:%zu: not a record (a JSON object with a string field 'type')", name, line);
        msgpack_sbuffer_clear(&sb);
        if (mp_pack_json_tagged(&pk, v) != 0) die("%s:%zu: %s", name, line, last_error());
        stream_write_raw(&out, sb.data, sb.size);
        json_decref(v);
        for (size_t i = 0; i < (size_t)err.position; i++)
            if (in.data[off + i] == '\n') line++;
        off += err.position;
    }
    msgpack_sbuffer_destroy(&sb);
    buf_free(&in);
    if (stream_writer_close(&out) != 0) die_last();
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    struct options o = parse_command_line(argc, argv);
    if (o.tensors) {
        struct buf text = BUF_INIT;
        buf_init(&text);
        if (tensor_report(o.file, o.source, &text) != 0) die_last();
        stdout_write(text.data, text.len);
        buf_free(&text);
        finish_stdout();
        return 0;
    }
    if (o.tensor) {
        struct buf text = BUF_INIT;
        buf_init(&text);
        if (tensor_inspect(o.file, o.tensor, o.scheme, &text) != 0) die_last();
        fputs(text.data, stdout);
        buf_free(&text);
        return 0;
    }
    int fd = open_input(o.file);
    const char *name = o.file && strcmp(o.file, "-") ? o.file : "<stdin>";
    if (o.pack) pack(name, fd);
    else dump(&o, name, fd);
    return 0;
}
