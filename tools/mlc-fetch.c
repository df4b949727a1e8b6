/* mlc-fetch: get a model into a verified local directory and write a
 * `model` record (see mlc-fetch(1)). */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/cli.h"
#include "common/depfile.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/pool.h"
#include "common/stream.h"
#include "formats/hub.h"
#include "formats/model_fetch.h"
#include "formats/model_record.h"

static const char help[] =
    "Usage: mlc-fetch [OPTION]... SOURCE\n"
    "Get a model into a verified local directory and write a 'model' record.\n"
    "SOURCE is HF://ORG/NAME[@REVISION], https://huggingface.co/ORG/NAME[/tree/REVISION],\n"
    "a directory, or file:///PATH. Hub models are downloaded into MLC-LLM's cache;\n"
    "directories are checked and used in place.\n"
    "\n"
    "  -j, --jobs=N            download N files at once (default 8)\n"
    "      --policy=POLICY     cache policy: ON, OFF, REDO or READONLY\n"
    "                          (default $MLC_DOWNLOAD_CACHE_POLICY, else ON)\n"
    "  -I, --include=GLOB      also fetch the files matching GLOB (repeatable)\n"
    "  -X, --exclude=GLOB      never fetch the files matching GLOB (repeatable)\n"
    "      --token-file=FILE   read the hub token from FILE instead of $HF_TOKEN\n"
    "      --verify            rehash a cache entry instead of trusting its manifest\n"
    "      --retries=N         retry a failing transfer N times (default 5)\n"
    "      --retry-delay=SEC   wait SEC seconds before the first retry (default 1)\n"
    "      --timeout=SEC       retry a transfer that receives nothing for SEC seconds\n"
    "                          (default 60)\n"
    "      --stream=FILE       write the records to FILE instead of standard output\n"
    "      --depfile=FILE      write the model's files to FILE (make syntax; the\n"
    "                          target is the --stream FILE)\n"
    "  -q, --quiet             no notes, progress or path on standard error\n"
    "  -h, --help              show this help and exit\n"
    "      --version           show the version and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on an error, 2 on a usage error.\n";

struct options {
    const char *source;
    const char *stream_file;
    const char *depfile;
    const char *token_file;
    const char *policy;
    long jobs, retries;
    double retry_delay;
    long timeout;
    bool verify;
    const char **include, **exclude;
    size_t ninclude, nexclude, cap_include, cap_exclude;
};

enum { OPT_POLICY = 256, OPT_TOKEN_FILE, OPT_VERIFY, OPT_RETRIES, OPT_RETRY_DELAY, OPT_TIMEOUT,
       OPT_STREAM, OPT_DEPFILE, OPT_VERSION };

static double parse_seconds(const char *opt, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0 && v <= 86400))
        usage_error("%s: expected seconds from 0 to 86400, got '%s'", opt, s);
    return v;
}

static struct options parse_command_line(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"jobs", required_argument, NULL, 'j'},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"include", required_argument, NULL, 'I'},
        {"exclude", required_argument, NULL, 'X'},
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
        {"verify", no_argument, NULL, OPT_VERIFY},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"retry-delay", required_argument, NULL, OPT_RETRY_DELAY},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"depfile", required_argument, NULL, OPT_DEPFILE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    struct options o = {.jobs = 8, .retries = 5, .retry_delay = 1, .timeout = 60};
    int c;
    while ((c = getopt_long(argc, argv, "j:I:X:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': parse_int_option("--jobs", optarg, 1, 64, &o.jobs); break;
        case OPT_POLICY: o.policy = optarg; break;
        case 'I':
            o.include = xgrow(o.include, &o.cap_include, o.ninclude + 1, sizeof *o.include);
            o.include[o.ninclude++] = optarg;
            break;
        case 'X':
            o.exclude = xgrow(o.exclude, &o.cap_exclude, o.nexclude + 1, sizeof *o.exclude);
            o.exclude[o.nexclude++] = optarg;
            break;
        case OPT_TOKEN_FILE: o.token_file = optarg; break;
        case OPT_VERIFY: o.verify = true; break;
        case OPT_RETRIES: parse_int_option("--retries", optarg, 0, 100, &o.retries); break;
        case OPT_RETRY_DELAY: o.retry_delay = parse_seconds("--retry-delay", optarg); break;
        case OPT_TIMEOUT: o.timeout = (long)parse_seconds("--timeout", optarg); break;
        case OPT_STREAM: o.stream_file = optarg; break;
        case OPT_DEPFILE: o.depfile = optarg; break;
        case 'q': quiet = true; break;
        case 'h': print_help(help);
        case OPT_VERSION: print_version();
        default: usage_error("invalid option");
        }
    }
    if (optind >= argc) usage_error("no SOURCE given");
    o.source = argv[optind++];
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    if (o.timeout < 1) usage_error("--timeout: must be at least 1 second");
    if (o.depfile && !o.stream_file) usage_error("--depfile describes the --stream FILE: give both");
    return o;
}

/* Where `huggingface-cli login` keeps the token, as huggingface_hub finds
 * it: HF_TOKEN_PATH, else HF_HOME/token, HF_HOME defaulting to
 * $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface. */
