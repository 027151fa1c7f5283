/* main.c -- `maillage`, the command-line client of Maillage: global options,
 * --help, --version, and dispatch to one file per command group.
 *
 * The CLI speaks the public protocol like any network system would (ZeroMQ
 * ingest and fan-out, the journal in Redis), so whatever it can do, an
 * integrator can do from another language. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "maillage/log.h"

volatile int cli_interrupted = 0;

static void s_on_signal(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_stdout_closed(void) {
    return ferror(stdout) != 0;
}

void cli_sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !cli_interrupted) {
    }
}

void cli_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "maillage%s%s: ", command ? " " : "", command ? command : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char s_usage[] =
    "Usage : maillage [OPTIONS] COMMANDE [ARGUMENTS]\n"
    "\n"
    "Le client en ligne de commande de Maillage, le réseau d'événements de la CRESS.\n"
    "\n"
    "Commandes :\n"
    "  emit [FICHIER]       envoie des événements (enveloppes JSON proto3, une par ligne) et\n"
    "                       affiche chaque accusé de réception\n"
    "  tail [SUJET...]      affiche en direct les événements des types choisis (lignes JSON ou\n"
    "                       texte en français)\n"
    "  journal              relit le journal (lignes JSON, texte en français, ou un bilan)\n"
    "  dlq [list|show ID|replay ID]\n"
    "                       examine et réinjecte les lettres mortes (entrées refusées,\n"
    "                       événements abandonnés)\n"
    "  consumers [list|forget NOM]\n"
    "                       consommateurs enregistrés : position, retard, événements en attente\n"
    "  staff [list|show ID|add ID --name N ...|set ID CLÉ VALEUR|remove ID|reset ID]\n"
    "                       les chargé·e·s de mission qui reçoivent les notifications, et leur\n"
    "                       périmètre\n"
    "  inbox STAFF [--unread] [--mark-read ID]\n"
    "                       les notifications d'un·e chargé·e de mission, en français\n"
    "  notifications [--failed|--pending]\n"
    "                       e-mails et webhooks abandonnés, ou en attente\n"
    "  up --dir DIR         démarre la pile embarquée (redis-server et chaque démon) dans DIR\n"
    "  down --dir DIR       arrête la pile démarrée par `up`\n"
    "  config defaults      affiche la configuration par défaut, documentée\n"
    "  config check FICHIER vérifie un fichier de configuration\n"
    "  keygen --out DIR --name NOM\n"
    "                       crée une paire de clés CurveZMQ (NOM.key, NOM.pub ; voir SECURITY.md)\n"
    "  forget STRUCTURE_ID [--yes]\n"
    "                       efface partout les données personnelles d'une structure (son contact)\n"
    "  token [issue --network ID|--staff ID|list|revoke TOKEN_ID]\n"
    "                       jetons de la passerelle HTTP (affichés une fois, conservés hachés)\n"
    "\n"
    "Options (acceptées aussi après la commande) :\n"
    "  --config FICHIER     fichier de configuration (par défaut : $MAILLAGE_CONFIG, sinon les\n"
    "                       valeurs par défaut intégrées)\n"
    "  --redis URL          Redis du journal (par défaut : $MAILLAGE_REDIS_URL, sinon [redis] url)\n"
    "  --ingest ENDPOINT    point d'entrée du broker (par défaut : $MAILLAGE_INGEST, sinon\n"
    "                       [broker] ingest)\n"
    "  --fanout ENDPOINT    point de diffusion du broker (par défaut : $MAILLAGE_FANOUT, sinon\n"
    "                       [broker] fanout)\n"
    "  -h, --help           cette aide ; `maillage COMMANDE --help` (ou `maillage help COMMANDE`)\n"
    "                       pour celle d'une commande\n"
    "  -V, --version        affiche la version\n"
    "\n"
    "Réglages : les options l'emportent sur l'environnement, qui l'emporte sur le fichier\n"
    "de configuration. Après `maillage up --dir DIR`, `. DIR/endpoints.env; export MAILLAGE_CONFIG\n"
    "MAILLAGE_REDIS_URL MAILLAGE_INGEST MAILLAGE_FANOUT` dirige chaque commande vers cette\n"
    "pile, avec sa configuration (ses catégories, son équipe, ses clés [curve]...).\n"
    "\n"
    "Code de sortie : 0 fait ; 1 l'opération a échoué ; 2 erreur d'usage (une option, un\n"
    "argument ou une valeur de la ligne de commande refusé avant que rien ne soit fait).\n";

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv, cli_settings_t *settings);
} s_command_t;

static const s_command_t s_commands[] = {
    {"emit", cli_cmd_emit},     {"tail", cli_cmd_tail}, {"journal", cli_cmd_journal},
    {"dlq", cli_cmd_dlq},       {"up", cli_cmd_up},     {"down", cli_cmd_down},
    {"config", cli_cmd_config}, {"consumers", cli_cmd_consumers},
    {"staff", cli_cmd_staff},   {"inbox", cli_cmd_inbox}, {"notifications", cli_cmd_notifications},
    {"keygen", cli_cmd_keygen}, {"token", cli_cmd_token},
    {"forget", cli_cmd_forget},
};

/* The edit distance between a and b (insertions, deletions, substitutions,
 * swaps of two neighbours), for names shorter than 32 bytes; 99 beyond. */
