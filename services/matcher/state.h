/* state.h -- the matcher's model in Redis: one Lua script (called with script.h).
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
#include "maillage/script.h"

/* The Lua source (static). */
extern const char mg_matcher_script[];

#endif
