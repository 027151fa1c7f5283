/* broker.c -- ingest, validate, journal, ack, publish.
 *
 * The one promise that shapes this file: an ACCEPTED ack means the event is
 * in the journal. So acks for valid events are only sent from the journal's
 * reply callback, and anything that cannot be journaled right now (Redis
 * down, connection lost with the batch in flight) is answered UNAVAILABLE,
 * which tells the producer to retry with the same event_id. Retrying is safe:
 * the journal script deduplicates by event_id.
 *
 * Messages are read in batches (see zsock.h); each message is checked and
 * stamped on arrival, invalid ones are answered at once, and the valid ones
 * of a batch are journaled with one script call when the batch ends. Replies
 * from Redis come back in order, so publishing from the reply callback
 * publishes in sequence order. */
#include "broker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "maillage/clock.h"
#include "maillage/communes.h"
#include "maillage/curve.h"
#include "maillage/daemon_config.h"
#include "maillage/envelope.h"
#include "maillage/journal.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/metrics.h"
#include "maillage/redis.h"
#include "maillage/subscriber.h"
#include "maillage/taxonomy.h"
#include "maillage/zsock.h"

/* Batches journaled but not yet confirmed, and their bytes (each held twice:
 * the batch and hiredis' command); beyond either the broker stops reading
 * (and ZeroMQ's high-water marks push back on producers) instead of piling up
 * memory while Redis is slow: envelopes may be max_message_bytes each. */
#define S_MAX_INFLIGHT 64
#define S_INFLIGHT_BYTES (16 * 1024 * 1024)

/* A batch ends once it holds this many bytes, so that a batch of large
 * envelopes cannot exceed S_INFLIGHT_BYTES by much. */
#define S_BATCH_BYTES (2 * 1024 * 1024)

/* Fewest envelopes ZeroMQ may hold for a producer while the broker is not
 * reading (see ingest_rcvhwm in mg_broker_new). */
#define S_MIN_INGEST_RCVHWM 16

/* Bytes of dead letters sent to Redis and not yet confirmed; beyond this a
 * dead letter is dropped (counted): a flood of refused messages while Redis
 * is slow must not pile up in memory, since refusing them does not stop
 * reading. */
#define S_DEADLETTER_BUDGET (16 * 1024 * 1024)

/* How long a clean stop waits for batches in flight. */
#define S_SHUTDOWN_GRACE_MS 2000

/* Bigger messages than this are not even received: ZeroMQ drops the
 * connection. Between max_message_bytes and this, they are received and
 * rejected with a reason, which is friendlier to a producer's engineers. */
#define S_HARD_LIMIT_FACTOR 4

/* How often the counters are written to mg:metrics:broker. */
#define S_METRICS_INTERVAL_S 10

#define S_UNAVAILABLE_REASON "journal unavailable, retry with the same event_id"

/* The broker's metrics (handles owned by the metrics registry). */
typedef struct {
    mg_metric_t *accepted, *duplicate, *rejected, *unavailable, *published, *batches, *redis_reconnects,
        *deadletters, *deadletters_dropped, *acks_undelivered, *journal_up, *inflight, *inflight_bytes,
        *trimmed, *trimmed_forced, *refused_permission, *refused_rate, *zap_allowed, *zap_denied, *reencoded,
        *contacts_set, *contacts_deleted;
} s_metrics_t;

/* One source's token bucket for [broker] rate_limit_per_s. Sources are few
 * (the networks of the allow-list, or the one loopback network), so a
 * linear search is the simplest thing that works. */
typedef struct {
    char source[MG_ID_MAX + 1];
    double tokens;
    int64_t last_us;
} s_bucket_t;

/* Most buckets kept; beyond, the oldest is reused (only reachable with a
 * huge allow-list, where the worst case is a fresh burst for a source). */
#define S_MAX_BUCKETS 4096

/* What the journal does with the structure's contact (personal data, kept
 * in mg:contact:<sid> and never in the journal) when it journals the event. */
typedef enum { S_CONTACT_KEEP, S_CONTACT_SET, S_CONTACT_DELETE } s_contact_op_t;

/* One valid envelope waiting for the journal. Its bytes live in the batch's
 * arena (offsets, since the arena grows by realloc while the batch fills). */
typedef struct {
    size_t identity_at, identity_len; /* the producer's ROUTER identity */
    size_t envelope_at, len;          /* stamped, sequence 0 */
    char event_id[MG_ID_MAX + 1];
    char source[MG_ID_MAX + 1]; /* the network stamped on it: retries are recognised per source */
    int relayed;                /* sent on behalf of `source` by a relay: its acks name it */
    const char *type;           /* static, from the event type table */
    s_contact_op_t contact_op;  /* what the append script does with mg:contact:<contact_sid> */
    char contact_sid[MG_ID_MAX + 1];
    size_t contact_at, contact_len;   /* the serialized Contact to set, in the arena */
    char owner[MG_JOURNAL_OWNER_MAX]; /* its owner rule (mg_journal_owner_op()), "" for none */
    int64_t received_at_ms;
} s_item_t;

/* A batch owns one arena for all its bytes and is recycled once journaled,
 * so that the hot path allocates nothing per event once warm. */
typedef struct s_batch {
    mg_broker_t *broker;
    s_item_t *items;
    size_t count, cap;
    uint8_t *arena;
    size_t used, arena_cap;
    mg_journal_item_t *jitems; /* the view handed to mg_journal_append */
    size_t jcap;
    struct s_batch *next; /* in the broker's spare list */
} s_batch_t;

/* Batches kept for reuse. */
#define S_SPARE_BATCHES 8

struct mg_broker {
    struct event_base *base;
    const mg_config_t *cfg;
    void *zmq_context;
    void *ingest_socket, *fanout_socket;
    mg_zsock_t *ingest, *fanout;
    mg_redis_t *redis;
    mg_journal_t *journal;
    mg_taxonomy_t *taxonomy;
    mg_communes_t *communes;
    const char *network; /* borrowed from cfg: the source without CURVE */
    mg_curve_server_t *curve; /* NULL without CURVE */
    double rate_per_s, rate_burst; /* 0: no rate limit */
    s_bucket_t *buckets;
    size_t bucket_count;
    size_t max_message_bytes;
    s_batch_t *batch; /* being gathered from the current drain */
    s_batch_t *spare; /* journaled batches kept for reuse */
    size_t spare_count;
    uint8_t *scratch; /* max_message_bytes + room for the stamp and the sequence */
    size_t inflight, inflight_bytes;
    int paused_for_inflight;
    int shutting_down;
    struct event *shutdown_timer;
    int journal_seen_up; /* Redis was up at least once (to count reconnects) */
    int journal_down_logged;
    s_metrics_t metrics;
    struct event *metrics_timer;
    unsigned long long deadletters_dropped; /* for the log's powers of two */
    size_t deadletter_bytes;                /* sent to Redis, not confirmed (S_DEADLETTER_BUDGET) */
    /* The last journaled sequence, announced by the heartbeat: read from
     * mg:journal:seq whenever Redis comes up, then advanced by each append
     * reply. Until the first read it is unknown and no heartbeat is sent. */
    uint64_t last_seq;
    int last_seq_known;
    struct event *heartbeat_timer;
    /* CURVE: the allow-list looked at every second; when a key was taken
     * away, the fan-out is bound again (fanout_rebind_timer retries until
     * the port is free) to drop its subscribers' connections. */
    struct event *curve_timer, *fanout_rebind_timer;
    unsigned long long revocations;      /* mg_curve_server_refresh()'s count the fan-out has acted on */
    int unbind_failing;                  /* its unbind failed: retried each tick, said once */
    unsigned long long revoked_messages; /* for the log's powers of two */
    int64_t rebind_since_us, rebind_told_us, rebind_delay_us;
    char fanout_endpoint[256];
    /* Journal retention: policy from [broker], one script call per tick. */
    struct event *retention_timer;
    mg_journal_retention_t retention;
    int trim_inflight;
    uint64_t retention_blocked_at; /* the slowest seq last logged as holding the trim */
};

/* ---- small helpers -------------------------------------------------------- */

