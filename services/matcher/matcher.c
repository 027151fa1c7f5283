/* matcher.c -- apply events, find candidates, score, decide, emit.
 *
 * One event at a time (the subscriber delivers the next one only after
 * mg_subscriber_done()): a job goes through
 *
 *   1. the "apply" script call: the state change, order-safe (sequence per
 *      entity), returning the candidates to judge, or {0} when this event was
 *      already handled completely (replay, redelivery, second instance);
 *   2. filtering and scoring in C (match_score.h), ranking, decisions:
 *      a new pair above the threshold gets revision 1, a proposed pair whose
 *      score moved by material_change or more a new revision, a proposed pair
 *      that no longer qualifies is retired (new revision, retired = true);
 *   3. the "decide" script call: each decision is recorded only if the pair's
 *      revision is still the one it was computed from (another instance may
 *      have been faster), the events go to the outbox, and the entity is
 *      marked handled for this sequence;
 *   4. the recorded events are handed to the producer; each ack removes its
 *      event from the outbox; the delivery is done.
 *
 * Event ids are deterministic ("match.<match_id>.<revision>", ...), so an
 * event sent twice, by a restart or by two instances, is journaled once. */
#include "matcher.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "maillage/clock.h"
#include "maillage/communes.h"
#include "maillage/daemon.h"
#include "maillage/daemon_config.h"
#include "maillage/envelope.h"
#include "maillage/french.h"
#include "maillage/journal.h"
#include "maillage/log.h"
#include "maillage/match_score.h"
#include "maillage/mem.h"
#include "maillage/metrics.h"
#include "maillage/producer.h"
#include "maillage/redis.h"
#include "maillage/spellings.h"
#include "maillage/subscriber.h"
#include "maillage/taxonomy.h"
#include "state.h"

/* Where a job's time goes: MG_MATCHER_MARK(phase) ends a phase of the job
 * being handled (MG_MATCHER_PREPARE .. MG_MATCHER_SEND, in that order). A
 * no-op in the daemon; bench/bench_matcher.c defines it before including
 * this file, to time each phase. */
enum {
    MG_MATCHER_PREPARE, /* from the delivery to the "apply" call sent */
    MG_MATCHER_APPLY,   /* the "apply" call: its round trip and the script */
    MG_MATCHER_SCORE,   /* filters, scores, ranking, decisions packed */
    MG_MATCHER_DECIDE,  /* the "decide" call: its round trip and the script */
    MG_MATCHER_SEND,    /* the recorded events handed to the producer */
    MG_MATCHER_PHASES
};
#ifndef MG_MATCHER_MARK
#define MG_MATCHER_MARK(phase) ((void)0)
#endif

#define S_OUTBOX_KEY "mg:matcher:outbox"
#define S_METRICS_INTERVAL_S 10
#define S_SHUTDOWN_GRACE_MS 2000
#define S_EXPIRED_BATCH 200
#define S_START_CURSOR       (24 + MG_ID_MAX) /* "<day> <id>": where a valid_from round goes on */
/* The retention's scan of the pair records (s_on_sweep_timer()): keys per
 * call (SCAN COUNT) and the interval between calls, in small steps so that no
 * call holds Redis long; a round starts at most every S_SWEEP_PAUSE_MS after
 * the last one ended (retention counts in days; an idle system otherwise
 * wrote the cursor five times a second, to the AOF too). */
#define S_SWEEP_KEYS        100
#define S_SWEEP_INTERVAL_MS 200
#define S_SWEEP_PAUSE_MS    3600000
#define S_MS_PER_DAY 86400000LL
/* The roll call of the running matchers (s_on_live_timer()): each renews its
 * entry every S_LIVE_RENEW_MS, which lapses S_LIVE_TTL_MS after the last
 * renewal (a process stopped for good, or paused); a share of the needs is
 * said to have no matcher once this one has been in the roll call that long
 * (the others had time to renew theirs). A clean stop leaves its entry to
 * lapse, so that a restart within S_LIVE_TTL_MS is never reported. */
#define S_LIVE_RENEW_MS 2000
#define S_LIVE_TTL_MS   6000
#define S_LIVE_ENDED    8 /* entries of ended processes dropped per renewal */

/* The communes nearest a commune, computed on first use and kept: the first
 * places a search for candidates reads (state.c, near()). One more than a
 * search takes, to know whether it saw every commune within its radius. */
#define S_NEARBY_MAX 64
/* The length of a search (s_search_spec()): a header, and each
 * "<code>:<km>" with its space. */
#define S_SPEC_MAX (S_NEARBY_MAX * 14 + 128)
typedef struct {
    size_t n;
    const mg_commune_t *commune[S_NEARBY_MAX + 1];
    double km[S_NEARBY_MAX + 1];
} s_nearby_t;

typedef struct {
    mg_metric_t *events, *proposed, *revised, *retired, *collective, *closures, *stale, *refused, *failures,
        *outbox, *acks_rejected, *swept, *shares_alone, *disagreeing;
} s_metrics_t;

struct mg_matcher {
    struct event_base *base;
    const mg_config_t *cfg;
    void *zmq_context;
    mg_redis_t *redis;
    mg_script_t *script;
    mg_subscriber_t *subscriber;
    mg_producer_t *producer;
    mg_communes_t *communes;
    mg_taxonomy_t *taxonomy;
    mg_spellings_t *spellings; /* [data] words_file; NULL: none */
    mg_match_weights_t weights;
    double material_change;
    long long fair_window_ms, collective_window_ms, retention_ms;
    long long collective_min, collective_km, max_candidates, search_max_km, max_proposals;
    s_nearby_t **nearby; /* by commune index, computed on first use */
    size_t n_nearby;
    /* Scratch arrays of the candidates of one event, grown, never shrunk:
     * a score with its French phrases is 2 KB, too much to allocate and
     * zero for each of a hundred candidates of every event. */
    struct s_cand *cands;
    mg_match_score_t *scores;
    size_t scratch_cap;
    unsigned instance, instances;
    char mflag[16];
    char name[32];
    struct event *expiry_timer, *sweep_timer, *metrics_timer, *stop_timer, *acked_flush, *live_timer;
    mg_args_t acked; /* "HDEL mg:matcher:outbox" and the ids acked this loop turn */
    /* [matcher] outbox_max; the job whose finish waits for the outbox to
     * drain (the subscriber delivers the next event after it), its reason. */
    size_t outbox_max;
    struct s_job *held;
    const char *held_reason;
    int held_logged;
    int redis_seen_up, stopping, expiry_running, sweep_running;
    /* The round matching again the items whose valid_from day has come
     * (s_start_round()): jobs still running, and whether one failed. A
     * round reads at most S_START_LIMIT items of each kind, after
     * start_after[kind] ("<day> <id>", the last read, "" = from the start);
     * when it read that many, the next round goes on after
     * start_next[kind]. */
    int start_running, start_failed, start_truncated;
    size_t start_pending;
    long long start_today;
    char start_after[2][S_START_CURSOR], start_next[2][S_START_CURSOR];
    size_t jobs; /* deliveries being handled (0 or 1; the benchmark waits on it) */
    /* The roll call (s_on_live_timer()): this matcher's entry, whether a
     * renewal is in flight, when the first one was answered (monotonic µs,
     * 0 before), the entries of ended processes to drop at the next one, and
     * what was last said of each finding (logged once, when it changes). */
    char live_member[224];
    int live_running;
    int64_t live_since_us;
    char *live_ended[S_LIVE_ENDED];
    size_t n_live_ended;
    char said_split[224], said_twin[224], said_alone[160];
    s_metrics_t metrics;
};

/* ---- the clock ------------------------------------------------------------------ */

/* Today's day number (days since 1970-01-01) in Europe/Paris. */
static long long s_today(void) {
    char today[11];
    mg_clock_paris_date(mg_clock_service_now_ms(), today);
    return mg_clock_day_number(today);
}

/* ---- pure helpers ------------------------------------------------------------ */

void mg_matcher_match_id(const char *need_id, const char *offer_id, char out[MG_MATCH_ID_LEN + 1]) {
    const char *parts[2] = {need_id, offer_id};
    out[0] = 'm';
    out[1] = '-';
    mg_hash_hex(parts, 2, out + 2);
}

unsigned mg_matcher_partition(const char *need_id, unsigned instances) {
    if (instances <= 1) return 0;
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)need_id; *p; p++) h = (h ^ *p) * 1099511628211ull;
    return (unsigned)(mg_hash_mix64(h) % instances);
}

static int s_mine(const mg_matcher_t *m, const char *need_id) {
    return mg_matcher_partition(need_id, m->instances) == m->instance % (m->instances ? m->instances : 1);
}

/* A deterministic id for a closure the matcher emits. */
static void s_closure_event_id(const char *kind, const char *id, const char *why, char out[MG_ID_MAX + 1]) {
    const char *parts[3] = {kind, id, why};
    char hex[33];
    mg_hash_hex(parts, 3, hex);
    snprintf(out, MG_ID_MAX + 1, "close.%s", hex);
}

static const char *s_category_label(const mg_matcher_t *m, const char *code) {
    const char *label = mg_taxonomy_label(m->taxonomy, code);
    return label ? label : code;
}

/* ---- decisions: what goes to the "decide" script call ------------------------ */

typedef struct {
    char event_id[MG_ID_MAX + 1];
    uint8_t *data;
    size_t len;
    int retired; /* a match.found retiring its pair */
} s_out_t;

typedef struct s_job {
    mg_matcher_t *m;
    mg_delivery_t *delivery;
    const mg_envelope_t *env; /* borrowed until done */
    uint64_t seq;
    mg_args_t pairs, colls, plains;
    int n_pairs, n_colls, n_plains;
    s_out_t *outs;
    size_t n_outs, cap_outs;
    int64_t now;      /* the job's time (ms): first proposals, fairness entries */
    const char *kind; /* entity marked handled: "need", "offer", "structure" or "" */
    char entity_id[MG_ID_MAX + 1];
    /* A job of the valid_from round: `env` points to `own_env`, built around
     * the stored item (owned, unpacked), not delivered by the subscriber. */
    int rematch;
    /* A job matching again an item of a structure whose record changed
     * (member.updated): its parent, that event's job, ends when its last
     * child does (`children`, `child_failed`). */
    struct s_job *parent;
    int children, child_failed;
    int expiry; /* the expiry round's closing job: m->expiry_running until it ends */
    mg_envelope_t own_env;
    Maillage__V1__NeedUpdated own_need;
    Maillage__V1__OfferUpdated own_offer;
} s_job_t;

static void s_start_job_done(mg_matcher_t *m, int failed);
static void s_start_round(mg_matcher_t *m);
static void s_child_done(s_job_t *parent, int failed);
static void s_on_member(mg_redis_t *redis, redisReply *reply, void *privdata);

static s_job_t *s_job_new(mg_matcher_t *m, const mg_envelope_t *env, mg_delivery_t *delivery) {
    s_job_t *job = mg_calloc(1, sizeof(*job));
    job->m = m;
    job->env = env;
    job->delivery = delivery;
    job->seq = env ? env->sequence : 0;
    job->kind = "";
    job->now = mg_clock_service_now_ms();
    if (delivery || env) m->jobs++;
    mg_args_init(&job->pairs);
    mg_args_init(&job->colls);
    mg_args_init(&job->plains);
    return job;
}

static void s_job_free(s_job_t *job) {
    if (job->env) job->m->jobs--;
    if (job->own_need.need) maillage__v1__need__free_unpacked(job->own_need.need, NULL);
    if (job->own_offer.offer) maillage__v1__offer__free_unpacked(job->own_offer.offer, NULL);
    mg_args_clear(&job->pairs);
    mg_args_clear(&job->colls);
    mg_args_clear(&job->plains);
    for (size_t i = 0; i < job->n_outs; i++) free(job->outs[i].data);
    free(job->outs);
    free(job);
}

/* Finish the job's delivery (reason NULL = success) and free the job. */
static void s_job_finish(s_job_t *job, const char *reason) {
    mg_matcher_t *m = job->m;
    if (reason) {
        mg_metrics_inc(m->metrics.failures);
        mg_warn("matcher: sequence %" PRIu64 " not handled: %s (will retry)", job->seq, reason);
    }
    if (job->delivery && m->subscriber) mg_subscriber_done(m->subscriber, job->delivery, reason);
    int rematch = job->rematch;
    s_job_t *parent = job->parent;
    if (job->expiry) m->expiry_running = 0;
    s_job_free(job);
    if (parent)
        s_child_done(parent, reason != NULL);
    else if (rematch)
        s_start_job_done(m, reason != NULL);
}

/* `msg` serialized into *out (caller frees); returns its length. */
static size_t s_pack(const ProtobufCMessage *msg, uint8_t **out) {
    size_t len = protobuf_c_message_get_packed_size(msg);
    *out = mg_malloc(len ? len : 1);
    protobuf_c_message_pack(msg, *out);
    return len;
}

/* Pack an envelope of `type` with `event_id` into the job's outputs, with
 * its payload set in `env`, or (payload_case != 0) serialized already in
 * `payload`; returns the stored output (bytes owned by the job). */
static s_out_t *s_job_output(s_job_t *job, mg_envelope_t *env, const char *type, const char *event_id,
                             Maillage__V1__Envelope__PayloadCase payload_case, const uint8_t *payload,
                             size_t len) {
    env->event_id = (char *)event_id;
    env->type = (char *)type;
    env->occurred_at_ms = mg_clock_service_now_ms();
    env->schema_version = MG_SCHEMA_VERSION;
    if (job->env && job->env->event_id && *job->env->event_id) env->correlation_id = job->env->event_id;
    if (job->n_outs == job->cap_outs) {
        job->cap_outs = job->cap_outs ? job->cap_outs * 2 : 8;
        job->outs = mg_realloc(job->outs, job->cap_outs * sizeof(*job->outs));
    }
    s_out_t *out = &job->outs[job->n_outs++];
    out->retired = 0;
    snprintf(out->event_id, sizeof(out->event_id), "%s", event_id);
    out->len = payload_case
                   ? mg_envelope_pack_with_payload(env, (unsigned)payload_case, payload, len, &out->data)
                   : mg_envelope_pack(env, &out->data);
    return out;
}

