/* gateway.c -- maillage-gateway's server: router, replies, authentication,
 * Redis connections, the producer and its acks, rate limits, clean stop.
 *
 * A request goes: route (404, 405 + Allow) -> body size (413) -> media type
 * of a POST (415) -> token, from "Authorization: Bearer" or the mg_session
 * cookie (401, 403 for the wrong kind) -> the handler, which answers once
 * through gw_reply_*(). Tokens are looked up in Redis (mg:token:<sha256>) and
 * cached for [gateway] token_cache_s, so the hot path makes no Redis call; a
 * second connection SUBSCRIBEd to mg:tokens:revoked drops a revoked token at
 * once (and mg:inbox:new wakes the live streams, mg:match:changed sends them
 * a hint). Events go to the broker
 * through one mg_producer, relayed on behalf of the token's network;
 * gw_await_ack() turns each final ack into a callback, or a timeout after
 * [gateway] ack_timeout_ms. Everything runs in the daemon's one loop. */
#include "gateway.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/adapters/libevent.h>
#include <zmq.h>

#include "maillage/clock.h"
#include "maillage/daemon_config.h"
#include "maillage/http_request.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/metrics.h"
#include "maillage/staff.h"
#include "maillage/token.h"

#define S_BODY_SLACK 65536 /* bytes beyond max_body_bytes that still get the JSON 413 */
#define S_HOUSEKEEPING_MS 1000
#define S_METRICS_EVERY_TICKS 10
#define S_STOP_GRACE_MS 3000
#define S_STOP_TICK_MS 50
#define S_STOP_FLUSH_MS 200
#define S_TOKEN_CACHE_MAX 50000
#define S_PRODUCER_WINDOW 4096
#define S_SUB_BACKOFF_MIN_MS 100
#define S_SUB_BACKOFF_MAX_MS 5000
/* The SUBSCRIBE's count once all three channels are on: MG_TOKENS_REVOKED_CHANNEL
 * and the notifier's two (staff.h). */
#define S_SUB_CHANNELS 3

/* ---- types ------------------------------------------------------------------------- */

typedef struct {
    enum evhttp_cmd_type method;
    int allowed;
    gw_handler_fn handler;
    const char *query; /* the query parameters it reads, space-separated (static) */
    size_t nseg;
    char *seg[MG_HTTP_MAX_SEGMENTS]; /* NULL for a {placeholder} */
    char *pattern;
} s_route_t;

/* A request, with what only gateway.c sees. `pub` first: gw_request_t * and
 * s_req_t * are the same pointer. */
typedef struct s_req {
    gw_request_t pub;
    struct s_req *prev, *next; /* in flight */
    const s_route_t *route;
    const char *body; /* gw_body(), once NUL-terminated */
    size_t body_len;
} s_req_t;

typedef struct s_token {
    struct s_token *next;
    char hash[MG_TOKEN_HASH_LEN + 1];
    gw_principal_t who;
    int64_t expires_us;
} s_token_t;

typedef struct s_await {
    struct s_await *hnext;
    struct s_await *prev, *next; /* by deadline */
    char network[MG_ID_MAX + 1];
    char event_id[MG_ID_MAX + 1];
    gw_ack_fn cb;
    void *arg;
    int64_t deadline_us;
} s_await_t;

/* An envelope waiting for the end of the loop turn (gw_relay()). */
typedef struct s_relay {
    struct s_relay *next;
    char network[MG_ID_MAX + 1];
    char event_id[MG_ID_MAX + 1];
    uint8_t *data;
    size_t len;
} s_relay_t;

typedef struct s_bucket {
    struct s_bucket *next;
    char network[MG_ID_MAX + 1];
    double tokens;
    int64_t last_us;
} s_bucket_t;

typedef struct {
    mg_metric_t *requests, *auth_failures, *rate_limited, *acks[4], *timeouts, *pending, *awaiting, *cache,
        *redis_up, *broker_up, *pubsub_up;
    mg_metric_t *codes[600];
} s_metrics_t;

struct mg_gateway {
    struct event_base *base;
    const mg_config_t *cfg;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    char listen_host[256];
    int listen_port;

    /* limits, from [gateway] */
    size_t max_body;
    int64_t ack_timeout_us;
    size_t max_pending;
    int64_t token_ttl_us;
    double rate, burst;

    mg_communes_t *communes;
    mg_taxonomy_t *taxonomy;
    void *zmq_context;
    mg_producer_t *producer;
    mg_redis_t *redis;
    mg_redis_options_t redis_opts;
    int ready_logged;

    /* the SUBSCRIBE connection */
    redisAsyncContext *sub;
    struct event *sub_timer;
    int sub_up, sub_attempt;
    char sub_refusal[256];

    s_route_t *routes;
    size_t nroutes;

    struct {
        void *state;
        void (*destroy)(void *);
    } parts[GW_PART_COUNT];

    s_token_t **tokens;
    size_t token_buckets, token_count;
    uint64_t revocations; /* bumped by every revocation seen: a lookup racing one is not cached */

    s_await_t **awaits;
    size_t await_buckets, await_count;
    s_await_t *await_head, *await_tail;
    struct event *await_timer;

    s_bucket_t *rate_buckets[64];

    s_relay_t *relay_head, *relay_tail;
    size_t relay_count;
    struct event *relay_event;

    int64_t last_progress_us; /* last broker answer, or last time nothing was pending */
    struct event *housekeeping;
    unsigned ticks;

    s_req_t *inflight;
    size_t inflight_count;
    int stopping, stop_done;
    int64_t stop_deadline_us;
    struct event *stop_timer;

    s_metrics_t m;
};

static void s_request_free(s_req_t *q);
static void s_dispatch(s_req_t *q);

/* Copy an id (checked: at most MG_ID_MAX bytes) into a MG_ID_MAX + 1 buffer;
 * on the hot path, where snprintf() showed in profiles. */
static void s_copy_id(char *dst, const char *src) {
    size_t n = strlen(src);
    if (n > MG_ID_MAX) n = MG_ID_MAX;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* FNV-1a over a few strings, each followed by a separator no id contains. */
static uint64_t s_hash2(const char *a, const char *b) {
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = a; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    if (b)
        for (const char *p = b; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return h;
}

/* ---- accessors ------------------------------------------------------------------------ */

const mg_config_t *gw_config(const mg_gateway_t *gw) { return gw->cfg; }
struct event_base *gw_base(const mg_gateway_t *gw) { return gw->base; }
mg_redis_t *gw_redis(const mg_gateway_t *gw) { return gw->redis; }
mg_producer_t *gw_producer(const mg_gateway_t *gw) { return gw->producer; }
const mg_communes_t *gw_communes(const mg_gateway_t *gw) { return gw->communes; }
const mg_taxonomy_t *gw_taxonomy(const mg_gateway_t *gw) { return gw->taxonomy; }
int gw_stopping(const mg_gateway_t *gw) { return gw->stopping; }

void gw_part_set(mg_gateway_t *gw, gw_part_t part, void *state, void (*destroy)(void *state)) {
    gw->parts[part].state = state;
    gw->parts[part].destroy = destroy;
}

void *gw_part(const mg_gateway_t *gw, gw_part_t part) { return gw->parts[part].state; }

/* ---- replies ----------------------------------------------------------------------------- */

static const char *s_reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return NULL;
    }
}

