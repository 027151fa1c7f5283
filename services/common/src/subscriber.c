/* subscriber.c -- a consumer of the event stream that never misses an event.
 *
 * The journal is the truth and the fan-out only a fast copy of it, so the
 * whole module is one position (the last sequence completed) and a loop that
 * moves it forward one event at a time, taking each next event from wherever
 * it is available:
 *
 *   WAIT_REDIS  nothing can be read or saved: the feed is drained and dropped
 *               (only the highest sequence announced is remembered);
 *   LOADING     registration, checkpoint and journal head are being read;
 *   CATCHUP     events come from XRANGE on the journal, a page at a time,
 *               until a page comes back short and nothing newer was announced
 *               meanwhile; the feed is still drained and dropped;
 *   LIVE        events come from the feed while their sequences follow on;
 *               any jump (or a heartbeat, or the idle check, announcing a
 *               sequence beyond ours) sends us back to CATCHUP.
 *
 * Deliveries are strictly one at a time, so a handler that answers later
 * (after its own Redis round trip) holds the loop; while it does, in LIVE,
 * the SUB socket is paused and ZeroMQ buffers (and past its high-water mark
 * drops, which the next jump repairs).
 *
 * Every Redis command carries an epoch: when Redis is lost the epoch changes,
 * and replies or deliveries of an older epoch only free their memory.
 * Commands go through one connection, so Redis executes them in the order
 * they were sent: an event is parked (retry set) before the checkpoint that
 * passes it can be written, and a checkpoint never lands without the parking
 * before it. */
#include "maillage/subscriber.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "maillage/clock.h"
#include "maillage/curve.h"
#include "maillage/journal.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/zsock.h"

/* Period of the housekeeping timer (Redis state, parked events, idle check). */
#define S_TICK_MS 100
/* Silence on the feed (no event) after which the journal head is read, in
 * case the last events were journaled but never published (broker killed
 * between the two) and no heartbeat tells us. One GET a second per idle
 * consumer. */
#define S_IDLE_CHECK_MS 1000
/* Parked events read from the retry set per look. */
#define S_RETRY_FETCH 16
/* Messages the SUB socket may buffer while a delivery is in progress
 * (ZeroMQ's default; beyond it, catching up from the journal is cheaper). */
#define S_SUB_RCVHWM 1000
/* Messages read from the feed per loop turn. */
#define S_DRAIN_BATCH 256

typedef enum { S_WAIT_REDIS, S_LOADING, S_CATCHUP, S_LIVE } s_state_t;

/* A journal entry copied out of a reply (replies are borrowed). */
typedef struct {
    uint64_t seq;
    char *type;
    uint8_t *data; /* the envelope with its sequence appended */
    size_t len;
    int malformed; /* no type or no envelope (not the broker's writing): passed over */
} s_entry_t;

struct mg_delivery {
    uint64_t epoch;
    uint64_t seq;
    int retry; /* a parked event delivered again */
    int parking; /* done() with a failure: held until Redis confirms the park */
    mg_envelope_t *env;
    char event_id[MG_ID_MAX + 1];
    char type[64];
};

/* One command in flight. Linked in the subscriber so that destroying it can
 * orphan them (sub = NULL): their replies then only free the call. */
typedef struct s_call {
    mg_subscriber_t *sub;
    uint64_t epoch;
    uint64_t seq;
    uint64_t prev_checkpoint; /* a checkpoint HSET: sent_checkpoint before it */
    void (*flush_cb)(mg_subscriber_t *sub, void *arg);
    void *flush_arg;
    struct s_call *prev, *next;
} s_call_t;

struct mg_subscriber {
    struct event_base *base;
    mg_redis_t *redis;
    void *socket;
    mg_zsock_t *zsock;
    void *monitor; /* PAIR reading libzmq's handshake events of `socket` */
    mg_zsock_t *monitor_zsock;
    int handshake_warned; /* a failed handshake was logged, none succeeded since */
    char *fanout;
    mg_subscriber_handler_fn handler;
    void *arg;
    mg_subscriber_options_t opts; /* pointers below are ours */
    char name[MG_ID_MAX + 1];
    char **topics; /* NULL-terminated copy; NULL = every type */
    char *topics_joined;
    char *consumer_key, *retry_key, *attempts_key;

    s_state_t state;
    uint64_t epoch;
    uint64_t position;     /* last sequence completed */
    uint64_t sent_checkpoint; /* last position sent in an HSET */
    uint64_t highest_seen; /* highest sequence announced (feed, heartbeat, idle check) */
    uint64_t fetch_mark;   /* highest_seen when the running XRANGE was sent */
    int since_checkpoint;
    int checkpoint_inflight, checkpoint_again;
    int loaded_checkpoint_ok;
    uint64_t loaded_checkpoint;
    int went_live_once;

    s_entry_t *batch; /* catch-up page being delivered */
    size_t batch_count, batch_next;
    int batch_full; /* the last page was full: there may be more */
    int fetching;

    s_entry_t *retries; /* parked events due, read back from the journal */
    size_t retry_count, retry_next, retry_cap;
    int retry_lookups; /* XRANGE of parked events in flight */
    int retry_scanning;

    mg_delivery_t *current;
    int in_pump;
    int paused;
    int64_t last_feed_ms;
    int idle_check_inflight;

    struct event *kick, *checkpoint_timer, *tick_timer;
    s_call_t *calls;
    mg_subscriber_stats_t stats;
};

static void s_pump(mg_subscriber_t *sub);

/* The park script. KEYS: retry set, attempts hash, dead-letter stream,
 * journal. ARGV: seq, reason, max_attempts, retry_base_ms, consumer name,
 * now_ms, event_id, type, received_at_ms, deadletter maxlen. Returns the
 * attempts so far, negated when the event was dead-lettered. One script, so
 * the attempts count, the retry set and the dead letter never disagree. */
