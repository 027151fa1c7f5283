/* bench_matcher.c -- time to match one new need and one new offer against
 * N open offers and N open needs spread over Normandy's communes, and the
 * Redis memory per open item (issue 4). Not a test.
 *
 * Usage: bench_matcher REDIS_URL SAMPLES N1 [N2 ...]
 *
 * It runs the matcher's own code (services/matcher/matcher.c and state.c are
 * compiled in here, unity-style) in its own event loop against the Redis at
 * REDIS_URL, which it FLUSHALLs before each size: for each N it loads N/5
 * structures, then N offers and N needs through the matcher's script (with
 * one candidate each, so loading does no matching: a cold start, every need
 * without a match; BENCH_MATCHER_STEADY=1 loads them through the matcher's
 * handler instead, each matched as it arrives, as in steady state: about a
 * millisecond an item, and the memory then counts the matches too), measures
 * used_memory, and then times SAMPLES new needs and SAMPLES new offers, each
 * from the event handler to the end of the "decide" script call (apply +
 * candidate search + filters + scores + decisions recorded with their events
 * in the outbox), exactly what the daemon does for a delivered event. The
 * broker is a stub in a thread of this program that acknowledges every event
 * at once, so the matcher's producer and outbox drain as in the daemon (a
 * backlog of unacked events would weigh on its allocator and timers). Handing
 * the recorded events to the producer is timed (the daemon does it before it
 * finishes the delivery); their acks are not (they come asynchronously).
 * Before timing, it waits for any AOF rewrite the bulk load triggered.
 * BENCH_MATCHER_STATS=1 prints Redis' INFO commandstats of the timed part to
 * stderr (what the scripts cost, command by command).
 *
 * Prints one line per size: "n=... steady=0|1 bytes_per_item=... need_p50_us=...
 * need_p99_us=... offer_p50_us=... offer_p99_us=... redis_us_per_event=...
 * proposals_per_event=... unacked=..." (unacked: events the stub broker had
 * not acknowledged at the end, 0 unless something is wrong), then where the
 * time goes: "base_us=... per_decision_us=..." (least squares of each new
 * offer's time over the match events it recorded, from none to a few dozen:
 * the cost of an offer with none, and of each one more; a new need's are
 * nearly all max_proposals), the mean per event of each phase of the
 * matcher's job ("prepare_us apply_us score_us decide_us send_us", see
 * MG_MATCHER_MARK in matcher.c, and "rest_us" after the last one), and the
 * raw ceiling "rtt_busy_us rtt_idle_us": a PING's round trip to the same
 * Redis, back to back and after the CPUs idled (s_redis_round_trip()). */
#include <stdint.h>

/* The matcher's phase clocks (MG_MATCHER_MARK, matcher.c): counted while a
 * timed job runs; ns[MG_MATCHER_PHASES] is what follows the last mark. */
static struct {
    int on;
    uint64_t last, ns[8];
} s_phase;
static void s_phase_mark(int phase);
#define MG_MATCHER_MARK(phase) s_phase_mark(phase)

#include "../services/matcher/matcher.c"
#include "../services/matcher/state.c"

#include "bench_common.h"

_Static_assert(MG_MATCHER_PHASES < 8, "s_phase.ns holds the phases and what follows the last");

static void s_phase_mark(int phase) {
    if (!s_phase.on) return;
    uint64_t now = bench_now_ns();
    s_phase.ns[phase] += now - s_phase.last;
    s_phase.last = now;
}

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

/* ---- a broker that acknowledges everything ---------------------------------- */

typedef struct {
    void *ctx, *router;
    char endpoint[64];
    atomic_int stop;
} s_acker_t;