/* Read a varint at *pos; 0 on success. */
static int s_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *pos < len; shift += 7) {
        uint8_t byte = p[(*pos)++];
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Find the event_id (field 1) in bytes that may be too big or not even a
 * valid Envelope, walking the top-level wire format without decoding it, so
 * that a rejection can still name the event the producer is waiting for. */
static void s_peek_event_id(const uint8_t *p, size_t len, char out[MG_ID_MAX + 1]) {
    size_t pos = 0;
    out[0] = '\0';
    for (int fields = 0; fields < 64 && pos < len; fields++) {
        uint64_t key, n;
        if (s_varint(p, len, &pos, &key) != 0) return;
        switch (key & 7) {
        case 0:
            if (s_varint(p, len, &pos, &n) != 0) return;
            break;
        case 1:
            pos += 8;
            break;
        case 5:
            pos += 4;
            break;
        case 2:
            if (s_varint(p, len, &pos, &n) != 0 || n > len - pos) return;
            if ((key >> 3) == 1) {
                if (n > MG_ID_MAX) return;
                memcpy(out, p + pos, (size_t)n);
                out[n] = '\0';
                if (!mg_id_is_valid(out)) out[0] = '\0';
                return;
            }
            pos += (size_t)n;
            break;
        default:
            return;
        }
    }
}

/* 1 if `endpoint` is only reachable from this machine. Without CURVE the
 * broker refuses anything else (unless told otherwise): an unauthenticated
 * ingest on the network would let anyone emit in any network's name. */
/* ---- stamping ---------------------------------------------------------------- */

/* Most bytes s_stamp() appends: source (tag, length, at most MG_ID_MAX
 * bytes), received_at_ms (tag, 10-byte varint), schema_version (tag, 1
 * byte). */
#define S_STAMP_MAX (2 + 1 + MG_ID_MAX + 1 + 10 + 2)

static size_t s_put_varint(uint8_t *out, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

/* The stamped envelope, without re-encoding: the bytes received followed by
 * the fields only the broker may set. Protobuf keeps the last value of a
 * singular field, so these override whatever the producer put there (the
 * same trick as mg_envelope_append_sequence). `env` is the decoded form of
 * the same bytes, to know whether schema_version needs a value; they hold
 * no source, received_at_ms nor sequence (the journal keeps sequence 0:
 * readers append theirs). `out` holds len + S_STAMP_MAX bytes. Returns the
 * stamped length. */
static size_t s_stamp(const char *source, const mg_envelope_t *env, const uint8_t *data, size_t len,
                      int64_t now, uint8_t *out) {
    size_t n = len;
    memcpy(out, data, len);
    size_t source_len = strlen(source); /* a valid id: at most MG_ID_MAX bytes */
    out[n++] = (3 << 3) | 2;            /* source, length-delimited */
    n += s_put_varint(out + n, source_len);
    memcpy(out + n, source, source_len);
    n += source_len;
    out[n++] = (5 << 3) | 0; /* received_at_ms, varint */
    n += s_put_varint(out + n, (uint64_t)now);
    if (env->schema_version == 0) {
        out[n++] = (7 << 3) | 0;
        out[n++] = MG_SCHEMA_VERSION;
    }
    return n;
}

/* ---- acks and dead letters ------------------------------------------------ */

/* Answer one envelope. `on_behalf_of` is the relayed network (NULL for a
 * direct producer): a relay keys its pending events by (network, event id),
 * since two networks may use the same id. */
static void s_send_ack(mg_broker_t *broker, const uint8_t *identity, size_t identity_len, const char *on_behalf_of,
                       const char *event_id, Maillage__V1__Ack__Status status, uint64_t seq, const char *reason,
                       const char *field) {
    mg_ack_t ack = MAILLAGE__V1__ACK__INIT;
    ack.event_id = (char *)(event_id ? event_id : "");
    ack.on_behalf_of = (char *)(on_behalf_of ? on_behalf_of : "");
    ack.status = status;
    ack.sequence = seq;
    ack.reason = (char *)(reason ? reason : "");
    ack.field = (char *)(field ? field : "");
    /* Acks are small (an id, a status, a sequence): packed on the stack,
     * except the rare rejection whose reason makes it long. */
    uint8_t stack[256];
    uint8_t *bytes = stack;
    size_t len = maillage__v1__ack__get_packed_size(&ack);
    if (len <= sizeof(stack))
        maillage__v1__ack__pack(&ack, stack);
    else
        len = mg_ack_pack(&ack, &bytes);
    const void *frames[2] = {identity, bytes};
    size_t lens[2] = {identity_len, len};
    if (mg_zsock_send(broker->ingest, frames, lens, 2) != 0) {
        /* The producer is gone (EHOSTUNREACH) or not reading (EAGAIN): it
         * will retry with the same event_id and get DUPLICATE. */
        mg_metrics_inc(broker->metrics.acks_undelivered);
        mg_debug("broker: ack for %s not delivered: %s", event_id && *event_id ? event_id : "(no id)",
                 zmq_strerror(errno));
    }
    if (bytes != stack) free(bytes);
}

/* A dead letter on its way to Redis: its bytes count against the budget. */
typedef struct {
    mg_broker_t *broker;
    size_t len;
} s_deadletter_sent_t;

static void s_deadletter_dropped(mg_broker_t *broker, const char *why) {
    mg_metrics_inc(broker->metrics.deadletters_dropped);
    unsigned long long n = ++broker->deadletters_dropped;
    /* Powers of two: visible, but not one line per message of a flood. */
    if ((n & (n - 1)) == 0) mg_warn("broker: %s, dead letter dropped (%llu dropped so far)", why, n);
}

static void s_on_deadletter_stored(mg_journal_t *journal, int stored, void *arg) {
    s_deadletter_sent_t *sent = arg;
    mg_broker_t *broker = sent->broker;
    (void)journal;
    broker->deadletter_bytes -= sent->len;
    free(sent);
    if (stored) {
        mg_metrics_inc(broker->metrics.deadletters);
    } else {
        mg_metrics_inc(broker->metrics.deadletters_dropped);
    }
}

/* The structure a member.joined / member.updated carries (NULL for any
 * other event, or one without it). */
static Maillage__V1__Structure *s_member_structure(const mg_envelope_t *env) {
    if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED && env->member_joined)
        return env->member_joined->structure;
    if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED && env->member_updated)
        return env->member_updated->structure;
    return NULL;
}

/* Personal data in a refused member event: when the bytes kept (whole)
 * decode to a member.joined / member.updated with a contact, the dead
 * letter keeps the event re-encoded without it, and the bytes received are
 * held apart under its structure (mg:deadletter:held:<sid>), which its
 * member.left erases; for a structure id that is not an id (refused for
 * it, and never replayable), the contact is not kept at all. Returns the
 * re-encoding, for the caller to free after the call (NULL: `dl` is
 * unchanged). */
static uint8_t *s_deadletter_hold(mg_deadletter_t *dl, char sid[MG_ID_MAX + 1]) {
    if (dl->raw_len < dl->original_len) return NULL;
    mg_envelope_t *env = mg_envelope_unpack(dl->raw, dl->raw_len);
    if (!env) return NULL;
    Maillage__V1__Structure *member = s_member_structure(env);
    uint8_t *stripped = NULL;
    if (member && member->contact && maillage__v1__contact__get_packed_size(member->contact) > 0) {
        Maillage__V1__Contact *contact = member->contact;
        member->contact = NULL;
        size_t len = mg_envelope_pack(env, &stripped);
        member->contact = contact; /* freed with the envelope */
        if (member->structure_id && mg_id_is_valid(member->structure_id)) {
            snprintf(sid, MG_ID_MAX + 1, "%s", member->structure_id);
            dl->held_sid = sid;
            dl->held = dl->raw;
            dl->held_len = dl->raw_len;
        }
        dl->raw = stripped;
        dl->raw_len = len;
    }
    mg_envelope_free(env);
    return stripped;
}

