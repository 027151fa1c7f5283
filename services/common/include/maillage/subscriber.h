/* subscriber.h -- a consumer of the event stream that never misses an event.
 *
 * Every consuming daemon (matcher, notifier, gateway) receives events through
 * this module. It delivers every journaled event of its topics, in journal
 * order, at least once, across restarts and faults (the Clone pattern of the
 * ZeroMQ guide):
 *
 *  - it subscribes to the broker's fan-out (all topics: filtering is done here,
 *    so that a jump in sequence numbers always means a gap) and to its
 *    heartbeat, which carries the last journaled sequence;
 *  - on start it reads its checkpoint (the last sequence it completed) from
 *    Redis and catches up from the journal before delivering anything live;
 *  - on the live feed, a sequence beyond the next expected one (late join,
 *    high-water-mark drop, broker restart, an event journaled but never
 *    published) or a heartbeat announcing one makes it fill the gap from the
 *    journal first; sequences already seen are ignored;
 *  - it saves its checkpoint in Redis, batched (every checkpoint_every events
 *    or checkpoint_interval_ms), so a restart may deliver again the last few
 *    events: handlers must be idempotent (each daemon records what it has
 *    applied, in the same Redis transaction as the effect when it can).
 *
 * A handler that fails makes the event "parked": it is stored in the
 * consumer's retry set and retried later with backoff, while the events
 * behind it go on; after max_attempts it is moved to the dead-letter stream
 * with the reason, the consumer's name and its sequence (`maillage dlq`
 * lists, shows and re-injects it).
 *
 * Redis keys (docs/redis-keys.md):
 *   mg:consumers             set of registered consumer names (retention
 *                            never trims past the slowest of them)
 *   mg:consumer:<name>       hash: seq (checkpoint), updated_at_ms, topics,
 *                            pid, host
 *   mg:retry:<name>          sorted set: member = sequence, score = due time
 *                            in Unix ms
 *   mg:retry:<name>:attempts hash: "<seq>" -> attempts so far,
 *                            "<seq>:reason" -> the last failure's reason
 *   mg:deadletter            (shared with the broker) an event given up on,
 *                            with source "consumer:<name>" and the fields
 *                            consumer, seq, event_id, type, attempts
 *
 * A jump in sequence numbers is also noticed without the heartbeat: when the
 * feed has been silent for a second, the subscriber reads mg:journal:seq.
 *
 * While Redis is lost, nothing is delivered; when it is back the subscriber
 * resumes from its checkpoint in Redis (not from its position in memory: a
 * Redis that restarted from its AOF may have lost the last effects of an
 * appendfsync everysec second, and redelivering is always safe).
 *
 * Runs in the thread of the event base. */
#ifndef MAILLAGE_SUBSCRIBER_H
#define MAILLAGE_SUBSCRIBER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "maillage/envelope.h"
#include "maillage/redis.h"

#define MG_CONSUMERS_KEY           "mg:consumers"
#define MG_CONSUMER_KEY_PREFIX     "mg:consumer:"
#define MG_RETRY_KEY_PREFIX        "mg:retry:"
/* The source of a consumer's dead letter: "consumer:<name>". */
#define MG_CONSUMER_SOURCE_PREFIX "consumer:"

/* Lua, for the scripts that write a consumer's dead letter (the
 * subscriber's park script, `maillage consumers forget`): the journaled
 * event `seq` of journal stream `journal` (its raw bytes and, when `type` is
 * nil, its type) into stream `dls`, trimmed to about `maxlen`, with the
 * fields `maillage dlq` reads (docs/redis-keys.md). */
#define MG_CONSUMER_DEADLETTER_LUA                                                                           \
    "local function consumer_deadletter(dls, journal, maxlen, seq, reason, name, now, event_id, type,\n"     \
    "                                   received_at_ms, attempts)\n"                                         \
    "  local raw = ''\n"                                                                                     \
    "  local e = redis.call('XRANGE', journal, seq .. '-0', seq .. '-0')\n"                                  \
    "  if e[1] then\n"                                                                                       \
    "    local f = e[1][2]\n"                                                                                \
    "    for i = 1, #f, 2 do\n"                                                                              \
    "      if f[i] == 'e' then raw = f[i + 1] elseif f[i] == 't' and not type then type = f[i + 1] end\n"    \
    "    end\n"                                                                                              \
    "  end\n"                                                                                                \
    "  redis.call('XADD', dls, 'MAXLEN', '~', maxlen, '*',\n"                                                \
    "    'reason', reason, 'field', '', 'source', '" MG_CONSUMER_SOURCE_PREFIX "' .. name,\n"                \
    "    'received_at_ms', received_at_ms, 'raw', raw, 'raw_len', tostring(#raw),\n"                         \
    "    'consumer', name, 'seq', seq, 'event_id', event_id, 'type', type or '',\n"                          \
    "    'attempts', attempts, 'deadlettered_at_ms', now)\n"                                                 \
    "end\n"

