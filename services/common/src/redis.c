/* redis.c -- an asynchronous hiredis (0.14) connection that stays connected.
 *
 * States: DOWN (no context; a reconnect timer is pending), CONNECTING (a
 * context exists, TCP/unix connect or AUTH/SELECT handshake in progress) and
 * UP (handshake done: commands are accepted). A single timer serves both as
 * the reconnect delay (while DOWN) and as the connect timeout (while
 * CONNECTING), since hiredis 0.14 has no timeout of its own for asynchronous
 * connections.
 *
 * hiredis 0.14 has no command timeout either: a Redis that accepts the
 * connection but stops answering (SIGSTOP, a stuck disk with appendfsync
 * always, a black-holed network) would leave every reply pending forever and
 * the callers waiting. So a watchdog drops a connection that has had commands
 * pending without any reply for S_REPLY_TIMEOUT_FACTOR x connect_timeout_ms
 * (at least S_REPLY_TIMEOUT_MIN_MS): pending callbacks then get their NULL
 * reply and the reconnection starts. Blocking commands (BLPOP, XREAD BLOCK)
 * longer than that do not belong on this connection.
 *
 * hiredis frees the context itself after calling the disconnect callback (or
 * the connect callback with an error), so those callbacks only forget the
 * pointer and arm the timer; reconnecting from inside them would hand hiredis
 * a new context while it is still tearing down the old one. */
#include "maillage/redis.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/adapters/libevent.h>

#include "maillage/clock.h"
#include "maillage/journal.h"
#include "maillage/log.h"
#include "maillage/metrics.h"
#include "maillage/mem.h"

#define S_REPLY_TIMEOUT_FACTOR 5
#define S_REPLY_TIMEOUT_MIN_MS 2000

typedef enum { S_DOWN, S_CONNECTING, S_UP } s_state_t;

struct mg_redis {
    struct event_base *base;
    mg_redis_options_t opts;
    mg_redis_state_fn on_state;
    void *arg;
    redisAsyncContext *ac;
    struct event *timer;
    struct event *watchdog;
    size_t pending;           /* commands sent, reply not yet received */
    int64_t last_progress_us; /* last reply, or when pending became > 0 */
    int reply_timeout_ms;
    s_state_t state;
    int attempt;              /* failed attempts since the last UP, for the backoff */
    int destroying;           /* no reconnect when the context goes away */
    int handshake_failed;     /* the current context is being dropped */
    int reported_down;        /* "unreachable" already logged for this outage */
    const char *close_reason; /* why we are dropping the context ourselves */
    char last_refusal[256];   /* last handshake error logged, to log it once */
    char endpoint[PATH_MAX + 16];
    unsigned int seed;
};

/* One queued command: hiredis passes it back to s_on_reply. */
typedef struct {
    mg_redis_t *redis;
    mg_redis_reply_fn cb;
    void *privdata;
} s_command_t;

/* ---- options ------------------------------------------------------------ */

