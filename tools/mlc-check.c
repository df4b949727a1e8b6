/* mlc-check: load a compiled model in the engine, generate, and judge the
 * output; or use its tokenizer and templates by hand (see mlc-check(1)). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/depfile.h"
#include "common/engine/bench.h"
#include "common/engine/calibrate.h"
#include "common/engine/bisect.h"
#include "common/engine/chat.h"
#include "common/engine/check.h"
#include "common/engine/kl_plot.h"
#include "common/engine/serve.h"
#include "common/engine/reference.h"
#include "common/engine/vk_device.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/fsutil.h"
#include "common/json.h"
#include "common/pool.h"
#include "common/stream.h"
#include "formats/tokenizer/tok_batch.h"
#include "formats/tokenizer/tokenizer.h"

static const char help[] =
    "Usage: mlc-check [OPTION]...\n"
    "Load a compiled model (mlc-chat-config.json, tensor cache, model library)\n"
    "in the inference engine, run prompts, and judge the answers: non-empty,\n"
    "valid UTF-8, finite, coherent, deterministic. Prints a summary on standard\n"
    "error and a `check` record on standard output; exits 1 if any prompt fails,\n"
    "naming the likely stage.\n"
    "\n"
    "What to load (default: the last `library` record on standard input):\n"
    "  -l, --library=FILE         the model library (.tar)\n"
    "  -m, --model=DIR            the directory holding mlc-chat-config.json and\n"
    "                             tensor-cache.json (and the tokenizer)\n"
    "      --config=FILE          mlc-chat-config.json (overrides --model)\n"
    "      --weights=PATH         tensor-cache.json or its directory (overrides)\n"
    "      --verify               check every shard's md5 while loading\n"
    "      --mode=MODE            interactive (1 sequence), local (4, default),\n"
    "                             server (as many as memory holds)\n"
    "      --threads=N[,N...]     CPU threads (default: every core); a list with\n"
    "                             --bench runs each count\n"
    "      --kernels=NAME         CPU kernels: auto (default: the best this CPU\n"
    "                             runs), reference, generic, avx2, avx512\n"
    "      --device=DEVICE        cpu, vulkan (the best device) or vulkan:N\n"
    "                             (default: the library's target)\n"
    "      --list-devices         list the Vulkan devices and exit\n"
    "      --profile              Vulkan: time every kernel; a table on\n"
    "                             standard error at the end\n"
    "\n"
    "Prompts and sampling:\n"
    "  -p, --prompt=TEXT          a prompt (repeatable; default: a built-in set)\n"
    "      --prompts=FILE         prompts, one per line\n"
    "      --raw                  the prompt text as is, no conversation template\n"
    "      --greedy               temperature 0\n"
    "      --temperature=X --top-p=X --top-k=N --repetition-penalty=X\n"
    "      --presence-penalty=X --frequency-penalty=X\n"
    "                             (defaults: mlc-chat-config.json's)\n"
    "      --seed=N               sampling seed (default 0)\n"
    "      --max-tokens=N         per answer (default 64)\n"
    "\n"
    "Modes:\n"
    "      --generate             print the generated text as it streams (no\n"
    "                             judging, no record); each answer under a\n"
    "                             '### PROMPT' line when there are several\n"
    "      --chat                 talk with the model (conversation template,\n"
    "                             streaming; /reset, /stats, /help, /exit)\n"
    "      --system=TEXT          with --chat: a system message\n"
    "      --serve                an OpenAI-compatible HTTP server: POST\n"
    "                             /v1/chat/completions, GET /v1/models\n"
    "      --host=ADDR --port=N   where --serve listens (127.0.0.1, 8000;\n"
    "                             port 0: any free port, reported on stderr)\n"
    "      --reference=HF_DIR     also run the unquantized HuggingFace weights\n"
    "                             and report KL divergence, top-1 agreement and\n"
    "                             perplexity (what quantization cost)\n"
    "      --max-kl=X             with --reference: fail above this mean KL (0.5)\n"
    "      --min-top1=X           with --reference: fail below this agreement (0.6)\n"
    "      --plot=FILE.png|.svg   with --reference: draw KL per answer token\n"
    "      --logits-out=FILE      write float32 logits of the ids of --score: the\n"
    "      --score=IDS            prefill of the first --prefill N ids (default 1),\n"
    "                             then one row per decoded id; sequences separated\n"
    "                             by ';' are decoded together as one batch (longer\n"
    "                             ones prefill their extra ids first)\n"
    "  -t, --tokenize=TEXT        print one line per token: ID, a tab, the piece\n"
    "                             (TEXT '-': standard input)\n"
    "      --tokenize-file=FILE   one text per line (or JSON lines with a \"text\"\n"
    "                             field) to one line of ids each; FILE '-': stdin\n"
    "  -d, --detokenize=IDS       print the text of IDS (commas or spaces)\n"
    "      --ids                  with --tokenize: the ids only, on one line\n"
    "      --no-special           no BOS/EOS when tokenizing; drop special tokens\n"
    "                             when detokenizing\n"
    "      --render=CONV.json     print the prompt a conversation becomes with the\n"
    "                             model's conversation template\n"
    "      --bisect[=TOL]         run the first prompt's prefill and one decode\n"
    "                             step op by op on the device and on the CPU\n"
    "                             reference kernels from the same inputs; name the\n"
    "                             first op whose output differs by more than TOL\n"
    "                             (relative to its largest value; default 1e-3)\n"
    "      --bench[=TESTS]        measure speed like llama-bench: TESTS are ppN\n"
    "                             (prefill N tokens) and tgN (decode N tokens),\n"
    "                             default pp512,tg128; prints a table with the\n"
    "                             memory-bandwidth bound measured in the same run\n"
    "      --repeat=N             with --bench: repetitions of each test (5)\n"
    "      --calibrate=DATASET    measure the activation scales of an FP8\n"
    "                             calibration build (e4m3_e4m3_f16_max_calibrate)\n"
    "                             on a ShareGPT JSON dataset and write them into\n"
    "                             its tensor cache (server mode; a `calibration`\n"
    "                             record on standard output)\n"
    "      --num-calibration-samples=N  requests drawn from it (default 16),\n"
    "                             with --seed (default 0)\n"
    "\n"
    "      --stream=FILE          write the records to FILE instead of stdout\n"
    "      --depfile=FILE         write the files read to FILE (make syntax; the\n"
    "                             target is the --stream or --logits-out FILE)\n"
    "  -q, --quiet                no notes on standard error\n"
    "  -h, --help                 show this help and exit\n"
    "      --version              show the version and exit\n"
    "\n"
    "Exit status: 0 when every prompt passes, 1 on a failed check or an error,\n"
    "2 on a usage error, 130 when --serve is stopped by SIGINT (128 + the\n"
    "signal), 141 when the reader of standard output goes away.\n";

struct options {
    const char *library, *model, *config, *weights, *reference, *stream;
    const char **prompts;
    size_t nprompts;
    const char *prompts_file;
    bool raw, greedy, verify, generate, ids_only, no_special, chat, serve, mode_set;
    const char *system, *host, *tokenize_file, *plot, *depfile;
    long port;
    const char *tokenize, *detokenize, *render, *logits_out;
    const char *ids;
    const char *device;
    bool list_devices, profile, bisect;
    double bisect_tolerance;
    long prefill;
    int mode, threads;
    int thread_list[16], nthread_list;
    const char *kernels, *bench, *calibrate;
    long samples;
    long repeat;
    uint64_t seed;
    long max_tokens;
    double temperature, top_p, rep, presence, frequency, max_kl, min_top1;
    long top_k;
    bool set_temperature, set_top_p, set_rep, set_presence, set_frequency;
};

enum {
    OPT_CONFIG = 256, OPT_WEIGHTS, OPT_VERIFY, OPT_MODE, OPT_THREADS, OPT_PROMPTS, OPT_RAW, OPT_GREEDY,
    OPT_TEMPERATURE, OPT_TOP_P, OPT_TOP_K, OPT_REP, OPT_PRESENCE, OPT_FREQUENCY, OPT_SEED, OPT_MAX_TOKENS,
    OPT_GENERATE, OPT_REFERENCE, OPT_MAX_KL, OPT_MIN_TOP1, OPT_LOGITS, OPT_SCORE, OPT_PREFILL, OPT_IDS, OPT_NO_SPECIAL,
    OPT_RENDER, OPT_STREAM, OPT_VERSION, OPT_CHAT, OPT_SYSTEM, OPT_SERVE, OPT_HOST, OPT_PORT, OPT_TOKENIZE_FILE,
    OPT_PLOT, OPT_DEPFILE, OPT_KERNELS,
    OPT_BENCH, OPT_REPEAT, OPT_CALIBRATE, OPT_SAMPLES, OPT_DEVICE,
    OPT_LIST_DEVICES, OPT_PROFILE, OPT_BISECT
};

/* "2" or "1,2": thread counts */
static void parse_threads(const char *s, struct options *o)
{
    o->nthread_list = 0;
    char *copy = xstrdup(s), *save = NULL;
    for (char *part = strtok_r(copy, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        long v;
        if (o->nthread_list == 16) usage_error("--threads: at most 16 counts");
        parse_int_option("--threads", part, 1, 1024, &v);
        o->thread_list[o->nthread_list++] = (int)v;
    }
    free(copy);
    if (!o->nthread_list) usage_error("--threads: expected a number");
    o->threads = o->thread_list[0];
}

static double number(const char *opt, const char *s, double lo, double hi)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        usage_error("%s: expected a number from %g to %g, got '%s'", opt, lo, hi, s);
    return v;
}