static void s_count_status(mg_gateway_t *gw, int status) {
    if (status < 100 || status >= 600) return;
    if (!gw->m.codes[status]) {
        char name[96];
        snprintf(name, sizeof name, "maillage_gateway_responses_total{code=\"%d\"}", status);
        gw->m.codes[status] = mg_metrics_counter(name, "HTTP responses sent, by status code.");
    }
    mg_metrics_inc(gw->m.codes[status]);
}

void gw_header(gw_request_t *r, const char *name, const char *value) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    evhttp_remove_header(h, name);
    evhttp_add_header(h, name, value);
}

void gw_reply_bytes(gw_request_t *r, int status, const char *content_type, const void *data, size_t len) {
    s_req_t *q = (s_req_t *)r;
    mg_gateway_t *gw = r->gw;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    if (content_type && data) gw_header(r, "Content-Type", content_type);
    if (!evhttp_find_header(h, "Cache-Control")) evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    if (gw->stopping) gw_header(r, "Connection", "close");
    struct evbuffer *buf = NULL;
    if (data && status != 204 && status != 304) {
        if (evhttp_request_get_command(r->req) == EVHTTP_REQ_HEAD) {
            /* The length the GET would have, and no body: libevent 2.1
             * would write one after a HEAD's headers (without a length),
             * read by a keep-alive client as the start of its next reply. */
            char length[24];
            snprintf(length, sizeof length, "%zu", len);
            gw_header(r, "Content-Length", length);
        } else {
            buf = evbuffer_new();
            if (buf) evbuffer_add(buf, data, len);
        }
    }
    s_count_status(gw, status);
    evhttp_send_reply(r->req, status, s_reason(status), buf);
    if (buf) evbuffer_free(buf);
    s_request_free(q);
}

void gw_reply_json(gw_request_t *r, int status, json_t *body) {
    /* 15 digits: a score reads 0.7834, not 0.78339999999999999. */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    if (body) json_decref(body);
    if (!text) {
        gw_reply_bytes(r, status == 204 ? 204 : 500, "application/json", status == 204 ? NULL : "{}",
                       status == 204 ? 0 : 2);
        return;
    }
    gw_reply_bytes(r, status, "application/json", text, strlen(text));
    free(text);
}

void gw_reply_error(gw_request_t *r, int status, const char *code, const char *field, long index, const char *fmt,
                    ...) {
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_t *e = json_object();
    json_object_set_new(e, "code", json_string(code));
    /* A message may quote what the client sent: jansson refuses invalid
     * UTF-8, so fall back to a generic text rather than an empty reply. */
    json_t *m = json_string(message);
    json_object_set_new(e, "message", m ? m : json_string("invalid input"));
    if (field && *field) {
        json_t *f = json_string(field);
        if (f) json_object_set_new(e, "field", f);
    }
    if (index >= 0) json_object_set_new(e, "index", json_integer(index));
    json_t *body = json_object();
    json_object_set_new(body, "error", e);
    gw_reply_json(r, status, body);
}

void gw_reply_unavailable(gw_request_t *r, const char *what) {
    gw_header(r, "Retry-After", "1");
    gw_reply_error(r, 503, "unavailable", NULL, -1, "%s is unavailable; retry later", what ? what : "Redis");
}

const char *gw_body(gw_request_t *r, size_t *len) {
    s_req_t *q = (s_req_t *)r;
    if (!q->body) {
        struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
        q->body_len = evbuffer_get_length(in);
        /* NUL-terminate in the buffer itself: one pullup, no copy of ours. */
        evbuffer_add(in, "", 1);
        q->body = (const char *)evbuffer_pullup(in, -1);
        if (!q->body) {
            q->body = "";
            q->body_len = 0;
        }
    }
    if (len) *len = q->body_len;
    return q->body;
}

const char *gw_query(gw_request_t *r, const char *name) { return evhttp_find_header(&r->query, name); }

const char *gw_request_header(gw_request_t *r, const char *name) {
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

int gw_content_type_is(gw_request_t *r, const char *mime) {
    const char *ct = gw_request_header(r, "Content-Type");
    if (!ct) return 0;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    return n == strlen(mime) && strncasecmp(ct, mime, n) == 0;
}

/* ---- requests ------------------------------------------------------------------------------ */

static void s_request_unlink(s_req_t *q) {
    mg_gateway_t *gw = q->pub.gw;
    if (q->prev) q->prev->next = q->next;
    else if (gw->inflight == q) gw->inflight = q->next;
    if (q->next) q->next->prev = q->prev;
    q->prev = q->next = NULL;
    if (gw->inflight_count) gw->inflight_count--;
}

static void s_request_free(s_req_t *q) {
    s_request_unlink(q);
    evhttp_clear_headers(&q->pub.query);
    free(q->pub.path);
    for (size_t i = 0; i < q->pub.param_count; i++) free(q->pub.params[i]);
    if (q->pub.state_free)
        q->pub.state_free(q->pub.state);
    else
        free(q->pub.state);
    free(q);
}

void gw_request_release(gw_request_t *r) { s_request_free((s_req_t *)r); }

/* ---- the router ------------------------------------------------------------------------------ */

/* The query string into r->query (http_request.h says what is refused).
 * Returns 0, or -1 with the 400 sent. */
static int s_parse_query(gw_request_t *r, const char *qs) {
    const char *repeated = NULL;
    size_t count = 0;
    switch (mg_http_query_parse(qs, &r->query, &repeated, &count)) {
    case MG_HTTP_QUERY_OK:
        return 0;
    case MG_HTTP_QUERY_MALFORMED:
        gw_reply_error(r, 400, "bad_request", NULL, -1, "malformed query string");
        break;
    case MG_HTTP_QUERY_TOO_MANY:
        gw_reply_error(r, 400, "bad_request", NULL, -1, "%zu query parameters; at most %d", count,
                       MG_HTTP_MAX_PARAMETERS);
        break;
    case MG_HTTP_QUERY_REPEATED:
        gw_reply_error(r, 400, "invalid_parameter", repeated, -1, "%s is given more than once", repeated);
        break;
    }
    return -1;
}

/* Whether `name` is a word of the space-separated `list`, ignoring case
 * (as evhttp_find_header() reads the query). */
static int s_in_list(const char *list, const char *name) {
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, " ");
        if (n == len && strncasecmp(p, name, n) == 0) return 1;
        p += n + (p[n] == ' ');
    }
    return 0;
}

/* Every parameter of r->query is one the route reads: a misspelt filter
 * ("?categry=locaux") would otherwise answer the whole list, unfiltered.
 * Returns 0, or -1 with the 400 sent. */
