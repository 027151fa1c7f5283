/* gateway.h -- the pieces of maillage-gateway, shared by its files (an
 * internal header, not part of libmaillage).
 *
 * One evhttp server in the daemon's libevent loop. gateway.c owns the
 * server, the router, the replies, authentication (tokens, session cookie),
 * the Redis connections and the producer that relays events to the broker;
 * each other file adds its routes with gw_route() from a gw_<part>_register()
 * function that gateway.c calls at start:
 *   ingest.c  POST /v1/events, POST /v1/matches/{id}/feedback
 *   session.c POST/DELETE /v1/session, GET /v1/me
 *   health.c  /healthz, /readyz, /metrics
 *   query.c   the read API (structures, needs, offers, matches, cooperation
 *             proposals, inbox, collective needs, figures, map, taxonomy,
 *             communes)
 *   stream.c  GET /v1/stream (Server-Sent Events)
 *   assets.c  the staff page and /v1/openapi.json (generated: assets.h)
 *
 * Every request is answered exactly once, through gw_reply_*(), which also
 * frees the gw_request_t: after it, `r` is gone. A handler may answer at
 * once or later from a Redis or producer callback; a request whose client
 * went away is still answered (evhttp then frees it quietly).
 *
 * Runs in the thread of the daemon's event base. */
#ifndef MAILLAGE_GATEWAY_H
#define MAILLAGE_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "maillage/communes.h"
#include "maillage/config.h"
#include "maillage/envelope.h"
#include "maillage/producer.h"
#include "maillage/redis.h"
#include "maillage/taxonomy.h"

typedef struct mg_gateway mg_gateway_t;

/* Who is asking, from their token. */
typedef enum {
    GW_NOBODY = 0,  /* no token needed (health, assets) */
    GW_NETWORK = 1, /* a network system: may post events */
    GW_STAFF = 2,   /* a staff member: reads, feedback, inbox, stream */
} gw_kind_t;

typedef struct {
    gw_kind_t kind;
    char subject[MG_ID_MAX + 1]; /* the network id or the staff id */
    char token_id[32];           /* "tok-..." (for logs: never the token) */
    char types[512];             /* network tokens: allowed type patterns ("need.*,offer.*") */
} gw_principal_t;

/* One request being handled. Borrowed by the handler until it replies. */
typedef struct {
    mg_gateway_t *gw;
    struct evhttp_request *req;
    enum evhttp_cmd_type method;
    char *path;              /* decoded path without the query ("/v1/needs/n-1") */
    char *params[4];         /* the route's {placeholders}, decoded, checked ids (or "me") */
    size_t param_count;
    struct evkeyvalq query;  /* decoded query parameters (evhttp_find_header) */
    gw_principal_t who;      /* set when the route requires a kind */
    void *state;             /* the handler's: gw_reply_*() frees it when not NULL, */
    void (*state_free)(void *state); /* with this when set, else with free() */
} gw_request_t;

typedef void (*gw_handler_fn)(gw_request_t *r);

/* Or'ed into gw_route()'s `allowed`: the route's POST body may also be
 * application/x-ndjson (POST /v1/events). Without it a POST must be
 * application/json (charset parameter allowed), else 415. */
#define GW_ACCEPT_NDJSON 0x100

/* Add a route. `pattern` is a path with {placeholders} for whole segments
 * ("/v1/needs/{id}/matches"); a placeholder matches an id (mg_id_is_valid)
 * and nothing else. `allowed` is GW_NOBODY (public), GW_NETWORK, GW_STAFF, or
 * GW_NETWORK | GW_STAFF. The same pattern may be added once per method; a
 * known path with another method is answered 405 with Allow. `query` names
 * the query parameters the handler reads, space-separated ("category
 * department cursor limit"; a static string, NULL for none): any other is
 * answered 400 invalid_parameter before the token is checked. Public routes'
 * query strings are not read at all. Call only from a gw_<part>_register()
 * function. */