static void s_deadletter(mg_broker_t *broker, const char *source, const char *reason, const char *field,
                         const uint8_t *raw, size_t len, int64_t received_at_ms) {
    mg_deadletter_t dl = {
        .reason = reason,
        .field = field,
        .source = source,
        .received_at_ms = received_at_ms,
        .raw = raw,
        .raw_len = len < broker->max_message_bytes ? len : broker->max_message_bytes,
        .original_len = len,
    };
    char sid[MG_ID_MAX + 1];
    uint8_t *stripped = s_deadletter_hold(&dl, sid);
    size_t bytes = dl.raw_len + (dl.held_sid ? dl.held_len : 0);
    /* (One at a time may be bigger: max_message_bytes goes up to 64 MiB.) */
    if (broker->deadletter_bytes > 0 && broker->deadletter_bytes + bytes > S_DEADLETTER_BUDGET) {
        s_deadletter_dropped(broker, "too many dead letters wait for Redis");
    } else {
        s_deadletter_sent_t *sent = mg_malloc(sizeof(*sent));
        *sent = (s_deadletter_sent_t){broker, bytes};
        if (mg_journal_deadletter(broker->journal, &dl, s_on_deadletter_stored, sent) != 0) {
            free(sent);
            s_deadletter_dropped(broker, "journal unavailable");
        } else {
            broker->deadletter_bytes += bytes;
        }
    }
    free(stripped);
}

/* Who sent a message, and in whose name. */
typedef struct {
    const zmq_msg_t *identity; /* the producer's ROUTER identity */
    const char *source;        /* the network stamped: the sender's own, or the one it relays for */
    const char *relayed;       /* `source` when relayed (echoed in acks), else NULL */
} s_origin_t;

static void s_answer(mg_broker_t *broker, const s_origin_t *origin, const char *event_id,
                     Maillage__V1__Ack__Status status, const char *reason, const char *field) {
    s_send_ack(broker, zmq_msg_data((zmq_msg_t *)origin->identity), zmq_msg_size((zmq_msg_t *)origin->identity),
               origin->relayed, event_id, status, 0, reason, field);
}

/* Answer REJECTED and keep the bytes as a dead letter. */
static void s_reject(mg_broker_t *broker, const s_origin_t *origin, const char *event_id, const char *reason,
                     const char *field, const uint8_t *raw, size_t len, int64_t received_at_ms) {
    mg_metrics_inc(broker->metrics.rejected);
    mg_debug("broker: rejected %s: %s%s%s", event_id && *event_id ? event_id : "(no id)", reason,
             field && *field ? " at " : "", field ? field : "");
    s_answer(broker, origin, event_id, MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED, reason, field);
    s_deadletter(broker, origin->source, reason, field, raw, len, received_at_ms);
}

/* ---- sources: who sent it, may it, is it too fast ------------------------------- */

/* The source of a message, in `out` when it needs one: with CURVE, the
 * network the allow-list gives the key the connection authenticated with,
 * whatever the envelope claims; without, the configured network of loopback
 * producers. NULL for a CURVE message whose key was removed from the list
 * since its connection was established. */
static const char *s_source_of(const mg_broker_t *broker, zmq_msg_t *frame, char out[MG_ID_MAX + 1]) {
    if (!broker->curve) return broker->network;
    const char *network = mg_curve_server_source(broker->curve, frame, out, MG_ID_MAX + 1);
    return network && mg_id_is_valid(network) ? network : NULL;
}

/* A relay (the HTTP gateway) sends [MG_RELAY_PREFIX "<network id>"][Envelope]:
 * the network it authenticated itself. */
/* The network named by relay header `frame`, into `out`; -1 if malformed. */
static int s_relay_network(const zmq_msg_t *frame, char out[MG_ID_MAX + 1]) {
    const char *data = zmq_msg_data((zmq_msg_t *)frame);
    size_t len = zmq_msg_size((zmq_msg_t *)frame), prefix = strlen(MG_RELAY_PREFIX);
    if (len <= prefix || len - prefix > MG_ID_MAX || memcmp(data, MG_RELAY_PREFIX, prefix) != 0) return -1;
    memcpy(out, data + prefix, len - prefix);
    out[len - prefix] = '\0';
    return mg_id_is_valid(out) ? 0 : -1;
}

/* Take one token from `source`'s bucket; 0 if allowed, -1 if over its rate. */
static int s_rate_take(mg_broker_t *broker, const char *source) {
    if (broker->rate_per_s <= 0) return 0;
    int64_t now = mg_clock_monotonic_us();
    s_bucket_t *b = NULL;
    for (size_t i = 0; i < broker->bucket_count && !b; i++)
        if (strcmp(broker->buckets[i].source, source) == 0) b = &broker->buckets[i];
    if (!b) {
        if (broker->bucket_count < S_MAX_BUCKETS) {
            broker->buckets = mg_realloc(broker->buckets, (broker->bucket_count + 1) * sizeof(*broker->buckets));
            b = &broker->buckets[broker->bucket_count++];
        } else {
            b = &broker->buckets[0];
            for (size_t i = 1; i < broker->bucket_count; i++)
                if (broker->buckets[i].last_us < b->last_us) b = &broker->buckets[i];
        }
        snprintf(b->source, sizeof b->source, "%s", source);
        b->tokens = broker->rate_burst;
        b->last_us = now;
    }
    b->tokens += (double)(now - b->last_us) * broker->rate_per_s / 1e6;
    if (b->tokens > broker->rate_burst) b->tokens = broker->rate_burst;
    b->last_us = now;
    if (b->tokens < 1) return -1;
    b->tokens -= 1;
    return 0;
}

/* ---- batches ---------------------------------------------------------------- */

static void s_batch_free(s_batch_t *batch) {
    if (!batch) return;
    free(batch->items);
    free(batch->arena);
    free(batch->jitems);
    free(batch);
}

static s_batch_t *s_batch_get(mg_broker_t *broker) {
    s_batch_t *batch = broker->spare;
    if (batch) {
        broker->spare = batch->next;
        broker->spare_count--;
        batch->next = NULL;
        batch->count = 0;
        batch->used = 0;
        return batch;
    }
    batch = mg_calloc(1, sizeof(*batch));
    batch->broker = broker;
    return batch;
}

/* Keep a few batches (and their arenas) for the next drains. */
static void s_batch_put(mg_broker_t *broker, s_batch_t *batch) {
    if (broker->spare_count >= S_SPARE_BATCHES) {
        s_batch_free(batch);
        return;
    }
    batch->next = broker->spare;
    broker->spare = batch;
    broker->spare_count++;
}

/* Room for `n` more bytes in the arena; returns the offset where they go. */
static size_t s_batch_reserve(s_batch_t *batch, size_t n) {
    if (batch->used + n > batch->arena_cap) {
        size_t cap = batch->arena_cap ? batch->arena_cap * 2 : 64 * 1024;
        while (cap < batch->used + n)
            cap *= 2;
        batch->arena = mg_realloc(batch->arena, cap);
        batch->arena_cap = cap;
    }
    size_t at = batch->used;
    batch->used += n;
    return at;
}

static void s_publish(mg_broker_t *broker, const s_batch_t *batch, const s_item_t *item, uint64_t seq) {
    uint8_t seq_be[8];
    for (int i = 0; i < 8; i++)
        seq_be[i] = (uint8_t)(seq >> (56 - 8 * i));
    uint8_t *with_seq = broker->scratch;
    size_t len = mg_envelope_append_sequence(batch->arena + item->envelope_at, item->len, seq, with_seq);
    const void *frames[3] = {item->type, seq_be, with_seq};
    size_t lens[3] = {strlen(item->type), sizeof(seq_be), len};
    /* PUB never blocks: at the high-water mark a slow subscriber loses
     * messages, sees the gap in sequences, and catches up from the journal. */
    if (mg_zsock_send(broker->fanout, frames, lens, 3) == 0)
        mg_metrics_inc(broker->metrics.published);
    else
        mg_warn("broker: publishing sequence %" PRIu64 " failed: %s", seq, zmq_strerror(errno));
}

static void s_check_flow(mg_broker_t *broker) {
    mg_metrics_set(broker->metrics.inflight, broker->inflight);
    mg_metrics_set(broker->metrics.inflight_bytes, broker->inflight_bytes);
    if (broker->shutting_down) {
        if (broker->inflight == 0) event_base_loopexit(broker->base, NULL);
        return;
    }
    if (broker->paused_for_inflight && broker->inflight < S_MAX_INFLIGHT / 2 &&
        broker->inflight_bytes < S_INFLIGHT_BYTES / 2) {
        broker->paused_for_inflight = 0;
        mg_zsock_pause(broker->ingest, 0);
    } else if (!broker->paused_for_inflight &&
               (broker->inflight >= S_MAX_INFLIGHT || broker->inflight_bytes >= S_INFLIGHT_BYTES)) {
        broker->paused_for_inflight = 1;
        mg_zsock_pause(broker->ingest, 1);
    }
}

