/* health.c -- GET /healthz (the process answers), GET /readyz (Redis and the
 * broker answer), GET /metrics (Prometheus text: the gateway's own metrics
 * and the whole system's, read from Redis).
 *
 * The system's figures come from one read-only script call: every
 * mg:metrics:<daemon> hash (each daemon publishes its registry there every
 * 10 s), the journal sequence (its counter, or the stream's last id when the
 * counter is missing), each registered consumer's checkpoint and parked
 * events, and the notifier's queue and failed counts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "gateway.h"
#include "maillage/journal.h"
#include "maillage/mem.h"
#include "maillage/metrics.h"
#include "maillage/subscriber.h"

/* The daemons are those listed in MG_METRICS_DAEMONS_KEY (never a SCAN:
 * the keyspace holds a dedupe key per recent event, and a script blocks
 * Redis, the journal included, while it runs). */
/* clang-format off */
static const char s_metrics_script[] =
    MG_JOURNAL_STREAM_TOP_LUA
    "local names = redis.call('SMEMBERS', '" MG_METRICS_DAEMONS_KEY "')\n"
    "table.sort(names)\n"
    "local daemons = {}\n"
    "for _, name in ipairs(names) do\n"
    "  local k = '" MG_METRICS_KEY_PREFIX "' .. name\n"
    "  if redis.call('TYPE', k)['ok'] == 'hash' then\n"
    "    daemons[#daemons + 1] = k\n"
    "    daemons[#daemons + 1] = redis.call('HGETALL', k)\n"
    "  end\n"
    "end\n"
    "local consumers = {}\n"
    "local names = redis.call('SMEMBERS', '" MG_CONSUMERS_KEY "')\n"
    "table.sort(names)\n"
    "for _, name in ipairs(names) do\n"
    "  consumers[#consumers + 1] = name\n"
    "  consumers[#consumers + 1] = redis.call('HGET', '" MG_CONSUMER_KEY_PREFIX "' .. name, 'seq') or '0'\n"
    "  consumers[#consumers + 1] = redis.call('ZCARD', '" MG_RETRY_KEY_PREFIX "' .. name)\n"
    "end\n"
    "local seq = redis.call('GET', '" MG_JOURNAL_SEQ_KEY "') or string.format('%d', stream_top())\n"
    "return {daemons, seq, consumers,\n"
    "        redis.call('ZCARD', 'mg:notifier:queue'), redis.call('ZCARD', 'mg:notifier:failed')}\n";
/* clang-format on */

static void s_get_healthz(gw_request_t *r) {
    static const char ok[] = "{\"status\":\"ok\"}";
    gw_reply_bytes(r, 200, "application/json", ok, sizeof ok - 1);
}

static void s_get_readyz(gw_request_t *r) {
    int redis = mg_redis_is_up(gw_redis(r->gw)), broker = gw_broker_ok(r->gw);
    json_t *body = json_object();
    json_object_set_new(body, "redis", json_boolean(redis));
    json_object_set_new(body, "broker", json_boolean(broker));
    if (!(redis && broker)) gw_header(r, "Retry-After", "1");
    gw_reply_json(r, redis && broker ? 200 : 503, body);
}

/* A metric name or label value is safe to copy as is. */
static int s_safe(const char *s, int label) {
    if (!*s) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                 (label && (c == '-' || c == '.' || c == ':'));
        if (!ok) return 0;
    }
    return 1;
}

/* One series of another daemon, with daemon="..." added to its labels. */
typedef struct {
    char *family;
    char *line;
} s_series_t;

static int s_series_cmp(const void *a, const void *b) {
    const s_series_t *x = a, *y = b;
    int c = strcmp(x->family, y->family);
    return c ? c : strcmp(x->line, y->line);
}

static void s_render_daemons(struct evbuffer *out, const redisReply *daemons) {
    s_series_t *series = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i + 1 < daemons->elements; i += 2) {
        const redisReply *key = daemons->element[i], *hash = daemons->element[i + 1];
        if (key->type != REDIS_REPLY_STRING || hash->type != REDIS_REPLY_ARRAY) continue;
        const char *daemon = key->str + strlen(MG_METRICS_KEY_PREFIX);
        /* Our own figures are rendered live above. */
        if (strcmp(daemon, "gateway") == 0 || !s_safe(daemon, 1)) continue;
        for (size_t k = 0; k + 1 < hash->elements; k += 2) {
            const redisReply *name = hash->element[k], *value = hash->element[k + 1];
            if (name->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) continue;
            const char *brace = strchr(name->str, '{');
            size_t flen = brace ? (size_t)(brace - name->str) : name->len;
            char family[128];
            if (flen == 0 || flen >= sizeof family) continue;
            memcpy(family, name->str, flen);
            family[flen] = '\0';
            if (!s_safe(family, 0) || strspn(value->str, "0123456789") != value->len) continue;
            /* Labels written by our own registry: copy them after ours. */
            const char *labels = brace ? brace + 1 : "}";
            if (brace && name->str[name->len - 1] != '}') continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 64;
                series = mg_realloc(series, cap * sizeof *series);
            }
            series[n].family = mg_strdup(family);
            series[n].line = mg_asprintf("%s{daemon=\"%s\"%s%s %s\n", family, daemon, brace && labels[0] != '}' ? "," : "",
                                         labels, value->str);
            n++;
        }
    }
    if (n) qsort(series, n, sizeof *series, s_series_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(series[i].family, series[i - 1].family) != 0) {
            size_t fl = strlen(series[i].family);
            int counter = fl > 6 && strcmp(series[i].family + fl - 6, "_total") == 0;
            evbuffer_add_printf(out, "# TYPE %s %s\n", series[i].family, counter ? "counter" : "gauge");
        }
        evbuffer_add(out, series[i].line, strlen(series[i].line));
    }
    for (size_t i = 0; i < n; i++) {
        free(series[i].family);
        free(series[i].line);
    }
    free(series);
}

