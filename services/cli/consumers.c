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
#include "maillage/mem.h"
#include "maillage/redis.h"
#include "maillage/subscriber.h"

/* A consumer whose checkpoint moved less than this ago may still be running:
 * `forget` wants --force. (A consumer writes its checkpoint when its position
 * moves, so an idle one that runs can look older than this.) */
#define S_RECENT_MS (5 * 60 * 1000)

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage : maillage consumers [OPTIONS] [list]\n"
            "        maillage consumers [OPTIONS] forget NOM\n"
            "\n"
            "Les consommateurs enregistrés du journal (matcher, matcher-N pour l'instance N de\n"
            "[matcher], notifier).\n"
            "  list         nom, position, retard sur le journal, événements en attente,\n"
            "               dernière mise à jour\n"
            "  forget NOM   désinscrit un consommateur parti pour de bon : la rétention ne\n"
            "               l'attend plus ; sa position est effacée et les événements en attente\n"
            "               de nouvelle tentative deviennent des lettres mortes (maillage dlq\n"
            "               list). Refusé si sa position a bougé dans les 5 dernières minutes\n"
            "               (il tourne peut-être ; un consommateur inactif n'en écrit pas), sauf\n"
            "               avec --force\n"
            "\n"
            "Options :\n"
            "      --force      oublier un consommateur qui a mis à jour sa position récemment\n"
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
        cli_error("consumers", "erreur Redis : %s", names ? names->str : c->errstr);
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
            cli_error("consumers", "erreur Redis : %s", c->errstr);
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

/* The forget script. KEYS: consumers set, consumer hash, retry set,
 * attempts hash, dead-letter stream, journal. ARGV: name, now_ms, dead-letter
 * maxlen, then (sequence, event id, received_at_ms) triples read by the
 * caller. Each parked event becomes a dead letter as the subscriber's park
 * script writes them (consumer_deadletter()), then the consumer is
 * unregistered, in one step. Returns how many were moved, or -1 if the
 * consumer is not registered. */
static const char s_forget_script[] = MG_CONSUMER_DEADLETTER_LUA
    "if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return -1 end\n"
    "local ids = {}\n"
    "for i = 4, #ARGV, 3 do ids[ARGV[i]] = {ARGV[i + 1], ARGV[i + 2]} end\n"
    "local parked = redis.call('ZRANGE', KEYS[3], 0, -1)\n"
    "for _, seq in ipairs(parked) do\n"
    "  local known = ids[seq] or {'', '0'}\n"
    "  local why = redis.call('HGET', KEYS[4], seq .. ':reason') or 'none'\n"
    "  consumer_deadletter(KEYS[5], KEYS[6], ARGV[3], seq,\n"
    "    'consumer forgotten while the event waited for a retry (last failure: ' .. why .. ')',\n"
    "    ARGV[1], ARGV[2], known[1], nil, known[2], redis.call('HGET', KEYS[4], seq) or '0')\n"
    "end\n"
    "redis.call('SREM', KEYS[1], ARGV[1])\n"
    "redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])\n"
    "return #parked\n";

/* The event id and reception time of each event parked by `name`, from the
 * journal, as (sequence, event id, received_at_ms) triples appended to
 * `*argv_p` (grown) from `argc` on; the caller frees those strings. Returns
 * the new argc, or -1 on a Redis error (said). */
static int s_parked_ids(redisContext *c, const char *name, const char ***argv_p, int argc) {
    redisReply *seqs = redisCommand(c, "ZRANGE %s%s 0 -1", MG_RETRY_KEY_PREFIX, name);
    if (!seqs || seqs->type != REDIS_REPLY_ARRAY) {
        cli_error("consumers", "erreur Redis : %s", seqs && seqs->str ? seqs->str : c->errstr);
        if (seqs) freeReplyObject(seqs);
        return -1;
    }
    *argv_p = mg_realloc(*argv_p, ((size_t)argc + 3 * seqs->elements) * sizeof **argv_p);
    for (size_t i = 0; i < seqs->elements; i++) {
        const char *seq = seqs->element[i]->str;
        redisReply *e = redisCommand(c, "XRANGE %s %s-0 %s-0", MG_JOURNAL_KEY, seq, seq);
        const redisReply *v = e && e->type == REDIS_REPLY_ARRAY && e->elements == 1 &&
                                      e->element[0]->type == REDIS_REPLY_ARRAY && e->element[0]->elements == 2
                                  ? mg_redis_field(e->element[0]->element[1], MG_JOURNAL_FIELD_ENVELOPE)
                                  : NULL;
        mg_envelope_t *env = v ? mg_envelope_unpack((const uint8_t *)v->str, v->len) : NULL;
        if (env && env->event_id && *env->event_id) {
            (*argv_p)[argc++] = mg_strdup(seq);
            (*argv_p)[argc++] = mg_strdup(env->event_id);
            (*argv_p)[argc++] = mg_asprintf("%" PRId64, (int64_t)env->received_at_ms);
        }
        if (env) mg_envelope_free(env);
        if (e) freeReplyObject(e);
    }
    freeReplyObject(seqs);
    return argc;
}

