/* producer.c -- envelopes to the broker from inside an event loop, with
 * retries and never a drop.
 *
 * Each envelope is an s_item_t, found by (relayed network, event_id) in a
 * chained hash table -- two networks may use the same id --
 * and either waiting (FIFO, beyond the window) or in flight (sent, with a
 * deadline for resending). One timer, armed only while something is in
 * flight, walks the in-flight items: at most `window` of them, so a scan per
 * tick is cheap and needs no priority queue. Acks come back in any order and
 * are matched the same way; an ack for an id no longer pending (the answer to
 * a retry already answered) is ignored. */
#include "maillage/producer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "maillage/clock.h"
#include "maillage/curve.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/zsock.h"

#define S_TICK_MS 50
#define S_DEFAULT_WINDOW 1000
#define S_DEFAULT_RETRY_MS 2000
#define S_DEFAULT_BACKOFF_MAX_MS 5000

typedef struct s_item {
    struct s_item *hnext;        /* hash chain */
    struct s_item *prev, *next;  /* the waiting queue or the in-flight list */
    char event_id[MG_ID_MAX + 1];
    char on_behalf_of[MG_ID_MAX + 1]; /* "" when sent in the producer's own name */
    uint8_t *data;
    size_t len;
    int inflight;
    int64_t resend_at_us;
    int64_t backoff_us; /* after UNAVAILABLE; doubles */
} s_item_t;

typedef struct {
    s_item_t *head, *tail;
    size_t count;
} s_list_t;

struct mg_producer {
    struct event_base *base;
    void *socket;
    mg_zsock_t *zsock;
    struct event *timer;
    int timer_armed;
    mg_producer_ack_fn on_ack;
    void *arg;
    size_t window;
    int64_t retry_us, backoff_max_us;
    size_t buckets;
    s_item_t **table;
    s_list_t waiting, inflight;
    mg_producer_stats_t stats;
    int64_t warned_us; /* the last "retrying with backoff" warning: at most one per 10 s */
    int retry_rate_limited;
    void *monitor;               /* PAIR reading libzmq's events of `socket` */
    mg_zsock_t *monitor_zsock;
    int connected;               /* a handshake with the broker succeeded, no disconnect since */
    int handshake_warned;        /* a failed handshake was logged, none succeeded since */
    char *endpoint;
};

/* ---- lists and table ------------------------------------------------------ */

static void s_list_push(s_list_t *l, s_item_t *it) {
    it->next = NULL;
    it->prev = l->tail;
    if (l->tail) l->tail->next = it;
    else l->head = it;
    l->tail = it;
    l->count++;
}

static void s_list_remove(s_list_t *l, s_item_t *it) {
    if (it->prev) it->prev->next = it->next;
    else l->head = it->next;
    if (it->next) it->next->prev = it->prev;
    else l->tail = it->prev;
    it->prev = it->next = NULL;
    l->count--;
}