static struct options parse_command_line(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"library", required_argument, NULL, 'l'},       {"model", required_argument, NULL, 'm'},
        {"config", required_argument, NULL, OPT_CONFIG}, {"weights", required_argument, NULL, OPT_WEIGHTS},
        {"verify", no_argument, NULL, OPT_VERIFY},       {"mode", required_argument, NULL, OPT_MODE},
        {"threads", required_argument, NULL, OPT_THREADS}, {"prompt", required_argument, NULL, 'p'},
        {"prompts", required_argument, NULL, OPT_PROMPTS}, {"raw", no_argument, NULL, OPT_RAW},
        {"greedy", no_argument, NULL, OPT_GREEDY},       {"temperature", required_argument, NULL, OPT_TEMPERATURE},
        {"top-p", required_argument, NULL, OPT_TOP_P},   {"top-k", required_argument, NULL, OPT_TOP_K},
        {"repetition-penalty", required_argument, NULL, OPT_REP},
        {"presence-penalty", required_argument, NULL, OPT_PRESENCE},
        {"frequency-penalty", required_argument, NULL, OPT_FREQUENCY},
        {"seed", required_argument, NULL, OPT_SEED},     {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
        {"generate", no_argument, NULL, OPT_GENERATE},   {"reference", required_argument, NULL, OPT_REFERENCE},
        {"max-kl", required_argument, NULL, OPT_MAX_KL}, {"min-top1", required_argument, NULL, OPT_MIN_TOP1},
        {"logits-out", required_argument, NULL, OPT_LOGITS}, {"prefill", required_argument, NULL, OPT_PREFILL},
        {"tokenize", required_argument, NULL, 't'},      {"detokenize", required_argument, NULL, 'd'},
        {"ids", no_argument, NULL, OPT_IDS},             {"no-special", no_argument, NULL, OPT_NO_SPECIAL},
        {"score", required_argument, NULL, OPT_SCORE},
        {"render", required_argument, NULL, OPT_RENDER}, {"stream", required_argument, NULL, OPT_STREAM},
        {"device", required_argument, NULL, OPT_DEVICE}, {"list-devices", no_argument, NULL, OPT_LIST_DEVICES},
        {"profile", no_argument, NULL, OPT_PROFILE},     {"bisect", optional_argument, NULL, OPT_BISECT},
        {"quiet", no_argument, NULL, 'q'},               {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},     {"chat", no_argument, NULL, OPT_CHAT},
        {"system", required_argument, NULL, OPT_SYSTEM}, {"serve", no_argument, NULL, OPT_SERVE},
        {"host", required_argument, NULL, OPT_HOST},     {"port", required_argument, NULL, OPT_PORT},
        {"tokenize-file", required_argument, NULL, OPT_TOKENIZE_FILE},
        {"plot", required_argument, NULL, OPT_PLOT},     {"depfile", required_argument, NULL, OPT_DEPFILE},
        {"kernels", required_argument, NULL, OPT_KERNELS}, {"bench", optional_argument, NULL, OPT_BENCH},
        {"repeat", required_argument, NULL, OPT_REPEAT},
        {"calibrate", required_argument, NULL, OPT_CALIBRATE},
        {"num-calibration-samples", required_argument, NULL, OPT_SAMPLES},
        {NULL, 0, NULL, 0},
    };
    struct options o = {.mode = MODE_LOCAL, .max_tokens = 64, .prefill = 1, .max_kl = 0.5, .min_top1 = 0.6,
                        .port = 8000, .repeat = 5, .samples = 16, .bisect_tolerance = 1e-3};
    o.prompts = xcalloc((size_t)argc + 1, sizeof *o.prompts);
    unsigned long long u;
    int c;
    while ((c = getopt_long(argc, argv, "l:m:p:t:d:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': o.library = optarg; break;
        case 'm': o.model = optarg; break;
        case OPT_CONFIG: o.config = optarg; break;
        case OPT_WEIGHTS: o.weights = optarg; break;
        case OPT_VERIFY: o.verify = true; break;
        case OPT_MODE:
            if ((o.mode = engine_mode_from_name(optarg)) < 0)
                usage_error("--mode: interactive, local or server, not '%s'", optarg);
            o.mode_set = true;
            break;
        case OPT_THREADS: parse_threads(optarg, &o); break;
        case OPT_KERNELS: o.kernels = optarg; break;
        case OPT_BENCH: o.bench = optarg ? optarg : "pp512,tg128"; break;
        case OPT_REPEAT: parse_int_option("--repeat", optarg, 1, 1000, &o.repeat); break;
        case OPT_CALIBRATE: o.calibrate = optarg; break;
        case OPT_SAMPLES: parse_int_option("--num-calibration-samples", optarg, 1, 1 << 20, &o.samples); break;
        case 'p': o.prompts[o.nprompts++] = optarg; break;
        case OPT_PROMPTS: o.prompts_file = optarg; break;
        case OPT_RAW: o.raw = true; break;
        case OPT_GREEDY: o.greedy = true; break;
        case OPT_TEMPERATURE: o.temperature = number("--temperature", optarg, 0, 100), o.set_temperature = true; break;
        case OPT_TOP_P: o.top_p = number("--top-p", optarg, 0, 1), o.set_top_p = true; break;
        case OPT_TOP_K: parse_int_option("--top-k", optarg, 0, 1 << 30, &o.top_k); break;
        case OPT_REP: o.rep = number("--repetition-penalty", optarg, 1e-6, 100), o.set_rep = true; break;
        case OPT_PRESENCE: o.presence = number("--presence-penalty", optarg, -2, 2), o.set_presence = true; break;
        case OPT_FREQUENCY: o.frequency = number("--frequency-penalty", optarg, -2, 2), o.set_frequency = true; break;
        case OPT_SEED:
            if (parse_u64(optarg, &u, 0) != 0) usage_error("--seed: expected a non-negative integer");
            o.seed = u;
            break;
        case OPT_MAX_TOKENS: parse_int_option("--max-tokens", optarg, 1, 1 << 24, &o.max_tokens); break;
        case OPT_GENERATE: o.generate = true; break;
        case OPT_REFERENCE: o.reference = optarg; break;
        case OPT_MAX_KL: o.max_kl = number("--max-kl", optarg, 0, 1e9); break;
        case OPT_MIN_TOP1: o.min_top1 = number("--min-top1", optarg, 0, 1); break;
        case OPT_LOGITS: o.logits_out = optarg; break;
        case OPT_PREFILL: parse_int_option("--prefill", optarg, 1, 1 << 24, &o.prefill); break;
        case 't': o.tokenize = optarg; break;
        case 'd': o.detokenize = optarg; break;
        case OPT_IDS: o.ids_only = true; break;
        case OPT_SCORE: o.ids = optarg; break;
        case OPT_NO_SPECIAL: o.no_special = true; break;
        case OPT_RENDER: o.render = optarg; break;
        case OPT_STREAM: o.stream = optarg; break;
        case OPT_DEVICE:
            if (engine_device_index(optarg) == -3) usage_error("--device: cpu, vulkan or vulkan:N, not '%s'", optarg);
            o.device = optarg;
            break;
        case OPT_LIST_DEVICES: o.list_devices = true; break;
        case OPT_PROFILE: o.profile = true; break;
        case OPT_BISECT:
            o.bisect = true;
            if (optarg) o.bisect_tolerance = number("--bisect", optarg, 0, 1e9);
            break;
        case OPT_CHAT: o.chat = true; break;
        case OPT_SYSTEM: o.system = optarg; break;
        case OPT_SERVE: o.serve = true; break;
        case OPT_HOST: o.host = optarg; break;
        case OPT_PORT: parse_int_option("--port", optarg, 0, 65535, &o.port); break;
        case OPT_TOKENIZE_FILE: o.tokenize_file = optarg; break;
        case OPT_PLOT: o.plot = optarg; break;
        case OPT_DEPFILE: o.depfile = optarg; break;
        case 'q': quiet = true; break;
        case 'h': print_help(help);
        case OPT_VERSION: print_version();
        default: usage_error("invalid option");
        }
    }
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    if ((o.tokenize || o.detokenize || o.tokenize_file) && !o.model)
        usage_error("--tokenize, --tokenize-file and --detokenize need --model DIR");
    if (!!o.tokenize + !!o.detokenize + !!o.tokenize_file > 1)
        usage_error("give one of --tokenize, --tokenize-file or --detokenize");
    if (o.chat + o.serve + o.generate + !!o.render + !!o.logits_out > 1)
        usage_error("give one of --chat, --serve, --generate, --render or --logits-out");
    if (o.system && !o.chat) usage_error("--system goes with --chat");
    if ((o.host || o.port != 8000) && !o.serve) usage_error("--host and --port go with --serve");
    if (o.plot && !o.reference) usage_error("--plot draws the KL against --reference: give both");
    if (o.plot && !kl_plot_format_known(o.plot)) usage_error("--plot %s: draw a .png or an .svg", o.plot);
    if (o.depfile && !o.stream && !o.logits_out)
        usage_error("--depfile describes the --stream (or --logits-out) FILE: give it too");
    if (!o.logits_out != !o.ids) usage_error("--logits-out and --score=IDS go together");
    if (o.calibrate && (o.chat + o.serve + o.generate + !!o.render + !!o.logits_out + !!o.bench + !!o.reference))
        usage_error("--calibrate runs alone: not with --chat, --serve, --generate, --render, --logits-out, --bench "
                    "or --reference");
    return o;
}

