#include "common/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/err.h"
#include "common/version.h"

#define ERROR_BODY_MAX 4096
#define MAX_BACKOFF 60.0
#define MAX_RETRY_AFTER 300.0

void http_config_init(struct http_config *c)
{
    memset(c, 0, sizeof *c);
    c->parallel = 8;
    c->retries = 5;
    c->retry_delay = 1.0;
    c->connect_timeout = 30;
    c->stall_timeout = 60;
}

const char *http_status_text(long status)
{
    static const struct {
        long code;
        const char *text;
    } table[] = {
        {200, "200 OK"}, {206, "206 Partial Content"}, {301, "301 Moved Permanently"},
        {302, "302 Found"}, {307, "307 Temporary Redirect"}, {308, "308 Permanent Redirect"},
        {400, "400 Bad Request"}, {401, "401 Unauthorized"}, {403, "403 Forbidden"},
        {404, "404 Not Found"}, {410, "410 Gone"}, {416, "416 Range Not Satisfiable"},
        {429, "429 Too Many Requests"}, {500, "500 Internal Server Error"},
        {502, "502 Bad Gateway"}, {503, "503 Service Unavailable"}, {504, "504 Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].code == status) return table[i].text;
    static _Thread_local char other[32];
    snprintf(other, sizeof other, "HTTP status %ld", status);
    return other;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) die("cannot initialise libcurl");
}

/* ---- one transfer ---- */

enum transfer_state { T_WAITING, T_RUNNING, T_DONE };

struct transfer {
    const struct http_config *cfg;
    const char *url;
    const char *name;
    struct http_download *d;    /* a file, or */
    struct http_response *resp; /* a document in memory */
    size_t max_body;
    struct progress *progress;

    CURL *easy;
    int fd;
    struct digest_writer *dw;
    uint64_t start_offset;      /* where the current attempt began */
    uint64_t progress_mark;     /* bytes already counted by the meter */

    /* the current response (reset at each status line: redirects) */
    long status;
    char reason[64];
    int64_t content_length;
    char content_range[96];
    char error_code[64];
    char error_message[256];
    double retry_after;
    struct buf error_body;

    char *abort_reason;         /* set by a callback that stopped the transfer */
    char curl_error[CURL_ERROR_SIZE];

    enum transfer_state state;
    int failures;               /* in a row, without progress */
    int attempts;
    double not_before;
};

static bool is_success(long status)
{
    return status >= 200 && status < 300;
}

static void set_abort(struct transfer *t, const char *fmt, ...) MLC_PRINTF(2, 3);
static void set_abort(struct transfer *t, const char *fmt, ...)
{
    if (t->abort_reason) return;
    va_list ap;
    va_start(ap, fmt);
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    t->abort_reason = xstrdup(text);
}

static uint64_t received(const struct transfer *t)
{
    if (t->d) return digest_writer_offset(t->dw);
    return t->resp->body.len;
}

/* Header values are untrusted: keep printable ASCII only. */
static void copy_header_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (v[0] == ' ' || v[0] == '\t')) v++, n--;
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ')) n--;
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < cap; i++)
        dst[j++] = (unsigned char)v[i] >= 0x20 && (unsigned char)v[i] < 0x7f ? v[i] : '?';
    dst[j] = 0;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value, size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n)) return false;
    *value = line + n + 1;
    *vlen = len - n - 1;
    return true;
}

static void new_response(struct transfer *t, const char *line, size_t len)
{
    t->status = 0;
    t->reason[0] = 0;
    t->content_length = -1;
    t->content_range[0] = 0;
    t->error_code[0] = 0;
    t->error_message[0] = 0;
    t->retry_after = 0;
    buf_reset(&t->error_body);
    char text[128];
    copy_header_value(text, sizeof text, line, len);
    int at = 0;
    if (sscanf(text, "HTTP/%*s %ld %n", &t->status, &at) >= 1 && at > 0)
        snprintf(t->reason, sizeof t->reason, "%s", text + at);
}

