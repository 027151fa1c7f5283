/* redis.h -- an asynchronous hiredis connection in a libevent loop that
 * stays connected.
 *
 * Connects from the configuration ([redis] url, user, password_file), AUTHs,
 * SELECTs the database, and when the connection is lost, reconnects from a
 * timer with exponential backoff (never from inside hiredis' disconnect
 * callback). While disconnected, commands are refused at once (-1), so
 * callers can answer "unavailable" instead of queueing without bound.
 * Replies are borrowed, valid only during the callback; a NULL reply means the
 * command failed because the connection was lost. Runs in the thread of the
 * event base. A synchronous connect helper serves the CLI and tests. */
#ifndef MAILLAGE_REDIS_H
#define MAILLAGE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "maillage/config.h"

typedef struct mg_redis mg_redis_t;

/* Called with the reply (borrowed; NULL if the connection was lost). */
typedef void (*mg_redis_reply_fn)(mg_redis_t *redis, redisReply *reply, void *privdata);

/* Called when the connection becomes ready (after AUTH/SELECT) and when it is
 * lost. `up` is 1 or 0. May be NULL. */
typedef void (*mg_redis_state_fn)(mg_redis_t *redis, int up, void *arg);

/* A parsed [redis] section. */
typedef struct {
    char *host;     /* NULL for a unix socket */
    int port;
    char *socket_path; /* NULL for TCP */
    int db;
    char *user;     /* NULL for the default user */
    char *password; /* NULL for none */
    int connect_timeout_ms;
    int reconnect_min_ms;
    int reconnect_max_ms;
} mg_redis_options_t;

/* Fill `opts` from cfg's [redis] section: parse the URL and read the password
 * file (refusing one readable by group or others). A TCP host beyond
 * loopback without a password is refused. Returns 0, or -1 with a reason in
 * `err`. Free with mg_redis_options_clear(). */
int mg_redis_options_from_config(const mg_config_t *cfg, mg_redis_options_t *opts, char *err, size_t errlen);
void mg_redis_options_clear(mg_redis_options_t *opts);

/* Start connecting (asynchronously) in `base`. `opts` is copied. Returns NULL
 * on allocation of the context failing. Caller owns the result. */
mg_redis_t *mg_redis_new(struct event_base *base, const mg_redis_options_t *opts,
                         mg_redis_state_fn on_state, void *arg);

/* mg_redis_options_from_config(), mg_redis_check_credentials(), then
 * mg_redis_new(): the connection a daemon makes from its [redis] section.
 * Returns NULL with a reason in `err` (a configuration error, or Redis
 * refusing the credentials or the database at start). Caller owns the
 * result. */
mg_redis_t *mg_redis_new_from_config(struct event_base *base, const mg_config_t *cfg, mg_redis_state_fn on_state,
                                     void *arg, char *err, size_t errlen);

/* Disconnect and free; pending callbacks get a NULL reply. Accepts NULL and
 * sets *redis_p to NULL. */
void mg_redis_destroy(mg_redis_t **redis_p);

/* 1 when connected and authenticated, else 0. */
int mg_redis_is_up(const mg_redis_t *redis);

/* Queue a command (hiredis format or argv form). Commands queued in one loop
 * turn are written together: that is the pipeline. Returns 0 if queued, -1 if
 * not connected (the callback will not be called). `cb` may be NULL. */
int mg_redis_command(mg_redis_t *redis, mg_redis_reply_fn cb, void *privdata, const char *fmt, ...);
int mg_redis_command_argv(mg_redis_t *redis, mg_redis_reply_fn cb, void *privdata, int argc,
                          const char **argv, const size_t *argvlen);

/* Publish this process' metrics (metrics.h) as the hash
 * mg:metrics:<daemon>, where the gateway reads every daemon's figures. Fire
 * and forget: returns 0 if sent, -1 if Redis is not up (the next call tries
 * again). */
int mg_redis_publish_metrics(mg_redis_t *redis, const char *daemon);

/* The value of field `name` in a flat field/value array (an HGETALL reply, or
 * the field list of a stream entry), or NULL if absent or not a string.
 * Borrowed from `pairs`. */
const redisReply *mg_redis_field(const redisReply *pairs, const char *name);

/* An unsigned decimal as Redis gives it, alone or as the first part of a
 * stream entry id ("<n>-<m>"), into `out`. Returns 0, or -1 (and `out`
 * untouched) for anything else, an overflow included. */
int mg_redis_u64(const char *s, uint64_t *out);

/* A blocking connection with the same options (AUTH, SELECT and a PING
 * done, so that a missing password is reported here), for the CLI and
 * tests. Returns NULL with a reason in `err`. Caller frees with
 * redisFree(). */
redisContext *mg_redis_connect_sync(const mg_redis_options_t *opts, char *err, size_t errlen);

/* For a daemon's start: one blocking attempt (at most connect_timeout_ms)
 * at AUTH, SELECT and PING. Returns -1 with a reason in `err` only if Redis
 * answered and refused the credentials or the database (retrying cannot
 * fix that: the daemon should not start); 0 if it accepted, or could not be
 * reached or is loading (the asynchronous connection retries). */
int mg_redis_check_credentials(const mg_redis_options_t *opts, char *err, size_t errlen);

#endif