/* Field `index` (from 0) of a '|'-separated record into `out` ("" if it has
 * fewer fields). */
static void s_field(const char *record, int index, char *out, size_t outlen) {
    const char *p = record ? record : "";
    for (int i = 0; i < index && p; i++) {
        p = strchr(p, '|');
        if (p) p++;
    }
    size_t len = p ? strcspn(p, "|") : 0;
    if (len >= outlen) len = outlen - 1;
    if (p) memcpy(out, p, len);
    out[len] = '\0';
}

typedef struct {
    const char *need_id, *offer_id, *need_structure_id, *offer_structure_id, *category, *department;
    const char *need_commune; /* where a first proposal is counted (mg:figures); "" otherwise */
    const char *prev_record;  /* the pair record read with prev_rev ("" if none) */
    long long partner_seq;    /* the candidate's record sequence at the apply (0: not checked) */
    int reopen;               /* proposed while not open (new or retired) */
    unsigned prev_rev;
    int retired;
    double score, distance_km;
    unsigned rank;
    const mg_match_score_t *detail; /* NULL for a retirement */
    const char *explanation;        /* for a retirement */
} s_pair_t;

static void s_add_pair(s_job_t *job, const s_pair_t *p) {
    char mid[MG_MATCH_ID_LEN + 1], eid[MG_ID_MAX + 1];
    unsigned rev = p->prev_rev + 1;
    mg_matcher_match_id(p->need_id, p->offer_id, mid);
    snprintf(eid, sizeof(eid), "match.%s.%u", mid, rev);

    /* A retirement names the pair's category and department as its record
     * keeps them, not as an update just changed the item's: staff filter,
     * and the notifier routes, by them. */
    const char *category = p->category, *department = p->department;
    char was_cat[MG_ID_MAX + 1], was_dep[16];
    if (p->retired && p->prev_record && *p->prev_record) {
        s_field(p->prev_record, 7, was_cat, sizeof(was_cat));
        s_field(p->prev_record, 8, was_dep, sizeof(was_dep));
        if (*was_cat) category = was_cat, department = was_dep;
    }

    Maillage__V1__MatchFound mf = MAILLAGE__V1__MATCH_FOUND__INIT;
    Maillage__V1__ScoreComponent comps[MG_MATCH_COMPONENTS];
    Maillage__V1__ScoreComponent *comp_ptrs[MG_MATCH_COMPONENTS];
    mf.match_id = mid;
    mf.need_id = (char *)p->need_id;
    mf.offer_id = (char *)p->offer_id;
    mf.need_structure_id = (char *)p->need_structure_id;
    mf.offer_structure_id = (char *)p->offer_structure_id;
    mf.category = (char *)category;
    mf.score = p->score;
    mf.rank = p->rank;
    mf.distance_km = mg_match_distance_shown(p->distance_km); /* -1: placed by its territory */
    mf.revision = rev;
    mf.department = (char *)department;
    mf.retired = p->retired;
    if (p->detail) {
        for (size_t i = 0; i < MG_MATCH_COMPONENTS; i++) {
            maillage__v1__score_component__init(&comps[i]);
            comps[i].name = (char *)(p->detail->components[i].name ? p->detail->components[i].name : "");
            comps[i].value = p->detail->components[i].value;
            comps[i].weight = p->detail->components[i].weight;
            comps[i].detail = (char *)p->detail->components[i].detail;
            comp_ptrs[i] = &comps[i];
        }
        mf.n_components = MG_MATCH_COMPONENTS;
        mf.components = comp_ptrs;
        mf.explanation = (char *)p->detail->explanation;
    } else {
        mf.explanation = (char *)(p->explanation ? p->explanation : "");
    }
    /* Serialized once: for mg:mexp:<mid> (the gateway shows it) and in the
     * envelope. */
    uint8_t *found;
    size_t found_len = s_pack(&mf.base, &found);
    mg_envelope_t env = MAILLAGE__V1__ENVELOPE__INIT;
    s_out_t *out = s_job_output(job, &env, "match.found", eid, MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FOUND,
                                found, found_len);
    out->retired = p->retired;

    /* The new pair record (docs/redis-keys.md: rev|score|ret|mid|dist|ns|os|
     * cat|dep|at|pcat|pcom|pseq): the first proposal's time, cell and job
     * sequence carried from the record read, or this job's for a new pair. */
    char at[24], pcat[MG_ID_MAX + 1], pcom[16], pseq[24], record[1024], mp[128] = "";
    if (p->prev_rev == 0) {
        snprintf(at, sizeof(at), "%" PRId64, job->now);
        snprintf(pseq, sizeof(pseq), "%" PRIu64, job->seq);
        snprintf(pcat, sizeof(pcat), "%s", p->category);
        snprintf(pcom, sizeof(pcom), "%s", p->need_commune);
        if (*p->category && *p->need_commune)
            snprintf(mp, sizeof(mp), "mp|%s|%s", p->category, p->need_commune);
    } else {
        s_field(p->prev_record, 9, at, sizeof(at));
        s_field(p->prev_record, 10, pcat, sizeof(pcat));
        s_field(p->prev_record, 11, pcom, sizeof(pcom));
        s_field(p->prev_record, 12, pseq, sizeof(pseq)); /* "" in a record from before it */
    }
    snprintf(record, sizeof(record), "%u|%.6f|%d|%s|%.6f|%s|%s|%s|%s|%s|%s|%s|%s", rev, p->score,
             p->retired ? 1 : 0, mid, p->distance_km, p->need_structure_id, p->offer_structure_id, category,
             department, at, pcat, pcom, pseq);
    mg_args_t *a = &job->pairs;
    mg_args_str(a, p->need_id);
    mg_args_str(a, p->offer_id);
    mg_args_int(a, p->prev_rev);
    mg_args_double(a, p->score);
    mg_args_str(a, p->retired ? "1" : "0");
    mg_args_str(a, mid);
    mg_args_str(a, eid);
    mg_args_bytes(a, out->data, out->len);
    mg_args_bytes(a, found, found_len);
    mg_args_str(a, record);
    mg_args_str(a, p->offer_structure_id);
    mg_args_str(a, p->reopen ? "1" : "0");
    mg_args_str(a, mp);
    mg_args_int(a, p->partner_seq);
    free(found);
    job->n_pairs++;
}

static void s_add_plain(s_job_t *job, mg_envelope_t *env, const char *type, const char *event_id) {
    s_out_t *out = s_job_output(job, env, type, event_id, MAILLAGE__V1__ENVELOPE__PAYLOAD__NOT_SET, NULL, 0);
    mg_args_str(&job->plains, event_id);
    mg_args_bytes(&job->plains, out->data, out->len);
    job->n_plains++;
}

/* ---- step 3 and 4: decide, send ------------------------------------------------- */

static void s_on_decided(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    mg_matcher_t *m = job->m;
    (void)redis;
    MG_MATCHER_MARK(MG_MATCHER_DECIDE);
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        s_job_finish(job, !reply ? "Redis connection lost" : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                                              : "unexpected reply");
        return;
    }
    int moved = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *r = reply->element[i];
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_STRING) {
            /* The previous revision of what follows, not acknowledged yet:
             * sent first (a no-op if this producer has it already). */
            mg_producer_send(m->producer, r->element[0]->str, (const uint8_t *)r->element[1]->str,
                             r->element[1]->len);
            continue;
        }
        if (r->type != REDIS_REPLY_STRING) continue;
        if (strcmp(r->str, "!moved") == 0) {
            moved = 1;
            continue;
        }
        for (size_t k = 0; k < job->n_outs; k++) {
            s_out_t *out = &job->outs[k];
            if (strcmp(out->event_id, r->str) != 0) continue;
            if (strncmp(out->event_id, "match.", 6) == 0) {
                /* counted by kind from the revision at the end of the id */
                const char *rev = strrchr(out->event_id, '.');
                if (out->retired) mg_metrics_inc(m->metrics.retired);
                else if (rev && strcmp(rev, ".1") == 0) mg_metrics_inc(m->metrics.proposed);
                else mg_metrics_inc(m->metrics.revised);
            } else if (strncmp(out->event_id, "cn.", 3) == 0) {
                mg_metrics_inc(m->metrics.collective);
            } else {
                mg_metrics_inc(m->metrics.closures);
            }
            mg_producer_send(m->producer, out->event_id, out->data, out->len);
            break;
        }
    }
    mg_metrics_set(m->metrics.outbox, mg_producer_pending(m->producer));
    MG_MATCHER_MARK(MG_MATCHER_SEND);
    const char *reason = moved ? "a candidate changed after the apply: matched again" : NULL;
    /* The broker does not acknowledge (down, or slow): the next event waits
     * until the outbox is half drained, so that the outbox (in Redis and in
     * the producer) stays bounded while a backlog is worked through. */
    if (job->delivery && !job->parent && !m->stopping && mg_producer_pending(m->producer) >= m->outbox_max) {
        if (!m->held_logged)
            mg_warn("matcher: %zu event(s) wait for the broker's ack (outbox_max): pausing until it answers",
                    mg_producer_pending(m->producer));
        m->held_logged = 1;
        m->held = job;
        m->held_reason = reason;
        return;
    }
    s_job_finish(job, reason);
}

/* The job held by a full outbox, finished (its decisions are recorded). */
static void s_release_held(mg_matcher_t *m) {
    s_job_t *job = m->held;
    if (!job) return;
    m->held = NULL;
    s_job_finish(job, m->held_reason);
}

static void s_decide(s_job_t *job) {
    mg_matcher_t *m = job->m;
    if (job->n_pairs == 0 && job->n_colls == 0 && job->n_plains == 0 && !*job->kind) {
        s_job_finish(job, NULL);
        return;
    }
    mg_args_t a;
    mg_args_init(&a);
    mg_args_str(&a, "decide");
    mg_args_str(&a, job->kind);
    mg_args_str(&a, job->entity_id);
    mg_args_int(&a, (long long)job->seq);
    mg_args_str(&a, m->mflag);
    mg_args_int(&a, job->now);
    mg_args_int(&a, m->fair_window_ms);
    mg_args_int(&a, job->n_pairs);
    mg_args_int(&a, job->n_colls);
    mg_args_int(&a, job->n_plains);
    mg_args_t *parts[3] = {&job->pairs, &job->colls, &job->plains};
    for (int p = 0; p < 3; p++) mg_args_move(&a, parts[p]);
    MG_MATCHER_MARK(MG_MATCHER_SCORE);
    if (mg_script_call(m->script, &a, s_on_decided, job) != 0) s_job_finish(job, "Redis unavailable");
}

/* ---- reading replies ----------------------------------------------------------- */

static const char *s_rstr(const redisReply *r) {
    return r && r->type == REDIS_REPLY_STRING ? r->str : "";
}

static size_t s_rlen(const redisReply *r) {
    return r && r->type == REDIS_REPLY_STRING ? r->len : 0;
}

static long long s_rint(const redisReply *r) {
    if (!r) return 0;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    if (r->type == REDIS_REPLY_STRING) return strtoll(r->str, NULL, 10);
    return 0;
}

static double s_rdouble(const redisReply *r) {
    return r && r->type == REDIS_REPLY_STRING ? strtod(r->str, NULL) : 0.0;
}

/* A score at the precision it is stored with (mg_args_double(): "%.6f"),
 * so that a pair's score computed now and one read back compare as equal
 * when they are: ties are then broken by id on both sides alike. */
static double s_stored_score(double v) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%.6f", v);
    return strtod(buf, NULL);
}

/* An item record as stored (docs/redis-keys.md: seq|open|sid|cat|com|dep|
 * epci|until|at|terr|flags|, then the serialized item), split in place of
 * the reply: the fields are not NUL-terminated, each runs up to its '|'. */
enum { S_REC_AT = 8, S_REC_FLAGS = 10, S_REC_FIELDS = 11 };
typedef struct {
    const char *field[S_REC_FIELDS];
    const uint8_t *item;
    size_t item_len;
} s_record_t;

/* 0 if `r` is such a record. */
static int s_record_split(const redisReply *r, s_record_t *rec) {
    if (!r || r->type != REDIS_REPLY_STRING) return -1;
    const char *p = r->str, *end = r->str + r->len;
    for (int i = 0; i < S_REC_FIELDS; i++) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        if (!bar) return -1;
        rec->field[i] = p;
        p = bar + 1;
    }
    rec->item = (const uint8_t *)p;
    rec->item_len = (size_t)(end - p);
    return 0;
}

/* The counter `name` of a record's flags ("m=12,cm=2,nr=1"), 0 if absent. */
static long long s_record_flag(const s_record_t *rec, const char *name) {
    size_t nlen = strlen(name);
    for (const char *p = rec->field[S_REC_FLAGS]; *p && *p != '|';) {
        if (strncmp(p, name, nlen) == 0 && p[nlen] == '=') return strtoll(p + nlen + 1, NULL, 10);
        p += strcspn(p, ",|");
        if (*p == ',') p++;
    }
    return 0;
}

/* The revision, score and retired flag of a pair record as stored ("" = no
 * pair: all 0). */
static void s_pair_head(const char *record, unsigned *rev, double *score, int *retired) {
    char *end;
    *rev = (unsigned)strtoul(record, &end, 10);
    *score = *end == '|' ? strtod(end + 1, &end) : 0.0;
    *retired = *end == '|' && end[1] == '1';
}

/* What the scorer needs about a structure, unpacked from its record. */
typedef struct {
    Maillage__V1__Structure *pb;   /* NULL if unknown */
    const char **networks;         /* NULL-terminated (owned array) */
    mg_match_party_t party;
} s_party_t;

static void s_party_load(s_party_t *p, const mg_matcher_t *m, const char *structure_id, const redisReply *pb) {
    memset(p, 0, sizeof(*p));
    size_t len = s_rlen(pb);
    p->pb = len ? maillage__v1__structure__unpack(NULL, len, (const uint8_t *)pb->str) : NULL;
    p->party.structure_id = structure_id;
    p->party.naf_code = "";
    if (p->pb) {
        p->party.family = p->pb->family;
        p->party.naf_code = p->pb->naf_code ? p->pb->naf_code : "";
        p->networks = mg_calloc(p->pb->n_networks + 1, sizeof(*p->networks));
        for (size_t i = 0; i < p->pb->n_networks; i++) p->networks[i] = p->pb->networks[i];
        p->party.networks = p->networks;
        p->party.commune = p->pb->commune ? mg_communes_find(m->communes, p->pb->commune) : NULL;
    }
}

