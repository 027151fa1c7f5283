/* cli.h -- what the commands of the `maillage` CLI share: the connection
 * settings (flags > environment > config file > defaults), the commune table
 * and taxonomy for French text, and small output helpers.
 *
 * The CLI is single-threaded and short-lived: each command runs once, writes
 * to stdout, reports errors as one line on stderr and returns an exit code. */
#ifndef MAILLAGE_CLI_H
#define MAILLAGE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <getopt.h>
#include <stdio.h>

#include <hiredis/hiredis.h>

#include "maillage/communes.h"
#include "maillage/config.h"
#include "maillage/envelope.h"
#include "maillage/taxonomy.h"

/* Exit codes: 0 success, 1 failure of the operation, 2 usage error. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Where to reach the system, resolved once per command. */
typedef struct {
    const char *config_path; /* --config or MAILLAGE_CONFIG; NULL = defaults */
    const char *redis_url;   /* --redis, MAILLAGE_REDIS_URL, or NULL (config's) */
    const char *ingest;      /* --ingest, MAILLAGE_INGEST, or NULL (config's) */
    const char *fanout;      /* --fanout, MAILLAGE_FANOUT, or NULL (config's) */
} cli_settings_t;

/* The options every command accepts, for getopt_long tables. */
#define CLI_OPT_CONFIG 1001
#define CLI_OPT_REDIS 1002
#define CLI_OPT_INGEST 1003
#define CLI_OPT_FANOUT 1004
#define CLI_COMMON_LONG_OPTIONS                                                                    \
    {"config", required_argument, NULL, CLI_OPT_CONFIG},                                           \
        {"redis", required_argument, NULL, CLI_OPT_REDIS},                                         \
        {"ingest", required_argument, NULL, CLI_OPT_INGEST},                                       \
        {"fanout", required_argument, NULL, CLI_OPT_FANOUT}, {"help", no_argument, NULL, 'h'}

/* The help text of the common options, for each command's --help. */
extern const char cli_common_help[];

/* Handle one of the common options returned by getopt_long. Returns 1 if
 * `opt` was one, 0 otherwise. `arg` is borrowed (argv outlives the command). */
int cli_settings_option(cli_settings_t *settings, int opt, const char *arg);

/* getopt_long() for `command`, except that an unknown option or one without
 * its value is said in one French line, naming it, instead of getopt's
 * English and the whole help: then '?' is returned,
 * for the caller to exit with CLI_EXIT_USAGE. */
int cli_getopt(const char *command, int argc, char **argv, const char *shortopts,
               const struct option *longopts);

/* The long name of option `val` in `longopts` (without "--"), or "?". */
const char *cli_option_name(const struct option *longopts, int val);

/* A string-keyed hash map (map.c) of entries the caller defines, each
 * beginning with a cli_map_entry_t: `struct { cli_map_entry_t entry; ... }`.
 * Zero-initialised, it is empty; cli_map_clear() gives its memory back. */
typedef struct cli_map_entry {
    struct cli_map_entry *next;
    char *key; /* owned by the map */
} cli_map_entry_t;

typedef struct {
    cli_map_entry_t **buckets;
    size_t count;
} cli_map_t;

/* The entry of `key`, or NULL. */
cli_map_entry_t *cli_map_get(cli_map_t *m, const char *key);

/* The entry of `key`, created zeroed (`size` bytes, the caller's whole
 * entry) when absent. */
cli_map_entry_t *cli_map_put(cli_map_t *m, const char *key, size_t size);

/* Remove `key`'s entry, or every entry, calling `drop` (may be NULL) on each
 * before it is freed, for what the caller's entry owns. */
void cli_map_remove(cli_map_t *m, const char *key, void (*drop)(cli_map_entry_t *));
void cli_map_clear(cli_map_t *m, void (*drop)(cli_map_entry_t *));

/* The entry after `e` (NULL: the first), in no particular order; NULL at
 * the end. The map must not change meanwhile. */