/* ---- the tokenizer and templates by hand ---- */

static void tokenize(struct tokenizer *t, const struct options *o)
{
    struct tok_ids ids = {0};
    struct buf in = BUF_INIT;
    buf_init(&in);
    const char *text = o->tokenize;
    size_t len = strlen(text);
    if (!strcmp(text, "-")) { /* standard input, less one final newline */
        if (read_file("/dev/stdin", &in, 1u << 30) != 0) die("--tokenize -: %s", last_error());
        if (in.len && in.data[in.len - 1] == '\n') in.len--;
        text = in.data ? in.data : "", len = in.len;
    }
    if (tokenizer_encode(t, text, len, !o->no_special, &ids)) die("--tokenize: %s", last_error());
    buf_free(&in);
    struct buf out = BUF_INIT;
    buf_init(&out);
    for (size_t i = 0; i < ids.n; i++) {
        if (o->ids_only) {
            buf_printf(&out, "%s%d", i ? " " : "", ids.v[i]);
            continue;
        }
        size_t len = 0;
        const char *piece = tokenizer_id_to_piece(t, ids.v[i], &len);
        buf_printf(&out, "%d\t", ids.v[i]);
        pyjson_string(&out, piece ? piece : "", piece ? len : 0, false);
        buf_addc(&out, '\n');
    }
    if (o->ids_only) buf_addc(&out, '\n');
    stdout_write(out.data, out.len);
    buf_free(&out);
    tok_ids_free(&ids);
}

