/* notifier.h -- maillage-notifier: tells the chamber's staff, in French,
 * about the opportunities in their scope, through their channels, once.
 *
 * A consumer (subscriber.h, name "notifier") of member.*, need.*, offer.*,
 * cooperation.*, match.found and collective_need.detected. For each event
 * worth a notification it routes the item to every staff member whose scope
 * covers it (or to [notifier] default_staff), renders the French templates
 * and creates, in one Lua script call, one notification per (item, staff,
 * channel): the record's key is the idempotency key, so a redelivered or
 * replayed event creates nothing. Inbox entries are written in that same
 * call, which announces them on the Redis channel mg:inbox:new; e-mails and
 * webhooks go to a queue in Redis (a sorted set by due time) worked from a
 * timer through outbound.h, with retries, backoff and jitter; digests and
 * quiet hours hold them until their hour. A match retired or revised is no
 * notification: its id is published on mg:match:changed, so that open staff
 * pages showing it fetch it again.
 *
 * Runs in the thread of its event base. */
#ifndef MAILLAGE_NOTIFIER_H
#define MAILLAGE_NOTIFIER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "maillage/config.h"

typedef struct mg_notifier mg_notifier_t;

/* The Lua source (static), in notifier_script.c. */
extern const char mg_notifier_script[];

/* Create the notifier in `base` from `cfg` (borrowed until destroy): loads
 * the templates and the commune table, checks the [staff.*] sections and
 * reads the SMTP password file (refused if group or others may read or
 * write it), connects to Redis, writes the configured staff (except the ids
 * added, edited or removed with `maillage staff`), then subscribes. Returns
 * NULL with a reason in `err`. Caller owns the result. */
mg_notifier_t *mg_notifier_new(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen);

/* Begin a clean stop: no new sends, the checkpoint is saved, sends in flight
 * are awaited (a few seconds at most), then the loop exits. */
void mg_notifier_shutdown(mg_notifier_t *n);

/* Free; accepts NULL and sets *notifier_p to NULL. */
void mg_notifier_destroy(mg_notifier_t **notifier_p);

/* The idempotency key's notification id for (item, staff, channel):
 * "n-" and 32 hex digits, the same in every process. */
#define MG_NOTIFICATION_ID_LEN 34
void mg_notifier_notification_id(const char *item, const char *staff, const char *channel,
                                 char out[MG_NOTIFICATION_ID_LEN + 1]);

#endif