void gw_route(mg_gateway_t *gw, enum evhttp_cmd_type method, const char *pattern, int allowed,
              const char *query, gw_handler_fn handler);

/* ---- answering (each frees `r`) ------------------------------------------- */

/* Send `body` (stolen: decref'd here) as JSON with `status`. */
void gw_reply_json(gw_request_t *r, int status, json_t *body);

/* Send {"error":{"code","message"[,"field"][,"index"]}} with `status`.
 * `field` may be NULL, `index` < 0 for none. */
void gw_reply_error(gw_request_t *r, int status, const char *code, const char *field, long index,
                    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Send `len` bytes of `content_type` as they are (NULL body for 204). */
void gw_reply_bytes(gw_request_t *r, int status, const char *content_type, const void *data, size_t len);

/* The answer to a failed Redis call (NULL reply or an error reply): 503 with
 * Retry-After. Use from a reply callback. */
void gw_reply_unavailable(gw_request_t *r, const char *what);

/* Add a response header before replying (e.g. "Cache-Control"). */
void gw_header(gw_request_t *r, const char *name, const char *value);

/* The request body, NUL-terminated (borrowed until the reply), its length in
 * *len. The router has already refused bodies over [gateway] max_body_bytes
 * with 413. */
const char *gw_body(gw_request_t *r, size_t *len);

/* A query parameter, or NULL. */
const char *gw_query(gw_request_t *r, const char *name);

/* A request header, or NULL. Borrowed until the reply. */
const char *gw_request_header(gw_request_t *r, const char *name);

/* 1 if the request's Content-Type is `mime` ("application/x-ndjson"),
 * parameters (charset) ignored, case-insensitive; else 0. */
int gw_content_type_is(gw_request_t *r, const char *mime);

/* For a handler that answers over time itself (Server-Sent Events): frees
 * `r` without answering; the handler now owns r->req (take it before the
 * call) and must end it (evhttp_send_reply_end). The request no longer
 * counts as in flight for the clean stop (gw_stream_shutdown() ends those). */
void gw_request_release(gw_request_t *r);

/* ---- the shared parts (owned by gateway.c) -------------------------------- */

const mg_config_t *gw_config(const mg_gateway_t *gw);
struct event_base *gw_base(const mg_gateway_t *gw);
mg_redis_t *gw_redis(const mg_gateway_t *gw);          /* commands (never SUBSCRIBE) */
mg_producer_t *gw_producer(const mg_gateway_t *gw);    /* relays to the broker */
const mg_communes_t *gw_communes(const mg_gateway_t *gw);
const mg_taxonomy_t *gw_taxonomy(const mg_gateway_t *gw);

/* Wait for the broker's final answer to an envelope relayed with
 * mg_producer_send_as(gw_producer(gw), network, event_id, ...): `cb` is called
 * once with the answer, or with status STATUS_UNSPECIFIED when
 * [gateway] ack_timeout_ms passes first (the envelope stays with the
 * producer and may still be journaled later: a retry with the same id is
 * safe). Returns 0, -1 if that (network, event_id) is already awaited. */
typedef void (*gw_ack_fn)(const char *network, const char *event_id, Maillage__V1__Ack__Status status,
                          uint64_t sequence, const char *reason, void *arg);
int gw_await_ack(mg_gateway_t *gw, const char *network, const char *event_id, gw_ack_fn cb, void *arg);

/* Relay a serialized envelope to the broker on behalf of `network`, like
 * mg_producer_send_as(gw_producer(gw), network, event_id, data, len), but at
 * the end of this loop turn, together with the others of the turn: one burst
 * of sends wakes the ZeroMQ I/O thread once instead of once per event.
 * Takes ownership of `data` (malloc'd). Await the answer with gw_await_ack(). */
void gw_relay(mg_gateway_t *gw, const char *network, const char *event_id, uint8_t *data, size_t len);

/* Would the broker take `n` more envelopes now? 0 yes; -1 when
 * [gateway] max_pending envelopes already wait for the broker (answer 503). */
int gw_pending_check(const mg_gateway_t *gw, size_t n);

/* 1 if this (network, event_id) is already awaited by a request. */
int gw_ack_awaited(const mg_gateway_t *gw, const char *network, const char *event_id);

/* Take `events` from `network`'s token bucket ([gateway] rate_limit_per_s,
 * rate_burst). Returns 0, or -1 when the bucket is empty, with the seconds
 * to wait in *retry_after_s (nothing taken). */
int gw_rate_take(mg_gateway_t *gw, const char *network, size_t events, int *retry_after_s);

/* 1 if the broker answers: it is connected (producer.h), and something was
 * answered within ack_timeout_ms or nothing waits for it. */
int gw_broker_ok(const mg_gateway_t *gw);

/* 1 once a clean stop has begun (new requests are answered 503). */
int gw_stopping(const mg_gateway_t *gw);

/* Authenticate a token text (the router does it for Bearer and the session
 * cookie; POST /v1/session for the token in its body): `cb` is called once,
 * possibly before this returns, with 200 and the principal (borrowed until
 * it returns), 401 (missing, malformed, unknown or revoked) or 503 (Redis
 * unavailable). `r` stays the caller's; only `r->gw` is read (the stream
 * re-checks its token with a request that has nothing else). */
typedef void (*gw_auth_fn)(gw_request_t *r, int status, const gw_principal_t *who);
void gw_authenticate(gw_request_t *r, const char *token, size_t len, gw_auth_fn cb);

/* Each part may keep state: allocated in its register function, stored
 * here, destroyed by gateway.c (with `destroy`) when the gateway is freed. */
typedef enum { GW_PART_INGEST, GW_PART_SESSION, GW_PART_HEALTH, GW_PART_QUERY, GW_PART_STREAM, GW_PART_COUNT } gw_part_t;
void gw_part_set(mg_gateway_t *gw, gw_part_t part, void *state, void (*destroy)(void *state));
void *gw_part(const mg_gateway_t *gw, gw_part_t part);

/* ---- hooks between parts ---------------------------------------------------- */

/* gateway.c's subscriber connection got "PUBLISH mg:inbox:new <staff_id>"
 * (implemented by stream.c). */
void gw_stream_inbox_changed(mg_gateway_t *gw, const char *staff_id);

/* gateway.c's subscriber connection got "PUBLISH mg:match:changed <match_id>"
 * (a match retired or revised): every live stream is sent the hint
 * `event: match` with {"matchId": ...}. With `match_id` NULL (the channel was
 * subscribed again: hints may have been lost meanwhile), {"all": true}: the
 * pages look again at every match they show (implemented by stream.c). */
void gw_stream_match_changed(mg_gateway_t *gw, const char *match_id);

/* Begin a clean stop of the streams: end every SSE response (stream.c). */
void gw_stream_shutdown(mg_gateway_t *gw);

/* ---- the daemon (main.c) ----------------------------------------------------- */

/* Create the gateway in `base` from `cfg` (borrowed until destroy): checks
 * [gateway] listen (loopback unless allow_plain_http_remote) and the Redis
 * credentials, binds, registers every part's routes. Returns NULL with one
 * line in `err`. Caller owns the result. */
mg_gateway_t *mg_gateway_new(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen);

/* Begin a clean stop: stop accepting, end the streams, answer the requests
 * in flight (503 for those still waiting after a grace), then leave the loop. */
void mg_gateway_shutdown(mg_gateway_t *gw);

/* Free; accepts NULL and sets *gw_p to NULL. */
void mg_gateway_destroy(mg_gateway_t **gw_p);

/* Route registration, called once by gateway.c at start. */
void gw_ingest_register(mg_gateway_t *gw);
void gw_session_register(mg_gateway_t *gw);
void gw_health_register(mg_gateway_t *gw);
void gw_query_register(mg_gateway_t *gw);
void gw_stream_register(mg_gateway_t *gw);
/* The staff page and /v1/openapi.json (assets.c). */
void gw_assets_register(mg_gateway_t *gw);

#endif