/* "1,2 3" → ids; -1 on a malformed list */
static int parse_ids(const char *s, struct tok_ids *ids)
{
    while (*s) {
        if (strchr(", \t\n", *s)) {
            s++;
            continue;
        }
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || end == s || v < 0 || v > INT32_MAX || (*end && !strchr(", \t\n", *end))) return -1;
        tok_ids_push(ids, (int32_t)v);
        s = end;
    }
    return 0;
}

static void detokenize(struct tokenizer *t, const struct options *o)
{
    struct tok_ids ids = {0};
    if (parse_ids(o->detokenize, &ids) != 0)
        usage_error("--detokenize: expected token ids separated by commas or spaces, got '%s'", o->detokenize);
    size_t vs = tokenizer_vocab_size(t);
    for (size_t i = 0; i < ids.n; i++)
        if ((size_t)ids.v[i] >= vs) die("--detokenize: token id %d is outside the vocabulary (%zu tokens)", ids.v[i], vs);
    struct buf out = BUF_INIT;
    buf_init(&out);
    if (tokenizer_decode(t, ids.v, ids.n, o->no_special, &out) != 0) die_last();
    buf_addc(&out, '\n');
    stdout_write(out.data, out.len);
    buf_free(&out);
    tok_ids_free(&ids);
}