static void s_party_clear(s_party_t *p) {
    if (p->pb) maillage__v1__structure__free_unpacked(p->pb, NULL);
    free(p->networks);
    memset(p, 0, sizeof(*p));
}

typedef struct s_cand {
    const char *id;        /* borrowed from the reply */
    void *item;            /* Maillage__V1__Offer * or Need * (owned) */
    s_party_t party;
    const mg_commune_t *commune;
    int ok;                /* passed the filters */
    int left;              /* its structure left */
    mg_match_score_t *score; /* in the matcher's scratch array; valid if ok */
    double total;            /* score->score when ok, else 0 */
    long long seq;           /* its record's sequence, as the apply read it */
    const char *pair_record; /* as stored ("" if none), borrowed from the reply */
    unsigned prev_rev;
    double prev_score;
    int prev_retired;
    unsigned rank;
    const redisReply *top; /* offer side: the need's best open matches */
    char *kw_text;         /* its keywords (s_view_keywords), owned */
    const char **kw;
    size_t n_kw;
} s_cand_t;

/* A candidate of the flat list the "need"/"offer" operations return
 * (state.c, candidates()): S_CAND_VALUES values each, the id, the record and
 * the pair record as stored, the structure's pb and `left`, and the
 * provider's recent proposals (a need's candidates) or the need's best open
 * matches (an offer's). Sets the id and the previous decision; splits the
 * record into `rec`. 0 if the record is readable. */
enum { S_CAND_VALUES = 6 };
static int s_cand_load(s_cand_t *c, const redisReply *const *v, s_record_t *rec) {
    c->id = s_rstr(v[0]);
    if (s_record_split(v[1], rec) != 0) return -1;
    c->seq = strtoll(rec->field[0], NULL, 10);
    c->pair_record = s_rstr(v[2]);
    s_pair_head(c->pair_record, &c->prev_rev, &c->prev_score, &c->prev_retired);
    return 0;
}

/* `n` zeroed candidates (their scores are not zeroed: each is written by
 * mg_match_score() before being read). */
static s_cand_t *s_scratch(mg_matcher_t *m, size_t n) {
    if (n > m->scratch_cap) {
        m->scratch_cap = n * 2;
        free(m->cands);
        free(m->scores);
        m->cands = mg_malloc(m->scratch_cap * sizeof(*m->cands));
        m->scores = mg_malloc(m->scratch_cap * sizeof(*m->scores));
    }
    memset(m->cands, 0, n * sizeof(*m->cands));
    return m->cands;
}

/* A need's candidates, best first: by score, an equal score by offer id
 * from the greatest, the order of a need's open matches in mg:nm:<nid>
 * (ZREVRANGE), in which the gateway lists and ranks them. */
static int s_cmp_cand(const void *a, const void *b) {
    const s_cand_t *x = *(const s_cand_t *const *)a, *y = *(const s_cand_t *const *)b;
    if (x->ok != y->ok) return y->ok - x->ok;
    if (x->total != y->total) return x->total < y->total ? 1 : -1;
    return strcmp(y->id ? y->id : "", x->id ? x->id : "");
}

/* Keywords read from each side (as many as the scorer reads). */
#define S_KEYWORDS_MAX 256

/* The keywords of a stored matching view (s_need_view() / s_offer_view():
 * no tags, no title, a description that is its keywords, sorted, unique,
 * joined by single spaces), split into a copy without folding them again:
 * folding is the scorer's main cost and a candidate is read by many events.
 * Sets *copy (caller frees) and *words (caller frees) and returns the count;
 * leaves both NULL (the scorer then folds the texts itself) when the text is
 * not such a list. */
static size_t s_view_keywords(size_t n_tags, const char *title, const char *description, char **copy,
                              const char ***words) {
    *copy = NULL;
    *words = NULL;
    if (n_tags != 0 || (title && *title) || !description) return 0;
    size_t len = strlen(description), n = 0, cap = 1;
    for (size_t i = 0; i < len; i++) cap += description[i] == ' ';
    char *text = mg_malloc(len + 1);
    const char **list = mg_malloc(cap * sizeof(*list));
    memcpy(text, description, len + 1);
    for (char *p = text; *p;) {
        char *end = strchr(p, ' ');
        if (end) *end = '\0';
        size_t wl = strlen(p);
        int ok = wl >= 3 && wl <= 40 && (n == 0 || strcmp(list[n - 1], p) < 0) && n < S_KEYWORDS_MAX;
        for (size_t k = 0; ok && k < wl; k++) ok = (p[k] >= 'a' && p[k] <= 'z') || (p[k] >= '0' && p[k] <= '9');
        if (!ok) {
            free(text);
            free(list);
            return 0;
        }
        list[n++] = p;
        if (!end) break;
        p = end + 1;
    }
    *copy = text;
    *words = list;
    return n;
}

/* Whether the judged pair is (or stays) proposed: a score at the threshold
 * for a new proposal; a proposed pair stays until its score falls
 * material_change below it, so that a score drifting around the threshold
 * (fairness, freshness, small edits) does not retire and propose it again at
 * every event. */
static int s_qualifies(const mg_matcher_t *m, const s_cand_t *c) {
    if (!c->ok) return 0;
    int proposed = c->prev_rev > 0 && !c->prev_retired;
    return c->total >= m->weights.threshold - (proposed ? fmax(m->material_change - 1e-9, 0.0) : 0.0);
}

/* The decision for one judged pair; fills `p` and returns 1 if an event is due. */
static int s_judge(const mg_matcher_t *m, const s_cand_t *c, int qualifies, s_pair_t *p) {
    p->prev_rev = c->prev_rev;
    p->prev_record = c->pair_record ? c->pair_record : "";
    p->reopen = qualifies && (c->prev_rev == 0 || c->prev_retired);
    p->score = c->ok ? c->total : 0.0;
    /* Out of the filters, the pair keeps the distance it was proposed at. */
    char dist[32] = "";
    if (!c->ok && c->pair_record) s_field(c->pair_record, 4, dist, sizeof(dist));
    p->distance_km = c->ok ? c->score->distance_km : strtod(dist, NULL);
    int proposed = c->prev_rev > 0 && !c->prev_retired;
    if (qualifies) {
        /* A new proposal only among the need's best: staff read each one. */
        if (c->prev_rev == 0 || c->prev_retired) return c->rank <= (unsigned)m->max_proposals;
        return fabs(c->total - c->prev_score) >= m->material_change - 1e-9;
    }
    if (proposed) {
        p->retired = 1;
        p->score = c->prev_score;
        p->detail = NULL;
        p->rank = 0; /* among the need's candidates no more, whichever side retires it */
        return 1;
    }
    return 0;
}

/* A pair retired because one of its structures left (member.left). */
#define S_RETIRED_LEFT "Mise en relation retirée : l'une des structures a quitté le réseau."

static const char *s_retire_reason(const s_cand_t *c) {
    if (c->left) return S_RETIRED_LEFT;
    if (!c->ok) return "Mise en relation retirée : le besoin et l'offre ne correspondent plus.";
    return "Mise en relation retirée : le score est passé sous le seuil.";
}

/* ---- step 2: the need side ------------------------------------------------------- */

static int s_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "besoin de locaux", "besoin d'équipement": the category label (at most
 * 200 bytes, taxonomy.c), its first letter lowered unless it starts an
 * acronym ("RSE"), with its preposition. `out` holds at least S_NEED_OF_MAX
 * bytes. */
#define S_NEED_OF_MAX 256
static void s_need_of(const mg_matcher_t *m, const char *category, char *out, size_t outlen) {
    const char *label = s_category_label(m, category);
    char lowered[S_NEED_OF_MAX], de[S_NEED_OF_MAX];
    snprintf(out, outlen, "besoin %s",
             mg_fr_de(mg_fr_lower_initial(label, lowered, sizeof(lowered)), de, sizeof(de)));
}

/* Record one collective_need.detected of the group `group` (an EPCI, or
 * "near:<com>" for a group by distance whose `centre` is "lon lat" when it
 * is formed, "" otherwise, and `radius_km` its radius; "" and 0 for an
 * EPCI) from its members "<sid>|<nid>" (`list`); `sids` are its structures
 * as the script lists them (its record keeps them). */
static void s_collective_emit(s_job_t *job, const char *category, const char *group, const char *centre,
                              const char *sids, long long joins, unsigned radius_km, unsigned prev,
                              long long n, const redisReply *list, const char *territory,
                              const char *territory_name, const char *explanation) {
    size_t count = list && list->type == REDIS_REPLY_ARRAY ? list->elements : 0;
    char **need_ids = mg_calloc(count + 1, sizeof(char *)), **structure_ids = mg_calloc(count + 1, sizeof(char *));
    size_t n_needs = 0, n_structures = 0;
    for (size_t i = 0; i < count; i++) {
        const char *member = s_rstr(list->element[i]);
        const char *bar = strchr(member, '|');
        if (!bar) continue;
        need_ids[n_needs++] = mg_strdup(bar + 1);
        structure_ids[n_structures++] = mg_strndup(member, (size_t)(bar - member));
    }
    /* Distinct structures, sorted: a group may list a few hundred. */
    qsort(structure_ids, n_structures, sizeof(char *), s_cmp_str);
    size_t distinct = 0;
    for (size_t i = 0; i < n_structures; i++) {
        if (distinct && strcmp(structure_ids[distinct - 1], structure_ids[i]) == 0) free(structure_ids[i]);
        else structure_ids[distinct++] = structure_ids[i];
    }
    n_structures = distinct;
    char collective_id[MG_ID_MAX + 1], eid[MG_ID_MAX + 1];
    /* "near:<com>" -> "near.<com>": ':' is valid in an id, '.' reads better. */
    char group_id[32];
    snprintf(group_id, sizeof(group_id), "%s", group);
    char *colon = strchr(group_id, ':');
    if (colon) *colon = '.';
    snprintf(collective_id, sizeof(collective_id), "cn.%s.%s", category, group_id);
    snprintf(eid, sizeof(eid), "cn.%s.%s.%u", category, group_id, prev + 1);

    Maillage__V1__CollectiveNeedDetected cn = MAILLAGE__V1__COLLECTIVE_NEED_DETECTED__INIT;
    cn.collective_id = collective_id;
    cn.category = (char *)category;
    cn.territory = (char *)territory;
    cn.territory_name = (char *)territory_name;
    cn.n_need_ids = n_needs;
    cn.need_ids = need_ids;
    cn.n_structure_ids = n_structures;
    cn.structure_ids = structure_ids;
    cn.revision = prev + 1;
    cn.explanation = (char *)explanation;
    cn.radius_km = radius_km;
    /* Serialized once: for the `pb` of mg:collective:* (the gateway) and in
     * the envelope. */
    uint8_t *cn_pb;
    size_t cn_len = s_pack(&cn.base, &cn_pb);
    mg_envelope_t env = MAILLAGE__V1__ENVELOPE__INIT;
    s_out_t *out = s_job_output(job, &env, "collective_need.detected", eid,
                                MAILLAGE__V1__ENVELOPE__PAYLOAD_COLLECTIVE_NEED_DETECTED, cn_pb, cn_len);
    mg_args_str(&job->colls, category);
    mg_args_str(&job->colls, group);
    mg_args_int(&job->colls, prev);
    mg_args_int(&job->colls, prev + 1);
    mg_args_int(&job->colls, n);
    mg_args_str(&job->colls, eid);
    mg_args_bytes(&job->colls, out->data, out->len);
    mg_args_str(&job->colls, centre);
    mg_args_bytes(&job->colls, cn_pb, cn_len);
    mg_args_str(&job->colls, sids);
    mg_args_int(&job->colls, joins);
    free(cn_pb);
    job->n_colls++;
    for (size_t i = 0; i < n_needs; i++) free(need_ids[i]);
    for (size_t i = 0; i < n_structures; i++) free(structure_ids[i]);
    free(need_ids);
    free(structure_ids);
}

/* The EPCI group of the need: `info` is {rev, n, members, structures,
 * joins} or empty (the structures and the joins counted at the same moment,
 * recorded with the revision). */
static void s_collective(s_job_t *job, const Maillage__V1__Need *need, const mg_commune_t *nc, const redisReply *info) {
    mg_matcher_t *m = job->m;
    if (!info || info->type != REDIS_REPLY_ARRAY || info->elements < 5 || !nc || !nc->epci[0]) return;
    unsigned prev = (unsigned)s_rint(info->element[0]);
    long long n = s_rint(info->element[1]);
    /* "4 structures de CU Caen la Mer expriment un besoin de locaux : ..." */
    char need_of[S_NEED_OF_MAX + 8], explanation[1024], territory[32], of_epci[256];
    s_need_of(m, need->category, need_of, sizeof(need_of));
    char epci[256];
    mg_fr_de(mg_fr_epci(nc->epci_name && *nc->epci_name ? nc->epci_name : nc->epci, epci, sizeof(epci)),
             of_epci, sizeof(of_epci));
    snprintf(explanation, sizeof(explanation), "%lld structure%s %s exprime%s un %s : une réponse mutualisée est possible",
             n, n > 1 ? "s" : "", of_epci, n > 1 ? "nt" : "", need_of);
    snprintf(territory, sizeof(territory), "epci:%s", nc->epci);
    s_collective_emit(job, need->category, nc->epci, "", s_rstr(info->element[3]), s_rint(info->element[4]),
                      0, prev, n, info->element[2], territory, nc->epci_name ? nc->epci_name : "",
                      explanation);
}

/* The groups by distance touched by the need: `groups` is a list of
 * {group ("near:<com>"), centre commune, rev, n, members, centre "lon lat"
 * or "", structures} (docs/redis-keys.md, "Collective needs by distance"). */