static void *s_acker_run(void *arg) {
    s_acker_t *a = arg;
    uint64_t seq = 0;
    int timeout = 100;
    zmq_setsockopt(a->router, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
    while (!atomic_load(&a->stop)) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, a->router, 0) < 0) {
            zmq_msg_close(&id);
            zmq_msg_close(&body);
            continue;
        }
        /* [identity, envelope] from a direct producer (the matcher's). */
        int more = zmq_msg_more(&id);
        if (more && zmq_msg_recv(&body, a->router, 0) >= 0) {
            mg_envelope_t *env = mg_envelope_unpack(zmq_msg_data(&body), zmq_msg_size(&body));
            while (zmq_msg_more(&body)) { /* unexpected extra frames: drop them */
                zmq_msg_close(&body);
                zmq_msg_init(&body);
                if (zmq_msg_recv(&body, a->router, 0) < 0) break;
            }
            if (env) {
                mg_ack_t ack = MAILLAGE__V1__ACK__INIT;
                ack.event_id = env->event_id;
                ack.status = MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED;
                ack.sequence = ++seq;
                uint8_t *out = NULL;
                size_t len = mg_ack_pack(&ack, &out);
                zmq_send(a->router, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
                zmq_send(a->router, out, len, 0);
                free(out);
                mg_envelope_free(env);
            }
        }
        zmq_msg_close(&id);
        zmq_msg_close(&body);
    }
    return NULL;
}