static int s_query_is_known(gw_request_t *r, const char *known) {
    for (const struct evkeyval *kv = r->query.tqh_first; kv; kv = kv->next.tqe_next)
        if (!s_in_list(known, kv->key)) {
            gw_reply_error(r, 400, "invalid_parameter", kv->key, -1,
                           "unknown query parameter %s (this resource reads: %s)", kv->key,
                           *known ? known : "none");
            return -1;
        }
    return 0;
}

void gw_route(mg_gateway_t *gw, enum evhttp_cmd_type method, const char *pattern, int allowed,
              const char *query, gw_handler_fn handler) {
    gw->routes = mg_realloc(gw->routes, (gw->nroutes + 1) * sizeof *gw->routes);
    s_route_t *rt = &gw->routes[gw->nroutes];
    memset(rt, 0, sizeof *rt);
    rt->method = method;
    rt->allowed = allowed;
    rt->handler = handler;
    rt->query = query ? query : "";
    mg_http_path_t path;
    if (mg_http_path_parse(pattern, &path) != MG_HTTP_PATH_OK) {
        mg_error("gateway: route %s: invalid pattern (ignored)", pattern);
        mg_http_path_clear(&path);
        return;
    }
    rt->pattern = mg_strdup(pattern);
    rt->nseg = (size_t)path.count;
    for (int i = 0; i < path.count; i++)
        rt->seg[i] = path.seg[i][0] == '{' ? NULL : mg_strdup(path.seg[i]);
    mg_http_path_clear(&path);
    gw->nroutes++;
}

static int s_route_matches(const s_route_t *rt, char **seg, size_t nseg) {
    if (rt->nseg != nseg) return 0;
    for (size_t i = 0; i < nseg; i++) {
        if (rt->seg[i] ? strcmp(rt->seg[i], seg[i]) != 0 : !mg_id_is_valid(seg[i])) return 0;
    }
    return 1;
}

static const char *s_method_name(enum evhttp_cmd_type m) {
    switch (m) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "?";
    }
}

static void s_on_request(struct evhttp_request *req, void *arg) {
    mg_gateway_t *gw = arg;
    mg_metrics_inc(gw->m.requests);
    s_req_t *q = mg_calloc(1, sizeof *q);
    gw_request_t *r = &q->pub;
    r->gw = gw;
    r->req = req;
    r->method = evhttp_request_get_command(req);
    TAILQ_INIT(&r->query);
    q->next = gw->inflight;
    if (gw->inflight) gw->inflight->prev = q;
    gw->inflight = q;
    gw->inflight_count++;

    if (gw->stopping) {
        gw_header(r, "Retry-After", "1");
        gw_reply_error(r, 503, "stopping", NULL, -1, "the gateway is stopping; retry later");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw_path = uri ? evhttp_uri_get_path(uri) : NULL;
    mg_http_path_t path;
    mg_http_path_status_t parsed = mg_http_path_parse(raw_path && *raw_path ? raw_path : "/", &path);
    if (parsed == MG_HTTP_PATH_MALFORMED) {
        mg_http_path_clear(&path);
        gw_reply_error(r, 400, "bad_request", NULL, -1, "malformed path");
        return;
    }
    r->path = path.decoded;
    path.decoded = NULL; /* r's now */
    char **seg = path.seg;
    int nseg = parsed == MG_HTTP_PATH_OK ? path.count : -1;
    enum evhttp_cmd_type want = r->method == EVHTTP_REQ_HEAD ? EVHTTP_REQ_GET : r->method;
    const s_route_t *found = NULL;
    char allow[96] = "";
    int path_known = 0;
    for (size_t i = 0; nseg >= 0 && i < gw->nroutes; i++) {
        const s_route_t *rt = &gw->routes[i];
        if (!s_route_matches(rt, seg, (size_t)nseg)) continue;
        path_known = 1;
        if (rt->method == want && !found) found = rt;
        const char *name = s_method_name(rt->method);
        if (!strstr(allow, name)) {
            size_t used = strlen(allow);
            snprintf(allow + used, sizeof allow - used, "%s%s", used ? ", " : "", name);
            if (rt->method == EVHTTP_REQ_GET && !strstr(allow, "HEAD")) {
                used = strlen(allow);
                snprintf(allow + used, sizeof allow - used, ", HEAD");
            }
        }
    }
    if (!found) {
        mg_http_path_clear(&path);
        if (path_known) {
            gw_header(r, "Allow", allow);
            gw_reply_error(r, 405, "method_not_allowed", NULL, -1, "%s is not allowed here (allowed: %s)",
                           s_method_name(r->method), allow);
        } else {
            gw_reply_error(r, 404, "not_found", NULL, -1, "no such resource");
        }
        return;
    }
    for (size_t i = 0; i < found->nseg && r->param_count < 4; i++)
        if (!found->seg[i]) r->params[r->param_count++] = mg_strdup(seg[i]);
    mg_http_path_clear(&path);
    /* Public routes (the page, health, session) read no parameter: a link
     * with "?utm" or "?&" still opens the page. */
    const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
    if ((found->allowed & (GW_NETWORK | GW_STAFF)) && qs && *qs &&
        (s_parse_query(r, qs) != 0 || s_query_is_known(r, found->query) != 0))
        return;
    q->route = found;
    s_dispatch(q);
}

static void s_on_route_auth(gw_request_t *r, int status, const gw_principal_t *who);

/* Body size, media type, authentication, then the handler. */
static void s_dispatch(s_req_t *q) {
    gw_request_t *r = &q->pub;
    mg_gateway_t *gw = r->gw;
    const s_route_t *rt = q->route;
    size_t body_len = evbuffer_get_length(evhttp_request_get_input_buffer(r->req));
    if (body_len > gw->max_body) {
        gw_reply_error(r, 413, "body_too_large", NULL, -1, "the body has %zu bytes; at most %zu (max_body_bytes)",
                       body_len, gw->max_body);
        return;
    }
    if (r->method == EVHTTP_REQ_POST || r->method == EVHTTP_REQ_PUT || r->method == EVHTTP_REQ_PATCH) {
        int ok = gw_content_type_is(r, "application/json") ||
                 ((rt->allowed & GW_ACCEPT_NDJSON) && gw_content_type_is(r, "application/x-ndjson"));
        if (!ok) {
            gw_reply_error(r, 415, "unsupported_media_type", NULL, -1, "Content-Type must be application/json%s",
                           (rt->allowed & GW_ACCEPT_NDJSON) ? " or application/x-ndjson" : "");
            return;
        }
    }
    int kinds = rt->allowed & (GW_NETWORK | GW_STAFF);
    if (!kinds) {
        rt->handler(r);
        return;
    }
    /* The session cookie is a staff member's: only for their routes. */
    const char *token = NULL;
    size_t len = 0;
    mg_http_credential(gw_request_header(r, "Authorization"),
                       (kinds & GW_STAFF) ? gw_request_header(r, "Cookie") : NULL, &token, &len);
    gw_authenticate(r, token, len, s_on_route_auth);
}

static void s_on_route_auth(gw_request_t *r, int status, const gw_principal_t *who) {
    s_req_t *q = (s_req_t *)r;
    if (status == 503) {
        gw_reply_unavailable(r, "Redis");
        return;
    }
    if (status != 200) {
        mg_metrics_inc(r->gw->m.auth_failures);
        gw_header(r, "WWW-Authenticate", "Bearer");
        gw_reply_error(r, 401, "unauthorized", NULL, -1,
                       "a valid token is required (Authorization: Bearer <token>%s)",
                       (q->route->allowed & GW_STAFF) ? ", or the session cookie" : "");
        return;
    }
    if (!(q->route->allowed & who->kind)) {
        gw_reply_error(r, 403, "forbidden", NULL, -1, "this resource needs a %s token",
                       (q->route->allowed & GW_STAFF) ? "staff" : "network");
        return;
    }
    r->who = *who;
    q->route->handler(r);
}

/* ---- tokens ------------------------------------------------------------------------------------ */

static s_token_t **s_token_slot(mg_gateway_t *gw, const char *hash) {
    s_token_t **slot = &gw->tokens[s_hash2(hash, NULL) & (gw->token_buckets - 1)];
    while (*slot && strcmp((*slot)->hash, hash) != 0) slot = &(*slot)->next;
    return slot;
}

static void s_token_forget(mg_gateway_t *gw, const char *hash) {
    s_token_t **slot = s_token_slot(gw, hash);
    if (*slot) {
        s_token_t *t = *slot;
        *slot = t->next;
        free(t);
        gw->token_count--;
    }
}

/* Drop expired entries (all of them when `all`). */
static void s_token_sweep(mg_gateway_t *gw, int all) {
    int64_t now = mg_clock_monotonic_us();
    for (size_t b = 0; b < gw->token_buckets; b++) {
        s_token_t **slot = &gw->tokens[b];
        while (*slot) {
            if (all || (*slot)->expires_us <= now) {
                s_token_t *t = *slot;
                *slot = t->next;
                free(t);
                gw->token_count--;
            } else {
                slot = &(*slot)->next;
            }
        }
    }
}

static void s_token_remember(mg_gateway_t *gw, const char *hash, const gw_principal_t *who) {
    if (gw->token_ttl_us <= 0) return;
    if (gw->token_count >= S_TOKEN_CACHE_MAX) {
        s_token_sweep(gw, 0);
        if (gw->token_count >= S_TOKEN_CACHE_MAX) s_token_sweep(gw, 1);
    }
    s_token_t **slot = s_token_slot(gw, hash);
    s_token_t *t = *slot;
    if (!t) {
        t = mg_calloc(1, sizeof *t);
        memcpy(t->hash, hash, sizeof t->hash);
        *slot = t;
        gw->token_count++;
    }
    t->who = *who;
    t->expires_us = mg_clock_monotonic_us() + gw->token_ttl_us;
}

typedef struct {
    gw_request_t *r;
    gw_auth_fn cb;
    uint64_t revocations;
    char hash[MG_TOKEN_HASH_LEN + 1];
    gw_principal_t who; /* once the token's record is read */
} s_lookup_t;

/* The lookup's end: remember the principal (unless a revocation came while
 * it was on the wire: it may be about this very token, so use the answer
 * once, do not keep it) and give it to the caller. */
static void s_lookup_done(s_lookup_t *l) {
    gw_request_t *r = l->r;
    mg_gateway_t *gw = r->gw;
    gw_auth_fn cb = l->cb;
    gw_principal_t who = l->who;
    if (l->revocations == gw->revocations) s_token_remember(gw, l->hash, &who);
    free(l);
    cb(r, 200, &who);
}

static void s_lookup_fail(s_lookup_t *l, int status) {
    gw_request_t *r = l->r;
    gw_auth_fn cb = l->cb;
    free(l);
    cb(r, status, NULL);
}

/* A staff token counts only while its staff member exists: one removed
 * (`maillage staff remove`, or a [staff.ID] section gone) is refused even
 * if the token was not revoked. */
static void s_on_staff_reply(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_lookup_t *l = privdata;
    (void)redis;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        if (reply && reply->type == REDIS_REPLY_ERROR) mg_warn("gateway: staff lookup: %s", reply->str);
        s_lookup_fail(l, 503);
    } else if (reply->integer != 1) {
        s_lookup_fail(l, 401);
    } else {
        s_lookup_done(l);
    }
}

