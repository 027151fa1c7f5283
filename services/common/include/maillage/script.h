/* script.h -- arguments for Redis commands, and Lua scripts run with EVALSHA.
 *
 * mg_args_t gathers binary-safe arguments (each copied) for
 * mg_redis_command_argv(); mg_script_t runs one Lua script by its SHA, loads
 * it again after a restart of Redis, and falls back to EVAL on NOSCRIPT.
 * The calls of one mg_script_t run in Redis in the order they were made,
 * also across a NOSCRIPT (the script cache flushed while calls were in
 * flight: they are sent again with EVAL, and the calls made meanwhile wait
 * for them), unless another client loads the script again while they are
 * in flight: a later EVALSHA may then run before an earlier call's EVAL. The journal appends, and the matcher and the notifier keep
 * their state, through one script each.
 *
 * Runs in the thread of the event base of the mg_redis_t. */
#ifndef MAILLAGE_SCRIPT_H
#define MAILLAGE_SCRIPT_H

#include <stddef.h>

#include "maillage/redis.h"

/* A growing list of command arguments (binary-safe). */
typedef struct {
    int argc, cap;
    char **argv;
    size_t *lens;
} mg_args_t;

void mg_args_init(mg_args_t *a);
void mg_args_bytes(mg_args_t *a, const void *data, size_t len); /* copied */
void mg_args_str(mg_args_t *a, const char *s);                  /* copied; NULL is "" */
void mg_args_int(mg_args_t *a, long long v);
void mg_args_double(mg_args_t *a, double v); /* "%.6f"; "0" for NaN and infinities */
void mg_args_clear(mg_args_t *a);
/* Append the arguments of `src` to `dst` without copying them: `src` is left
 * empty (and may be reused or cleared). */
void mg_args_move(mg_args_t *dst, mg_args_t *src);

typedef struct mg_script mg_script_t;

/* A script on `redis` (borrowed) with `source` (static). Caller owns the
 * result. Destroy the mg_redis_t first: its pending calls
 * get their callbacks then; calls still held get theirs (NULL) in
 * mg_script_destroy(). */
mg_script_t *mg_script_new(mg_redis_t *redis, const char *source);
void mg_script_destroy(mg_script_t **script_p);

/* Load the script (SCRIPT LOAD) after a (re)connection. */
void mg_script_redis_up(mg_script_t *script);

/* Run the script with no keys and `args` as ARGV: EVALSHA, and EVAL when
 * Redis answers NOSCRIPT (a restarted Redis forgets loaded scripts). Takes
 * ownership of the arguments (`args` is left empty). `cb` (may be NULL)
 * gets the reply (borrowed; NULL on a lost connection) exactly once if 0 is
 * returned; -1
 * means Redis is down and `cb` will not be called. */
int mg_script_call(mg_script_t *script, mg_args_t *args, mg_redis_reply_fn cb, void *privdata);

/* The same with `numkeys` keys first, then the script's ARGV, without a
 * copy: `argv` and `lens` are copied, but the `argc` byte strings they point
 * to are borrowed and must stay valid until `cb` is called. */
int mg_script_call_argv(mg_script_t *script, int numkeys, int argc, const char *const *argv,
                        const size_t *lens, mg_redis_reply_fn cb, void *privdata);

#endif