static void render(const struct chat_config *cfg, const char *path)
{
    if (!cfg->conv_template) die("%s has no conversation template", cfg->source);
    json_t *doc = json_load_path(path);
    if (!doc) die_last();
    struct chat_message *msgs;
    size_t n;
    if (chat_messages_from_json(doc, path, &msgs, &n) != 0) die_last();
    struct conv_prompt p;
    if (conv_render(cfg->conv_template, msgs, n, NULL, &p) != 0) die("%s: %s", path, last_error());
    printf("prefix_token_ids:");
    for (size_t i = 0; i < p.n_prefix_token_ids; i++) printf(" %d", p.prefix_token_ids[i]);
    printf("\n");
    fwrite(p.text, 1, p.text_len, stdout);
    printf("\n");
    conv_prompt_free(&p);
    free(msgs);
    json_decref(doc);
}

/* ---- where things are ---- */

struct paths {
    char *library, *config, *weights, *tokenizer_dir;
};

static char *opt_field(const struct record *r, const char *key)
{
    char *s = NULL;
    if (r && rec_opt_str(r, key, &s) < 0) die_last();
    return s;
}

static struct paths resolve(const struct options *o, const struct record_set *in)
{
    struct paths p = {0};
    const struct record *lib = record_set_last(in, "library");
    p.library = o->library ? xstrdup(o->library) : opt_field(lib, "path");
    p.config = o->config ? xstrdup(o->config) : o->model ? path_join(o->model, "mlc-chat-config.json") : opt_field(lib, "config");
    p.weights = o->weights ? xstrdup(o->weights) : o->model ? xstrdup(o->model) : opt_field(lib, "weights");
    /* the stream of an earlier stage (mlc-cfg, mlc-quant) names them too */
    if (!p.config) p.config = opt_field(record_set_last(in, "config"), "path");
    if (!p.weights) p.weights = opt_field(record_set_last(in, "weights"), "path");
    if (!p.config) die("no mlc-chat-config.json: give --model DIR (or --config FILE), or pipe in mlc-emit's output");
    p.tokenizer_dir = path_dirname(p.config);
    return p;
}

static void free_paths(struct paths *p)
{
    free(p->library);
    free(p->config);
    free(p->weights);
    free(p->tokenizer_dir);
}

/* ---- running ---- */