/* The fan-out topic of the broker's heartbeat: frames [topic][8-byte
 * big-endian last journaled sequence], about once a second. */
#define MG_HEARTBEAT_TOPIC "_heartbeat"

typedef struct mg_subscriber mg_subscriber_t;

/* One delivery in progress; borrowed by the handler until it calls
 * mg_subscriber_done() with it. */
typedef struct mg_delivery mg_delivery_t;

/* Called for each event of the subscribed topics, one at a time, in journal
 * order: the next delivery starts only after mg_subscriber_done() for this
 * one. `env` (with env->sequence set) is borrowed until mg_subscriber_done(). */
typedef void (*mg_subscriber_handler_fn)(mg_subscriber_t *sub, const mg_envelope_t *env,
                                         mg_delivery_t *delivery, void *arg);

typedef struct {
    const char *name;        /* consumer name, [A-Za-z0-9._:-]{1,64}: "matcher" */
    const char *fanout;      /* the broker's fan-out endpoint */
    const char *const *topics; /* type prefixes to deliver ("need.", "offer."),
                                * NULL-terminated; NULL = every type */
    int checkpoint_every;    /* save the checkpoint after this many events (default 100) */
    int checkpoint_interval_ms; /* ... or after this long (default 200) */
    int max_attempts;        /* attempts before dead-lettering (default 5) */
    int retry_base_ms;       /* first retry delay, doubled each time (default 500) */
    int catchup_batch;       /* events read per XRANGE (default 1000) */
    long long deadletter_maxlen; /* mg:deadletter is trimmed to about this many entries when
                                  * a dead letter is added: [broker] deadletter_maxlen, as the
                                  * broker's own (default 100000) */
} mg_subscriber_options_t;

/* Create a subscriber in `base`, using `redis` (borrowed; must outlive it) for
 * the journal, the checkpoint and the retry set. Options are copied; zero
 * numeric options take their defaults. It registers itself in mg:consumers,
 * reads its checkpoint once Redis is up, catches up, then goes live.
 * Returns NULL with a reason in `err`. Caller owns the result. */
mg_subscriber_t *mg_subscriber_new(struct event_base *base, void *zmq_context, mg_redis_t *redis,
                                   const mg_subscriber_options_t *opts, mg_subscriber_handler_fn handler,
                                   void *arg, char *err, size_t errlen);

/* Tell the subscriber Redis is (re)connected (1) or lost (0): call from the
 * mg_redis_t state callback. While Redis is down, deliveries pause. */
void mg_subscriber_redis_state(mg_subscriber_t *sub, int up);

/* Finish `delivery`: `reason` NULL means success; otherwise the event is
 * parked for retry (or dead-lettered after max_attempts) with this reason.
 * Must be called exactly once per delivery, possibly from a later callback. */
void mg_subscriber_done(mg_subscriber_t *sub, mg_delivery_t *delivery, const char *reason);

/* Save the checkpoint now (e.g. on SIGTERM), then call `cb` (may be NULL)
 * once Redis confirmed it or failed. */
void mg_subscriber_flush(mg_subscriber_t *sub, void (*cb)(mg_subscriber_t *sub, void *arg), void *arg);

/* Last sequence completed (what the checkpoint will say). */
uint64_t mg_subscriber_position(const mg_subscriber_t *sub);

/* Counters since the subscriber was created, for metrics and tests. */
typedef struct {
    uint64_t delivered;     /* handler calls for the stream (retries excluded) */
    uint64_t from_journal;  /* ... of which read from the journal (catch-up) */
    uint64_t skipped;       /* events of other topics, and malformed journal entries (position advanced, no call) */
    uint64_t gaps;          /* catch-ups started by a jump on the live feed, a heartbeat
                             * or the idle check (the first catch-up excluded) */
    uint64_t journal_reads; /* XRANGE calls on the journal */
    uint64_t failed;        /* handler failures (each parks the event) */
    uint64_t retried;       /* deliveries of parked events */
    uint64_t deadlettered;  /* events given up on */
    uint64_t redis_losses;  /* times Redis was lost while running */
    uint64_t checkpoints;   /* checkpoints confirmed by Redis */
} mg_subscriber_stats_t;

/* Copy the counters into `out`. */
void mg_subscriber_stats(const mg_subscriber_t *sub, mg_subscriber_stats_t *out);

/* 1 when delivering from the live feed (caught up), else 0. */
int mg_subscriber_is_live(const mg_subscriber_t *sub);

/* Free; accepts NULL and sets *sub_p to NULL. A delivery in progress is
 * abandoned (it will be delivered again after a restart). */
void mg_subscriber_destroy(mg_subscriber_t **sub_p);

#endif
