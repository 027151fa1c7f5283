/* probe_consumer.c -- a consuming daemon for the fault tests.
 *
 * Built like a real daemon (mg_subscriber + mg_redis + libevent, clean stop
 * on SIGTERM with a checkpoint flush), it applies for each delivered event an
 * idempotent effect in Redis, in one script, as a daemon should:
 *
 *   SADD mg:probe:<name>:applied <event_id>   -- what was applied
 *   INCR mg:probe:<name>:effects               -- only if newly added
 *   HINCRBY mg:probe:<name>:deliveries <event_id> 1   -- always
 *
 * so a test can check that every acknowledged event was applied exactly once
 * (applied set == acked ids, effects == their count) and see redeliveries.
 * --fail-type / --fail-every make the handler fail (poison events; each
 * failure is counted in mg:probe:<name>:failures), --slow-us delays each
 * event (without blocking the loop) to build a backlog. The subscriber's
 * counters are written to mg:probe:<name>:stats every 100 ms. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <zmq.h>

#include "maillage/config.h"
#include "maillage/log.h"
#include "maillage/mem.h"
#include "maillage/redis.h"
#include "maillage/subscriber.h"

typedef struct {
    struct event_base *base;
    mg_redis_t *redis;
    mg_subscriber_t *sub;
    const char *name;
    char *applied_key, *effects_key, *deliveries_key, *failures_key, *stats_key;
    const char *fail_type;
    long fail_every;
    long fail_times; /* 0: fail forever */
    long slow_us;
    int stopping;
    struct event *stats_timer, *stop_timer;
} s_probe_t;

/* One event being handled. */
typedef struct {
    s_probe_t *probe;
    mg_delivery_t *delivery;
    const mg_envelope_t *env; /* borrowed until done */
    struct event *delay;
} s_job_t;

static const char s_effect_script[] = "local n = redis.call('SADD', KEYS[1], ARGV[1])\n"
                                      "if n == 1 then redis.call('INCR', KEYS[2]) end\n"
                                      "redis.call('HINCRBY', KEYS[3], ARGV[1], 1)\n"
                                      "return n\n";

static void s_finish(s_job_t *job, const char *reason) {
    s_probe_t *p = job->probe;
    if (job->delay) event_free(job->delay);
    if (!p->stopping) mg_subscriber_done(p->sub, job->delivery, reason);
    free(job);
}

static void s_on_effect(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    s_job_t *job = privdata;
    if (!reply)
        s_finish(job, "redis unavailable");
    else if (reply->type == REDIS_REPLY_ERROR)
        s_finish(job, reply->str);
    else
        s_finish(job, NULL);
}

static void s_apply(s_job_t *job) {
    s_probe_t *p = job->probe;
    const char *id = job->env->event_id;
    const char *argv[] = {"EVAL", s_effect_script, "3", p->applied_key, p->effects_key, p->deliveries_key, id};
    size_t lens[7];
    for (int i = 0; i < 7; i++)
        lens[i] = strlen(argv[i]);
    if (mg_redis_command_argv(p->redis, s_on_effect, job, 7, argv, lens) != 0) s_finish(job, "redis unavailable");
}

static void s_on_failure_counted(mg_redis_t *redis, redisReply *reply, void *privdata) {
    (void)redis;
    s_job_t *job = privdata;
    if (!reply || reply->type != REDIS_REPLY_INTEGER) {
        s_finish(job, "redis unavailable");
        return;
    }
    if (job->probe->fail_times == 0 || reply->integer <= job->probe->fail_times) {
        char reason[128];
        snprintf(reason, sizeof(reason), "probe: simulated failure of %s (attempt %lld)", job->env->type,
                 reply->integer);
        s_finish(job, reason);
    } else {
        s_apply(job);
    }
}

static int s_should_fail(const s_probe_t *p, const mg_envelope_t *env) {
    if (p->fail_type && env->type && strcmp(env->type, p->fail_type) == 0) return 1;
    return p->fail_every > 0 && env->sequence % (uint64_t)p->fail_every == 0;
}

static void s_process(s_job_t *job) {
    s_probe_t *p = job->probe;
    if (s_should_fail(p, job->env)) {
        const char *argv[] = {"HINCRBY", p->failures_key, job->env->event_id, "1"};
        size_t lens[4];
        for (int i = 0; i < 4; i++)
            lens[i] = strlen(argv[i]);
        if (mg_redis_command_argv(p->redis, s_on_failure_counted, job, 4, argv, lens) != 0)
            s_finish(job, "redis unavailable");
        return;
    }
    s_apply(job);
}