/* Bind the stub on a loopback port; its endpoint goes to [broker] ingest. */
static int s_acker_start(s_acker_t *a, pthread_t *thread) {
    size_t len = sizeof(a->endpoint);
    a->ctx = zmq_ctx_new();
    a->router = a->ctx ? zmq_socket(a->ctx, ZMQ_ROUTER) : NULL;
    if (!a->router || zmq_bind(a->router, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(a->router, ZMQ_LAST_ENDPOINT, a->endpoint, &len) != 0)
        return -1;
    return pthread_create(thread, NULL, s_acker_run, a) == 0 ? 0 : -1;
}

static void s_acker_stop(s_acker_t *a, pthread_t thread) {
    atomic_store(&a->stop, 1);
    pthread_join(thread, NULL);
    zmq_close(a->router);
    zmq_ctx_term(a->ctx);
}

#define S_PIPELINE 512

static uint64_t s_rng = 0x2545f4914f6cdd1dull;
static uint64_t s_rand(void) {
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static const char *const s_words[] = {
    "cuisine", "stockage", "bureau", "atelier", "outillage", "formation", "gestion", "comptabilite", "camion",
    "frigorifique", "benevole", "accompagnement", "numerique", "ordinateur", "logiciel", "communication",
    "graphisme", "radio", "jardin", "maraichage", "insertion", "nettoyage", "traiteur", "epicerie", "transport",
    "mobilite", "recyclage", "reemploi", "textile", "menuiserie", "batiment", "energie", "financement", "pret",
    "subvention", "investissement", "salle", "reunion", "entrepot", "vehicule"};
#define S_N_WORDS (sizeof(s_words) / sizeof(s_words[0]))

static char s_tag_buf[3][32];
static char *s_tags[3];

static void s_random_tags(void) {
    for (int i = 0; i < 3; i++) {
        snprintf(s_tag_buf[i], sizeof(s_tag_buf[i]), "%s", s_words[s_rand() % S_N_WORDS]);
        s_tags[i] = s_tag_buf[i];
    }
}

typedef struct {
    mg_matcher_t *m;
    const mg_communes_t *communes;
    size_t n_structures;
    uint64_t seq;
    char title[128], description[256], sid[32], id[32], dep_terr[16];
    char *terr[1];
} s_gen_t;

static const mg_commune_t *s_commune(s_gen_t *g) {
    return mg_communes_at(g->communes, s_rand() % mg_communes_count(g->communes));
}

static void s_texts(s_gen_t *g) {
    s_random_tags();
    snprintf(g->title, sizeof(g->title), "Besoin de %s et %s", s_tags[0], s_tags[1]);
    snprintf(g->description, sizeof(g->description),
             "Notre structure cherche %s pour son activité de %s, idéalement près de chez nous, "
             "avec un peu de %s. Merci de nous contacter.",
             s_tags[0], s_tags[1], s_tags[2]);
}

/* A need.reported envelope (static storage, valid until the next call). */
static mg_envelope_t *s_need_env(s_gen_t *g, size_t index) {
    static mg_envelope_t env;
    static Maillage__V1__NeedReported nr;
    static Maillage__V1__Need need;
    static const uint32_t radii[] = {10, 20, 30, 50, 0};
    maillage__v1__envelope__init(&env);
    maillage__v1__need_reported__init(&nr);
    maillage__v1__need__init(&need);
    const mg_commune_t *c = s_commune(g);
    s_texts(g);
    snprintf(g->id, sizeof(g->id), "n%zu", index);
    snprintf(g->sid, sizeof(g->sid), "s%zu", (size_t)(s_rand() % g->n_structures));
    need.need_id = g->id;
    need.structure_id = g->sid;
    need.category = (char *)mg_taxonomy_code(g->m->taxonomy, s_rand() % mg_taxonomy_count(g->m->taxonomy));
    need.n_tags = 3;
    need.tags = s_tags;
    need.title = g->title;
    need.description = g->description;
    need.commune = (char *)c->code;
    need.radius_km = radii[s_rand() % 5];
    need.valid_until = "2099-12-31";
    nr.need = &need;
    env.event_id = g->id;
    env.type = "need.reported";
    env.payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED;
    env.need_reported = &nr;
    env.sequence = ++g->seq;
    env.received_at_ms = mg_clock_now_ms();
    return &env;
}

static mg_envelope_t *s_offer_env(s_gen_t *g, size_t index) {
    static mg_envelope_t env;
    static Maillage__V1__OfferPublished op;
    static Maillage__V1__Offer offer;
    static const uint32_t radii[] = {10, 20, 30, 50};
    maillage__v1__envelope__init(&env);
    maillage__v1__offer_published__init(&op);
    maillage__v1__offer__init(&offer);
    const mg_commune_t *c = s_commune(g);
    s_texts(g);
    snprintf(g->id, sizeof(g->id), "o%zu", index);
    snprintf(g->sid, sizeof(g->sid), "s%zu", (size_t)(s_rand() % g->n_structures));
    offer.offer_id = g->id;
    offer.provider_id = g->sid;
    offer.category = (char *)mg_taxonomy_code(g->m->taxonomy, s_rand() % mg_taxonomy_count(g->m->taxonomy));
    offer.n_tags = 3;
    offer.tags = s_tags;
    offer.title = g->title;
    offer.description = g->description;
    offer.commune = (char *)c->code;
    offer.radius_km = radii[s_rand() % 4];
    offer.valid_until = "2099-12-31";
    if (s_rand() % 10 == 0) { /* one offer in ten serves its whole department */
        snprintf(g->dep_terr, sizeof(g->dep_terr), "dep:%s", c->department);
        g->terr[0] = g->dep_terr;
        offer.n_territory = 1;
        offer.territory = g->terr;
    }
    op.offer = &offer;
    env.event_id = g->id;
    env.type = "offer.published";
    env.payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED;
    env.offer_published = &op;
    env.sequence = ++g->seq;
    env.received_at_ms = mg_clock_now_ms();
    return &env;
}

/* Microseconds Redis spent in EVALSHA so far (INFO commandstats). */
static long long s_evalsha_usec(redisContext *c) {
    redisReply *r = redisCommand(c, "INFO commandstats");
    long long v = 0;
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "cmdstat_evalsha:") : NULL;
    if (p && (p = strstr(p, "usec="))) v = atoll(p + 5);
    if (r) freeReplyObject(r);
    return v;
}

/* Wait until Redis has no AOF rewrite running or scheduled: the bulk load
 * grows the AOF past its rewrite threshold, and the fork of a rewrite (copy on
 * write of a 1 GB process) would otherwise be timed as if it were matching. */
static void s_wait_aof_rewrite(redisContext *c) {
    for (int i = 0; i < 6000; i++) {
        redisReply *r = redisCommand(c, "INFO persistence");
        int busy = r && r->type == REDIS_REPLY_STRING &&
                   (strstr(r->str, "aof_rewrite_in_progress:1") || strstr(r->str, "aof_rewrite_scheduled:1") ||
                    strstr(r->str, "rdb_bgsave_in_progress:1"));
        if (r) freeReplyObject(r);
        if (!busy) return;
        usleep(100000);
    }
}

static long long s_used_memory(redisContext *c) {
    redisReply *r = redisCommand(c, "INFO memory");
    long long v = -1;
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "used_memory:") : NULL;
    if (p) v = atoll(p + 12);
    if (r) freeReplyObject(r);
    return v;
}

/* Append one apply call for `env` (as the daemon would build it) to the
 * pipeline of `c`. */
