/* mlc-check: load a model's pieces and check them (see mlc-check(1)).
 * For now it exposes the tokenizer by hand: --tokenize and --detokenize. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/cli.h"
#include "common/err.h"
#include "common/json.h"
#include "formats/tokenizer.h"

static const char help[] =
    "Usage: mlc-check --model DIR --tokenize TEXT\n"
    "       mlc-check --model DIR --detokenize IDS\n"
    "Use the tokenizer of a model directory by hand: print the token ids and\n"
    "pieces of TEXT, or the text of a list of token ids.\n"
    "\n"
    "  -m, --model=DIR       model or output directory holding tokenizer.json,\n"
    "                        tokenizer.model, or vocab.json + merges.txt\n"
    "  -t, --tokenize=TEXT   print one line per token: ID, a tab, the piece as\n"
    "                        a JSON string\n"
    "  -d, --detokenize=IDS  print the text of IDS (separated by commas or\n"
    "                        spaces) followed by a newline\n"
    "      --ids             with --tokenize: print only the ids, on one line\n"
    "      --no-special      do not add BOS/EOS when tokenizing; drop special\n"
    "                        tokens when detokenizing\n"
    "  -q, --quiet           no notes on standard error\n"
    "  -h, --help            show this help and exit\n"
    "      --version         show the version and exit\n"
    "\n"
    "Exit status: 0 on success, 1 on an error (unreadable tokenizer, bad input),\n"
    "2 on a usage error.\n";

struct options {
    const char *model;
    const char *tokenize;
    const char *detokenize;
    int ids_only;
    int no_special;
};

enum { OPT_IDS = 256, OPT_NO_SPECIAL, OPT_VERSION };

static struct options parse_command_line(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},      {"tokenize", required_argument, NULL, 't'},
        {"detokenize", required_argument, NULL, 'd'}, {"ids", no_argument, NULL, OPT_IDS},
        {"no-special", no_argument, NULL, OPT_NO_SPECIAL},
        {"quiet", no_argument, NULL, 'q'},            {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},  {NULL, 0, NULL, 0},
    };
    struct options o = {0};
    int c;
    while ((c = getopt_long(argc, argv, "m:t:d:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 't': o.tokenize = optarg; break;
        case 'd': o.detokenize = optarg; break;
        case OPT_IDS: o.ids_only = 1; break;
        case OPT_NO_SPECIAL: o.no_special = 1; break;
        case 'q': quiet = true; break;
        case 'h': print_help(help);
        case OPT_VERSION: print_version();
        default: usage_error("invalid option");
        }
    }
    if (optind < argc) usage_error("unexpected argument '%s'", argv[optind]);
    if (!o.tokenize == !o.detokenize) usage_error("give one of --tokenize or --detokenize");
    if (!o.model) usage_error("--model DIR is required");
    return o;
}

static void tokenize(struct tokenizer *t, const struct options *o)
{
    struct tok_ids ids = {0};
    if (tokenizer_encode(t, o->tokenize, strlen(o->tokenize), !o->no_special, &ids))
        die("--tokenize: %s", last_error());
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
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    tok_ids_free(&ids);
}

static void detokenize(struct tokenizer *t, const struct options *o)
{
    struct tok_ids ids = {0};
    const char *s = o->detokenize;
    while (*s) {
        if (*s == ',' || *s == ' ' || *s == '\t' || *s == '\n') {
            s++;
            continue;
        }
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || v < 0 || v > INT32_MAX || (*end && !strchr(", \t\n", *end)))
            usage_error("--detokenize: expected token ids separated by commas or spaces, got '%s'", s);
        tok_ids_push(&ids, (int32_t)v);
        s = end;
    }
    size_t vs = tokenizer_vocab_size(t);
    for (size_t i = 0; i < ids.n; i++)
        if ((size_t)ids.v[i] >= vs) die("--detokenize: token id %d is outside the vocabulary (%zu tokens)", ids.v[i], vs);
    struct buf out = BUF_INIT;
    buf_init(&out);
    tokenizer_decode(t, ids.v, ids.n, o->no_special, &out);
    buf_addc(&out, '\n');
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
    tok_ids_free(&ids);
}

int main(int argc, char **argv)
{
    prog_init(argv[0]);
    struct options o = parse_command_line(argc, argv);
    struct tokenizer *t = tokenizer_load(o.model);
    if (!t) die_last();
    note("tokenizer: %s, %zu tokens", tokenizer_source(t), tokenizer_vocab_size(t));
    if (o.tokenize) tokenize(t, &o);
    else detokenize(t, &o);
    tokenizer_free(t);
    if (fflush(stdout) || ferror(stdout)) die("write error on standard output");
    return 0;
}