cli_map_entry_t *cli_map_next(const cli_map_t *m, const cli_map_entry_t *e);

/* A cache of the titles of needs, offers and cooperation proposals and the
 * names of structures, for French text (names.c). */
typedef struct cli_names cli_names_t;

/* The loaded configuration with the overrides applied. Caller owns the
 * result (cli_context_destroy). */
typedef struct {
    mg_config_t *config;
    char *redis_url; /* effective values, owned */
    char *ingest;
    char *fanout;
    mg_taxonomy_t *taxonomy;  /* loaded by cli_context_load_tables() */
    mg_communes_t *communes;
    cli_names_t *names; /* created empty by cli_context_load_tables() */
} cli_context_t;

/* Resolve `settings` against the environment and the config file. Returns
 * CLI_EXIT_OK, or, after printing one line "maillage CMD: reason" to
 * stderr, CLI_EXIT_USAGE for a --redis, --ingest or --fanout value that is
 * no URL or endpoint at all, CLI_EXIT_FAIL for the rest (a config file that
 * does not load, the same values from the environment or the file). */
int cli_context_init(cli_context_t *ctx, const cli_settings_t *settings, const char *command);

/* Load the taxonomy and the commune table named by the config, and create
 * the cache of names, for French text and summaries. On failure prints a
 * warning and leaves a table NULL (text then shows raw codes): a missing
 * table must not stop `tail`. */
void cli_context_load_tables(cli_context_t *ctx, const char *command);

void cli_context_destroy(cli_context_t *ctx);

/* A blocking Redis connection to the effective URL (with the config's user,
 * password file and timeouts). Returns NULL after printing one line, or
 * silently when `command` is NULL (a retry the caller speaks of). Caller
 * frees with redisFree(). */
redisContext *cli_redis_connect(const cli_context_t *ctx, const char *command);

/* Watch the handshakes of `socket`, a DEALER or SUB to the broker, before
 * its zmq_connect(): a refused CURVE key (or a plain client of a CURVE
 * broker) looks to the socket like a broker that does not answer. Returns a
 * PAIR socket of `zctx` to poll for ZMQ_POLLIN and read with
 * cli_handshake_read(), or NULL with errno set. Caller closes it after
 * zmq_socket_monitor(socket, NULL, 0). */
void *cli_handshake_monitor(void *zctx, void *socket);

/* Read the events waiting on `monitor`: after a failed handshake, its
 * explanation is in `why`; after a successful one, `why` is "". Returns 1
 * when a failure followed a success or nothing (a new one to say), else 0. */
int cli_handshake_read(void *monitor, char *why, size_t whylen);

/* Returns 0 if some event type starts with `prefix` ("need.",
 * "offer.published"), else prints one line naming the types and returns -1:
 * a typo ("ned.") would otherwise select nothing, in silence. A pattern as
 * tokens spell it ("need.*", "*") is first cut to its prefix, in place. */
int cli_check_type_prefix(const char *command, char *prefix);

/* Print "maillage CMD: message" to stderr. */
void cli_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- French errors the commands share (text.c) --------------------------- */

/* Print "maillage CMD: erreur Redis : reason" for a command that failed:
 * the error reply `r` when there is one, else the connection's error. */
void cli_error_redis(const char *command, const redisContext *c, const redisReply *r);

/* Returns 0 if `id` is a valid id (mg_id_is_valid), else prints why in
 * French and returns -1. */
int cli_check_id(const char *command, const char *id);

/* "29/11/2026 10:07": the Paris time of `unix_ms`, as staff read it. */
#define CLI_PARIS_TIME_LEN 32
void cli_paris_time(long long unix_ms, char out[CLI_PARIS_TIME_LEN]);

/* Reads the value of option --`name` as a positive integer (digits only, at
 * least 1, no sign, no trailing text, within unsigned long long) into *out:
 * 0, else prints why (in French) and returns -1. */
int cli_positive_option(const char *command, const char *name, const char *value, unsigned long long *out);

/* ---- Names of what events refer to by id (names.c) ----------------------- */

