/* stream.c -- GET /v1/stream: a staff member's inbox as Server-Sent Events.
 *
 * One chunked response per client (evhttp_send_reply_start / _chunk / _end):
 *
 *   retry: 2000                         first, so a browser reconnects soon
 *   id: <ms>-<nid>                      then, without Last-Event-ID, where
 *   event: position                     the stream starts: the inbox's
 *   data: <ms>-<nid>                    newest entry, or "0-0" (its
 *                                       beginning) for an empty inbox
 *   id: <score>-<nid>                   per notification, its inbox position
 *   event: notification
 *   data: <the notification, one line of JSON, as in the inbox>
 *   event: match                        a hint: that match was retired or
 *   data: {"matchId":"<match id>"}      revised, fetch it again if shown
 *   : ping                              every [gateway] stream_heartbeat_s
 *
 * Each stream remembers the position of the last entry it sent and reads
 * what follows it in mg:inbox:<staff> (ZRANGEBYSCORE from there, in the
 * sorted set's own order: score, then member), so nothing is sent twice or
 * skipped. A client that reconnects with Last-Event-ID (or ?lastEventId=,
 * for clients that cannot set headers) resumes right after that position;
 * without it, the stream starts at the inbox's newest entry and sends only
 * what arrives later. New entries are learnt from the notifier's
 * "PUBLISH mg:inbox:new <staff>" (gateway.c's subscriber calls
 * gw_stream_inbox_changed()) and, since pub/sub is fire-and-forget, from a
 * poll of every stream every 2 seconds.
 *
 * The hints come from the notifier's "PUBLISH mg:match:changed <match id>"
 * (gw_stream_match_changed()): every stream gets them, whoever's inbox it
 * is (a match id is no secret among staff, and knowing whose pages show
 * which match would cost a read per hint). They carry no `id:` line, so the
 * client's Last-Event-ID stays its inbox position, and they are not
 * replayed: pub/sub may lose one, a cut stream loses those sent meanwhile.
 * So a client refetches every match it shows when it reconnects, and when
 * the gateway subscribed to the channel again (a hint may have been lost)
 * every stream gets {"all":true}, meaning the same. They go through the
 * same bounded backlog as the notifications.
 *
 * The client going away: libevent 2.1 keeps reading a GET's connection
 * while the reply is sent, so a close is seen at once; evhttp then detaches
 * the unfinished request from the connection (req->evcon = NULL), frees the
 * connection and calls our close callback, where the request is freed with
 * evhttp_send_reply_end() (which frees a detached request). When the whole
 * server is freed instead, the request is still attached and evhttp frees
 * it: the close callback then only forgets it. A stream whose Redis read is
 * in flight is marked closed and freed when the read comes back. The
 * server's read timeout ([gateway]'s evhttp timeout) would cut a quiet
 * stream, so a stream keeps only a write timeout, and a client that does
 * not read is dropped once a bounded backlog is reached.
 *
 * A client that vanished without a FIN or an RST (a laptop put to sleep, a
 * network gone) acknowledges nothing more: TCP would retransmit our
 * heartbeats for about 15 minutes before giving up, and the stream would
 * keep its slot (stream_max_per_staff) all that time. So a stream's socket
 * has TCP_USER_TIMEOUT set to two heartbeats: data sent and not
 * acknowledged for that long, or a receive window closed for that long (a
 * client that stopped reading), ends the connection, and s_on_close()
 * follows. A client that is there acknowledges every heartbeat.
 *
 * A stream outlives the token cache, so each heartbeat checks its token
 * again (gw_authenticate(): the cache, or Redis once a revocation dropped
 * the entry): a revoked token's streams end within stream_heartbeat_s.
 *
 * Runs in the thread of the gateway's event base. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "maillage/http_request.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/metrics.h"
#include "query.h"

#define S_BATCH           50
#define S_POLL_MS         2000
#define S_WRITE_TIMEOUT_S 60
#define S_HTTP_TIMEOUT_S  60            /* the server's own (gateway.c: evhttp_set_timeout) */
#define S_MAX_BACKLOG     (1024 * 1024) /* bytes waiting for a slow client */
#define S_MAX_INPUT       16384         /* bytes a client may send on a stream (it should send none) */

typedef struct s_stream s_stream_t;

