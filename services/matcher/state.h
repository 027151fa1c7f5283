/* state.h -- the matcher's model in Redis: one Lua script, and how to call it.
 *
 * Every change the matcher makes to the shared state goes through one Lua
 * script (mg_matcher_script, documented key by key in docs/redis-keys.md,
 * section "Matcher"), so each step is atomic and order-safe: an entity
 * (structure, need, offer) records the journal sequence of the last event
 * applied to it, and an event is applied only if its sequence is greater, so
 * two instances at different positions never move the state backwards. The
 * script's first argument names the operation ("need", "offer", "decide"...).
 *
 * Runs in the thread of the event base of the mg_redis_t. */
#ifndef MAILLAGE_MATCHER_STATE_H
#define MAILLAGE_MATCHER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "maillage/redis.h"

/* The Lua source (static). */
extern const char mg_matcher_script[];

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
void mg_args_double(mg_args_t *a, double v);
void mg_args_clear(mg_args_t *a);
/* Append the arguments of `src` to `dst` without copying them: `src` is left
 * empty (and may be reused or cleared). */
void mg_args_move(mg_args_t *dst, mg_args_t *src);

typedef struct mg_script mg_script_t;

/* A script on `redis` (borrowed; must outlive it) with `source` (static).
 * Caller owns the result. */
mg_script_t *mg_script_new(mg_redis_t *redis, const char *source);
void mg_script_destroy(mg_script_t **script_p);

/* Load the script (SCRIPT LOAD) after a (re)connection. */
void mg_script_redis_up(mg_script_t *script);

/* Run the script with no keys and `args` as ARGV: EVALSHA, and EVAL when
 * Redis answers NOSCRIPT (a restarted Redis forgets loaded scripts). Takes
 * ownership of the arguments (`args` is left empty). `cb` gets the reply
 * (borrowed; NULL on a lost connection) exactly once if 0 is returned; -1
 * means Redis is down and `cb` will not be called. */
int mg_script_call(mg_script_t *script, mg_args_t *args, mg_redis_reply_fn cb, void *privdata);

#endif