static void s_answer_unavailable(mg_broker_t *broker, s_batch_t *batch) {
    for (size_t i = 0; i < batch->count; i++) {
        const s_item_t *item = &batch->items[i];
        mg_metrics_inc(broker->metrics.unavailable);
        s_send_ack(broker, batch->arena + item->identity_at, item->identity_len,
                   item->relayed ? item->source : NULL, item->event_id,
                   MAILLAGE__V1__ACK__STATUS__STATUS_UNAVAILABLE, 0, S_UNAVAILABLE_REASON, "");
    }
}

static void s_on_journaled(mg_journal_t *journal, const mg_journal_result_t *results, size_t count,
                           void *arg) {
    s_batch_t *batch = arg;
    mg_broker_t *broker = batch->broker;
    (void)journal;
    broker->inflight--;
    broker->inflight_bytes -= batch->used;
    if (!results || count != batch->count) {
        s_answer_unavailable(broker, batch);
    } else {
        for (size_t i = 0; i < count; i++) {
            const s_item_t *item = &batch->items[i];
            if (results[i].refused) {
                /* Another network's item or structure: refused, kept as a
                 * dead letter (its contact, if any, was taken out). */
                mg_metrics_inc(broker->metrics.refused_permission);
                mg_metrics_inc(broker->metrics.rejected);
                mg_warn("broker: %s refused: %s", item->event_id, results[i].refused);
                s_send_ack(broker, batch->arena + item->identity_at, item->identity_len,
                           item->relayed ? item->source : NULL, item->event_id,
                           MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED, 0, results[i].refused, "");
                s_deadletter(broker, item->source, results[i].refused, "", batch->arena + item->envelope_at,
                             item->len, item->received_at_ms);
            } else if (results[i].duplicate) {
                mg_metrics_inc(broker->metrics.duplicate);
                s_send_ack(broker, batch->arena + item->identity_at, item->identity_len,
                           item->relayed ? item->source : NULL, item->event_id,
                           MAILLAGE__V1__ACK__STATUS__STATUS_DUPLICATE, results[i].sequence, "", "");
            } else {
                if (results[i].sequence > broker->last_seq) broker->last_seq = results[i].sequence;
                broker->last_seq_known = 1;
                mg_metrics_inc(broker->metrics.accepted);
                if (item->contact_op == S_CONTACT_SET) mg_metrics_inc(broker->metrics.contacts_set);
                if (item->contact_op == S_CONTACT_DELETE) mg_metrics_inc(broker->metrics.contacts_deleted);
                s_send_ack(broker, batch->arena + item->identity_at, item->identity_len,
                           item->relayed ? item->source : NULL, item->event_id,
                           MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED, results[i].sequence, "", "");
                s_publish(broker, batch, item, results[i].sequence);
            }
        }
    }
    s_batch_put(broker, batch);
    s_check_flow(broker);
}

/* ---- personal data ---------------------------------------------------------- */

/* Detach the contact of a member.joined / member.updated from `env` (the
 * caller re-encodes the envelope without it, then puts it back in
 * (*member)->contact so that mg_envelope_free() frees it) and say what the
 * journal must do with mg:contact:<sid>: set it when the event carries a
 * contact (an empty Contact is none), delete it on a member.updated without
 * one (the record replaces the whole structure) and on member.left, keep it
 * otherwise (a member.joined without a contact: its network's record again,
 * or the chamber's; another network's is refused, mg:owner). `env` is
 * validated: ids are present. */
static s_contact_op_t s_contact_take(mg_envelope_t *env, Maillage__V1__Structure **member,
                                     Maillage__V1__Contact **contact) {
    *contact = NULL;
    *member = s_member_structure(env);
    if (!*member)
        return env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_LEFT ? S_CONTACT_DELETE : S_CONTACT_KEEP;
    *contact = (*member)->contact;
    (*member)->contact = NULL;
    if (*contact && maillage__v1__contact__get_packed_size(*contact) > 0) return S_CONTACT_SET;
    return env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED ? S_CONTACT_DELETE : S_CONTACT_KEEP;
}

/* ---- ingest ---------------------------------------------------------------- */