/* "bytes START-END/TOTAL" */
static int parse_content_range(const char *s, uint64_t *start, int64_t *total)
{
    unsigned long long a, b;
    char tail[32];
    if (sscanf(s, "bytes %llu-%llu/%31s", &a, &b, tail) != 3 || b < a) return -1;
    *start = a;
    *total = strcmp(tail, "*") ? strtoll(tail, NULL, 10) : -1;
    return 0;
}

/* The headers of a final 2xx answer are complete: decide what to do with
 * the body before the first byte of it arrives. */
static bool headers_done(struct transfer *t)
{
    if (!is_success(t->status)) return true;
    if (!t->d) {
        if (t->content_length > (int64_t)t->max_body)
            set_abort(t, "answer of %lld bytes is larger than the %zu allowed",
                      (long long)t->content_length, t->max_body);
        return !t->abort_reason;
    }
    uint64_t at = digest_writer_offset(t->dw);
    int64_t want = t->d->size;
    if (t->status == 206) {
        uint64_t start;
        int64_t total;
        if (parse_content_range(t->content_range, &start, &total) != 0)
            set_abort(t, "partial answer without a valid Content-Range");
        else if (start != at)
            set_abort(t, "asked to resume at byte %llu, the server sent from byte %llu",
                      (unsigned long long)at, (unsigned long long)start);
        else if (want >= 0 && total >= 0 && total != want)
            set_abort(t, "size mismatch: expected %lld bytes, the server has %lld", (long long)want,
                      (long long)total);
    } else {
        /* A whole file: the server ignored the range (or none was asked);
         * what was kept is thrown away and digesting starts over. */
        if (at > 0 && digest_writer_restart(t->dw) != 0)
            set_abort(t, "%s", last_error());
        /* Too large is refused before a byte is written; too small is let
         * in, so that the caller can see what came instead (an LFS pointer,
         * an error page) once it is judged complete. */
        if (want >= 0 && t->content_length > want)
            set_abort(t, "size mismatch: expected %lld bytes, the server sends %lld",
                      (long long)want, (long long)t->content_length);
    }
    return !t->abort_reason;
}

static size_t on_header(char *line, size_t size, size_t count, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * count;
    const char *v;
    size_t vlen;
    if (len >= 5 && !strncmp(line, "HTTP/", 5)) {
        new_response(t, line, len);
    } else if (len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
        if (!headers_done(t)) return 0;
    } else if (header_is(line, len, "content-length", &v, &vlen)) {
        char num[32];
        copy_header_value(num, sizeof num, v, vlen);
        t->content_length = strtoll(num, NULL, 10);
    } else if (header_is(line, len, "content-range", &v, &vlen)) {
        copy_header_value(t->content_range, sizeof t->content_range, v, vlen);
    } else if (header_is(line, len, "x-error-code", &v, &vlen)) {
        copy_header_value(t->error_code, sizeof t->error_code, v, vlen);
    } else if (header_is(line, len, "x-error-message", &v, &vlen)) {
        copy_header_value(t->error_message, sizeof t->error_message, v, vlen);
    } else if (header_is(line, len, "retry-after", &v, &vlen)) {
        char num[32];
        copy_header_value(num, sizeof num, v, vlen);
        t->retry_after = strtod(num, NULL); /* seconds; an HTTP date reads as 0 */
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t count, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * count;
    if (!is_success(t->status)) {
        size_t room = ERROR_BODY_MAX - t->error_body.len;
        buf_add(&t->error_body, data, len < room ? len : room);
        return len;
    }
    if (!t->d) {
        if (t->resp->body.len + len > t->max_body) {
            set_abort(t, "answer larger than the %zu bytes allowed", t->max_body);
            return 0;
        }
        buf_add(&t->resp->body, data, len);
        return len;
    }
    uint64_t at = digest_writer_offset(t->dw), end;
    if (!u64_add(at, len, &end) || (t->d->size >= 0 && end > (uint64_t)t->d->size)) {
        set_abort(t, "the server sent more than the expected %lld bytes", (long long)t->d->size);
        return 0;
    }
    if (digest_writer_add(t->dw, data, len) != 0) {
        set_abort(t, "%s", last_error());
        return 0;
    }
    if (t->progress && end > t->progress_mark) {
        progress_add(t->progress, end - t->progress_mark);
        t->progress_mark = end;
    }
    return len;
}

static CURL *make_easy(struct transfer *t)
{
    const struct http_config *c = t->cfg;
    CURL *e = curl_easy_init();
    if (!e) die("libcurl: cannot create a transfer");
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "mlc-fetch/" MLC_VERSION " (mlc-pipe)");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_bundle) curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_bundle);
    if (c->token) {
        /* As credentials, not as a custom header: libcurl then keeps them
         * from any other host or port a redirect leads to. */
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        curl_easy_setopt(e, CURLOPT_XOAUTH2_BEARER, c->token);
        curl_easy_setopt(e, CURLOPT_UNRESTRICTED_AUTH, 0L);
    }
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, c->connect_timeout);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, c->stall_timeout);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    if (!t->d) curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* documents: any compression */
    return e;
}