static void print_text(size_t request, const char *text, size_t len, void *ctx)
{
    (void)request;
    (void)ctx;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

static struct sampler_params sampling_from(const struct options *o, const struct chat_config *c)
{
    struct sampler_params s = sampler_defaults();
    s.temperature = o->greedy ? 0 : o->set_temperature ? o->temperature : c->temperature;
    s.top_p = o->set_top_p ? o->top_p : c->top_p;
    s.top_k = (unsigned)o->top_k;
    s.repetition_penalty = o->set_rep ? o->rep : c->repetition_penalty;
    s.presence_penalty = o->set_presence ? o->presence : c->presence_penalty;
    s.frequency_penalty = o->set_frequency ? o->frequency : c->frequency_penalty;
    s.active_vocab_size = (size_t)(c->active_vocab_size > 0 ? c->active_vocab_size : 0);
    if (sampler_check(&s) != 0) die_last();
    return s;
}

static void read_prompts(struct options *o, struct buf *storage)
{
    if (!o->prompts_file) return;
    if (read_file(o->prompts_file, storage, 64u << 20) != 0) die_last();
    size_t lines = 1;
    for (size_t i = 0; i < storage->len; i++) lines += storage->data[i] == '\n';
    o->prompts = xrealloc(o->prompts, sizeof *o->prompts * (o->nprompts + lines + 1));
    char *s = storage->data, *save = NULL;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\r') line[n - 1] = 0;
        if (*line) o->prompts[o->nprompts++] = line;
    }
}

static void print_speed(const struct engine *e)
{
    char line[256];
    engine_format_speed(e, line, sizeof line);
    note("speed: %s", line);
}

/* --logits-out: teacher-forced logits, the prefill then one decode step per
 * id, several sequences decoded together (a longer sequence prefills its
 * extra ids, so that all decode as many steps as the shortest and sit at
 * different positions in one batch). */
static void write_logits(struct engine *e, const struct options *o)
{
    struct tok_ids seqs[64];
    size_t nseq = 0;
    char *copy = xstrdup(o->ids), *save = NULL;
    for (char *part = strtok_r(copy, ";", &save); part; part = strtok_r(NULL, ";", &save)) {
        if (nseq == 64) die("--score: at most 64 sequences");
        memset(&seqs[nseq], 0, sizeof seqs[nseq]);
        if (parse_ids(part, &seqs[nseq]) != 0 || seqs[nseq].n < (size_t)o->prefill)
            usage_error("--score: each sequence needs at least --prefill (%ld) ids: '%s'", o->prefill, part);
        nseq++;
    }
    free(copy);
    if ((int)nseq > e->max_sequences) die("--score: %zu sequences, the engine's mode allows %d", nseq, e->max_sequences);
    int64_t V = e->vocab_size;
    size_t shortest = seqs[0].n;
    for (size_t s = 1; s < nseq; s++)
        if (seqs[s].n < shortest) shortest = seqs[s].n;
    size_t steps = shortest - (size_t)o->prefill + 1;
    float *out = xmalloc(sizeof(float) * (size_t)V * steps * nseq);
    int *sid = xmalloc(sizeof(int) * nseq);
    int32_t *tok = xmalloc(sizeof(int32_t) * nseq);
    float *batch = xmalloc(sizeof(float) * (size_t)V * nseq);
    for (size_t s = 0; s < nseq; s++) {
        if ((sid[s] = engine_new_sequence(e)) < 0) die_last();
        if (engine_prefill(e, sid[s], seqs[s].v, (int64_t)(seqs[s].n - steps + 1), out + (s * steps) * (size_t)V) != 0)
            die_last();
    }
    for (size_t k = 1; k < steps; k++) {
        for (size_t s = 0; s < nseq; s++) tok[s] = seqs[s].v[seqs[s].n - steps + k];
        if (engine_decode(e, sid, tok, (int64_t)nseq, batch) != 0) die_last();
        for (size_t s = 0; s < nseq; s++)
            memcpy(out + (s * steps + k) * (size_t)V, batch + s * (size_t)V, sizeof(float) * (size_t)V);
    }
    if (atomic_write_file(o->logits_out, out, sizeof(float) * (size_t)V * steps * nseq) != 0) die_last();
    note("wrote %zu x %zu logits rows of %lld to %s", nseq, steps, (long long)V, o->logits_out);
    for (size_t s = 0; s < nseq; s++) tok_ids_free(&seqs[s]);
    free(out);
    free(sid);
    free(tok);
    free(batch);
}

static void tokenize_file(struct tokenizer *t, const struct options *o)
{
    bool std_in = !strcmp(o->tokenize_file, "-");
    FILE *in = std_in ? stdin : fopen(o->tokenize_file, "r");
    if (!in) die("%s: %m", o->tokenize_file);
    if (!std_in) deps_note(o->tokenize_file);
    int rc = tokenize_lines(t, in, std_in ? "<stdin>" : o->tokenize_file, !o->no_special, stdout);
    if (rc == -2) finish_stdout();
    if (rc != 0) die_last();
    if (!std_in) fclose(in);
}