static void s_on_delay(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    s_process(arg);
}

static void s_handle(mg_subscriber_t *sub, const mg_envelope_t *env, mg_delivery_t *delivery, void *arg) {
    (void)sub;
    s_probe_t *p = arg;
    s_job_t *job = mg_calloc(1, sizeof(*job));
    job->probe = p;
    job->delivery = delivery;
    job->env = env;
    if (!env->event_id || !*env->event_id) {
        s_finish(job, "event without an id");
        return;
    }
    if (p->slow_us > 0) {
        job->delay = evtimer_new(p->base, s_on_delay, job);
        struct timeval tv = {p->slow_us / 1000000, p->slow_us % 1000000};
        evtimer_add(job->delay, &tv);
        return;
    }
    s_process(job);
}

static void s_on_stats(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    s_probe_t *p = arg;
    mg_subscriber_stats_t st;
    mg_subscriber_stats(p->sub, &st);
    char v[12][24];
    uint64_t values[12] = {st.delivered, st.from_journal, st.skipped,      st.gaps,
                           st.journal_reads, st.failed,  st.retried,     st.deadlettered,
                           st.redis_losses, st.checkpoints, mg_subscriber_position(p->sub),
                           (uint64_t)mg_subscriber_is_live(p->sub)};
    for (int i = 0; i < 12; i++)
        snprintf(v[i], sizeof(v[i]), "%" PRIu64, values[i]);
    const char *argv[] = {"HSET",          p->stats_key, "delivered", v[0],        "from_journal", v[1],
                          "skipped",       v[2],         "gaps",      v[3],        "journal_reads", v[4],
                          "failed",        v[5],         "retried",   v[6],        "deadlettered", v[7],
                          "redis_losses",  v[8],         "checkpoints", v[9],      "position",     v[10],
                          "live",          v[11]};
    size_t lens[26];
    for (int i = 0; i < 26; i++)
        lens[i] = strlen(argv[i]);
    mg_redis_command_argv(p->redis, NULL, NULL, 26, argv, lens);
}

static void s_on_redis_state(mg_redis_t *redis, int up, void *arg) {
    (void)redis;
    s_probe_t *p = arg;
    if (p->sub) mg_subscriber_redis_state(p->sub, up);
}

static void s_on_flushed(mg_subscriber_t *sub, void *arg) {
    (void)sub;
    s_probe_t *p = arg;
    event_base_loopexit(p->base, NULL);
}

static void s_on_stop_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    s_probe_t *p = arg;
    mg_warn("probe %s: checkpoint not confirmed in time; stopping anyway", p->name);
    event_base_loopexit(p->base, NULL);
}

static void s_on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)sig;
    (void)what;
    s_probe_t *p = arg;
    mg_info("probe %s: stopping at sequence %" PRIu64, p->name, mg_subscriber_position(p->sub));
    struct timeval tv = {2, 0};
    evtimer_add(p->stop_timer, &tv);
    mg_subscriber_flush(p->sub, s_on_flushed, p);
}

static void s_usage(FILE *out) {
    fprintf(out, "Usage: probe_consumer --config FILE --name NAME [options]\n"
                 "  --topics A,B              type prefixes to consume (default: all)\n"
                 "  --fail-type TYPE          fail every event of this type\n"
                 "  --fail-every N            fail events whose sequence is a multiple of N\n"
                 "  --fail-times K            ... only their first K attempts (default: always)\n"
                 "  --slow-us N               wait N microseconds before handling each event\n"
                 "  --max-attempts N, --retry-base-ms N, --checkpoint-every N,\n"
                 "  --checkpoint-interval-ms N, --catchup-batch N   subscriber options\n");
}

