/* curve.h -- CurveZMQ for the bus: key files, the broker's allow-list and
 * ZAP handler, and the client side shared by every program that connects.
 *
 * Keys are Z85 text (40 characters, zmq_z85_encode of 32 bytes), one per
 * file: `maillage keygen --out DIR --name NAME` writes NAME.key (the secret,
 * mode 0600) and NAME.pub (the public key). A secret key file readable or
 * writable by group or others is refused, like [redis] password_file.
 *
 * The broker side: an allow-list file ([broker] curve_clients_file), one
 * client per line, "network_id  Z85_PUBLIC_KEY  allowed-types", where
 * allowed-types (required) is a comma-separated list of event types or
 * prefix patterns ("need.*", "match.found", "*" for any, "-" for none: a
 * subscriber only), plus the word "relay" for a client that relays other
 * networks' events (the HTTP gateway: see mg_curve_server_may_relay()) and
 * the word "steward" for one that may act on other networks' items (see
 * mg_curve_server_is_steward());
 * lines whose first non-blank character is '#' are comments (never inline:
 * Z85 keys may contain '#'). The file must not be writable by group or
 * others.
 * The ZAP handler (a REP socket at inproc://zeromq.zap.01 in the broker's
 * loop) answers 200 with User-Id = the network id for a listed key, 400
 * otherwise; the broker reads each message's "User-Id" and stamps it as the
 * source. The file is read again when its modification time changes, so a
 * key can be added or removed without a restart (new connections see it).
 *
 * The client side is process-wide, like the log level: mg_curve_client_setup()
 * once at start (from the [curve] section), then every socket that connects
 * to the broker calls mg_curve_client_apply() before zmq_connect(). The
 * producer and the subscriber do it themselves.
 *
 * Runs in the thread of its event base (ZAP) or of its caller. */
#ifndef MAILLAGE_CURVE_H
#define MAILLAGE_CURVE_H

#include <stddef.h>

#include <event2/event.h>
#include <zmq.h>

#include "maillage/config.h"

/* Z85 text of a key, NUL-terminated. */
#define MG_CURVE_KEY_LEN 40

/* Read the Z85 key of `path`: the first line that is not empty and not a
 * '#' comment. With `secret` set, the file must not be accessible by group
 * or others. `what` names the setting in messages ("[broker]
 * curve_secret_key_file"). Returns 0, or -1 with one line in `err`. */
int mg_curve_key_load(const char *path, int secret, const char *what, char out[MG_CURVE_KEY_LEN + 1], char *err,
                      size_t errlen);

/* 1 if `name` may name a key pair, else 0: an id (mg_id_is_valid()) that
 * does not start with '.' (no hidden files). */
int mg_curve_key_name_is_valid(const char *name);

/* Generate a key pair into DIR/NAME.key (0600) and DIR/NAME.pub (0644),
 * refusing to overwrite either. Returns 0, or -1 with one line in `err`. */
int mg_curve_keygen(const char *dir, const char *name, char *err, size_t errlen);

/* ---- client side (process-wide) -------------------------------------------- */

/* Load the client keys from [curve] (client_secret_key_file,
 * client_public_key_file: optional, derived from the secret when empty,
 * server_public_key_file). Arguments not NULL override the config's file
 * names (the environment's MAILLAGE_CLIENT_KEY and MAILLAGE_SERVER_KEY, for
 * the CLI and the daemons; client_public_key_file is then not checked
 * against the secret given instead). With no client secret key configured,
 * CURVE is off and 0 is returned. Returns -1 with one line in `err` when a
 * file is missing, unreadable, too open, or the settings are incomplete. */
int mg_curve_client_setup(const mg_config_t *cfg, const char *secret_file, const char *server_file, char *err,
                          size_t errlen);

/* 1 when mg_curve_client_setup() configured CURVE, else 0. */
int mg_curve_client_enabled(void);

/* Make `socket` a CURVE client with the process' keys (no-op when CURVE is
 * off). Call before zmq_connect(). Returns 0, or -1 with errno set. */
int mg_curve_client_apply(void *socket);

/* Explain a failed handshake with the broker, from the first frame of a
 * socket monitor's event (zmq_socket_monitor(): `event` its 16-bit event,
 * `value` its 32-bit value). A refused CURVE key, a wrong server key or a
 * broker that wants CURVE from a plain client look alike to ZeroMQ's
 * sockets, which just retry: without this, a client only sees no answer.
 * Returns 1 with one line in `why` for a handshake failure, 0 for any other
 * event. */