/* --calibrate: measure, write into the tensor cache, append the record */
static int calibrate(struct engine *e, struct tokenizer *t, const struct options *o, const struct check_options *co,
                     const char *weights, struct stream_writer *out)
{
    size_t n = strlen(weights);
    char *dir = n > 5 && !strcmp(weights + n - 5, ".json") ? path_dirname(weights) : xstrdup(weights);
    struct calibrate_options ca = {o->calibrate, (size_t)o->samples, o->seed, co->sampling, dir};
    struct calibration c;
    deps_note(o->calibrate);
    if (calibrate_run(e, t, &ca, &c) != 0) die_last();
    float lo = 0, hi = 0;
    for (size_t i = 0; i < c.nlayers; i++) {
        if (!i || c.layers[i].scale < lo) lo = c.layers[i].scale;
        if (!i || c.layers[i].scale > hi) hi = c.layers[i].scale;
    }
    note("calibrated %zu layers on %zu requests of %s (seed %llu, %d at a time): scales %.4g to %.4g; "
         "%zu replaced, %zu added in %s",
         c.nlayers, c.data.n, o->calibrate, (unsigned long long)o->seed, c.batch, (double)lo, (double)hi, c.replaced,
         c.added, dir);
    print_speed(e);
    calibrate_write_record(out, &c, &ca);
    calibration_free(&c);
    free(dir);
    return 0;
}

static void say_listening(int port)
{
    fprintf(stderr, "%s: serving on port %d (POST /v1/chat/completions, GET /v1/models); Ctrl-C stops\n",
            progname, port);
}