static char *login_token_path(void)
{
    const char *path = getenv("HF_TOKEN_PATH"), *home = getenv("HF_HOME");
    if (path && path[0]) return xstrdup(path);
    if (home && home[0]) return path_join(home, "token");
    const char *xdg = getenv("XDG_CACHE_HOME"), *user = getenv("HOME");
    if (xdg && xdg[0]) return xasprintf("%s/huggingface/token", xdg);
    return user && user[0] ? xasprintf("%s/.cache/huggingface/token", user) : NULL;
}

/* The token from --token-file, HF_TOKEN or the login token file, surrounding
 * whitespace removed. It is never printed: messages only say where it came
 * from. */
static char *read_token(const char *file)
{
    struct buf b = BUF_INIT;
    buf_init(&b);
    char *login = NULL;
    const char *env = getenv("HF_TOKEN");
    if (!file && !(env && env[0]) && (login = login_token_path()) && path_exists(login)) file = login;
    if (file) {
        if (read_file(file, &b, 64 * 1024) != 0) die_last();
    } else {
        if (!env || !env[0]) {
            buf_free(&b);
            free(login);
            return NULL;
        }
        buf_adds(&b, env);
    }
    char *where = xstrdup(file ? file : "HF_TOKEN");
    free(login);
    size_t start = 0, end = b.len;
    while (start < end && isspace((unsigned char)b.data[start])) start++;
    while (end > start && isspace((unsigned char)b.data[end - 1])) end--;
    if (start == end) die("%s: the token is empty", where);
    for (size_t i = start; i < end; i++)
        if ((unsigned char)b.data[i] < 0x21 || (unsigned char)b.data[i] == 0x7f)
            die("%s: the token contains spaces or control characters", where);
    char *token = xstrndup(b.data + start, end - start);
    free(where);
    explicit_bzero(b.data, b.len);
    buf_free(&b);
    return token;
}

/* HF_HUB_OFFLINE as huggingface_hub reads it: 1, ON, YES or TRUE. */
static bool hub_offline(void)
{
    const char *v = getenv("HF_HUB_OFFLINE");
    return v && (!strcmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

static enum cache_policy choose_policy(const char *option)
{
    const char *text = option ? option : getenv("MLC_DOWNLOAD_CACHE_POLICY");
    enum cache_policy p = POLICY_ON;
    if (text && text[0] && cache_policy_parse(text, &p) != 0)
        usage_error("%s: '%s' is not ON, OFF, REDO or READONLY",
                    option ? "--policy" : "MLC_DOWNLOAD_CACHE_POLICY", text);
    /* offline: the caches alone, never the network */
    if (hub_offline() && p == POLICY_REDO) usage_error("HF_HUB_OFFLINE is set: the REDO policy needs the network");
    if (hub_offline() && p == POLICY_ON) p = POLICY_OFF;
    return p;
}

static const char *choose_endpoint(void)
{
    const char *e = getenv("HF_ENDPOINT");
    if (!e || !e[0]) return HUB_DEFAULT_ENDPOINT;
    if (strncmp(e, "https://", 8) && strncmp(e, "http://", 7))
        usage_error("HF_ENDPOINT: '%s' is not an http:// or https:// URL", e);
    return e;
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    struct options opt = parse_command_line(argc, argv);

    struct fetch_options fo = {0};
    fo.policy = choose_policy(opt.policy);
    fo.endpoint = choose_endpoint();
    fo.rules = (struct file_rules){opt.include, opt.ninclude, opt.exclude, opt.nexclude};
    http_config_init(&fo.http);
    fo.http.parallel = (int)opt.jobs;
    fo.http.retries = (int)opt.retries;
    fo.http.retry_delay = opt.retry_delay;
    fo.http.stall_timeout = opt.timeout;
    const char *ca = getenv("CURL_CA_BUNDLE");
    fo.http.ca_bundle = ca && ca[0] ? ca : NULL;
    fo.verify = opt.verify;
    fo.hash_threads = cpu_count();

    struct model_source src;
    if (source_parse(opt.source, fo.endpoint, &src) != 0) die_last();
    char *token = src.type == SOURCE_HUB ? read_token(opt.token_file) : NULL;
    fo.http.token = token;

    struct stream_writer out;
    /* Records from earlier stages go through first, unchanged. */
    struct record_set kept = {0};
    filter_start(&out, opt.stream_file, false, &kept);
    record_set_free(&kept);

    struct fetch_result res;
    if (model_fetch(&src, &fo, &res) != 0) {
        if (hub_offline() && src.type == SOURCE_HUB) die("%s (HF_HUB_OFFLINE is set: the caches alone)", last_error());
        die_last();
    }
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }

    /* on a terminal the writer withholds the record: the path is shown */
    struct rec_builder b;
    model_record_build(&b, src.text, &res.dir, res.revision, res.commit);
    rb_write(&b, &out);
    if (stream_writer_close(&out) != 0) die_last();
    if (opt.depfile) { /* the model's files, where they now are */
        deps_record();
        for (size_t i = 0; i < res.dir.nfiles; i++) {
            char *path = path_join(res.dir.path, res.dir.files[i].name);
            deps_note(path);
            free(path);
        }
        if (deps_write(opt.depfile, opt.stream_file) != 0) die_last();
    }
    if (!quiet) fprintf(stderr, "%s\n", res.dir.path);

    fetch_result_free(&res);
    source_free(&src);
    free(opt.include);
    free(opt.exclude);
    return 0;
}