typedef struct {
    mg_gateway_t *gw;
    s_stream_t *head;
    size_t count;
    long max, max_per_staff;
    unsigned int unacked_ms; /* TCP_USER_TIMEOUT of stream sockets: two heartbeats */
    int stopping;
    struct event *heartbeat, *poll;
    mg_metric_t *m_streams, *m_events, *m_hints, *m_dropped;
} s_state_t;

struct s_stream {
    s_stream_t *prev, *next;
    s_state_t *st; /* NULL once the state is gone (freed when its read returns) */
    mg_gateway_t *gw;
    struct evhttp_request *req; /* NULL once the client is gone */
    struct evhttp_connection *evcon;
    char staff[MG_ID_MAX + 1];
    gq_pos_t pos;
    int have_pos;
    int busy;      /* a Redis read in flight */
    int auth_busy; /* a check of the token in flight */
    int again;     /* a wake-up came meanwhile: read once more */
    int closed;    /* ended or gone: freed once nothing is in flight */
    int dropped;   /* closed by s_drop(): s_on_close() is still to come */
    char *token;   /* the token that opened the stream, checked again at each heartbeat */
    size_t token_len;
    gw_request_t auth; /* what gw_authenticate() needs: only `gw` is set */
    long offset;
    gq_entry_t *entries;
    size_t count;
    int full;
};

static void s_read(s_stream_t *s);

/* TCP_USER_TIMEOUT of the connection's socket (0: the system's default). */
static void s_set_unacked_timeout(struct bufferevent *bev, unsigned int ms) {
    evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms)) != 0)
        mg_warn("gateway: TCP_USER_TIMEOUT on a stream: %s", strerror(errno));
}

static void s_stream_free(s_stream_t *s) {
    for (size_t i = 0; i < s->count; i++)
        json_decref(s->entries[i].json);
    free(s->entries);
    if (s->token) {
        explicit_bzero(s->token, s->token_len);
        free(s->token);
    }
    free(s);
}

/* Free a closed stream once no callback of ours can still arrive. */
static void s_maybe_free(s_stream_t *s) {
    if (s->closed && !s->dropped && !s->busy && !s->auth_busy) s_stream_free(s);
}

/* The stream is over: out of the state's list (and count), nothing more
 * sent or read; freed by s_maybe_free() once nothing of ours is in flight. */
static void s_close(s_stream_t *s) {
    s->closed = 1;
    s_state_t *st = s->st;
    s->st = NULL;
    if (!st) return;
    if (s->prev)
        s->prev->next = s->next;
    else if (st->head == s)
        st->head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    if (st->count) st->count--;
    mg_metrics_set(st->m_streams, st->count);
}

/* End the response (the client is still there): the terminating chunk is
 * written, then evhttp frees the request. */
static void s_end(s_stream_t *s) {
    if (s->closed) return;
    s_close(s);
    if (s->req) {
        evhttp_connection_set_closecb(s->evcon, NULL, NULL);
        /* The connection may be kept alive for another request: give it back
         * the server's timeouts and an unbounded read, as any other has. */
        evhttp_connection_set_timeout(s->evcon, S_HTTP_TIMEOUT_S);
        struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
        if (bev) {
            bufferevent_setwatermark(bev, EV_READ, 0, 0);
            s_set_unacked_timeout(bev, 0);
        }
        evhttp_send_reply_end(s->req);
        s->req = NULL;
    }
    s_maybe_free(s);
}

/* Drop a stream whose client does not read, or sends data: its backlog
 * (up to S_MAX_BACKLOG) and what it sent are thrown away and the socket shut
 * down, so evhttp closes the connection at once (s_on_close() follows, `s`
 * lives until then) instead of keeping the backlog for as long as the client
 * reads a byte now and then. The client comes back with its Last-Event-ID. */
static void s_drop(s_stream_t *s) {
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    if (s->closed || !bev) {
        s_end(s);
        return;
    }
    s_close(s);
    s->dropped = 1;
    struct evbuffer *out = bufferevent_get_output(bev), *in = bufferevent_get_input(bev);
    evbuffer_drain(out, evbuffer_get_length(out));
    evbuffer_drain(in, evbuffer_get_length(in));
    /* Reading again (a client that sent data stopped it at S_MAX_INPUT), so
     * that the end of the socket is seen. */
    bufferevent_setwatermark(bev, EV_READ, 0, 0);
    bufferevent_enable(bev, EV_READ);
    shutdown(bufferevent_getfd(bev), SHUT_RDWR);
}