/* mg:token:<hash> as a principal; 0, or -1 if the record is not usable. */
static int s_principal_from_reply(const redisReply *reply, gw_principal_t *who) {
    memset(who, 0, sizeof *who);
    const redisReply *kind = mg_redis_field(reply, "kind");
    const redisReply *subject = mg_redis_field(reply, "subject");
    const redisReply *id = mg_redis_field(reply, "id");
    const redisReply *types = mg_redis_field(reply, "types");
    if (!kind || !subject || !mg_id_is_valid(subject->str)) return -1;
    if (strcmp(kind->str, "network") == 0) who->kind = GW_NETWORK;
    else if (strcmp(kind->str, "staff") == 0) who->kind = GW_STAFF;
    else return -1;
    snprintf(who->subject, sizeof who->subject, "%s", subject->str);
    snprintf(who->token_id, sizeof who->token_id, "%s", id ? id->str : "tok-?");
    if (who->kind == GW_NETWORK)
        snprintf(who->types, sizeof who->types, "%s", types && *types->str ? types->str : MG_TOKEN_DEFAULT_TYPES);
    return 0;
}

static void s_on_token_reply(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_lookup_t *l = privdata;
    (void)redis;
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
        if (reply) mg_warn("gateway: token lookup: %s", reply->str);
        s_lookup_fail(l, 503);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 || s_principal_from_reply(reply, &l->who) != 0) {
        s_lookup_fail(l, 401);
        return;
    }
    if (l->who.kind != GW_STAFF) {
        s_lookup_done(l);
        return;
    }
    if (mg_redis_command(l->r->gw->redis, s_on_staff_reply, l, "SISMEMBER mg:staff %s", l->who.subject) != 0)
        s_lookup_fail(l, 503);
}

void gw_authenticate(gw_request_t *r, const char *token, size_t len, gw_auth_fn cb) {
    mg_gateway_t *gw = r->gw;
    if (!token || !mg_token_is_well_formed(token, len)) {
        cb(r, 401, NULL);
        return;
    }
    char hash[MG_TOKEN_HASH_LEN + 1];
    mg_token_hash_hex(token, len, hash);
    s_token_t *t = *s_token_slot(gw, hash);
    if (t && t->expires_us > mg_clock_monotonic_us()) {
        gw_principal_t who = t->who;
        cb(r, 200, &who);
        return;
    }
    s_lookup_t *l = mg_malloc(sizeof *l);
    l->r = r;
    l->cb = cb;
    l->revocations = gw->revocations;
    memcpy(l->hash, hash, sizeof hash);
    if (mg_redis_command(gw->redis, s_on_token_reply, l, "HGETALL " MG_TOKEN_KEY_PREFIX "%s", hash) != 0) {
        free(l);
        cb(r, 503, NULL);
    }
}

