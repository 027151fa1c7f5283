/* daemon.h -- what every Maillage daemon's main() does, once.
 *
 * Command line (--config FILE, --help, --version; anything else is an error),
 * configuration (one "Error: ..." line and a non-zero exit when it is wrong),
 * logging, the event loop, and signals delivered as libevent events (so their
 * handlers are ordinary callbacks): SIGTERM and SIGINT ask the service for a
 * clean stop, SIGHUP reloads the configuration file and applies the log level
 * (other keys apply at the next restart, and the log says so). SIGPIPE is
 * ignored: a peer closing its socket must be an error code, not a death.
 * A daemon's main.c is its description and four callbacks. */
#ifndef MAILLAGE_DAEMON_H
#define MAILLAGE_DAEMON_H

#include <stddef.h>

#include <event2/event.h>

#include "maillage/config.h"

typedef struct {
    const char *name;  /* "broker": the program is maillage-broker, log lines say "broker: " */
    const char *about; /* the help's description, English, lines ending with '\n' */
    const char *stop;  /* what a clean stop does, for the help ("the checkpoint is saved first") */
    /* Whether it connects to the broker (as producer or subscriber): only
     * then are the [curve] client keys loaded at start. The broker itself
     * connects to no broker and reads no client key. */
    int connects_to_broker;
    /* Create the service in `base` from `cfg` (borrowed until destroy). Returns
     * NULL with a reason in `err`. The loop runs until the service has no more
     * events, i.e. until it has finished stopping. */
    void *(*create)(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen);
    /* Begin a clean stop (may be called more than once). */
    void (*shutdown)(void *service);
    /* Free the service; accepts NULL. */
    void (*destroy)(void *service);
} mg_daemon_t;

/* Run `daemon` with the process' arguments. Returns the process exit code: 0
 * after a clean stop, 1 on a configuration or start-up error (reported as one
 * "Error: ..." line on stderr), 2 on a usage error. */
int mg_daemon_main(int argc, char **argv, const mg_daemon_t *daemon);

/* This process' id among the daemons sharing one Redis (places held, roll
 * calls): "<host>:<pid>:<machine>.<nonce>", <machine> 8 hex digits of a hash
 * of the boot id and the pid namespace (cloned hosts, or containers, may
 * share a name and pids), <nonce> random (two processes never share an id).
 * Made at the first call; static storage. */
const char *mg_process_id(void);

/* 1 if `other` (an id of mg_process_id()) names another process of this
 * machine that has ended (its pid is gone), 0 otherwise: another machine's
 * process, this one, an id of another form, or a process still running. */
int mg_process_ended(const char *other);

#endif
