/* bench_zmq.c -- the raw ZeroMQ ceiling (not a test): a DEALER and a ROUTER
 * that echoes every message back, in two threads of one process, over TCP
 * loopback, with BENCH_EVENT_BYTES messages and no Redis.
 *
 *   bench_zmq throughput SECONDS WINDOW   prints "acked=N seconds=S rate=R"
 *   bench_zmq latency COUNT               prints "p50_us=.. p99_us=.." */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "bench_common.h"

typedef struct {
    void *ctx;
    char endpoint[64];
} s_echo_t;

/* ROUTER echo until it receives an empty message. */
static void *s_echo(void *arg) {
    s_echo_t *e = arg;
    void *r = zmq_socket(e->ctx, ZMQ_ROUTER);
    int hwm = 1000000, linger = 0;
    zmq_setsockopt(r, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(r, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(r, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_bind(r, "tcp://127.0.0.1:*");
    size_t len = sizeof(e->endpoint);
    zmq_getsockopt(r, ZMQ_LAST_ENDPOINT, e->endpoint, &len);
    for (;;) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, r, 0) < 0 || zmq_msg_recv(&body, r, 0) < 0) break;
        int stop = zmq_msg_size(&body) == 0;
        zmq_msg_send(&id, r, ZMQ_SNDMORE);
        zmq_msg_send(&body, r, 0);
        if (stop) break;
    }
    zmq_close(r);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: bench_zmq throughput SECONDS WINDOW | latency COUNT\n");
        return 2;
    }
    s_echo_t e = {.ctx = zmq_ctx_new()};
    e.endpoint[0] = '\0';
    pthread_t th;
    pthread_create(&th, NULL, s_echo, &e);
    while (!__atomic_load_n(&e.endpoint[0], __ATOMIC_SEQ_CST)) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    void *d = zmq_socket(e.ctx, ZMQ_DEALER);
    int hwm = 1000000, linger = 0;
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(d, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_connect(d, e.endpoint);
    char payload[BENCH_EVENT_BYTES];
    memset(payload, 'x', sizeof(payload));
    char buf[BENCH_EVENT_BYTES + 1];
    int rc = 0;
    if (strcmp(argv[1], "throughput") == 0 && argc == 4) {
        double seconds = atof(argv[2]);
        int window = atoi(argv[3]), inflight = 0;
        uint64_t acked = 0, t0 = bench_now_ns(), stop = t0 + (uint64_t)(seconds * 1e9);
        int sending = 1;
        while (sending || inflight > 0) {
            if (sending && bench_now_ns() >= stop) sending = 0;
            while (sending && inflight < window && zmq_send(d, payload, sizeof(payload), ZMQ_DONTWAIT) >= 0)
                inflight++;
            zmq_pollitem_t item = {d, 0, ZMQ_POLLIN, 0};
            if (zmq_poll(&item, 1, 2000) <= 0) {
                rc = 1;
                break;
            }
            while (zmq_recv(d, buf, sizeof(buf), ZMQ_DONTWAIT) >= 0) {
                acked++;
                inflight--;
            }
        }
        double elapsed = (double)(bench_now_ns() - t0) / 1e9;
        printf("acked=%" PRIu64 " bad=0 seconds=%.3f rate=%.0f\n", acked, elapsed, (double)acked / elapsed);
    } else if (strcmp(argv[1], "latency") == 0) {
        long count = atol(argv[2]);
        uint64_t *samples = calloc((size_t)count, sizeof(*samples));
        for (long i = -100; i < count; i++) {
            uint64_t a = bench_now_ns();
            zmq_send(d, payload, sizeof(payload), 0);
            zmq_recv(d, buf, sizeof(buf), 0);
            if (i >= 0) samples[i] = bench_now_ns() - a;
        }
        printf("count=%ld bad=0 p50_us=%.1f p99_us=%.1f\n", count, bench_quantile_us(samples, (size_t)count, 0.5),
               bench_quantile_us(samples, (size_t)count, 0.99));
        free(samples);
    } else {
        rc = 2;
    }
    zmq_send(d, "", 0, 0); /* stops the echo thread */
    pthread_join(th, NULL);
    zmq_close(d);
    zmq_ctx_term(e.ctx);
    return rc;
}
