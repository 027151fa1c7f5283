/* main.c -- maillage-matcher: configuration, event loop, signals.
 *
 * Signals only reach the loop through libevent's evsignal events, so their
 * handlers run as ordinary callbacks: SIGTERM and SIGINT start a clean stop
 * (the checkpoint is saved first), SIGHUP reloads
 * the configuration file and applies the log level (other keys need a
 * restart, and the log says so). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "matcher.h"
#include "maillage/config.h"
#include "maillage/log.h"

typedef struct {
    struct event_base *base;
    mg_matcher_t *matcher;
    const char *config_path;
} s_main_t;

static void s_usage(FILE *out) {
    fprintf(out, "Usage: maillage-matcher [--config FILE]\n"
                 "\n"
                 "Keeps the open needs and offers of the territory in Redis (from member.*,\n"
                 "need.*, offer.*, cooperation.* and match.feedback, read from [broker] fanout\n"
                 "and the journal), matches them in both directions, and emits match.found,\n"
                 "collective_need.detected and expiry closures through [broker] ingest.\n"
                 "\n"
                 "Options:\n"
                 "  --config FILE   configuration file (INI); without it, the defaults\n"
                 "  --help          show this help and exit\n"
                 "  --version       show the version and exit\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the log level.\n");
}

/* Apply [log] level; 0 or -1 with a message in err. */
static int s_apply_log_level(const mg_config_t *cfg, char *err, size_t errlen) {
    const char *name = mg_config_str(cfg, "log", "level");
    mg_log_level_t level;
    if (mg_log_level_parse(name, &level) != 0) {
        const char *path = mg_config_path(cfg);
        snprintf(err, errlen, "%s: [log] level = \"%s\": expected debug, info, warn or error",
                 path ? path : "(defaults)", name);
        return -1;
    }
    mg_log_init("matcher", level);
    return 0;
}

static void s_on_stop(evutil_socket_t sig, short what, void *arg) {
    s_main_t *m = arg;
    (void)what;
    mg_info("matcher: %s received, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    mg_matcher_shutdown(m->matcher);
}

static void s_on_reload(evutil_socket_t sig, short what, void *arg) {
    s_main_t *m = arg;
    (void)sig;
    (void)what;
    char err[512];
    mg_config_t *cfg = mg_config_load(m->config_path, err, sizeof(err));
    if (!cfg) {
        mg_error("matcher: SIGHUP: configuration not reloaded: %s", err);
        return;
    }
    if (s_apply_log_level(cfg, err, sizeof(err)) != 0)
        mg_error("matcher: SIGHUP: %s", err);
    else
        mg_info("matcher: SIGHUP: log level reloaded (other settings apply at the next restart)");
    mg_config_destroy(&cfg);
}

int main(int argc, char **argv) {
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            s_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("maillage-matcher %s\n", MAILLAGE_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            config_path = argv[i] + 9;
        } else {
            fprintf(stderr, "Error: unknown argument \"%s\" (see maillage-matcher --help)\n", argv[i]);
            return 2;
        }
    }

    char err[512];
    mg_config_t *cfg = mg_config_load(config_path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    if (s_apply_log_level(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        mg_config_destroy(&cfg);
        return 1;
    }
    /* A peer closing its socket must be an error code, not a death. */
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    s_main_t m = {.config_path = config_path};
    struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
    m.base = event_base_new();
    if (!m.base) {
        fprintf(stderr, "Error: cannot create the event loop\n");
        goto out;
    }
    m.matcher = mg_matcher_new(m.base, cfg, err, sizeof(err));
    if (!m.matcher) {
        fprintf(stderr, "Error: %s\n", err);
        goto out;
    }
    sigterm = evsignal_new(m.base, SIGTERM, s_on_stop, &m);
    sigint = evsignal_new(m.base, SIGINT, s_on_stop, &m);
    sighup = evsignal_new(m.base, SIGHUP, s_on_reload, &m);
    if (!sigterm || !sigint || !sighup || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0 || evsignal_add(sighup, NULL) != 0) {
        fprintf(stderr, "Error: cannot install signal handlers\n");
        goto out;
    }
    if (event_base_dispatch(m.base) < 0) {
        mg_error("matcher: event loop failed");
        goto out;
    }
    rc = 0;
out:
    mg_matcher_destroy(&m.matcher);
    if (sigterm) event_free(sigterm);
    if (sigint) event_free(sigint);
    if (sighup) event_free(sighup);
    if (m.base) event_base_free(m.base);
    mg_config_destroy(&cfg);
    if (rc == 0) mg_info("matcher: stopped");
    return rc;
}