/* The connection is going away (client closed, error, timeout, or the
 * server being freed). */
static void s_on_close(struct evhttp_connection *evcon, void *arg) {
    s_stream_t *s = arg;
    (void)evcon;
    s_close(s);
    s->dropped = 0;
    /* Detached (the client closed mid-stream): ours to free. Still attached
     * (the server is being freed): evhttp frees it. */
    if (s->req && evhttp_request_get_connection(s->req) == NULL) evhttp_send_reply_end(s->req);
    s->req = NULL;
    s_maybe_free(s);
}

static int s_send(s_stream_t *s, struct evbuffer *data) {
    if (s->closed || !s->req) return -1;
    evhttp_send_reply_chunk(s->req, data);
    struct bufferevent *bev = evhttp_connection_get_bufferevent(s->evcon);
    size_t backlog = bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
    size_t input = bev ? evbuffer_get_length(bufferevent_get_input(bev)) : 0;
    if (backlog > S_MAX_BACKLOG || input >= S_MAX_INPUT) {
        mg_warn("gateway: stream of %s dropped: %s", s->staff,
                backlog > S_MAX_BACKLOG ? "the client does not read" : "the client sends data");
        if (s->st) mg_metrics_inc(s->st->m_dropped);
        s_drop(s);
        return -1;
    }
    return 0;
}

/* Returns -1 when the stream ended (`s` may be gone). */
static int s_send_text(s_stream_t *s, const char *text) {
    struct evbuffer *b = evbuffer_new();
    if (!b) return 0;
    evbuffer_add(b, text, strlen(text));
    int rc = s_send(s, b);
    evbuffer_free(b);
    return rc;
}

/* ---- reading the inbox ------------------------------------------------------------------ */

/* A read is over: forget its entries, free a stream that closed meanwhile,
 * read again if asked. */
static void s_read_done(s_stream_t *s, int more) {
    for (size_t i = 0; i < s->count; i++)
        json_decref(s->entries[i].json);
    free(s->entries);
    s->entries = NULL;
    s->count = 0;
    s->busy = 0;
    if (s->closed) {
        s_maybe_free(s);
        return;
    }
    if (more || s->again) s_read(s);
}