/* ---- the SUBSCRIBE connection -------------------------------------------------------------------- */

static void s_sub_schedule(mg_gateway_t *gw) {
    if (gw->stopping || !gw->sub_timer) return;
    long delay = S_SUB_BACKOFF_MIN_MS;
    for (int i = 0; i < gw->sub_attempt && delay < S_SUB_BACKOFF_MAX_MS; i++) delay *= 2;
    if (delay > S_SUB_BACKOFF_MAX_MS) delay = S_SUB_BACKOFF_MAX_MS;
    if (gw->sub_attempt < 30) gw->sub_attempt++;
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(gw->sub_timer, &tv);
}

static void s_sub_lost(mg_gateway_t *gw, const char *why) {
    if (gw->sub_up) mg_warn("gateway: token revocation channel lost (%s); reconnecting", why);
    gw->sub = NULL;
    gw->sub_up = 0;
    mg_metrics_set(gw->m.pubsub_up, 0);
    s_sub_schedule(gw);
}

static void s_sub_on_connect(const redisAsyncContext *ac, int status) {
    mg_gateway_t *gw = ac->data;
    if (!gw || gw->sub != ac) return;
    if (status != REDIS_OK) s_sub_lost(gw, ac->errstr ? ac->errstr : "connect failed");
}

static void s_sub_on_disconnect(const redisAsyncContext *ac, int status) {
    mg_gateway_t *gw = ac->data;
    (void)status;
    if (!gw || gw->sub != ac) return;
    s_sub_lost(gw, ac->err && ac->errstr[0] ? ac->errstr : "disconnected");
}

static void s_sub_refused(mg_gateway_t *gw, redisAsyncContext *ac, const char *what) {
    if (strncmp(gw->sub_refusal, what, sizeof gw->sub_refusal - 1) != 0) {
        mg_error("gateway: Redis refused the revocation channel: %s", what);
        snprintf(gw->sub_refusal, sizeof gw->sub_refusal, "%s", what);
    }
    redisAsyncDisconnect(ac);
}

static void s_sub_on_auth(redisAsyncContext *ac, void *reply_, void *privdata) {
    redisReply *reply = reply_;
    mg_gateway_t *gw = privdata;
    if (reply && reply->type == REDIS_REPLY_ERROR && gw->sub == ac) s_sub_refused(gw, ac, reply->str);
}

static void s_sub_on_message(redisAsyncContext *ac, void *reply_, void *privdata) {
    redisReply *reply = reply_;
    mg_gateway_t *gw = privdata;
    if (!reply || gw->sub != ac) return;
    if (reply->type == REDIS_REPLY_ERROR) {
        s_sub_refused(gw, ac, reply->str);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    const redisReply *channel = reply->element[1], *payload = reply->element[2];
    if (strcmp(kind, "subscribe") == 0) {
        if (payload->type == REDIS_REPLY_INTEGER && payload->integer == S_SUB_CHANNELS) {
            /* Revocations published while we were not listening are lost:
             * forget every cached token, they are read again. Hints of
             * changed matches too: the live streams' pages look again at
             * all the matches they show. */
            s_token_sweep(gw, 1);
            gw_stream_match_changed(gw, NULL);
            gw->revocations++;
            gw->sub_up = 1;
            gw->sub_attempt = 0;
            gw->sub_refusal[0] = '\0';
            mg_metrics_set(gw->m.pubsub_up, 1);
            mg_info("gateway: listening to %s, %s and %s", MG_TOKENS_REVOKED_CHANNEL, MG_STAFF_INBOX_CHANNEL,
                    MG_STAFF_MATCH_CHANNEL);
        }
        return;
    }
    if (strcmp(kind, "message") != 0 || channel->type != REDIS_REPLY_STRING || payload->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(channel->str, MG_TOKENS_REVOKED_CHANNEL) == 0) {
        gw->revocations++;
        if (payload->len == MG_TOKEN_HASH_LEN) s_token_forget(gw, payload->str);
        mg_info("gateway: token revoked, forgotten at once");
    } else if (strcmp(channel->str, MG_STAFF_INBOX_CHANNEL) == 0) {
        if (mg_id_is_valid(payload->str)) gw_stream_inbox_changed(gw, payload->str);
    } else if (strcmp(channel->str, MG_STAFF_MATCH_CHANNEL) == 0) {
        if (mg_id_is_valid(payload->str)) gw_stream_match_changed(gw, payload->str);
    }
}

static void s_sub_connect(mg_gateway_t *gw) {
    const mg_redis_options_t *o = &gw->redis_opts;
    redisAsyncContext *ac = o->socket_path ? redisAsyncConnectUnix(o->socket_path) : redisAsyncConnect(o->host, o->port);
    if (!ac) {
        s_sub_schedule(gw);
        return;
    }
    if (ac->err) {
        redisAsyncFree(ac);
        s_sub_schedule(gw);
        return;
    }
    ac->data = gw;
    gw->sub = ac;
    if (!o->socket_path) redisEnableKeepAlive(&ac->c);
    redisLibeventAttach(ac, gw->base);
    redisAsyncSetConnectCallback(ac, s_sub_on_connect);
    redisAsyncSetDisconnectCallback(ac, s_sub_on_disconnect);
    if (o->password) {
        if (o->user) redisAsyncCommand(ac, s_sub_on_auth, gw, "AUTH %s %s", o->user, o->password);
        else redisAsyncCommand(ac, s_sub_on_auth, gw, "AUTH %s", o->password);
    }
    redisAsyncCommand(ac, s_sub_on_message, gw, "SUBSCRIBE %s %s %s", MG_TOKENS_REVOKED_CHANNEL,
                      MG_STAFF_INBOX_CHANNEL, MG_STAFF_MATCH_CHANNEL);
}

static void s_sub_on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    mg_gateway_t *gw = arg;
    if (!gw->sub && !gw->stopping) s_sub_connect(gw);
}

