/* test_metrics.c -- counters and gauges, their Prometheus rendering and the
 * HSET arguments the gateway aggregates from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/metrics.h"

static int s_reset(void **state) {
    (void)state;
    mg_metrics_reset();
    return 0;
}

static void counters_count_and_registering_twice_is_harmless(void **state) {
    (void)state;
    mg_metric_t *a = mg_metrics_counter("maillage_broker_events_accepted_total", "Events journaled.");
    mg_metric_t *b = mg_metrics_counter("maillage_broker_events_accepted_total", "Events journaled.");
    assert_ptr_equal(a, b);
    assert_int_equal(mg_metrics_count(), 1);
    mg_metrics_inc(a);
    mg_metrics_add(b, 41);
    assert_int_equal(mg_metrics_value(a), 42);
    mg_metrics_add(a, UINT64_C(1) << 40);
    assert_true(mg_metrics_value(a) == (UINT64_C(1) << 40) + 42);
    /* NULL handles are no-ops. */
    mg_metrics_inc(NULL);
    mg_metrics_add(NULL, 3);
    mg_metrics_set(NULL, 3);
    assert_int_equal(mg_metrics_value(NULL), 0);
}

static void gauges_go_up_and_down(void **state) {
    (void)state;
    mg_metric_t *g = mg_metrics_gauge("maillage_broker_redis_up", "1 when Redis is connected.");
    mg_metrics_set(g, 1);
    assert_int_equal(mg_metrics_value(g), 1);
    mg_metrics_set(g, 0);
    assert_int_equal(mg_metrics_value(g), 0);
    mg_metrics_add(g, 5);
    assert_int_equal(mg_metrics_value(g), 5);
    const char *name, *help;
    mg_metric_type_t type;
    uint64_t value;
    assert_int_equal(mg_metrics_at(0, &name, &help, &type, &value), 0);
    assert_string_equal(name, "maillage_broker_redis_up");
    assert_string_equal(help, "1 when Redis is connected.");
    assert_int_equal(type, MG_METRIC_GAUGE);
    assert_int_equal(value, 5);
    assert_int_equal(mg_metrics_at(1, &name, NULL, NULL, NULL), -1);
}

static void prometheus_text_groups_series_by_family(void **state) {
    (void)state;
    mg_metric_t *rej_a = mg_metrics_counter("maillage_broker_rejected_total{reason=\"invalid\"}",
                                            "Envelopes rejected, by reason.");
    mg_metric_t *up =
        mg_metrics_gauge("maillage_broker_redis_up", "1 when Redis is connected,\n0 otherwise \\ down.");
    mg_metric_t *rej_b = mg_metrics_counter("maillage_broker_rejected_total{reason=\"oversized\"}",
                                            "Envelopes rejected, by reason.");
    mg_metrics_add(rej_a, 3);
    mg_metrics_set(up, 1);
    mg_metrics_inc(rej_b);
    char *text = mg_metrics_render_prometheus();
    assert_string_equal(
        text, "# HELP maillage_broker_rejected_total Envelopes rejected, by reason.\n"
              "# TYPE maillage_broker_rejected_total counter\n"
              "maillage_broker_rejected_total{reason=\"invalid\"} 3\n"
              "maillage_broker_rejected_total{reason=\"oversized\"} 1\n"
              "# HELP maillage_broker_redis_up 1 when Redis is connected,\\n0 otherwise \\\\ down.\n"
              "# TYPE maillage_broker_redis_up gauge\n"
              "maillage_broker_redis_up 1\n");
    free(text);
}

static void an_empty_registry_renders_empty(void **state) {
    (void)state;
    char *text = mg_metrics_render_prometheus();
    assert_string_equal(text, "");
    free(text);
    mg_metrics_argv_t args;
    mg_metrics_hset_argv("maillage:metrics:broker", &args);
    assert_int_equal(args.argc, 0);
    mg_metrics_argv_free(&args);
}

static void hset_arguments_carry_every_series(void **state) {
    (void)state;
    mg_metrics_add(mg_metrics_counter("maillage_a_total", "A."), 7);
    mg_metrics_set(mg_metrics_gauge("maillage_b", "B."), UINT64_MAX);
    mg_metrics_argv_t args;
    mg_metrics_hset_argv("maillage:metrics:broker:1234", &args);
    assert_int_equal(args.argc, 6);
    assert_string_equal(args.argv[0], "HSET");
    assert_string_equal(args.argv[1], "maillage:metrics:broker:1234");
    assert_string_equal(args.argv[2], "maillage_a_total");
    assert_string_equal(args.argv[3], "7");
    assert_string_equal(args.argv[4], "maillage_b");
    assert_string_equal(args.argv[5], "18446744073709551615");
    for (int i = 0; i < args.argc; i++)
        assert_int_equal(args.argvlen[i], strlen(args.argv[i]));
    mg_metrics_argv_free(&args);
    assert_int_equal(args.argc, 0);
    assert_null(args.argv);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(counters_count_and_registering_twice_is_harmless, s_reset),
        cmocka_unit_test_setup(gauges_go_up_and_down, s_reset),
        cmocka_unit_test_setup(prometheus_text_groups_series_by_family, s_reset),
        cmocka_unit_test_setup(an_empty_registry_renders_empty, s_reset),
        cmocka_unit_test_setup(hset_arguments_carry_every_series, s_reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    mg_metrics_reset();
    return rc;
}