static const char s_park_script[] = MG_CONSUMER_DEADLETTER_LUA
    "local seq = ARGV[1]\n"
    "local n = redis.call('HINCRBY', KEYS[2], seq, 1)\n"
    "redis.call('HSET', KEYS[2], seq .. ':reason', ARGV[2])\n"
    "if n >= tonumber(ARGV[3]) then\n"
    "  consumer_deadletter(KEYS[3], KEYS[4], ARGV[10], seq, ARGV[2], ARGV[5], ARGV[6], ARGV[7], ARGV[8],\n"
    "                      ARGV[9], tostring(n))\n"
    "  redis.call('ZREM', KEYS[1], seq)\n"
    "  redis.call('HDEL', KEYS[2], seq, seq .. ':reason')\n"
    "  return -n\n"
    "end\n"
    "local delay = tonumber(ARGV[4]) * (2 ^ (n - 1))\n"
    "redis.call('ZADD', KEYS[1], string.format('%d', tonumber(ARGV[6]) + delay), seq)\n"
    "return n\n";

/* ---- calls ------------------------------------------------------------------- */

static s_call_t *s_call_new(mg_subscriber_t *sub, uint64_t seq) {
    s_call_t *call = mg_calloc(1, sizeof(*call));
    call->sub = sub;
    call->epoch = sub->epoch;
    call->seq = seq;
    call->next = sub->calls;
    if (sub->calls) sub->calls->prev = call;
    sub->calls = call;
    return call;
}

static void s_call_unlink(s_call_t *call) {
    mg_subscriber_t *sub = call->sub;
    if (!sub) return;
    if (call->prev) call->prev->next = call->next;
    else sub->calls = call->next;
    if (call->next) call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

/* Take a reply's call back: the subscriber, or NULL if it is gone or the
 * reply belongs to an older epoch. Frees the call; `seq_out` gets its seq. */
static mg_subscriber_t *s_call_end(s_call_t *call, uint64_t *seq_out) {
    mg_subscriber_t *sub = call->sub;
    s_call_unlink(call);
    if (seq_out) *seq_out = call->seq;
    int current = sub && call->epoch == sub->epoch;
    free(call);
    return current ? sub : NULL;
}

static int s_send_argv(mg_subscriber_t *sub, mg_redis_reply_fn cb, s_call_t *call, int argc, const char **argv,
                       const size_t *lens) {
    if (mg_redis_command_argv(sub->redis, cb, call, argc, argv, lens) != 0) {
        if (call) {
            s_call_unlink(call);
            free(call);
        }
        return -1;
    }
    return 0;
}

/* Same, with every argument a C string. */
static int s_send(mg_subscriber_t *sub, mg_redis_reply_fn cb, s_call_t *call, int argc, const char **argv) {
    size_t lens[24];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return s_send_argv(sub, cb, call, argc, argv, lens);
}

/* ---- small helpers ---------------------------------------------------------- */

static void s_entries_free(s_entry_t *entries, size_t count) {
    for (size_t i = 0; i < count; i++) {
        free(entries[i].type);
        free(entries[i].data);
    }
    free(entries);
}

static void s_batch_clear(mg_subscriber_t *sub) {
    s_entries_free(sub->batch, sub->batch_count);
    sub->batch = NULL;
    sub->batch_count = sub->batch_next = 0;
}

static void s_retries_clear(mg_subscriber_t *sub) {
    s_entries_free(sub->retries, sub->retry_count);
    sub->retries = NULL;
    sub->retry_count = sub->retry_next = sub->retry_cap = 0;
}

static void s_delivery_free(mg_delivery_t *d) {
    if (!d) return;
    mg_envelope_free(d->env);
    free(d);
}

static void s_pause(mg_subscriber_t *sub, int paused) {
    if (sub->paused == paused) return;
    sub->paused = paused;
    mg_zsock_pause(sub->zsock, paused);
}

static void s_kick(mg_subscriber_t *sub) {
    event_active(sub->kick, EV_TIMEOUT, 0);
}

static int s_matches(const mg_subscriber_t *sub, const char *type) {
    if (!sub->topics) return 1;
    for (char **t = sub->topics; *t; t++)
        if (strncmp(type, *t, strlen(*t)) == 0) return 1;
    return 0;
}

/* An integer-ish reply (integer, numeric string or nil = 0) as u64. */
static int s_reply_u64(const redisReply *reply, uint64_t *out) {
    if (reply->type == REDIS_REPLY_NIL) {
        *out = 0;
        return 0;
    }
    if (reply->type == REDIS_REPLY_INTEGER) {
        *out = reply->integer < 0 ? 0 : (uint64_t)reply->integer;
        return 0;
    }
    if (reply->type == REDIS_REPLY_STRING) return mg_redis_u64(reply->str, out);
    return -1;
}


/* Copy one XRANGE entry; 0, or -1 if it has no sequence. An entry with a
 * sequence but no type or envelope is copied as `malformed`, so that it is
 * passed over, not read again and again. */
static int s_entry_copy(const redisReply *entry, s_entry_t *out) {
    memset(out, 0, sizeof(*out));
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING || mg_redis_u64(entry->element[0]->str, &out->seq) != 0)
        return -1;
    const redisReply *type = mg_redis_field(entry->element[1], MG_JOURNAL_FIELD_TYPE);
    const redisReply *env = mg_redis_field(entry->element[1], MG_JOURNAL_FIELD_ENVELOPE);
    if (!type || !env) {
        out->malformed = 1;
        return 0;
    }
    out->type = mg_strndup(type->str, (size_t)type->len);
    out->data = mg_malloc((size_t)env->len + 11);
    out->len = mg_envelope_append_sequence((const uint8_t *)env->str, (size_t)env->len, out->seq, out->data);
    return 0;
}

/* ---- Redis lost and found ---------------------------------------------------- */

/* Start a new epoch in WAIT_REDIS: the tick starts again from the
 * checkpoint in Redis. Every reply still due belongs to the old epoch and
 * will only free its call, so every in-flight flag is cleared here, or it
 * would stay set for the life of the process (the checkpoint frozen, parked
 * events never scanned, the idle check never run again). A delivery whose
 * handler is done but whose park is unconfirmed is dropped (it comes again
 * from the checkpoint); one still with its handler is left to finish (its
 * done() will only free it), so that the handler still sees one event at a
 * time. Every epoch change goes through here. */