static void s_on_message(mg_zsock_t *zsock, zmq_msg_t *frames, size_t frame_count, void *arg) {
    mg_broker_t *broker = arg;
    (void)zsock;
    int64_t now = mg_clock_now_ms();
    const zmq_msg_t *identity = &frames[0];
    char event_id[MG_ID_MAX + 1];
    char reason[256];

    /* The Envelope is the last frame; a relay puts its header before it. */
    char network[MG_ID_MAX + 1];
    const char *sender = s_source_of(broker, &frames[frame_count > 1 ? 1 : 0], network);
    const uint8_t *data = frame_count > 1 ? zmq_msg_data(&frames[frame_count - 1]) : (const uint8_t *)"";
    size_t len = frame_count > 1 ? zmq_msg_size(&frames[frame_count - 1]) : 0;
    s_origin_t origin = {identity, sender ? sender : MG_SOURCE_UNAUTHENTICATED, NULL};
    char relayed[MG_ID_MAX + 1];
    if (!sender) {
        /* A key taken off the allow-list, on a connection made before.
         * Answered, counted, not dead-lettered: whoever holds it could
         * otherwise flood the dead letters with no rate limit (a source's
         * is unknown) and push out those the operators need. */
        s_peek_event_id(data, len, event_id);
        mg_metrics_inc(broker->metrics.refused_permission);
        mg_metrics_inc(broker->metrics.rejected);
        unsigned long long n = ++broker->revoked_messages;
        if ((n & (n - 1)) == 0)
            mg_warn("broker: refused a message of a key no longer on the CURVE allow-list (%llu so far)", n);
        /* A relay's ack names the network, or the relay could not match it
         * and would resend forever. */
        if (frame_count == 3 && s_relay_network(&frames[1], relayed) == 0) origin.relayed = relayed;
        s_answer(broker, &origin, event_id, MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED,
                 "no authenticated source (the key is no longer on the allow-list)", "");
        return;
    }
    if (frame_count == 3) {
        if (s_relay_network(&frames[1], relayed) != 0) {
            s_peek_event_id(data, len, event_id);
            s_reject(broker, &origin, event_id, "malformed relay header (expected \"" MG_RELAY_PREFIX "<network id>\")",
                     "", data, len, now);
            return;
        }
        if (broker->curve && !mg_curve_server_may_relay(broker->curve, sender)) {
            s_peek_event_id(data, len, event_id);
            snprintf(reason, sizeof(reason), "network %s " MG_RELAY_REFUSED, sender);
            mg_metrics_inc(broker->metrics.refused_permission);
            mg_warn("broker: refused: %s", reason);
            /* Named in the ack, or the relay could not match it and would
             * resend forever; the dead letter keeps the sender's name. */
            origin.relayed = relayed;
            s_reject(broker, &origin, event_id, reason, "", data, len, now);
            return;
        }
        origin.source = origin.relayed = relayed;
    }
    const char *source = origin.source;
    if (s_rate_take(broker, source) != 0) {
        /* Answered, counted, not dead-lettered: a flood must not fill the
         * dead-letter stream (nor cost the other sources a Redis call). */
        s_peek_event_id(data, len, event_id);
        snprintf(reason, sizeof(reason),
                 MG_RATE_LIMITED "network %s sends more than %.0f events/s, retry later", source,
                 broker->rate_per_s);
        mg_metrics_inc(broker->metrics.refused_rate);
        mg_metrics_inc(broker->metrics.rejected);
        s_answer(broker, &origin, event_id, MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED, reason, "");
        return;
    }
    if (frame_count != 2 && frame_count != 3) {
        s_peek_event_id(data, len, event_id);
        snprintf(
            reason, sizeof(reason),
            "expected one frame (the serialized Envelope), or a relay header and the Envelope; got %zu%s",
            frame_count - 1, frame_count == MG_ZSOCK_MAX_FRAMES ? " or more" : "");
        s_reject(broker, &origin, event_id, reason, "", data, len, now);
        return;
    }
    if (len > broker->max_message_bytes) {
        s_peek_event_id(data, len, event_id);
        snprintf(reason, sizeof(reason), "message too large (%zu bytes, at most %zu)", len,
                 broker->max_message_bytes);
        s_reject(broker, &origin, event_id, reason, "", data, len, now);
        return;
    }
    mg_envelope_t *env = mg_envelope_unpack(data, len);
    if (!env) {
        s_peek_event_id(data, len, event_id);
        s_reject(broker, &origin, event_id, "not a protobuf Envelope", "", data, len, now);
        return;
    }
    mg_invalid_t why;
    int nul = mg_envelope_check_nul(data, len, &why) != 0;
    if (nul || mg_envelope_validate(env, broker->taxonomy, broker->communes, &why) != 0) {
        /* The id is echoed only when it is a valid id (it reaches logs), and
         * never cut short at a NUL: it would name another event. */
        int id_cut = nul && strcmp(why.field, "event_id") == 0;
        const char *id = !id_cut && env->event_id && mg_id_is_valid(env->event_id) ? env->event_id : "";
        s_reject(broker, &origin, id, why.reason, why.field, data, len, now);
        mg_envelope_free(env);
        return;
    }
    snprintf(event_id, sizeof(event_id), "%s", env->event_id);
    /* A relay's own types bound what it relays (the gateway checks each token's). */
    if (broker->curve && !mg_curve_server_allows(broker->curve, sender, env->type)) {
        snprintf(reason, sizeof(reason), "network %s may not emit %s", sender, env->type);
        mg_metrics_inc(broker->metrics.refused_permission);
        mg_warn("broker: %s refused: %s", event_id, reason);
        s_reject(broker, &origin, event_id, reason, "type", data, len, now);
        mg_envelope_free(env);
        return;
    }
    if (!mg_redis_is_up(broker->redis) || broker->shutting_down) {
        mg_metrics_inc(broker->metrics.unavailable);
        s_answer(broker, &origin, event_id, MAILLAGE__V1__ACK__STATUS__STATUS_UNAVAILABLE, S_UNAVAILABLE_REASON, "");
        mg_envelope_free(env);
        return;
    }

    /* A former commune's code (a commune déléguée, which many network
     * systems still hold) was accepted for the commune it merged into: it
     * is journaled (re-encoded, below) as that commune's code, so every
     * consumer files the item under today's commune, its indexes, its EPCI
     * and its figures. */
    mg_envelope_current_communes(env, broker->communes);

    /* What is journaled must be what was validated. protobuf-c keeps a
     * string's bytes after an embedded NUL while validation sees the C
     * string up to it: such strings are refused above, and as a second
     * guard the bytes are journaled as received only if they are the
     * re-encoding of what was validated; else the re-encoding is. Equal
     * sizes are not enough: encodings that grow when re-encoded (a repeated
     * field sent unpacked, a length prefix of 127 bytes) can make up for a
     * dropped tail. Unknown fields are kept verbatim by both. The fields
     * only the broker sets (s_stamp() appends them) are left out of that
     * re-encoding: a producer's own `source`, which validation does not
     * read (it may not even be UTF-8), must not stay in the bytes beside
     * the stamp, where the readers that check UTF-8 refuse the whole
     * envelope. A producer that sets none of them keeps its bytes. */
    char *producer_source = env->source;
    env->source = (char *)protobuf_c_empty_string;
    env->received_at_ms = 0;
    env->sequence = 0;
    uint8_t *repacked;
    size_t packed_len = mg_envelope_pack(env, &repacked);
    int canonical = packed_len == len && memcmp(repacked, data, len) == 0;
    if (!canonical) mg_metrics_inc(broker->metrics.reencoded);

    /* Personal data never enters the journal, nor the fan-out (a copy of
     * it): the contact of a member event is taken out of the envelope, which
     * is then journaled re-encoded without it, and handed to the append
     * script apart, to be kept in mg:contact:<sid> if (and only if) the
     * event is journaled. The rejected input above keeps its contact apart
     * from its dead letter (s_deadletter_hold()). */
    Maillage__V1__Structure *member = NULL;
    Maillage__V1__Contact *contact = NULL;
    s_contact_op_t contact_op = s_contact_take(env, &member, &contact);

    if (contact) {
        free(repacked);
        packed_len = mg_envelope_pack(env, &repacked);
    }
    if (!canonical || contact) {
        data = repacked;
        len = packed_len;
    }

    if (!broker->batch) broker->batch = s_batch_get(broker);
    s_batch_t *batch = broker->batch;
    if (batch->count == batch->cap) {
        batch->cap = batch->cap ? batch->cap * 2 : 16;
        batch->items = mg_realloc(batch->items, batch->cap * sizeof(*batch->items));
    }
    s_item_t *item = &batch->items[batch->count++];
    item->identity_len = zmq_msg_size((zmq_msg_t *)identity);
    item->identity_at = s_batch_reserve(batch, item->identity_len);
    memcpy(batch->arena + item->identity_at, zmq_msg_data((zmq_msg_t *)identity), item->identity_len);
    memcpy(item->event_id, event_id, sizeof(event_id));
    snprintf(item->source, sizeof(item->source), "%s", source);
    item->relayed = origin.relayed != NULL;
    item->type = mg_event_type_by_name(env->type)->type;
    item->envelope_at = s_batch_reserve(batch, len + S_STAMP_MAX);
    item->len = s_stamp(source, env, data, len, now, batch->arena + item->envelope_at);
    batch->used = item->envelope_at + item->len; /* give back what the stamp did not use */
    item->contact_op = contact_op;
    item->contact_len = 0;
    if (contact_op != S_CONTACT_KEEP)
        snprintf(item->contact_sid, sizeof(item->contact_sid), "%s",
                 member ? member->structure_id : env->member_left->structure_id);
    if (contact_op == S_CONTACT_SET) {
        item->contact_len = maillage__v1__contact__get_packed_size(contact);
        item->contact_at = s_batch_reserve(batch, item->contact_len);
        maillage__v1__contact__pack(contact, batch->arena + item->contact_at);
    }
    /* Who may change what: the chamber's own programs (loopback producers,
     * a key allowed match.found or "steward") act on any network's items;
     * what a relay sends is its network's. */
    int steward = !origin.relayed && (!broker->curve || mg_curve_server_is_steward(broker->curve, sender));
    mg_journal_owner_op(env, source, steward, item->owner);
    item->received_at_ms = now;
    if (member) member->contact = contact; /* given back, so that it is freed with the envelope */
    env->source = producer_source;         /* likewise */
    free(repacked);
    mg_envelope_free(env);
    if (batch->used >= S_BATCH_BYTES) mg_zsock_end_batch(broker->ingest);
}

static void s_on_batch(mg_zsock_t *zsock, void *arg) {
    mg_broker_t *broker = arg;
    (void)zsock;
    s_batch_t *batch = broker->batch;
    broker->batch = NULL;
    if (!batch) return;
    if (batch->jcap < batch->count) {
        batch->jcap = batch->cap;
        batch->jitems = mg_realloc(batch->jitems, batch->jcap * sizeof(*batch->jitems));
    }
    for (size_t i = 0; i < batch->count; i++) {
        const s_item_t *item = &batch->items[i];
        batch->jitems[i] = (mg_journal_item_t){
            .source = item->source,
            .event_id = item->event_id,
            .type = item->type,
            .envelope = batch->arena + item->envelope_at,
            .len = item->len,
            .contact_sid = item->contact_op == S_CONTACT_KEEP ? NULL : item->contact_sid,
            .contact = item->contact_op == S_CONTACT_SET ? batch->arena + item->contact_at : NULL,
            .contact_len = item->contact_len,
            .owner = item->owner[0] ? item->owner : NULL,
        };
    }
    if (mg_journal_append(broker->journal, batch->jitems, batch->count, s_on_journaled, batch) != 0) {
        s_answer_unavailable(broker, batch);
        s_batch_put(broker, batch);
        return;
    }
    mg_metrics_inc(broker->metrics.batches);
    broker->inflight++;
    broker->inflight_bytes += batch->used;
    s_check_flow(broker);
}

