/* journal_read.c -- drives the synchronous journal readers of journal.h for
 * the integration tests (the CLI uses the same functions).
 *
 *   journal_read --config FILE journal FROM MAX
 *       one line per entry: "<seq> <type> <event_id> <envelope sequence> <source>"
 *   journal_read --config FILE dlq MAX
 *       one line per dead letter: "<reason>\t<field>\t<bytes kept>\t<bytes received>"
 *   journal_read --config FILE last
 *       the last sequence
 * Exit 0 on success, 1 with "Error: ..." on stderr otherwise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "maillage/config.h"
#include "maillage/envelope.h"
#include "maillage/journal.h"
#include "maillage/redis.h"

static int s_print_entry(const mg_journal_entry_t *e, void *arg) {
    (void)arg;
    mg_envelope_t *env = mg_envelope_unpack(e->envelope, e->len);
    if (!env) {
        printf("%llu %s (undecodable)\n", (unsigned long long)e->sequence, e->type);
        return 0;
    }
    printf("%llu %s %s %llu %s\n", (unsigned long long)e->sequence, e->type, env->event_id,
           (unsigned long long)env->sequence, env->source);
    mg_envelope_free(env);
    return 0;
}

static int s_print_deadletter(const mg_deadletter_entry_t *e, void *arg) {
    (void)arg;
    printf("%s\t%s\t%zu\t%zu\n", e->reason, e->field, e->raw_len, e->original_len);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 4 || strcmp(argv[1], "--config") != 0) {
        fprintf(stderr, "usage: journal_read --config FILE journal FROM MAX | dlq MAX | last\n");
        return 2;
    }
    char err[512];
    mg_config_t *cfg = mg_config_load(argv[2], err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    mg_redis_options_t opts;
    if (mg_redis_options_from_config(cfg, &opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "Error: %s\n", err);
        mg_config_destroy(&cfg);
        return 1;
    }
    redisContext *c = mg_redis_connect_sync(&opts, err, sizeof(err));
    mg_redis_options_clear(&opts);
    mg_config_destroy(&cfg);
    if (!c) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    long long rc = -1;
    const char *what = argv[3];
    if (strcmp(what, "journal") == 0 && argc == 6) {
        rc = mg_journal_read(c, strtoull(argv[4], NULL, 10), strtoull(argv[5], NULL, 10), s_print_entry, NULL, err,
                             sizeof(err));
    } else if (strcmp(what, "dlq") == 0 && argc == 5) {
        rc = mg_journal_deadletters(c, strtoul(argv[4], NULL, 10), s_print_deadletter, NULL, err, sizeof(err));
    } else if (strcmp(what, "last") == 0) {
        uint64_t seq = 0;
        rc = mg_journal_last_sequence(c, &seq, err, sizeof(err));
        if (rc == 0) printf("%llu\n", (unsigned long long)seq);
    } else {
        snprintf(err, sizeof(err), "unknown command");
    }
    redisFree(c);
    if (rc < 0) {
        fprintf(stderr, "Error: %s\n", err);
        return 1;
    }
    return 0;
}
