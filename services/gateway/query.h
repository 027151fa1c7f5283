/* query.h -- what the files of the gateway's read API share (query.c,
 * query_items.c, query_cooperations.c, query_inbox.c, query_territory.c,
 * and stream.c for the notifications): Redis reads in MULTI/EXEC batches,
 * the checks of query parameters, dates, and the notification loader. An
 * internal header.
 *
 * Reads go through the gateway's one command connection (gw_redis()). A
 * batch is MULTI, its commands, EXEC, queued in one loop turn: one round
 * trip, one callback (the EXEC reply, an array with one reply per command),
 * and a consistent snapshot, since Redis runs the batch at once. Every read
 * is bounded (a page, a cursor); nothing scans the keyspace with KEYS.
 *
 * Everything runs in the thread of the gateway's event base. */
#ifndef MAILLAGE_GATEWAY_QUERY_H
#define MAILLAGE_GATEWAY_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "gateway.h"
#include "maillage/communes.h"
#include "maillage/redis.h"

/* ---- MULTI/EXEC batches ------------------------------------------------------ */

typedef struct {
    mg_redis_t *redis;
    int failed;   /* a command could not be queued (Redis not connected) */
    size_t count; /* commands queued after MULTI */
} gq_tx_t;

/* Start a batch (MULTI is sent with its first command). */
void gq_tx_begin(gq_tx_t *tx, mg_gateway_t *gw);

/* Queue one command given as NUL-terminated words, the list ending with
 * NULL (at most 32 words). */
void gq_tx_add(gq_tx_t *tx, const char *word, ...) __attribute__((sentinel));

/* Queue one command of `argc` NUL-terminated words. */
void gq_tx_addv(gq_tx_t *tx, int argc, const char **argv);

/* Queue the read of a page of sorted set `key` by position, highest score
 * first: `batch` entries with scores at most `max` (a number as text; NULL:
 * no bound), after the first `offset` of them, with their scores. Pages of
 * the inbox and of an item's matches: a cursor is the last entry's score and
 * member, and the entries of that score already shown are passed over. */
void gq_tx_add_page(gq_tx_t *tx, const char *key, const char *max, long offset, long batch);

/* Send EXEC: `cb` gets the EXEC reply (an array of tx->count replies;
 * borrowed until it returns), or NULL / an error reply on failure. Returns
 * 0, or -1 if the batch is empty (check tx->count first) or a command could
 * not be queued (Redis down): `cb` is then never called. */
int gq_tx_exec(gq_tx_t *tx, mg_redis_reply_fn cb, void *privdata);

/* The i-th reply of an EXEC reply, or NULL when missing or an error reply. */
const redisReply *gq_at(const redisReply *exec, size_t i);

/* The text of a string/status reply, or NULL (nil, error, other types). */
const char *gq_str(const redisReply *r);

/* 1 if `exec` is a usable EXEC reply of `count` replies, else 0 (an error
 * reply is logged, at most once every 10 s). Loop thread only. */
int gq_exec_ok(const redisReply *exec, size_t count);

/* The members of a SCAN, SSCAN or ZSCAN reply (borrowed from `reply`), its
 * next cursor copied into `cursor` (`len` bytes); NULL when `reply` is not
 * one (Redis failed): `cursor` is then left as it was. */
const redisReply *gq_scan_page(const redisReply *reply, char *cursor, size_t len);

/* ---- a request's state ------------------------------------------------------- */

/* A zeroed state of `size` bytes, attached to `r` (r->state): the reply
 * frees it with `state_free` (free() when NULL), so a handler answers with
 * gw_reply_*() alone, from wherever it is. Borrowed until the reply. */
void *gq_state_new(gw_request_t *r, size_t size, void (*state_free)(void *state));

/* ---- parameters (each answers 400 itself and returns -1 on a bad value:
 * `r` is then gone). An empty value ("?limit=&kind=", a name alone) is an
 * absent one, for every parameter. --------------------------------------------- */

/* ?limit=: *out = def when absent, else an integer in 1..max. */
int gq_param_limit(gw_request_t *r, long def, long max, long *out);

/* ?category=: a code of the taxonomy, or *out = NULL when absent. */
int gq_param_category(gw_request_t *r, const char **out);

/* ?department=: a department of the commune table, or *out = NULL. */
int gq_param_department(gw_request_t *r, const char **out);

/* 1 if `s` is a SCAN cursor: decimal digits of an unsigned 64-bit value. */
int gq_scan_cursor_valid(const char *s);

/* A boolean parameter ("true"/"false"/"1"/"0"): *out = -1 when absent. */
int gq_param_bool(gw_request_t *r, const char *name, int *out);

/* ---- reference data (built once, kept in the query part's state) ------------ */

/* The departments present in the commune table, sorted ("14", "27", ...). */
size_t gq_departments(mg_gateway_t *gw, const char *const **codes);

/* 1 if `code` is one of them. */
int gq_department_known(mg_gateway_t *gw, const char *code);

/* 1 if department `want` is `dep` or one of `others` (a JSON array of
 * codes, as "otherDepartments"; NULL for none): what ?department= keeps. */
