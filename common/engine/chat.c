#include "common/engine/chat.h"
#include "common/engine/conversation.h"
#include "common/err.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char commands[] =
    "/reset  forget the conversation\n"
    "/stats  prefill and decode speed of the last answer\n"
    "/help   this list\n"
    "/exit   end (so does the end of input)\n";

static void print_stats(FILE *out, const struct reply_stats *s, bool any)
{
    if (!any) {
        fputs("no answer yet\n", out);
        return;
    }
    double pf = s->prefill_seconds > 0 ? (double)s->prefilled / s->prefill_seconds : 0;
    double dc = s->decode_seconds > 0 ? (double)s->completion_tokens / s->decode_seconds : 0;
    fprintf(out, "prefill: %zu tokens, %.1f tok/s (%zu of the %zu-token conversation cached), "
                 "decode: %zu tokens, %.1f tok/s\n",
            s->prefilled, pf, s->prompt_tokens - s->prefilled, s->prompt_tokens, s->completion_tokens, dc);
}

/* One answer, streamed to out as it comes. */
static int answer(struct conversation *c, const struct chat_options *o, FILE *out, struct reply_stats *stats)
{
    struct reply r;
    if (reply_begin(c, &o->sampling, o->seed, o->max_tokens, &r) != 0) return -1;
    struct buf piece = BUF_INIT;
    buf_init(&piece);
    int rc;
    do {
        buf_reset(&piece);
        rc = reply_next(c, &r, &piece);
        if (rc >= 0 && piece.len) {
            fwrite(piece.data, 1, piece.len, out);
            fflush(out);
        }
    } while (rc == 1);
    fputc('\n', out);
    fflush(out);
    buf_free(&piece);
    *stats = r.stats;
    reply_end(c, &r, rc == 0);
    return rc;
}

int chat_run(struct engine *e, struct tokenizer *t, const struct chat_options *o, FILE *in, FILE *out)
{
    struct conversation c;
    conversation_init(&c, e, t, NULL);
    if (o->system) conversation_add(&c, "system", o->system);
    bool prompt = isatty(fileno(in));
    if (prompt) fprintf(out, "Type a message; /help lists the commands.\n");
    struct reply_stats last = {0};
    bool answered = false;
    char *line = NULL;
    size_t cap = 0;
    int rc = 0;
    for (;;) {
        if (prompt) {
            fputs(">>> ", out);
            fflush(out);
        }
        ssize_t n = getline(&line, &cap, in);
        if (n < 0) break;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!n) continue;
        if (line[0] == '/') {
            if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
            if (!strcmp(line, "/reset")) {
                conversation_reset(&c);
                if (o->system) conversation_add(&c, "system", o->system);
                answered = false;
                fputs("(the conversation starts over)\n", out);
            } else if (!strcmp(line, "/stats")) {
                print_stats(out, &last, answered);
            } else if (!strcmp(line, "/help")) {
                fputs(commands, out);
            } else {
                fprintf(out, "unknown command %s; /help lists them\n", line);
            }
            fflush(out);
            continue;
        }
        conversation_add(&c, "user", line);
        if (answer(&c, o, out, &last) != 0) {
            /* a conversation that no longer fits is the user's to reset */
            warning("%s", last_error());
            conversation_drop_last(&c);
            if (strstr(last_error(), "context window")) {
                fputs("(/reset starts a new conversation)\n", out);
                continue;
            }
            rc = -1;
            break;
        }
        answered = true;
    }
    if (prompt && rc == 0) fputc('\n', out);
    free(line);
    conversation_free(&c);
    return rc;
}