static size_t s_hash(const mg_producer_t *p, const char *on_behalf_of, const char *event_id) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a over "network NUL id" */
    for (const char *c = on_behalf_of; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    h *= 1099511628211ull;
    for (const char *c = event_id; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
    return (size_t)(h % p->buckets);
}

/* Double the table when it holds twice as many items as buckets: waiting
 * items are not bounded by the window (nothing is ever dropped). */
static void s_grow(mg_producer_t *p) {
    size_t count = p->waiting.count + p->inflight.count;
    if (count < p->buckets * 2) return;
    size_t old_buckets = p->buckets;
    s_item_t **old = p->table;
    p->buckets = old_buckets * 2 + 1;
    p->table = mg_calloc(p->buckets, sizeof(*p->table));
    for (size_t b = 0; b < old_buckets; b++) {
        while (old[b]) {
            s_item_t *it = old[b];
            old[b] = it->hnext;
            size_t h = s_hash(p, it->on_behalf_of, it->event_id);
            it->hnext = p->table[h];
            p->table[h] = it;
        }
    }
    free(old);
}

static s_item_t **s_slot(mg_producer_t *p, const char *on_behalf_of, const char *event_id) {
    s_item_t **slot = &p->table[s_hash(p, on_behalf_of, event_id)];
    while (*slot && (strcmp((*slot)->event_id, event_id) != 0 || strcmp((*slot)->on_behalf_of, on_behalf_of) != 0))
        slot = &(*slot)->hnext;
    return slot;
}

/* ---- sending ----------------------------------------------------------------- */

static void s_arm(mg_producer_t *p) {
    if (p->timer_armed || p->inflight.count == 0) return;
    struct timeval tv = {0, S_TICK_MS * 1000};
    event_add(p->timer, &tv);
    p->timer_armed = 1;
}

/* Send (or resend) one item. On a full queue (EAGAIN) it stays in flight and
 * the timer retries it soon; the ack it would have had is not lost, only
 * late. */
static void s_transmit(mg_producer_t *p, s_item_t *it, int64_t now) {
    char header[sizeof(MG_RELAY_PREFIX) + MG_ID_MAX];
    const void *frames[2] = {header, it->data};
    size_t lens[2] = {0, it->len};
    size_t count = 2;
    if (*it->on_behalf_of) {
        lens[0] = (size_t)snprintf(header, sizeof(header), MG_RELAY_PREFIX "%s", it->on_behalf_of);
    } else {
        frames[0] = it->data;
        lens[0] = it->len;
        count = 1;
    }
    if (mg_zsock_send(p->zsock, frames, lens, count) == 0) {
        it->resend_at_us = now + p->retry_us;
    } else {
        if (errno != EAGAIN) mg_debug("producer: send %s: %s", it->event_id, zmq_strerror(errno));
        it->resend_at_us = now + 100000;
    }
}

/* Move waiting items into flight while the window allows. */
static void s_fill_window(mg_producer_t *p) {
    int64_t now = mg_clock_monotonic_us();
    while (p->waiting.head && p->inflight.count < p->window) {
        s_item_t *it = p->waiting.head;
        s_list_remove(&p->waiting, it);
        it->inflight = 1;
        s_list_push(&p->inflight, it);
        p->stats.sent++;
        s_transmit(p, it, now);
    }
    s_arm(p);
}

static void s_forget(mg_producer_t *p, s_item_t **slot) {
    s_item_t *it = *slot;
    *slot = it->hnext;
    s_list_remove(it->inflight ? &p->inflight : &p->waiting, it);
    free(it->data);
    free(it);
}

int mg_producer_send(mg_producer_t *p, const char *event_id, const uint8_t *envelope, size_t len) {
    return mg_producer_send_as(p, NULL, event_id, envelope, len);
}

int mg_producer_send_as(mg_producer_t *p, const char *on_behalf_of, const char *event_id, const uint8_t *envelope,
                        size_t len) {
    if (!mg_id_is_valid(event_id)) return -1;
    if (!on_behalf_of) on_behalf_of = "";
    else if (!mg_id_is_valid(on_behalf_of)) return -1;
    s_item_t **slot = s_slot(p, on_behalf_of, event_id);
    if (*slot) return 1;
    s_grow(p);
    slot = s_slot(p, on_behalf_of, event_id);
    s_item_t *it = mg_calloc(1, sizeof(*it));
    snprintf(it->event_id, sizeof(it->event_id), "%s", event_id);
    snprintf(it->on_behalf_of, sizeof(it->on_behalf_of), "%s", on_behalf_of);
    it->data = mg_malloc(len ? len : 1);
    memcpy(it->data, envelope, len);
    it->len = len;
    it->hnext = NULL;
    *slot = it;
    s_list_push(&p->waiting, it);
    s_fill_window(p);
    return 0;
}

/* ---- acks and timer ------------------------------------------------------------ */

static void s_on_message(mg_zsock_t *zsock, zmq_msg_t *frames, size_t frame_count, void *arg) {
    mg_producer_t *p = arg;
    (void)zsock;
    if (frame_count != 1) return;
    mg_ack_t *ack = mg_ack_unpack(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]));
    if (!ack) {
        mg_warn("producer: unreadable ack (%zu bytes) ignored", zmq_msg_size(&frames[0]));
        return;
    }
    s_item_t **slot =
        ack->event_id && *ack->event_id ? s_slot(p, ack->on_behalf_of ? ack->on_behalf_of : "", ack->event_id) : NULL;
    if (!slot || !*slot || !(*slot)->inflight) goto done;
    s_item_t *it = *slot;
    int rate_limited = ack->status == MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED && p->retry_rate_limited &&
                       ack->reason && strncmp(ack->reason, MG_RATE_LIMITED, strlen(MG_RATE_LIMITED)) == 0;
    switch (rate_limited ? MAILLAGE__V1__ACK__STATUS__STATUS_UNAVAILABLE : ack->status) {
    case MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED:
    case MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE:
    case MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED: {
        if (ack->status == MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED) p->stats.accepted++;
        else if (ack->status == MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE) p->stats.duplicate++;
        else p->stats.rejected++;
        char id[MG_ID_MAX + 1], behalf[MG_ID_MAX + 1];
        memcpy(id, it->event_id, sizeof(id));
        memcpy(behalf, it->on_behalf_of, sizeof(behalf));
        s_forget(p, slot);
        /* The callback may send: fill the window after it. */
        if (p->on_ack)
            p->on_ack(p, *behalf ? behalf : NULL, id, ack->status, ack->sequence, ack->reason ? ack->reason : "",
                      p->arg);
        s_fill_window(p);
        break;
    }
    case MAILLAGE__V1__ACK__STATUS__STATUS_UNAVAILABLE:
        if (rate_limited) p->stats.rate_limited++;
        else p->stats.unavailable++;
        if (!p->warned_us || mg_clock_monotonic_us() - p->warned_us >= 10 * 1000000) {
            mg_warn("producer: the broker answers %s (%s); retrying with backoff",
                    rate_limited ? "over the rate limit" : "unavailable",
                    ack->reason && *ack->reason ? ack->reason : "journal unavailable");
            p->warned_us = mg_clock_monotonic_us();
        }
        it->backoff_us = it->backoff_us ? it->backoff_us * 2 : 100000;
        if (it->backoff_us > p->backoff_max_us) it->backoff_us = p->backoff_max_us;
        it->resend_at_us = mg_clock_monotonic_us() + it->backoff_us;
        break;
    default:
        break; /* unknown status: the retry timer sends it again */
    }
