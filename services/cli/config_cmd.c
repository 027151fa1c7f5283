/* config_cmd.c -- `maillage config defaults` and `maillage config check FILE`.
 *
 * `defaults` prints the documented default configuration, the source of
 * config/maillage.conf. `check` loads a file the way every daemon does (so
 * unknown keys, bad values and repeated keys are reported with FILE:LINE),
 * then runs the checks the daemons make at start-up with the same shared
 * functions: for every daemon the taxonomy and the commune table it names,
 * [log] level and [redis] (URL, user, password_file readable by its owner
 * only); the broker's own (its network id, its endpoints beyond loopback,
 * its CURVE key and allow-list); the matcher's and the gateway's settings;
 * for the daemons that connect to the broker, the [curve] client keys (or
 * MAILLAGE_CLIENT_KEY / MAILLAGE_SERVER_KEY, as they read them); the
 * notifier's settings and [staff.*] sections, its smtp_password_file and its
 * templates. --daemon limits the checks to the daemons a machine runs. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "maillage/curve.h"
#include "maillage/daemon_config.h"
#include "maillage/mem.h"
#include "maillage/notifier_config.h"
#include "maillage/redis.h"

enum { S_BROKER = 1, S_MATCHER = 2, S_NOTIFIER = 4, S_GATEWAY = 8, S_ALL = 15 };
static const char *const s_daemon_names[] = {"broker", "matcher", "notifier", "gateway"};
#define S_DAEMONS (sizeof s_daemon_names / sizeof *s_daemon_names)

/* The daemons named in "matcher,notifier" added to `*mask`. Returns 0, -1
 * for an unknown name. */
static int s_daemons_parse(const char *list, int *mask) {
    char *copy = mg_strdup(list), *save = NULL;
    int rc = 0;
    for (char *name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        size_t i = 0;
        while (i < S_DAEMONS && strcmp(name, s_daemon_names[i]) != 0)
            i++;
        if (i == S_DAEMONS)
            rc = -1;
        else
            *mask |= 1 << i;
    }
    free(copy);
    return *mask ? rc : -1;
}

/* The notifier's start-up checks beyond its schema. */
static int s_check_notifier(const mg_config_t *cfg, const mg_taxonomy_t *tax, const mg_communes_t *communes,
                            char *err, size_t errlen) {
    if (mg_notifier_config_check(cfg, tax, communes, err, errlen) != 0) return -1;
    const char *smtp_pw = mg_config_str(cfg, "notifier", "smtp_password_file");
    if (*smtp_pw) {
        char *secret = mg_config_read_secret("[notifier] smtp_password_file", smtp_pw, err, errlen);
        if (!secret) return -1;
        explicit_bzero(secret, strlen(secret));
        free(secret);
    }
    mg_template_file_t templates[MG_NOTIFIER_KINDS];
    if (mg_notifier_templates_load(cfg, templates, err, errlen) != 0) return -1;
    for (int k = 0; k < MG_NOTIFIER_KINDS; k++)
        mg_template_file_clear(&templates[k]);
    return 0;
}

/* What the daemons of `mask` would refuse at start-up beyond the schema.
 * Returns 0, or -1 with the reason in `err` and, in `*refuser`, the name of
 * the daemon whose own check refused ("matcher, notifier and gateway" for
 * their client keys; NULL for a check all of them make). */
static int s_check_startup(const mg_config_t *cfg, const mg_taxonomy_t *tax, const mg_communes_t *communes,
                           const char *path, int mask, const char **refuser, char *err, size_t errlen) {
    *refuser = NULL;
    mg_log_level_t level;
    if (mg_daemon_log_level(cfg, &level, err, errlen) != 0) return -1;
    mg_redis_options_t redis;
    if (mg_redis_options_from_config(cfg, &redis, err, errlen) != 0) return -1;
    mg_redis_options_clear(&redis);
    if (mask & ~S_BROKER) {
        /* Every daemon but the broker loads the client keys at start
         * (mg_daemon_main()), the environment's first. */
        int curve = mg_curve_client_setup(cfg, getenv("MAILLAGE_CLIENT_KEY"), getenv("MAILLAGE_SERVER_KEY"),
                                          err, errlen);
        mg_curve_client_reset();
        if (curve != 0) {
            *refuser = "matcher, notifier and gateway";
            return -1;
        }
    }
    if ((mask & S_BROKER) && mg_broker_config_check(cfg, err, errlen) != 0)
        *refuser = "broker";
    else if ((mask & S_MATCHER) && mg_matcher_config_check(cfg, path, err, errlen) != 0)
        *refuser = "matcher";
    else if ((mask & S_GATEWAY) && mg_gateway_config_check(cfg, err, errlen) != 0)
        *refuser = "gateway";
    else if ((mask & S_NOTIFIER) && s_check_notifier(cfg, tax, communes, err, errlen) != 0)
        *refuser = "notifier";
    return *refuser ? -1 : 0;
}