int main(int argc, char **argv) {
    const char *config_path = NULL, *name = NULL, *topics_arg = NULL;
    s_probe_t p = {0};
    mg_subscriber_options_t opts = {0};
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},        {"name", required_argument, NULL, 'n'},
        {"topics", required_argument, NULL, 't'},        {"fail-type", required_argument, NULL, 'f'},
        {"fail-every", required_argument, NULL, 'e'},    {"fail-times", required_argument, NULL, 'k'},
        {"slow-us", required_argument, NULL, 's'},       {"max-attempts", required_argument, NULL, 'm'},
        {"retry-base-ms", required_argument, NULL, 'r'}, {"checkpoint-every", required_argument, NULL, 'p'},
        {"checkpoint-interval-ms", required_argument, NULL, 'i'},
        {"catchup-batch", required_argument, NULL, 'b'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'n': name = optarg; break;
        case 't': topics_arg = optarg; break;
        case 'f': p.fail_type = optarg; break;
        case 'e': p.fail_every = atol(optarg); break;
        case 'k': p.fail_times = atol(optarg); break;
        case 's': p.slow_us = atol(optarg); break;
        case 'm': opts.max_attempts = atoi(optarg); break;
        case 'r': opts.retry_base_ms = atoi(optarg); break;
        case 'p': opts.checkpoint_every = atoi(optarg); break;
        case 'i': opts.checkpoint_interval_ms = atoi(optarg); break;
        case 'b': opts.catchup_batch = atoi(optarg); break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (!name) {
        fprintf(stderr, "Error: --name is required\n");
        return 2;
    }
    char err[512];
    mg_config_t *cfg = mg_config_load(config_path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    mg_log_level_t level = MG_LOG_INFO;
    mg_log_level_parse(mg_config_str(cfg, "log", "level"), &level);
    mg_log_init("probe", level);
    signal(SIGPIPE, SIG_IGN);

    char *topics_copy = NULL;
    const char *topics[17] = {NULL};
    if (topics_arg && *topics_arg) {
        topics_copy = mg_strdup(topics_arg);
        size_t n = 0;
        for (char *save = NULL, *t = strtok_r(topics_copy, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save))
            topics[n++] = t;
        opts.topics = topics;
    }
    p.name = name;
    p.applied_key = mg_asprintf("mg:probe:%s:applied", name);
    p.effects_key = mg_asprintf("mg:probe:%s:effects", name);
    p.deliveries_key = mg_asprintf("mg:probe:%s:deliveries", name);
    p.failures_key = mg_asprintf("mg:probe:%s:failures", name);
    p.stats_key = mg_asprintf("mg:probe:%s:stats", name);

    int rc = 1;
    void *zctx = zmq_ctx_new();
    struct event *sigterm = NULL, *sigint = NULL;
    mg_redis_options_t ropts;
    p.base = event_base_new();
    if (mg_redis_options_from_config(cfg, &ropts, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        goto out;
    }
    p.redis = mg_redis_new(p.base, &ropts, s_on_redis_state, &p);
    mg_redis_options_clear(&ropts);
    opts.name = name;
    opts.fanout = mg_config_str(cfg, "broker", "fanout");
    opts.deadletter_maxlen = mg_config_int(cfg, "broker", "deadletter_maxlen");
    p.sub = mg_subscriber_new(p.base, zctx, p.redis, &opts, s_handle, &p, err, sizeof(err));
    if (!p.sub) {
        fprintf(stderr, "Error: %s\n", err);
        goto out;
    }
    p.stats_timer = event_new(p.base, -1, EV_PERSIST, s_on_stats, &p);
    p.stop_timer = evtimer_new(p.base, s_on_stop_timeout, &p);
    struct timeval tv = {0, 100000};
    event_add(p.stats_timer, &tv);
    sigterm = evsignal_new(p.base, SIGTERM, s_on_signal, &p);
    sigint = evsignal_new(p.base, SIGINT, s_on_signal, &p);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    mg_info("probe %s: started (fan-out %s)", name, opts.fanout);
    event_base_dispatch(p.base);
    mg_subscriber_stats_t st;
    mg_subscriber_stats(p.sub, &st);
    mg_info("probe %s: stopped at sequence %" PRIu64 "; delivered %" PRIu64 " (%" PRIu64
            " from the journal), gaps %" PRIu64 ", failed %" PRIu64 ", dead-lettered %" PRIu64,
            name, mg_subscriber_position(p.sub), st.delivered, st.from_journal, st.gaps, st.failed,
            st.deadlettered);
    rc = 0;
out:
    /* Handlers still waiting for Redis must not call back into a
     * subscriber that is gone. */
    p.stopping = 1;
    mg_subscriber_destroy(&p.sub);
    mg_redis_destroy(&p.redis);
    if (p.stats_timer) event_free(p.stats_timer);
    if (p.stop_timer) event_free(p.stop_timer);
    if (sigterm) event_free(sigterm);
    if (sigint) event_free(sigint);
    if (p.base) event_base_free(p.base);
    zmq_ctx_term(zctx);
    free(topics_copy);
    free(p.applied_key);
    free(p.effects_key);
    free(p.deliveries_key);
    free(p.failures_key);
    free(p.stats_key);
    mg_config_destroy(&cfg);
    return rc;
}