/* ---- heartbeat ----------------------------------------------------------------- */

/* [_heartbeat][last journaled sequence, 8 bytes big-endian] on the fan-out.
 * It goes out on the same PUB socket as the events, after every publication
 * of a sequence it announces, so a subscriber that sees a heartbeat beyond
 * what it received knows events are missing (journaled by a batch whose
 * publication was lost, or by a broker killed between the journal reply and
 * the publication) and reads them from the journal. */
static void s_on_heartbeat_timer(evutil_socket_t fd, short what, void *arg) {
    mg_broker_t *broker = arg;
    (void)fd;
    (void)what;
    if (!broker->last_seq_known) return;
    uint8_t seq_be[8];
    for (int i = 0; i < 8; i++)
        seq_be[i] = (uint8_t)(broker->last_seq >> (56 - 8 * i));
    const void *frames[2] = {MG_HEARTBEAT_TOPIC, seq_be};
    size_t lens[2] = {sizeof(MG_HEARTBEAT_TOPIC) - 1, sizeof(seq_be)};
    if (mg_zsock_send(broker->fanout, frames, lens, 2) != 0)
        mg_debug("broker: heartbeat not published: %s", zmq_strerror(errno));
}

/* ---- keys taken off the allow-list --------------------------------------------- */

/* Bind the fan-out again after s_on_curve_timer() unbound it. The port is
 * freed by ZeroMQ's I/O thread a few ms later: until then, try again after
 * a pause that doubles from 10 ms to 1 s. Every subscriber is cut off
 * meanwhile, so after a second it is said, and again every minute. */
static void s_on_fanout_rebind(evutil_socket_t fd, short what, void *arg) {
    mg_broker_t *broker = arg;
    (void)fd;
    (void)what;
    int64_t now = mg_clock_monotonic_us();
    if (zmq_bind(broker->fanout_socket, broker->fanout_endpoint) == 0) {
        int64_t ms = (now - broker->rebind_since_us) / 1000;
        mg_info("broker: fan-out %s bound again after %" PRId64 " ms: listed keys reconnect",
                broker->fanout_endpoint, ms);
        return;
    }
    if (now - broker->rebind_told_us >=
        (broker->rebind_told_us == broker->rebind_since_us ? 1000000 : 60000000)) {
        mg_error("broker: fan-out %s still not bound again after %" PRId64 " s (%s): no subscriber receives "
                 "events; retrying",
                 broker->fanout_endpoint, (now - broker->rebind_since_us) / 1000000, zmq_strerror(errno));
        broker->rebind_told_us = now;
    }
    broker->rebind_delay_us = broker->rebind_delay_us * 2 > 1000000 ? 1000000 : broker->rebind_delay_us * 2;
    struct timeval retry = {(time_t)(broker->rebind_delay_us / 1000000),
                            (suseconds_t)(broker->rebind_delay_us % 1000000)};
    evtimer_add(broker->fanout_rebind_timer, &retry);
}

/* A message of the ingest is checked against the allow-list one by one
 * (mg_curve_server_source()); the fan-out sends without hearing from its
 * subscribers. When a key is taken off the list, every connection of the
 * fan-out is dropped by binding it again: a subscriber whose key is gone
 * cannot come back, the others reconnect at once and read what they missed
 * from the journal (the heartbeat tells them). */
static void s_on_curve_timer(evutil_socket_t fd, short what, void *arg) {
    mg_broker_t *broker = arg;
    (void)fd;
    (void)what;
    unsigned long long revocations = mg_curve_server_refresh(broker->curve);
    if (revocations == broker->revocations) return;
    /* Unbound already: whoever connects after the bind is checked against
     * the list as it is now. */
    if (evtimer_pending(broker->fanout_rebind_timer, NULL)) {
        broker->revocations = revocations;
        return;
    }
    size_t len = sizeof broker->fanout_endpoint;
    if (zmq_getsockopt(broker->fanout_socket, ZMQ_LAST_ENDPOINT, broker->fanout_endpoint, &len) != 0 ||
        zmq_unbind(broker->fanout_socket, broker->fanout_endpoint) != 0) {
        /* Tried again at the next tick (the revocation is not counted as
         * done), said once. */
        if (!broker->unbind_failing)
            mg_error("broker: a key left the CURVE allow-list, but the fan-out's connections stay: %s; "
                     "retrying every second",
                     zmq_strerror(errno));
        broker->unbind_failing = 1;
        return;
    }
    broker->revocations = revocations;
    broker->unbind_failing = 0;
    mg_warn("broker: a key left the CURVE allow-list: dropping every connection of the fan-out");
    broker->rebind_since_us = broker->rebind_told_us = mg_clock_monotonic_us();
    broker->rebind_delay_us = 5000;
    s_on_fanout_rebind(-1, 0, broker);
}

/* The reply to GET mg:journal:seq sent when Redis came up. Replies come in
 * order, so any append sent before the GET has already advanced last_seq,
 * and the counter includes it: assigning is right (and follows a Redis that
 * was restored to an older state). */
static void s_on_last_seq(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_broker_t *broker = privdata;
    (void)redis;
    if (!reply) return;
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0) {
        broker->last_seq = (uint64_t)reply->integer;
        broker->last_seq_known = 1;
    } else {
        mg_warn("broker: the journal's last sequence: %s",
                reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
    }
}

/* ---- journal retention --------------------------------------------------------- */

static void s_on_trimmed(mg_journal_t *journal, const mg_journal_trim_result_t *r, void *arg) {
    mg_broker_t *broker = arg;
    (void)journal;
    broker->trim_inflight = 0;
    if (!r) return; /* logged by the journal; the next tick tries again */
    mg_metrics_add(broker->metrics.trimmed, r->trimmed);
    int forced = broker->retention.force && r->has_consumers && r->applied_min > r->slowest_seq + 1;
    if (forced) {
        /* Operators asked for it, but a consumer loses events: say so every time. */
        mg_metrics_add(broker->metrics.trimmed_forced, r->trimmed);
        mg_error("broker: retention_force: journal trimmed below sequence %" PRIu64 " (%" PRIu64
                 " entries) although consumer \"%s\" has only completed %" PRIu64
                 ": it will never see the events in between",
                 r->applied_min, r->trimmed, r->slowest, r->slowest_seq);
    } else if (r->trimmed) {
        mg_info("broker: retention: %" PRIu64 " journal entries trimmed, first kept %" PRIu64, r->trimmed,
                r->applied_min);
    }
    if (!broker->retention.force && r->has_consumers && r->wanted_min > r->slowest_seq + 1) {
        /* Held back by a slow or dead consumer: once per position, not per tick. */
        if (broker->retention_blocked_at != r->slowest_seq + 1) {
            broker->retention_blocked_at = r->slowest_seq + 1;
            mg_warn("broker: retention: consumer \"%s\" (at sequence %" PRIu64 " of %" PRIu64
                    ") holds back the trimming of the journal below %" PRIu64
                    " (if it is gone for good: maillage consumers forget %s; or set retention_force)",
                    r->slowest, r->slowest_seq, r->last_seq, r->wanted_min, r->slowest);
        }
    } else {
        broker->retention_blocked_at = 0;
    }
}

static void s_on_retention_timer(evutil_socket_t fd, short what, void *arg) {
    mg_broker_t *broker = arg;
    (void)fd;
    (void)what;
    if (broker->trim_inflight || (!broker->retention.max_age_ms && !broker->retention.max_events)) return;
    broker->retention.now_ms = mg_clock_now_ms();
    if (mg_journal_trim(broker->journal, &broker->retention, s_on_trimmed, broker) == 0)
        broker->trim_inflight = 1;
}

/* ---- Redis state ------------------------------------------------------------ */

