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
    fputs("Usage : maillage keygen --out DIR --name NOM\n"
          "\n"
          "Crée une paire de clés CurveZMQ : DIR/NOM.key (secrète, mode 0600) et DIR/NOM.pub\n"
          "(publique). Refuse d'écraser des fichiers existants. Voir SECURITY.md.\n"
          "\n"
          "  --out DIR      répertoire des deux fichiers (il doit exister)\n"
          "  --name NOM     nom de la paire ([A-Za-z0-9._:-], par exemple l'identifiant du réseau\n"
          "                 ou « broker »)\n"
          "  -h, --help     cette aide\n",
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
        cli_error("keygen", "attendu : --out DIR --name NOM (voir « maillage keygen --help »)");
        return CLI_EXIT_USAGE;
    }
    if (!mg_curve_key_name_is_valid(name)) { /* a usage error, before any file is touched */
        cli_error("keygen",
                  "--name « %s » : attendu [A-Za-z0-9._:-], de 1 à %d caractères, sans « . » au début", name,
                  MG_ID_MAX);
        return CLI_EXIT_USAGE;
    }
    if (mg_curve_keygen(dir, name, err, sizeof err) != 0) {
        cli_error("keygen", "%s", err);
        return CLI_EXIT_FAIL;
    }
    printf("%s/%s.key (secrète, 0600) et %s/%s.pub écrites\n", dir, name, dir, name);
    return CLI_EXIT_OK;
}
