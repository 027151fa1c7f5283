/* metrics.h -- named counters and gauges of one daemon.
 *
 * A process-wide registry of uint64 values, rendered in the Prometheus text
 * exposition format (version 0.0.4) and as the arguments of a Redis HSET, so
 * the gateway can aggregate every daemon's figures from Redis.
 *
 * A name may carry Prometheus labels: "maillage_broker_events_total{type=\"need.reported\"}".
 * Series sharing the name before '{' are one metric family: they share the
 * help text and type, written once.
 *
 * Not thread-safe: a daemon updates its metrics from its event loop thread only
 * (updates are plain increments, cheap enough for every event). */
#ifndef MAILLAGE_METRICS_H
#define MAILLAGE_METRICS_H

#include <stddef.h>
#include <stdint.h>

typedef struct mg_metric mg_metric_t;

typedef enum {
    MG_METRIC_COUNTER, /* only goes up (resets when the process restarts) */
    MG_METRIC_GAUGE,   /* a current level: queue length, connected or not */
} mg_metric_type_t;

/* Register (or find) the counter or gauge `name` with its `help` text (one
 * line, English). Registering an existing name again returns the same handle;
 * registering it with another type, or an invalid name, is a programmer error
 * (assert). Both strings are copied. The handle is owned by the registry and
 * valid until mg_metrics_reset(). */
mg_metric_t *mg_metrics_counter(const char *name, const char *help);
mg_metric_t *mg_metrics_gauge(const char *name, const char *help);

/* Update a metric. `add` on a counter or a gauge; `set` on a gauge (setting a
 * counter is a programmer error). Accept NULL (no-op) so optional metrics
 * need no test at the call site. */
void mg_metrics_add(mg_metric_t *metric, uint64_t n);
void mg_metrics_inc(mg_metric_t *metric);
void mg_metrics_set(mg_metric_t *metric, uint64_t value);

/* Current value (0 for NULL). */
uint64_t mg_metrics_value(const mg_metric_t *metric);

/* Number of registered series, and the i-th in registration order: its full
 * name (labels included), help, type and value. Borrowed; returns -1 if
 * `index` is out of range, else 0. */
size_t mg_metrics_count(void);
int mg_metrics_at(size_t index, const char **name, const char **help, mg_metric_type_t *type,
                  uint64_t *value);

/* Every metric in the Prometheus text format: per family "# HELP" and
 * "# TYPE" lines, then one "name value" line per series, families in the
 * order they were first registered. Caller owns the string (free()). */
char *mg_metrics_render_prometheus(void);

/* The arguments of "HSET <key> <name> <value> ...", for
 * redisAsyncCommandArgv(): argv[0] = "HSET", argv[1] = key, then a name and
 * its decimal value per series. With no metric registered, argc is 0 (HSET
 * needs at least one pair). Caller owns the result: mg_metrics_argv_free(). */
typedef struct {
    int argc;
    char **argv;
    size_t *argvlen;
} mg_metrics_argv_t;

void mg_metrics_hset_argv(const char *key, mg_metrics_argv_t *out);
void mg_metrics_argv_free(mg_metrics_argv_t *args);

/* Forget every metric (handles become invalid). For tests and shutdown. */
void mg_metrics_reset(void);

#endif
