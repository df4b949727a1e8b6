#include "common/engine/serve.h"
#include "common/engine/conversation.h"
#include "common/err.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct server {
    struct engine *e;
    struct tokenizer *t;
    const struct serve_options *o;
    pthread_mutex_t lock;        /* one engine call at a time */
    atomic_ulong next_id;
    atomic_bool stopping;
};

/* What one request has sent so far. */
struct request {
    struct buf body;
    bool too_big;
};

/* ---- responses ---- */

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* OpenAI's error object. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, const char *type, const char *message)
{
    return send_json(c, status,
                     json_pack("{s:{s:s, s:s, s:n, s:n}}", "error", "message", message, "type", type, "param",
                               "code"));
}

static json_t *model_object(const struct server *s)
{
    return json_pack("{s:s, s:s, s:i, s:s}", "id", s->o->model_name, "object", "model", "created", 0,
                     "owned_by", "mlc-pipe");
}

static const char *finish_reason(enum stop_reason r)
{
    return r == STOP_LENGTH ? "length" : "stop";
}

/* ---- a chat completion request ---- */

struct completion {
    struct server *s;
    struct conversation conv;
    struct reply reply;
    bool replying;
    char id[48];
    long long created;
    /* streaming: bytes not yet handed to libmicrohttpd */
    struct buf pending;
    size_t sent;
    int phase;                   /* 0 role, 1 tokens, 2 final chunk, 3 [DONE], 4 end */
};

static void completion_free(struct completion *k)
{
    if (k->replying) reply_end(&k->conv, &k->reply, false);
    conversation_free(&k->conv);
    buf_free(&k->pending);
    free(k);
}

/* The request's fields, checked; 0 or -1 with an error message for a 400. */
static int read_request(json_t *doc, struct completion *k, struct sampler_params *sp, uint64_t *seed,
                        size_t *max_tokens, bool *stream, char *err, size_t errlen)
{
    const struct serve_options *o = k->s->o;
    *sp = o->sampling;
    *seed = o->seed;
    *max_tokens = o->max_tokens;
    *stream = false;
    json_t *v;
    if (!json_is_object(doc)) return snprintf(err, errlen, "the request body must be a JSON object"), -1;
    if ((v = json_object_get(doc, "stream")) && !json_is_null(v)) {
        if (!json_is_boolean(v)) return snprintf(err, errlen, "'stream' must be true or false"), -1;
        *stream = json_is_true(v);
    }
    const char *limit_key = json_object_get(doc, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    if ((v = json_object_get(doc, limit_key)) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            return snprintf(err, errlen, "'%s' must be a positive integer", limit_key), -1;
        if ((json_int_t)*max_tokens > json_integer_value(v)) *max_tokens = (size_t)json_integer_value(v);
    }
    if ((v = json_object_get(doc, "temperature")) && !json_is_null(v)) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 2)
            return snprintf(err, errlen, "'temperature' must be a number from 0 to 2"), -1;
        sp->temperature = json_number_value(v);
    }
    if ((v = json_object_get(doc, "top_p")) && !json_is_null(v)) {
        if (!json_is_number(v) || !(json_number_value(v) > 0) || json_number_value(v) > 1)
            return snprintf(err, errlen, "'top_p' must be a number in (0, 1]"), -1;
        sp->top_p = json_number_value(v);
    }
    if ((v = json_object_get(doc, "seed")) && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return snprintf(err, errlen, "'seed' must be a non-negative integer"), -1;
        *seed = (uint64_t)json_integer_value(v);
    }
    if ((v = json_object_get(doc, "n")) && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 1))
        return snprintf(err, errlen, "only 'n': 1 is served"), -1;
    v = json_object_get(doc, "messages");
    if (!json_is_array(v) || json_array_size(v) == 0)
        return snprintf(err, errlen, "'messages' must be a non-empty array of {role, content} objects"), -1;
    struct chat_message *msgs;
    size_t n;
    if (chat_messages_from_json(doc, "request", &msgs, &n) != 0)
        return snprintf(err, errlen, "%s", last_error()), -1;
    for (size_t i = 0; i < n; i++) conversation_add(&k->conv, msgs[i].role, msgs[i].content);
    free(msgs);
    return 0;
}