/* Parse a decimal integer in [lo, hi] spanning exactly [s, end). */
static int s_parse_int(const char *s, const char *end, long lo, long hi, int *out) {
    if (s == end || end - s > 10) return -1;
    long v = 0;
    for (const char *p = s; p < end; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    if (v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

/* redis://HOST[:PORT][/DB] or unix:///path[?db=N]. Credentials never go in the
 * URL (they would end up in process listings and logs): user and
 * password_file are separate keys. */
static int s_parse_url(const char *url, mg_redis_options_t *opts, char *err, size_t errlen) {
    if (strncmp(url, "unix://", 7) == 0) {
        const char *path = url + 7;
        const char *query = strchr(path, '?');
        size_t plen = query ? (size_t)(query - path) : strlen(path);
        if (plen == 0 || path[0] != '/')
            return mg_fail(err, errlen,
                           "[redis] url: unix:// needs an absolute path (unix:///run/redis.sock)");
        if (plen >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return mg_fail(err, errlen, "[redis] url: unix socket path too long");
        opts->socket_path = mg_strndup(path, plen);
        if (query) {
            if (strncmp(query, "?db=", 4) != 0 ||
                s_parse_int(query + 4, query + strlen(query), 0, 1000000, &opts->db) != 0)
                return mg_fail(err, errlen, "[redis] url: expected ?db=N after the socket path");
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return mg_fail(err, errlen, "[redis] url: expected redis://HOST:PORT/DB or unix:///PATH, got \"%s\"",
                       url);
    const char *host = url + 8;
    if (strchr(host, '@'))
        return mg_fail(err, errlen,
                       "[redis] url: no credentials in the URL; use [redis] user and password_file");
    const char *host_end, *rest;
    if (*host == '[') { /* IPv6 literal */
        host_end = strchr(host, ']');
        if (!host_end) return mg_fail(err, errlen, "[redis] url: unterminated IPv6 address");
        rest = host_end + 1;
        host++;
    } else {
        host_end = host + strcspn(host, ":/");
        rest = host_end;
    }
    if (host_end == host) return mg_fail(err, errlen, "[redis] url: missing host");
    opts->host = mg_strndup(host, (size_t)(host_end - host));
    opts->port = 6379;
    if (*rest == ':') {
        const char *port = rest + 1;
        const char *port_end = port + strcspn(port, "/");
        if (s_parse_int(port, port_end, 1, 65535, &opts->port) != 0)
            return mg_fail(err, errlen, "[redis] url: invalid port in \"%s\"", url);
        rest = port_end;
    }
    if (*rest == '/' && rest[1] != '\0') {
        if (s_parse_int(rest + 1, rest + strlen(rest), 0, 1000000, &opts->db) != 0)
            return mg_fail(err, errlen, "[redis] url: invalid database number");
    } else if (*rest != '\0' && strcmp(rest, "/") != 0) {
        return mg_fail(err, errlen, "[redis] url: unexpected \"%s\"", rest);
    }
    return 0;
}

int mg_redis_options_from_config(const mg_config_t *cfg, mg_redis_options_t *opts, char *err, size_t errlen) {
    memset(opts, 0, sizeof(*opts));
    char where[512], why[512];
    if (s_parse_url(mg_config_str(cfg, "redis", "url"), opts, why, sizeof why) != 0) {
        mg_fail(err, errlen, "%s: %s", mg_config_where(cfg, "redis", "url", where, sizeof where), why);
        goto err;
    }
    const char *user = mg_config_str(cfg, "redis", "user");
    if (user && *user) opts->user = mg_strdup(user);
    const char *password_file = mg_config_str(cfg, "redis", "password_file");
    if (password_file && *password_file &&
        !(opts->password = mg_config_read_secret("[redis] password_file", password_file, err, errlen)))
        goto err;
    if (opts->user && !opts->password) {
        mg_fail(err, errlen, "%s: [redis] user is set but password_file is empty",
                mg_config_where(cfg, "redis", "user", where, sizeof where));
        goto err;
    }
    /* Whoever reaches an open Redis reads the contacts and rewrites the
     * journal: beyond loopback, a password (or an ACL user) is required,
     * as CURVE is for the broker's endpoints. */
    if (opts->host && !opts->password && !mg_config_host_is_loopback(opts->host)) {
        mg_fail(err, errlen,
                "%s: [redis] url = %s: refusing a Redis beyond loopback without a password: set [redis] "
                "password_file (and user for an ACL user; deploy/redis/redis.conf)",
                mg_config_where(cfg, "redis", "url", where, sizeof where),
                mg_config_str(cfg, "redis", "url"));
        goto err;
    }
    opts->connect_timeout_ms = (int)mg_config_int(cfg, "redis", "connect_timeout_ms");
    opts->reconnect_min_ms = (int)mg_config_int(cfg, "redis", "reconnect_min_ms");
    opts->reconnect_max_ms = (int)mg_config_int(cfg, "redis", "reconnect_max_ms");
    if (opts->reconnect_max_ms < opts->reconnect_min_ms) opts->reconnect_max_ms = opts->reconnect_min_ms;
    return 0;
err:
    mg_redis_options_clear(opts);
    return -1;
}

void mg_redis_options_clear(mg_redis_options_t *opts) {
    if (!opts) return;
    free(opts->host);
    free(opts->socket_path);
    free(opts->user);
    if (opts->password) {
        /* Do not leave the secret lying in freed memory. */
        memset(opts->password, 0, strlen(opts->password));
        free(opts->password);
    }
    memset(opts, 0, sizeof(*opts));
}

static void s_options_copy(mg_redis_options_t *dst, const mg_redis_options_t *src) {
    *dst = *src;
    dst->host = src->host ? mg_strdup(src->host) : NULL;
    dst->socket_path = src->socket_path ? mg_strdup(src->socket_path) : NULL;
    dst->user = src->user ? mg_strdup(src->user) : NULL;
    dst->password = src->password ? mg_strdup(src->password) : NULL;
}

/* ---- the asynchronous connection ------------------------------------------ */

static void s_connect(mg_redis_t *redis);

static void s_arm_timer(mg_redis_t *redis, int delay_ms) {
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(redis->timer, &tv);
}

/* Exponential backoff with jitter, so that a fleet of daemons losing the
 * same Redis does not reconnect in lockstep. */
static int s_backoff_ms(mg_redis_t *redis) {
    long delay = redis->opts.reconnect_min_ms;
    for (int i = 0; i < redis->attempt && delay < redis->opts.reconnect_max_ms; i++)
        delay *= 2;
    if (delay > redis->opts.reconnect_max_ms) delay = redis->opts.reconnect_max_ms;
    if (redis->attempt < 30) redis->attempt++;
    long half = delay / 2;
    return (int)(half + (half > 0 ? rand_r(&redis->seed) % (half + 1) : 0));
}

/* The context is gone (hiredis frees it, or already did): go DOWN and plan
 * the next attempt. */
static void s_lost(mg_redis_t *redis, const char *why) {
    int was_up = redis->state == S_UP;
    redis->ac = NULL;
    redis->state = S_DOWN;
    evtimer_del(redis->timer);
    if (redis->destroying) {
        mg_debug("redis: connection to %s closed", redis->endpoint);
    } else if (was_up) {
        mg_warn("redis: connection to %s lost (%s)", redis->endpoint, why);
    } else if (!redis->reported_down) {
        mg_warn("redis: cannot connect to %s (%s); retrying", redis->endpoint, why);
    } else {
        mg_debug("redis: connection attempt to %s failed (%s)", redis->endpoint, why);
    }
    redis->reported_down = 1;
    if (!redis->destroying) s_arm_timer(redis, s_backoff_ms(redis));
    if (was_up && redis->on_state) redis->on_state(redis, 0, redis->arg);
}

static void s_on_disconnect(const redisAsyncContext *ac, int status) {
    mg_redis_t *redis = ac->data;
    (void)status;
    if (!redis || redis->ac != ac) return;
    const char *why = redis->close_reason     ? redis->close_reason
                      : ac->err && ac->errstr ? ac->errstr
                                              : "disconnected";
    redis->close_reason = NULL;
    s_lost(redis, why);
}

/* Drop the current context from outside hiredis' callbacks (timer). */
static void s_close(mg_redis_t *redis, const char *why) {
    redisAsyncContext *ac = redis->ac;
    if (!ac) return;
    redis->close_reason = why;
    redisAsyncFree(ac);
    redis->close_reason = NULL;
    /* A context that never connected is freed without its disconnect
     * callback: account for the loss here. */
    if (redis->ac == ac) s_lost(redis, why);
}

static void s_on_handshake(redisAsyncContext *ac, void *reply_, void *privdata) {
    redisReply *reply = reply_;
    mg_redis_t *redis = ac->data;
    int last = privdata != NULL;
    if (!reply || !redis || redis->ac != ac) return; /* the loss is handled elsewhere */
    if (reply->type == REDIS_REPLY_ERROR) {
        /* A wrong password stays wrong: say it once, not at every retry. */
        if (!redis->handshake_failed &&
            strncmp(redis->last_refusal, reply->str, sizeof(redis->last_refusal) - 1)) {
            mg_error("redis: %s refused the connection set-up: %s", redis->endpoint, reply->str);
            snprintf(redis->last_refusal, sizeof(redis->last_refusal), "%s", reply->str);
        }
        redis->handshake_failed = 1;
        redisAsyncDisconnect(ac);
        return;
    }
    if (!last || redis->handshake_failed) return;
    redis->state = S_UP;
    redis->attempt = 0;
    redis->reported_down = 0;
    redis->last_refusal[0] = '\0';
    evtimer_del(redis->timer);
    mg_info("redis: connected to %s (db %d)", redis->endpoint, redis->opts.db);
    if (redis->on_state) redis->on_state(redis, 1, redis->arg);
}

static void s_on_connect(const redisAsyncContext *cac, int status) {
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    mg_redis_t *redis = ac->data;
    if (!redis || redis->ac != ac) return;
    if (status != REDIS_OK) {
        /* hiredis frees the context right after this callback. */
        s_lost(redis, ac->errstr ? ac->errstr : "connect failed");
        return;
    }
    /* Pipeline AUTH, SELECT and a PING; the connection is UP when the last
     * reply arrives and none of them failed. */
    const mg_redis_options_t *o = &redis->opts;
    if (o->password) {
        if (o->user)
            redisAsyncCommand(ac, s_on_handshake, NULL, "AUTH %s %s", o->user, o->password);
        else
            redisAsyncCommand(ac, s_on_handshake, NULL, "AUTH %s", o->password);
    }
    if (o->db != 0) redisAsyncCommand(ac, s_on_handshake, NULL, "SELECT %d", o->db);
    redisAsyncCommand(ac, s_on_handshake, redis, "PING");
}

/* The timer: reconnect when DOWN, give up the attempt when CONNECTING. */
static void s_on_timer(evutil_socket_t fd, short what, void *arg) {
    mg_redis_t *redis = arg;
    (void)fd;
    (void)what;
    if (redis->state == S_DOWN) {
        s_connect(redis);
    } else if (redis->state == S_CONNECTING) {
        s_close(redis, "connection timed out");
    }
}

/* Drop a connection that stopped answering (see the top of the file). */
static void s_on_watchdog(evutil_socket_t fd, short what, void *arg) {
    mg_redis_t *redis = arg;
    (void)fd;
    (void)what;
    if (redis->state != S_UP || redis->pending == 0) return;
    int64_t silent_ms = (mg_clock_monotonic_us() - redis->last_progress_us) / 1000;
    if (silent_ms < redis->reply_timeout_ms) return;
    mg_warn("redis: %s has not answered %zu command(s) for %" PRId64 " ms; dropping the connection",
            redis->endpoint, redis->pending, silent_ms);
    s_close(redis, "no reply");
}

static void s_connect(mg_redis_t *redis) {
    redisAsyncContext *ac = redis->opts.socket_path ? redisAsyncConnectUnix(redis->opts.socket_path)
                                                    : redisAsyncConnect(redis->opts.host, redis->opts.port);
    if (!ac) {
        mg_error("redis: cannot allocate a connection context");
        s_arm_timer(redis, s_backoff_ms(redis));
        return;
    }
    if (ac->err) {
        char why[128];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        redis->ac = NULL;
        s_lost(redis, why);
        return;
    }
    ac->data = redis;
    redis->ac = ac;
    redis->pending = 0;
    redis->state = S_CONNECTING;
    redis->handshake_failed = 0;
    if (!redis->opts.socket_path) redisEnableKeepAlive(&ac->c);
    redisLibeventAttach(ac, redis->base);
    redisAsyncSetConnectCallback(ac, s_on_connect);
    redisAsyncSetDisconnectCallback(ac, s_on_disconnect);
    s_arm_timer(redis, redis->opts.connect_timeout_ms);
}

mg_redis_t *mg_redis_new(struct event_base *base, const mg_redis_options_t *opts, mg_redis_state_fn on_state,
                         void *arg) {
    mg_redis_t *redis = mg_calloc(1, sizeof(*redis));
    redis->base = base;
    s_options_copy(&redis->opts, opts);
    if (redis->opts.connect_timeout_ms <= 0) redis->opts.connect_timeout_ms = 2000;
    if (redis->opts.reconnect_min_ms <= 0) redis->opts.reconnect_min_ms = 100;
    if (redis->opts.reconnect_max_ms < redis->opts.reconnect_min_ms)
        redis->opts.reconnect_max_ms = redis->opts.reconnect_min_ms;
    redis->on_state = on_state;
    redis->arg = arg;
    redis->state = S_DOWN;
    redis->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)redis;
    if (opts->socket_path)
        snprintf(redis->endpoint, sizeof(redis->endpoint), "unix:%s", opts->socket_path);
    else
        snprintf(redis->endpoint, sizeof(redis->endpoint), "%s:%d", opts->host, opts->port);
    redis->reply_timeout_ms = redis->opts.connect_timeout_ms * S_REPLY_TIMEOUT_FACTOR;
    if (redis->reply_timeout_ms < S_REPLY_TIMEOUT_MIN_MS) redis->reply_timeout_ms = S_REPLY_TIMEOUT_MIN_MS;
    redis->timer = evtimer_new(base, s_on_timer, redis);
    redis->watchdog = event_new(base, -1, EV_PERSIST, s_on_watchdog, redis);
    int tick_ms = redis->reply_timeout_ms / 4;
    struct timeval tick = {tick_ms / 1000, (tick_ms % 1000) * 1000};
    if (!redis->timer || !redis->watchdog || event_add(redis->watchdog, &tick) != 0) {
        if (redis->timer) event_free(redis->timer);
        if (redis->watchdog) event_free(redis->watchdog);
        mg_redis_options_clear(&redis->opts);
        free(redis);
        return NULL;
    }
    /* First attempt from the loop, so callbacks never run inside new(). */
    s_arm_timer(redis, 0);
    return redis;
}

void mg_redis_destroy(mg_redis_t **redis_p) {
    if (!redis_p || !*redis_p) return;
    mg_redis_t *redis = *redis_p;
    redis->destroying = 1;
    redis->on_state = NULL;
    if (redis->ac) {
        redisAsyncContext *ac = redis->ac;
        /* Pending callbacks run now with a NULL reply. */
        redisAsyncFree(ac);
        redis->ac = NULL;
    }
    event_free(redis->timer);
    event_free(redis->watchdog);
    mg_redis_options_clear(&redis->opts);
    free(redis);
    *redis_p = NULL;
}

int mg_redis_is_up(const mg_redis_t *redis) {
    /* While hiredis tears a broken connection down it runs the pending
     * callbacks before telling us: the flags say it already. */
    return redis && redis->state == S_UP && redis->ac &&
           !(redis->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING));
}

static void s_on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
    (void)ac;
    s_command_t *cmd = privdata;
    if (cmd->redis->pending > 0) cmd->redis->pending--;
    cmd->redis->last_progress_us = mg_clock_monotonic_us();
    if (cmd->cb) cmd->cb(cmd->redis, reply, cmd->privdata);
    free(cmd);
}

static s_command_t *s_command_new(mg_redis_t *redis, mg_redis_reply_fn cb, void *privdata) {
    s_command_t *cmd = mg_malloc(sizeof(*cmd));
    *cmd = (s_command_t){redis, cb, privdata};
    if (redis->pending++ == 0) redis->last_progress_us = mg_clock_monotonic_us();
    return cmd;
}

static void s_command_cancel(s_command_t *cmd) {
    if (cmd->redis->pending > 0) cmd->redis->pending--;
    free(cmd);
}

int mg_redis_command(mg_redis_t *redis, mg_redis_reply_fn cb, void *privdata, const char *fmt, ...) {
    if (!mg_redis_is_up(redis)) return -1;
    s_command_t *cmd = s_command_new(redis, cb, privdata);
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(redis->ac, s_on_reply, cmd, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        s_command_cancel(cmd);
        return -1;
    }
    return 0;
}

int mg_redis_command_argv(mg_redis_t *redis, mg_redis_reply_fn cb, void *privdata, int argc,
                          const char **argv, const size_t *argvlen) {
    if (!mg_redis_is_up(redis)) return -1;
    s_command_t *cmd = s_command_new(redis, cb, privdata);
    if (redisAsyncCommandArgv(redis->ac, s_on_reply, cmd, argc, argv, argvlen) != REDIS_OK) {
        s_command_cancel(cmd);
        return -1;
    }
    return 0;
}

/* ---- the synchronous connection ------------------------------------------- */

/* 1 if Redis' error is a passing state (loading its data set, busy with a
 * script, a replica without its master) rather than a refusal of what we
 * asked: credentials or database. */
static int s_is_transient(const char *error) {
    static const char *const prefixes[] = {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(error, prefixes[i], strlen(prefixes[i])) == 0) return 1;
    return 0;
}

/* AUTH, SELECT and a PING (which answers NOAUTH when Redis requires a
 * password and none was configured) on a blocking connection to `where`.
 * Returns 0, or -1 with a reason in `err`; *refused is set to 1 when Redis
 * answered with a refusal of the credentials or the database (a
 * configuration error that retrying cannot fix), 0 otherwise. */
static int s_sync_handshake(redisContext *c, const mg_redis_options_t *opts, const char *where, int *refused,
                            char *err, size_t errlen) {
    *refused = 0;
    for (int step = 0; step < 3; step++) {
        redisReply *reply = NULL;
        if (step == 0 && opts->password)
            reply = opts->user ? redisCommand(c, "AUTH %s %s", opts->user, opts->password)
                               : redisCommand(c, "AUTH %s", opts->password);
        else if (step == 1 && opts->db != 0)
            reply = redisCommand(c, "SELECT %d", opts->db);
        else if (step == 2)
            reply = redisCommand(c, "PING");
        else
            continue;
        if (!reply) return mg_fail(err, errlen, "redis: %s: %s", where, c->errstr);
        if (reply->type == REDIS_REPLY_ERROR) {
            *refused = !s_is_transient(reply->str);
            /* "refused:" in each message: callers and operators grep for it. */
            if (step == 0)
                mg_fail(err, errlen, "redis: %s: AUTH refused: %s (check [redis] user and password_file)",
                        where, reply->str);
            else if (step == 1)
                mg_fail(err, errlen, "redis: %s: SELECT %d refused: %s (check the database of [redis] url)",
                        where, opts->db, reply->str);
            else if (strncmp(reply->str, "NOAUTH", 6) == 0)
                mg_fail(err, errlen,
                        "redis: %s: PING refused: %s (Redis requires a password: set [redis] "
                        "password_file, and user for an ACL user)",
                        where, reply->str);
            else
                mg_fail(err, errlen, "redis: %s: PING refused: %s", where, reply->str);
            freeReplyObject(reply);
            return -1;
        }
        freeReplyObject(reply);
    }
    return 0;
}

static void s_endpoint_name(const mg_redis_options_t *opts, char *out, size_t outlen) {
    if (opts->socket_path)
        snprintf(out, outlen, "unix:%s", opts->socket_path);
    else
        snprintf(out, outlen, "%s:%d", opts->host, opts->port);
}

/* A blocking connection to the endpoint of `opts` (named in `where`), within
 * its connect timeout, which `tv` is set to. NULL if none could be allocated;
 * else the caller checks its `err` and frees it. */
static redisContext *s_connect_blocking(const mg_redis_options_t *opts, struct timeval *tv, char *where,
                                        size_t wherelen) {
    int timeout_ms = opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 2000;
    *tv = (struct timeval){timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    s_endpoint_name(opts, where, wherelen);
    return opts->socket_path ? redisConnectUnixWithTimeout(opts->socket_path, *tv)
                             : redisConnectWithTimeout(opts->host, opts->port, *tv);
}

redisContext *mg_redis_connect_sync(const mg_redis_options_t *opts, char *err, size_t errlen) {
    struct timeval tv;
    char where[PATH_MAX + 16];
    redisContext *c = s_connect_blocking(opts, &tv, where, sizeof(where));
    if (!c) {
        mg_fail(err, errlen, "redis: cannot allocate a connection context");
        return NULL;
    }
    if (c->err) {
        mg_fail(err, errlen, "redis: cannot connect to %s: %s", where, c->errstr);
        goto err;
    }
    /* Reads of a long journal may take a while, but never forever. */
    struct timeval io = {tv.tv_sec < 10 ? 10 : tv.tv_sec, 0};
    redisSetTimeout(c, io);
    int refused;
    if (s_sync_handshake(c, opts, where, &refused, err, errlen) != 0) goto err;
    return c;
err:
    redisFree(c);
    return NULL;
}

int mg_redis_check_credentials(const mg_redis_options_t *opts, char *err, size_t errlen) {
    struct timeval tv;
    char where[PATH_MAX + 16];
    redisContext *c = s_connect_blocking(opts, &tv, where, sizeof(where));
    if (!c) return 0;
    int refused = 0;
    if (!c->err) {
        redisSetTimeout(c, tv);
        s_sync_handshake(c, opts, where, &refused, err, errlen);
    }
    redisFree(c);
    return refused ? -1 : 0;
}

const redisReply *mg_redis_field(const redisReply *pairs, const char *name) {
    if (!pairs || pairs->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < pairs->elements; i += 2) {
        const redisReply *k = pairs->element[i];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0) {
            const redisReply *v = pairs->element[i + 1];
            return v->type == REDIS_REPLY_STRING ? v : NULL;
        }
    }
    return NULL;
}

int mg_redis_u64(const char *s, uint64_t *out) {
    if (!s || *s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || (*end != '\0' && *end != '-')) return -1;
    *out = v;
    return 0;
}

mg_redis_t *mg_redis_new_from_config(struct event_base *base, const mg_config_t *cfg, mg_redis_state_fn on_state,
                                     void *arg, char *err, size_t errlen) {
    mg_redis_options_t opts;
    if (mg_redis_options_from_config(cfg, &opts, err, errlen) != 0) return NULL;
    /* Wrong credentials are a configuration error: refuse to start (one
     * "Error:" line) rather than retry forever in the background. */
    if (mg_redis_check_credentials(&opts, err, errlen) != 0) {
        mg_redis_options_clear(&opts);
        return NULL;
    }
    mg_redis_t *redis = mg_redis_new(base, &opts, on_state, arg);
    mg_redis_options_clear(&opts);
    if (!redis) snprintf(err, errlen, "cannot create the Redis connection");
    return redis;
}

int mg_redis_publish_metrics(mg_redis_t *redis, const char *daemon) {
    char key[128];
    snprintf(key, sizeof key, MG_METRICS_KEY_PREFIX "%s", daemon);
    mg_metrics_argv_t args;
    mg_metrics_hset_argv(key, &args);
    if (args.argc == 0) {
        mg_metrics_argv_free(&args);
        return 0;
    }
    int rc = mg_redis_command_argv(redis, NULL, NULL, args.argc, (const char **)args.argv, args.argvlen);
    mg_metrics_argv_free(&args);
    /* Listed, so that the gateway's /metrics reads a set instead of scanning. */
    if (rc == 0) rc = mg_redis_command(redis, NULL, NULL, "SADD %s %s", MG_METRICS_DAEMONS_KEY, daemon);
    return rc;
}