static void s_on_redis_state(mg_redis_t *redis, int up, void *arg) {
    mg_broker_t *broker = arg;
    (void)redis;
    mg_metrics_set(broker->metrics.journal_up, up ? 1 : 0);
    if (up) {
        mg_journal_redis_up(broker->journal);
        mg_redis_command(broker->redis, s_on_last_seq, broker, "EVAL %s 2 %s %s", mg_journal_head_script,
                         MG_JOURNAL_KEY, MG_JOURNAL_SEQ_KEY);
        if (broker->journal_seen_up) {
            mg_metrics_inc(broker->metrics.redis_reconnects);
            mg_info("broker: journal available again, accepting events");
        } else {
            mg_info("broker: ready (journal available, ingest %s, fanout %s)",
                    mg_config_str(broker->cfg, "broker", "ingest"),
                    mg_config_str(broker->cfg, "broker", "fanout"));
        }
        broker->journal_seen_up = 1;
        broker->journal_down_logged = 0;
    } else if (!broker->journal_down_logged) {
        broker->journal_down_logged = 1;
        mg_warn("broker: journal unavailable; answering UNAVAILABLE until Redis is back");
    }
}

/* ---- metrics ------------------------------------------------------------------ */

#define S_ACKS      "maillage_broker_acks_total"
#define S_ACKS_HELP "Acks sent to producers, by status."
#define S_CONTACTS  "maillage_broker_contacts_total"
#define S_CONTACTS_HELP                                                                                      \
    "Contacts of journaled member events kept in mg:contact:<sid> (set) or erased (delete); the journal "    \
    "never holds them."

static void s_metrics_register(s_metrics_t *m) {
    m->accepted = mg_metrics_counter(S_ACKS "{status=\"accepted\"}", S_ACKS_HELP);
    m->duplicate = mg_metrics_counter(S_ACKS "{status=\"duplicate\"}", S_ACKS_HELP);
    m->rejected = mg_metrics_counter(S_ACKS "{status=\"rejected\"}", S_ACKS_HELP);
    m->unavailable = mg_metrics_counter(S_ACKS "{status=\"unavailable\"}", S_ACKS_HELP);
    m->published = mg_metrics_counter("maillage_broker_published_total", "Events published on the fan-out.");
    m->batches =
        mg_metrics_counter("maillage_broker_batches_total", "Batches journaled (one script call each).");
    m->redis_reconnects = mg_metrics_counter("maillage_broker_redis_reconnects_total",
                                             "Times the journal came back after a loss.");
    m->deadletters = mg_metrics_counter("maillage_broker_deadletters_total", "Dead letters stored in Redis.");
    m->deadletters_dropped = mg_metrics_counter("maillage_broker_deadletters_dropped_total",
                                                "Dead letters lost because Redis was unavailable.");
    m->acks_undelivered = mg_metrics_counter("maillage_broker_acks_undelivered_total",
                                             "Acks ZeroMQ could not deliver (producer gone or not reading).");
    m->journal_up =
        mg_metrics_gauge("maillage_broker_journal_up", "1 when the journal (Redis) is available.");
    m->inflight =
        mg_metrics_gauge("maillage_broker_inflight_batches", "Batches sent to Redis, not yet confirmed.");
    m->inflight_bytes =
        mg_metrics_gauge("maillage_broker_inflight_bytes",
                         "Bytes of the batches sent to Redis, not yet confirmed (reading pauses "
                         "at 16 MiB).");
    m->trimmed = mg_metrics_counter("maillage_broker_journal_trimmed_total",
                                    "Journal entries deleted by the retention.");
    m->trimmed_forced =
        mg_metrics_counter("maillage_broker_journal_trimmed_forced_total",
                           "Journal entries deleted by retention_force before a consumer had read them.");
    m->refused_permission =
        mg_metrics_counter("maillage_broker_refused_total{reason=\"permission\"}",
                           "Envelopes rejected by the security rules, by reason.");
    m->refused_rate = mg_metrics_counter("maillage_broker_refused_total{reason=\"rate_limit\"}",
                                         "Envelopes rejected by the security rules, by reason.");
    m->zap_allowed = mg_metrics_counter("maillage_broker_curve_handshakes_total{result=\"allowed\"}",
                                        "CURVE handshakes decided by the ZAP handler, by result.");
    m->zap_denied = mg_metrics_counter("maillage_broker_curve_handshakes_total{result=\"denied\"}",
                                       "CURVE handshakes decided by the ZAP handler, by result.");
    m->reencoded =
        mg_metrics_counter("maillage_broker_reencoded_total",
                           "Accepted envelopes journaled re-encoded (non-canonical, a NUL in a string, or a "
                           "former commune code filed under today's).");
    m->contacts_set = mg_metrics_counter(S_CONTACTS "{op=\"set\"}", S_CONTACTS_HELP);
    m->contacts_deleted = mg_metrics_counter(S_CONTACTS "{op=\"delete\"}", S_CONTACTS_HELP);
}

/* Publish the figures to Redis (mg:metrics:broker), where the gateway reads
 * every daemon's. Fire and forget: the next tick tries again. */
static void s_on_metrics_timer(evutil_socket_t fd, short what, void *arg) {
    mg_broker_t *broker = arg;
    (void)fd;
    (void)what;
    if (broker->curve) {
        /* Counters only grow: add what the handler counted since. */
        mg_metrics_add(broker->metrics.zap_allowed,
                       mg_curve_server_allowed(broker->curve) - mg_metrics_value(broker->metrics.zap_allowed));
        mg_metrics_add(broker->metrics.zap_denied,
                       mg_curve_server_denied(broker->curve) - mg_metrics_value(broker->metrics.zap_denied));
    }
    mg_redis_publish_metrics(broker->redis, "broker");
}

/* ---- life cycle -------------------------------------------------------------- */

/* Binds [broker] `key`. `sndhwm` and `rcvhwm` are ZeroMQ's high-water marks
 * per peer, in messages. */