static void s_restart(mg_subscriber_t *sub) {
    sub->state = S_WAIT_REDIS;
    sub->epoch++;
    s_batch_clear(sub);
    s_retries_clear(sub);
    sub->fetching = sub->retry_lookups = sub->retry_scanning = 0;
    sub->checkpoint_inflight = sub->checkpoint_again = 0;
    sub->idle_check_inflight = 0;
    if (sub->current && sub->current->parking) {
        s_delivery_free(sub->current);
        sub->current = NULL;
    }
    s_pause(sub, 0); /* drain and drop meanwhile */
}

/* Stop everything that needs Redis; resume from the checkpoint when it is
 * back. */
static void s_redis_lost(mg_subscriber_t *sub) {
    if (sub->state == S_WAIT_REDIS) return;
    mg_warn("subscriber %s: Redis lost at sequence %" PRIu64 "; pausing, will resume from the checkpoint",
            sub->name, sub->position);
    sub->stats.redis_losses++;
    s_restart(sub);
}

static void s_checkpoint(mg_subscriber_t *sub, void (*flush_cb)(mg_subscriber_t *, void *), void *flush_arg);

static void s_on_loaded(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    mg_subscriber_t *sub = s_call_end(privdata, NULL);
    if (!sub) return;
    uint64_t head;
    if (!reply) {
        s_redis_lost(sub);
        return;
    }
    if (!sub->loaded_checkpoint_ok || s_reply_u64(reply, &head) != 0) {
        mg_error("subscriber %s: cannot read the checkpoint or the journal head%s%s; retrying", sub->name,
                 reply->type == REDIS_REPLY_ERROR ? ": " : "", reply->type == REDIS_REPLY_ERROR ? reply->str : "");
        s_restart(sub); /* the tick starts again */
        return;
    }
    uint64_t checkpoint = sub->loaded_checkpoint;
    sub->position = sub->sent_checkpoint = checkpoint;
    if (checkpoint > head) {
        /* The journal is behind our checkpoint: Redis lost its last writes
         * (a crash within an appendfsync everysec second) or was reset.
         * Events will be journaled again under these numbers: take them,
         * and say so in Redis at once (read again after another loss, the
         * old checkpoint would skip those journaled meanwhile). */
        mg_warn("subscriber %s: checkpoint %" PRIu64 " is beyond the journal head %" PRIu64
                "; resuming from the head",
                sub->name, checkpoint, head);
        checkpoint = sub->position = head;
    }
    sub->since_checkpoint = 0;
    sub->state = S_CATCHUP;
    sub->batch_full = 1; /* read at least once */
    mg_info("subscriber %s: checkpoint %" PRIu64 ", journal head %" PRIu64 "; catching up", sub->name,
            checkpoint, head);
    s_checkpoint(sub, NULL, NULL); /* only if lowered */
    s_pump(sub);
}

static void s_on_checkpoint_read(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    mg_subscriber_t *sub = s_call_end(privdata, NULL);
    if (!sub || !reply) return; /* the GET after it sees the loss too */
    sub->loaded_checkpoint_ok = s_reply_u64(reply, &sub->loaded_checkpoint) == 0;
}

/* Register, then read the checkpoint and the journal head, pipelined. */
static void s_start(mg_subscriber_t *sub) {
    s_restart(sub);
    sub->state = S_LOADING;
    sub->loaded_checkpoint_ok = 0;
    char pid[24], host[256] = "";
    snprintf(pid, sizeof(pid), "%ld", (long)getpid());
    gethostname(host, sizeof(host) - 1);
    const char *sadd[] = {"SADD", MG_CONSUMERS_KEY, sub->name};
    const char *hset[] = {"HSET", sub->consumer_key, "topics", sub->topics_joined, "pid", pid, "host", host};
    const char *hget[] = {"HGET", sub->consumer_key, "seq"};
    const char *get[] = {"EVAL", mg_journal_head_script, "2", MG_JOURNAL_KEY, MG_JOURNAL_SEQ_KEY};
    if (s_send(sub, NULL, NULL, 3, sadd) != 0 || s_send(sub, NULL, NULL, 8, hset) != 0 ||
        s_send(sub, s_on_checkpoint_read, s_call_new(sub, 0), 3, hget) != 0 ||
        s_send(sub, s_on_loaded, s_call_new(sub, 0), 5, get) != 0) {
        s_restart(sub);
    }
}

void mg_subscriber_redis_state(mg_subscriber_t *sub, int up) {
    if (!sub) return;
    if (!up) {
        s_redis_lost(sub);
    } else if (sub->state == S_WAIT_REDIS) {
        s_start(sub);
    }
}

/* ---- checkpoint ------------------------------------------------------------------ */

static void s_on_checkpoint_saved(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    s_call_t *call = privdata;
    void (*flush_cb)(mg_subscriber_t *, void *) = call->flush_cb;
    void *flush_arg = call->flush_arg;
    uint64_t prev_checkpoint = call->prev_checkpoint;
    mg_subscriber_t *owner = call->sub;
    uint64_t seq;
    mg_subscriber_t *sub = s_call_end(call, &seq);
    if (sub && reply && reply->type == REDIS_REPLY_ERROR && sub->sent_checkpoint == seq) {
        /* Refused (-OOM, -READONLY...): as if never sent, so that the next
         * tick sends it again even if the position does not move. */
        sub->sent_checkpoint = prev_checkpoint;
        if (flush_cb) mg_error("subscriber %s: checkpoint %" PRIu64 " refused: %s", sub->name, seq, reply->str);
    }
    if (sub && !flush_cb) {
        sub->checkpoint_inflight = 0;
        if (!reply) {
            s_redis_lost(sub);
        } else if (reply->type == REDIS_REPLY_ERROR) {
            mg_error("subscriber %s: checkpoint %" PRIu64 " refused: %s", sub->name, seq, reply->str);
            sub->checkpoint_again = 0; /* the next tick sends it */
        } else {
            sub->stats.checkpoints++;
            if (sub->checkpoint_again) {
                sub->checkpoint_again = 0;
                s_checkpoint(sub, NULL, NULL);
            }
        }
    } else if (sub && reply && reply->type != REDIS_REPLY_ERROR) {
        sub->stats.checkpoints++;
    }
    if (flush_cb && owner) flush_cb(owner, flush_arg);
}

