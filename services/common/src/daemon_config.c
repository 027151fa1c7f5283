/* daemon_config.c -- the broker's, the matcher's and the gateway's start-up
 * checks of their configuration, shared with `maillage config check`; see
 * daemon_config.h. */
#include "maillage/daemon_config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "maillage/curve.h"
#include "maillage/envelope.h"
#include "maillage/log.h"

int mg_daemon_log_level(const mg_config_t *cfg, mg_log_level_t *level, char *err, size_t errlen) {
    const char *name = mg_config_str(cfg, "log", "level");
    if (mg_log_level_parse(name, level) == 0) return 0;
    char where[512];
    return mg_fail(err, errlen, "%s: [log] level = \"%s\": expected debug, info, warn or error",
                   mg_config_where(cfg, "log", "level", where, sizeof where), name);
}

bool mg_endpoint_is_local(const char *endpoint) {
    if (strncmp(endpoint, "ipc://", 6) == 0 || strncmp(endpoint, "inproc://", 9) == 0) return true;
    if (strncmp(endpoint, "tcp://", 6) != 0) return false;
    /* Nothing after the port: libzmq reads more ("127.0.0.1:1;0.0.0.0:2"
     * binds the second address too). */
    const char *authority = endpoint + 6;
    const char *port = authority[0] == '[' ? strchr(authority, ']') : authority;
    port = port ? strchr(port, ':') : NULL;
    if (!port || !port[1] ||
        (strcmp(port + 1, "*") != 0 && strspn(port + 1, "0123456789") != strlen(port + 1)))
        return false;
    return mg_config_authority_is_loopback(authority);
}

int mg_broker_config_check(const mg_config_t *cfg, char *err, size_t errlen) {
    char where[512];
    const char *network = mg_config_str(cfg, "broker", "network");
    if (!mg_id_is_valid(network))
        return mg_fail(err, errlen,
                       "%s: [broker] network = \"%s\": not a valid id ([A-Za-z0-9._:-], 1 to %d)",
                       mg_config_where(cfg, "broker", "network", where, sizeof where), network, MG_ID_MAX);
    if (mg_curve_server_check(cfg, err, errlen) != 0) return -1;
    static const char *const keys[] = {"ingest", "fanout"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *endpoint = mg_config_str(cfg, "broker", keys[i]);
        if (strncasecmp(endpoint, "tcp://localhost:", 16) == 0)
            return mg_fail(
                err, errlen,
                "%s: [broker] %s = %s: ZeroMQ binds an address or an interface, not a host name: use "
                "tcp://127.0.0.1:%s",
                mg_config_where(cfg, "broker", keys[i], where, sizeof where), keys[i], endpoint,
                endpoint + 16);
    }
    if (*mg_config_str(cfg, "broker", "curve_secret_key_file") ||
        mg_config_bool(cfg, "broker", "allow_insecure_remote"))
        return 0;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *endpoint = mg_config_str(cfg, "broker", keys[i]);
        if (!mg_endpoint_is_local(endpoint))
            return mg_fail(
                err, errlen,
                "%s: [broker] %s = %s: refusing an unauthenticated endpoint beyond loopback: set [broker] "
                "curve_secret_key_file and curve_clients_file (see SECURITY.md), or use "
                "tcp://127.0.0.1:PORT or ipc://",
                mg_config_where(cfg, "broker", keys[i], where, sizeof where), keys[i], endpoint);
    }
    return 0;
}

int mg_matcher_config_check(const mg_config_t *cfg, const char *path, char *err, size_t errlen) {
    static const char *const weights[] = {"weight_distance",         "weight_keywords",  "weight_sector",
                                          "weight_intercooperation", "weight_freshness", "weight_feedback",
                                          "weight_fairness"};
    double total = 0;
    for (size_t i = 0; i < sizeof weights / sizeof *weights; i++)
        total += mg_config_double(cfg, "matcher", weights[i]);
    if (total <= 0)
        return mg_fail(err, errlen, "%s: [matcher] every weight is 0: nothing to score with", path);
    double threshold = mg_config_double(cfg, "matcher", "threshold");
    double material_change = mg_config_double(cfg, "matcher", "material_change");
    char where[512];
    if (threshold > 0 && material_change >= threshold)
        return mg_fail(
            err, errlen,
            "%s: [matcher] material_change = %g: must be below threshold = %g, or a proposed pair is "
            "never retired for its score",
            mg_config_where(cfg, "matcher", "material_change", where, sizeof where), material_change,
            threshold);
    long long instance = mg_config_int(cfg, "matcher", "instance");
    long long instances = mg_config_int(cfg, "matcher", "instances");
    if (instances > 1 && instance >= instances)
        return mg_fail(err, errlen, "%s: [matcher] instance = %lld: must be below instances = %lld",
                       mg_config_where(cfg, "matcher", "instance", where, sizeof where), instance, instances);
    return 0;
}

int mg_gateway_listen_parse(const char *listen, char *host, size_t hostlen, int *port) {
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen) return -1;
    const char *h = listen, *hend = colon;
    if (*h == '[') {
        if (hend[-1] != ']') return -1;
        h++;
        hend--;
    }
    if (hend <= h || (size_t)(hend - h) >= hostlen) return -1;
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    const char *digits = colon + 1; /* digits only: strtol would also take a sign and blanks */
    size_t n = strspn(digits, "0123456789");
    if (n == 0 || n > 5 || digits[n] != '\0') return -1;
    long p = strtol(digits, NULL, 10);
    if (p < 1 || p > 65535) return -1;
    *port = (int)p;
    return 0;
}

int mg_gateway_config_check(const mg_config_t *cfg, char *err, size_t errlen) {
    const char *listen = mg_config_str(cfg, "gateway", "listen");
    char host[256];
    int port;
    char where[512];
    mg_config_where(cfg, "gateway", "listen", where, sizeof where);
    if (mg_gateway_listen_parse(listen, host, sizeof host, &port) != 0)
        return mg_fail(err, errlen, "%s: [gateway] listen = \"%s\": expected HOST:PORT", where, listen);
    if (!mg_config_host_is_loopback(host) && !mg_config_bool(cfg, "gateway", "allow_plain_http_remote"))
        return mg_fail(
            err, errlen,
            "%s: [gateway] listen = %s: refusing plain HTTP beyond loopback (tokens would travel in clear): "
            "listen on 127.0.0.1 behind a TLS proxy, or set [gateway] allow_plain_http_remote = true",
            where, listen);
    const char *staff_network = mg_config_str(cfg, "gateway", "staff_network");
    if (!mg_id_is_valid(staff_network))
        return mg_fail(err, errlen, "%s: [gateway] staff_network = \"%s\": not a valid id",
                       mg_config_where(cfg, "gateway", "staff_network", where, sizeof where), staff_network);
    return 0;
}