static void *s_bind(mg_broker_t *broker, int type, const char *key, int sndhwm, int rcvhwm, char *err,
                    size_t errlen) {
    const char *endpoint = mg_config_str(broker->cfg, "broker", key);
    /* mg_broker_config_check() refused it unless allow_insecure_remote is set. */
    if (!mg_endpoint_is_local(endpoint) && !broker->curve) {
        mg_warn("broker: WARNING: [broker] %s = %s is reachable beyond this machine WITHOUT CURVE "
                "(allow_insecure_remote = true): anyone who can connect may emit in any network's name "
                "and read every event",
                key, endpoint);
    }
    void *socket = zmq_socket(broker->zmq_context, type);
    if (!socket) {
        mg_fail(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (broker->curve && mg_curve_server_apply(broker->curve, socket) != 0) {
        mg_fail(err, errlen, "[broker] %s: cannot enable CURVE: %s", key, zmq_strerror(errno));
        zmq_close(socket);
        return NULL;
    }
    int linger = 500, one = 1;
    zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(socket, ZMQ_SNDHWM, &sndhwm, sizeof(sndhwm));
    zmq_setsockopt(socket, ZMQ_RCVHWM, &rcvhwm, sizeof(rcvhwm));
    if (type == ZMQ_ROUTER) {
        /* Tell us (EHOSTUNREACH) rather than silently drop an ack for a
         * producer that is gone. */
        zmq_setsockopt(socket, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
        int64_t hard = (int64_t)broker->max_message_bytes * S_HARD_LIMIT_FACTOR + 4096;
        zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &hard, sizeof(hard));
    }
    if (zmq_bind(socket, endpoint) != 0) {
        mg_fail(err, errlen, "[broker] %s = %s: cannot bind: %s", key, endpoint, zmq_strerror(errno));
        zmq_close(socket);
        return NULL;
    }
    return socket;
}

static void s_on_shutdown_timer(evutil_socket_t fd, short what, void *arg) {
    mg_broker_t *broker = arg;
    (void)fd;
    (void)what;
    if (broker->inflight)
        mg_warn("broker: stopping with %zu batch(es) still unconfirmed by Redis", broker->inflight);
    event_base_loopexit(broker->base, NULL);
}

mg_broker_t *mg_broker_new(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen) {
    mg_broker_t *broker = mg_calloc(1, sizeof(*broker));
    broker->base = base;
    broker->cfg = cfg;
    broker->network = mg_config_str(cfg, "broker", "network");
    broker->max_message_bytes = (size_t)mg_config_int(cfg, "broker", "max_message_bytes");
    s_metrics_register(&broker->metrics);
    broker->scratch = mg_malloc(broker->max_message_bytes + S_STAMP_MAX + 16);
    if (mg_broker_config_check(cfg, err, errlen) != 0) goto err;

    char why[512];
    broker->taxonomy = mg_taxonomy_new(cfg, why, sizeof(why));
    if (!broker->taxonomy) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    broker->communes = mg_communes_load(mg_config_str(cfg, "data", "communes_file"), why, sizeof(why));
    if (!broker->communes) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    broker->zmq_context = zmq_ctx_new();
    if (!broker->zmq_context) {
        mg_fail(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto err;
    }
    if (*mg_config_str(cfg, "broker", "curve_secret_key_file")) {
        /* The ZAP handler must be bound before the sockets it protects. */
        broker->curve = mg_curve_server_new(base, broker->zmq_context, cfg, err, errlen);
        if (!broker->curve) goto err;
    }
    broker->rate_per_s = (double)mg_config_int(cfg, "broker", "rate_limit_per_s");
    broker->rate_burst = (double)mg_config_int(cfg, "broker", "rate_limit_burst");
    if (broker->rate_burst < 1) broker->rate_burst = broker->rate_per_s;
    /* What ZeroMQ receives for a producer while the broker has paused
     * reading is bounded in bytes too: S_INFLIGHT_BYTES of envelopes of
     * max_message_bytes (four times that if all are oversized ones, up to
     * S_HARD_LIMIT_FACTOR times the limit, received to be refused). */
    int ingest_rcvhwm = (int)(S_INFLIGHT_BYTES / broker->max_message_bytes);
    int fanout_hwm = (int)mg_config_int(cfg, "broker", "fanout_hwm");
    broker->ingest_socket =
        s_bind(broker, ZMQ_ROUTER, "ingest", (int)mg_config_int(cfg, "broker", "ingest_hwm"),
               ingest_rcvhwm < S_MIN_INGEST_RCVHWM ? S_MIN_INGEST_RCVHWM : ingest_rcvhwm, err, errlen);
    if (broker->ingest_socket)
        broker->fanout_socket = s_bind(broker, ZMQ_PUB, "fanout", fanout_hwm, fanout_hwm, err, errlen);
    if (!broker->ingest_socket || !broker->fanout_socket) goto err;

    broker->redis = mg_redis_new_from_config(base, cfg, s_on_redis_state, broker, why, sizeof(why));
    if (!broker->redis) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    broker->journal = mg_journal_new(broker->redis, mg_config_int(cfg, "broker", "dedupe_window_s"),
                                     mg_config_int(cfg, "broker", "deadletter_maxlen"),
                                     mg_config_int(cfg, "broker", "deadletter_contact_days") * 86400);
    broker->ingest =
        mg_zsock_new(base, broker->ingest_socket, (size_t)mg_config_int(cfg, "broker", "batch_max"),
                     s_on_message, s_on_batch, broker);
    broker->fanout = mg_zsock_new(base, broker->fanout_socket, 1, NULL, NULL, NULL);
    broker->shutdown_timer = evtimer_new(base, s_on_shutdown_timer, broker);
    broker->metrics_timer = event_new(base, -1, EV_PERSIST, s_on_metrics_timer, broker);
    broker->heartbeat_timer = event_new(base, -1, EV_PERSIST, s_on_heartbeat_timer, broker);
    broker->retention_timer = event_new(base, -1, EV_PERSIST, s_on_retention_timer, broker);
    broker->curve_timer = event_new(base, -1, EV_PERSIST, s_on_curve_timer, broker);
    broker->fanout_rebind_timer = evtimer_new(base, s_on_fanout_rebind, broker);
    if (!broker->ingest || !broker->fanout || !broker->shutdown_timer || !broker->metrics_timer ||
        !broker->heartbeat_timer || !broker->retention_timer || !broker->curve_timer ||
        !broker->fanout_rebind_timer) {
        mg_fail(err, errlen, "cannot watch the sockets: %s", strerror(errno));
        goto err;
    }
    struct timeval tv = {S_METRICS_INTERVAL_S, 0};
    event_add(broker->metrics_timer, &tv);
    if (broker->curve) {
        struct timeval second = {1, 0};
        event_add(broker->curve_timer, &second);
    }
    long long heartbeat_ms = mg_config_int(cfg, "broker", "heartbeat_ms");
    if (heartbeat_ms > 0) {
        struct timeval hb = {(time_t)(heartbeat_ms / 1000), (suseconds_t)(heartbeat_ms % 1000) * 1000};
        event_add(broker->heartbeat_timer, &hb);
    }
    broker->retention.max_age_ms = (uint64_t)mg_config_int(cfg, "broker", "retention_max_age_s") * 1000;
    broker->retention.max_events = (uint64_t)mg_config_int(cfg, "broker", "retention_max_events");
    broker->retention.force = mg_config_bool(cfg, "broker", "retention_force");
    if (broker->retention.force)
        mg_warn("broker: retention_force is on: the journal will be trimmed even below what registered "
                "consumers have read");
    struct timeval rt = {(time_t)mg_config_int(cfg, "broker", "retention_interval_s"), 0};
    event_add(broker->retention_timer, &rt);
    if (broker->curve)
        mg_info("broker: ingest %s, fanout %s, CURVE: source from each client's key; connecting to Redis",
                mg_config_str(cfg, "broker", "ingest"), mg_config_str(cfg, "broker", "fanout"));
    else
        mg_info("broker: ingest %s, fanout %s, source \"%s\"; connecting to Redis",
                mg_config_str(cfg, "broker", "ingest"), mg_config_str(cfg, "broker", "fanout"), broker->network);
    return broker;
err:
    mg_broker_destroy(&broker);
    return NULL;
}

void mg_broker_shutdown(mg_broker_t *broker) {
    if (broker->shutting_down) return;
    broker->shutting_down = 1;
    mg_zsock_pause(broker->ingest, 1);
    if (broker->inflight == 0) {
        event_base_loopexit(broker->base, NULL);
        return;
    }
    struct timeval tv = {S_SHUTDOWN_GRACE_MS / 1000, (S_SHUTDOWN_GRACE_MS % 1000) * 1000};
    evtimer_add(broker->shutdown_timer, &tv);
}

void mg_broker_destroy(mg_broker_t **broker_p) {
    if (!broker_p || !*broker_p) return;
    mg_broker_t *broker = *broker_p;
    if (broker->ingest)
        mg_info("broker: stopping; accepted %" PRIu64 ", duplicate %" PRIu64 ", rejected %" PRIu64
                ", unavailable %" PRIu64 ", published %" PRIu64 ", batches %" PRIu64
                ", redis reconnects %" PRIu64,
                mg_metrics_value(broker->metrics.accepted), mg_metrics_value(broker->metrics.duplicate),
                mg_metrics_value(broker->metrics.rejected), mg_metrics_value(broker->metrics.unavailable),
                mg_metrics_value(broker->metrics.published), mg_metrics_value(broker->metrics.batches),
                mg_metrics_value(broker->metrics.redis_reconnects));
    if (broker->metrics_timer) event_free(broker->metrics_timer);
    if (broker->heartbeat_timer) event_free(broker->heartbeat_timer);
    if (broker->retention_timer) event_free(broker->retention_timer);
    if (broker->curve_timer) event_free(broker->curve_timer);
    if (broker->fanout_rebind_timer) event_free(broker->fanout_rebind_timer);
    /* Redis first: batches still in flight are answered UNAVAILABLE through
     * the ingest socket, which must still exist. */
    mg_redis_destroy(&broker->redis);
    mg_journal_destroy(&broker->journal);
    s_batch_free(broker->batch);
    while (broker->spare) {
        s_batch_t *next = broker->spare->next;
        s_batch_free(broker->spare);
        broker->spare = next;
    }
    free(broker->scratch);
    mg_zsock_destroy(&broker->ingest);
    mg_zsock_destroy(&broker->fanout);
    if (broker->ingest_socket) zmq_close(broker->ingest_socket);
    if (broker->fanout_socket) zmq_close(broker->fanout_socket);
    mg_curve_server_destroy(&broker->curve);
    free(broker->buckets);
    if (broker->zmq_context) zmq_ctx_term(broker->zmq_context);
    if (broker->shutdown_timer) event_free(broker->shutdown_timer);
    mg_taxonomy_destroy(&broker->taxonomy);
    mg_communes_destroy(&broker->communes);
    free(broker);
    *broker_p = NULL;
}