/* HSET the position now. Without flush_cb, at most one is in flight (a
 * request meanwhile is remembered); a flush always sends its own. */
static void s_checkpoint(mg_subscriber_t *sub, void (*flush_cb)(mg_subscriber_t *, void *), void *flush_arg) {
    if (!flush_cb) {
        if (sub->position == sub->sent_checkpoint) return;
        if (sub->checkpoint_inflight) {
            sub->checkpoint_again = 1;
            return;
        }
    }
    char seq[24], now[24];
    snprintf(seq, sizeof(seq), "%" PRIu64, sub->position);
    snprintf(now, sizeof(now), "%" PRId64, mg_clock_now_ms());
    const char *argv[] = {"HSET", sub->consumer_key, "seq", seq, "updated_at_ms", now};
    s_call_t *call = s_call_new(sub, sub->position);
    call->prev_checkpoint = sub->sent_checkpoint;
    call->flush_cb = flush_cb;
    call->flush_arg = flush_arg;
    if (s_send(sub, s_on_checkpoint_saved, call, 6, argv) != 0) {
        if (flush_cb) flush_cb(sub, flush_arg);
        return;
    }
    sub->sent_checkpoint = sub->position;
    sub->since_checkpoint = 0;
    if (!flush_cb) sub->checkpoint_inflight = 1;
}

static void s_on_checkpoint_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    mg_subscriber_t *sub = arg;
    if (sub->state == S_CATCHUP || sub->state == S_LIVE) s_checkpoint(sub, NULL, NULL);
}

/* The position moved past one more event. */
static void s_completed(mg_subscriber_t *sub, uint64_t seq) {
    sub->position = seq;
    if (++sub->since_checkpoint >= sub->opts.checkpoint_every) s_checkpoint(sub, NULL, NULL);
}

/* ---- parking ---------------------------------------------------------------------- */

static void s_release(mg_subscriber_t *sub, mg_delivery_t *d);

/* The park script answered: only now may the position pass the event. On
 * an error (-OOM under maxmemory, -BUSY...) the event is in neither the
 * retry set nor the dead letters: start again from the checkpoint, which
 * is not past it, as when Redis is lost (one more idempotent delivery). */
static void s_on_parked(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    uint64_t seq;
    mg_subscriber_t *sub = s_call_end(privdata, &seq);
    if (!sub) return; /* the restart that changed the epoch freed the delivery */
    mg_delivery_t *d = sub->current;
    if (!reply) {
        s_redis_lost(sub);
        return;
    }
    if (reply->type != REDIS_REPLY_INTEGER) {
        mg_error("subscriber %s: parking sequence %" PRIu64 " failed: %s; starting again from the checkpoint",
                 sub->name, seq, reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        s_restart(sub);
        s_kick(sub);
        return;
    }
    if (reply->integer < 0) {
        sub->stats.deadlettered++;
        mg_warn("subscriber %s: sequence %" PRIu64 " dead-lettered after %lld attempts", sub->name, seq,
                -reply->integer);
    }
    /* Same epoch, one delivery at a time: the current one is this park's. */
    if (d && d->parking && d->seq == seq) {
        sub->current = NULL;
        s_release(sub, d);
    }
}

/* Count a failed attempt: retry later, or dead-letter. 0 if sent. */
static int s_park(mg_subscriber_t *sub, const mg_delivery_t *d, const char *reason) {
    char seq[24], max[16], base[16], now[24], received[24], maxlen[24];
    snprintf(seq, sizeof(seq), "%" PRIu64, d->seq);
    snprintf(max, sizeof(max), "%d", sub->opts.max_attempts);
    snprintf(base, sizeof(base), "%d", sub->opts.retry_base_ms);
    snprintf(now, sizeof(now), "%" PRId64, mg_clock_now_ms());
    snprintf(received, sizeof(received), "%" PRId64, d->env ? (int64_t)d->env->received_at_ms : (int64_t)0);
    snprintf(maxlen, sizeof(maxlen), "%lld", sub->opts.deadletter_maxlen);
    const char *argv[] = {"EVAL",
                          s_park_script,
                          "4",
                          sub->retry_key,
                          sub->attempts_key,
                          MG_DEADLETTER_KEY,
                          MG_JOURNAL_KEY,
                          seq,
                          reason,
                          max,
                          base,
                          sub->name,
                          now,
                          d->event_id,
                          d->type,
                          received,
                          maxlen};
    return s_send(sub, s_on_parked, s_call_new(sub, d->seq), 17, argv);
}

/* A parked event went through: forget it. Lost on a lost connection, which
 * only means one more (idempotent) delivery later. */
static int s_unpark(mg_subscriber_t *sub, uint64_t seq) {
    char s[24], r[40];
    snprintf(s, sizeof(s), "%" PRIu64, seq);
    snprintf(r, sizeof(r), "%" PRIu64 ":reason", seq);
    const char *zrem[] = {"ZREM", sub->retry_key, s};
    const char *hdel[] = {"HDEL", sub->attempts_key, s, r};
    if (s_send(sub, NULL, NULL, 3, zrem) != 0) return -1;
    return s_send(sub, NULL, NULL, 4, hdel);
}

static void s_on_retry_entry(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    uint64_t seq;
    mg_subscriber_t *sub = s_call_end(privdata, &seq);
    if (!sub) return;
    if (!reply) {
        s_redis_lost(sub);
        return;
    }
    sub->retry_lookups--;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
        if (sub->retry_count == sub->retry_cap) {
            sub->retry_cap = sub->retry_cap ? sub->retry_cap * 2 : S_RETRY_FETCH;
            sub->retries = mg_realloc(sub->retries, sub->retry_cap * sizeof(*sub->retries));
        }
        s_entry_t *e = &sub->retries[sub->retry_count];
        if (s_entry_copy(reply->element[0], e) == 0 && !e->malformed) {
            sub->retry_count++;
        } else {
            mg_error("subscriber %s: parked sequence %" PRIu64 " is malformed in %s (no type or envelope); "
                     "forgetting it",
                     sub->name, seq, MG_JOURNAL_KEY);
            s_unpark(sub, seq);
        }
    } else if (reply->type == REDIS_REPLY_ARRAY) {
        mg_warn("subscriber %s: parked sequence %" PRIu64 " is no longer in the journal; forgetting it",
                sub->name, seq);
        s_unpark(sub, seq);
    }
    if (sub->retry_lookups == 0) {
        sub->retry_scanning = 0;
        s_pump(sub);
    }
}

