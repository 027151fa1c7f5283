/* consumers.c -- `maillage consumers [list|forget NAME]`: the registered
 * consumers of the journal, where each one is (its checkpoint), how far
 * behind the journal it is, and how many events it has parked for retry.
 *
 * Retention never trims the journal past the slowest registered consumer, so
 * a consumer that is gone for good must be forgotten by an operator. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "maillage/clock.h"
#include "maillage/envelope.h"
#include "maillage/journal.h"
#include "maillage/redis.h"
#include "maillage/subscriber.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: maillage consumers [OPTIONS] [list]\n"
            "       maillage consumers [OPTIONS] forget NAME\n"
            "\n"
            "The registered consumers of the journal (matcher, notifier, gateway, ...).\n"
            "  list         name, checkpoint, lag behind the journal, parked events, last update\n"
            "  forget NAME  unregister a consumer that is gone for good: retention no longer\n"
            "               waits for it (its checkpoint and retry set are deleted)\n"
            "\n"
            "Options:\n"
            "%s",
            cli_common_help);
}

/* The string value of `field` in an HGETALL reply, or NULL. Borrowed. */
static const char *s_hash_field(const redisReply *r, const char *field)
{
    const redisReply *v = mg_redis_field(r, field);
    return v ? v->str : NULL;
}

/* "il y a 3 s", "il y a 2 min", "il y a 5 h", "il y a 4 j" */
static void s_age(int64_t then_ms, int64_t now_ms, char *out, size_t outlen)
{
    if (then_ms <= 0) {
        snprintf(out, outlen, "jamais");
        return;
    }
    int64_t s = (now_ms - then_ms) / 1000;
    if (s < 0) s = 0;
    if (s < 120) snprintf(out, outlen, "il y a %" PRId64 " s", s);
    else if (s < 7200) snprintf(out, outlen, "il y a %" PRId64 " min", s / 60);
    else if (s < 172800) snprintf(out, outlen, "il y a %" PRId64 " h", s / 3600);
    else snprintf(out, outlen, "il y a %" PRId64 " j", s / 86400);
}

static int s_compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int s_list(redisContext *c)
{
    char err[256];
    uint64_t last = 0;
    if (mg_journal_last_sequence(c, &last, err, sizeof err) != 0) {
        cli_error("consumers", "%s", err);
        return -1;
    }
    redisReply *names = redisCommand(c, "SMEMBERS %s", MG_CONSUMERS_KEY);
    if (!names || names->type != REDIS_REPLY_ARRAY) {
        cli_error("consumers", "redis: %s", names ? names->str : c->errstr);
        if (names) freeReplyObject(names);
        return -1;
    }
    printf("Journal : dernière séquence %" PRIu64 "\n", last);
    if (names->elements == 0) {
        printf("Aucun consommateur enregistré.\n");
        freeReplyObject(names);
        return 0;
    }
    char **sorted = calloc(names->elements, sizeof *sorted);
    if (!sorted) abort();
    for (size_t i = 0; i < names->elements; i++) sorted[i] = names->element[i]->str;
    qsort(sorted, names->elements, sizeof *sorted, s_compare_names);

    printf("%-24s %12s %10s %10s  ", "consommateur", "position", "retard", "en attente");
    cli_pad(stdout, "mise à jour", 18);
    printf(" sujets\n");
    int64_t now = mg_clock_now_ms();
    int rc = 0;
    for (size_t i = 0; i < names->elements; i++) {
        const char *name = sorted[i];
        if (!mg_id_is_valid(name)) continue; /* never build a key from junk */
        redisReply *h = redisCommand(c, "HGETALL %s%s", MG_CONSUMER_KEY_PREFIX, name);
        redisReply *parked = redisCommand(c, "ZCARD %s%s", MG_RETRY_KEY_PREFIX, name);
        if (!h || !parked) {
            cli_error("consumers", "redis: %s", c->errstr);
            rc = -1;
        } else {
            const char *seq_s = s_hash_field(h, "seq");
            const char *updated_s = s_hash_field(h, "updated_at_ms");
            const char *topics = s_hash_field(h, "topics");
            uint64_t seq = seq_s ? strtoull(seq_s, NULL, 10) : 0;
            char age[32];
            s_age(updated_s ? strtoll(updated_s, NULL, 10) : 0, now, age, sizeof age);
            printf("%-24s %12" PRIu64 " %10" PRIu64 " %10lld  %-18s %s\n", name, seq, last > seq ? last - seq : 0,
                   parked->type == REDIS_REPLY_INTEGER ? parked->integer : 0, age,
                   topics && *topics ? topics : "tous");
        }
        if (h) freeReplyObject(h);
        if (parked) freeReplyObject(parked);
        if (rc) break;
    }
    free(sorted);
    freeReplyObject(names);
    return rc;
}

static int s_forget(redisContext *c, const char *name)
{
    if (!mg_id_is_valid(name)) {
        cli_error("consumers", "'%s' is not a consumer name", name);
        return -1;
    }
    redisReply *r = redisCommand(c, "SREM %s %s", MG_CONSUMERS_KEY, name);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        cli_error("consumers", "redis: %s", r && r->str ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        return -1;
    }
    long long removed = r->integer;
    freeReplyObject(r);
    if (!removed) {
        cli_error("consumers", "no registered consumer named '%s' (see 'maillage consumers list')", name);
        return -1;
    }
    r = redisCommand(c, "DEL %s%s %s%s %s%s:attempts", MG_CONSUMER_KEY_PREFIX, name, MG_RETRY_KEY_PREFIX, name,
                     MG_RETRY_KEY_PREFIX, name);
    if (r) freeReplyObject(r);
    printf("Consommateur « %s » oublié : la rétention du journal ne l'attend plus.\n", name);
    return 0;
}

int cli_cmd_consumers(int argc, char **argv, cli_settings_t *settings)
{
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    cli_context_t ctx;
    int opt, rc = CLI_EXIT_FAIL;

    while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (cli_settings_option(settings, opt, optarg)) continue;
        if (opt == 'h') {
            s_usage(stdout);
            return CLI_EXIT_OK;
        }
        s_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *action = optind < argc ? argv[optind] : "list";
    if (strcmp(action, "list") == 0 ? argc - optind > 1
                                    : strcmp(action, "forget") != 0 || argc - optind != 2) {
        cli_error("consumers", "expected 'list' or 'forget NAME' (try 'maillage consumers --help')");
        return CLI_EXIT_USAGE;
    }
    if (cli_context_init(&ctx, settings, "consumers") != 0) return CLI_EXIT_FAIL;
    redisContext *redis = cli_redis_connect(&ctx, "consumers");
    if (redis) {
        int ok = strcmp(action, "list") == 0 ? s_list(redis) : s_forget(redis, argv[optind + 1]);
        rc = ok == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
        redisFree(redis);
    }
    fflush(stdout);
    cli_context_destroy(&ctx);
    return rc;
}
