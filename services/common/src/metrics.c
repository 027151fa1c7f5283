/* metrics.c -- the registry of counters and gauges, and its two renderings.
 *
 * Metrics are allocated one by one (handles stay valid while the array of
 * pointers grows) and found by name with a linear scan: registration happens
 * at start-up, updates go through the handle. */
#include "maillage/metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/mem.h"

struct mg_metric {
    char *name;      /* full series name, labels included */
    size_t base_len; /* length of the family name (before '{') */
    char *help;
    mg_metric_type_t type;
    uint64_t value;
};

static mg_metric_t **s_metrics;
static size_t s_count, s_cap;

/* [a-zA-Z_:][a-zA-Z0-9_:]* optionally followed by a "{...}" label set. */
static int s_name_is_valid(const char *name, size_t *base_len) {
    size_t i = 0;
    for (; name[i] && name[i] != '{'; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    if (i == 0) return 0;
    *base_len = i;
    if (!name[i]) return 1;
    size_t n = strlen(name);
    return n > i + 1 && name[n - 1] == '}' && !strchr(name, '\n');
}

static mg_metric_t *s_register(const char *name, const char *help, mg_metric_type_t type) {
    size_t base_len = 0;
    int valid = s_name_is_valid(name, &base_len);
    assert(valid && "invalid metric name");
    if (!valid) abort();
    for (size_t i = 0; i < s_count; i++) {
        if (strcmp(s_metrics[i]->name, name) == 0) {
            assert(s_metrics[i]->type == type && "metric registered with another type");
            return s_metrics[i];
        }
    }
    if (s_count == s_cap) {
        s_cap = s_cap ? s_cap * 2 : 32;
        s_metrics = mg_realloc(s_metrics, s_cap * sizeof *s_metrics);
    }
    mg_metric_t *m = mg_calloc(1, sizeof *m);
    m->name = mg_strdup(name);
    m->base_len = base_len;
    m->help = mg_strdup(help ? help : "");
    m->type = type;
    s_metrics[s_count++] = m;
    return m;
}

mg_metric_t *mg_metrics_counter(const char *name, const char *help) {
    return s_register(name, help, MG_METRIC_COUNTER);
}

mg_metric_t *mg_metrics_gauge(const char *name, const char *help) {
    return s_register(name, help, MG_METRIC_GAUGE);
}

void mg_metrics_add(mg_metric_t *metric, uint64_t n) {
    if (metric) metric->value += n;
}

void mg_metrics_inc(mg_metric_t *metric) {
    if (metric) metric->value++;
}

void mg_metrics_set(mg_metric_t *metric, uint64_t value) {
    if (!metric) return;
    assert(metric->type == MG_METRIC_GAUGE && "only a gauge can be set");
    metric->value = value;
}

uint64_t mg_metrics_value(const mg_metric_t *metric) {
    return metric ? metric->value : 0;
}

size_t mg_metrics_count(void) {
    return s_count;
}

int mg_metrics_at(size_t index, const char **name, const char **help, mg_metric_type_t *type,
                  uint64_t *value) {
    if (index >= s_count) return -1;
    const mg_metric_t *m = s_metrics[index];
    if (name) *name = m->name;
    if (help) *help = m->help;
    if (type) *type = m->type;
    if (value) *value = m->value;
    return 0;
}

/* A growable string for the renderer. */
typedef struct {
    char *data;
    size_t len, cap;
} s_buf_t;

static void s_buf_append(s_buf_t *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 1024;
        b->data = mg_realloc(b->data, b->cap);
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void s_buf_puts(s_buf_t *b, const char *s) {
    s_buf_append(b, s, strlen(s));
}

static int s_same_family(const mg_metric_t *a, const mg_metric_t *b) {
    return a->base_len == b->base_len && strncmp(a->name, b->name, a->base_len) == 0;
}

char *mg_metrics_render_prometheus(void) {
    s_buf_t b = {0};
    s_buf_puts(&b, "");
    for (size_t i = 0; i < s_count; i++) {
        const mg_metric_t *m = s_metrics[i];
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = s_same_family(s_metrics[j], m);
        if (seen) continue; /* family already written with its first series */

        s_buf_puts(&b, "# HELP ");
        s_buf_append(&b, m->name, m->base_len);
        s_buf_puts(&b, " ");
        /* The format escapes backslash and newline in help texts. */
        for (const char *p = m->help; *p; p++) {
            if (*p == '\\')
                s_buf_puts(&b, "\\\\");
            else if (*p == '\n')
                s_buf_puts(&b, "\\n");
            else
                s_buf_append(&b, p, 1);
        }
        s_buf_puts(&b, "\n# TYPE ");
        s_buf_append(&b, m->name, m->base_len);
        s_buf_puts(&b, m->type == MG_METRIC_COUNTER ? " counter\n" : " gauge\n");
        for (size_t j = i; j < s_count; j++) {
            if (!s_same_family(s_metrics[j], m)) continue;
            char line[64];
            snprintf(line, sizeof line, " %" PRIu64 "\n", s_metrics[j]->value);
            s_buf_puts(&b, s_metrics[j]->name);
            s_buf_puts(&b, line);
        }
    }
    return b.data;
}

void mg_metrics_hset_argv(const char *key, mg_metrics_argv_t *out) {
    memset(out, 0, sizeof *out);
    if (s_count == 0) return;
    size_t argc = 2 + 2 * s_count;
    out->argv = mg_calloc(argc, sizeof *out->argv);
    out->argvlen = mg_calloc(argc, sizeof *out->argvlen);
    out->argv[0] = mg_strdup("HSET");
    out->argv[1] = mg_strdup(key);
    for (size_t i = 0; i < s_count; i++) {
        out->argv[2 + 2 * i] = mg_strdup(s_metrics[i]->name);
        out->argv[3 + 2 * i] = mg_asprintf("%" PRIu64, s_metrics[i]->value);
    }
    for (size_t i = 0; i < argc; i++)
        out->argvlen[i] = strlen(out->argv[i]);
    out->argc = (int)argc;
}

void mg_metrics_argv_free(mg_metrics_argv_t *args) {
    if (!args) return;
    for (int i = 0; i < args->argc; i++)
        free(args->argv[i]);
    free(args->argv);
    free(args->argvlen);
    memset(args, 0, sizeof *args);
}

void mg_metrics_reset(void) {
    for (size_t i = 0; i < s_count; i++) {
        free(s_metrics[i]->name);
        free(s_metrics[i]->help);
        free(s_metrics[i]);
    }
    free(s_metrics);
    s_metrics = NULL;
    s_count = s_cap = 0;
}
