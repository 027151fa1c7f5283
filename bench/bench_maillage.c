/* bench_maillage.c -- a producer for the broker's benchmark (not a test).
 *
 *   bench_maillage ENDPOINT throughput SECONDS WINDOW CONNS TAG
 *       CONNS DEALERs, WINDOW envelopes in flight in all, for SECONDS;
 *       prints "acked=N seconds=S rate=R" (ACCEPTED acks per second).
 *   bench_maillage ENDPOINT latency COUNT TAG
 *       one envelope at a time, COUNT times; prints "p50_us=.. p99_us=..".
 *
 * Every envelope is a valid need.reported of exactly BENCH_EVENT_BYTES bytes
 * with a unique event id: a template is packed once and only the digits of
 * its id are rewritten, so the producer costs as little CPU as possible (it
 * shares the machine with the broker and Redis). TAG keeps the ids of two
 * runs on one Redis apart. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "bench_common.h"
#include "maillage/envelope.h"

#define S_ID_DIGITS 16
#define S_MAX_CONNS 64

typedef struct {
    uint8_t bytes[BENCH_EVENT_BYTES];
    size_t len;
    size_t id_at; /* offset of the id's digits in bytes */
} s_template_t;

/* Pack a need.reported whose description pads the envelope to exactly
 * BENCH_EVENT_BYTES bytes. */
static int s_template(s_template_t *t, const char *tag) {
    char id[64], desc[BENCH_EVENT_BYTES];
    snprintf(id, sizeof(id), "bench-%s-%0*d", tag, S_ID_DIGITS, 0);
    Maillage__V1__Need need = MAILLAGE__V1__NEED__INIT;
    need.need_id = "need-bench-0001";
    need.structure_id = "asso-14-001";
    need.category = "locaux";
    need.title = "Local de stockage partagé";
    need.commune = "14118";
    Maillage__V1__NeedReported nr = MAILLAGE__V1__NEED_REPORTED__INIT;
    nr.need = &need;
    mg_envelope_t env = MAILLAGE__V1__ENVELOPE__INIT;
    env.event_id = id;
    env.type = "need.reported";
    env.occurred_at_ms = 1700000000000;
    env.payload_case = MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED;
    env.need_reported = &nr;
    for (size_t pad = 0; pad < sizeof(desc) - 1; pad++) {
        memset(desc, 'x', pad);
        desc[pad] = '\0';
        need.description = desc;
        size_t n = maillage__v1__envelope__get_packed_size(&env);
        if (n == BENCH_EVENT_BYTES) {
            t->len = maillage__v1__envelope__pack(&env, t->bytes);
            uint8_t *at = memmem(t->bytes, t->len, id, strlen(id));
            if (!at) return -1;
            t->id_at = (size_t)(at - t->bytes) + strlen(id) - S_ID_DIGITS;
            return 0;
        }
        if (n > BENCH_EVENT_BYTES) break;
    }
    return -1;
}

static void s_next(s_template_t *t, uint64_t n) {
    bench_fill_digits((char *)t->bytes + t->id_at, S_ID_DIGITS, n);
}

/* Returns 1 for an ACCEPTED ack, 0 otherwise (and says why once). */
static int s_check_ack(const void *data, size_t len) {
    mg_ack_t *ack = mg_ack_unpack(data, len);
    int ok = ack && ack->status == MAILLAGE__V1__ACK__STATUS__STATUS_ACCEPTED;
    static int told;
    if (!ok && !told) {
        told = 1;
        fprintf(stderr, "bench_maillage: unexpected ack: %s %s\n",
                ack ? mg_ack_status_name(ack->status) : "(unreadable)", ack ? ack->reason : "");
    }
    mg_ack_free(ack);
    return ok;
}

static void *s_dealer(void *ctx, const char *endpoint) {
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int hwm = 1000000, linger = 0;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_connect(s, endpoint) != 0) {
        fprintf(stderr, "bench_maillage: connect %s: %s\n", endpoint, zmq_strerror(errno));
        exit(1);
    }
    return s;
}