static int start(struct transfer *t, CURLM *multi)
{
    if (t->d && t->fd < 0) {
        t->fd = open(t->d->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (t->fd < 0) return fail("%s: cannot create %s: %s", t->name, t->d->path, strerror(errno));
        t->dw = digest_writer_new(t->fd, t->d->digests, t->d->size >= 0 ? (uint64_t)t->d->size : 0);
    }
    if (!t->d) buf_reset(&t->resp->body);
    t->start_offset = t->d ? digest_writer_offset(t->dw) : 0;
    t->curl_error[0] = 0;
    t->status = 0;
    t->easy = make_easy(t);
    if (t->d && t->start_offset > 0) {
        char range[32];
        snprintf(range, sizeof range, "%llu-", (unsigned long long)t->start_offset);
        curl_easy_setopt(t->easy, CURLOPT_RANGE, range);
    }
    t->attempts++;
    t->state = T_RUNNING;
    if (curl_multi_add_handle(multi, t->easy) != CURLM_OK) return fail("libcurl: cannot start a transfer");
    return 0;
}

static void stop(struct transfer *t, CURLM *multi)
{
    if (!t->easy) return;
    curl_multi_remove_handle(multi, t->easy);
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
}

static bool retryable_curl(CURLcode rc)
{
    /* a name that does not resolve will not resolve in a few seconds
     * either (no network, a mistyped endpoint): it fails at once */
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

/* What the server said, in one line: its X-Error-Message, the "error" of a
 * JSON body, or the first line of a text body. */
static void describe_answer(const struct transfer *t, char *out, size_t cap)
{
    out[0] = 0;
    if (t->error_message[0]) {
        snprintf(out, cap, "%s", t->error_message);
        return;
    }
    json_t *j = json_loadb(t->error_body.data, t->error_body.len, 0, NULL);
    const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
    if (e) copy_header_value(out, cap, e, strlen(e));
    json_decref(j);
    if (!out[0] && t->error_body.len) {
        size_t n = strcspn(t->error_body.data, "\r\n");
        copy_header_value(out, cap < 160 ? cap : 160, t->error_body.data, n);
    }
}

static void status_reason(const struct transfer *t, char *out, size_t cap)
{
    char said[256];
    describe_answer(t, said, sizeof said);
    snprintf(out, cap, "%s%s%s%s%s", http_status_text(t->status), t->error_code[0] ? " (" : "",
             t->error_code, t->error_code[0] ? ")" : "", said[0] ? ": " : "");
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s", said);
}

static void free_transfer_io(struct transfer *t)
{
    if (t->dw) digest_writer_free(t->dw);
    t->dw = NULL;
    if (t->fd >= 0) close(t->fd);
    t->fd = -1;
}

/* Bytes are complete: finish the digests and close. */
static int complete(struct transfer *t)
{
    if (!t->d) return 0;
    int64_t want = t->d->size;
    uint64_t got = digest_writer_offset(t->dw);
    t->d->received = got;
    if (want >= 0 && got != (uint64_t)want)
        return fail("%s: size mismatch: expected %lld bytes, received %llu", t->name,
                    (long long)want, (unsigned long long)got);
    int rc = digest_writer_finish(t->dw, &t->d->got);
    t->dw = NULL;
    if (rc != 0) fail_prefix("%s", t->name);
    if (close(t->fd) != 0 && rc == 0) rc = fail("%s: close: %s", t->name, strerror(errno));
    t->fd = -1;
    return rc;
}

/* The transfer ended; returns -1 to stop the batch (message set). */
static int finished(struct transfer *t, CURLcode result, const struct http_config *c)
{
    char reason[512];
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status) t->status = status;
    if (t->d) t->d->status = t->status;
    if (t->d) t->d->attempts = t->attempts;

    if (t->abort_reason) {
        fail("%s: %s", t->name, t->abort_reason);
        return -1;
    }
    if (result == CURLE_OK && is_success(t->status)) {
        if (t->d && t->d->size >= 0 && received(t) < (uint64_t)t->d->size && t->status == 200 &&
            t->content_length >= 0) {
            /* a whole answer, as long as the server said: the wrong file */
            fail("%s: size mismatch: expected %lld bytes, the server sent %lld", t->name,
                 (long long)t->d->size, (long long)t->content_length);
            return -1;
        }
        /* A connection closed early without Content-Length ends "OK" too. */
        if (t->d && t->d->size >= 0 && received(t) < (uint64_t)t->d->size) {
            snprintf(reason, sizeof reason, "connection closed after %llu of %lld bytes",
                     (unsigned long long)received(t), (long long)t->d->size);
        } else {
            t->state = T_DONE;
            if (t->resp) t->resp->status = t->status;
            return complete(t);
        }
    } else if (result == CURLE_OK) {
        status_reason(t, reason, sizeof reason);
        if (t->status == 429 || t->status >= 500) {
            /* retried below */
        } else if (t->resp) {
            t->resp->status = t->status;
            snprintf(t->resp->error_code, sizeof t->resp->error_code, "%s", t->error_code);
            describe_answer(t, t->resp->error_message, sizeof t->resp->error_message);
            t->state = T_DONE;
            return 0;
        } else {
            fail("%s: %s from %s", t->name, reason, t->url);
            return -1;
        }
    } else if (t->d && t->d->size >= 0 && received(t) == (uint64_t)t->d->size) {
        /* every byte arrived before the connection failed */
        t->state = T_DONE;
        return complete(t);
    } else {
        snprintf(reason, sizeof reason, "%s", t->curl_error[0] ? t->curl_error : curl_easy_strerror(result));
        if (result == CURLE_PEER_FAILED_VERIFICATION || result == CURLE_SSL_CACERT_BADFILE) {
            fail("%s: TLS verification failed%s%s: %s", t->name, t->d ? " for " : "",
                 t->d ? t->url : "", reason);
            return -1;
        }
        if (result == CURLE_COULDNT_RESOLVE_HOST) {
            fail("%s: %s (no network, or a wrong endpoint? HF_HUB_OFFLINE=1 uses the cache alone)", t->name,
                 reason);
            return -1;
        }
        if (!retryable_curl(result)) {
            fail("%s: %s%s%s", t->name, t->d ? t->url : "", t->d ? ": " : "", reason);
            return -1;
        }
    }

    if (received(t) > t->start_offset && t->d) t->failures = 0;
    t->failures++;
    if (t->failures > c->retries) {
        fail("%s: giving up after %d attempts: %s%s%s%s", t->name, t->attempts, reason,
             t->d ? " (" : "", t->d ? t->url : "", t->d ? ")" : "");
        return -1;
    }
    double delay = c->retry_delay;
    for (int i = 1; i < t->failures && delay < MAX_BACKOFF; i++) delay *= 2;
    if (delay > MAX_BACKOFF) delay = MAX_BACKOFF;
    if (t->retry_after > delay) delay = t->retry_after < MAX_RETRY_AFTER ? t->retry_after : MAX_RETRY_AFTER;
    if (t->d && received(t) > 0)
        note("%s: %s; resuming at byte %llu in %.1f s", t->name, reason,
             (unsigned long long)received(t), delay);
    else
        note("%s: %s; retrying in %.1f s", t->name, reason, delay);
    t->not_before = now_seconds() + delay;
    t->state = T_WAITING;
    return 0;
}

/* Run transfers to completion; -1 at the first permanent failure. */
static int run(const struct http_config *c, struct transfer *t, size_t n)
{
    pthread_once(&curl_once, curl_init_once);
    CURLM *multi = curl_multi_init();
    if (!multi) die("libcurl: cannot create a transfer set");
    int parallel = c->parallel > 0 ? c->parallel : 1;
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)parallel);
    int rc = 0;
    size_t done = 0;
    struct transfer *failed = NULL;
    while (done < n && !failed) {
        double now = now_seconds();
        int running = 0;
        for (size_t i = 0; i < n; i++) running += t[i].state == T_RUNNING;
        for (size_t i = 0; i < n && running < parallel; i++) {
            if (t[i].state != T_WAITING || t[i].not_before > now) continue;
            if (start(&t[i], multi) != 0) {
                failed = &t[i];
                break;
            }
            running++;
        }
        if (failed) break;
        int still;
        curl_multi_perform(multi, &still);
        CURLMsg *msg;
        int left;
        while (!failed && (msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE) continue;
            struct transfer *x;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            CURLcode result = msg->data.result;
            if (finished(x, result, c) != 0) failed = x;
            stop(x, multi);
            if (x->state == T_DONE) done++;
        }
        if (failed || done == n) break;
        /* Sleep until a socket is ready, or a waiting transfer may start. */
        double wait = 1.0;
        running = 0;
        for (size_t i = 0; i < n; i++) running += t[i].state == T_RUNNING;
        for (size_t i = 0; i < n && running < parallel; i++)
            if (t[i].state == T_WAITING && t[i].not_before - now < wait) wait = t[i].not_before - now;
        if (wait < 0) wait = 0;
        curl_multi_poll(multi, NULL, 0, (int)(wait * 1000) + 1, NULL);
    }
    if (failed) {
        rc = -1;
        if (failed->d) failed->d->failed = true;
    }
    for (size_t i = 0; i < n; i++) stop(&t[i], multi);
    curl_multi_cleanup(multi);
    return rc;
}