static int serve(struct engine *e, struct tokenizer *t, const struct options *o, const struct check_options *co,
                 const char *config)
{
    char *dir = path_dirname(config), *abs = realpath(dir, NULL);
    struct serve_options so = {o->host, (int)o->port, path_basename(abs ? abs : dir), co->sampling, co->seed,
                               co->max_tokens, 1u << 20};
    int sig = serve_run(e, t, &so, say_listening);
    free(dir);
    free(abs);
    if (sig < 0) die_last();
    note("stopped by signal %d", sig);
    return 128 + sig;
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    struct options o = parse_command_line(argc, argv);
    struct buf prompt_storage = BUF_INIT;
    buf_init(&prompt_storage);
    read_prompts(&o, &prompt_storage);

    if (o.list_devices) {
        struct buf list = BUF_INIT;
        buf_init(&list);
        if (vk_list_devices(&list) != 0) die_last();
        fwrite(list.data, 1, list.len, stdout);
        buf_free(&list);
        free(o.prompts);
        return fflush(stdout) ? 1 : 0;
    }

    if (o.depfile) deps_record();
    if (o.tokenize || o.detokenize || o.tokenize_file) {
        struct tokenizer *t = tokenizer_load(o.model);
        if (!t) die_last();
        note("tokenizer: %s, %zu tokens", tokenizer_source(t), tokenizer_vocab_size(t));
        if (o.tokenize) tokenize(t, &o);
        else if (o.detokenize) detokenize(t, &o);
        else tokenize_file(t, &o);
        tokenizer_free(t);
        free(o.prompts);
        buf_free(&prompt_storage);
        finish_stdout();
        return 0;
    }

    bool records = !o.generate && !o.render && !o.logits_out && !o.chat && !o.serve && !o.bench && !o.bisect;
    struct stream_writer out;
    struct record_set in = {0};
    if (o.chat) /* standard input is the conversation, not a stream */
        stream_writer_init_fd(&out, -1, "<stdout>");
    else
        filter_start(&out, o.stream, !records, &in);
    struct paths p = resolve(&o, &in);

    if (o.render) {
        struct chat_config cfg;
        if (chat_config_load(p.config, &cfg) != 0) die_last();
        render(&cfg, o.render);
        chat_config_free(&cfg);
        stream_writer_close(&out);
        record_set_free(&in);
        free_paths(&p);
        free(o.prompts);
        buf_free(&prompt_storage);
        finish_stdout();
        return 0;
    }

    struct check_options co = check_default_options();
    co.raw = o.raw;
    co.seed = o.seed;
    co.max_tokens = (size_t)o.max_tokens;
    co.max_kl = o.max_kl;
    co.min_top1 = o.min_top1;
    co.prompts = o.nprompts ? o.prompts : check_builtin_prompts(o.raw, &co.nprompts);
    if (o.nprompts) co.nprompts = o.nprompts;

    if (!p.library) die("no model library: give --library FILE, or pipe in mlc-emit's output");
    if (!p.weights) die("no weights: give --model DIR or --weights PATH, or pipe in mlc-emit's output");
    struct engine e;
    enum engine_mode mode = o.mode_set ? (enum engine_mode)o.mode
                          : o.generate || o.chat ? MODE_INTERACTIVE : o.serve || o.calibrate ? MODE_SERVER
                                                                                       : (enum engine_mode)o.mode;
    /* Calibration observes activations in the CPU executor. */
    if (o.calibrate && o.device && strcmp(o.device, "cpu"))
        die("--calibrate measures activation scales on the CPU: leave out --device %s", o.device);
    const char *device = o.calibrate ? "cpu" : o.device;
    struct engine_options eo = {p.config, p.weights, p.library, o.verify, o.threads, mode, device, o.profile, o.bisect,
                                o.kernels ? o.kernels : o.bisect ? "reference" : NULL};
    if (o.bench) {
        int all = cpu_count();
        struct bench_options bo = {o.bench, (int)o.repeat, o.nthread_list ? o.thread_list : &all,
                                   o.nthread_list ? o.nthread_list : 1};
        if (bench_run(&eo, &bo, stdout) != 0) die_last();
        stream_writer_close(&out);
        record_set_free(&in);
        free_paths(&p);
        free(o.prompts);
        buf_free(&prompt_storage);
        return fflush(stdout) ? 1 : 0;
    }
    const char *stage = NULL;
    int status = 1;
    if (engine_open(&e, &eo, &stage) != 0) {
        char *err = xstrdup(last_error());
        const char *diagnosis = !strcmp(stage, "config") ? "config/tokenizer" : stage;
        if (records) check_write_record(&out, NULL, &co, p.library, err, diagnosis);
        if (stream_writer_close(&out) != 0) die_last();
        die("%s (likely stage: %s)", err, diagnosis);
    }
    struct tokenizer *t = tokenizer_load(p.tokenizer_dir);
    if (!t) {
        char *err = xstrdup(last_error());
        if (records) check_write_record(&out, NULL, &co, p.library, err, "config/tokenizer");
        if (stream_writer_close(&out) != 0) die_last();
        die("%s (likely stage: config/tokenizer)", err);
    }
    co.sampling = sampling_from(&o, &e.cfg);
    note("loaded %s (%s, %s) in %s mode: %d sequence%s, on %s", p.library, e.cfg.model_type, e.cfg.quantization,
         engine_mode_name(eo.mode), e.max_sequences, e.max_sequences == 1 ? "" : "s",
         e.vk ? vk_exec_device(e.vk) : "the CPU");

    if (o.bisect) {
        if (!e.vk) die("--bisect compares a Vulkan device with the CPU: the engine runs on the CPU (--device vulkan)");
        status = engine_bisect_prompt(&e, t, co.prompts[0], co.raw, o.bisect_tolerance, stdout);
        if (status < 0) die_last();
    } else if (o.logits_out) {
        write_logits(&e, &o);
        status = 0;
    } else if (o.calibrate) {
        status = calibrate(&e, t, &o, &co, p.weights, &out);
    } else if (o.chat) {
        struct chat_options ch = {co.sampling, co.seed, co.max_tokens, o.system};
        if (chat_run(&e, t, &ch, stdin, stdout) != 0) die_last();
        status = 0;
    } else if (o.serve) {
        status = serve(&e, t, &o, &co, p.config);
    } else if (o.generate) {
        status = 0;
        for (size_t i = 0; i < co.nprompts && status == 0; i++) {
            if (co.nprompts > 1) printf("%s### %s\n", i ? "\n" : "", co.prompts[i]);
            struct generate_request rq = {co.prompts[i], co.raw, co.sampling, co.seed, co.max_tokens};
            struct generation g;
            if (generate_run(&e, t, &rq, 1, &g, print_text, NULL) != 0) {
                generation_free(&g);
                die_last();
            }
            printf("\n");
            note("%zu tokens, stopped by %s", g.ids.n, stop_reason_name(g.reason));
            generation_free(&g);
        }
        print_speed(&e);
    } else {
        struct engine ref;
        bool have_ref = false;
        if (o.reference) {
            if (engine_open_reference(&ref, o.reference, p.config, &e.module->dims, o.threads,
                                      (enum engine_mode)o.mode) != 0)
                die("--reference %s: %s", o.reference, last_error());
            have_ref = true;
        }
        struct check_report rep;
        if (check_run(&e, have_ref ? &ref : NULL, t, &co, &rep) != 0) die_last();
        check_print_summary(&rep);
        if (o.plot && kl_plot_write(o.plot, &rep) != 0) die_last();
        if (o.plot) note("KL per answer token drawn in %s", o.plot);
        print_speed(&e);
        check_write_record(&out, &rep, &co, p.library, NULL, rep.diagnosis);
        status = rep.pass ? 0 : 1;
        check_report_free(&rep);
        if (have_ref) engine_close(&ref);
    }
    if (stream_writer_close(&out) != 0) die_last();
    if (o.profile && e.vk) vk_exec_print_profile(e.vk, stderr);
    if (o.depfile && deps_write(o.depfile, o.stream ? o.stream : o.logits_out) != 0) die_last();
    tokenizer_free(t);
    engine_close(&e);
    record_set_free(&in);
    free_paths(&p);
    free(o.prompts);
    buf_free(&prompt_storage);
    finish_stdout();
    return status;
}