static size_t s_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b), d[32][32];
    if (n >= 32 || m >= 32) return 99;
    for (size_t i = 0; i <= n; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

int main(int argc, char **argv)
{
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS,
                                            {"version", no_argument, NULL, 'V'},
                                            {NULL, 0, NULL, 0}};
    cli_settings_t settings = {0};
    int opt;

    /* The CLI's own diagnostics are single lines from cli_error(); library
     * logging is kept to warnings so it does not clutter command output. */
    mg_log_init("maillage", MG_LOG_WARN);
    /* A connection closed under a write (Redis restarted, the broker gone)
     * is an error the command reports, not a silent death (`tail` was
     * killed so). Output whose reader went away: cli_stdout_closed(). */
    signal(SIGPIPE, SIG_IGN);

    /* "+": stop at the command name, so its options are left for it. The
     * refusal is said in French below, not in getopt's English. */
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+hV", options, NULL)) != -1) {
        if (cli_settings_option(&settings, opt, optarg)) continue;
        switch (opt) {
        case 'h':
            fputs(s_usage, stdout);
            return CLI_EXIT_OK;
        case 'V':
            printf("maillage %s\n", MAILLAGE_VERSION);
            return CLI_EXIT_OK;
        default:
            cli_error(NULL, "option refusée « %s » : inconnue, ou sans sa valeur (voir « maillage --help »)",
                      optind > 0 && optind <= argc ? argv[optind - 1] : "?");
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(s_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[optind];
    char *help_argv[] = {NULL, "--help", NULL};
    if (strcmp(name, "help") == 0 && optind + 1 < argc && argv[optind + 1][0] != '-') {
        /* "maillage help staff": the command's help */
        name = help_argv[0] = argv[optind + 1];
        argc = 2;
        argv = help_argv;
        optind = 0;
    } else if (strcmp(name, "help") == 0) {
        fputs(s_usage, stdout);
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++) {
        if (strcmp(name, s_commands[i].name) == 0) {
            int sub_argc = argc - optind;
            char **sub_argv = argv + optind;
            optind = 0; /* re-initialise getopt for the command's own options */
            return s_commands[i].run(sub_argc, sub_argv, &settings);
        }
    }
    /* A typo ("staf", "tial"): the nearest command, if near enough. */
    const char *nearest = NULL;
    size_t nearest_d = 3;
    for (size_t i = 0; i < sizeof s_commands / sizeof s_commands[0]; i++) {
        size_t d = s_distance(name, s_commands[i].name);
        if (d < nearest_d && d < strlen(s_commands[i].name)) nearest = s_commands[i].name, nearest_d = d;
    }
    if (nearest)
        cli_error(NULL, "commande inconnue « %s » : vouliez-vous dire « %s » ? (voir « maillage --help »)",
                  name, nearest);
    else
        cli_error(NULL, "commande inconnue « %s » (voir « maillage --help »)", name);
    return CLI_EXIT_USAGE;
}
