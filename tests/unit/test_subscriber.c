/* test_subscriber.c -- what mg_subscriber_new() refuses, and a subscriber's
 * life without any server: it waits for Redis, delivers nothing, and goes
 * away cleanly. (Delivery itself -- gaps, catch-up, checkpoints, parking --
 * needs a journal and a broker: tests/integration/test_delivery.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <zmq.h>

#include "maillage/redis.h"
#include "maillage/subscriber.h"

typedef struct {
    struct event_base *base;
    void *zmq;
    mg_redis_t *redis;
} s_fixture_t;

static int s_calls;

static void s_handler(mg_subscriber_t *sub, const mg_envelope_t *env, mg_delivery_t *delivery, void *arg) {
    (void)env;
    (void)arg;
    s_calls++;
    mg_subscriber_done(sub, delivery, NULL);
}

static int s_setup(void **state) {
    static s_fixture_t f;
    f.base = event_base_new();
    f.zmq = zmq_ctx_new();
    /* Port 1 on loopback: nobody listens, the connection never comes up. */
    mg_redis_options_t opts = {.host = "127.0.0.1", .port = 1, .connect_timeout_ms = 100,
                               .reconnect_min_ms = 50, .reconnect_max_ms = 100};
    f.redis = mg_redis_new(f.base, &opts, NULL, NULL);
    *state = &f;
    return f.base && f.zmq && f.redis ? 0 : -1;
}

static int s_teardown(void **state) {
    s_fixture_t *f = *state;
    mg_redis_destroy(&f->redis);
    zmq_ctx_term(f->zmq);
    event_base_free(f->base);
    return 0;
}

static mg_subscriber_t *s_new(s_fixture_t *f, const char *name, const char *const *topics, char *err,
                              size_t errlen) {
    mg_subscriber_options_t opts = {.name = name, .fanout = "tcp://127.0.0.1:1", .topics = topics};
    return mg_subscriber_new(f->base, f->zmq, f->redis, &opts, s_handler, NULL, err, errlen);
}

static void names_that_cannot_be_redis_keys_are_refused(void **state) {
    s_fixture_t *f = *state;
    char err[256];
    const char *bad[] = {"", "with space", "a/b", "x{y}", "1234567890123456789012345678901234567890123456789012345678901234567"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_null(s_new(f, bad[i], NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "consumer name"));
    }
}

static void topics_must_be_type_prefixes(void **state) {
    s_fixture_t *f = *state;
    char err[256];
    const char *const bad[] = {"need.", "", NULL};
    assert_null(s_new(f, "matcher", bad, err, sizeof(err)));
    assert_non_null(strstr(err, "topic"));
    const char *const upper[] = {"Need.", NULL};
    assert_null(s_new(f, "matcher", upper, err, sizeof(err)));
    const char *const good[] = {"need.", "offer.published", "collective_need.", NULL};
    mg_subscriber_t *sub = s_new(f, "matcher", good, err, sizeof(err));
    assert_non_null(sub);
    mg_subscriber_destroy(&sub);
    assert_null(sub);
}

static void without_redis_it_waits_and_delivers_nothing(void **state) {
    s_fixture_t *f = *state;
    char err[256];
    s_calls = 0;
    mg_subscriber_t *sub = s_new(f, "probe-1", NULL, err, sizeof(err));
    assert_non_null(sub);
    struct timeval tv = {0, 300000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    assert_int_equal(s_calls, 0);
    assert_int_equal(mg_subscriber_position(sub), 0);
    assert_int_equal(mg_subscriber_is_live(sub), 0);
    mg_subscriber_stats_t st;
    mg_subscriber_stats(sub, &st);
    assert_int_equal(st.delivered + st.journal_reads + st.checkpoints, 0);
    mg_subscriber_flush(sub, NULL, NULL); /* no callback: fine too */
    mg_subscriber_destroy(&sub);
    mg_subscriber_destroy(&sub); /* NULL is fine */
}

static void s_on_flushed(mg_subscriber_t *sub, void *arg) {
    (void)sub;
    (*(int *)arg)++;
}

static void flush_without_redis_calls_back_at_once(void **state) {
    s_fixture_t *f = *state;
    char err[256];
    mg_subscriber_t *sub = s_new(f, "probe-2", NULL, err, sizeof(err));
    assert_non_null(sub);
    int flushed = 0;
    mg_subscriber_flush(sub, s_on_flushed, &flushed);
    assert_int_equal(flushed, 1);
    mg_subscriber_destroy(&sub);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(names_that_cannot_be_redis_keys_are_refused),
        cmocka_unit_test(topics_must_be_type_prefixes),
        cmocka_unit_test(without_redis_it_waits_and_delivers_nothing),
        cmocka_unit_test(flush_without_redis_calls_back_at_once),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
