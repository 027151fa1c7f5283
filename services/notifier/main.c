/* main.c -- maillage-notifier: its description and its lifecycle callbacks;
 * the command line, configuration, loop and signals are mg_daemon_main()'s. */
#include "maillage/daemon.h"
#include "notifier.h"

static void *s_create(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen) {
    return mg_notifier_new(base, cfg, err, errlen);
}

static void s_shutdown(void *notifier) {
    mg_notifier_shutdown(notifier);
}

static void s_destroy(void *notifier) {
    mg_notifier_t *n = notifier;
    mg_notifier_destroy(&n);
}

int main(int argc, char **argv) {
    static const mg_daemon_t notifier = {
        .name = "notifier",
        .about = "Tells the chamber's staff, in French, about the opportunities in their scope\n"
                 "(match.found, collective_need.detected, cooperation.*, member.joined, needs\n"
                 "without an answer), read from [broker] fanout and the journal: web inbox in\n"
                 "Redis, e-mail (SMTP) and chat webhooks, each once, with retries, daily digests\n"
                 "and quiet hours. Staff are the [staff.<id>] sections and `maillage staff`.\n",
        .stop = "sends in flight are awaited and the checkpoint is saved first",
        .connects_to_broker = 1,
        .create = s_create,
        .shutdown = s_shutdown,
        .destroy = s_destroy,
    };
    return mg_daemon_main(argc, argv, &notifier);
}
