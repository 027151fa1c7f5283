/* config_cmd.c -- `maillage config defaults` and `maillage config check FILE`.
 *
 * `defaults` prints the documented default configuration, the source of
 * config/maillage.conf. `check` loads a file the way every daemon does (so
 * unknown keys, bad values and repeated keys are reported with FILE:LINE),
 * then runs the checks the daemons make at start-up with the same shared
 * functions: the taxonomy and the commune table it names, [log] level, [redis] (URL, user,
 * password_file readable by its owner only), the broker's (its network id,
 * its endpoints beyond loopback, its CURVE key and allow-list), the
 * matcher's and the gateway's settings, the [curve] client keys, the
 * notifier's settings and [staff.*] sections, its smtp_password_file and its
 * templates. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "maillage/curve.h"
#include "maillage/daemon_config.h"
#include "maillage/notifier_config.h"
#include "maillage/redis.h"

/* What a daemon would refuse at start-up beyond the schema. Returns 0, or -1
 * with the reason in `err`. */
static int s_check_startup(const mg_config_t *cfg, const char *path, char *err, size_t errlen) {
    mg_log_level_t level;
    if (mg_daemon_log_level(cfg, &level, err, errlen) != 0) return -1;
    mg_redis_options_t redis;
    if (mg_redis_options_from_config(cfg, &redis, err, errlen) != 0) return -1;
    mg_redis_options_clear(&redis);
    if (mg_broker_config_check(cfg, err, errlen) != 0) return -1;
    if (mg_matcher_config_check(cfg, path, err, errlen) != 0) return -1;
    if (mg_gateway_config_check(cfg, path, err, errlen) != 0) return -1;
    /* Every daemon loads the [curve] client keys at start (mg_daemon_main()). */
    int curve = mg_curve_client_setup(cfg, NULL, NULL, err, errlen);
    mg_curve_client_reset();
    if (curve != 0) return -1;
    if (mg_notifier_config_check(cfg, path, err, errlen) != 0) return -1;
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

static void s_usage(FILE *out)
{
    fputs("Usage: maillage config defaults\n"
          "       maillage config check FILE\n"
          "\n"
          "  defaults     print every configuration key with its default and documentation\n"
          "  check FILE   check FILE as the daemons would read it (syntax, keys, values,\n"
          "               categories, commune table, and what they check at start-up:\n"
          "               [log] level, [redis] password_file, the broker's network, endpoints beyond\n"
          "               loopback and CURVE key files, the matcher's and the gateway's\n"
          "               settings, [curve] client keys, the notifier's settings,\n"
          "               [staff.*] channels and addresses, smtp_password_file,\n"
          "               templates); prints one line and exits 0 if valid\n",
          out);
}

int cli_cmd_config(int argc, char **argv, cli_settings_t *settings)
{
    static const struct option options[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int opt;
    char err[512];
    (void)settings;

    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'h') {
            s_usage(stdout);
            return CLI_EXIT_OK;
        }
        s_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *action = optind < argc ? argv[optind] : NULL;
    if (action && strcmp(action, "defaults") == 0 && argc - optind == 1) {
        mg_config_write_defaults(stdout);
        return CLI_EXIT_OK;
    }
    if (!action || strcmp(action, "check") != 0 || argc - optind != 2) {
        cli_error("config", "expected 'defaults' or 'check FILE' (try 'maillage config --help')");
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
    if (s_check_startup(cfg, path, err, sizeof err) != 0) {
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