static void s_on_retry_due(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    mg_subscriber_t *sub = s_call_end(privdata, NULL);
    if (!sub) return;
    if (!reply) {
        s_redis_lost(sub);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        sub->retry_scanning = 0;
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        uint64_t seq;
        if (reply->element[i]->type != REDIS_REPLY_STRING || mg_redis_u64(reply->element[i]->str, &seq) != 0)
            continue;
        char id[32];
        snprintf(id, sizeof(id), "%" PRIu64 "-0", seq);
        const char *argv[] = {"XRANGE", MG_JOURNAL_KEY, id, id};
        if (s_send(sub, s_on_retry_entry, s_call_new(sub, seq), 4, argv) != 0) {
            s_redis_lost(sub);
            return;
        }
        sub->retry_lookups++;
    }
    if (sub->retry_lookups == 0) sub->retry_scanning = 0;
}

/* Look for parked events whose time has come. Not while one is being
 * retried: the retry set still shows it as due until its done(). */
static void s_scan_retries(mg_subscriber_t *sub) {
    if (sub->retry_scanning || sub->retry_next < sub->retry_count || (sub->current && sub->current->retry))
        return;
    s_retries_clear(sub);
    char now[24], limit[16];
    snprintf(now, sizeof(now), "%" PRId64, mg_clock_now_ms());
    snprintf(limit, sizeof(limit), "%d", S_RETRY_FETCH);
    const char *argv[] = {"ZRANGEBYSCORE", sub->retry_key, "-inf", now, "LIMIT", "0", limit};
    if (s_send(sub, s_on_retry_due, s_call_new(sub, 0), 7, argv) == 0) sub->retry_scanning = 1;
}

/* ---- delivering ---------------------------------------------------------------- */

/* Hand one event to the handler (or skip it if not of our topics). */
static void s_deliver(mg_subscriber_t *sub, uint64_t seq, const char *type, const uint8_t *data, size_t len,
                      int retry, int from_journal) {
    if (!retry && !s_matches(sub, type)) {
        sub->stats.skipped++;
        s_completed(sub, seq);
        return;
    }
    mg_delivery_t *d = mg_calloc(1, sizeof(*d));
    d->epoch = sub->epoch;
    d->seq = seq;
    d->retry = retry;
    snprintf(d->type, sizeof(d->type), "%s", type);
    d->env = mg_envelope_unpack(data, len);
    sub->current = d;
    if (retry) {
        sub->stats.retried++;
    } else {
        sub->stats.delivered++;
        if (from_journal) sub->stats.from_journal++;
    }
    if (!d->env) {
        mg_subscriber_done(sub, d, "not a protobuf Envelope");
        return;
    }
    d->env->sequence = seq;
    if (d->env->event_id && mg_id_is_valid(d->env->event_id))
        snprintf(d->event_id, sizeof(d->event_id), "%s", d->env->event_id);
    sub->handler(sub, d->env, d, sub->arg);
    /* Answered later: hold the feed meanwhile (ZeroMQ buffers it). The
     * pointer is only compared, never followed. */
    if (sub->current == d && sub->state == S_LIVE) s_pause(sub, 1);
}

void mg_subscriber_done(mg_subscriber_t *sub, mg_delivery_t *d, const char *reason) {
    if (sub->current == d) sub->current = NULL;
    if (d->epoch != sub->epoch || (sub->state != S_CATCHUP && sub->state != S_LIVE)) {
        /* Redis was lost meanwhile: the event comes again from the checkpoint. */
        s_delivery_free(d);
        s_kick(sub);
        return;
    }
    if (reason) {
        mg_debug("subscriber %s: sequence %" PRIu64 " (%s) failed: %s", sub->name, d->seq, d->type, reason);
        if (!mg_redis_is_up(sub->redis) || s_park(sub, d, reason) != 0) {
            /* Most likely the failure was Redis going away: do not move. */
            s_delivery_free(d);
            s_redis_lost(sub);
            s_kick(sub);
            return;
        }
        sub->stats.failed++;
        /* Hold the position (and the next delivery) until Redis confirms
         * the park: s_on_parked() releases it. */
        d->parking = 1;
        sub->current = d;
        return;
    }
    if (d->retry) s_unpark(sub, d->seq);
    s_release(sub, d);
}

/* A delivery is over (succeeded, or its failure safely parked): move past
 * it and go on. Frees `d`, which must no longer be current. */
static void s_release(mg_subscriber_t *sub, mg_delivery_t *d) {
    if (!d->retry) s_completed(sub, d->seq);
    s_delivery_free(d);
    s_pause(sub, 0);
    if (!sub->in_pump) s_pump(sub);
}

/* Read the next page of the journal. */
static void s_on_page(mg_redis_t *redis, redisReply *reply, void *privdata);

static void s_fetch(mg_subscriber_t *sub) {
    char from[32], count[16];
    snprintf(from, sizeof(from), "%" PRIu64 "-0", sub->position + 1);
    snprintf(count, sizeof(count), "%d", sub->opts.catchup_batch);
    const char *argv[] = {"XRANGE", MG_JOURNAL_KEY, from, "+", "COUNT", count};
    if (s_send(sub, s_on_page, s_call_new(sub, 0), 6, argv) != 0) {
        s_redis_lost(sub);
        return;
    }
    sub->fetching = 1;
    sub->fetch_mark = sub->highest_seen;
    sub->stats.journal_reads++;
}

