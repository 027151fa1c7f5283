/* journal.h -- the journal of events in Redis, and the dead letters.
 *
 * The broker is the only writer of the journal; the CLI and the consumers
 * read it (to catch up after a gap, a restart or a late join). The keys, all
 * documented in docs/redis-keys.md:
 *
 *   mg:journal            stream; one entry per accepted event, with the
 *                         explicit id "<seq>-0" (seq dense from 1) and the
 *                         fields t (event type) and e (the Envelope as stamped
 *                         by the broker, WITHOUT its sequence: readers append
 *                         it from the entry id, see mg_envelope_append_sequence)
 *   mg:journal:seq        string (integer); the last sequence given
 *   mg:journal:marks      sorted set; member = a sequence, score = the Unix ms
 *                         time at which the journal had reached it (written
 *                         by the retention script, so that trimming by age
 *                         needs no decoding of the envelopes)
 *   mg:dedupe:<source>:<event_id>
 *                         string; the sequence of that event id from that
 *                         source (network; its ':' written '|'), expiring
 *                         after the dedupe window
 *   mg:contact:<sid>      string; the serialized maillage.v1.Contact of
 *                         structure <sid>: the only personal data, which
 *                         never enters the journal. The broker takes it out
 *                         of member.joined / member.updated and the append
 *                         script sets it, or deletes it (member.updated
 *                         without a contact, member.left), with the event
 *                         it came with, only if that event is journaled
 *   mg:deadletter         stream (automatic ids, trimmed to about
 *                         deadletter_maxlen); fields reason, field, source,
 *                         received_at_ms, raw (at most max_message_bytes of the
 *                         bytes received) and raw_len (their full length);
 *                         for a member event with a contact, raw is the event
 *                         re-encoded without it and the field held names the
 *                         structure whose mg:deadletter:held:<sid> keeps the
 *                         bytes received
 *   mg:deadletter:held:<sid>
 *                         hash; dead letter id -> the bytes received, when
 *                         they are a member event of <sid> with a contact
 *                         (personal data), 100 at most: deleted by the append
 *                         script with the structure's member.left, and by
 *                         `maillage forget`; expires [broker]
 *                         deadletter_contact_days after the last one held
 *   mg:metrics:<daemon>   hash; metric name -> decimal value, refreshed by
 *                         the daemon every few seconds
 *
 * Appending is one Lua script per batch (EVALSHA, falling back to EVAL on
 * NOSCRIPT): it reads the counter once; for each event, SET NX GET EX on its
 * dedupe key either returns the sequence it was journaled at (a duplicate) or
 * claims the key with the next sequence, and then XADD appends the entry with
 * the explicit id, and sets or deletes the event's mg:contact:<sid> if it has
 * a contact operation; the counter is written once at the end. The script is
 * atomic, so a batch is journaled entirely or (on a lost connection before it
 * ran) not at all, and retrying an event is always safe.
 *
 * The asynchronous half (append, dead letter) runs in the event loop of the
 * mg_redis_t it is given; the synchronous half (read, list) takes a blocking
 * redisContext, for the CLI and tests. */
#ifndef MAILLAGE_JOURNAL_H
#define MAILLAGE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "maillage/envelope.h"
#include "maillage/redis.h"

#define MG_JOURNAL_KEY       "mg:journal"
#define MG_JOURNAL_SEQ_KEY   "mg:journal:seq"
#define MG_DEDUPE_KEY_PREFIX "mg:dedupe:"
#define MG_DEADLETTER_KEY    "mg:deadletter"
#define MG_JOURNAL_MARKS_KEY "mg:journal:marks"
#define MG_CONTACT_KEY_PREFIX "mg:contact:"
#define MG_DEADLETTER_HELD_PREFIX "mg:deadletter:held:"

/* Transient keys of `maillage forget` when it rewrites a legacy journal
 * (entries written before the broker stripped contacts) or the dead letters
 * it deleted some of: the copy being made (renamed over the stream at the
 * end) and a lock so that two rewrites never run at once. All expire if the
 * CLI dies. */
#define MG_JOURNAL_REWRITE_KEY      "mg:journal:rewrite"
#define MG_DEADLETTER_REWRITE_KEY   "mg:deadletter:rewrite"
#define MG_JOURNAL_REWRITE_LOCK_KEY "mg:journal:rewrite:lock"