int mg_curve_handshake_failure(unsigned event, unsigned value, char *why, size_t whylen);

/* Forget the process' client keys (for tests; wipes the secret). */
void mg_curve_client_reset(void);

/* ---- broker side -------------------------------------------------------------- */

/* Check the text of an allow-list, the `len` bytes at `text` (borrowed; no
 * NUL terminator needed), as the broker checks its curve_clients_file when
 * it loads it, the file's mode aside: under 1 MiB, no NUL byte, a UTF-8
 * byte order mark skipped, and each line a '#' comment, blank, or
 * "network_id  Z85_PUBLIC_KEY  allowed-types" with all three columns valid
 * and no key listed twice. Returns the number of keys listed (0 for none),
 * or -1 with one line in `err` ("allow-list:LINE: reason", or
 * "allow-list: reason" for the whole text). */
int mg_curve_allow_list_check(const char *text, size_t len, char *err, size_t errlen);

typedef struct mg_curve_server mg_curve_server_t;

/* What mg_curve_server_new() would refuse of [broker] curve_secret_key_file
 * and curve_clients_file, without starting anything: the secret key (its
 * mode included), the allow-list, and one set without the other. 0 when
 * neither is set (no CURVE). Returns 0, or -1 with one line in `err`. */
int mg_curve_server_check(const mg_config_t *cfg, char *err, size_t errlen);

/* Read [broker] curve_secret_key_file and curve_clients_file and start the
 * ZAP handler in `base` on `zmq_context` (borrowed; both must outlive it).
 * Call before binding the sockets it protects. Returns NULL with one line in
 * `err`. Caller owns the result. */
mg_curve_server_t *mg_curve_server_new(struct event_base *base, void *zmq_context, const mg_config_t *cfg,
                                       char *err, size_t errlen);

/* Make `socket` a CURVE server with the broker's secret key and the ZAP
 * domain. Call before zmq_bind(). Returns 0, or -1 with errno set. */
int mg_curve_server_apply(const mg_curve_server_t *server, void *socket);

/* The network a message (any frame of it) was sent by, copied into `out`:
 * the network the allow-list gives the key its connection authenticated
 * with (the ZAP handler's, unless the operator moved the key to another
 * since). The allow-list is read again when its file changed (looked for at
 * most once a second), so a key removed from it (a compromised one) sends
 * nothing more, even on a connection established before: NULL for such a
 * message. */
const char *mg_curve_server_source(mg_curve_server_t *server, zmq_msg_t *frame, char *out, size_t outlen);

/* Look for a changed allow-list now (the broker does every second). A file
 * refused (unreadable, too open, a bad line) keeps the previous list and is
 * read again every second until it loads (logged once per reason); a list
 * that takes something away (a key, an event type) is applied only once the
 * file has stayed unchanged for 0.8 s (one being rewritten may be empty or
 * cut), or after 5 s of changes. Returns
 * how many reloads so far took a key away (removed, or moved to another
 * network): when the count grows, connections established with such a key
 * are still open, and where their messages are not checked one by one
 * (subscribers of the fan-out, authenticated as the network they were
 * listed in) they must be dropped. */
unsigned long long mg_curve_server_refresh(mg_curve_server_t *server);

/* May network `network` emit events of `type`? 1 yes, 0 no (unknown network
 * included). The allow-list is the one read last. */
int mg_curve_server_allows(mg_curve_server_t *server, const char *network, const char *type);

/* May network `network` relay events for other networks (the gateway)? Only
 * a client whose allowed types include the word "relay" (not "*"); what it
 * relays is still bounded by its other types. 1 yes, 0 no. */
int mg_curve_server_may_relay(mg_curve_server_t *server, const char *network);

/* May network `network` update and close the items and structures of other
 * networks (the chamber's own programs: journal.h, mg_journal_owner_op())?
 * A client whose types include the word "steward" (an operators' CLI), or
 * "match.found" written as such (the matcher, whose expiry and member.left
 * closures are such; not "*" nor "match.*"). 1 yes, 0 no. */
int mg_curve_server_is_steward(mg_curve_server_t *server, const char *network);

/* ZAP decisions so far. */
unsigned long long mg_curve_server_denied(const mg_curve_server_t *server);
unsigned long long mg_curve_server_allowed(const mg_curve_server_t *server);

/* Stop the handler and free; accepts NULL and sets *server_p to NULL. */
void mg_curve_server_destroy(mg_curve_server_t **server_p);

#endif