static int s_throughput(void *ctx, const char *endpoint, double seconds, int window, int conns,
                        const char *tag) {
    s_template_t t;
    if (s_template(&t, tag) != 0) return 1;
    if (conns < 1) conns = 1;
    if (conns > S_MAX_CONNS) conns = S_MAX_CONNS;
    void *socks[S_MAX_CONNS];
    zmq_pollitem_t items[S_MAX_CONNS];
    int inflight[S_MAX_CONNS] = {0};
    int per = window / conns > 0 ? window / conns : 1;
    for (int i = 0; i < conns; i++) {
        socks[i] = s_dealer(ctx, endpoint);
        items[i] = (zmq_pollitem_t){socks[i], 0, ZMQ_POLLIN, 0};
    }
    uint64_t next = 1, acked = 0, bad = 0;
    uint64_t t0 = bench_now_ns(), stop = t0 + (uint64_t)(seconds * 1e9), end = 0;
    int sending = 1, total_inflight = 0;
    while (sending || total_inflight > 0) {
        if (sending && bench_now_ns() >= stop) {
            sending = 0;
            end = bench_now_ns();
        }
        for (int i = 0; sending && i < conns; i++) {
            while (inflight[i] < per) {
                s_next(&t, next);
                if (zmq_send(socks[i], t.bytes, t.len, ZMQ_DONTWAIT) < 0) break;
                next++;
                inflight[i]++;
                total_inflight++;
            }
        }
        if (zmq_poll(items, conns, 2000) <= 0) {
            fprintf(stderr, "bench_maillage: no ack for 2 s (%d in flight)\n", total_inflight);
            return 1;
        }
        for (int i = 0; i < conns; i++) {
            /* Drain what is there without blocking. */
            for (;;) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, socks[i], ZMQ_DONTWAIT) < 0) {
                    zmq_msg_close(&m);
                    break;
                }
                if (!sending && end == 0) end = bench_now_ns();
                if (s_check_ack(zmq_msg_data(&m), zmq_msg_size(&m)))
                    acked++;
                else
                    bad++;
                zmq_msg_close(&m);
                inflight[i]--;
                total_inflight--;
            }
        }
    }
    /* The rate counts the acks received until the last one (the window
     * drains after the sending stopped). */
    uint64_t last = bench_now_ns();
    double elapsed = (double)(last - t0) / 1e9;
    printf("acked=%" PRIu64 " bad=%" PRIu64 " seconds=%.3f rate=%.0f\n", acked, bad, elapsed,
           (double)acked / elapsed);
    for (int i = 0; i < conns; i++)
        zmq_close(socks[i]);
    (void)end;
    return bad ? 1 : 0;
}

static int s_latency(void *ctx, const char *endpoint, long count, const char *tag) {
    s_template_t t;
    if (s_template(&t, tag) != 0) return 1;
    void *s = s_dealer(ctx, endpoint);
    uint64_t *samples = calloc((size_t)count, sizeof(*samples));
    long bad = 0;
    /* A few warm-up round trips (connection set-up, Redis script cache). */
    for (long i = -100; i < count; i++) {
        s_next(&t, (uint64_t)(i + 1000));
        uint64_t a = bench_now_ns();
        if (zmq_send(s, t.bytes, t.len, 0) < 0) return 1;
        zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 2000) <= 0) {
            fprintf(stderr, "bench_maillage: no ack for 2 s\n");
            return 1;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, s, 0);
        uint64_t b = bench_now_ns();
        if (!s_check_ack(zmq_msg_data(&m), zmq_msg_size(&m))) bad++;
        zmq_msg_close(&m);
        if (i >= 0) samples[i] = b - a;
    }
    double p50 = bench_quantile_us(samples, (size_t)count, 0.50);
    double p99 = bench_quantile_us(samples, (size_t)count, 0.99);
    printf("count=%ld bad=%ld p50_us=%.1f p99_us=%.1f\n", count, bad, p50, p99);
    free(samples);
    zmq_close(s);
    return bad ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: bench_maillage ENDPOINT throughput SECONDS WINDOW CONNS TAG\n"
                        "       bench_maillage ENDPOINT latency COUNT TAG\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    int rc = 2;
    if (strcmp(argv[2], "throughput") == 0 && argc == 7)
        rc = s_throughput(ctx, argv[1], atof(argv[3]), atoi(argv[4]), atoi(argv[5]), argv[6]);
    else if (strcmp(argv[2], "latency") == 0 && argc == 5)
        rc = s_latency(ctx, argv[1], atol(argv[3]), argv[4]);
    else
        fprintf(stderr, "bench_maillage: bad arguments\n");
    zmq_ctx_term(ctx);
    return rc;
}
