/* test_zsock.c -- the edge-triggered ZMQ_FD rules of zsock.c, in a real
 * libevent loop with a PAIR over inproc:
 *   - more than batch_max queued messages are all delivered, batch by batch;
 *   - a send on the socket (which swallows the read edge) does not strand
 *     messages that arrived just before it;
 *   - pausing stops delivery, resuming delivers what arrived meanwhile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <event2/event.h>
#include <zmq.h>

#include "maillage/zsock.h"

typedef struct {
    void *ctx;
    void *watched; /* inside the loop, through mg_zsock */
    void *peer;    /* plain socket driven by the test */
    struct event_base *base;
    mg_zsock_t *zsock;
    size_t received;
    size_t batches;
    size_t current_batch, largest_batch;
    size_t expected; /* break the loop when received reaches it */
    int order_ok;
} s_fixture_t;

static void s_on_message(mg_zsock_t *zsock, zmq_msg_t *frames, size_t count, void *arg) {
    s_fixture_t *f = arg;
    (void)zsock;
    assert_int_equal(count, 1);
    unsigned n = 0;
    assert_int_equal(zmq_msg_size(&frames[0]), sizeof(n));
    memcpy(&n, zmq_msg_data(&frames[0]), sizeof(n));
    if (n != f->received) f->order_ok = 0;
    f->received++;
    f->current_batch++;
    if (f->received == f->expected) event_base_loopbreak(f->base);
}

static void s_on_batch(mg_zsock_t *zsock, void *arg) {
    s_fixture_t *f = arg;
    (void)zsock;
    f->batches++;
    if (f->current_batch > f->largest_batch) f->largest_batch = f->current_batch;
    f->current_batch = 0;
}