static void s_collective_near(s_job_t *job, const Maillage__V1__Need *need, const redisReply *groups) {
    mg_matcher_t *m = job->m;
    if (!groups || groups->type != REDIS_REPLY_ARRAY) return;
    for (size_t g = 0; g < groups->elements; g++) {
        const redisReply *r = groups->element[g];
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 7) continue;
        const char *code = s_rstr(r->element[1]);
        const mg_commune_t *centre = mg_communes_find(m->communes, code);
        long long n = s_rint(r->element[3]);
        /* "3 structures à moins de 20 km de Vire Normandie expriment un
         * besoin de matériel : une réponse mutualisée est possible" ("du
         * Havre": mg_fr_de()) */
        char need_of[S_NEED_OF_MAX + 8], explanation[1024], of_centre[256];
        s_need_of(m, need->category, need_of, sizeof(need_of));
        mg_fr_de(centre ? centre->name : code, of_centre, sizeof(of_centre));
        snprintf(explanation, sizeof(explanation),
                 "%lld structure%s à moins de %lld km %s exprime%s un %s : une réponse mutualisée est possible", n,
                 n > 1 ? "s" : "", m->collective_km, of_centre, n > 1 ? "nt" : "", need_of);
        s_collective_emit(job, need->category, s_rstr(r->element[0]), s_rstr(r->element[5]),
                          s_rstr(r->element[6]), 0, (unsigned)m->collective_km,
                          (unsigned)s_rint(r->element[2]), n, r->element[4], code,
                          centre ? centre->name : code, explanation);
    }
}

/* The checks every reply of an "apply" step passes first. No usable reply:
 * the job fails (the subscriber retries the event). Status other than 1, or
 * fewer than `min_elements`: the event was stale or already handled, the job
 * is done (counted when `count_stale`). Returns 1 when the caller goes on. */
static int s_applied(s_job_t *job, const redisReply *reply, size_t min_elements, int count_stale) {
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        s_job_finish(job, !reply ? "Redis connection lost" : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                                                              : "unexpected reply");
        return 0;
    }
    if (reply->elements >= 2 && s_rint(reply->element[0]) == -1) {
        mg_metrics_inc(job->m->metrics.refused);
        mg_warn("matcher: %s %s refused: its item belongs to structure %s, not the one it names",
                job->env->type ? job->env->type : "event", job->env->event_id, s_rstr(reply->element[1]));
        s_job_finish(job, NULL);
        return 0;
    }
    if (reply->elements < min_elements || s_rint(reply->element[0]) != 1) {
        if (count_stale) mg_metrics_inc(job->m->metrics.stale);
        s_job_finish(job, NULL);
        return 0;
    }
    return 1;
}