static void s_on_page(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    mg_subscriber_t *sub = s_call_end(privdata, NULL);
    if (!sub) return;
    if (!reply) {
        s_redis_lost(sub);
        return;
    }
    sub->fetching = 0;
    if (reply->type != REDIS_REPLY_ARRAY) {
        mg_error("subscriber %s: XRANGE %s: %s; retrying", sub->name, MG_JOURNAL_KEY,
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
        s_restart(sub); /* the tick starts again */
        return;
    }
    s_batch_clear(sub);
    sub->batch = mg_calloc(reply->elements ? reply->elements : 1, sizeof(*sub->batch));
    for (size_t i = 0; i < reply->elements; i++) {
        if (s_entry_copy(reply->element[i], &sub->batch[sub->batch_count]) != 0) {
            mg_error("subscriber %s: an entry of %s without a sequence; skipped", sub->name, MG_JOURNAL_KEY);
            continue;
        }
        sub->batch_count++;
    }
    sub->batch_full = reply->elements >= (size_t)sub->opts.catchup_batch;
    if (!sub->batch_full) {
        /* We read to the end. Anything announced before the read was sent
         * should have been in it; if not, the journal lost it (Redis
         * restarted from an older AOF): stop waiting for it. */
        uint64_t end = sub->batch_count ? sub->batch[sub->batch_count - 1].seq : sub->position;
        if (sub->highest_seen == sub->fetch_mark && sub->highest_seen > end) {
            mg_warn("subscriber %s: sequence %" PRIu64 " was announced but the journal ends at %" PRIu64, sub->name,
                    sub->highest_seen, end);
            sub->highest_seen = end;
        }
    }
    s_pump(sub);
}

static void s_go_live(mg_subscriber_t *sub) {
    sub->state = S_LIVE;
    sub->last_feed_ms = mg_clock_now_ms();
    if (!sub->went_live_once) {
        sub->went_live_once = 1;
        mg_info("subscriber %s: live at sequence %" PRIu64, sub->name, sub->position);
    } else {
        mg_debug("subscriber %s: live again at sequence %" PRIu64, sub->name, sub->position);
    }
    s_pause(sub, 0);
}

/* Deliver whatever can be delivered now, one event at a time. Handlers that
 * answer at once make this a loop rather than a recursion. */
static void s_pump(mg_subscriber_t *sub) {
    if (sub->in_pump) return;
    sub->in_pump = 1;
    while (!sub->current && (sub->state == S_CATCHUP || sub->state == S_LIVE)) {
        if (sub->retry_next < sub->retry_count) {
            s_entry_t *e = &sub->retries[sub->retry_next++];
            s_deliver(sub, e->seq, e->type, e->data, e->len, 1, 1);
            continue;
        }
        if (sub->state == S_LIVE) {
            if (sub->highest_seen <= sub->position) break;
            /* A jump: fill it from the journal before anything newer. */
            sub->state = S_CATCHUP;
            sub->stats.gaps++;
            mg_debug("subscriber %s: gap after %" PRIu64 " (up to %" PRIu64 " announced); catching up", sub->name,
                     sub->position, sub->highest_seen);
            sub->batch_full = 1;
        }
        if (sub->batch_next < sub->batch_count) {
            s_entry_t *e = &sub->batch[sub->batch_next++];
            if (e->seq <= sub->position) continue;
            if (e->seq > sub->position + 1)
                mg_warn("subscriber %s: sequences %" PRIu64 " to %" PRIu64 " are no longer in the journal (trimmed)",
                        sub->name, sub->position + 1, e->seq - 1);
            if (e->malformed) {
                mg_error("subscriber %s: sequence %" PRIu64 " is malformed in %s (no type or envelope); passed over",
                         sub->name, e->seq, MG_JOURNAL_KEY);
                sub->stats.skipped++;
                s_completed(sub, e->seq);
                continue;
            }
            s_deliver(sub, e->seq, e->type, e->data, e->len, 0, 1);
            continue;
        }
        if (sub->fetching) break;
        if (sub->batch_full || sub->highest_seen > sub->position) {
            s_fetch(sub);
            break;
        }
        s_batch_clear(sub);
        s_go_live(sub);
        break;
    }
    sub->in_pump = 0;
}

static void s_on_kick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    s_pump(arg);
}

/* ---- the feed -------------------------------------------------------------------- */

static uint64_t s_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void s_announce(mg_subscriber_t *sub, uint64_t seq) {
    if (seq > sub->highest_seen) sub->highest_seen = seq;
}

static void s_on_message(mg_zsock_t *zsock, zmq_msg_t *frames, size_t frame_count, void *arg) {
    (void)zsock;
    mg_subscriber_t *sub = arg;
    if (frame_count < 2 || zmq_msg_size(&frames[1]) != 8) return;
    const char *topic = zmq_msg_data(&frames[0]);
    size_t topic_len = zmq_msg_size(&frames[0]);
    uint64_t seq = s_be64(zmq_msg_data(&frames[1]));
    if (frame_count == 2) {
        if (topic_len == strlen(MG_HEARTBEAT_TOPIC) && memcmp(topic, MG_HEARTBEAT_TOPIC, topic_len) == 0) {
            s_announce(sub, seq);
            if (sub->state == S_LIVE && !sub->current && seq > sub->position) s_pump(sub);
        }
        return;
    }
    if (frame_count != 3 || topic_len == 0 || topic_len >= 64) return;
    /* Events only: heartbeats say what the broker knows, the idle check
     * reads what the journal holds (it may know more, e.g. after a broker
     * restored from an older state). */
    sub->last_feed_ms = mg_clock_now_ms();
    if (sub->state != S_LIVE || sub->current || seq != sub->position + 1) {
        /* Not ours to deliver now: the journal has it. A sequence beyond
         * the next one is a gap; one already passed is a leftover. */
        if (seq > sub->position) s_announce(sub, seq);
        if (sub->state == S_LIVE && !sub->current && seq > sub->position + 1) s_pump(sub);
        return;
    }
    char type[64];
    memcpy(type, topic, topic_len);
    type[topic_len] = '\0';
    s_announce(sub, seq);
    s_deliver(sub, seq, type, zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]), 0, 0);
}

