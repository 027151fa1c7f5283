/* keygen.c -- `maillage keygen --out DIR --name NAME`: a CurveZMQ key pair.
 *
 * DIR/NAME.key holds the secret (mode 0600: the daemons refuse a key file
 * others can read), DIR/NAME.pub the public key to put in the broker's
 * allow-list ([broker] curve_clients_file) or to give to clients (the
 * broker's own). Existing files are never overwritten: losing a key in use
 * would lock a network out. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "maillage/curve.h"

static void s_usage(FILE *out)
{
    fputs("Usage: maillage keygen --out DIR --name NAME\n"
          "\n"
          "Make a CurveZMQ key pair: DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub\n"
          "(public). Refuses to overwrite existing files. See SECURITY.md.\n"
          "\n"
          "  --out DIR      directory of the two files (must exist)\n"
          "  --name NAME    name of the pair ([A-Za-z0-9._:-], e.g. the network id or \"broker\")\n"
          "  -h, --help     this help\n",
          out);
}

int cli_cmd_keygen(int argc, char **argv, cli_settings_t *settings)
{
    static const struct option options[] = {{"out", required_argument, NULL, 'o'},
                                            {"name", required_argument, NULL, 'n'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *dir = NULL, *name = NULL;
    char err[512];
    int opt;
    (void)settings;

    while ((opt = cli_getopt("keygen", argc, argv, "o:n:h", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        switch (opt) {
        case 'o': dir = optarg; break;
        case 'n': name = optarg; break;
        case 'h': s_usage(stdout); return CLI_EXIT_OK;
        default: s_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (!dir || !name || optind != argc) {
        cli_error("keygen", "expected --out DIR --name NAME (try 'maillage keygen --help')");
        return CLI_EXIT_USAGE;
    }
    if (!mg_curve_key_name_is_valid(name)) { /* a usage error, before any file is touched */
        cli_error("keygen",
                  "--name \"%s\": expected [A-Za-z0-9._:-], 1 to %d characters, not starting with '.'", name,
                  MG_ID_MAX);
        return CLI_EXIT_USAGE;
    }
    if (mg_curve_keygen(dir, name, err, sizeof err) != 0) {
        cli_error("keygen", "%s", err);
        return CLI_EXIT_FAIL;
    }
    printf("%s/%s.key (secret, 0600) and %s/%s.pub written\n", dir, name, dir, name);
    return CLI_EXIT_OK;
}
