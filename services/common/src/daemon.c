/* daemon.c -- the common main() of the daemons; see daemon.h. */
#include "maillage/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maillage/clock.h"
#include "maillage/curve.h"
#include "maillage/daemon_config.h"
#include "maillage/log.h"

typedef struct {
    const mg_daemon_t *daemon;
    const char *config_path;
    void *service;
} s_run_t;

static void s_usage(const mg_daemon_t *d, FILE *out) {
    fprintf(out,
            "Usage: maillage-%s [--config FILE]\n"
            "\n"
            "%s"
            "\n"
            "Options:\n"
            "  --config FILE   configuration file (INI); without it, the defaults\n"
            "  --help          show this help and exit\n"
            "  --version       show the version and exit\n"
            "\n"
            "Environment: MAILLAGE_CLIENT_KEY and MAILLAGE_SERVER_KEY (key files) win over\n"
            "[curve] client_secret_key_file and server_public_key_file (SECURITY.md).\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop cleanly (%s), SIGHUP reloads the log level.\n",
            d->name, d->about, d->stop);
}

/* Apply [log] level; 0, or -1 with a message in err. */
static int s_apply_log_level(const mg_daemon_t *d, const mg_config_t *cfg, char *err, size_t errlen) {
    mg_log_level_t level;
    if (mg_daemon_log_level(cfg, &level, err, errlen) != 0) return -1;
    mg_log_init(d->name, level);
    return 0;
}

static void s_on_stop(evutil_socket_t sig, short what, void *arg) {
    s_run_t *run = arg;
    (void)what;
    mg_info("%s: %s received, stopping", run->daemon->name, sig == SIGINT ? "SIGINT" : "SIGTERM");
    run->daemon->shutdown(run->service);
}

static void s_on_reload(evutil_socket_t sig, short what, void *arg) {
    s_run_t *run = arg;
    const char *name = run->daemon->name;
    char err[512];
    (void)sig;
    (void)what;
    mg_config_t *cfg = mg_config_load(run->config_path, err, sizeof err);
    if (!cfg) {
        mg_error("%s: SIGHUP: configuration not reloaded: %s", name, err);
        return;
    }
    if (s_apply_log_level(run->daemon, cfg, err, sizeof err) != 0)
        mg_error("%s: SIGHUP: %s", name, err);
    else
        mg_info("%s: SIGHUP: log level reloaded (other settings apply at the next restart)", name);
    mg_config_destroy(&cfg);
}

int mg_daemon_main(int argc, char **argv, const mg_daemon_t *daemon) {
    s_run_t run = {.daemon = daemon};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(daemon, stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("maillage-%s %s\n", daemon->name, MAILLAGE_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            run.config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            run.config_path = argv[i] + 9;
        } else {
            fprintf(stderr, "Error: unknown argument \"%s\" (see maillage-%s --help)\n", argv[i],
                    daemon->name);
            return 2;
        }
    }

    char err[512];
    mg_config_t *cfg = mg_config_load(run.config_path, err, sizeof err);
    if (!cfg) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    if (s_apply_log_level(daemon, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        mg_config_destroy(&cfg);
        return 1;
    }
    /* The [curve] client keys, so the daemon's producer and subscriber
     * connect to a CURVE broker (nothing to do when none is configured, nor
     * for the broker, which connects to none).
     * The environment's key files win, as for the CLI: every program reads
     * the same file, and each daemon needs its own key (network id and
     * types: the gateway's relays, the matcher's match.found), which its
     * unit gives with Environment=MAILLAGE_CLIENT_KEY=... */
    const char *client_key = getenv("MAILLAGE_CLIENT_KEY"), *server_key = getenv("MAILLAGE_SERVER_KEY");
    if (daemon->connects_to_broker &&
        mg_curve_client_setup(cfg, client_key, server_key, err, sizeof err) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        mg_config_destroy(&cfg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
    struct event_base *base = event_base_new();
    if (!base) {
        fprintf(stderr, "Error: cannot create the event loop\n");
        goto out;
    }
    run.service = daemon->create(base, cfg, err, sizeof err);
    if (!run.service) {
        fprintf(stderr, "Error: %s\n", err);
        goto out;
    }
    sigterm = evsignal_new(base, SIGTERM, s_on_stop, &run);
    sigint = evsignal_new(base, SIGINT, s_on_stop, &run);
    sighup = evsignal_new(base, SIGHUP, s_on_reload, &run);
    if (!sigterm || !sigint || !sighup || evsignal_add(sigterm, NULL) != 0 || evsignal_add(sigint, NULL) != 0 ||
        evsignal_add(sighup, NULL) != 0) {
        fprintf(stderr, "Error: cannot install signal handlers\n");
        goto out;
    }
    if (event_base_dispatch(base) < 0) {
        mg_error("%s: event loop failed", daemon->name);
        goto out;
    }
    rc = 0;
out:
    daemon->destroy(run.service);
    if (sigterm) event_free(sigterm);
    if (sigint) event_free(sigint);
    if (sighup) event_free(sighup);
    if (base) event_base_free(base);
    mg_config_destroy(&cfg);
    if (rc == 0) mg_info("%s: stopped", daemon->name);
    return rc;
}

/* ---- the process' id ------------------------------------------------------------- */

const char *mg_process_id(void) {
    static char id[192];
    if (id[0]) return id;
    char host[64] = "?", boot[64] = "", ns[64] = "", ulid[MG_ULID_LEN + 1];
    gethostname(host, sizeof(host) - 1);
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        if (!fgets(boot, sizeof(boot), f)) boot[0] = '\0';
        fclose(f);
    }
    ssize_t len = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
    ns[len > 0 ? len : 0] = '\0';
    const char *parts[2] = {boot, ns};
    char machine[33];
    mg_hash_hex(parts, 2, machine);
    mg_ulid_new(ulid);
    snprintf(id, sizeof(id), "%s:%ld:%.8s.%s", host, (long)getpid(), machine, ulid + MG_ULID_LEN - 8);
    return id;
}

/* The parts of an id of mg_process_id(): 0, or -1 if it is not of that form. */
static int s_process_id_parse(const char *id, char host[64], long *pid, char machine[9]) {
    const char *last = strrchr(id, ':');
    if (!last || strlen(last + 1) < 10 || last[9] != '.') return -1;
    const char *p = last;
    while (p > id && p[-1] != ':')
        p--;
    if (p == id || (size_t)(p - 1 - id) >= 64) return -1;
    char *end;
    *pid = strtol(p, &end, 10);
    if (end != last || *pid <= 0) return -1;
    snprintf(host, 64, "%.*s", (int)(p - 1 - id), id);
    snprintf(machine, 9, "%.8s", last + 1);
    return 0;
}

int mg_process_ended(const char *other) {
    char host[64], my_host[64], machine[9], my_machine[9];
    long pid, my_pid;
    if (s_process_id_parse(other, host, &pid, machine) != 0 ||
        s_process_id_parse(mg_process_id(), my_host, &my_pid, my_machine) != 0 ||
        strcmp(host, my_host) != 0 || strcmp(machine, my_machine) != 0 || pid == my_pid)
        return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}