static void s_on_loaded(void *arg, gq_entry_t *entries, size_t count, int ok) {
    s_stream_t *s = arg;
    if (!ok || s->closed) {
        /* Redis failed: the poll tries again from the same position. */
        s_read_done(s, 0);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    size_t sent = 0;
    for (size_t i = 0; b && i < count; i++) {
        const gq_entry_t *e = &entries[i];
        /* A record gone already (retention) is passed over, not resent. */
        s->pos.ms = e->ms;
        snprintf(s->pos.nid, sizeof(s->pos.nid), "%s", e->nid);
        s->have_pos = 1;
        if (!e->json) continue;
        char *line = json_dumps(e->json, JSON_COMPACT | JSON_REAL_PRECISION(15));
        if (!line) continue;
        evbuffer_add_printf(b, "id: %lld-%s\nevent: notification\ndata: %s\n\n", (long long)e->ms, e->nid,
                            line);
        free(line);
        sent++;
    }
    if (b) {
        if (evbuffer_get_length(b)) s_send(s, b);
        evbuffer_free(b);
    }
    if (s->st) mg_metrics_add(s->st->m_events, sent);
    s_read_done(s, s->full);
}

static void s_on_range(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_stream_t *s = privdata;
    (void)redis;
    if (s->closed || !reply || reply->type != REDIS_REPLY_ARRAY) {
        s_read_done(s, 0);
        return;
    }
    size_t fetched = reply->elements / 2, skipped = 0;
    s->entries = mg_calloc(fetched ? fetched : 1, sizeof(gq_entry_t));
    s->count = 0;
    for (size_t i = 0; i < fetched; i++) {
        const char *nid = gq_str(reply->element[2 * i]), *score = gq_str(reply->element[2 * i + 1]);
        int64_t ms = score ? (int64_t)strtoll(score, NULL, 10) : 0;
        /* At or before the position: sent already (same millisecond). */
        if (!nid || !score || !mg_id_is_valid(nid) || (s->have_pos && gq_pos_cmp(ms, nid, &s->pos) <= 0)) {
            skipped++;
            continue;
        }
        gq_entry_t *e = &s->entries[s->count++];
        snprintf(e->nid, sizeof(e->nid), "%s", nid);
        e->ms = ms;
    }
    s->full = fetched == S_BATCH;
    if (s->count == 0) {
        /* A whole batch at the position's millisecond: look past it. */
        int ties = s->full && skipped == fetched;
        s->offset = ties ? s->offset + S_BATCH : 0;
        s_read_done(s, ties);
        return;
    }
    s->offset = 0;
    if (gq_notifs_load(s->gw, s->staff, s->entries, s->count, s_on_loaded, s) != 0) s_read_done(s, 0);
}

static void s_read(s_stream_t *s) {
    if (s->closed) return;
    if (s->busy) {
        s->again = 1;
        return;
    }
    char min[32];
    if (s->have_pos)
        snprintf(min, sizeof(min), "%lld", (long long)s->pos.ms);
    else
        snprintf(min, sizeof(min), "-inf");
    s->again = 0;
    if (mg_redis_command(gw_redis(s->gw), s_on_range, s,
                         "ZRANGEBYSCORE mg:inbox:%s %s +inf WITHSCORES LIMIT %ld %d", s->staff, min,
                         s->offset, S_BATCH) == 0)
        s->busy = 1;
}

/* Without Last-Event-ID: start at the newest entry (only what follows is
 * sent). */
static void s_on_start(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_stream_t *s = privdata;
    (void)redis;
    s->busy = 0;
    if (s->closed) {
        s_maybe_free(s);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        /* Redis is down: end the response; the browser reconnects (retry). */
        s_end(s);
        return;
    }
    const char *nid = reply->elements == 2 ? gq_str(reply->element[0]) : NULL;
    const char *score = reply->elements == 2 ? gq_str(reply->element[1]) : NULL;
    /* An empty inbox: everything that arrives is new. (A newest entry with
     * a damaged id: after its millisecond.) */
    s->pos.ms = score ? (int64_t)strtoll(score, NULL, 10) : 0;
    snprintf(s->pos.nid, sizeof(s->pos.nid), "%s", nid && mg_id_is_valid(nid) ? nid : "0");
    s->have_pos = 1;
    /* The starting position, so that a client cut off before the first
     * notification resumes from here, not from "now" (which would skip what
     * arrived meanwhile). */
    char id[64 + 2 * MG_ID_MAX];
    snprintf(id, sizeof(id), "id: %lld-%s\nevent: position\ndata: %lld-%s\n\n", (long long)s->pos.ms,
             s->pos.nid, (long long)s->pos.ms, s->pos.nid);
    if (s_send_text(s, id) != 0) return;
    if (s->again) s_read(s);
}

/* ---- the token, checked again --------------------------------------------------------------- */

/* The token of the request, as the router found it: the bearer token, or
 * else the session cookie. Caller owns the result (NULL if none). */
static char *s_request_token(gw_request_t *r, size_t *len) {
    const char *token = NULL;
    *len = 0;
    if (!mg_http_credential(gw_request_header(r, "Authorization"), gw_request_header(r, "Cookie"), &token,
                            len))
        return NULL;
    return mg_strndup(token, *len);
}

/* A stream outlives the token cache: each heartbeat checks its token again
 * (the cache answers, or Redis when a revocation dropped the entry), so a
 * revoked token's streams end within stream_heartbeat_s. */
static void s_on_reauth(gw_request_t *r, int status, const gw_principal_t *who) {
    s_stream_t *s = (s_stream_t *)(void *)((char *)r - offsetof(s_stream_t, auth));
    s->auth_busy = 0;
    if (s->closed) {
        s_maybe_free(s);
        return;
    }
    /* 503: Redis is down; the stream goes on, the next heartbeat asks again. */
    if (status == 401 || (status == 200 && (who->kind != GW_STAFF || strcmp(who->subject, s->staff) != 0))) {
        mg_info("gateway: stream of %s ended: its token is no longer valid", s->staff);
        s_end(s);
    }
}

static void s_reauth(s_stream_t *s) {
    if (s->closed || s->auth_busy || !s->token) return;
    s->auth_busy = 1;
    gw_authenticate(&s->auth, s->token, s->token_len, s_on_reauth);
}

/* ---- GET /v1/stream ----------------------------------------------------------------------- */

static void s_stream(gw_request_t *r) {
    s_state_t *st = gw_part(r->gw, GW_PART_STREAM);
    if (!st || st->stopping) {
        gw_header(r, "Retry-After", "1");
        gw_reply_error(r, 503, "stopping", NULL, -1, "the gateway is stopping; retry later");
        return;
    }
    long mine = 0;
    for (const s_stream_t *o = st->head; o; o = o->next)
        mine += strcmp(o->staff, r->who.subject) == 0;
    if (mine >= st->max_per_staff) {
        gw_header(r, "Retry-After", "5");
        gw_reply_error(r, 429, "too_many_streams_for_staff", NULL, -1,
                       "%ld live streams of this staff member already (stream_max_per_staff)", mine);
        return;
    }
    if (st->count >= (size_t)st->max) {
        gw_header(r, "Retry-After", "5");
        gw_reply_error(r, 503, "too_many_streams", NULL, -1, "%ld live streams already (stream_max_clients)",
                       st->max);
        return;
    }
    const char *last = gw_request_header(r, "Last-Event-ID");
    if (!last || !*last) last = gw_query(r, "lastEventId");
    gq_pos_t pos;
    int have_pos = last && *last;
    if (have_pos && gq_pos_parse(last, &pos) != 0) {
        gw_reply_error(r, 400, "invalid_parameter", "Last-Event-ID", -1,
                       "Last-Event-ID must be an id this stream sent (\"<ms>-<notification id>\")");
        return;
    }
    if (r->method == EVHTTP_REQ_HEAD) {
        gw_header(r, "Content-Type", "text/event-stream; charset=utf-8");
        gw_header(r, "Cache-Control", "no-cache");
        gw_reply_bytes(r, 200, NULL, NULL, 0);
        return;
    }
    if (!mg_redis_is_up(gw_redis(r->gw))) {
        gw_reply_unavailable(r, "Redis");
        return;
    }
    struct evhttp_request *req = r->req;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon) {
        gw_reply_error(r, 400, "bad_request", NULL, -1, "no connection");
        return;
    }
    s_stream_t *s = mg_calloc(1, sizeof(*s));
    s->st = st;
    s->gw = r->gw;
    s->req = req;
    s->evcon = evcon;
    snprintf(s->staff, sizeof(s->staff), "%s", r->who.subject);
    s->token = s_request_token(r, &s->token_len);
    s->auth.gw = r->gw;
    if (have_pos) {
        s->pos = pos;
        s->have_pos = 1;
    }
    gw_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    gw_header(r, "Cache-Control", "no-cache");
    gw_header(r, "X-Accel-Buffering", "no");
    gw_header(r, "X-Content-Type-Options", "nosniff");
    gw_request_release(r);

    evhttp_send_reply_start(req, 200, "OK");
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    if (bev) {
        struct timeval write_tv = {S_WRITE_TIMEOUT_S, 0};
        bufferevent_set_timeouts(bev, NULL, &write_tv);
        /* Reading stays on (a close is seen at once) but bounded. */
        bufferevent_setwatermark(bev, EV_READ, 0, S_MAX_INPUT);
        s_set_unacked_timeout(bev, st->unacked_ms);
    }
    evhttp_connection_set_closecb(evcon, s_on_close, s);
    s->next = st->head;
    if (st->head) st->head->prev = s;
    st->head = s;
    st->count++;
    mg_metrics_set(st->m_streams, st->count);
    if (s_send_text(s, "retry: 2000\n\n") != 0) return;
    if (s->have_pos) {
        s_read(s);
        return;
    }
    mg_redis_t *redis = gw_redis(s->gw);
    if (mg_redis_command(redis, s_on_start, s, "ZRANGE mg:inbox:%s -1 -1 WITHSCORES", s->staff) == 0)
        s->busy = 1;
    else
        s_end(s);
}