static void s_on_metrics(mg_redis_t *redis, redisReply *reply, void *privdata) {
    gw_request_t *r = privdata;
    (void)redis;
    struct evbuffer *out = evbuffer_new();
    char *own = mg_metrics_render_prometheus();
    evbuffer_add(out, own, strlen(own));
    free(own);
    int system_ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 5;
    evbuffer_add_printf(out, "# HELP maillage_gateway_system_metrics_up 1 when the system's figures were read from Redis.\n"
                             "# TYPE maillage_gateway_system_metrics_up gauge\nmaillage_gateway_system_metrics_up %d\n",
                        system_ok);
    if (system_ok) {
        const redisReply *daemons = reply->element[0], *seq = reply->element[1], *consumers = reply->element[2];
        if (daemons->type == REDIS_REPLY_ARRAY) s_render_daemons(out, daemons);
        unsigned long long last = seq->type == REDIS_REPLY_STRING ? strtoull(seq->str, NULL, 10) : 0;
        evbuffer_add_printf(out,
                            "# HELP maillage_journal_sequence Last journal sequence (mg:journal:seq).\n"
                            "# TYPE maillage_journal_sequence gauge\nmaillage_journal_sequence %llu\n",
                            last);
        if (consumers->type == REDIS_REPLY_ARRAY && consumers->elements >= 3) {
            evbuffer_add_printf(out, "# HELP maillage_consumer_lag Journal events a registered consumer has not "
                                     "completed yet.\n# TYPE maillage_consumer_lag gauge\n");
            for (size_t i = 0; i + 2 < consumers->elements; i += 3) {
                const redisReply *name = consumers->element[i], *cs = consumers->element[i + 1];
                if (name->type != REDIS_REPLY_STRING || !s_safe(name->str, 1)) continue;
                unsigned long long at = cs->type == REDIS_REPLY_STRING ? strtoull(cs->str, NULL, 10) : 0;
                evbuffer_add_printf(out, "maillage_consumer_lag{consumer=\"%s\"} %llu\n", name->str,
                                    at < last ? last - at : 0);
            }
            evbuffer_add_printf(out, "# HELP maillage_consumer_checkpoint Last journal sequence a consumer "
                                     "completed.\n# TYPE maillage_consumer_checkpoint gauge\n");
            for (size_t i = 0; i + 2 < consumers->elements; i += 3) {
                const redisReply *name = consumers->element[i], *cs = consumers->element[i + 1];
                if (name->type != REDIS_REPLY_STRING || !s_safe(name->str, 1)) continue;
                evbuffer_add_printf(out, "maillage_consumer_checkpoint{consumer=\"%s\"} %llu\n", name->str,
                                    cs->type == REDIS_REPLY_STRING ? strtoull(cs->str, NULL, 10) : 0ULL);
            }
            evbuffer_add_printf(out, "# HELP maillage_consumer_parked Events a consumer parked for retry.\n"
                                     "# TYPE maillage_consumer_parked gauge\n");
            for (size_t i = 0; i + 2 < consumers->elements; i += 3) {
                const redisReply *name = consumers->element[i], *parked = consumers->element[i + 2];
                if (name->type != REDIS_REPLY_STRING || !s_safe(name->str, 1)) continue;
                evbuffer_add_printf(out, "maillage_consumer_parked{consumer=\"%s\"} %lld\n", name->str,
                                    parked->type == REDIS_REPLY_INTEGER ? parked->integer : 0LL);
            }
        }
        const redisReply *queue = reply->element[3], *failed = reply->element[4];
        evbuffer_add_printf(out,
                            "# HELP maillage_notifier_queue_length E-mails and webhooks waiting to be sent "
                            "(mg:notifier:queue).\n# TYPE maillage_notifier_queue_length gauge\n"
                            "maillage_notifier_queue_length %lld\n"
                            "# HELP maillage_notifier_failed_notifications Notifications given up on "
                            "(mg:notifier:failed).\n# TYPE maillage_notifier_failed_notifications gauge\n"
                            "maillage_notifier_failed_notifications %lld\n",
                            queue->type == REDIS_REPLY_INTEGER ? queue->integer : 0LL,
                            failed->type == REDIS_REPLY_INTEGER ? failed->integer : 0LL);
    }
    size_t len = evbuffer_get_length(out);
    const void *data = evbuffer_pullup(out, -1);
    gw_reply_bytes(r, 200, "text/plain; version=0.0.4; charset=utf-8", data ? data : "", len);
    evbuffer_free(out);
}

static void s_get_metrics(gw_request_t *r) {
    const char *argv[] = {"EVAL", s_metrics_script, "1", MG_JOURNAL_KEY};
    size_t lens[] = {4, sizeof s_metrics_script - 1, 1, strlen(MG_JOURNAL_KEY)};
    /* Without Redis, our own figures still say what is wrong. */
    if (mg_redis_command_argv(gw_redis(r->gw), s_on_metrics, r, 4, argv, lens) != 0)
        s_on_metrics(NULL, NULL, r);
}

void gw_health_register(mg_gateway_t *gw) {
    gw_route(gw, EVHTTP_REQ_GET, "/healthz", GW_NOBODY, NULL, s_get_healthz);
    gw_route(gw, EVHTTP_REQ_GET, "/readyz", GW_NOBODY, NULL, s_get_readyz);
    gw_route(gw, EVHTTP_REQ_GET, "/metrics", GW_NOBODY, NULL, s_get_metrics);
}