/* Reply of "need": {1, structure pb, left, at, candidates, collective}. */
static void s_on_need_applied(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    mg_matcher_t *m = job->m;
    (void)redis;
    MG_MATCHER_MARK(MG_MATCHER_APPLY);
    if (!s_applied(job, reply, 6, 1)) return;
    const Maillage__V1__Need *need = job->env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED
                                         ? job->env->need_reported->need
                                         : job->env->need_updated->need;
    const mg_commune_t *nc = mg_communes_find(m->communes, need->commune);
    job->kind = "need";
    snprintf(job->entity_id, sizeof(job->entity_id), "%s", need->need_id);
    s_collective(job, need, nc, reply->element[5]);
    if (reply->elements >= 7) s_collective_near(job, need, reply->element[6]);

    const redisReply *rows = reply->element[4];
    if (!s_mine(m, need->need_id) || !nc || rows->type != REDIS_REPLY_ARRAY || rows->elements == 0) {
        s_decide(job);
        return;
    }
    s_party_t need_party;
    s_party_load(&need_party, m, need->structure_id, reply->element[1]);
    int need_left = strcmp(s_rstr(reply->element[2]), "1") == 0;
    char today[11];
    int64_t now = mg_clock_service_now_ms();
    mg_clock_paris_date(now, today);
    const char *label = s_category_label(m, need->category);
    /* The need's keywords, folded once for all its candidates, and spelled
     * as it spells them for the explanations (candidates' are folded), or
     * as the word list does when it spells them plain; where it says them
     * (candidates are stored as their keywords only). */
    char *need_kw[S_KEYWORDS_MAX], *need_spelled[S_KEYWORDS_MAX];
    size_t need_places[S_KEYWORDS_MAX];
    size_t n_need_kw = mg_match_need_keywords(need, need_kw, need_spelled, need_places, S_KEYWORDS_MAX);
    mg_spellings_respell(m->spellings, need_kw, need_spelled, n_need_kw);

    size_t n = rows->elements / S_CAND_VALUES;
    s_cand_t *cands = s_scratch(m, n);
    s_cand_t **order = mg_calloc(n ? n : 1, sizeof(*order));
    for (size_t i = 0; i < n; i++) {
        const redisReply *const *v = (const redisReply *const *)rows->element + i * S_CAND_VALUES;
        s_cand_t *c = &cands[i];
        s_record_t rec;
        order[i] = c;
        if (s_cand_load(c, v, &rec) != 0) continue;
        Maillage__V1__Offer *offer =
            rec.item_len ? maillage__v1__offer__unpack(NULL, rec.item_len, rec.item) : NULL;
        c->item = offer;
        if (!offer) continue;
        s_party_load(&c->party, m, offer->provider_id, v[3]);
        c->left = need_left || strcmp(s_rstr(v[4]), "1") == 0;
        c->commune = mg_communes_find(m->communes, offer->commune);
        long long at = strtoll(rec.field[S_REC_AT], NULL, 10);
        c->n_kw = s_view_keywords(offer->n_tags, offer->title, offer->description, &c->kw_text, &c->kw);
        mg_match_input_t in = {
            .need = need,
            .need_party = &need_party.party,
            .need_commune = nc,
            .offer = offer,
            .offer_party = &c->party.party,
            .offer_commune = c->commune,
            .today = today,
            .offer_age_days = at > 0 && now > at ? (now - at) / S_MS_PER_DAY : 0,
            .feedback_contact_made = (unsigned)s_record_flag(&rec, "cm"),
            .feedback_not_relevant = (unsigned)s_record_flag(&rec, "nr"),
            .provider_recent_proposals = (unsigned)s_rint(v[5]),
            .category_label = label,
            .need_keywords = (const char *const *)need_kw,
            .n_need_keywords = n_need_kw,
            .offer_keywords = c->kw,
            .n_offer_keywords = c->n_kw,
            .need_spellings = (const char *const *)need_spelled,
            .need_places = need_places,
        };
        /* (An offer placed by its territory only has no commune.) */
        c->ok = !c->left && (c->commune || !*offer->commune) && mg_match_filter(&in) == MG_MATCH_OK;
        if (c->ok) {
            c->score = &m->scores[i];
            c->total = s_stored_score(mg_match_score(&in, &m->weights, c->score));
        }
    }
    qsort(order, n, sizeof(*order), s_cmp_cand);
    unsigned rank = 0;
    const char *dep = nc->department;
    for (size_t i = 0; i < n; i++) {
        s_cand_t *c = order[i];
        if (!c->item) continue;
        const Maillage__V1__Offer *offer = c->item;
        int qualifies = s_qualifies(m, c);
        if (qualifies) c->rank = ++rank;
        s_pair_t p = {.need_id = need->need_id, .offer_id = c->id, .need_structure_id = need->structure_id,
                      .offer_structure_id = offer->provider_id, .category = need->category, .department = dep,
                      .need_commune = nc->code, .rank = c->rank, .detail = c->score, .partner_seq = c->seq};
        if (s_judge(m, c, qualifies, &p)) {
            if (p.retired) p.explanation = s_retire_reason(c);
            s_add_pair(job, &p);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (cands[i].item) maillage__v1__offer__free_unpacked(cands[i].item, NULL);
        s_party_clear(&cands[i].party);
        free(cands[i].kw_text);
        free(cands[i].kw);
    }
    for (size_t i = 0; i < n_need_kw; i++)
        free(need_kw[i]), free(need_spelled[i]);
    free(order);
    s_party_clear(&need_party);
    s_decide(job);
}

/* ---- step 2: the offer side ------------------------------------------------------- */

/* Reply of "offer": {1, provider pb, left, at, {cm, nr, fair}, candidates}. */
static void s_on_offer_applied(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    mg_matcher_t *m = job->m;
    (void)redis;
    MG_MATCHER_MARK(MG_MATCHER_APPLY);
    if (!s_applied(job, reply, 6, 1)) return;
    const Maillage__V1__Offer *offer = job->env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED
                                           ? job->env->offer_published->offer
                                           : job->env->offer_updated->offer;
    const mg_commune_t *oc = mg_communes_find(m->communes, offer->commune);
    job->kind = "offer";
    snprintf(job->entity_id, sizeof(job->entity_id), "%s", offer->offer_id);
    const redisReply *rows = reply->element[5];
    const redisReply *fb = reply->element[4];
    if (rows->type != REDIS_REPLY_ARRAY || rows->elements == 0 || fb->type != REDIS_REPLY_ARRAY ||
        fb->elements < 3) {
        s_decide(job);
        return;
    }
    s_party_t offer_party;
    s_party_load(&offer_party, m, offer->provider_id, reply->element[1]);
    int offer_left = strcmp(s_rstr(reply->element[2]), "1") == 0;
    long long at = s_rint(reply->element[3]);
    char today[11];
    int64_t now = mg_clock_service_now_ms();
    mg_clock_paris_date(now, today);
    const char *label = s_category_label(m, offer->category);
    /* As a need's (s_on_need_applied()). */
    char *offer_kw[S_KEYWORDS_MAX], *offer_spelled[S_KEYWORDS_MAX];
    size_t offer_places[S_KEYWORDS_MAX];
    size_t n_offer_kw = mg_match_offer_keywords(offer, offer_kw, offer_spelled, offer_places, S_KEYWORDS_MAX);
    mg_spellings_respell(m->spellings, offer_kw, offer_spelled, n_offer_kw);

    size_t n = rows->elements / S_CAND_VALUES;
    s_cand_t *cands = s_scratch(m, n);
    for (size_t i = 0; i < n; i++) {
        const redisReply *const *v = (const redisReply *const *)rows->element + i * S_CAND_VALUES;
        s_cand_t *c = &cands[i];
        s_record_t rec;
        if (!s_mine(m, s_rstr(v[0])) || s_cand_load(c, v, &rec) != 0) continue;
        c->top = v[5];
        Maillage__V1__Need *need =
            rec.item_len ? maillage__v1__need__unpack(NULL, rec.item_len, rec.item) : NULL;
        c->item = need;
        if (!need) continue;
        s_party_load(&c->party, m, need->structure_id, v[3]);
        c->left = offer_left || strcmp(s_rstr(v[4]), "1") == 0;
        c->commune = mg_communes_find(m->communes, need->commune);
        c->n_kw = s_view_keywords(need->n_tags, need->title, need->description, &c->kw_text, &c->kw);
        mg_match_input_t in = {
            .need = need,
            .need_party = &c->party.party,
            .need_commune = c->commune,
            .offer = offer,
            .offer_party = &offer_party.party,
            .offer_commune = oc,
            .today = today,
            .offer_age_days = at > 0 && now > at ? (now - at) / S_MS_PER_DAY : 0,
            .feedback_contact_made = (unsigned)s_rint(fb->element[0]),
            .feedback_not_relevant = (unsigned)s_rint(fb->element[1]),
            .provider_recent_proposals = (unsigned)s_rint(fb->element[2]),
            .category_label = label,
            .need_keywords = c->kw,
            .n_need_keywords = c->n_kw,
            .offer_keywords = (const char *const *)offer_kw,
            .n_offer_keywords = n_offer_kw,
            .offer_spellings = (const char *const *)offer_spelled,
            .offer_places = offer_places,
        };
        c->ok = !c->left && c->commune && mg_match_filter(&in) == MG_MATCH_OK;
        if (c->ok) {
            c->score = &m->scores[i];
            c->total = s_stored_score(mg_match_score(&in, &m->weights, c->score));
        }
        /* The rank among the need's candidates: 1 + its open matches with a
         * better score (this pair excluded), an equal score ranking by offer
         * id as the need's side does (s_cmp_cand()). */
        c->rank = 1;
        if (c->ok && c->top && c->top->type == REDIS_REPLY_ARRAY) {
            for (size_t k = 0; k + 1 < c->top->elements; k += 2) {
                int by_id = strcmp(s_rstr(c->top->element[k]), offer->offer_id);
                double other = s_rdouble(c->top->element[k + 1]);
                if (by_id != 0 && (other > c->total || (other == c->total && by_id > 0))) c->rank++;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        s_cand_t *c = &cands[i];
        if (!c->item) continue;
        const Maillage__V1__Need *need = c->item;
        int qualifies = s_qualifies(m, c);
        s_pair_t p = {.need_id = c->id, .offer_id = offer->offer_id, .need_structure_id = need->structure_id,
                      .offer_structure_id = offer->provider_id, .category = offer->category,
                      .department = c->commune ? c->commune->department : "",
                      .need_commune = c->commune ? c->commune->code : "", .rank = c->rank, .detail = c->score,
                      .partner_seq = c->seq};
        if (s_judge(m, c, qualifies, &p)) {
            if (p.retired) p.explanation = s_retire_reason(c);
            s_add_pair(job, &p);
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (cands[i].item) maillage__v1__need__free_unpacked(cands[i].item, NULL);
        s_party_clear(&cands[i].party);
        free(cands[i].kw_text);
        free(cands[i].kw);
    }
    for (size_t i = 0; i < n_offer_kw; i++)
        free(offer_kw[i]), free(offer_spelled[i]);
    s_party_clear(&offer_party);
    s_decide(job);
}

/* ---- closures ----------------------------------------------------------------------- */

/* Why a closure retires its item's matches, as staff read it. */
static const char *s_retired_by_closure(int is_need, Maillage__V1__Closure reason) {
    switch (reason) {
    case MAILLAGE__V1__CLOSURE__CLOSURE_SATISFIED:
        return is_need ? "Mise en relation retirée : le besoin est satisfait."
                       : "Mise en relation retirée : l'offre est pourvue.";
    case MAILLAGE__V1__CLOSURE__CLOSURE_CANCELLED:
        return is_need ? "Mise en relation retirée : le besoin est annulé."
                       : "Mise en relation retirée : l'offre est retirée.";
    case MAILLAGE__V1__CLOSURE__CLOSURE_EXPIRED:
        return is_need ? "Mise en relation retirée : le besoin a expiré."
                       : "Mise en relation retirée : l'offre a expiré.";
    case MAILLAGE__V1__CLOSURE__CLOSURE_MEMBER_LEFT:
        return S_RETIRED_LEFT;
    default:
        return is_need ? "Mise en relation retirée : le besoin est clos."
                       : "Mise en relation retirée : l'offre est retirée.";
    }
}

/* Reply of "close_need"/"close_offer": {1, pairs...}, each
 * {nid, oid, pair record as stored}. */
static void s_on_closed(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    mg_matcher_t *m = job->m;
    (void)redis;
    if (!s_applied(job, reply, 1, 1)) return;
    int is_need = job->env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED;
    job->kind = is_need ? "need" : "offer";
    snprintf(job->entity_id, sizeof(job->entity_id), "%s",
             is_need ? job->env->need_closed->need_id : job->env->offer_withdrawn->offer_id);
    const char *why = s_retired_by_closure(is_need, is_need ? job->env->need_closed->reason
                                                            : job->env->offer_withdrawn->reason);
    for (size_t i = 1; i < reply->elements; i++) {
        const redisReply *row = reply->element[i];
        if (row->type != REDIS_REPLY_ARRAY || row->elements < 3) continue;
        if (!s_mine(m, s_rstr(row->element[0]))) continue;
        /* {nid, oid, pair record as stored}: rev|score|ret|mid|dist|ns|os|cat|dep|... */
        const char *record = s_rstr(row->element[2]);
        char dist[32], ns[MG_ID_MAX + 1], os[MG_ID_MAX + 1], cat[MG_ID_MAX + 1], dep[16];
        s_field(record, 4, dist, sizeof(dist));
        s_field(record, 5, ns, sizeof(ns));
        s_field(record, 6, os, sizeof(os));
        s_field(record, 7, cat, sizeof(cat));
        s_field(record, 8, dep, sizeof(dep));
        s_pair_t p = {.need_id = s_rstr(row->element[0]),
                      .offer_id = s_rstr(row->element[1]),
                      .prev_record = record,
                      .distance_km = strtod(dist, NULL),
                      .need_structure_id = ns,
                      .offer_structure_id = os,
                      .category = cat,
                      .department = dep,
                      .need_commune = "",
                      .retired = 1,
                      .explanation = why};
        int retired;
        s_pair_head(record, &p.prev_rev, &p.score, &retired);
        if (p.prev_rev == 0) continue;
        s_add_pair(job, &p);
    }
    s_decide(job);
}

/* The close of an item the matcher decides (member.left, expiry). `why_key`
 * makes its event id (the same decision, the same id); `if_unchanged_since`
 * (0 = none) makes it void if a later event changed the item. */
static void s_emit_need_closed(s_job_t *job, const char *need_id, const char *structure_id,
                               Maillage__V1__Closure reason, const char *why_key, const char *comment,
                               uint64_t if_unchanged_since) {
    char eid[MG_ID_MAX + 1];
    s_closure_event_id("need.closed", need_id, why_key, eid);
    Maillage__V1__NeedClosed nc = MAILLAGE__V1__NEED_CLOSED__INIT;
    nc.need_id = (char *)need_id;
    nc.structure_id = (char *)structure_id;
    nc.reason = reason;
    nc.comment = (char *)comment;
    nc.if_unchanged_since = if_unchanged_since;
    mg_envelope_t env = MAILLAGE__V1__ENVELOPE__INIT;
    env.payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED;
    env.need_closed = &nc;
    s_add_plain(job, &env, "need.closed", eid);
}

static void s_emit_offer_withdrawn(s_job_t *job, const char *offer_id, const char *provider_id,
                                   Maillage__V1__Closure reason, const char *why_key, const char *comment,
                                   uint64_t if_unchanged_since) {
    char eid[MG_ID_MAX + 1];
    s_closure_event_id("offer.withdrawn", offer_id, why_key, eid);
    Maillage__V1__OfferWithdrawn ow = MAILLAGE__V1__OFFER_WITHDRAWN__INIT;
    ow.offer_id = (char *)offer_id;
    ow.provider_id = (char *)provider_id;
    ow.reason = reason;
    ow.comment = (char *)comment;
    ow.if_unchanged_since = if_unchanged_since;
    mg_envelope_t env = MAILLAGE__V1__ENVELOPE__INIT;
    env.payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_WITHDRAWN;
    env.offer_withdrawn = &ow;
    s_add_plain(job, &env, "offer.withdrawn", eid);
}

/* Reply of "left": {1, "n:<need>" | "o:<offer>" ...}: close them all. */
static void s_on_left(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    (void)redis;
    if (!s_applied(job, reply, 1, 0)) return;
    const char *sid = job->env->member_left->structure_id;
    job->kind = "structure";
    snprintf(job->entity_id, sizeof(job->entity_id), "%s", sid);
    char key[48];
    snprintf(key, sizeof(key), "left.%" PRIu64, job->seq);
    for (size_t i = 1; i < reply->elements; i++) {
        const char *item = s_rstr(reply->element[i]);
        if (strncmp(item, "n:", 2) == 0)
            s_emit_need_closed(job, item + 2, sid, MAILLAGE__V1__CLOSURE__CLOSURE_MEMBER_LEFT, key,
                               "La structure a quitté le réseau.", 0);
        else if (strncmp(item, "o:", 2) == 0)
            s_emit_offer_withdrawn(job, item + 2, sid, MAILLAGE__V1__CLOSURE__CLOSURE_MEMBER_LEFT, key,
                                   "La structure a quitté le réseau.", 0);
    }
    s_decide(job);
}

static void s_on_simple(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    (void)redis;
    if (!reply) s_job_finish(job, "Redis connection lost");
    else if (reply->type == REDIS_REPLY_ERROR) s_job_finish(job, reply->str);
    else s_job_finish(job, NULL);
}

/* ---- step 1: apply ------------------------------------------------------------------ */

/* `entries` joined by spaces into `out` (a territory, networks, departments:
 * ids without spaces), whole entries only; returns how many fit. */
static size_t s_join_words(char *out, size_t outlen, char *const *entries, size_t n) {
    size_t used = 0, i = 0;
    out[0] = '\0';
    for (; i < n && used + 1 < outlen; i++) {
        int w = snprintf(out + used, outlen - used, "%s%s", used ? " " : "", entries[i]);
        if (w < 0 || (size_t)w >= outlen - used) {
            out[used] = '\0';
            break;
        }
        used += (size_t)w;
    }
    return i;
}

/* The offer's conditions as the script's search checks them (conditions()
 * need_screen() and offer_screen() in state.c): "<families>|<networks>|<departments>", each
 * space-separated, "*" for any; the families by number, those
 * mg_match_family_admitted() admits (none: empty). "" when the offer has no
 * conditions, or when they do not fit `out`: then the C filters alone
 * decide. */
static void s_offer_filter(const Maillage__V1__Offer *offer, char *out, size_t outlen) {
    const Maillage__V1__OfferConditions *c = offer->conditions;
    out[0] = '\0';
    if (!c || (!c->ess_only && !c->n_families && !c->n_member_of && !c->n_departments)) return;
    char families[256] = "*", networks[1024] = "*", departments[256] = "*";
    if (c->ess_only || c->n_families) {
        const ProtobufCEnumDescriptor *family = &maillage__v1__family__descriptor;
        size_t used = 0;
        families[0] = '\0';
        for (unsigned i = 0; i < family->n_values && used + 16 < sizeof(families); i++) {
            int v = family->values[i].value;
            if (!mg_match_family_admitted(c, (Maillage__V1__Family)v)) continue;
            used += (size_t)snprintf(families + used, sizeof(families) - used, "%s%d", used ? " " : "", v);
        }
    }
    if (c->n_member_of &&
        s_join_words(networks, sizeof(networks), c->member_of, c->n_member_of) < c->n_member_of)
        return;
    if (c->n_departments &&
        s_join_words(departments, sizeof(departments), c->departments, c->n_departments) < c->n_departments)
        return;
    int w = snprintf(out, outlen, "%s|%s|%s", families, networks, departments);
    if (w < 0 || (size_t)w >= outlen) out[0] = '\0';
}

/* The text the keywords component reads (tags, title, description), folded
 * once into its keywords joined by spaces. Folding is idempotent, so a need
 * or offer stored with this as its description (and no title nor tags)
 * scores exactly like the original, in less memory and less time: this is
 * the "matching view" kept in Redis. Caller frees. */
static char *s_keywords_text(char *const *tags, size_t n_tags, const char *title, const char *description) {
    size_t len = (title ? strlen(title) : 0) + (description ? strlen(description) : 0) + 3;
    for (size_t i = 0; i < n_tags; i++) len += strlen(tags[i]) + 1;
    char *text = mg_malloc(len), *p = text;
    for (size_t i = 0; i < n_tags; i++) p += sprintf(p, "%s ", tags[i]);
    p += sprintf(p, "%s ", title ? title : "");
    sprintf(p, "%s", description ? description : "");
    char *words[256];
    size_t n = mg_text_keywords(text, words, 256);
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t w = strlen(words[i]);
        if (used + w + 2 > len) {
            free(words[i]);
            continue;
        }
        if (used) text[used++] = ' ';
        memcpy(text + used, words[i], w);
        used += w;
        free(words[i]);
    }
    text[used] = '\0';
    return text;
}

/* The matching view of a need or an offer, serialized into *out (caller
 * frees): texts folded into keywords, what the scorer never reads left out. */
static size_t s_need_view(const Maillage__V1__Need *need, uint8_t **out) {
    Maillage__V1__Need view = *need;
    char *keywords = s_keywords_text(need->tags, need->n_tags, need->title, need->description);
    view.n_tags = 0;
    view.tags = NULL;
    view.title = "";
    view.description = keywords;
    view.quantity = "";
    size_t len = s_pack(&view.base, out);
    free(keywords);
    return len;
}

static size_t s_offer_view(const Maillage__V1__Offer *offer, uint8_t **out) {
    Maillage__V1__Offer view = *offer;
    char *keywords = s_keywords_text(offer->tags, offer->n_tags, offer->title, offer->description);
    view.n_tags = 0;
    view.tags = NULL;
    view.title = "";
    view.description = keywords;
    view.terms = "";
    view.capacity = "";
    size_t len = s_pack(&view.base, out);
    free(keywords);
    return len;
}

/* How a need or an offer is applied ("need"/"offer" calls). A report
 * (need.reported, offer.published) only creates: one that finds its item
 * already there (a retry under another event id, or a report journaled after
 * its own update, as a producer retrying through an outage may send them)
 * changes nothing; changes come by updates. */
typedef enum {
    S_APPLY_REPORT,
    S_APPLY_UPDATE,
    S_APPLY_AGAIN, /* match it again without rewriting its record (s_rematch_job(): the
                    * valid_from round, a member's change) */
} s_apply_t;

/* Whether an item's record keeps the item itself instead of its matching
 * view: when its valid_from is to come, so that the round of that day
 * (s_rematch_job(), S_APPLY_AGAIN), in every instance, scores it from its own texts
 * and its explanations keep their accents. It keeps it until updated: more
 * bytes, and folded again when read as a candidate, for the few items
 * published ahead of their day. */
static int s_keeps_item(const char *valid_from, s_apply_t how) {
    return how != S_APPLY_AGAIN && valid_from && *valid_from && mg_clock_day_number(valid_from) > s_today();
}

/* The communes nearest `c` (m->nearby, computed on first use). */
static const s_nearby_t *s_nearby(mg_matcher_t *m, const mg_commune_t *c) {
    s_nearby_t **slot = &m->nearby[mg_communes_index(m->communes, c)];
    if (!*slot) {
        *slot = mg_calloc(1, sizeof(**slot));
        (*slot)->n = mg_communes_nearest(m->communes, c->latitude, c->longitude, S_NEARBY_MAX + 1,
                                         (*slot)->commune, (*slot)->km);
    }
    return *slot;
}

/* The search around commune `c` for near() (state.c) into `out`, "" when
 * radius_km is 0 (none) or `c` is NULL (an offer placed by its territory):
 * "lon,lat,km,<communes in the table>,<complete>,<count>,<code> <code>...":
 * the communes within `radius_km` of `c`, nearest first (at most
 * S_NEARBY_MAX), and whether they are all the communes within it. */
static void s_search_spec(mg_matcher_t *m, const mg_commune_t *c, double radius_km, char *out,
                          size_t outlen) {
    out[0] = '\0';
    if (radius_km <= 0 || !c) return;
    const s_nearby_t *nearby = s_nearby(m, c);
    char codes[S_NEARBY_MAX * 14 + 1];
    size_t used = 0, k = 0;
    codes[0] = '\0';
    for (; k < nearby->n && k < S_NEARBY_MAX && nearby->km[k] <= radius_km; k++)
        used += (size_t)snprintf(codes + used, sizeof(codes) - used, "%s%s:%.2f", k ? " " : "",
                                 nearby->commune[k]->code, nearby->km[k]);
    int complete = k >= nearby->n || nearby->km[k] > radius_km;
    snprintf(out, outlen, "%.6f,%.6f,%.1f,%zu,%d,%zu,%s", c->longitude, c->latitude, radius_km,
             mg_communes_count(m->communes), complete, k, codes);
}

/* When the broker received `env` (its stamp), in Unix ms; now for an
 * envelope without one. */
static long long s_received_ms(const mg_envelope_t *env) {
    return env->received_at_ms ? (long long)env->received_at_ms : (long long)mg_clock_service_now_ms();
}

/* The common arguments of "need" and "offer": `radius_km` is the item's
 * own (for the candidates' reach: state.c, out_of_reach()), `search_km` the
 * radius its candidates are searched within. */
static void s_item_args(mg_matcher_t *m, s_job_t *job, mg_args_t *a, const char *op, const char *id,
                        const char *sid, const char *category, const mg_commune_t *c, const char *valid_from,
                        const char *valid_until, const uint8_t *pb, size_t pb_len, const char *terr,
                        long long radius_km, long long search_km, const char *own_search, const char *filter,
                        s_apply_t how) {
    int64_t now = mg_clock_service_now_ms();
    mg_args_str(a, op);
    mg_args_int(a, (long long)job->seq);
    mg_args_str(a, m->mflag);
    mg_args_str(a, id);
    mg_args_str(a, sid);
    mg_args_str(a, category);
    mg_args_str(a, c ? c->code : "");
    mg_args_str(a, c ? c->department : "");
    mg_args_str(a, c ? c->epci : "");
    mg_args_double(a, c ? c->longitude : 0.0);
    mg_args_double(a, c ? c->latitude : 0.0);
    mg_args_int(a, mg_clock_day_number(valid_until));
    mg_args_bytes(a, pb, pb_len);
    mg_args_int(a, s_received_ms(job->env));
    mg_args_str(a, terr);
    mg_args_int(a, m->max_candidates);
    mg_args_int(a, radius_km);
    mg_args_int(a, now - m->fair_window_ms);
    mg_args_int(a, now);
    mg_args_int(a, m->collective_min);
    mg_args_int(a, now - m->collective_window_ms);
    mg_args_str(a, own_search);
    mg_args_int(a, m->collective_km);
    mg_args_int(a, mg_clock_day_number(valid_from));
    mg_args_int(a, s_today());
    mg_args_str(a, how == S_APPLY_AGAIN ? "1" : how == S_APPLY_REPORT ? "r" : "0");
    char spec[S_SPEC_MAX];
    s_search_spec(m, c, (double)search_km, spec, sizeof(spec));
    mg_args_str(a, spec);
    mg_args_str(a, filter);
    /* How many of a need's best open matches an offer's rank is counted
     * among: exact up to max_proposals, beyond which it is not proposed. */
    mg_args_int(a, m->max_proposals > 20 ? m->max_proposals : 20);
}

/* The "need" call of `need` into `a`: -1 (nothing added) if its commune is
 * unknown. */
static int s_need_args(mg_matcher_t *m, s_job_t *job, mg_args_t *a, const Maillage__V1__Need *need,
                       s_apply_t how) {
    const mg_commune_t *c = need ? mg_communes_find(m->communes, need->commune) : NULL;
    if (!c) {
        mg_warn("matcher: sequence %" PRIu64 ": need without a known commune; ignored", job->seq);
        return -1;
    }
    uint8_t *pb;
    size_t len = s_keeps_item(need->valid_from, how) ? s_pack(&need->base, &pb) : s_need_view(need, &pb);
    long long search = need->radius_km ? need->radius_km : m->search_max_km;
    s_item_args(m, job, a, "need", need->need_id, need->structure_id, need->category, c, need->valid_from,
                need->valid_until, pb, len, "", need->radius_km, search, "", "", how);
    free(pb);
    return 0;
}

/* The "offer" call of `offer` into `a`, like s_need_args(). */
static int s_offer_args(mg_matcher_t *m, s_job_t *job, mg_args_t *a, const Maillage__V1__Offer *offer,
                        s_apply_t how) {
    /* An offer is placed by its commune, its territory, or both (as the
     * broker accepts it): without a commune it is found through its
     * territory only, and is at no distance (mg_match_filter()). */
    const mg_commune_t *c = offer ? mg_communes_find(m->communes, offer->commune) : NULL;
    if (!offer || (!c && (*offer->commune || offer->n_territory == 0))) {
        mg_warn("matcher: sequence %" PRIu64 ": offer without a known commune or a territory; ignored",
                job->seq);
        return -1;
    }
    uint8_t *pb;
    size_t len = s_keeps_item(offer->valid_from, how) ? s_pack(&offer->base, &pb) : s_offer_view(offer, &pb);
    char terr[2048], own[S_SPEC_MAX], filter[1600];
    s_join_words(terr, sizeof(terr), offer->territory, offer->n_territory);
    s_search_spec(m, c, 0.5, own, sizeof(own));
    s_offer_filter(offer, filter, sizeof(filter));
    s_item_args(m, job, a, "offer", offer->offer_id, offer->provider_id, offer->category, c,
                offer->valid_from, offer->valid_until, pb, len, terr, offer->radius_km, offer->radius_km, own,
                filter, how);
    free(pb);
    return 0;
}

static void s_on_event(mg_subscriber_t *sub, const mg_envelope_t *env, mg_delivery_t *delivery, void *arg) {
    mg_matcher_t *m = arg;
    (void)sub;
    mg_metrics_inc(m->metrics.events);
    s_job_t *job = s_job_new(m, env, delivery);
    mg_args_t a;
    mg_args_init(&a);
    mg_redis_reply_fn cb = s_on_simple;

    switch (env->payload_case) {
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED:
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED: {
        const Maillage__V1__Structure *s = env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED
                                               ? env->member_joined->structure
                                               : env->member_updated->structure;
        if (!s) break;
        /* Personal data is the broker's (mg:contact:<sid>, written when it
         * journals the event, which it strips of the contact): the record
         * never holds it, whatever the event carries. */
        Maillage__V1__Structure copy = *s;
        copy.contact = NULL;
        uint8_t *pb;
        size_t len = s_pack(&copy.base, &pb);
        mg_args_str(&a, "member");
        mg_args_int(&a, (long long)job->seq);
        mg_args_str(&a, s->structure_id);
        mg_args_bytes(&a, pb, len);
        mg_args_str(&a, m->mflag);
        /* The network it joined: one of its networks until it leaves,
         * whatever its record lists (state.c, op "member"). */
        mg_args_str(&a, env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED
                            ? env->member_joined->network
                            : "");
        free(pb);
        cb = s_on_member;
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_LEFT:
        mg_args_str(&a, "left");
        mg_args_int(&a, (long long)job->seq);
        mg_args_str(&a, m->mflag);
        mg_args_str(&a, env->member_left->structure_id);
        cb = s_on_left;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED:
        if (s_need_args(m, job, &a, env->need_reported->need, S_APPLY_REPORT) == 0) cb = s_on_need_applied;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED:
        if (s_need_args(m, job, &a, env->need_updated->need, S_APPLY_UPDATE) == 0) cb = s_on_need_applied;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED:
        if (s_offer_args(m, job, &a, env->offer_published->offer, S_APPLY_REPORT) == 0)
            cb = s_on_offer_applied;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED:
        if (s_offer_args(m, job, &a, env->offer_updated->offer, S_APPLY_UPDATE) == 0) cb = s_on_offer_applied;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED:
        mg_args_str(&a, "close_need");
        mg_args_int(&a, (long long)job->seq);
        mg_args_str(&a, m->mflag);
        mg_args_str(&a, env->need_closed->need_id);
        mg_args_int(&a, s_received_ms(env));
        mg_args_int(&a, (long long)env->need_closed->if_unchanged_since);
        mg_args_str(&a, env->need_closed->structure_id);
        cb = s_on_closed;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_WITHDRAWN:
        mg_args_str(&a, "close_offer");
        mg_args_int(&a, (long long)job->seq);
        mg_args_str(&a, m->mflag);
        mg_args_str(&a, env->offer_withdrawn->offer_id);
        mg_args_int(&a, s_received_ms(env));
        mg_args_int(&a, (long long)env->offer_withdrawn->if_unchanged_since);
        mg_args_str(&a, env->offer_withdrawn->provider_id);
        cb = s_on_closed;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED: {
        const Maillage__V1__CooperationProposed *cp = env->cooperation_proposed;
        uint8_t *pb;
        size_t len = s_pack(&cp->base, &pb);
        mg_args_str(&a, "coop");
        mg_args_int(&a, (long long)job->seq);
        mg_args_str(&a, cp->proposal_id);
        mg_args_str(&a, "pb");
        mg_args_bytes(&a, pb, len);
        free(pb);
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_ANSWERED: {
        const Maillage__V1__CooperationAnswered *ca = env->cooperation_answered;
        char field[MG_ID_MAX + 8];
        snprintf(field, sizeof(field), "ans:%s", ca->structure_id);
        mg_args_str(&a, "coop");
        mg_args_int(&a, (long long)job->seq);
        mg_args_str(&a, ca->proposal_id);
        mg_args_str(&a, field);
        mg_args_int(&a, ca->answer);
        mg_args_str(&a, ca->comment ? ca->comment : "");
        mg_args_int(&a, env->received_at_ms);
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FEEDBACK: {
        const Maillage__V1__MatchFeedback *fb = env->match_feedback;
        mg_args_str(&a, "feedback");
        mg_args_int(&a, (long long)job->seq);
        mg_args_str(&a, fb->match_id);
        mg_args_str(&a, fb->staff_id);
        mg_args_str(&a, fb->outcome == MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_CONTACT_MADE   ? "cm"
                        : fb->outcome == MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_NOT_RELEVANT ? "nr"
                                                                                                 : "");
        mg_args_str(&a, fb->comment ? fb->comment : "");
        break;
    }
    default:
        break;
    }
    if (a.argc == 0) {
        s_job_finish(job, NULL);
        return;
    }
    MG_MATCHER_MARK(MG_MATCHER_PREPARE);
    if (mg_script_call(m->script, &a, cb, job) != 0) s_job_finish(job, "Redis unavailable");
}

/* ---- expiry ------------------------------------------------------------------------- */

/* Reply of "expired": {{need, sid, seq, ...}, {offer, sid, seq, ...}}. Each
 * close is conditional on the item's last event (seq): an update journaled
 * before the close but not applied yet (an extension of valid_until) voids
 * it. The event id names that event, so that the item expiring later (after
 * an update that did not extend it) gets a close of its own. */
static void s_on_expired(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    (void)redis;
    job->m->expiry_running = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        s_job_free(job);
        return;
    }
    for (int k = 0; k < 2; k++) {
        const redisReply *list = reply->element[k];
        if (list->type != REDIS_REPLY_ARRAY) continue;
        for (size_t i = 0; i + 2 < list->elements; i += 3) {
            const char *id = s_rstr(list->element[i]), *sid = s_rstr(list->element[i + 1]);
            uint64_t seq = (uint64_t)s_rint(list->element[i + 2]);
            char why[40];
            snprintf(why, sizeof(why), "expired.%" PRIu64, seq);
            if (k == 0)
                s_emit_need_closed(job, id, sid, MAILLAGE__V1__CLOSURE__CLOSURE_EXPIRED, why,
                                   "Date de validité dépassée.", seq);
            else
                s_emit_offer_withdrawn(job, id, sid, MAILLAGE__V1__CLOSURE__CLOSURE_EXPIRED, why,
                                       "Date de validité dépassée.", seq);
        }
    }
    if (job->n_plains == 0) {
        s_job_free(job);
        return;
    }
    job->m->expiry_running = 1;
    job->expiry = 1;
    s_decide(job);
}

static void s_on_expiry_timer(evutil_socket_t fd, short what, void *arg) {
    mg_matcher_t *m = arg;
    (void)fd;
    (void)what;
    s_start_round(m);
    /* Not while catching up: the updates still to apply may extend what
     * looks expired (the close would be void, but journaled for nothing). */
    if (m->expiry_running || m->stopping || m->held || !mg_redis_is_up(m->redis) || !m->subscriber ||
        !mg_subscriber_is_live(m->subscriber))
        return;
    char today[11];
    mg_clock_paris_date(mg_clock_service_now_ms(), today);
    mg_args_t a;
    mg_args_init(&a);
    mg_args_str(&a, "expired");
    mg_args_int(&a, mg_clock_day_number(today) - 1);
    mg_args_int(&a, S_EXPIRED_BATCH);
    s_job_t *job = s_job_new(m, NULL, NULL);
    m->expiry_running = 1;
    if (mg_script_call(m->script, &a, s_on_expired, job) != 0) {
        m->expiry_running = 0;
        s_job_free(job);
    }
}

/* ---- retention: the match records of items closed long ago ------------------------ */

/* Reply of "sweep": {cursor, pairs deleted} and, when the scan came round,
 * the scan's total. */
static void s_on_swept(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_matcher_t *m = privdata;
    (void)redis;
    m->sweep_running = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        if (reply && reply->type == REDIS_REPLY_ERROR) mg_warn("matcher: retention: %s", reply->str);
        return;
    }
    mg_metrics_add(m->metrics.swept, (uint64_t)s_rint(reply->element[1]));
    if (reply->elements >= 3 && s_rint(reply->element[2]) > 0)
        mg_info(
            "matcher: retention: a scan of the pair records came round: %lld of items closed more than %lld "
            "days ago deleted",
            s_rint(reply->element[2]), m->retention_ms / S_MS_PER_DAY);
}

/* One step of the retention's scan ("sweep" in state.c), every
 * S_SWEEP_INTERVAL_MS; the instances share its cursor. */
static void s_on_sweep_timer(evutil_socket_t fd, short what, void *arg) {
    mg_matcher_t *m = arg;
    (void)fd;
    (void)what;
    if (m->sweep_running || m->stopping || !mg_redis_is_up(m->redis)) return;
    int64_t now = mg_clock_service_now_ms();
    mg_args_t a;
    mg_args_init(&a);
    mg_args_str(&a, "sweep");
    mg_args_int(&a, S_SWEEP_KEYS);
    mg_args_int(&a, now - m->retention_ms);
    mg_args_int(&a, now);
    mg_args_int(&a, S_SWEEP_PAUSE_MS);
    m->sweep_running = 1;
    if (mg_script_call(m->script, &a, s_on_swept, m) != 0) m->sweep_running = 0;
}

/* ---- valid_from: matching again on the day an item becomes valid ------------------ */

/* An item whose valid_from is in the future is filtered out until that day
 * (mg_match_filter), and on that day no event comes: the "need"/"offer" call
 * put it in mg:start:<kind> (score = the day). Each expiry tick, the items
 * whose day came since this instance's last completed round are matched
 * again, exactly as an update with the same sequence would be ("force": the
 * record is not rewritten); the deterministic ids and the pair revisions make
 * a second pass harmless. The round is marked done (mg:start:done, field =
 * this instance's flag) only when every job succeeded, so a crash or a Redis
 * outage means the round is redone. */

static void s_start_job_done(mg_matcher_t *m, int failed) {
    if (failed) m->start_failed = 1;
    if (m->start_pending > 0) m->start_pending--;
    if (m->start_pending > 0) return;
    m->start_running = 0;
    if (m->start_failed || m->stopping) return; /* this part again */
    if (m->start_truncated) {
        memcpy(m->start_after, m->start_next, sizeof(m->start_after));
        return;
    }
    memset(m->start_after, 0, sizeof(m->start_after));
    mg_redis_command(m->redis, NULL, NULL, "HSET mg:start:done %s %lld", m->mflag, m->start_today);
}

/* A job matching again the stored item `row` = {id, seq, at, item}: for
 * `parent` (a member.updated's job), else for the valid_from round. */
static void s_rematch_job(mg_matcher_t *m, int is_need, const redisReply *row, s_job_t *parent) {
    if (row->type != REDIS_REPLY_ARRAY || row->elements < 4) return;
    size_t len = s_rlen(row->element[3]);
    const uint8_t *data = (const uint8_t *)s_rstr(row->element[3]);
    s_job_t *job = s_job_new(m, NULL, NULL);
    job->rematch = 1;
    mg_envelope_t *env = &job->own_env;
    maillage__v1__envelope__init(env);
    env->sequence = (uint64_t)s_rint(row->element[1]);
    env->received_at_ms = s_rint(row->element[2]);
    /* What it emits is correlated with the member event (borrowed: the
     * parent ends after its children). */
    if (parent) env->event_id = parent->env->event_id;
    job->env = env;
    job->seq = env->sequence;
    m->jobs++;
    job->parent = parent;
    if (parent)
        parent->children++;
    else
        m->start_pending++;
    mg_args_t a;
    mg_args_init(&a);
    int ok = -1;
    if (is_need) {
        maillage__v1__need_updated__init(&job->own_need);
        job->own_need.need = len ? maillage__v1__need__unpack(NULL, len, data) : NULL;
        env->payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED;
        env->need_updated = &job->own_need;
        if (job->own_need.need) ok = s_need_args(m, job, &a, job->own_need.need, S_APPLY_AGAIN);
    } else {
        maillage__v1__offer_updated__init(&job->own_offer);
        job->own_offer.offer = len ? maillage__v1__offer__unpack(NULL, len, data) : NULL;
        env->payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED;
        env->offer_updated = &job->own_offer;
        if (job->own_offer.offer) ok = s_offer_args(m, job, &a, job->own_offer.offer, S_APPLY_AGAIN);
    }
    if (ok != 0) {
        /* Unreadable or without a known commune: never matchable. */
        mg_args_clear(&a);
        s_job_finish(job, NULL);
        return;
    }
    if (mg_script_call(m->script, &a, is_need ? s_on_need_applied : s_on_offer_applied, job) != 0)
        s_job_finish(job, "Redis unavailable");
}

/* One child of `parent` ended: the last one ends it, marking its event
 * handled (decide) if they all succeeded, else failing it (the event comes
 * again, and its items are matched again). */
static void s_child_done(s_job_t *parent, int failed) {
    parent->child_failed |= failed;
    if (--parent->children > 0) return;
    if (parent->child_failed)
        s_job_finish(parent, "its structure's items could not all be matched again");
    else
        s_decide(parent);
}

/* Reply of "member": {1, {needs: {id, seq, at, item}...}, {offers: ...}}:
 * the structure's open items to match again when its record changed. */
static void s_on_member(mg_redis_t *redis, redisReply *reply, void *privdata) {
    s_job_t *job = privdata;
    (void)redis;
    if (!s_applied(job, reply, 3, 0)) return;
    const Maillage__V1__Structure *s = job->env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED
                                           ? job->env->member_joined->structure
                                           : job->env->member_updated->structure;
    job->kind = "structure";
    snprintf(job->entity_id, sizeof(job->entity_id), "%s", s->structure_id);
    job->children = 1; /* the loop's own, so that no child ends the job before all are started */
    for (int k = 0; k < 2; k++) {
        const redisReply *list = reply->element[1 + k];
        for (size_t i = 0; list->type == REDIS_REPLY_ARRAY && i < list->elements; i++)
            s_rematch_job(job->m, k == 0, list->element[i], job);
    }
    s_child_done(job, 0);
}

/* Items matched again per round and kind: the rest in the next rounds (one
 * per expiry_interval_s), so that a bulk of items valid from one day does
 * not make one reply of megabytes (each a whole item: s_keeps_item()). */
#define S_START_LIMIT 1000

/* Reply of "started": {{needs: {id, seq, at, item}...}, {offers: ...}, needs
 * read, offers read, the last need read, the last offer read} (the lists
 * leave out the items closed since; the last read as "<day> <id>"). */
static void s_on_started(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_matcher_t *m = privdata;
    (void)redis;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 6 || m->stopping) {
        if (reply && reply->type == REDIS_REPLY_ERROR) mg_warn("matcher: valid_from round: %s", reply->str);
        m->start_running = 0;
        return;
    }
    size_t total = 0;
    m->start_failed = m->start_truncated = 0;
    /* One pending count for the loop itself, so the round cannot complete
     * (and be marked done) before every job is started. */
    m->start_pending = 1;
    for (int k = 0; k < 2; k++) {
        const redisReply *list = reply->element[k];
        long long read = s_rint(reply->element[2 + k]);
        snprintf(m->start_next[k], sizeof(m->start_next[k]), "%s", s_rstr(reply->element[4 + k]));
        if (read >= S_START_LIMIT) {
            m->start_truncated = 1;
            mg_info("matcher: %d or more %s become valid today; the next %d in the next round", S_START_LIMIT,
                    k == 0 ? "needs" : "offers", S_START_LIMIT);
        }
        if (list->type != REDIS_REPLY_ARRAY) continue;
        for (size_t i = 0; i < list->elements; i++)
            s_rematch_job(m, k == 0, list->element[i], NULL);
        total += list->elements;
    }
    if (total) mg_info("matcher: %zu item(s) valid from today matched again", total);
    s_start_job_done(m, 0);
}

static void s_start_round(mg_matcher_t *m) {
    /* (Not while the outbox is full: its jobs would add to it.) */
    if (m->start_running || m->stopping || m->held || !mg_redis_is_up(m->redis)) return;
    m->start_today = s_today();
    mg_args_t a;
    mg_args_init(&a);
    mg_args_str(&a, "started");
    mg_args_str(&a, m->mflag);
    mg_args_int(&a, m->start_today);
    mg_args_int(&a, S_START_LIMIT);
    mg_args_str(&a, m->start_after[0]);
    mg_args_str(&a, m->start_after[1]);
    m->start_running = 1;
    if (mg_script_call(m->script, &a, s_on_started, m) != 0) m->start_running = 0;
}

/* ---- the outbox -------------------------------------------------------------------- */

static void s_on_ack(mg_producer_t *producer, const char *on_behalf_of, const char *event_id,
                     Maillage__V1__Ack__Status status, uint64_t seq,
                     const char *reason, void *arg) {
    mg_matcher_t *m = arg;
    (void)producer;
    (void)on_behalf_of;
    (void)seq;
    if (status == MAILLAGE__V1__ACK__STATUS__STATUS_REJECTED) {
        /* Our own event refused: a bug to fix, not something to resend. */
        mg_metrics_inc(m->metrics.acks_rejected);
        mg_error("matcher: the broker rejected %s: %s", event_id, reason);
    }
    /* One HDEL for the acks of a loop turn (an event's decisions are acked
     * together), sent by s_on_acked_flush(). */
    if (m->acked.argc == 0) {
        mg_args_str(&m->acked, "HDEL");
        mg_args_str(&m->acked, S_OUTBOX_KEY);
        event_active(m->acked_flush, 0, 0);
    }
    mg_args_str(&m->acked, event_id);
    mg_metrics_set(m->metrics.outbox, mg_producer_pending(m->producer));
    if (m->held && mg_producer_pending(m->producer) <= m->outbox_max / 2) {
        mg_info("matcher: the broker answers again: going on");
        m->held_logged = 0;
        s_release_held(m);
    }
}

static void s_on_acked_flush(evutil_socket_t fd, short what, void *arg) {
    mg_matcher_t *m = arg;
    (void)fd;
    (void)what;
    /* Redis down: the entries stay, are sent again at the next start, and
     * the broker journals each id once. */
    if (m->acked.argc > 2)
        mg_redis_command_argv(m->redis, NULL, NULL, m->acked.argc, (const char **)m->acked.argv,
                              m->acked.lens);
    mg_args_clear(&m->acked);
}

/* Outbox entries (id, envelope: two replies) in the order they were
 * recorded for one entity: an id "<entity>.<revision>" (match.<mid>.<rev>,
 * cn.<...>.<rev>) after the lower revisions of the same entity. The order
 * between entities does not matter. */
typedef struct {
    const redisReply *id, *data;
} s_outbox_entry_t;

static int s_outbox_order(const void *a, const void *b) {
    const redisReply *x = ((const s_outbox_entry_t *)a)->id, *y = ((const s_outbox_entry_t *)b)->id;
    const char *dx = strrchr(x->str, '.'), *dy = strrchr(y->str, '.');
    size_t px = dx ? (size_t)(dx - x->str) : x->len, py = dy ? (size_t)(dy - y->str) : y->len;
    int c = memcmp(x->str, y->str, px < py ? px : py);
    if (c || px != py) return c ? c : (px < py ? -1 : 1);
    if (!dx || !dy) return 0;
    size_t lx = strlen(dx + 1), ly = strlen(dy + 1);
    if (strspn(dx + 1, "0123456789") == lx && strspn(dy + 1, "0123456789") == ly && lx != ly)
        return lx < ly ? -1 : 1; /* (numbers without leading zeros: shorter is lower) */
    return strcmp(dx + 1, dy + 1);
}

/* Send again what a previous run recorded but may not have seen
 * acknowledged: all of it in one reply, sorted, and before any new
 * decision (the commands of new jobs are answered after this one on the
 * connection), so that no revision of a pair is journaled before the
 * revisions it follows (a retirement before its proposal). */
static void s_on_outbox(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_matcher_t *m = privdata;
    (void)redis;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return;
    size_t n = 0;
    s_outbox_entry_t *entries = mg_malloc(reply->elements / 2 * sizeof(*entries) + 1);
    for (size_t i = 0; i + 1 < reply->elements; i += 2)
        if (reply->element[i]->type == REDIS_REPLY_STRING &&
            reply->element[i + 1]->type == REDIS_REPLY_STRING)
            entries[n++] = (s_outbox_entry_t){reply->element[i], reply->element[i + 1]};
    qsort(entries, n, sizeof(*entries), s_outbox_order);
    size_t resent = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *id = entries[i].id, *data = entries[i].data;
        if (mg_producer_send(m->producer, id->str, (const uint8_t *)data->str, data->len) == 0) resent++;
    }
    free(entries);
    if (resent) mg_info("matcher: %zu event(s) of the outbox sent again", resent);
}

/* ---- the roll call of the running matchers ----------------------------------------- */

/* Reply of "live": every matcher in the roll call, "<instance>|<instances>|<id>".
 * Three misconfigurations would otherwise go unseen, each logged once when it
 * appears (and a share's return as well), and counted in a gauge:
 *  - another matcher splitting the needs into another number of shares
 *    (some needs are then matched by no instance, others by two);
 *  - another matcher with this one's instance and instances (they share a
 *    checkpoint and do the same work: give each its own number);
 *  - with instances > 1, a share that no matcher handles: its needs are not
 *    matched at all. */
static void s_on_live(mg_redis_t *redis, redisReply *reply, void *privdata) {
    mg_matcher_t *m = privdata;
    (void)redis;
    m->live_running = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || m->stopping) {
        if (reply && reply->type == REDIS_REPLY_ERROR) mg_warn("matcher: roll call: %s", reply->str);
        return;
    }
    for (size_t i = 0; i < m->n_live_ended; i++)
        free(m->live_ended[i]);
    m->n_live_ended = 0;
    if (!m->live_since_us) m->live_since_us = mg_clock_monotonic_us();
    unsigned shares = m->instances > 1 ? m->instances : 1;
    unsigned char *handled = mg_calloc(shares, 1);
    handled[m->instance % shares] = 1;
    char split[224] = "", twin[224] = "";
    uint64_t disagreeing = 0;
    for (size_t i = 0; i < reply->elements; i++) {
        const char *member = s_rstr(reply->element[i]);
        unsigned instance, instances;
        int at = 0;
        if (strcmp(member, m->live_member) == 0 ||
            sscanf(member, "%u|%u|%n", &instance, &instances, &at) != 2 || at == 0)
            continue;
        const char *id = member + at;
        if (mg_process_ended(id)) {
            if (m->n_live_ended < S_LIVE_ENDED) m->live_ended[m->n_live_ended++] = mg_strdup(member);
            continue;
        }
        if (instances != m->instances) {
            disagreeing++;
            if (!*split) snprintf(split, sizeof(split), "%s (instances = %u)", id, instances);
        } else {
            if (instance == m->instance && !*twin) snprintf(twin, sizeof(twin), "%s", id);
            if (instance < shares) handled[instance] = 1;
        }
    }
    char alone[160] = "";
    size_t n_alone = 0, len = 0;
    if (m->instances > 1 && mg_clock_monotonic_us() - m->live_since_us >= (int64_t)S_LIVE_TTL_MS * 1000) {
        for (unsigned s = 0; s < shares; s++) {
            if (handled[s]) continue;
            n_alone++;
            if (len < sizeof(alone) - 16)
                len += (size_t)snprintf(alone + len, sizeof(alone) - len, "%s%u", len ? ", " : "", s);
        }
    }
    free(handled);
    mg_metrics_set(m->metrics.shares_alone, n_alone);
    mg_metrics_set(m->metrics.disagreeing, disagreeing);
    if (*split && strcmp(split, m->said_split) != 0)
        mg_error(
            "matcher: matcher %s splits the needs into other shares than this one (instances = %u): some "
            "needs are matched by no matcher and others by two; give every matcher the same [matcher] "
            "instances",
            split, m->instances);
    else if (!*split && *m->said_split)
        mg_info("matcher: every matcher now splits the needs into %u share(s)", shares);
    if (*twin && strcmp(twin, m->said_twin) != 0)
        mg_warn("matcher: matcher %s also has instance %u: the two share one checkpoint and do the same "
                "work; give "
                "each matcher its own [matcher] instance",
                twin, m->instance);
    if (*alone && strcmp(alone, m->said_alone) != 0)
        mg_error("matcher: no matcher handles share %s of %u (the needs whose hash gives that number): those "
                 "needs "
                 "are not matched; start %s with [matcher] instance = %s",
                 alone, m->instances, n_alone > 1 ? "one matcher per share" : "a matcher",
                 n_alone > 1 ? "its number" : alone);
    else if (!*alone && *m->said_alone)
        mg_info("matcher: every share of the needs has a matcher again");
    memcpy(m->said_split, split, sizeof(split));
    memcpy(m->said_twin, twin, sizeof(twin));
    memcpy(m->said_alone, alone, sizeof(alone));
}

/* Renew this matcher's entry in the roll call ("live" in state.c). */
static void s_on_live_timer(evutil_socket_t fd, short what, void *arg) {
    mg_matcher_t *m = arg;
    (void)fd;
    (void)what;
    if (m->live_running || m->stopping || !mg_redis_is_up(m->redis)) return;
    mg_args_t a;
    mg_args_init(&a);
    mg_args_str(&a, "live");
    mg_args_int(&a, mg_clock_now_ms()); /* not Redis' TIME: the deployed ACL user may not run it */
    mg_args_int(&a, S_LIVE_TTL_MS);
    mg_args_str(&a, m->live_member);
    for (size_t i = 0; i < m->n_live_ended; i++)
        mg_args_str(&a, m->live_ended[i]);
    m->live_running = 1;
    if (mg_script_call(m->script, &a, s_on_live, m) != 0) m->live_running = 0;
}

/* ---- Redis, metrics, life cycle ----------------------------------------------------- */

static void s_on_redis_state(mg_redis_t *redis, int up, void *arg) {
    mg_matcher_t *m = arg;
    (void)redis;
    if (up) {
        mg_script_redis_up(m->script);
        mg_redis_command(m->redis, s_on_outbox, m, "HGETALL %s", S_OUTBOX_KEY);
        s_on_live_timer(-1, 0, m);
        if (!m->redis_seen_up)
            mg_info("matcher: ready (consumer %s, partition %u of %u)", m->name, m->instance, m->instances);
        else
            mg_info("matcher: Redis available again");
        m->redis_seen_up = 1;
    } else {
        mg_warn("matcher: Redis unavailable; deliveries pause until it is back");
    }
    if (m->subscriber) mg_subscriber_redis_state(m->subscriber, up);
}

static void s_metrics_register(mg_matcher_t *m) {
    s_metrics_t *x = &m->metrics;
    x->events = mg_metrics_counter("maillage_matcher_events_total", "Events delivered to the matcher.");
    x->stale = mg_metrics_counter("maillage_matcher_events_skipped_total",
                                  "Events already applied (replay, redelivery, another instance) or not applicable.");
    x->refused =
        mg_metrics_counter("maillage_matcher_events_refused_total",
                           "Updates and closes refused: they name another structure than their item's.");
    x->failures = mg_metrics_counter("maillage_matcher_failures_total", "Events whose handling failed (retried).");
#define S_MATCHES "maillage_matcher_match_events_total"
#define S_MATCHES_HELP "match.found events recorded, by kind."
    x->proposed = mg_metrics_counter(S_MATCHES "{kind=\"proposed\"}", S_MATCHES_HELP);
    x->revised = mg_metrics_counter(S_MATCHES "{kind=\"revision\"}", S_MATCHES_HELP);
    x->retired = mg_metrics_counter(S_MATCHES "{kind=\"retired\"}", S_MATCHES_HELP);
    x->collective = mg_metrics_counter("maillage_matcher_collective_total", "collective_need.detected recorded.");
    x->closures = mg_metrics_counter("maillage_matcher_closures_total",
                                     "need.closed / offer.withdrawn emitted (expiry, member left).");
    x->outbox = mg_metrics_gauge("maillage_matcher_outbox_pending", "Events sent to the broker, not yet acknowledged.");
    x->acks_rejected =
        mg_metrics_counter("maillage_matcher_rejected_total", "Events of the matcher rejected by the broker.");
    x->swept = mg_metrics_counter("maillage_matcher_retention_deleted_total",
                                  "Pair records of items closed longer than closed_retention_days, deleted.");
    x->shares_alone =
        mg_metrics_gauge("maillage_matcher_shares_unmatched",
                         "Shares of the needs ([matcher] instances) that no running matcher handles.");
    x->disagreeing =
        mg_metrics_gauge("maillage_matcher_instances_disagreeing",
                         "Other running matchers that split the needs into another number of shares.");
}

static void s_on_metrics_timer(evutil_socket_t fd, short what, void *arg) {
    mg_matcher_t *m = arg;
    (void)fd;
    (void)what;
    mg_redis_publish_metrics(m->redis, m->name);
}

static void s_on_stop_timer(evutil_socket_t fd, short what, void *arg) {
    mg_matcher_t *m = arg;
    (void)fd;
    (void)what;
    event_base_loopexit(m->base, NULL);
}

static void s_on_flushed(mg_subscriber_t *sub, void *arg) {
    mg_matcher_t *m = arg;
    (void)sub;
    event_base_loopexit(m->base, NULL);
}

void mg_matcher_shutdown(mg_matcher_t *m) {
    if (m->stopping) return;
    m->stopping = 1;
    s_release_held(m);
    struct timeval tv = {S_SHUTDOWN_GRACE_MS / 1000, (S_SHUTDOWN_GRACE_MS % 1000) * 1000};
    evtimer_add(m->stop_timer, &tv);
    if (m->subscriber) mg_subscriber_flush(m->subscriber, s_on_flushed, m);
    else event_base_loopexit(m->base, NULL);
}

mg_matcher_t *mg_matcher_new(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen) {
    mg_matcher_t *m = mg_calloc(1, sizeof(*m));
    char why[512];
    m->base = base;
    m->cfg = cfg;
    m->weights = (mg_match_weights_t){
        .distance = mg_config_double(cfg, "matcher", "weight_distance"),
        .keywords = mg_config_double(cfg, "matcher", "weight_keywords"),
        .sector = mg_config_double(cfg, "matcher", "weight_sector"),
        .intercooperation = mg_config_double(cfg, "matcher", "weight_intercooperation"),
        .freshness = mg_config_double(cfg, "matcher", "weight_freshness"),
        .feedback = mg_config_double(cfg, "matcher", "weight_feedback"),
        .fairness = mg_config_double(cfg, "matcher", "weight_fairness"),
        .threshold = mg_config_double(cfg, "matcher", "threshold"),
    };
    m->material_change = mg_config_double(cfg, "matcher", "material_change");
    m->fair_window_ms = mg_config_int(cfg, "matcher", "fairness_window_days") * S_MS_PER_DAY;
    m->collective_window_ms = mg_config_int(cfg, "matcher", "collective_window_days") * S_MS_PER_DAY;
    m->retention_ms = mg_config_int(cfg, "matcher", "closed_retention_days") * S_MS_PER_DAY;
    m->collective_min = mg_config_int(cfg, "matcher", "collective_min_structures");
    m->collective_km = mg_config_int(cfg, "matcher", "collective_distance_km");
    m->max_candidates = mg_config_int(cfg, "matcher", "max_candidates");
    m->search_max_km = mg_config_int(cfg, "matcher", "search_max_km");
    m->max_proposals = mg_config_int(cfg, "matcher", "max_proposals");
    m->outbox_max = (size_t)mg_config_int(cfg, "matcher", "outbox_max");
    m->instance = (unsigned)mg_config_int(cfg, "matcher", "instance");
    m->instances = (unsigned)mg_config_int(cfg, "matcher", "instances");
    s_metrics_register(m);
    const char *path = mg_config_path(cfg) ? mg_config_path(cfg) : "(defaults)";
    if (mg_matcher_config_check(cfg, path, err, errlen) != 0) goto err;
    if (m->instance == 0) snprintf(m->name, sizeof(m->name), "matcher");
    else snprintf(m->name, sizeof(m->name), "matcher-%u", m->instance);
    /* With partitions, each instance handles its own share of every event,
     * so each marks "handled" in its own field. */
    if (m->instances > 1) snprintf(m->mflag, sizeof(m->mflag), "m%u", m->instance);
    else snprintf(m->mflag, sizeof(m->mflag), "m");

    m->taxonomy = mg_taxonomy_new(cfg, why, sizeof(why));
    if (!m->taxonomy) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    m->communes = mg_communes_load(mg_config_str(cfg, "data", "communes_file"), why, sizeof(why));
    if (!m->communes) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    m->n_nearby = mg_communes_count(m->communes);
    m->nearby = mg_calloc(m->n_nearby ? m->n_nearby : 1, sizeof(*m->nearby));
    m->zmq_context = zmq_ctx_new();
    if (!m->zmq_context) {
        mg_fail(err, errlen, "zmq_ctx_new: %s", strerror(errno));
        goto err;
    }
    m->redis = mg_redis_new_from_config(base, cfg, s_on_redis_state, m, why, sizeof(why));
    if (!m->redis) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    m->script = mg_script_new(m->redis, mg_matcher_script);
    mg_producer_options_t popts = {.endpoint = mg_config_str(cfg, "broker", "ingest"),
                                   .retry_rate_limited = 1};
    m->producer = mg_producer_new(base, m->zmq_context, &popts, s_on_ack, m, why, sizeof(why));
    if (!m->producer) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    static const char *const topics[] = {"member.", "need.", "offer.", "cooperation.", "match.feedback", NULL};
    mg_subscriber_options_t sopts = {.name = m->name,
                                     .fanout = mg_config_str(cfg, "broker", "fanout"),
                                     .topics = topics,
                                     .deadletter_maxlen = mg_config_int(cfg, "broker", "deadletter_maxlen")};
    m->subscriber = mg_subscriber_new(base, m->zmq_context, m->redis, &sopts, s_on_event, m, why, sizeof(why));
    if (!m->subscriber) {
        mg_fail(err, errlen, "%s", why);
        goto err;
    }
    m->expiry_timer = event_new(base, -1, EV_PERSIST, s_on_expiry_timer, m);
    m->sweep_timer = event_new(base, -1, EV_PERSIST, s_on_sweep_timer, m);
    m->metrics_timer = event_new(base, -1, EV_PERSIST, s_on_metrics_timer, m);
    m->stop_timer = evtimer_new(base, s_on_stop_timer, m);
    m->acked_flush = event_new(base, -1, 0, s_on_acked_flush, m);
    m->live_timer = event_new(base, -1, EV_PERSIST, s_on_live_timer, m);
    if (!m->expiry_timer || !m->sweep_timer || !m->metrics_timer || !m->stop_timer || !m->acked_flush ||
        !m->live_timer) {
        mg_fail(err, errlen, "cannot create timers");
        goto err;
    }
    long long expiry_s = mg_config_int(cfg, "matcher", "expiry_interval_s");
    struct timeval tv = {(time_t)expiry_s, 0}, mtv = {S_METRICS_INTERVAL_S, 0};
    event_add(m->expiry_timer, &tv);
    event_add(m->metrics_timer, &mtv);
    struct timeval ltv = {S_LIVE_RENEW_MS / 1000, (S_LIVE_RENEW_MS % 1000) * 1000};
    event_add(m->live_timer, &ltv);
    snprintf(m->live_member, sizeof(m->live_member), "%u|%u|%s", m->instance, m->instances, mg_process_id());
    if (m->retention_ms > 0) {
        struct timeval stv = {0, S_SWEEP_INTERVAL_MS * 1000};
        event_add(m->sweep_timer, &stv);
    }
    /* Optional: without it, explanations spell keywords as the texts do.
     * Loaded last, so that a start that fails says only why. */
    const char *words = mg_config_str(cfg, "data", "words_file");
    if (*words) {
        m->spellings = mg_spellings_load(words, why, sizeof(why));
        if (m->spellings)
            mg_info("matcher: %zu spellings with accents from %s", mg_spellings_count(m->spellings), words);
        else
            mg_warn("matcher: %s; explanations spell keywords as the texts do", why);
    }
    if (mg_clock_test_file())
        mg_warn("matcher: TEST CLOCK: time is shifted by the offset in %s (MAILLAGE_CLOCK_FILE); never in "
                "production",
                mg_clock_test_file());
    mg_info("matcher: consumer %s, ingest %s, fanout %s; connecting to Redis", m->name,
            mg_config_str(cfg, "broker", "ingest"), mg_config_str(cfg, "broker", "fanout"));
    return m;
err:
    mg_matcher_destroy(&m);
    return NULL;
}

void mg_matcher_destroy(mg_matcher_t **matcher_p) {
    if (!matcher_p || !*matcher_p) return;
    mg_matcher_t *m = *matcher_p;
    if (m->expiry_timer) event_free(m->expiry_timer);
    if (m->sweep_timer) event_free(m->sweep_timer);
    if (m->metrics_timer) event_free(m->metrics_timer);
    if (m->stop_timer) event_free(m->stop_timer);
    if (m->live_timer) event_free(m->live_timer);
    for (size_t i = 0; i < m->n_live_ended; i++)
        free(m->live_ended[i]);
    if (m->held) s_job_free(m->held);
    mg_subscriber_destroy(&m->subscriber);
    /* Pending script calls get their callbacks (NULL replies) here: jobs are
     * freed; their deliveries come again after a restart. */
    m->stopping = 1;
    mg_redis_destroy(&m->redis);
    mg_script_destroy(&m->script);
    mg_producer_destroy(&m->producer);
    if (m->acked_flush) event_free(m->acked_flush);
    mg_args_clear(&m->acked);
    if (m->zmq_context) zmq_ctx_term(m->zmq_context);
    mg_taxonomy_destroy(&m->taxonomy);
    mg_communes_destroy(&m->communes);
    mg_spellings_destroy(&m->spellings);
    for (size_t i = 0; m->nearby && i < m->n_nearby; i++)
        free(m->nearby[i]);
    free(m->nearby);
    free(m->cands);
    free(m->scores);
    free(m);
    *matcher_p = NULL;
}