static void s_sub_close(mg_gateway_t *gw) {
    if (gw->sub_timer) evtimer_del(gw->sub_timer);
    if (gw->sub) {
        redisAsyncContext *ac = gw->sub;
        gw->sub = NULL; /* callbacks see it is not ours any more */
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    gw->sub_up = 0;
}

/* ---- acks ------------------------------------------------------------------------------------------ */

static s_await_t **s_await_slot(const mg_gateway_t *gw, const char *network, const char *event_id) {
    s_await_t **slot = &gw->awaits[s_hash2(network, event_id) & (gw->await_buckets - 1)];
    while (*slot && (strcmp((*slot)->event_id, event_id) != 0 || strcmp((*slot)->network, network) != 0))
        slot = &(*slot)->hnext;
    return slot;
}

static void s_await_grow(mg_gateway_t *gw) {
    if (gw->await_count < gw->await_buckets) return;
    size_t nb = gw->await_buckets * 2;
    s_await_t **table = mg_calloc(nb, sizeof *table);
    for (size_t b = 0; b < gw->await_buckets; b++) {
        s_await_t *a = gw->awaits[b];
        while (a) {
            s_await_t *next = a->hnext;
            size_t nbkt = s_hash2(a->network, a->event_id) & (nb - 1);
            a->hnext = table[nbkt];
            table[nbkt] = a;
            a = next;
        }
    }
    free(gw->awaits);
    gw->awaits = table;
    gw->await_buckets = nb;
}

/* Take `a` out of the table and the deadline list (it is found by slot). */
static void s_await_remove(mg_gateway_t *gw, s_await_t **slot) {
    s_await_t *a = *slot;
    *slot = a->hnext;
    if (a->prev) a->prev->next = a->next;
    else gw->await_head = a->next;
    if (a->next) a->next->prev = a->prev;
    else gw->await_tail = a->prev;
    gw->await_count--;
}

static void s_await_arm(mg_gateway_t *gw) {
    if (!gw->await_head || !gw->await_timer) return;
    int64_t delay = gw->await_head->deadline_us - mg_clock_monotonic_us();
    if (delay < 0) delay = 0;
    struct timeval tv = {(time_t)(delay / 1000000), (suseconds_t)(delay % 1000000)};
    evtimer_add(gw->await_timer, &tv);
}

int gw_ack_awaited(const mg_gateway_t *gw, const char *network, const char *event_id) {
    return *s_await_slot(gw, network, event_id) != NULL;
}

int gw_await_ack(mg_gateway_t *gw, const char *network, const char *event_id, gw_ack_fn cb, void *arg) {
    if (*s_await_slot(gw, network, event_id)) return -1;
    s_await_grow(gw);
    s_await_t **slot = s_await_slot(gw, network, event_id);
    s_await_t *a = mg_calloc(1, sizeof *a);
    s_copy_id(a->network, network);
    s_copy_id(a->event_id, event_id);
    a->cb = cb;
    a->arg = arg;
    a->deadline_us = mg_clock_monotonic_us() + gw->ack_timeout_us;
    *slot = a;
    a->prev = gw->await_tail;
    if (gw->await_tail) gw->await_tail->next = a;
    else gw->await_head = a;
    gw->await_tail = a;
    if (gw->await_count++ == 0) s_await_arm(gw);
    return 0;
}

/* Answer every awaited ack whose deadline passed (all of them when `all`)
 * with STATUS_UNSPECIFIED. */
static void s_await_expire(mg_gateway_t *gw, int all) {
    int64_t now = mg_clock_monotonic_us();
    while (gw->await_head && (all || gw->await_head->deadline_us <= now)) {
        s_await_t *a = gw->await_head;
        s_await_remove(gw, s_await_slot(gw, a->network, a->event_id));
        mg_metrics_inc(gw->m.timeouts);
        a->cb(a->network, a->event_id, MAILLAGE__V1__ACK__STATUS__STATUS_UNSPECIFIED, 0, "timeout", a->arg);
        free(a);
    }
}

static void s_on_await_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    mg_gateway_t *gw = arg;
    s_await_expire(gw, 0);
    s_await_arm(gw);
}

static void s_on_ack(mg_producer_t *producer, const char *on_behalf_of, const char *event_id,
                     Maillage__V1__Ack__Status status, uint64_t sequence, const char *reason, void *arg) {
    mg_gateway_t *gw = arg;
    (void)producer;
    gw->last_progress_us = mg_clock_monotonic_us();
    if (status >= 1 && status <= 3) mg_metrics_inc(gw->m.acks[status]);
    s_await_t **slot = s_await_slot(gw, on_behalf_of ? on_behalf_of : "", event_id);
    if (!*slot) return; /* timed out already: the client retries with the same id */
    s_await_t *a = *slot;
    s_await_remove(gw, slot);
    a->cb(a->network, a->event_id, status, sequence, reason, a->arg);
    free(a);
}

static void s_relay_flush(mg_gateway_t *gw) {
    while (gw->relay_head) {
        s_relay_t *x = gw->relay_head;
        gw->relay_head = x->next;
        mg_producer_send_as(gw->producer, x->network, x->event_id, x->data, x->len);
        free(x->data);
        free(x);
    }
    gw->relay_tail = NULL;
    gw->relay_count = 0;
}

static void s_on_relay_event(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    s_relay_flush(arg);
}

void gw_relay(mg_gateway_t *gw, const char *network, const char *event_id, uint8_t *data, size_t len) {
    s_relay_t *x = mg_malloc(sizeof *x);
    x->next = NULL;
    s_copy_id(x->network, network);
    s_copy_id(x->event_id, event_id);
    x->data = data;
    x->len = len;
    if (gw->relay_tail) gw->relay_tail->next = x;
    else gw->relay_head = x;
    gw->relay_tail = x;
    /* Active events run after those of this turn already queued: every
     * request read in this turn is parsed before the burst goes out. */
    if (gw->relay_count++ == 0) event_active(gw->relay_event, EV_WRITE, 0);
}

int gw_pending_check(const mg_gateway_t *gw, size_t n) {
    return mg_producer_pending(gw->producer) + gw->relay_count + n > gw->max_pending ? -1 : 0;
}

int gw_broker_ok(const mg_gateway_t *gw) {
    if (!mg_producer_connected(gw->producer)) return 0;
    if (mg_producer_pending(gw->producer) + gw->relay_count == 0) return 1;
    return mg_clock_monotonic_us() - gw->last_progress_us < gw->ack_timeout_us;
}

/* ---- rate limits ------------------------------------------------------------------------------------ */

int gw_rate_take(mg_gateway_t *gw, const char *network, size_t events, int *retry_after_s) {
    if (gw->rate <= 0) return 0;
    size_t b = s_hash2(network, NULL) % (sizeof gw->rate_buckets / sizeof gw->rate_buckets[0]);
    s_bucket_t *k = gw->rate_buckets[b];
    while (k && strcmp(k->network, network) != 0) k = k->next;
    int64_t now = mg_clock_monotonic_us();
    if (!k) {
        k = mg_calloc(1, sizeof *k);
        snprintf(k->network, sizeof k->network, "%s", network);
        k->tokens = gw->burst;
        k->last_us = now;
        k->next = gw->rate_buckets[b];
        gw->rate_buckets[b] = k;
    }
    k->tokens += gw->rate * (double)(now - k->last_us) / 1e6;
    if (k->tokens > gw->burst) k->tokens = gw->burst;
    k->last_us = now;
    /* A batch bigger than the burst passes on a full bucket and leaves it in
     * debt: the limit still holds on average. */
    double need = (double)events < gw->burst ? (double)events : gw->burst;
    if (k->tokens >= need) {
        k->tokens -= (double)events;
        return 0;
    }
    int wait = (int)ceil((need - k->tokens) / gw->rate);
    if (retry_after_s) *retry_after_s = wait < 1 ? 1 : wait;
    mg_metrics_inc(gw->m.rate_limited);
    return -1;
}

