/* main.c -- maillage-broker: its description and its lifecycle callbacks;
 * the command line, configuration, loop and signals are mg_daemon_main()'s. */
#include "broker.h"
#include "maillage/daemon.h"

static void *s_create(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen) {
    return mg_broker_new(base, cfg, err, errlen);
}

static void s_shutdown(void *broker) {
    mg_broker_shutdown(broker);
}

static void s_destroy(void *broker) {
    mg_broker_t *b = broker;
    mg_broker_destroy(&b);
}

int main(int argc, char **argv) {
    static const mg_daemon_t broker = {
        .name = "broker",
        .about = "Receives envelopes from producers (ZeroMQ ROUTER at [broker] ingest), validates\n"
                 "them, appends them to the journal in Redis, acknowledges them, and publishes\n"
                 "them to subscribers (ZeroMQ PUB at [broker] fanout).\n",
        .stop = "batches in flight are journaled and acknowledged first",
        .create = s_create,
        .shutdown = s_shutdown,
        .destroy = s_destroy,
    };
    return mg_daemon_main(argc, argv, &broker);
}