/* ---- timers, hooks ------------------------------------------------------------------------- */

static void s_on_heartbeat(evutil_socket_t fd, short what, void *arg) {
    s_state_t *st = arg;
    (void)fd;
    (void)what;
    for (s_stream_t *s = st->head, *next; s; s = next) {
        next = s->next;
        if (s_send_text(s, ": ping\n\n") == 0) s_reauth(s);
    }
}

static void s_on_poll(evutil_socket_t fd, short what, void *arg) {
    s_state_t *st = arg;
    (void)fd;
    (void)what;
    for (s_stream_t *s = st->head, *next; s; s = next) {
        next = s->next;
        if (s->have_pos) s_read(s);
    }
}

void gw_stream_inbox_changed(mg_gateway_t *gw, const char *staff_id) {
    s_state_t *st = gw_part(gw, GW_PART_STREAM);
    if (!st || !staff_id) return;
    for (s_stream_t *s = st->head, *next; s; s = next) {
        next = s->next;
        if (strcmp(s->staff, staff_id) != 0) continue;
        if (s->have_pos)
            s_read(s);
        else
            s->again = 1; /* still finding where to start */
    }
}

void gw_stream_match_changed(mg_gateway_t *gw, const char *match_id) {
    s_state_t *st = gw_part(gw, GW_PART_STREAM);
    if (!st || st->stopping || !st->head) return;
    /* No id: line: a hint must not move the client's inbox position. */
    char text[64 + MG_ID_MAX];
    if (match_id)
        snprintf(text, sizeof(text), "event: match\ndata: {\"matchId\":\"%s\"}\n\n", match_id);
    else
        snprintf(text, sizeof(text), "event: match\ndata: {\"all\":true}\n\n");
    size_t sent = 0;
    for (s_stream_t *s = st->head, *next; s; s = next) {
        next = s->next;
        if (s_send_text(s, text) == 0) sent++;
    }
    mg_metrics_add(st->m_hints, sent);
}