/* ---- housekeeping, metrics ------------------------------------------------------------------------------ */

static void s_metrics_register(mg_gateway_t *gw) {
    s_metrics_t *m = &gw->m;
    m->requests = mg_metrics_counter("maillage_gateway_requests_total", "HTTP requests received.");
    m->auth_failures =
        mg_metrics_counter("maillage_gateway_auth_failures_total", "Requests refused for a missing or unknown token.");
    m->rate_limited = mg_metrics_counter("maillage_gateway_rate_limited_total",
                                         "Requests refused by a network's rate limit (429).");
    m->acks[1] = mg_metrics_counter("maillage_gateway_acks_total{status=\"accepted\"}",
                                    "Final broker answers to relayed events, by status.");
    m->acks[2] = mg_metrics_counter("maillage_gateway_acks_total{status=\"duplicate\"}",
                                    "Final broker answers to relayed events, by status.");
    m->acks[3] = mg_metrics_counter("maillage_gateway_acks_total{status=\"rejected\"}",
                                    "Final broker answers to relayed events, by status.");
    m->timeouts = mg_metrics_counter("maillage_gateway_ack_timeouts_total",
                                     "Relayed events without the broker's answer within ack_timeout_ms.");
    m->pending = mg_metrics_gauge("maillage_gateway_pending", "Events waiting for the broker's answer.");
    m->awaiting = mg_metrics_gauge("maillage_gateway_awaiting", "Events whose HTTP request waits for the broker.");
    m->cache = mg_metrics_gauge("maillage_gateway_token_cache_entries", "Tokens in the cache.");
    m->redis_up = mg_metrics_gauge("maillage_gateway_redis_up", "1 when the Redis connection is up.");
    m->broker_up = mg_metrics_gauge("maillage_gateway_broker_up", "1 when the broker answers.");
    m->pubsub_up = mg_metrics_gauge("maillage_gateway_revocation_channel_up",
                                    "1 when the token revocation channel (pub/sub) is subscribed.");
}

static void s_metrics_refresh(mg_gateway_t *gw) {
    mg_metrics_set(gw->m.pending, mg_producer_pending(gw->producer));
    mg_metrics_set(gw->m.awaiting, gw->await_count);
    mg_metrics_set(gw->m.cache, gw->token_count);
    mg_metrics_set(gw->m.redis_up, (uint64_t)mg_redis_is_up(gw->redis));
    mg_metrics_set(gw->m.broker_up, (uint64_t)gw_broker_ok(gw));
}

static void s_on_housekeeping(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    mg_gateway_t *gw = arg;
    if (mg_producer_pending(gw->producer) == 0) gw->last_progress_us = mg_clock_monotonic_us();
    s_metrics_refresh(gw);
    if (++gw->ticks % S_METRICS_EVERY_TICKS == 0) {
        s_token_sweep(gw, 0);
        mg_redis_publish_metrics(gw->redis, "gateway");
    }
}

static void s_on_redis_state(mg_redis_t *redis, int up, void *arg) {
    mg_gateway_t *gw = arg;
    (void)redis;
    mg_metrics_set(gw->m.redis_up, (uint64_t)up);
    if (up && !gw->ready_logged) {
        gw->ready_logged = 1;
        mg_info("gateway: ready on http://%s:%d", gw->listen_host, gw->listen_port);
    } else if (!up) {
        mg_warn("gateway: Redis unavailable: requests needing it are answered 503");
    }
}

/* ---- clean stop ------------------------------------------------------------------------------------------- */

static void s_finish_stop(mg_gateway_t *gw) {
    if (gw->stop_done) return;
    gw->stop_done = 1;
    /* What still waits for the broker is answered 503 (the ids are in the
     * body: a retry is safe); Redis callbacks get their NULL reply and
     * answer 503 too. */
    s_relay_flush(gw);
    s_await_expire(gw, 1);
    mg_redis_destroy(&gw->redis);
    if (gw->inflight_count)
        mg_warn("gateway: %zu request(s) still unanswered at the end of the stop", gw->inflight_count);
    /* A moment for the replies to be written, then out of the loop. */
    struct timeval flush = {0, S_STOP_FLUSH_MS * 1000};
    event_base_loopexit(gw->base, &flush);
}

static void s_on_stop_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    mg_gateway_t *gw = arg;
    if (gw->inflight_count == 0 || mg_clock_monotonic_us() >= gw->stop_deadline_us) {
        s_finish_stop(gw);
        return;
    }
    struct timeval tv = {0, S_STOP_TICK_MS * 1000};
    evtimer_add(gw->stop_timer, &tv);
}

void mg_gateway_shutdown(mg_gateway_t *gw) {
    if (!gw || gw->stopping) return;
    gw->stopping = 1;
    mg_info("gateway: stopping: no new connections, %zu request(s) in flight", gw->inflight_count);
    if (gw->bound) {
        evhttp_del_accept_socket(gw->http, gw->bound);
        gw->bound = NULL;
    }
    gw_stream_shutdown(gw);
    s_sub_close(gw);
    s_metrics_refresh(gw);
    mg_redis_publish_metrics(gw->redis, "gateway");
    int64_t grace = gw->ack_timeout_us + 100000;
    if (grace > S_STOP_GRACE_MS * 1000LL) grace = S_STOP_GRACE_MS * 1000LL;
    gw->stop_deadline_us = mg_clock_monotonic_us() + grace;
    s_on_stop_timer(-1, 0, gw);
}

/* ---- creation ------------------------------------------------------------------------------------------------ */