/* ---- housekeeping ------------------------------------------------------------------ */

static void s_on_head(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    mg_subscriber_t *sub = s_call_end(privdata, NULL);
    if (!sub) return;
    sub->idle_check_inflight = 0;
    if (!reply) {
        s_redis_lost(sub);
        return;
    }
    uint64_t head;
    if (s_reply_u64(reply, &head) == 0 && head > sub->position) {
        s_announce(sub, head);
        s_pump(sub);
    }
}

static void s_on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    mg_subscriber_t *sub = arg;
    int up = mg_redis_is_up(sub->redis);
    /* In case the daemon does not forward every state change. */
    if (sub->state == S_WAIT_REDIS) {
        if (up) s_start(sub);
        return;
    }
    if (!up) {
        s_redis_lost(sub);
        return;
    }
    if (sub->state != S_CATCHUP && sub->state != S_LIVE) return;
    s_scan_retries(sub);
    int64_t now = mg_clock_now_ms();
    if (sub->state == S_LIVE && !sub->current && !sub->idle_check_inflight &&
        now - sub->last_feed_ms >= S_IDLE_CHECK_MS) {
        const char *argv[] = {"EVAL", mg_journal_head_script, "2", MG_JOURNAL_KEY, MG_JOURNAL_SEQ_KEY};
        if (s_send(sub, s_on_head, s_call_new(sub, 0), 5, argv) == 0) sub->idle_check_inflight = 1;
        sub->last_feed_ms = now;
    }
}

/* ---- life cycle ----------------------------------------------------------------------- */

static int s_valid_topic(const char *t) {
    size_t n = strlen(t);
    if (n == 0 || n >= 64) return 0;
    for (const char *p = t; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_')) return 0;
    return 1;
}

/* The fan-out socket's handshakes: log once per streak of failures why
 * the broker refuses it (a CURVE key not in its allow-list...). */
static void s_on_monitor(mg_zsock_t *zsock, zmq_msg_t *frames, size_t frame_count, void *arg) {
    mg_subscriber_t *sub = arg;
    (void)zsock;
    if (frame_count < 1 || zmq_msg_size(&frames[0]) < 6) return;
    uint16_t event;
    uint32_t value;
    memcpy(&event, zmq_msg_data(&frames[0]), sizeof(event));
    memcpy(&value, (const char *)zmq_msg_data(&frames[0]) + 2, sizeof(value));
    char why[256];
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        if (sub->handshake_warned)
            mg_info("subscriber %s: connected to the fan-out %s", sub->name, sub->fanout);
        sub->handshake_warned = 0;
    } else if (mg_curve_handshake_failure(event, value, why, sizeof why) && !sub->handshake_warned) {
        mg_warn("subscriber %s: fan-out %s: %s; retrying (new events are read from the journal meanwhile)",
                sub->name, sub->fanout, why);
        sub->handshake_warned = 1;
    }
}

