/* outbound.h -- outbound e-mail (SMTP) and webhooks (HTTP POST) without ever
 * blocking the event loop: libcurl's multi interface driven by libevent
 * (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), many transfers at once,
 * each with its own timeout, so a slow or dead server only delays its own
 * messages. Runs in the thread of the event base.
 *
 * Each request ends with exactly one callback, which says whether it was
 * delivered and, if not, whether a retry may succeed (connection refused,
 * timeout, HTTP 5xx/429, SMTP 4xx) or not (HTTP 4xx, SMTP 5xx, bad address).
 * Retrying, backoff and idempotency are the caller's business. */
#ifndef MAILLAGE_OUTBOUND_H
#define MAILLAGE_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

typedef struct mg_outbound mg_outbound_t;

typedef struct {
    bool delivered;   /* the server accepted it (HTTP 2xx, SMTP 250 after DATA) */
    bool retryable;   /* not delivered, and a later attempt may succeed */
    long status;      /* HTTP status or last SMTP reply code, 0 if none */
    char error[256];  /* why it was not delivered, "" if delivered (English, for logs) */
} mg_outbound_result_t;

/* Called once per request; `result` is borrowed until it returns. */
typedef void (*mg_outbound_done_fn)(const mg_outbound_result_t *result, void *arg);

/* Create the engine in `base`. Returns NULL if libcurl cannot be initialised.
 * Caller owns the result. */
mg_outbound_t *mg_outbound_new(struct event_base *base);

/* Abort the transfers in flight (their callbacks run with delivered = false,
 * retryable = true) and free; accepts NULL and sets *out_p to NULL. */
void mg_outbound_destroy(mg_outbound_t **out_p);

/* POST `json` (Content-Type: application/json) to `url` (http or https), for
 * Mattermost/Slack-compatible incoming webhooks. Everything is copied.
 * Returns 0 if started (cb will run exactly once), -1 otherwise. */
int mg_outbound_webhook(mg_outbound_t *out, const char *url, const char *json, long timeout_ms,
                        mg_outbound_done_fn cb, void *arg);

/* One e-mail: a multipart/alternative message (text and HTML parts, UTF-8,
 * quoted-printable), with Date, Message-ID, From, To, Subject (RFC 2047 when
 * not ASCII) and any extra headers. */
typedef struct {
    const char *smtp_url;  /* smtp://host:port or smtps://host:port */
    bool starttls;         /* require STARTTLS on smtp:// */
    const char *username;  /* NULL or "" for no authentication */
    const char *password;
    const char *from;      /* "Maillage CRESS Normandie <maillage@example.org>" */
    const char *to;        /* one address */
    const char *subject;   /* UTF-8 */
    const char *text;      /* the text/plain part, UTF-8 */
    const char *html;      /* the text/html part, UTF-8; NULL for text only */
    const char *message_id; /* stable id, e.g. derived from the idempotency key, without <> */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated; may be NULL */
    long timeout_ms;
} mg_mail_t;

/* Send `mail` (copied). Returns 0 if started (cb will run exactly once), -1 on
 * invalid input (no recipient, header injection attempt: CR or LF in a header
 * value). */
int mg_outbound_mail(mg_outbound_t *out, const mg_mail_t *mail, mg_outbound_done_fn cb, void *arg);

/* Compose the RFC 5322 message of `mail` (what mg_outbound_mail sends) into a
 * new string, for tests and previews. Caller owns the result (free()). */
char *mg_outbound_compose(const mg_mail_t *mail);

/* Number of transfers in flight. */
size_t mg_outbound_pending(const mg_outbound_t *out);

#endif
