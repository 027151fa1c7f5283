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
    "Usage: maillage [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "The command-line client of Maillage, the event backbone of the ESS chamber.\n"
    "\n"
    "Commands:\n"
    "  emit [FILE]          send events (proto3 JSON envelopes, one per line) and print each ack\n"
    "  tail [TOPIC...]      print live events of the chosen types (JSON lines or French text)\n"
    "  journal              read the journal back (JSON lines, French text, or a summary)\n"
    "  dlq [list|show ID|replay ID]\n"
    "                       inspect and re-inject dead letters (rejected input, poison events)\n"
    "  consumers [list|forget NAME]\n"
    "                       registered consumers: checkpoint, lag, parked events\n"
    "  staff [list|show ID|add ID --name N ...|set ID KEY VALUE|remove ID|reset ID]\n"
    "                       the staff who receive notifications, and their scope\n"
    "  inbox STAFF [--unread] [--mark-read ID]\n"
    "                       a staff member's notifications, in French\n"
    "  notifications [--failed|--pending]\n"
    "                       e-mails and webhooks given up on, or waiting\n"
    "  up --dir DIR         start the embedded stack (redis-server and every daemon) in DIR\n"
    "  down --dir DIR       stop the stack started by `up`\n"
    "  config defaults      print the documented default configuration\n"
    "  config check FILE    check a configuration file\n"
    "  keygen --out DIR --name NAME\n"
    "                       make a CurveZMQ key pair (NAME.key, NAME.pub; see SECURITY.md)\n"
    "  forget STRUCTURE_ID [--yes]\n"
    "                       erase a structure's personal data (its contact) everywhere\n"
    "  token [issue --network ID|--staff ID|list|revoke TOKEN_ID]\n"
    "                       bearer tokens of the HTTP gateway (printed once, stored hashed)\n"
    "\n"
    "Options (also accepted after the command):\n"
    "  --config FILE        configuration file (default: $MAILLAGE_CONFIG, else built-in defaults)\n"
    "  --redis URL          Redis of the journal (default: $MAILLAGE_REDIS_URL, else [redis] url)\n"
    "  --ingest ENDPOINT    broker ingest endpoint (default: $MAILLAGE_INGEST, else [broker] ingest)\n"
    "  --fanout ENDPOINT    broker fan-out endpoint (default: $MAILLAGE_FANOUT, else [broker] fanout)\n"
    "  -h, --help           this help; `maillage COMMAND --help` (or `maillage help COMMAND`)\n"
    "                       for a command's\n"
    "  -V, --version        print the version\n"
    "\n"
    "Settings: flags win over the environment, which wins over the config file.\n"
    "After `maillage up --dir DIR`, `. DIR/endpoints.env; export MAILLAGE_CONFIG\n"
    "MAILLAGE_REDIS_URL MAILLAGE_INGEST MAILLAGE_FANOUT` points every command at that\n"
    "stack, with its configuration (its categories, staff, [curve] keys...).\n"
    "\n"
    "Exit status: 0 done; 1 the operation failed; 2 a usage error (an option, an\n"
    "argument or a value of the command line refused before anything was done).\n";

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

    /* "+": stop at the command name, so its options are left for it. */
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
            fputs("Try 'maillage --help'.\n", stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(s_usage, stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[optind];
    char *help_argv[] = {NULL, "--help", NULL};
    if (strcmp(name, "help") == 0 && optind + 1 < argc) { /* "maillage help staff": the command's help */
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
    cli_error(NULL, "unknown command '%s' (try 'maillage --help')", name);
    return CLI_EXIT_USAGE;
}
