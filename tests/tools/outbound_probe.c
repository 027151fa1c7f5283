/* outbound_probe.c -- drives mg_outbound from the command line, inside a
 * libevent loop, for the integration tests.
 *
 *   outbound_probe mail --smtp URL --from F --to T --subject S --text FILE
 *                  [--html FILE] [--message-id ID] [--header "N: v"]...
 *                  [--starttls] [--user U --password P] [--timeout-ms N]
 *                  [--count N] [--url U --json FILE]...
 *   outbound_probe webhook --url U --json FILE [--timeout-ms N]
 *   outbound_probe many --url U [--url U2 ...] --json FILE [--count N]
 *                  [--timeout-ms N]
 *   outbound_probe compose --from F --to T --subject S --text FILE ...
 *
 * `many` starts --count webhooks to each --url at once, all in one loop, to
 * show that a stalled receiver does not delay the others; `mail` sends
 * --count mails (1 by default) and, at the same time, a webhook to each
 * --url (url -1 in the results is a mail). --abort-after-ms destroys the
 * engine while transfers are in flight.
 *
 * One JSON line per result on stdout, as soon as it is known:
 *   {"index":0,"url":0,"delivered":true,"retryable":false,"status":200,
 *    "error":"","elapsed_ms":3}
 * A request that cannot start prints {"index":i,"started":false}. Exit 0 when
 * every request ended (whatever its result), 2 on bad usage. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>

#include "maillage/clock.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/outbound.h"

#define MAX_URLS    8
#define MAX_HEADERS 16

typedef struct {
    struct event_base *base;
    mg_outbound_t *out;
    int64_t start_us;
    int outstanding;
} s_probe_t;

typedef struct {
    s_probe_t *probe;
    int index, url;
} s_request_t;

static char *s_read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "Error: cannot read %s\n", path);
        exit(2);
    }
    size_t cap = 4096, len = 0;
    char *data = mg_malloc(cap);
    size_t n;
    while ((n = fread(data + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) data = mg_realloc(data, cap *= 2);
    }
    fclose(f);
    data[len] = '\0';
    return data;
}

static void s_print(json_t *line) {
    char *s = json_dumps(line, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(line);
}

static void s_on_done(const mg_outbound_result_t *r, void *arg) {
    s_request_t *req = arg;
    s_probe_t *p = req->probe;
    json_t *line = json_object();
    json_object_set_new(line, "index", json_integer(req->index));
    json_object_set_new(line, "url", json_integer(req->url));
    json_object_set_new(line, "delivered", json_boolean(r->delivered));
    json_object_set_new(line, "retryable", json_boolean(r->retryable));
    json_object_set_new(line, "status", json_integer(r->status));
    if (r->retry_after_ms) json_object_set_new(line, "retry_after_ms", json_integer(r->retry_after_ms));
    json_object_set_new(line, "error", json_string(r->error));
    json_object_set_new(line, "elapsed_ms", json_integer((mg_clock_monotonic_us() - p->start_us) / 1000));
    s_print(line);
    free(req);
    if (--p->outstanding == 0) event_base_loopbreak(p->base);
}

static void s_on_abort(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    s_probe_t *p = arg;
    mg_outbound_destroy(&p->out);
}

static void s_usage(void) {
    fprintf(stderr, "usage: outbound_probe mail|webhook|many|compose [options] (see the source)\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) s_usage();
    const char *mode = argv[1];
    mg_log_init("outbound_probe", MG_LOG_WARN);
    if (getenv("OUTBOUND_PROBE_DEBUG")) mg_log_init("outbound_probe", MG_LOG_DEBUG);

    mg_mail_t mail = {0};
    const char *urls[MAX_URLS], *headers[MAX_HEADERS + 1], *json_path = NULL;
    const char *text_path = NULL, *html_path = NULL;
    int nurls = 0, nheaders = 0;
    long count = 1, abort_after_ms = -1;
    enum {
        O_SMTP = 256,
        O_FROM,
        O_TO,
        O_SUBJECT,
        O_TEXT,
        O_HTML,
        O_MID,
        O_HEADER,
        O_STARTTLS,
        O_USER,
        O_PASSWORD,
        O_TIMEOUT,
        O_URL,
        O_JSON,
        O_COUNT,
        O_ABORT
    };
    static const struct option opts[] = {
        {"smtp", required_argument, NULL, O_SMTP},
        {"from", required_argument, NULL, O_FROM},
        {"to", required_argument, NULL, O_TO},
        {"subject", required_argument, NULL, O_SUBJECT},
        {"text", required_argument, NULL, O_TEXT},
        {"html", required_argument, NULL, O_HTML},
        {"message-id", required_argument, NULL, O_MID},
        {"header", required_argument, NULL, O_HEADER},
        {"starttls", no_argument, NULL, O_STARTTLS},
        {"user", required_argument, NULL, O_USER},
        {"password", required_argument, NULL, O_PASSWORD},
        {"timeout-ms", required_argument, NULL, O_TIMEOUT},
        {"url", required_argument, NULL, O_URL},
        {"json", required_argument, NULL, O_JSON},
        {"count", required_argument, NULL, O_COUNT},
        {"abort-after-ms", required_argument, NULL, O_ABORT},
        {NULL, 0, NULL, 0},
    };
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_SMTP:
            mail.smtp_url = optarg;
            break;
        case O_FROM:
            mail.from = optarg;
            break;
        case O_TO:
            mail.to = optarg;
            break;
        case O_SUBJECT:
            mail.subject = optarg;
            break;
        case O_TEXT:
            text_path = optarg;
            break;
        case O_HTML:
            html_path = optarg;
            break;
        case O_MID:
            mail.message_id = optarg;
            break;
        case O_HEADER:
            if (nheaders == MAX_HEADERS) s_usage();
            headers[nheaders++] = optarg;
            break;
        case O_STARTTLS:
            mail.starttls = true;
            break;
        case O_USER:
            mail.username = optarg;
            break;
        case O_PASSWORD:
            mail.password = optarg;
            break;
        case O_TIMEOUT:
            mail.timeout_ms = atol(optarg);
            break;
        case O_URL:
            if (nurls == MAX_URLS) s_usage();
            urls[nurls++] = optarg;
            break;
        case O_JSON:
            json_path = optarg;
            break;
        case O_COUNT:
            count = atol(optarg);
            break;
        case O_ABORT:
            abort_after_ms = atol(optarg);
            break;
        default:
            s_usage();
        }
    }
    headers[nheaders] = NULL;
    if (nheaders > 0) mail.headers = headers;
    char *text = text_path ? s_read_file(text_path) : NULL;
    char *html = html_path ? s_read_file(html_path) : NULL;
    char *json = json_path ? s_read_file(json_path) : NULL;
    mail.text = text;
    mail.html = html;

    if (strcmp(mode, "compose") == 0) {
        char *msg = mg_outbound_compose(&mail);
        if (!msg) {
            fprintf(stderr, "Error: invalid mail\n");
            return 1;
        }
        fputs(msg, stdout);
        free(msg);
        free(text);
        free(html);
        free(json);
        return 0;
    }

    s_probe_t probe = {0};
    probe.base = event_base_new();
    probe.out = mg_outbound_new(probe.base);
    if (!probe.out) return 1;
    probe.start_us = mg_clock_monotonic_us();
    int index = 0;
    if (strcmp(mode, "mail") == 0) {
        /* --count mails, then a webhook to each --url at the same time. */
        for (long i = 0; i < count + nurls; i++) {
            s_request_t *req = mg_calloc(1, sizeof *req);
            int url = i < count ? -1 : (int)(i - count);
            *req = (s_request_t){.probe = &probe, .index = index++, .url = url};
            int started = url < 0 ? mg_outbound_mail(probe.out, &mail, s_on_done, req)
                                  : (json ? mg_outbound_webhook(probe.out, urls[url], json, NULL,
                                                                mail.timeout_ms, s_on_done, req)
                                          : -1);
            if (started == 0) {
                probe.outstanding++;
            } else {
                printf("{\"index\":%d,\"url\":%d,\"started\":false}\n", req->index, url);
                free(req);
            }
        }
    } else if (strcmp(mode, "webhook") == 0 || strcmp(mode, "many") == 0) {
        if (nurls == 0 || !json) s_usage();
        if (strcmp(mode, "webhook") == 0) count = 1, nurls = 1;
        /* Interleave the receivers so that each one's requests start at the
         * same moment as the others'. */
        for (long i = 0; i < count; i++) {
            for (int u = 0; u < nurls; u++) {
                s_request_t *req = mg_calloc(1, sizeof *req);
                *req = (s_request_t){.probe = &probe, .index = index, .url = u};
                index++;
                if (mg_outbound_webhook(probe.out, urls[u], json, NULL, mail.timeout_ms, s_on_done, req) == 0) {
                    probe.outstanding++;
                } else {
                    printf("{\"index\":%d,\"url\":%d,\"started\":false}\n", req->index, u);
                    free(req);
                }
            }
        }
    } else {
        s_usage();
    }
    fflush(stdout);
    struct event *abort_timer = NULL;
    if (abort_after_ms >= 0) {
        abort_timer = evtimer_new(probe.base, s_on_abort, &probe);
        struct timeval tv = {abort_after_ms / 1000, (abort_after_ms % 1000) * 1000};
        evtimer_add(abort_timer, &tv);
    }
    if (probe.outstanding > 0) event_base_dispatch(probe.base);
    if (abort_timer) event_free(abort_timer);
    mg_outbound_destroy(&probe.out);
    event_base_free(probe.base);
    free(text);
    free(html);
    free(json);
    return 0;
}