/* Hash of one daemon's metrics ("mg:metrics:broker"), written periodically
 * by that daemon with mg_metrics_hset_argv(). */
#define MG_METRICS_KEY_PREFIX "mg:metrics:"
/* The set of daemon names that publish there (so readers never scan). */
#define MG_METRICS_DAEMONS_KEY "mg:metrics"

/* Longest consumer name (same rule as ids: [A-Za-z0-9._:-]{1,64}). */
#define MG_ID_MAX_NAME 64

/* Field names of the entries of mg:journal. */
#define MG_JOURNAL_FIELD_TYPE     "t"
#define MG_JOURNAL_FIELD_ENVELOPE "e"

/* The Lua source of the append script (KEYS: journal, counter, one dedupe
 * key per event, then one mg:contact:<sid> per event that has a contact
 * operation, in event order; ARGV: the dedupe window in seconds, then one
 * (type, envelope, operation) triple per event, the operation being "" for
 * none, "D" to delete the contact, "S" and the serialized Contact to set it;
 * returns one integer per event: the new sequence, or minus the sequence of
 * the earlier copy for a duplicate). Static. */
extern const char mg_journal_append_script[];

/* ---- Asynchronous writer (the broker) ------------------------------------ */

typedef struct mg_journal mg_journal_t;

/* One event to append. Everything is borrowed until the append callback
 * returns. */
typedef struct {
    const char *source;   /* the network stamped on it (at most MG_ID_MAX bytes):
                           * an event id is recognised as a retry only from the
                           * same source, so no network can shadow another's ids */
    const char *event_id; /* must satisfy mg_id_is_valid() */
    const char *type;
    const uint8_t *envelope; /* stamped envelope, sequence 0 */
    size_t len;
    /* Personal data kept beside the journal, never in it: when contact_sid
     * is set (a valid id), mg:contact:<contact_sid> is set to the `contact`
     * bytes (a serialized Contact), or deleted when `contact` is NULL, in
     * the same script call and only if this event is journaled (not for a
     * duplicate). NULL: no change. */
    const char *contact_sid;
    const uint8_t *contact;
    size_t contact_len;
    /* Who may change what (mg:owner, docs/redis-keys.md), checked and kept
     * in the same script call: NULL, or "<op> <steward> <source> <field>
     * [<sid>]" (mg_journal_owner_op()). A new event that the owner rule
     * refuses is not journaled: its result says why. */
    const char *owner;
} mg_journal_item_t;

typedef struct {
    uint64_t sequence;   /* where the event is in the journal */
    int duplicate;       /* 1 if it was already there (journaled earlier) */
    const char *refused; /* not journaled: another network's item or structure, why (borrowed); else NULL */
} mg_journal_result_t;

/* The owner rule of an event (mg_journal_item_t.owner) into `out` (at least
 * MG_JOURNAL_OWNER_MAX bytes), or "" when it has none. A need or an offer
 * belongs to the network that reported it, a cooperation proposal to the
 * network that proposed it, a structure to the network that sent its
 * member.joined: only that network changes or closes it; an item without an
 * owner, a proposal or an answer in a structure's name come only from the
 * structure's network. `steward`: the source may act on anyone's (the
 * chamber's own programs: every producer without CURVE, a key naming
 * match.found as such or the word "steward"). What the matcher held before
 * this rule has no owner: anyone may, as before. The ids are the event's
 * (docs/redis-keys.md, "mg:owner"). */
#define MG_JOURNAL_OWNER_MAX (3 * MG_ID_MAX + 16)
void mg_journal_owner_op(const mg_envelope_t *env, const char *source, int steward,
                         char out[MG_JOURNAL_OWNER_MAX]);

/* Called exactly once per mg_journal_append() that returned 0, with one
 * result per item (borrowed until the callback returns), or results == NULL
 * when nothing can be said to be journaled (connection lost, Redis error). */
typedef void (*mg_journal_append_fn)(mg_journal_t *journal, const mg_journal_result_t *results, size_t count,
                                     void *arg);

/* Called once per mg_journal_deadletter() that returned 0: stored is 1 if
 * Redis confirmed the entry. May be NULL. */
typedef void (*mg_journal_done_fn)(mg_journal_t *journal, int stored, void *arg);

