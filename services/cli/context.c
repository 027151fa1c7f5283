/* context.c -- connection settings of every CLI command.
 *
 * Precedence: command-line flags, then the environment (MAILLAGE_CONFIG,
 * MAILLAGE_REDIS_URL, MAILLAGE_INGEST, MAILLAGE_FANOUT, as written by
 * `maillage up` into DIR/endpoints.env; MAILLAGE_CLIENT_KEY and
 * MAILLAGE_SERVER_KEY for CURVE key files), then the config file, then the
 * built-in defaults. The config is always loaded (defaults when no file), so
 * the categories and the commune table come from the same place as the
 * daemons'. */
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "cli.h"
#include "maillage/curve.h"
#include "maillage/mem.h"
#include "maillage/redis.h"

const char cli_common_help[] =
    "  --config FILE        fichier de configuration (par défaut : $MAILLAGE_CONFIG, sinon les valeurs\n"
    "                       par défaut intégrées)\n"
    "  --redis URL          Redis du journal (par défaut : $MAILLAGE_REDIS_URL, sinon [redis] url)\n"
    "  --ingest ENDPOINT    point d'entrée du broker (par défaut : $MAILLAGE_INGEST, sinon [broker] ingest)\n"
    "  --fanout ENDPOINT    point de diffusion du broker (par défaut : $MAILLAGE_FANOUT, sinon\n"
    "                       [broker] fanout)\n"
    "  -h, --help           cette aide\n";

int cli_settings_option(cli_settings_t *settings, int opt, const char *arg)
{
    switch (opt) {
    case CLI_OPT_CONFIG: settings->config_path = arg; return 1;
    case CLI_OPT_REDIS: settings->redis_url = arg; return 1;
    case CLI_OPT_INGEST: settings->ingest = arg; return 1;
    case CLI_OPT_FANOUT: settings->fanout = arg; return 1;
    default: return 0;
    }
}

int cli_getopt(const char *command, int argc, char **argv, const char *shortopts,
               const struct option *longopts) {
    char opts[64];
    snprintf(opts, sizeof opts, ":%s", shortopts); /* ':' sets a missing value apart */
    opterr = 0;
    int opt = getopt_long(argc, argv, opts, longopts, NULL);
    if (opt != '?' && opt != ':') return opt;
    /* The word that failed, when it is a long option: an unknown one
     * (optopt 0), or a known one given or denied its value. Else a short
     * option (in a cluster, "-xq", optind has not moved past it). */
    const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    size_t len = strncmp(word, "--", 2) == 0 ? strcspn(word, "=") : 0;
    const struct option *known = NULL;
    for (const struct option *o = longopts; len && o->name; o++)
        if (strlen(o->name) == len - 2 && strncmp(o->name, word + 2, len - 2) == 0) known = o;
    int is_long = len && (optopt == 0 || (known && known->val == optopt));
    char name[64];
    if (is_long)
        snprintf(name, sizeof name, "%.*s", (int)len, word);
    else
        snprintf(name, sizeof name, "-%c", optopt > 0 && optopt < 128 ? optopt : '?');
    if (opt == '?' && is_long && known)
        cli_error(command, "%s : aucune valeur attendue (voir « maillage %s --help »)", name, command);
    else if (opt == ':')
        cli_error(command, "%s : une valeur est attendue (voir « maillage %s --help »)", name, command);
    else
        cli_error(command, "option inconnue « %s » (voir « maillage %s --help »)", name, command);
    return '?';
}

const char *cli_option_name(const struct option *longopts, int val) {
    for (const struct option *o = longopts; o->name; o++)
        if (o->val == val) return o->name;
    return "?";
}

/* A flag, else a non-empty environment variable, else NULL. */
static const char *s_pick(const char *flag, const char *env_name)
{
    if (flag && *flag) return flag;
    const char *env = getenv(env_name);
    return env && *env ? env : NULL;
}

/* Whether `endpoint` is a ZeroMQ endpoint the CLI can reach: tcp://host:port
 * or ipc://path. */
static int s_endpoint_is_valid(const char *endpoint) {
    if (strncmp(endpoint, "ipc://", 6) == 0) return endpoint[6] != '\0';
    if (strncmp(endpoint, "tcp://", 6) != 0) return 0;
    const char *colon = strrchr(endpoint + 6, ':');
    if (!colon || colon == endpoint + 6 || !colon[1]) return 0;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    return *end == '\0' && port > 0 && port <= 65535;
}