static void s_append_apply(s_gen_t *g, redisContext *c, const char *sha, mg_envelope_t *env) {
    s_job_t job = {.m = g->m, .env = env, .seq = env->sequence};
    mg_args_t a;
    mg_args_init(&a);
    mg_args_str(&a, "EVALSHA");
    mg_args_str(&a, sha);
    mg_args_str(&a, "0");
    if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED) {
        const Maillage__V1__Need *need = env->need_reported->need;
        uint8_t *pb;
        size_t len = s_need_view(need, &pb);
        s_item_args(g->m, &job, &a, "need", need->need_id, need->structure_id, need->category,
                    mg_communes_find(g->communes, need->commune), need->valid_from, need->valid_until, pb,
                    len, "", need->radius_km, 1, "", "", 0);
        free(pb);
    } else {
        const Maillage__V1__Offer *offer = env->offer_published->offer;
        uint8_t *pb;
        size_t len = s_offer_view(offer, &pb);
        char terr[64];
        s_join_words(terr, sizeof(terr), offer->territory, offer->n_territory);
        s_item_args(g->m, &job, &a, "offer", offer->offer_id, offer->provider_id, offer->category,
                    mg_communes_find(g->communes, offer->commune), offer->valid_from, offer->valid_until, pb,
                    len, terr, offer->radius_km, 1, "", "", 0);
        free(pb);
    }
    redisAppendCommandArgv(c, a.argc, (const char **)a.argv, a.lens);
    mg_args_clear(&a);
}

static int s_drain(redisContext *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            fprintf(stderr, "bench_matcher: redis: %s\n", c->errstr);
            return -1;
        }
        int bad = r->type == REDIS_REPLY_ERROR;
        if (bad) fprintf(stderr, "bench_matcher: %s\n", r->str);
        freeReplyObject(r);
        if (bad) return -1;
    }
    return 0;
}

static uint64_t s_decisions(const mg_matcher_t *m) {
    return mg_metrics_value(m->metrics.proposed) + mg_metrics_value(m->metrics.revised) +
           mg_metrics_value(m->metrics.retired);
}

/* Run one delivery through the matcher's handler and wait for its end; its
 * time, and in *decisions (unless NULL) the match events it recorded. */
static uint64_t s_time_one(s_gen_t *g, struct event_base *base, mg_envelope_t *env, uint64_t *decisions) {
    uint64_t before = s_decisions(g->m);
    uint64_t t0 = bench_now_ns();
    s_phase.on = 1;
    s_phase.last = t0;
    s_on_event(NULL, env, NULL, g->m);
    while (g->m->jobs > 0) event_base_loop(base, EVLOOP_ONCE);
    uint64_t end = bench_now_ns();
    s_phase.ns[MG_MATCHER_PHASES] += end - s_phase.last;
    s_phase.on = 0;
    if (decisions) *decisions = s_decisions(g->m) - before;
    return end - t0;
}

/* Least squares of time (ns) over decisions: the cost of an event with
 * none (*base_us) and of each one more (*per_us). */
static void s_fit(const uint64_t *ns, const uint64_t *dec, size_t n, double *base_us, double *per_us) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double x = (double)dec[i], y = (double)ns[i] / 1000.0;
        sx += x, sy += y, sxx += x * x, sxy += x * y;
    }
    double var = (double)n * sxx - sx * sx;
    *per_us = var > 0 ? ((double)n * sxy - sx * sy) / var : 0;
    *base_us = n ? (sy - *per_us * sx) / (double)n : 0;
}

/* The raw ceiling: the median round trip of a PING on the same Redis, back
 * to back (*busy_us) and after 500 µs idle (*idle_us: a vCPU that went idle
 * meanwhile must be woken up, as between a job's calls). */
