/* matcher.h -- maillage-matcher: keeps the territory's open needs and offers
 * in Redis and proposes the pairs worth a contact.
 *
 * A consumer (mg_subscriber, "matcher" or "matcher-<instance>") of member.*,
 * need.*, offer.*, cooperation.* and match.feedback. Each event is applied to
 * the shared state by one Lua script (state.h), which also returns the
 * candidates of a new or updated need (offers) or offer (needs); the pairs
 * are filtered and scored (match_score.h), and the decisions (match.found,
 * retirements, collective_need.detected, closures) are recorded with a
 * conditional second script call that also puts each event in an outbox
 * (mg:matcher:outbox) before it is sent to the broker with a deterministic
 * event id. Only then is the delivery finished. So a crash anywhere means:
 * the event is delivered again and redone, or its decisions are in the outbox
 * and sent again at start; the broker's dedupe journals each id once.
 *
 * Runs in the thread of the event base. */
#ifndef MAILLAGE_MATCHER_H
#define MAILLAGE_MATCHER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "maillage/config.h"

typedef struct mg_matcher mg_matcher_t;

/* Create the matcher from `cfg` (borrowed; must outlive it): loads the
 * commune table and the taxonomy, connects to Redis and the broker. Returns
 * NULL with one line in `err` on a configuration error. Caller owns the
 * result. */
mg_matcher_t *mg_matcher_new(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen);

/* Start a clean stop: save the checkpoint, then leave the loop (after at most
 * a short grace period). */
void mg_matcher_shutdown(mg_matcher_t *matcher);

/* Free; accepts NULL and sets *matcher_p to NULL. */
void mg_matcher_destroy(mg_matcher_t **matcher_p);

/* ---- pure helpers (unit-testable) ------------------------------------------ */

/* Length of a match id: "m-" and 32 hex digits. */
#define MG_MATCH_ID_LEN 34

/* The stable id of the pair (need_id, offer_id): "m-" and 128 bits of hash
 * in hex, so any two ids of up to 64 characters fit in an event id. */
void mg_matcher_match_id(const char *need_id, const char *offer_id, char out[MG_MATCH_ID_LEN + 1]);

/* The partition of a need among `instances` (0 when instances <= 1). */
unsigned mg_matcher_partition(const char *need_id, unsigned instances);

#endif