mg_subscriber_t *mg_subscriber_new(struct event_base *base, void *zmq_context, mg_redis_t *redis,
                                   const mg_subscriber_options_t *opts, mg_subscriber_handler_fn handler, void *arg,
                                   char *err, size_t errlen) {
    if (!opts || !opts->name || !mg_id_is_valid(opts->name)) {
        snprintf(err, errlen, "consumer name \"%s\": expected 1 to %d of [A-Za-z0-9._:-]",
                 opts && opts->name ? opts->name : "", MG_ID_MAX);
        return NULL;
    }
    if (!opts->fanout || !*opts->fanout || !handler || !redis || !base || !zmq_context) {
        snprintf(err, errlen, "subscriber %s: fan-out endpoint, handler, Redis and loops are required", opts->name);
        return NULL;
    }
    size_t topic_count = 0;
    if (opts->topics) {
        for (; opts->topics[topic_count]; topic_count++) {
            if (!s_valid_topic(opts->topics[topic_count])) {
                snprintf(err, errlen, "subscriber %s: topic \"%s\": expected a type prefix of [a-z0-9._]",
                         opts->name, opts->topics[topic_count]);
                return NULL;
            }
        }
    }

    mg_subscriber_t *sub = mg_calloc(1, sizeof(*sub));
    sub->base = base;
    sub->redis = redis;
    sub->handler = handler;
    sub->arg = arg;
    sub->opts = *opts;
    if (sub->opts.checkpoint_every <= 0) sub->opts.checkpoint_every = 100;
    if (sub->opts.checkpoint_interval_ms <= 0) sub->opts.checkpoint_interval_ms = 200;
    if (sub->opts.max_attempts <= 0) sub->opts.max_attempts = 5;
    if (sub->opts.retry_base_ms <= 0) sub->opts.retry_base_ms = 500;
    if (sub->opts.catchup_batch <= 0) sub->opts.catchup_batch = 1000;
    if (sub->opts.deadletter_maxlen <= 0) sub->opts.deadletter_maxlen = 100000;
    snprintf(sub->name, sizeof(sub->name), "%s", opts->name);
    sub->opts.name = sub->name;
    sub->opts.fanout = NULL;
    sub->opts.topics = NULL;
    size_t joined = 1;
    if (topic_count) {
        sub->topics = mg_calloc(topic_count + 1, sizeof(*sub->topics));
        for (size_t i = 0; i < topic_count; i++) {
            sub->topics[i] = mg_strdup(opts->topics[i]);
            joined += strlen(opts->topics[i]) + 1;
        }
    }
    sub->topics_joined = mg_calloc(1, joined + 1);
    if (!topic_count) strcpy(sub->topics_joined, "*");
    for (size_t i = 0; i < topic_count; i++) {
        if (i) strcat(sub->topics_joined, ",");
        strcat(sub->topics_joined, sub->topics[i]);
    }
    sub->consumer_key = mg_asprintf("%s%s", MG_CONSUMER_KEY_PREFIX, sub->name);
    sub->retry_key = mg_asprintf("%s%s", MG_RETRY_KEY_PREFIX, sub->name);
    sub->attempts_key = mg_asprintf("%s%s:attempts", MG_RETRY_KEY_PREFIX, sub->name);
    sub->state = S_WAIT_REDIS;

    sub->socket = zmq_socket(zmq_context, ZMQ_SUB);
    if (!sub->socket) {
        snprintf(err, errlen, "subscriber %s: zmq_socket: %s", sub->name, zmq_strerror(errno));
        goto err;
    }
    int hwm = S_SUB_RCVHWM, linger = 0;
    zmq_setsockopt(sub->socket, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sub->socket, ZMQ_LINGER, &linger, sizeof(linger));
    /* Every topic: filtering here keeps the sequence dense, so a jump is
     * always a gap (and the heartbeat comes in too). */
    zmq_setsockopt(sub->socket, ZMQ_SUBSCRIBE, "", 0);
    /* A CURVE client when the process was given keys (curve.h). */
    if (mg_curve_client_apply(sub->socket) != 0) {
        snprintf(err, errlen, "subscriber %s: cannot enable CURVE: %s", sub->name, zmq_strerror(errno));
        goto err;
    }
    /* A refused CURVE key leaves the feed silent (the idle check still
     * finds the new events in the journal): say why in the log. */
    sub->fanout = mg_strdup(opts->fanout ? opts->fanout : "(none)");
    char monitor_endpoint[64];
    snprintf(monitor_endpoint, sizeof monitor_endpoint, "inproc://mg-subscriber-monitor-%p", (void *)sub);
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL;
    if (zmq_socket_monitor(sub->socket, monitor_endpoint, events) != 0 ||
        !(sub->monitor = zmq_socket(zmq_context, ZMQ_PAIR)) ||
        zmq_setsockopt(sub->monitor, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_connect(sub->monitor, monitor_endpoint) != 0 ||
        !(sub->monitor_zsock = mg_zsock_new(base, sub->monitor, 64, s_on_monitor, NULL, sub))) {
        snprintf(err, errlen, "subscriber %s: cannot monitor the fan-out socket: %s", sub->name,
                 zmq_strerror(errno));
        goto err;
    }
    if (zmq_connect(sub->socket, opts->fanout) != 0) {
        snprintf(err, errlen, "subscriber %s: fan-out %s: %s", sub->name, opts->fanout, zmq_strerror(errno));
        goto err;
    }
    sub->zsock = mg_zsock_new(base, sub->socket, S_DRAIN_BATCH, s_on_message, NULL, sub);
    sub->kick = event_new(base, -1, 0, s_on_kick, sub);
    sub->checkpoint_timer = event_new(base, -1, EV_PERSIST, s_on_checkpoint_timer, sub);
    sub->tick_timer = event_new(base, -1, EV_PERSIST, s_on_tick, sub);
    if (!sub->zsock || !sub->kick || !sub->checkpoint_timer || !sub->tick_timer) {
        snprintf(err, errlen, "subscriber %s: cannot watch the fan-out", sub->name);
        goto err;
    }
    struct timeval ckpt = {sub->opts.checkpoint_interval_ms / 1000, (sub->opts.checkpoint_interval_ms % 1000) * 1000};
    struct timeval tick = {0, S_TICK_MS * 1000};
    event_add(sub->checkpoint_timer, &ckpt);
    event_add(sub->tick_timer, &tick);
    /* Redis may already be up: start from the loop, never inside new(). */
    event_active(sub->tick_timer, EV_TIMEOUT, 0);
    return sub;
err:
    mg_subscriber_destroy(&sub);
    return NULL;
}

void mg_subscriber_flush(mg_subscriber_t *sub, void (*cb)(mg_subscriber_t *sub, void *arg), void *arg) {
    if (sub->state != S_CATCHUP && sub->state != S_LIVE) {
        /* Nothing read since Redis was lost: the checkpoint in Redis stands. */
        if (cb) cb(sub, arg);
        return;
    }
    if (cb) {
        s_checkpoint(sub, cb, arg);
    } else {
        s_checkpoint(sub, NULL, NULL);
    }
}

uint64_t mg_subscriber_position(const mg_subscriber_t *sub) {
    return sub->position;
}

void mg_subscriber_stats(const mg_subscriber_t *sub, mg_subscriber_stats_t *out) {
    *out = sub->stats;
}

int mg_subscriber_is_live(const mg_subscriber_t *sub) {
    return sub->state == S_LIVE;
}

void mg_subscriber_destroy(mg_subscriber_t **sub_p) {
    if (!sub_p || !*sub_p) return;
    mg_subscriber_t *sub = *sub_p;
    for (s_call_t *call = sub->calls; call; call = call->next)
        call->sub = NULL;
    s_delivery_free(sub->current);
    s_batch_clear(sub);
    s_retries_clear(sub);
    mg_zsock_destroy(&sub->zsock);
    mg_zsock_destroy(&sub->monitor_zsock);
    if (sub->socket) {
        zmq_socket_monitor(sub->socket, NULL, 0);
        zmq_close(sub->socket);
    }
    if (sub->monitor) zmq_close(sub->monitor);
    free(sub->fanout);
    if (sub->kick) event_free(sub->kick);
    if (sub->checkpoint_timer) event_free(sub->checkpoint_timer);
    if (sub->tick_timer) event_free(sub->tick_timer);
    if (sub->topics) {
        for (char **t = sub->topics; *t; t++)
            free(*t);
        free(sub->topics);
    }
    free(sub->topics_joined);
    free(sub->consumer_key);
    free(sub->retry_key);
    free(sub->attempts_key);
    free(sub);
    *sub_p = NULL;
}