int gq_department_in(const char *want, const char *dep, const json_t *others);

/* The name and department of EPCI `siren` (from its communes), or NULL. */
const char *gq_epci_name(mg_gateway_t *gw, const char *siren, const char **department);

/* 1 if EPCI `siren` has a commune in `department` (an EPCI may span two). */
int gq_epci_in_department(mg_gateway_t *gw, const char *siren, const char *department);

/* The departments of EPCI `siren` other than `department` (one across two,
 * as the CC du Pays de Honfleur-Beuzeville), as a JSON array for
 * "otherDepartments"; NULL when there are none. Caller owns it. */
json_t *gq_epci_other_departments(mg_gateway_t *gw, const char *siren, const char *department);

/* ---- JSON and dates ------------------------------------------------------------ */

/* "2024-05-01T12:34:56.789Z" for Unix milliseconds `ms` (32 bytes). */
void gq_rfc3339(int64_t ms, char out[32]);

/* "YYYY-MM-DD" for a day number (days since 1970-01-01), 11 bytes; "" for
 * a number outside years 1970..9999 (a damaged record). */
void gq_day_date(long day, char out[11]);

/* Set `key` to a string in `obj` when `value` is neither NULL nor "". */
void gq_set_str(json_t *obj, const char *key, const char *value);

/* Add "commune", "communeName", "department", "departmentName", "epci",
 * "epciName" for commune `code` (the table's; `department` is used when the
 * commune is unknown). A territory entry in place of a commune ("dep:76",
 * "epci:<siren>": the notifier names an offer placed by its territory only
 * by its first entry) is gq_set_entry_place()'s. */
void gq_set_place(mg_gateway_t *gw, json_t *obj, const char *code, const char *department);

/* Add "department" and "departmentName" of territory entry `entry`
 * ("dep:76", "epci:<siren>": its first commune's, or a commune code), and no
 * commune: the place of an offer placed by its territory only. */
void gq_set_entry_place(mg_gateway_t *gw, json_t *obj, const char *entry);

/* Add "territoryNames" (one per entry, as staff read them: "Calvados", "CU
 * Caen la Mer", "Caen"; the entry itself when unknown) for the "territory"
 * array of `obj`, when it has one. */
void gq_set_territory_names(mg_gateway_t *gw, json_t *obj);

/* Add "category" and "categoryLabel". */
void gq_set_category(mg_gateway_t *gw, json_t *obj, const char *code);

/* The name in a serialized Structure (the `pb` of mg:structure:<sid>, as
 * HGET returns it). Caller owns the result; NULL when unknown (nil, not a
 * string, not a Structure, no name). */
char *gq_structure_name(const redisReply *pb);

/* "new", "contact_made" or "not_relevant" for a stored feedback ("", "cm", "nr"). */
const char *gq_status_name(const char *stored);

/* ---- positions in an inbox ("<score>-<nid>": the entry's score in
 * mg:inbox:<staff>, its creation time in ms or just above the newest) ---- */

typedef struct {
    int64_t ms;
    char nid[MG_ID_MAX + 1];
} gq_pos_t;

/* Parse "<ms>-<nid>". Returns 0, -1 if malformed. */
int gq_pos_parse(const char *text, gq_pos_t *pos);

/* Compare a (score, member) position with `pos` in the sorted set's order. */
int gq_pos_cmp(int64_t ms, const char *nid, const gq_pos_t *pos);

/* ---- notifications (the inbox and the live stream) ------------------------------- */

/* One inbox entry to load: its id and position (the sorted set's score). */
typedef struct {
    char nid[MG_ID_MAX + 1];
    int64_t ms;
    json_t *json; /* set by the loader: the notification, or NULL if its record is gone */
} gq_entry_t;

/* Called once with the entries (their `json` filled; ownership of each json
 * stays with the entries: the caller decrefs them), or ok = 0 when Redis
 * failed (no json set). */
typedef void (*gq_notifs_fn)(void *arg, gq_entry_t *entries, size_t count, int ok);

/* Load the notifications of `entries` (borrowed until `cb` runs; must stay
 * valid: keep them in the caller's state) for staff member `staff`: the
 * record, and for a match its pair, its need and offer and the staff
 * member's feedback ("status"); category and department for every kind.
 * Two or three batches. Returns 0 (cb runs exactly once, later), -1 if
 * Redis is down (cb never runs). */
int gq_notifs_load(mg_gateway_t *gw, const char *staff, gq_entry_t *entries, size_t count, gq_notifs_fn cb,
                   void *arg);

/* ---- the figures cache of query_territory.c, kept in the query part ----------------- */

void gq_set_territory(mg_gateway_t *gw, void *state, void (*destroy)(void *state));
void *gq_territory(mg_gateway_t *gw);

/* ---- registration of each file's routes -------------------------------------------- */

void gq_items_register(mg_gateway_t *gw);
void gq_cooperations_register(mg_gateway_t *gw);
void gq_inbox_register(mg_gateway_t *gw);
void gq_territory_register(mg_gateway_t *gw);

#endif