/* The options of the Redis at `url`, through the library's own parser and
 * checks, from a config of that URL and, with `cfg`, the file's other
 * [redis] keys (credentials, timeouts): the file's own URL, overridden by a
 * flag or the environment, is not checked. Returns 0; -1 when the options
 * are refused (reason in `err`, "[redis] url: ..." for the URL's spelling);
 * -2 when the URL does not even make a config line. */
static int s_redis_options(const char *url, const mg_config_t *cfg, mg_redis_options_t *opts, char *err,
                           size_t errlen) {
    char *text =
        cfg ? mg_asprintf("[redis]\nurl = %s\nuser = %s\npassword_file = %s\nconnect_timeout_ms = %lld\n"
                          "reconnect_min_ms = %lld\nreconnect_max_ms = %lld\n",
                          url, mg_config_str(cfg, "redis", "user"),
                          mg_config_str(cfg, "redis", "password_file"),
                          mg_config_int(cfg, "redis", "connect_timeout_ms"),
                          mg_config_int(cfg, "redis", "reconnect_min_ms"),
                          mg_config_int(cfg, "redis", "reconnect_max_ms"))
            : mg_asprintf("[redis]\nurl = %s\n", url);
    mg_config_t *url_cfg = mg_config_load_buffer("--redis", text, strlen(text), err, errlen);
    free(text);
    if (!url_cfg) return -2;
    int rc = mg_redis_options_from_config(url_cfg, opts, err, errlen);
    mg_config_destroy(&url_cfg);
    if (rc == 0) return 0;
    /* Without the "--redis:LINE: " that places the value in this made-up
     * file: it came from a flag, the environment or the user's file. */
    if (strncmp(err, "--redis:", 8) == 0) {
        const char *rest = err + strcspn(err, " ");
        if (*rest) rest++;
        memmove(err, rest, strlen(rest) + 1);
    }
    return -1;
}

/* The flags' values that are no URL or endpoint at all: a usage error. */
static int s_check_flags(const cli_settings_t *settings, const char *command) {
    const struct {
        const char *flag, *value;
    } endpoints[] = {{"--ingest", settings->ingest}, {"--fanout", settings->fanout}};
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        if (endpoints[i].value && *endpoints[i].value && !s_endpoint_is_valid(endpoints[i].value)) {
            cli_error(command,
                      "%s « %s » : ce n'est pas un point d'accès ZeroMQ (tcp://HÔTE:PORT ou ipc://CHEMIN)",
                      endpoints[i].flag, endpoints[i].value);
            return CLI_EXIT_USAGE;
        }
    }
    if (settings->redis_url && *settings->redis_url) {
        /* The URL's own spelling only: the policy that needs the file's
         * credentials (a password beyond loopback) is cli_redis_connect()'s. */
        char err[512];
        mg_redis_options_t opts;
        int rc = s_redis_options(settings->redis_url, NULL, &opts, err, sizeof err);
        if (rc == -2 || (rc == -1 && strncmp(err, "[redis] url: ", 13) == 0)) {
            const char *why = rc == -1 ? err + 13 : err;
            if (strstr(why, settings->redis_url)) /* it names the URL already */
                cli_error(command, "--redis : %s", why);
            else
                cli_error(command, "--redis « %s » : %s", settings->redis_url, why);
            return CLI_EXIT_USAGE;
        }
        if (rc == 0) mg_redis_options_clear(&opts);
    }
    return CLI_EXIT_OK;
}