static int s_setup(void **state) {
    s_fixture_t *f = calloc(1, sizeof(*f));
    f->ctx = zmq_ctx_new();
    f->watched = zmq_socket(f->ctx, ZMQ_PAIR);
    f->peer = zmq_socket(f->ctx, ZMQ_PAIR);
    int hwm = 0; /* no limit: the test queues a lot before reading */
    zmq_setsockopt(f->watched, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(f->peer, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    assert_int_equal(zmq_bind(f->watched, "inproc://zsock-test"), 0);
    assert_int_equal(zmq_connect(f->peer, "inproc://zsock-test"), 0);
    f->base = event_base_new();
    f->order_ok = 1;
    *state = f;
    return 0;
}

static int s_teardown(void **state) {
    s_fixture_t *f = *state;
    mg_zsock_destroy(&f->zsock);
    assert_null(f->zsock);
    zmq_close(f->watched);
    zmq_close(f->peer);
    zmq_ctx_term(f->ctx);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void s_peer_send(s_fixture_t *f, unsigned n) {
    assert_int_equal(zmq_send(f->peer, &n, sizeof(n), 0), (int)sizeof(n));
}

/* Run the loop until `expected` messages arrived or 2 s passed. */
static void s_run(s_fixture_t *f, size_t expected) {
    f->expected = expected;
    struct timeval limit = {2, 0};
    event_base_loopexit(f->base, &limit);
    event_base_dispatch(f->base);
}

static void queued_beyond_batch_max_are_all_delivered(void **state) {
    s_fixture_t *f = *state;
    /* Queued before the socket is watched: the edge is long gone. */
    for (unsigned i = 0; i < 1000; i++)
        s_peer_send(f, i);
    f->zsock = mg_zsock_new(f->base, f->watched, 16, s_on_message, s_on_batch, f);
    assert_non_null(f->zsock);
    s_run(f, 1000);
    assert_int_equal(f->received, 1000);
    assert_true(f->order_ok);
    assert_true(f->largest_batch <= 16);
    assert_true(f->batches >= 1000 / 16);
}

/* A timer makes the peer send, then sends on the watched socket at once:
 * zmq_send processes the pending commands and swallows the read edge, so
 * without the re-check after send the messages would wait forever. */
static void s_send_after_arrival(evutil_socket_t fd, short what, void *arg) {
    s_fixture_t *f = arg;
    (void)fd;
    (void)what;
    for (unsigned i = 0; i < 5; i++)
        s_peer_send(f, (unsigned)f->received + i);
    const char *hello = "hello";
    const void *data[1] = {hello};
    size_t len[1] = {5};
    assert_int_equal(mg_zsock_send(f->zsock, data, len, 1), 0);
}

static void delivery_continues_after_a_send(void **state) {
    s_fixture_t *f = *state;
    f->zsock = mg_zsock_new(f->base, f->watched, 4, s_on_message, s_on_batch, f);
    assert_non_null(f->zsock);
    struct event *timer = evtimer_new(f->base, s_send_after_arrival, f);
    struct timeval soon = {0, 20000};
    evtimer_add(timer, &soon);
    s_run(f, 5);
    assert_int_equal(f->received, 5);
    assert_true(f->order_ok);
    /* And the peer got the message sent from the loop. */
    char buf[16];
    assert_int_equal(zmq_recv(f->peer, buf, sizeof(buf), ZMQ_DONTWAIT), 5);
    event_free(timer);
}

static void s_resume(evutil_socket_t fd, short what, void *arg) {
    s_fixture_t *f = arg;
    (void)fd;
    (void)what;
    assert_int_equal(f->received, 0); /* nothing while paused */
    mg_zsock_pause(f->zsock, 0);
}

static void paused_socket_delivers_after_resume(void **state) {
    s_fixture_t *f = *state;
    f->zsock = mg_zsock_new(f->base, f->watched, 8, s_on_message, s_on_batch, f);
    assert_non_null(f->zsock);
    mg_zsock_pause(f->zsock, 1);
    for (unsigned i = 0; i < 20; i++)
        s_peer_send(f, i);
    struct event *timer = evtimer_new(f->base, s_resume, f);
    struct timeval later = {0, 100000};
    evtimer_add(timer, &later);
    s_run(f, 20);
    assert_int_equal(f->received, 20);
    assert_true(f->order_ok);
    event_free(timer);
}

/* A message of 21 frames (bytes 0..20) comes as frames 0..14 and 20, then
 * the next message as usual. */
static void s_on_long_message(mg_zsock_t *zsock, zmq_msg_t *frames, size_t count, void *arg) {
    s_fixture_t *f = arg;
    if (f->received == 0) {
        assert_int_equal(count, MG_ZSOCK_MAX_FRAMES);
        for (size_t i = 0; i < count; i++) {
            assert_int_equal(zmq_msg_size(&frames[i]), 1);
            unsigned char want = i + 1 < count ? (unsigned char)i : 20;
            assert_int_equal(*(unsigned char *)zmq_msg_data(&frames[i]), want);
        }
        f->received++;
        return;
    }
    s_on_message(zsock, frames, count, arg);
}

static void too_many_frames_come_as_the_first_and_the_last_and_the_next_message_follows(void **state) {
    s_fixture_t *f = *state;
    for (unsigned char i = 0; i <= 20; i++)
        zmq_send(f->peer, &i, 1, i < 20 ? ZMQ_SNDMORE : 0);
    s_peer_send(f, 1);
    f->zsock = mg_zsock_new(f->base, f->watched, 8, s_on_long_message, s_on_batch, f);
    s_run(f, 2);
    assert_int_equal(f->received, 2);
    assert_true(f->order_ok);
}

/* Ends the batch after every third message. */
static void s_on_message_ending_batches(mg_zsock_t *zsock, zmq_msg_t *frames, size_t count, void *arg) {
    s_fixture_t *f = arg;
    s_on_message(zsock, frames, count, arg);
    if (f->received % 3 == 0) mg_zsock_end_batch(zsock);
}

static void a_batch_ends_when_asked(void **state) {
    s_fixture_t *f = *state;
    for (unsigned i = 0; i < 30; i++)
        s_peer_send(f, i);
    f->zsock = mg_zsock_new(f->base, f->watched, 16, s_on_message_ending_batches, s_on_batch, f);
    s_run(f, 30);
    assert_int_equal(f->received, 30);
    assert_true(f->order_ok);
    assert_int_equal(f->largest_batch, 3);
    assert_int_equal(f->batches, 10);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(queued_beyond_batch_max_are_all_delivered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(delivery_continues_after_a_send, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(paused_socket_delivers_after_resume, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            too_many_frames_come_as_the_first_and_the_last_and_the_next_message_follows, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(a_batch_ends_when_asked, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