static void transfer_init(struct transfer *t, const struct http_config *c, const char *url,
                          const char *name)
{
    memset(t, 0, sizeof *t);
    t->cfg = c;
    t->url = url;
    t->name = name;
    t->fd = -1;
    t->content_length = -1;
    buf_init(&t->error_body);
}

static void transfer_free(struct transfer *t)
{
    free_transfer_io(t);
    buf_free(&t->error_body);
    free(t->abort_reason);
}

int http_download_all(const struct http_config *c, struct http_download *d, size_t n,
                      struct progress *progress)
{
    struct transfer *t = xcalloc(n ? n : 1, sizeof *t);
    for (size_t i = 0; i < n; i++) {
        transfer_init(&t[i], c, d[i].url, d[i].name);
        t[i].d = &d[i];
        t[i].progress = progress;
        memset(&d[i].got, 0, sizeof d[i].got);
        d[i].received = 0;
        d[i].status = 0;
        d[i].attempts = 0;
        d[i].failed = false;
    }
    int rc = run(c, t, n);
    for (size_t i = 0; i < n; i++) {
        if (t[i].dw) d[i].received = digest_writer_offset(t[i].dw);
        transfer_free(&t[i]);
    }
    free(t);
    return rc;
}

int http_get(const struct http_config *c, const char *url, size_t max_body, struct http_response *out)
{
    memset(out, 0, sizeof *out);
    buf_init(&out->body);
    struct transfer t;
    transfer_init(&t, c, url, url);
    t.resp = out;
    t.max_body = max_body;
    int rc = run(c, &t, 1);
    transfer_free(&t);
    return rc;
}

void http_response_free(struct http_response *r)
{
    buf_free(&r->body);
}
