/* main.c -- maillage-gateway: its description and its lifecycle callbacks;
 * the command line, configuration, loop and signals are mg_daemon_main()'s. */
#include <stdlib.h>

#include "gateway.h"
#include "maillage/daemon.h"

static void *s_create(struct event_base *base, const mg_config_t *cfg, char *err, size_t errlen) {
    return mg_gateway_new(base, cfg, err, errlen);
}

static void s_shutdown(void *gateway) {
    mg_gateway_shutdown(gateway);
}

static void s_destroy(void *gateway) {
    mg_gateway_t *gw = gateway;
    mg_gateway_destroy(&gw);
}

int main(int argc, char **argv) {
    static const mg_daemon_t gateway = {
        .name = "gateway",
        .about = "The HTTP/JSON door of Maillage ([gateway] listen): network systems POST events\n"
                 "(relayed to the broker on behalf of their token's network, answered once\n"
                 "journaled), staff read the territory's state, their inbox and a live stream,\n"
                 "and the staff web page is served. Tokens: `maillage token`.\n",
        .stop = "no new connections; requests in flight are answered, 503 after a grace",
        .connects_to_broker = 1,
        .create = s_create,
        .shutdown = s_shutdown,
        .destroy = s_destroy,
    };
    /* Each HTTP request makes evhttp switch its connection between reading
     * and writing; libevent's epoll changelist folds those switches into one
     * epoll_ctl per descriptor and loop turn (about a tenth of the CPU per
     * request). Safe here: nothing dup()s the descriptors it watches. An
     * operator's own setting wins. */
    setenv("EVENT_EPOLL_USE_CHANGELIST", "1", 0);
    return mg_daemon_main(argc, argv, &gateway);
}