/* A writer on `redis` (borrowed): dedupe keys expire after
 * `dedupe_window_s`, mg:deadletter is trimmed to about `deadletter_maxlen`
 * entries, and a structure's held bytes (mg_deadletter_t) expire
 * `held_ttl_s` after its last refused member event. Caller owns the
 * result. */
mg_journal_t *mg_journal_new(mg_redis_t *redis, long long dedupe_window_s, long long deadletter_maxlen,
                             long long held_ttl_s);

/* Free; accepts NULL and sets *journal_p to NULL. Destroy the mg_redis_t first
 * if appends may be pending: their callbacks run then (with NULL results). */
void mg_journal_destroy(mg_journal_t **journal_p);

/* Tell the journal that Redis (re)connected: it loads its script
 * (SCRIPT LOAD), so that EVALSHA finds it. Call from the mg_redis_t state
 * callback. */
void mg_journal_redis_up(mg_journal_t *journal);

/* Append `count` items in one script call. Returns 0 if the call was sent
 * (the callback will run exactly once), -1 if Redis is not up (it will not).
 * The bytes the items point to are borrowed until the callback: a NOSCRIPT
 * (the script cache flushed) sends them again (script.h). */
int mg_journal_append(mg_journal_t *journal, const mg_journal_item_t *items, size_t count,
                      mg_journal_append_fn cb, void *arg);

/* ---- Retention (the broker, from a timer) ------------------------------- */

/* The Lua source of the retention script (KEYS: journal, counter, marks,
 * consumers set; ARGV: now_ms, max_age_ms, max_events, force (0/1), consumer
 * hash prefix). It reads the consumers' hashes mg:consumer:<name> (keys not
 * declared in KEYS: fine outside Redis Cluster). Static. */
extern const char mg_journal_retention_script[];

typedef struct {
    int64_t now_ms;
    uint64_t max_age_ms;  /* 0 = no age limit */
    uint64_t max_events;  /* 0 = no size limit */
    int force;            /* trim past the slowest consumer too */
} mg_journal_retention_t;

typedef struct {
    uint64_t trimmed;      /* entries deleted by this call */
    uint64_t wanted_min;   /* first sequence the limits would keep (0: none) */
    uint64_t applied_min;  /* first sequence actually kept (0: nothing trimmed) */
    int has_consumers;     /* 0 if mg:consumers is empty */
    uint64_t slowest_seq;  /* checkpoint of the slowest consumer */
    char slowest[MG_ID_MAX_NAME + 1]; /* its name */
    uint64_t last_seq;     /* mg:journal:seq at the time of the call */
} mg_journal_trim_result_t;

/* Called once per mg_journal_trim() that returned 0; result NULL if Redis
 * failed or the connection was lost. Borrowed until the callback returns. */
typedef void (*mg_journal_trim_fn)(mg_journal_t *journal, const mg_journal_trim_result_t *result, void *arg);

/* Apply the retention once (one script call, idempotent): record a mark
 * (now, last sequence); the first sequence to keep is the larger of the one
 * after the newest mark older than max_age and last - max_events + 1; unless
 * `force`, it is lowered to one past the smallest `seq` of the registered
 * consumers (a consumer without a checkpoint counts as 0); then XTRIM MINID.
 * Returns 0 if sent (cb runs once), -1 if Redis is not up. */
int mg_journal_trim(mg_journal_t *journal, const mg_journal_retention_t *policy, mg_journal_trim_fn cb,
                    void *arg);

/* One dead letter. Borrowed during the call (copied into the command). */
typedef struct {
    const char *reason;
    const char *field;  /* "" if none */
    const char *source; /* network the bytes came from */
    int64_t received_at_ms;
    const uint8_t *raw;  /* the bytes kept, already truncated by the caller */
    size_t raw_len;      /* how many bytes at `raw` */
    size_t original_len; /* how many bytes were received */
    /* A member event of structure `held_sid` (a valid id) that carried a
     * contact: `raw` is the event without it, `held` the bytes received,
     * kept apart in mg:deadletter:held:<held_sid> so that the structure's
     * member.left erases them. NULL otherwise. */
    const char *held_sid;
    const uint8_t *held;
    size_t held_len;
} mg_deadletter_t;

/* XADD the dead letter to mg:deadletter (trimmed with MAXLEN ~), and HSET
 * its held bytes in the same script call. Returns 0 if sent (cb runs once),
 * -1 if Redis is not up. */