static json_t *chunk(const struct completion *k, json_t *delta, const char *finish)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:s?}]}", "id", k->id, "object",
                     "chat.completion.chunk", "created", (json_int_t)k->created, "model", k->s->o->model_name,
                     "choices", "index", 0, "delta", delta, "finish_reason", finish);
}

static void add_event(struct buf *b, json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    buf_adds(b, "data: ");
    buf_adds(b, text);
    buf_adds(b, "\n\n");
    free(text);
}

/* The next events of a streamed answer into k->pending. */
static void produce(struct completion *k)
{
    switch (k->phase) {
    case 0:
        add_event(&k->pending, chunk(k, json_pack("{s:s, s:s}", "role", "assistant", "content", ""), NULL));
        k->phase = 1;
        return;
    case 1: {
        struct buf piece = BUF_INIT;
        buf_init(&piece);
        int rc = atomic_load(&k->s->stopping) ? 0 : reply_next(&k->conv, &k->reply, &piece);
        if (piece.len)
            add_event(&k->pending,
                      chunk(k, json_pack("{s:s%}", "content", piece.data, piece.len), NULL));
        buf_free(&piece);
        if (rc < 0) {
            add_event(&k->pending, json_pack("{s:{s:s, s:s}}", "error", "message", last_error(), "type",
                                             "server_error"));
            k->phase = 3;
        } else if (rc == 0) {
            k->phase = 2;
        }
        return;
    }
    case 2:
        add_event(&k->pending, chunk(k, json_object(), finish_reason(k->reply.reason)));
        k->phase = 3;
        return;
    case 3:
        buf_adds(&k->pending, "data: [DONE]\n\n");
        k->phase = 4;
        return;
    }
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    struct completion *k = cls;
    while (k->sent == k->pending.len) {
        if (k->phase == 4) return MHD_CONTENT_READER_END_OF_STREAM;
        buf_reset(&k->pending);
        k->sent = 0;
        produce(k);
    }
    size_t n = k->pending.len - k->sent;
    if (n > max) n = max;
    memcpy(out, k->pending.data + k->sent, n);
    k->sent += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    completion_free(cls);
}

static enum MHD_Result complete(struct server *s, struct MHD_Connection *c, const struct buf *body)
{
    json_error_t jerr;
    json_t *doc = json_loadb(body->data ? body->data : "", body->len, 0, &jerr);
    if (!doc) {
        char msg[256];
        snprintf(msg, sizeof msg, "the request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        return send_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", msg);
    }
    struct completion *k = xcalloc(1, sizeof *k);
    k->s = s;
    conversation_init(&k->conv, s->e, s->t, &s->lock);
    buf_init(&k->pending);
    snprintf(k->id, sizeof k->id, "chatcmpl-%lu", (unsigned long)atomic_fetch_add(&s->next_id, 1));
    k->created = (long long)time(NULL);
    struct sampler_params sp;
    uint64_t seed;
    size_t max_tokens;
    bool stream;
    char err[512];
    int rc = read_request(doc, k, &sp, &seed, &max_tokens, &stream, err, sizeof err);
    json_decref(doc);
    if (rc == 0 && sampler_check(&sp) != 0) rc = -1, snprintf(err, sizeof err, "%s", last_error());
    if (rc != 0) {
        completion_free(k);
        return send_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", err);
    }
    if (reply_begin(&k->conv, &sp, seed, max_tokens, &k->reply) != 0) {
        snprintf(err, sizeof err, "%s", last_error());
        completion_free(k);
        bool busy = strstr(err, "no free sequence") != NULL;
        return send_error(c, busy ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_BAD_REQUEST,
                          busy ? "server_busy" : "invalid_request_error", err);
    }
    k->replying = true;
    if (stream) {
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_reader, k,
                                                                   stream_free);
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        return ret;
    }
    struct buf piece = BUF_INIT;
    buf_init(&piece);
    while ((rc = reply_next(&k->conv, &k->reply, &piece)) == 1 && !atomic_load(&s->stopping)) buf_reset(&piece);
    buf_free(&piece);
    if (rc < 0) {
        snprintf(err, sizeof err, "%s", last_error());
        completion_free(k);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "server_error", err);
    }
    const struct reply *r = &k->reply;
    json_t *answer = json_pack(
        "{s:s, s:s, s:I, s:s, s:[{s:i, s:{s:s, s:s%}, s:s}], s:{s:I, s:I, s:I}}", "id", k->id, "object",
        "chat.completion", "created", (json_int_t)k->created, "model", s->o->model_name, "choices", "index", 0,
        "message", "role", "assistant", "content", r->text.data ? r->text.data : "", r->text.len, "finish_reason",
        finish_reason(r->reason), "usage", "prompt_tokens", (json_int_t)r->stats.prompt_tokens,
        "completion_tokens", (json_int_t)r->stats.completion_tokens, "total_tokens",
        (json_int_t)(r->stats.prompt_tokens + r->stats.completion_tokens));
    completion_free(k);
    return send_json(c, MHD_HTTP_OK, answer);
}