static void s_redis_round_trip(redisContext *c, double *busy_us, double *idle_us) {
    enum { N = 1000 };
    static uint64_t ns[N];
    for (int idle = 0; idle < 2; idle++) {
        for (size_t i = 0; i < N; i++) {
            if (idle) usleep(500);
            uint64_t t0 = bench_now_ns();
            redisReply *r = redisCommand(c, "PING");
            ns[i] = bench_now_ns() - t0;
            if (r) freeReplyObject(r);
        }
        *(idle ? idle_us : busy_us) = bench_quantile_us(ns, N, 0.5);
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "Usage: bench_matcher REDIS_URL SAMPLES N1 [N2 ...]\n");
        return 2;
    }
    size_t samples = (size_t)atoll(argv[2]);
    char conf[1024], err[512];
    s_acker_t acker = {0};
    pthread_t acker_thread;
    if (s_acker_start(&acker, &acker_thread) != 0) {
        fprintf(stderr, "bench_matcher: cannot start the stub broker: %s\n", zmq_strerror(errno));
        return 1;
    }
    int n = snprintf(conf, sizeof(conf),
                     "[log]\nlevel = warn\n[redis]\nurl = %s\n[broker]\n"
                     "ingest = %s\nfanout = tcp://127.0.0.1:9\n%s%s\n",
                     argv[1], acker.endpoint, getenv("BENCH_MATCHER_CONF") ? "[matcher]\n" : "",
                     getenv("BENCH_MATCHER_CONF") ? getenv("BENCH_MATCHER_CONF") : "");
    mg_config_t *cfg = mg_config_load_buffer("bench", conf, (size_t)n, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "bench_matcher: %s\n", err);
        return 1;
    }
    mg_log_init("bench_matcher", MG_LOG_WARN);
    struct event_base *base = event_base_new();
    mg_matcher_t *m = mg_matcher_new(base, cfg, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "bench_matcher: %s\n", err);
        return 1;
    }
    mg_redis_options_t opts;
    mg_redis_options_from_config(cfg, &opts, err, sizeof(err));
    redisContext *c = mg_redis_connect_sync(&opts, err, sizeof(err));
    mg_redis_options_clear(&opts);
    if (!c) {
        fprintf(stderr, "bench_matcher: %s\n", err);
        return 1;
    }
    uint64_t wait_until = bench_now_ns() + 5000000000ull;
    while (!m->redis_seen_up && bench_now_ns() < wait_until) event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    redisReply *r = redisCommand(c, "SCRIPT LOAD %s", mg_matcher_script);
    if (!r || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "bench_matcher: SCRIPT LOAD failed\n");
        return 1;
    }
    char sha[41];
    snprintf(sha, sizeof(sha), "%s", r->str);
    freeReplyObject(r);

    s_gen_t g = {.m = m, .communes = m->communes};
    uint64_t *need_ns = mg_calloc(samples, sizeof(uint64_t)), *offer_ns = mg_calloc(samples, sizeof(uint64_t));
    uint64_t *offer_dec = mg_calloc(samples, sizeof(uint64_t));
    long long saved_max = m->max_candidates, saved_coll = m->collective_min;
    const char *steady_env = getenv("BENCH_MATCHER_STEADY");
    int steady = steady_env && strcmp(steady_env, "1") == 0;
    for (int k = 3; k < argc; k++) {
        size_t size = (size_t)atoll(argv[k]);
        freeReplyObject(redisCommand(c, "FLUSHALL"));
        g.n_structures = size / 5 ? size / 5 : 1;
        g.seq = 0;
        /* The directory first: its memory is not "per open item". */
        for (size_t i = 0; i < g.n_structures; i += S_PIPELINE) {
            size_t batch = 0;
            for (size_t j = i; j < g.n_structures && j < i + S_PIPELINE; j++, batch++) {
                char sid[32], pb[64];
                snprintf(sid, sizeof(sid), "s%zu", j);
                Maillage__V1__Structure s = MAILLAGE__V1__STRUCTURE__INIT;
                s.structure_id = sid;
                s.family = (Maillage__V1__Family)(1 + j % 7);
                s.naf_code = j % 2 ? "88.99B" : "56.21Z";
                s.commune = (char *)s_commune(&g)->code;
                size_t len = maillage__v1__structure__pack(&s, (uint8_t *)pb);
                /* (Then the flag of a single instance's events handled, and
                 * the network a member.joined names: none.) */
                redisAppendCommand(c, "EVALSHA %s 0 member %llu %s %b m %s", sha, (unsigned long long)++g.seq, sid, pb,
                                   len, "");
            }
            if (s_drain(c, batch) != 0) return 1;
            /* Keep the matcher's own connection served meanwhile (its
             * watchdog drops a connection with replies left unread). */
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        }
        long long before = s_used_memory(c);
        if (!steady) m->max_candidates = 1;
        m->collective_min = 0;
        uint64_t t_load = bench_now_ns();
        if (steady) {
            for (size_t j = 0; j < 2 * size; j++)
                s_time_one(&g, base, j % 2 ? s_need_env(&g, j / 2) : s_offer_env(&g, j / 2), NULL);
        } else {
            for (size_t i = 0; i < 2 * size; i += S_PIPELINE) {
                size_t batch = 0;
                for (size_t j = i; j < 2 * size && j < i + S_PIPELINE; j++, batch++)
                    s_append_apply(&g, c, sha, j % 2 ? s_need_env(&g, j / 2) : s_offer_env(&g, j / 2));
                if (s_drain(c, batch) != 0) return 1;
                event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
            }
        }
        double load_s = (double)(bench_now_ns() - t_load) / 1e9;
        long long after = s_used_memory(c);
        m->max_candidates = saved_max;
        m->collective_min = saved_coll;
        s_wait_aof_rewrite(c);
        /* Serve the matcher's connection after the wait (see the load). */
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);

        if (getenv("BENCH_MATCHER_STATS")) freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
        uint64_t candidates_before = mg_metrics_value(m->metrics.proposed);
        long long redis_before = s_evalsha_usec(c);
        memset(s_phase.ns, 0, sizeof(s_phase.ns));
        for (size_t i = 0; i < samples; i++) {
            need_ns[i] = s_time_one(&g, base, s_need_env(&g, size + i), NULL);
            offer_ns[i] = s_time_one(&g, base, s_offer_env(&g, size + i), &offer_dec[i]);
        }
        uint64_t proposed = mg_metrics_value(m->metrics.proposed) - candidates_before;
        double base_us, per_us, rtt_busy, rtt_idle;
        s_fit(offer_ns, offer_dec, samples, &base_us, &per_us); /* before the quantiles sort offer_ns */
        s_redis_round_trip(c, &rtt_busy, &rtt_idle);
        double phase_us[MG_MATCHER_PHASES + 1];
        for (int p = 0; p <= MG_MATCHER_PHASES; p++)
            phase_us[p] = (double)s_phase.ns[p] / 1000.0 / (double)(2 * samples);
        double redis_us = (double)(s_evalsha_usec(c) - redis_before) / (double)(2 * samples);
        if (getenv("BENCH_MATCHER_STATS")) { /* what the scripts cost, command by command (to stderr) */
            redisReply *st = redisCommand(c, "INFO commandstats");
            if (st && st->type == REDIS_REPLY_STRING) fprintf(stderr, "%s", st->str);
            if (st) freeReplyObject(st);
        }
        /* What the stub broker has not acknowledged yet (a few at most). */
        for (int i = 0; i < 200 && mg_producer_pending(m->producer) > 0; i++) {
            event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
            usleep(5000);
        }
        printf("n=%zu steady=%d items=%zu load_s=%.1f bytes_per_item=%.0f need_p50_us=%.1f need_p99_us=%.1f "
               "offer_p50_us=%.1f offer_p99_us=%.1f redis_us_per_event=%.1f proposals_per_event=%.1f "
               "unacked=%zu base_us=%.1f per_decision_us=%.1f prepare_us=%.1f apply_us=%.1f score_us=%.1f "
               "decide_us=%.1f send_us=%.1f rest_us=%.1f rtt_busy_us=%.1f rtt_idle_us=%.1f\n",
               size, steady, 2 * size, load_s, (double)(after - before) / (double)(2 * size),
               bench_quantile_us(need_ns, samples, 0.5), bench_quantile_us(need_ns, samples, 0.99),
               bench_quantile_us(offer_ns, samples, 0.5), bench_quantile_us(offer_ns, samples, 0.99),
               redis_us, (double)proposed / (double)(2 * samples), mg_producer_pending(m->producer), base_us,
               per_us, phase_us[MG_MATCHER_PREPARE], phase_us[MG_MATCHER_APPLY], phase_us[MG_MATCHER_SCORE],
               phase_us[MG_MATCHER_DECIDE], phase_us[MG_MATCHER_SEND], phase_us[MG_MATCHER_PHASES], rtt_busy,
               rtt_idle);
        fflush(stdout);
    }
    free(need_ns);
    free(offer_ns);
    free(offer_dec);
    redisFree(c);
    mg_matcher_destroy(&m);
    s_acker_stop(&acker, acker_thread);
    event_base_free(base);
    mg_config_destroy(&cfg);
    return 0;
}