mg_gateway_t *mg_gateway_new(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen) {
    mg_gateway_t *gw = mg_calloc(1, sizeof *gw);
    char why[512];
    gw->base = base;
    gw->cfg = cfg;
    gw->max_body = (size_t)mg_config_int(cfg, "gateway", "max_body_bytes");
    gw->ack_timeout_us = mg_config_int(cfg, "gateway", "ack_timeout_ms") * 1000LL;
    gw->max_pending = (size_t)mg_config_int(cfg, "gateway", "max_pending");
    gw->token_ttl_us = mg_config_int(cfg, "gateway", "token_cache_s") * 1000000LL;
    gw->rate = (double)mg_config_int(cfg, "gateway", "rate_limit_per_s");
    gw->burst = (double)mg_config_int(cfg, "gateway", "rate_burst");
    gw->token_buckets = 4096;
    gw->tokens = mg_calloc(gw->token_buckets, sizeof *gw->tokens);
    gw->await_buckets = 4096;
    gw->awaits = mg_calloc(gw->await_buckets, sizeof *gw->awaits);
    gw->last_progress_us = mg_clock_monotonic_us();
    s_metrics_register(gw);

    if (mg_gateway_config_check(cfg, err, errlen) != 0) goto err;
    const char *listen = mg_config_str(cfg, "gateway", "listen");
    mg_gateway_listen_parse(listen, gw->listen_host, sizeof gw->listen_host, &gw->listen_port);
    if (!mg_config_host_is_loopback(gw->listen_host)) {
        mg_warn("gateway: WARNING: [gateway] listen = %s is reachable beyond this machine over PLAIN HTTP "
                "(allow_plain_http_remote = true): bearer tokens and session cookies travel in clear; put a TLS "
                "proxy in front",
                listen);
    }
    if (mg_redis_options_from_config(cfg, &gw->redis_opts, why, sizeof why) != 0) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    /* Wrong credentials are a configuration error: one line at start, not
     * retries forever (an unreachable Redis is not: 503 until it is back). */
    if (mg_redis_check_credentials(&gw->redis_opts, err, errlen) != 0) goto err;
    gw->taxonomy = mg_taxonomy_new(cfg, why, sizeof why);
    if (!gw->taxonomy) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    gw->communes = mg_communes_load(mg_config_str(cfg, "data", "communes_file"), why, sizeof why);
    if (!gw->communes) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    gw->zmq_context = zmq_ctx_new();
    if (!gw->zmq_context) {
        mg_fail(err, errlen, "zmq_ctx_new: %s", strerror(errno));
        goto err;
    }
    mg_producer_options_t popts = {.endpoint = mg_config_str(cfg, "broker", "ingest"), .window = S_PRODUCER_WINDOW};
    gw->producer = mg_producer_new(base, gw->zmq_context, &popts, s_on_ack, gw, why, sizeof why);
    if (!gw->producer) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    gw->redis = mg_redis_new(base, &gw->redis_opts, s_on_redis_state, gw);
    if (!gw->redis) {
        mg_fail(err, errlen, "cannot create the Redis connection");
        goto err;
    }
    gw->sub_timer = evtimer_new(base, s_sub_on_timer, gw);
    gw->await_timer = evtimer_new(base, s_on_await_timer, gw);
    gw->stop_timer = evtimer_new(base, s_on_stop_timer, gw);
    gw->housekeeping = event_new(base, -1, EV_PERSIST, s_on_housekeeping, gw);
    gw->relay_event = event_new(base, -1, 0, s_on_relay_event, gw);
    if (!gw->sub_timer || !gw->await_timer || !gw->stop_timer || !gw->housekeeping || !gw->relay_event) {
        mg_fail(err, errlen, "cannot create timers");
        goto err;
    }
    struct timeval hk = {S_HOUSEKEEPING_MS / 1000, (S_HOUSEKEEPING_MS % 1000) * 1000};
    event_add(gw->housekeeping, &hk);

    gw->http = evhttp_new(base);
    if (!gw->http) {
        mg_fail(err, errlen, "cannot create the HTTP server");
        goto err;
    }
    /* evhttp reads a whole body before our handler sees the request (its
     * size, its type, its token): its limit is what any client, with a
     * token or not, can make the gateway hold per connection, so it is
     * max_body_bytes and a little. Bodies up to it get our JSON 413; larger
     * ones evhttp's plain 413, their bytes thrown away as they come
     * (EVHTTP_SERVER_LINGERING_CLOSE) until what is left is under the limit
     * (libevent 2.1 then holds that rest). Bounding connections is the TLS
     * proxy's part (deploy/README.md). */
    ev_ssize_t hard = (ev_ssize_t)gw->max_body + S_BODY_SLACK;
    evhttp_set_max_body_size(gw->http, hard);
    evhttp_set_max_headers_size(gw->http, 32768);
    evhttp_set_timeout(gw->http, 60);
    evhttp_set_allowed_methods(gw->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                             EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_flags(gw->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(gw->http, s_on_request, gw);
    gw->bound = evhttp_bind_socket_with_handle(gw->http, gw->listen_host, (ev_uint16_t)gw->listen_port);
    if (!gw->bound) {
        mg_fail(err, errlen, "[gateway] listen = %s: cannot bind: %s", listen, strerror(errno));
        goto err;
    }

    gw_ingest_register(gw);
    gw_session_register(gw);
    gw_health_register(gw);
    gw_query_register(gw);
    gw_stream_register(gw);
    gw_assets_register(gw);

    s_sub_connect(gw);
    mg_info("gateway: listening on http://%s:%d (%zu routes), relaying to %s; connecting to Redis", gw->listen_host,
            gw->listen_port, gw->nroutes, popts.endpoint);
    return gw;
err:
    mg_gateway_destroy(&gw);
    return NULL;
}

void mg_gateway_destroy(mg_gateway_t **gw_p) {
    if (!gw_p || !*gw_p) return;
    mg_gateway_t *gw = *gw_p;
    gw->stopping = 1;
    /* Callbacks still pending run first (with their parts' state alive):
     * acks as timeouts, Redis replies as NULL. */
    s_await_expire(gw, 1);
    mg_redis_destroy(&gw->redis);
    s_sub_close(gw);
    for (int p = 0; p < GW_PART_COUNT; p++)
        if (gw->parts[p].destroy) gw->parts[p].destroy(gw->parts[p].state);
    if (gw->http) evhttp_free(gw->http);
    /* evhttp freed the requests of open connections: forget ours. */
    while (gw->inflight)
        s_request_free(gw->inflight);
    while (gw->relay_head) {
        s_relay_t *x = gw->relay_head;
        gw->relay_head = x->next;
        free(x->data);
        free(x);
    }
    mg_producer_destroy(&gw->producer);
    if (gw->zmq_context) zmq_ctx_term(gw->zmq_context);
    if (gw->sub_timer) event_free(gw->sub_timer);
    if (gw->await_timer) event_free(gw->await_timer);
    if (gw->stop_timer) event_free(gw->stop_timer);
    if (gw->housekeeping) event_free(gw->housekeeping);
    if (gw->relay_event) event_free(gw->relay_event);
    for (size_t i = 0; i < gw->nroutes; i++) {
        free(gw->routes[i].pattern);
        for (size_t k = 0; k < gw->routes[i].nseg; k++) free(gw->routes[i].seg[k]);
    }
    free(gw->routes);
    if (gw->tokens) s_token_sweep(gw, 1);
    free(gw->tokens);
    free(gw->awaits);
    for (size_t b = 0; b < sizeof gw->rate_buckets / sizeof gw->rate_buckets[0]; b++) {
        while (gw->rate_buckets[b]) {
            s_bucket_t *k = gw->rate_buckets[b];
            gw->rate_buckets[b] = k->next;
            free(k);
        }
    }
    mg_taxonomy_destroy(&gw->taxonomy);
    mg_communes_destroy(&gw->communes);
    mg_redis_options_clear(&gw->redis_opts);
    free(gw);
    *gw_p = NULL;
}