/* ---- routing ---- */

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)version;
    struct server *s = cls;
    struct request *rq = *state;
    if (!rq) {
        rq = xcalloc(1, sizeof *rq);
        buf_init(&rq->body);
        *state = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        /* the body is bounded: the rest of a larger one is read and dropped */
        if (!rq->too_big && rq->body.len + *upload_size > s->o->max_body) {
            rq->too_big = true;
            buf_free(&rq->body);
        }
        if (!rq->too_big) buf_add(&rq->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!strcmp(url, "/v1/models")) {
        if (!get) return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", "use GET");
        return send_json(c, MHD_HTTP_OK, json_pack("{s:s, s:[o]}", "object", "list", "data", model_object(s)));
    }
    if (!strcmp(url, "/v1/models/") || !strncmp(url, "/v1/models/", 11)) {
        if (strcmp(url + 11, s->o->model_name))
            return send_error(c, MHD_HTTP_NOT_FOUND, "invalid_request_error", "no such model");
        return send_json(c, MHD_HTTP_OK, model_object(s));
    }
    if (!strcmp(url, "/v1/chat/completions")) {
        if (!post) return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", "use POST");
        if (rq->too_big) {
            char msg[128];
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->o->max_body);
            return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_request_error", msg);
        }
        return complete(s, c, &rq->body);
    }
    return send_error(c, MHD_HTTP_NOT_FOUND, "invalid_request_error",
                      "not found (served: GET /v1/models, POST /v1/chat/completions)");
}

static void request_done(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode why)
{
    (void)cls, (void)c, (void)why;
    struct request *rq = *state;
    if (!rq) return;
    buf_free(&rq->body);
    free(rq);
    *state = NULL;
}

int serve_run(struct engine *e, struct tokenizer *t, const struct serve_options *o, void (*ready)(int port))
{
    struct server s = {.e = e, .t = t, .o = o};
    pthread_mutex_init(&s.lock, NULL);
    atomic_init(&s.next_id, 1);
    atomic_init(&s.stopping, false);
    const char *host = o->host ? o->host : "127.0.0.1";
    struct sockaddr_storage addr = {0};
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)o->port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)o->port);
        flags |= MHD_USE_IPv6;
    } else {
        return fail("--host: '%s' is not an IPv4 or IPv6 address", host);
    }
    /* the signals that stop the server wait for sigwait below: blocked
     * here, before the server's threads start, so that none of them takes
     * one */
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!d) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_mutex_destroy(&s.lock);
        return fail("cannot listen on %s port %d (in use, or not an address of this machine)", host, o->port);
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (ready) ready(info ? (int)info->port : o->port);
    int sig = 0;
    sigwait(&stop, &sig);
    atomic_store(&s.stopping, true);
    MHD_stop_daemon(d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_destroy(&s.lock);
    return sig;
}