static void s_usage(FILE *out)
{
    fputs("Usage : maillage config defaults\n"
          "        maillage config check [--daemon NOM[,NOM...]] FICHIER\n"
          "\n"
          "  defaults        affiche chaque clé de configuration avec sa valeur par défaut et\n"
          "                  sa documentation (en anglais, comme le fichier)\n"
          "  check FICHIER   vérifie FICHIER comme les démons le liraient (syntaxe, clés,\n"
          "                  valeurs, catégories, table des communes, et ce qu'ils vérifient au\n"
          "                  démarrage : [log] level, [redis] password_file, le network du broker,\n"
          "                  ses points d'accès hors boucle locale et ses fichiers de clés CURVE,\n"
          "                  les réglages du matcher et de la passerelle, les clés client [curve]\n"
          "                  (ou MAILLAGE_CLIENT_KEY et MAILLAGE_SERVER_KEY), les réglages du\n"
          "                  notifier, les canaux et adresses [staff.*], smtp_password_file, les\n"
          "                  modèles) ; affiche une ligne et sort avec 0 si le fichier est valide.\n"
          "                  Ses messages sont en anglais, comme ceux des démons (« Error: »)\n"
          "  --daemon        seulement les vérifications de ces démons (broker, matcher,\n"
          "                  notifier, gateway), ceux que cette machine fait tourner ; par\n"
          "                  défaut : les quatre\n",
          out);
}

int cli_cmd_config(int argc, char **argv, cli_settings_t *settings)
{
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'}, {"daemon", required_argument, NULL, 'd'}, {NULL, 0, NULL, 0}};
    int opt, mask = 0;
    char err[512];
    (void)settings;

    while ((opt = cli_getopt("config", argc, argv, "h", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        if (opt == 'h') {
            s_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (opt == 'd' && s_daemons_parse(optarg, &mask) == 0) continue;
        if (opt == 'd')
            cli_error("config",
                      "--daemon %s : attendu broker, matcher, notifier ou gateway (séparés par des virgules)",
                      optarg);
        else
            s_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    int selected = mask != 0;
    if (!selected) mask = S_ALL;
    const char *action = optind < argc ? argv[optind] : NULL;
    if (action && strcmp(action, "defaults") == 0 && argc - optind == 1 && !selected) {
        mg_config_write_defaults(stdout);
        return CLI_EXIT_OK;
    }
    if (!action || strcmp(action, "check") != 0 || argc - optind != 2) {
        cli_error("config", "attendu : defaults ou check FICHIER (voir « maillage config --help »)");
        return CLI_EXIT_USAGE;
    }
    const char *path = argv[optind + 1];
    mg_config_t *cfg = mg_config_load(path, err, sizeof err);
    if (!cfg) {
        cli_error("config", "%s", err);
        return CLI_EXIT_FAIL;
    }
    int rc = CLI_EXIT_FAIL;
    mg_taxonomy_t *tax = mg_taxonomy_new(cfg, err, sizeof err);
    if (!tax) {
        cli_error("config", "%s: %s", path, err);
        goto done;
    }
    mg_communes_t *communes = mg_communes_load(mg_config_str(cfg, "data", "communes_file"), err, sizeof err);
    if (!communes) {
        cli_error("config", "%s: [data] communes_file: %s", path, err);
        goto done;
    }
    const char *refuser;
    if (s_check_startup(cfg, tax, communes, path, mask, &refuser, err, sizeof err) != 0) {
        if (refuser && strchr(refuser, ' '))
            cli_error("config",
                      "%s would not start: %s (each reads the key of its unit's MAILLAGE_CLIENT_KEY first: "
                      "check each as it runs, with --daemon NAME and that variable, SECURITY.md)",
                      refuser, err);
        else if (refuser && !selected)
            cli_error("config",
                      "maillage-%s would not start: %s (on a machine that runs no %s, name the daemons "
                      "it runs with --daemon)",
                      refuser, err, refuser);
        else if (refuser)
            cli_error("config", "maillage-%s would not start: %s", refuser, err);
        else
            cli_error("config", "%s", err);
        mg_communes_destroy(&communes);
        goto done;
    }
    printf("%s: OK (%zu categories, %zu communes)\n", path, mg_taxonomy_count(tax), mg_communes_count(communes));
    mg_communes_destroy(&communes);
    rc = CLI_EXIT_OK;
done:
    mg_taxonomy_destroy(&tax);
    mg_config_destroy(&cfg);
    return rc;
}
