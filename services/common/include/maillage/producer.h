/* producer.h -- an asynchronous producer for daemons: send envelopes to the
 * broker's ingest inside a libevent loop, get each one's ack by callback.
 *
 * A DEALER connected to [broker] ingest, watched with mg_zsock. Each
 * envelope is kept (by event_id) until the broker answers ACCEPTED,
 * DUPLICATE or REJECTED: one without an answer after retry_ms is sent again
 * with the SAME event_id (the broker journals an id once, so a retry is always
 * safe), one answered UNAVAILABLE (or rate-limited, if asked) is sent again
 * after a growing backoff. At most `window` envelopes are in flight; the
 * others wait in order. Nothing is ever dropped: an envelope leaves only with
 * its final answer, or when the producer is destroyed (callers that need more
 * than that keep an outbox, like the matcher does in Redis).
 *
 * Runs in the thread of the event base. */
#ifndef MAILLAGE_PRODUCER_H
#define MAILLAGE_PRODUCER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "maillage/envelope.h"

typedef struct mg_producer mg_producer_t;

/* The final answer for one event id: status is ACCEPTED, DUPLICATE (both mean
 * "journaled", at `sequence`) or REJECTED (with `reason`, never retried).
 * `on_behalf_of` is the network given to mg_producer_send_as(), NULL for
 * mg_producer_send(). Strings are borrowed until the callback returns. Called
 * once per (on_behalf_of, event id) accepted by mg_producer_send[_as](). The
 * callback may send. */
typedef void (*mg_producer_ack_fn)(mg_producer_t *producer, const char *on_behalf_of, const char *event_id,
                                   Maillage__V1__Ack__Status status, uint64_t sequence, const char *reason,
                                   void *arg);

typedef struct {
    const char *endpoint; /* the broker's ingest ("tcp://127.0.0.1:7450") */
    size_t window;        /* envelopes in flight at most (default 1000) */
    int retry_ms;         /* resend after this long without an answer (default 2000) */
    int backoff_max_ms;   /* longest delay after UNAVAILABLE (default 5000) */
    /* 1: a REJECTED over the source's rate limit (reason starting with
     * MG_RATE_LIMITED) is not final: sent again after the backoff, like
     * UNAVAILABLE. For a daemon whose events must all be journaled (the
     * matcher: its decisions are recorded before they are sent); the gateway
     * answers its HTTP client 429 instead. */
    int retry_rate_limited;
} mg_producer_options_t;

/* Create a producer in `base` on `zmq_context` (borrowed; must outlive it).
 * Options are copied; zero values take their defaults. Returns NULL with a
 * reason in `err`. Caller owns the result. */
mg_producer_t *mg_producer_new(struct event_base *base, void *zmq_context, const mg_producer_options_t *opts,
                               mg_producer_ack_fn on_ack, void *arg, char *err, size_t errlen);

/* Queue a serialized Envelope whose event_id is `event_id` (the bytes are
 * copied). If that id is already waiting or in flight, nothing more is sent
 * and the one answer will serve both (returns 1). Returns 0 when queued, -1
 * if `event_id` is not a valid id. */
int mg_producer_send(mg_producer_t *producer, const char *event_id, const uint8_t *envelope, size_t len);

/* Relay: the same, but the broker stamps network `on_behalf_of` as the source
 * (sent as the header frame MG_RELAY_PREFIX "<network>" before the Envelope;
 * the broker allows it on loopback, and with CURVE only to a client whose
 * allow-list grants "relay"). Pending envelopes are keyed by (network,
 * event id): two networks may use the same id. NULL means the producer's own
 * name, like mg_producer_send(). Returns as mg_producer_send(), and -1 when
 * `on_behalf_of` is not a valid id. */
int mg_producer_send_as(mg_producer_t *producer, const char *on_behalf_of, const char *event_id,
                        const uint8_t *envelope, size_t len);

/* 1 while the broker is connected (a ZMTP handshake succeeded -- with CURVE,
 * the key was accepted -- and no disconnection since), else 0. From libzmq's
 * socket monitor, so it follows the broker going away and coming back
 * without any traffic. */
int mg_producer_connected(const mg_producer_t *producer);

/* Envelopes without a final answer yet (in flight and waiting). */
size_t mg_producer_pending(const mg_producer_t *producer);

/* Answers received so far of each kind, for metrics and tests. */
typedef struct {
    uint64_t sent, resent, accepted, duplicate, rejected, unavailable;
    uint64_t rate_limited; /* refusals over the rate limit sent again (retry_rate_limited) */
} mg_producer_stats_t;
void mg_producer_stats(const mg_producer_t *producer, mg_producer_stats_t *out);

/* Free; accepts NULL and sets *producer_p to NULL. Envelopes still pending
 * are forgotten without a callback. */
void mg_producer_destroy(mg_producer_t **producer_p);

#endif