done:
    mg_ack_free(ack);
}

static void s_on_timer(evutil_socket_t fd, short what, void *arg) {
    mg_producer_t *p = arg;
    (void)fd;
    (void)what;
    p->timer_armed = 0;
    int64_t now = mg_clock_monotonic_us();
    for (s_item_t *it = p->inflight.head; it; it = it->next) {
        if (now >= it->resend_at_us) {
            p->stats.resent++;
            s_transmit(p, it, now);
        }
    }
    s_arm(p);
}

/* libzmq's socket monitor: frame 1 is a 16-bit event and a 32-bit value
 * (host order), frame 2 the endpoint. Only "is the broker there" matters. */
static void s_on_monitor(mg_zsock_t *zsock, zmq_msg_t *frames, size_t frame_count, void *arg) {
    mg_producer_t *p = arg;
    (void)zsock;
    if (frame_count < 1 || zmq_msg_size(&frames[0]) < 2) return;
    uint16_t event;
    uint32_t value = 0;
    memcpy(&event, zmq_msg_data(&frames[0]), sizeof(event));
    if (zmq_msg_size(&frames[0]) >= 6)
        memcpy(&value, (const char *)zmq_msg_data(&frames[0]) + 2, sizeof(value));
    char why[256];
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        p->connected = 1;
        if (p->handshake_warned) mg_info("producer: connected to the broker at %s", p->endpoint);
        p->handshake_warned = 0;
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
        p->connected = 0;
    } else if (mg_curve_handshake_failure(event, value, why, sizeof why) && !p->handshake_warned) {
        /* ZeroMQ retries every 100 ms: once per streak of failures. */
        mg_warn("producer: %s: %s; retrying", p->endpoint, why);
        p->handshake_warned = 1;
    }
}

/* ---- life cycle ----------------------------------------------------------------- */

