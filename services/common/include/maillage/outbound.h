/* outbound.h -- outbound e-mail (SMTP) and webhooks (HTTP POST) without ever
 * blocking the event loop: webhooks through libcurl's multi interface driven
 * by libevent (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), e-mails in
 * a few worker threads of the engine (libcurl's SMTP waits, blocking, for
 * the server's replies to the end of a message and to QUIT); many transfers
 * at once, each with its own timeout, so a slow or dead server only delays
 * its own messages. Called from the thread of the event base, where every
 * callback runs.
 *
 * Each request ends with exactly one callback, which says whether it was
 * delivered and, if not, whether a retry may succeed (connection refused,
 * timeout, HTTP 5xx/429, SMTP 4xx, an SMTP login refused: our credentials)
 * or not (HTTP 4xx, SMTP 5xx, bad address,
 * and a mail whose whole message was sent but not answered within its
 * timeout: the server may have it, and sending it again would give a slow
 * server a copy at every retry). Retrying, backoff and idempotency are the
 * caller's business.
 *
 * Logs name a mail by its Message-ID and a webhook by its host only: never
 * an e-mail address (personal data) nor a webhook path (it holds a token).
 * libcurl's global initialisation runs once per process (pthread_once) on
 * the first mg_outbound_new, so engines may live in several threads, one
 * per event base. */
#ifndef MAILLAGE_OUTBOUND_H
#define MAILLAGE_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

typedef struct mg_outbound mg_outbound_t;

typedef struct {
    bool delivered;  /* the server accepted it (HTTP 2xx, SMTP 250 after DATA) */
    bool retryable;  /* not delivered, and a later attempt may succeed */
    bool not_started; /* not delivered: never started (mg_outbound_drain()), nothing of it was sent */
    long status;     /* HTTP status or last SMTP reply code, 0 if none */
    long retry_after_ms; /* a webhook's Retry-After (HTTP 429, 503), 0 if none */
    char error[256]; /* why it was not delivered, "" if delivered (English, for logs) */
} mg_outbound_result_t;

/* Called once per request; `result` is borrowed until it returns. */
typedef void (*mg_outbound_done_fn)(const mg_outbound_result_t *result, void *arg);

/* Create the engine in `base`. Returns NULL if libcurl cannot be initialised.
 * Caller owns the result. */
mg_outbound_t *mg_outbound_new(struct event_base *base);

/* Abort the transfers in flight (a mail's connection is cut; their
 * callbacks run with delivered = false, retryable = true, unless a mail was
 * already answered; new requests made from them are refused) and free;
 * accepts NULL and sets *out_p to NULL. Must not be called from inside a
 * done callback of the same engine. */
void mg_outbound_destroy(mg_outbound_t **out_p);

/* For a clean stop: start none of the mails waiting for a free mail worker
 * (each ends now, not_started and retryable); those being sent go on, each
 * ending within its timeout. Webhooks all start when requested: none
 * waits. */
void mg_outbound_drain(mg_outbound_t *out);

#define MG_OUTBOUND_KEY_MAX 200

/* 1 if `url` is one a webhook can be posted to: http:// or https://, a
 * host, no blank or control character; else 0. */
int mg_outbound_webhook_url_is_valid(const char *url);

/* 1 if `url` is a Slack incoming webhook (https://hooks.slack.com/...),
 * whose text is Slack's mrkdwn rather than Markdown; else 0. */
int mg_outbound_webhook_is_slack(const char *url);

/* 1 if `mailbox` is one address mg_outbound_mail() accepts as From or To
 * ("claire@cress.example" or "Claire Dupont <claire@cress.example>"; not a
 * list), else 0. */
int mg_outbound_mailbox_is_valid(const char *mailbox);

/* POST `json` (Content-Type: application/json) to `url` (http or https), for
 * Mattermost/Slack-compatible incoming webhooks. Everything is copied.
 * `idempotency_key` (NULL for none; printable ASCII, at most
 * MG_OUTBOUND_KEY_MAX bytes, else the call fails) is sent as an "Idempotency-Key" header, the same on every
 * retry, so a receiver can drop a second delivery after a sender crash.
 * At most 3 redirects are followed, to http(s) only. `timeout_ms` bounds the
 * whole transfer, connection included; <= 0 means 30 s.
 * Returns 0 if started (cb will run exactly once, never before this function
 * returns), -1 otherwise (cb never runs). A done callback may start new
 * requests (a retry). */
int mg_outbound_webhook(mg_outbound_t *out, const char *url, const char *json, const char *idempotency_key,
                        long timeout_ms, mg_outbound_done_fn cb, void *arg);

/* One e-mail: a multipart/alternative message (text and HTML parts, UTF-8,
 * quoted-printable, CRLF line ends, lines of at most 76 characters), with
 * Date (Europe/Paris time), Message-ID, From, To, Subject (RFC 2047 when not
 * ASCII or long), Auto-Submitted: auto-generated (RFC 3834, unless given in
 * `headers`), MIME-Version and any extra headers.
 * `from` and `to` are "addr@domain" or "Display Name <addr@domain>"; the
 * display name may be UTF-8 (then RFC 2047 encoded), the address is ASCII.
 * Extra headers are ASCII "Name: value" lines and may not replace Date,
 * Message-ID, From, To, Cc, Bcc, Subject, MIME-Version or Content-*. */
typedef struct {
    const char *smtp_url; /* smtp://host:port or smtps://host:port */
    bool starttls;        /* require STARTTLS on smtp:// */
    const char *username; /* NULL or "" for no authentication */
    const char *password;
    const char *from;           /* "Maillage CRESS Normandie <maillage@example.org>" */
    const char *to;             /* one address */
    const char *subject;        /* UTF-8 */
    const char *text;           /* the text/plain part, UTF-8 */
    const char *html;           /* the text/html part, UTF-8; NULL for text only */
    const char *message_id;     /* stable id, e.g. derived from the idempotency key, without <>;
                                 * "@<from domain>" is appended if it has no '@';
                                 * NULL: a new ULID */
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated; may be NULL */
    long timeout_ms;            /* whole transfer; <= 0 means 30 s */
} mg_mail_t;

/* Send `mail` (copied) to its one recipient. Returns 0 if started (cb will
 * run exactly once, never before this function returns), -1 on invalid input
 * (no recipient, not smtp:// or smtps://, header injection attempt: CR or LF
 * in a header value); then cb never runs. With `starttls`, the mail is never
 * sent in clear: a server without STARTTLS fails it (not retryable). */
int mg_outbound_mail(mg_outbound_t *out, const mg_mail_t *mail, mg_outbound_done_fn cb, void *arg);

/* Compose the RFC 5322 message of `mail` (what mg_outbound_mail sends) into a
 * new string, for tests and previews; smtp_url, credentials and timeout are
 * ignored. Returns NULL on invalid input (as mg_outbound_mail). Caller owns
 * the result (free()). */
char *mg_outbound_compose(const mg_mail_t *mail);

/* Number of transfers in flight. */
size_t mg_outbound_pending(const mg_outbound_t *out);

#endif