static int s_forget(redisContext *c, const char *name, int force, long long deadletter_maxlen) {
    if (!mg_id_is_valid(name)) {
        cli_error("consumers", "« %s » n'est pas un nom de consommateur", name);
        return -1;
    }
    redisReply *r = redisCommand(c, "HGET %s%s updated_at_ms", MG_CONSUMER_KEY_PREFIX, name);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        cli_error("consumers", "erreur Redis : %s", r ? r->str : c->errstr);
        if (r) freeReplyObject(r);
        return -1;
    }
    int64_t updated = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0, now = mg_clock_now_ms();
    freeReplyObject(r);
    if (!force && updated > 0 && now - updated < S_RECENT_MS) {
        cli_error("consumers",
                  "le consommateur « %s » a bougé sa position il y a %" PRId64
                  " s : il tourne peut-être (arrêtez-le d'abord, ou --force)",
                  name, (now - updated) / 1000);
        return -1;
    }
    char key[6][sizeof(MG_CONSUMER_KEY_PREFIX) + MG_ID_MAX + 16], when[24], maxlen[24];
    snprintf(key[0], sizeof key[0], "%s", MG_CONSUMERS_KEY);
    snprintf(key[1], sizeof key[1], "%s%s", MG_CONSUMER_KEY_PREFIX, name);
    snprintf(key[2], sizeof key[2], "%s%s", MG_RETRY_KEY_PREFIX, name);
    snprintf(key[3], sizeof key[3], "%s%s:attempts", MG_RETRY_KEY_PREFIX, name);
    snprintf(key[4], sizeof key[4], "%s", MG_DEADLETTER_KEY);
    snprintf(key[5], sizeof key[5], "%s", MG_JOURNAL_KEY);
    snprintf(when, sizeof when, "%" PRId64, now);
    snprintf(maxlen, sizeof maxlen, "%lld", deadletter_maxlen);
    const char *head[] = {"EVAL", s_forget_script, "6",    key[0], key[1], key[2],
                          key[3], key[4],          key[5], name,   when,   maxlen};
    const int fixed = (int)(sizeof head / sizeof head[0]);
    const char **argv = mg_realloc(NULL, sizeof head);
    memcpy(argv, head, sizeof head);
    int argc = s_parked_ids(c, name, &argv, fixed);
    long long moved = -2;
    if (argc >= 0) {
        r = redisCommandArgv(c, argc, argv, NULL);
        if (r && r->type == REDIS_REPLY_INTEGER)
            moved = r->integer;
        else
            cli_error("consumers", "erreur Redis : %s", r && r->str ? r->str : c->errstr);
        if (r) freeReplyObject(r);
    }
    for (int i = fixed; i < argc; i++)
        free((char *)argv[i]);
    free(argv);
    if (moved == -1)
        cli_error("consumers",
                  "aucun consommateur enregistré nommé « %s » (voir « maillage consumers list »)", name);
    if (moved < 0) return -1;
    printf("Consommateur « %s » oublié : la rétention du journal ne l'attend plus.", name);
    if (moved > 0)
        printf(" %lld événement%s en attente de nouvelle tentative déplacé%s vers les lettres mortes "
               "(maillage dlq list).",
               moved, moved > 1 ? "s" : "", moved > 1 ? "s" : "");
    printf("\n");
    return 0;
}

int cli_cmd_consumers(int argc, char **argv, cli_settings_t *settings)
{
    enum { O_FORCE = 2200 };
    static const struct option options[] = {
        CLI_COMMON_LONG_OPTIONS, {"force", no_argument, NULL, O_FORCE}, {NULL, 0, NULL, 0}};
    cli_context_t ctx;
    int opt, force = 0, rc = CLI_EXIT_FAIL;

    while ((opt = cli_getopt("consumers", argc, argv, "h", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        if (cli_settings_option(settings, opt, optarg)) continue;
        if (opt == 'h') {
            s_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (opt == O_FORCE) {
            force = 1;
            continue;
        }
        s_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *action = optind < argc ? argv[optind] : "list";
    if (strcmp(action, "list") == 0 ? argc - optind > 1
                                    : strcmp(action, "forget") != 0 || argc - optind != 2) {
        cli_error("consumers", "attendu : list ou forget NOM (voir « maillage consumers --help »)");
        return CLI_EXIT_USAGE;
    }
    int init = cli_context_init(&ctx, settings, "consumers");
    if (init != CLI_EXIT_OK) return init;
    redisContext *redis = cli_redis_connect(&ctx, "consumers");
    if (redis) {
        int ok = strcmp(action, "list") == 0
                     ? s_list(redis)
                     : s_forget(redis, argv[optind + 1], force,
                                mg_config_int(ctx.config, "broker", "deadletter_maxlen"));
        rc = ok == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
        redisFree(redis);
    }
    fflush(stdout);
    cli_context_destroy(&ctx);
    return rc;
}
