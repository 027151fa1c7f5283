/* broker.h -- the broker's logic: ingest, validate, journal, ack, publish.
 *
 * Producers' DEALERs send one frame (a serialized Envelope) to the ROUTER at
 * [broker] ingest and get one frame back (a serialized Ack). Each envelope is
 * checked (size, protobuf, mg_envelope_validate), stamped (source,
 * received_at_ms, schema_version), appended to the journal in Redis with its
 * batch (one script call per batch drained from the socket), acknowledged
 * only once Redis confirmed, then published on the PUB socket at
 * [broker] fanout as [type][sequence, 8 bytes big-endian][envelope with its
 * sequence]. Rejected input goes to the dead-letter stream.
 *
 * Personal data never enters the journal (nor, therefore, the fan-out): the
 * contact of a member.joined / member.updated is taken out of the envelope,
 * which is journaled re-encoded without it, and kept in mg:contact:<sid> by
 * the same append script call, only if the event is journaled (not for a
 * duplicate); a member.updated without a contact and a member.left delete
 * it. Dead letters keep the raw bytes received, contact included: `maillage
 * forget` erases them.
 *
 * Every [broker] heartbeat_ms it also publishes [_heartbeat][last journaled
 * sequence, 8 bytes big-endian] (MG_HEARTBEAT_TOPIC, subscriber.h), after the
 * publications of the sequences it announces, so subscribers can detect
 * events journaled but never published. Every [broker] retention_interval_s
 * it trims the journal by age and size, never past the slowest registered
 * consumer unless [broker] retention_force is set.
 *
 * With [broker] curve_secret_key_file both sockets are CURVE servers behind
 * a ZAP allow-list (curve.h): the source stamped is the network of the
 * client's key, and each source may emit only the types its line lists
 * (REJECTED "network X may not emit T" otherwise, dead-lettered). Without
 * CURVE the source is [broker] network and endpoints beyond loopback are
 * refused unless allow_insecure_remote. [broker] rate_limit_per_s limits
 * each source (REJECTED "rate limit: ...", not dead-lettered).
 *
 * Everything runs in the thread of the event base given to mg_broker_new(). */
#ifndef MAILLAGE_BROKER_H
#define MAILLAGE_BROKER_H

#include <stddef.h>

#include <event2/event.h>

#include "maillage/config.h"

typedef struct mg_broker mg_broker_t;

/* Bind the sockets and start connecting to Redis, in `base`. `cfg` is
 * borrowed and must outlive the broker. Returns NULL with one line in `err`
 * on a configuration or start-up error (unreadable commune table, endpoint
 * that cannot be bound, ...). Caller owns the result. */
mg_broker_t *mg_broker_new(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen);

/* Begin a clean stop: stop reading, wait (at most a couple of seconds) for
 * the batches in flight to be journaled and acknowledged, then make the
 * event loop exit. */
void mg_broker_shutdown(mg_broker_t *broker);

/* Free everything; accepts NULL and sets *broker_p to NULL. Producers whose
 * batches were still in flight get UNAVAILABLE. */
void mg_broker_destroy(mg_broker_t **broker_p);

#endif