int cli_context_init(cli_context_t *ctx, const cli_settings_t *settings, const char *command)
{
    char err[512];
    memset(ctx, 0, sizeof *ctx);
    int usage = s_check_flags(settings, command);
    if (usage != CLI_EXIT_OK) return usage;
    const char *path = s_pick(settings->config_path, "MAILLAGE_CONFIG");
    ctx->config = mg_config_load(path, err, sizeof err);
    if (!ctx->config) {
        cli_error(command, "%s", err);
        return CLI_EXIT_FAIL;
    }
    const char *v = s_pick(settings->redis_url, "MAILLAGE_REDIS_URL");
    ctx->redis_url = mg_strdup(v ? v : mg_config_str(ctx->config, "redis", "url"));
    v = s_pick(settings->ingest, "MAILLAGE_INGEST");
    ctx->ingest = mg_strdup(v ? v : mg_config_str(ctx->config, "broker", "ingest"));
    v = s_pick(settings->fanout, "MAILLAGE_FANOUT");
    ctx->fanout = mg_strdup(v ? v : mg_config_str(ctx->config, "broker", "fanout"));
    /* CURVE keys for the broker's sockets: the environment (key files) wins
     * over [curve]; with none, the CLI connects in plain text (loopback). */
    if (mg_curve_client_setup(ctx->config, s_pick(NULL, "MAILLAGE_CLIENT_KEY"), s_pick(NULL, "MAILLAGE_SERVER_KEY"),
                              err, sizeof err) != 0) {
        cli_error(command, "%s", err);
        cli_context_destroy(ctx);
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}

void cli_context_load_tables(cli_context_t *ctx, const char *command)
{
    char err[512];
    if (!ctx->taxonomy) {
        ctx->taxonomy = mg_taxonomy_new(ctx->config, err, sizeof err);
        if (!ctx->taxonomy) cli_error(command, "attention : catégories : %s", err);
    }
    if (!ctx->communes) {
        const char *path = mg_config_str(ctx->config, "data", "communes_file");
        ctx->communes = mg_communes_load(path, err, sizeof err);
        if (!ctx->communes) cli_error(command, "attention : table des communes : %s", err);
    }
    if (!ctx->names) ctx->names = cli_names_new();
}

void cli_context_destroy(cli_context_t *ctx)
{
    cli_names_destroy(&ctx->names);
    mg_communes_destroy(&ctx->communes);
    mg_taxonomy_destroy(&ctx->taxonomy);
    mg_config_destroy(&ctx->config);
    free(ctx->redis_url);
    free(ctx->ingest);
    free(ctx->fanout);
    memset(ctx, 0, sizeof *ctx);
}

redisContext *cli_redis_connect(const cli_context_t *ctx, const char *command)
{
    char err[512];
    mg_redis_options_t opts;
    redisContext *c = NULL;

    /* The URL may come from a flag or the environment. */
    if (s_redis_options(ctx->redis_url, ctx->config, &opts, err, sizeof err) != 0) {
        cli_error(command, "%s", err);
        return NULL;
    }

    c = mg_redis_connect_sync(&opts, err, sizeof err);
    /* The hint only helps when nothing answered; a refusal says what to fix. */
    if (!c && command && strncmp(err, "redis: cannot connect", 21) == 0)
        cli_error(command, "Redis ne répond pas : Maillage est-il démarré ? (%s)", err + 7);
    else if (!c && command)
        cli_error(command, "%s", err);
    mg_redis_options_clear(&opts);
    return c;
}

void *cli_handshake_monitor(void *zctx, void *socket) {
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://mg-cli-monitor-%p", socket);
    int linger = 0;
    if (zmq_socket_monitor(socket, endpoint,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) !=
        0)
        return NULL;
    void *monitor = zmq_socket(zctx, ZMQ_PAIR);
    if (!monitor) return NULL;
    if (zmq_setsockopt(monitor, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_connect(monitor, endpoint) != 0) {
        zmq_close(monitor);
        return NULL;
    }
    return monitor;
}

int cli_handshake_read(void *monitor, char *why, size_t whylen) {
    int fresh = 0;
    for (;;) {
        zmq_msg_t event, address;
        zmq_msg_init(&event);
        if (zmq_msg_recv(&event, monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&event);
            return fresh;
        }
        zmq_msg_init(&address);
        if (zmq_msg_more(&event)) zmq_msg_recv(&address, monitor, 0);
        zmq_msg_close(&address);
        uint16_t id = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&event) >= 6) {
            memcpy(&id, zmq_msg_data(&event), sizeof id);
            memcpy(&value, (const char *)zmq_msg_data(&event) + 2, sizeof value);
        }
        zmq_msg_close(&event);
        char failure[256];
        if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            if (whylen) why[0] = '\0';
            fresh = 0;
        } else if (mg_curve_handshake_failure(id, value, failure, sizeof failure)) {
            if (whylen && !why[0]) fresh = 1;
            snprintf(why, whylen, "%s", failure);
        }
    }
}

int cli_check_type_prefix(const char *command, char *prefix) {
    size_t count, n = strlen(prefix);
    if (n && prefix[n - 1] == '*') prefix[--n] = '\0';
    const mg_event_type_t *types = mg_event_types(&count);
    for (size_t i = 0; i < count; i++)
        if (strncmp(types[i].type, prefix, n) == 0) return 0;
    char known[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < count && used < sizeof known; i++)
        used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "", types[i].type);
    cli_error(command,
              "aucun type d'événement ne commence par « %s » (un type ou son début, comme need. ou "
              "offer.published : %s)",
              prefix, known);
    return -1;
}
