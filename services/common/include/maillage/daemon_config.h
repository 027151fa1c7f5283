/* daemon_config.h -- what maillage-broker, maillage-matcher and
 * maillage-gateway check of their configuration at start-up beyond the
 * schema (config.h), shared with `maillage config check`, so that a file the
 * check calls OK is one they start with (the notifier's are in
 * notifier_config.h): the log level, settings that depend on each other, ids, endpoints
 * that must not be reachable beyond this machine without authentication,
 * and the broker's CURVE key files.
 *
 * Pure but for reading the CURVE key files; any thread. */
#ifndef MAILLAGE_DAEMON_CONFIG_H
#define MAILLAGE_DAEMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "maillage/config.h"
#include "maillage/log.h"

/* Every daemon's [log] level, into `*level`. Returns 0, or -1 with the
 * reason in `err`. */
int mg_daemon_log_level(const mg_config_t *cfg, mg_log_level_t *level, char *err, size_t errlen);

/* Is ZeroMQ `endpoint` reachable from this machine only? ipc:// and
 * inproc:// are; tcp:// when its host is a loopback address and only a
 * port (digits or "*") follows it (libzmq reads "HOST:PORT;HOST2:PORT2" as
 * two addresses); any other transport is not. */
bool mg_endpoint_is_local(const char *endpoint);

/* The broker's: [broker] network a valid id, [broker] curve_secret_key_file
 * and curve_clients_file readable and consistent (mg_curve_server_check()),
 * and ingest and fanout on loopback unless CURVE is on or
 * allow_insecure_remote is set. Returns 0, or -1 with the reason in `err`. */
int mg_broker_config_check(const mg_config_t *cfg, char *err, size_t errlen);

/* The matcher's: some weight above 0, material_change below threshold,
 * instance below instances. `path` names the file in the messages. Returns
 * 0, or -1 with the reason in `err`. */
int mg_matcher_config_check(const mg_config_t *cfg, const char *path, char *err, size_t errlen);

/* Split [gateway] listen, "host:port" or "[v6]:port", into `host` (at most
 * `hostlen` bytes with its NUL) and `*port`. Returns 0, or -1 when it is
 * not of that form. */
int mg_gateway_listen_parse(const char *listen, char *host, size_t hostlen, int *port);

/* The gateway's: listen of the form HOST:PORT, on loopback unless
 * allow_plain_http_remote is set, staff_network a valid id. Returns 0, or -1
 * with the reason in `err`, which begins with FILE:LINE (mg_config_where()).
 * The others' messages begin so too, where one key is at fault. */
int mg_gateway_config_check(const mg_config_t *cfg, char *err, size_t errlen);

#endif