int mg_journal_deadletter(mg_journal_t *journal, const mg_deadletter_t *dl, mg_journal_done_fn cb, void *arg);

/* ---- Synchronous readers (CLI, tests) ----------------------------------- */

/* One journal entry, borrowed until the callback returns. */
typedef struct {
    uint64_t sequence;
    const char *type;
    const uint8_t *envelope; /* with its sequence appended: unpack it as is */
    size_t len;
} mg_journal_entry_t;

/* Return 0 to go on, anything else to stop reading. */
typedef int (*mg_journal_entry_fn)(const mg_journal_entry_t *entry, void *arg);

/* Read the entries of sequence >= from_seq, in order, at most max_count of
 * them (0 = no limit), paging with XRANGE. Returns the number of entries
 * delivered, or -1 with a reason in `err` (Redis error, malformed entry). */
long long mg_journal_read(redisContext *c, uint64_t from_seq, uint64_t max_count, mg_journal_entry_fn cb,
                          void *arg, char *err, size_t errlen);

/* Lua text defining stream_top(): the sequence of the last id ever added to
 * stream KEYS[1] (XINFO STREAM's last-generated-id, which survives trimming),
 * 0 if none. For scripts that read the journal's head (this one, and the
 * gateway's /metrics). */
/* clang-format off */
#define MG_JOURNAL_STREAM_TOP_LUA \
    "local function stream_top()\n" \
    "  local ok, info = pcall(redis.call, 'XINFO', 'STREAM', KEYS[1])\n" \
    "  if not ok then return 0 end\n" \
    "  for k = 1, #info, 2 do\n" \
    "    if info[k] == 'last-generated-id' then return tonumber(string.match(info[k + 1], '^(%d+)')) end\n" \
    "  end\n" \
    "  return 0\n" \
    "end\n"
/* clang-format on */

/* EVAL <it> 2 mg:journal mg:journal:seq: the last sequence given, as an
 * integer: the counter, or when it is missing the stream's last generated id
 * (which survives trimming), where the broker's numbering goes on. */
extern const char mg_journal_head_script[];

/* The last sequence given (0 if none), by mg_journal_head_script. Returns 0,
 * or -1 with `err`. */
int mg_journal_last_sequence(redisContext *c, uint64_t *seq, char *err, size_t errlen);

/* One dead letter read back, borrowed until the callback returns. */
typedef struct {
    const char *id; /* stream entry id, "1700000000000-0" */
    const char *reason;
    const char *field;
    const char *source;
    int64_t received_at_ms;
    const uint8_t *raw; /* the bytes received (the held ones if still kept) */
    size_t raw_len;
    size_t original_len;
    const char *held;      /* the structure whose held bytes these are, "" if none */
    int held_erased;       /* held, but erased since (member.left, forget): `raw`
                              is the event without its contact */
    const uint8_t *stored; /* the stream's own raw field (== raw unless held) */
    size_t stored_len;
    const char *consumer; /* a consumer's dead letter: its name and the   */
    const char *seq;      /* sequence it gave up on; "" for refused input */
} mg_deadletter_entry_t;

typedef int (*mg_deadletter_entry_fn)(const mg_deadletter_entry_t *entry, void *arg);

/* Fill `e` from one mg:deadletter entry (`id`, its XRANGE field list),
 * looking its held bytes up in mg:deadletter:held:<sid>; `*held` is the
 * HGET reply that `e->raw` may point into, for the caller to free after
 * use (NULL when none was read). Returns 0, or -1 with `err` when Redis
 * fails (a missing field reads as empty). */
int mg_journal_deadletter_entry(redisContext *c, const char *id, const redisReply *fields,
                                mg_deadletter_entry_t *e, redisReply **held, char *err, size_t errlen);

/* The last `max_count` dead letters (0 = all), oldest first, read by pages
 * (each may be large): where the last `max_count` begin is found first, then
 * they are read forward, at most `max_count` (dead letters added meanwhile
 * may take the place of the newest). Returns the number delivered, or -1
 * with a reason in `err`. */
long long mg_journal_deadletters(redisContext *c, size_t max_count, mg_deadletter_entry_fn cb, void *arg,
                                 char *err, size_t errlen);

#endif