/* The names cache is filled from the events a command prints, then from the
 * notifier's copies in Redis (docs/redis-keys.md). One per command. */
typedef enum { CLI_NAME_NEED, CLI_NAME_OFFER, CLI_NAME_PROPOSAL, CLI_NAME_STRUCTURE } cli_name_kind_t;

/* Caller owns the result (cli_names_destroy). */
cli_names_t *cli_names_new(void);

/* Accepts NULL; sets *self_p to NULL. */
void cli_names_destroy(cli_names_t **self_p);

/* Remember the name or title an event states (member.joined/updated,
 * need.reported/updated, offer.published/updated, cooperation.proposed), so
 * later events of the same run that refer to it need no lookup. */
void cli_names_remember(cli_names_t *self, const mg_envelope_t *env);

/* The title or name of the `kind` with id `id`: remembered, else looked up
 * once in Redis through `redis` (may be NULL: no lookup) and cached, found
 * or not. Returns NULL when unknown. Borrowed until the next call on `self`. */
const char *cli_names_get(cli_names_t *self, redisContext *redis, cli_name_kind_t kind, const char *id);

/* ---- French text of events (text.c) ------------------------------------ */

/* Write one readable French line for `env` (which carries its sequence) to
 * `out`: "#12  besoin signalé  · Calvados (14) · Locaux · « title » — Caen".
 * What the event refers to by id (a match's need and offer, a proposal's
 * structures) is shown by its title or name when ctx->names knows it or
 * finds it through `redis` (borrowed, may be NULL), else by its id. `ctx`
 * tables may be NULL. */
void cli_text_event(FILE *out, const cli_context_t *ctx, redisContext *redis, const mg_envelope_t *env);

/* The department of commune `code`: from the table when known, else the
 * code's first two characters (or "?"). `code` may be a territory entry
 * instead ("dep:76"; "epci:<siren>": its first department). Writes into
 * `out` (4 bytes). */
void cli_commune_department(const cli_context_t *ctx, const char *code, char out[4]);

/* The commune's name, or a territory entry's ("Seine-Maritime", "CU Caen la
 * Mer"), or the code when unknown. Borrowed. */
const char *cli_commune_name(const cli_context_t *ctx, const char *code);

/* Where an offer is: its commune, else (placed by its territory only) its
 * territory's first entry. Borrowed. */
const char *cli_offer_place(const Maillage__V1__Offer *of);

/* Number of characters (code points) of the UTF-8 string `s`, for aligning
 * columns of French text. */
size_t cli_utf8_width(const char *s);

/* Write `s` then spaces up to `width` characters. */
void cli_pad(FILE *out, const char *s, size_t width);

/* ---- Commands ----------------------------------------------------------- */

int cli_cmd_emit(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_tail(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_journal(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_dlq(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_up(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_down(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_config(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_consumers(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_staff(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_inbox(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_notifications(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_keygen(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_forget(int argc, char **argv, cli_settings_t *settings);
int cli_cmd_token(int argc, char **argv, cli_settings_t *settings);
/* Revoke every HTTP token of staff member `staff_id` (`maillage staff
 * remove` does it). Returns how many, or -1 on a Redis error (reported). */
int cli_token_revoke_staff(redisContext *c, const char *staff_id);

/* Set by SIGINT/SIGTERM in commands that loop (tail, emit). */
extern volatile int cli_interrupted;

/* Install the SIGINT/SIGTERM handler (without SA_RESTART, so blocking calls
 * return EINTR and loops see cli_interrupted). */
void cli_catch_signals(void);

/* Sleep `ms` milliseconds, the whole of them unless cli_interrupted is set. */
/* 1 once standard output cannot be written any more (its reader went away:
 * `maillage tail | head`). SIGPIPE is ignored (a Redis connection closed
 * under a write is an error to report), so a command that prints a stream
 * checks this and stops there, quietly. */
int cli_stdout_closed(void);

void cli_sleep_ms(long ms);

#endif