void gw_stream_shutdown(mg_gateway_t *gw) {
    s_state_t *st = gw_part(gw, GW_PART_STREAM);
    if (!st) return;
    st->stopping = 1;
    if (st->heartbeat) event_del(st->heartbeat);
    if (st->poll) event_del(st->poll);
    size_t n = st->count;
    while (st->head)
        s_end(st->head);
    if (n) mg_info("gateway: %zu live stream(s) ended", n);
}

static void s_state_destroy(void *arg) {
    s_state_t *st = arg;
    if (!st) return;
    gw_stream_shutdown(st->gw);
    /* Streams ended while a read was in flight are freed when it returns;
     * they no longer point to this state. (s_end() unlinked them all.) */
    if (st->heartbeat) event_free(st->heartbeat);
    if (st->poll) event_free(st->poll);
    free(st);
}

void gw_stream_register(mg_gateway_t *gw) {
    const mg_config_t *cfg = gw_config(gw);
    s_state_t *st = mg_calloc(1, sizeof(*st));
    st->gw = gw;
    st->max = mg_config_int(cfg, "gateway", "stream_max_clients");
    st->max_per_staff = mg_config_int(cfg, "gateway", "stream_max_per_staff");
    long heartbeat_s = mg_config_int(cfg, "gateway", "stream_heartbeat_s");
    if (heartbeat_s <= 0) heartbeat_s = 15;
    st->unacked_ms = (unsigned int)(2 * heartbeat_s * 1000);
    st->m_streams = mg_metrics_gauge("maillage_gateway_streams", "Live streams (GET /v1/stream) open now.");
    st->m_events =
        mg_metrics_counter("maillage_gateway_stream_events_total", "Notifications sent on live streams.");
    st->m_dropped = mg_metrics_counter("maillage_gateway_streams_dropped_total",
                                       "Live streams ended for a client not reading.");
    st->m_hints = mg_metrics_counter("maillage_gateway_stream_match_hints_total",
                                     "Hints of a retired or revised match sent on live streams.");
    st->heartbeat = event_new(gw_base(gw), -1, EV_PERSIST, s_on_heartbeat, st);
    st->poll = event_new(gw_base(gw), -1, EV_PERSIST, s_on_poll, st);
    struct timeval hb = {heartbeat_s, 0};
    struct timeval poll = {S_POLL_MS / 1000, (S_POLL_MS % 1000) * 1000};
    if (st->heartbeat) event_add(st->heartbeat, &hb);
    if (st->poll) event_add(st->poll, &poll);
    gw_part_set(gw, GW_PART_STREAM, st, s_state_destroy);
    gw_route(gw, EVHTTP_REQ_GET, "/v1/stream", GW_STAFF, "lastEventId", s_stream);
}
