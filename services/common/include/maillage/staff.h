/* staff.h -- what the staff CLI (maillage staff), the notifier and the
 * gateway share about the chamber's staff beyond the record's key names
 * (docs/redis-keys.md): how a list field of a record mg:staff:<id> is
 * split, the Redis pub/sub channels the notifier announces on, and how an
 * inbox entry is marked read.
 *
 * A list field ("departments", "categories", "networks", "channels") holds
 * items separated by commas, spaces or tabs, in any mix: "14, 50",
 * "inbox email", "inbox,\twebhook". The CLI checks and shows a field item by
 * item, the notifier reads it, both with mg_staff_list_next(), so that they
 * never disagree on what a field lists; both refuse a scope naming what no
 * item can be in, with mg_staff_scope_unknown(). Pure; any thread. */
#ifndef MAILLAGE_STAFF_H
#define MAILLAGE_STAFF_H

#include <stddef.h>

#include "maillage/communes.h"
#include "maillage/taxonomy.h"

/* PUBLISH <channel> <staff id>: new entries in that staff member's inbox
 * (the gateway wakes the member's live streams). */
#define MG_STAFF_INBOX_CHANNEL "mg:inbox:new"

/* PUBLISH <channel> <match id>: a match retired or revised (the gateway
 * hints every live stream, whose page fetches the match again). */
#define MG_STAFF_MATCH_CHANNEL "mg:match:changed"

/* EVAL <script> 2 mg:inbox:<staff> mg:notif:<nid> <nid>: marks the entry
 * read if it is in that inbox and its record still exists (marking never
 * creates a stray record, which would also read as "already notified" to the
 * notifier); returns 1, else 0. */
extern const char mg_staff_mark_read_script[];

/* The next item of list field value `*cursor`, which moves past it. Returns
 * the item's first byte (not NUL-terminated) with its length in `*len`, or
 * NULL when no item is left. */
const char *mg_staff_list_next(const char **cursor, size_t *len);

/* Whether list field value `list` (NULL: none) names `item`. */
int mg_staff_list_has(const char *list, const char *item);

/* The first item of scope field `key`'s value `value` that no item can be
 * in, copied into `bad` (cut to badlen): for "departments", a department of
 * no commune of `communes` (NULL: not a French department code, french.h);
 * for "categories", a category `tax` does not list (NULL: not checked);
 * other keys have none. Returns 1 if there is one (a member with that scope
 * would silently receive nothing of it), else 0. */
int mg_staff_scope_unknown(const char *key, const char *value, const mg_taxonomy_t *tax,
                           const mg_communes_t *communes, char *bad, size_t badlen);

#endif