mg_producer_t *mg_producer_new(struct event_base *base, void *zmq_context, const mg_producer_options_t *opts,
                               mg_producer_ack_fn on_ack, void *arg, char *err, size_t errlen) {
    mg_producer_t *p = mg_calloc(1, sizeof(*p));
    p->base = base;
    p->on_ack = on_ack;
    p->arg = arg;
    p->window = opts->window ? opts->window : S_DEFAULT_WINDOW;
    p->retry_us = (int64_t)(opts->retry_ms > 0 ? opts->retry_ms : S_DEFAULT_RETRY_MS) * 1000;
    p->retry_rate_limited = opts->retry_rate_limited;
    p->backoff_max_us = (int64_t)(opts->backoff_max_ms > 0 ? opts->backoff_max_ms : S_DEFAULT_BACKOFF_MAX_MS) * 1000;
    p->buckets = p->window * 2 + 1;
    p->table = mg_calloc(p->buckets, sizeof(*p->table));

    p->socket = zmq_socket(zmq_context, ZMQ_DEALER);
    if (!p->socket) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        goto err;
    }
    int hwm = (int)(p->window * 2 + 1000), linger = 0;
    zmq_setsockopt(p->socket, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(p->socket, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(p->socket, ZMQ_LINGER, &linger, sizeof(linger));
    /* A CURVE client when the process was given keys (curve.h). */
    if (mg_curve_client_apply(p->socket) != 0) {
        snprintf(err, errlen, "cannot enable CURVE on the producer: %s", zmq_strerror(errno));
        goto err;
    }
    char monitor_endpoint[64];
    snprintf(monitor_endpoint, sizeof(monitor_endpoint), "inproc://mg-producer-monitor-%p", (void *)p);
    p->endpoint = mg_strdup(opts->endpoint ? opts->endpoint : "(none)");
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    if (zmq_socket_monitor(p->socket, monitor_endpoint, events) != 0 ||
        !(p->monitor = zmq_socket(zmq_context, ZMQ_PAIR)) ||
        zmq_setsockopt(p->monitor, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_connect(p->monitor, monitor_endpoint) != 0 ||
        !(p->monitor_zsock = mg_zsock_new(base, p->monitor, 64, s_on_monitor, NULL, p))) {
        snprintf(err, errlen, "cannot monitor the ingest socket: %s", zmq_strerror(errno));
        goto err;
    }
    if (!opts->endpoint || zmq_connect(p->socket, opts->endpoint) != 0) {
        snprintf(err, errlen, "cannot connect to the broker's ingest %s: %s", opts->endpoint ? opts->endpoint : "(none)",
                 zmq_strerror(errno));
        goto err;
    }
    p->zsock = mg_zsock_new(base, p->socket, 256, s_on_message, NULL, p);
    p->timer = evtimer_new(base, s_on_timer, p);
    if (!p->zsock || !p->timer) {
        snprintf(err, errlen, "cannot watch the ingest socket: %s", strerror(errno));
        goto err;
    }
    return p;
err:
    mg_producer_destroy(&p);
    return NULL;
}

int mg_producer_connected(const mg_producer_t *p) {
    return p->connected;
}

size_t mg_producer_pending(const mg_producer_t *p) {
    return p->waiting.count + p->inflight.count;
}

void mg_producer_stats(const mg_producer_t *p, mg_producer_stats_t *out) {
    *out = p->stats;
}

void mg_producer_destroy(mg_producer_t **producer_p) {
    if (!producer_p || !*producer_p) return;
    mg_producer_t *p = *producer_p;
    for (size_t b = 0; p->table && b < p->buckets; b++) {
        while (p->table[b]) {
            s_item_t *it = p->table[b];
            p->table[b] = it->hnext;
            free(it->data);
            free(it);
        }
    }
    free(p->table);
    free(p->endpoint);
    if (p->timer) event_free(p->timer);
    mg_zsock_destroy(&p->zsock);
    mg_zsock_destroy(&p->monitor_zsock);
    if (p->monitor) zmq_close(p->monitor);
    if (p->socket) {
        zmq_socket_monitor(p->socket, NULL, 0);
        zmq_close(p->socket);
    }
    free(p);
    *producer_p = NULL;
}
