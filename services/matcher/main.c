/* main.c -- maillage-matcher: its description and its lifecycle callbacks;
 * the command line, configuration, loop and signals are mg_daemon_main()'s. */
#include "maillage/daemon.h"
#include "matcher.h"

static void *s_create(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen) {
    return mg_matcher_new(base, cfg, err, errlen);
}

static void s_shutdown(void *matcher) {
    mg_matcher_shutdown(matcher);
}

static void s_destroy(void *matcher) {
    mg_matcher_t *m = matcher;
    mg_matcher_destroy(&m);
}

int main(int argc, char **argv) {
    static const mg_daemon_t matcher = {
        .name = "matcher",
        .about = "Keeps the open needs and offers of the territory in Redis (from member.*,\n"
                 "need.*, offer.*, cooperation.* and match.feedback, read from [broker] fanout\n"
                 "and the journal), matches them in both directions, and emits match.found,\n"
                 "collective_need.detected and expiry closures through [broker] ingest.\n",
        .stop = "the checkpoint is saved first",
        .connects_to_broker = 1,
        .create = s_create,
        .shutdown = s_shutdown,
        .destroy = s_destroy,
    };
    return mg_daemon_main(argc, argv, &matcher);
}
