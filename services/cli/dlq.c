/* dlq.c -- `maillage dlq [list|show ID]`: the dead letters, i.e. what the
 * broker refused, kept with the reason and the raw bytes so an operator can
 * tell a producer exactly what was wrong. */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "maillage/journal.h"
#include "maillage/json.h"

/* "2026-11-16 09:00:00.123 UTC" */
static void s_time(int64_t ms, char *out, size_t outlen)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&secs, &tm)) {
        snprintf(out, outlen, "?");
        return;
    }
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%03d UTC", day, (int)(ms % 1000));
}

static int s_on_list(const mg_deadletter_entry_t *dl, void *arg)
{
    char when[64];
    (void)arg;
    s_time(dl->received_at_ms, when, sizeof when);
    printf("%s  %s  source=%s  %zu bytes  %s", dl->id, when, dl->source && *dl->source ? dl->source : "?",
           dl->original_len, dl->reason);
    if (dl->field && *dl->field) printf(" (%s)", dl->field);
    printf("\n");
    return 0;
}

/* The bytes as a C-like escaped string, at most `max` of them. */
static void s_escaped(const uint8_t *p, size_t len, size_t max)
{
    putchar('"');
    for (size_t i = 0; i < len && i < max; i++) {
        uint8_t c = p[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c == '\t') printf("\\t");
        else if (c >= 0x20 && c < 0x7f) putchar(c);
        else printf("\\x%02x", c);
    }
    putchar('"');
    if (len > max) printf("…");
    putchar('\n');
}

/* xxd-like: offset, 16 bytes in hex, the printable ones. */
static void s_hexdump(const uint8_t *p, size_t len, size_t max)
{
    size_t n = len < max ? len : max;
    for (size_t off = 0; off < n; off += 16) {
        printf("  %08zx  ", off);
        for (size_t i = 0; i < 16; i++) {
            if (off + i < n) printf("%02x ", p[off + i]);
            else printf("   ");
            if (i == 7) putchar(' ');
        }
        printf(" |");
        for (size_t i = 0; i < 16 && off + i < n; i++) putchar(isprint(p[off + i]) ? p[off + i] : '.');
        printf("|\n");
    }
    if (len > max) printf("  … (%zu more bytes)\n", len - max);
}

static void s_show(const mg_deadletter_entry_t *dl, size_t preview)
{
    char when[64];
    s_time(dl->received_at_ms, when, sizeof when);
    printf("id:          %s\n", dl->id);
    printf("received:    %s\n", when);
    printf("source:      %s\n", dl->source && *dl->source ? dl->source : "?");
    printf("reason:      %s\n", dl->reason);
    printf("field:       %s\n", dl->field && *dl->field ? dl->field : "(none)");
    printf("length:      %zu bytes received, %zu kept\n", dl->original_len, dl->raw_len);
    printf("escaped:     ");
    s_escaped(dl->raw, dl->raw_len, preview);
    printf("hex:\n");
    s_hexdump(dl->raw, dl->raw_len, preview);
    /* If the bytes still decode as an Envelope, its JSON is the quickest way
     * to see what the producer meant. */
    mg_envelope_t *env = dl->raw_len ? mg_envelope_unpack(dl->raw, dl->raw_len) : NULL;
    if (env) {
        char *json = mg_json_dumps_message(&env->base);
        printf("as envelope: %s\n", json);
        free(json);
        mg_envelope_free(env);
    } else {
        printf("as envelope: (does not decode as an Envelope)\n");
    }
}

/* Look one entry up by stream id with XRANGE id id (journal.h lists; show
 * needs a single entry, which may be old). */
static int s_show_id(redisContext *c, const char *id, size_t preview)
{
    redisReply *r = redisCommand(c, "XRANGE %s %s %s", MG_DEADLETTER_KEY, id, id);
    int rc = -1;
    if (!r) {
        cli_error("dlq", "redis: %s", c->errstr);
        return -1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        cli_error("dlq", "'%s' is not a dead-letter id (%s)", id, r->str);
        goto done;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        cli_error("dlq", "no dead letter with id %s (see 'maillage dlq list')", id);
        goto done;
    }
    redisReply *entry = r->element[0];
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 || entry->element[1]->type != REDIS_REPLY_ARRAY) {
        cli_error("dlq", "malformed entry %s", id);
        goto done;
    }
    mg_deadletter_entry_t dl = {.id = entry->element[0]->str, .reason = "", .field = "", .source = ""};
    redisReply *fields = entry->element[1];
    int have_len = 0;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const char *k = fields->element[i]->str;
        redisReply *v = fields->element[i + 1];
        if (!k || v->type != REDIS_REPLY_STRING) continue;
        if (strcmp(k, "reason") == 0) dl.reason = v->str;
        else if (strcmp(k, "field") == 0) dl.field = v->str;
        else if (strcmp(k, "source") == 0) dl.source = v->str;
        else if (strcmp(k, "received_at_ms") == 0) dl.received_at_ms = strtoll(v->str, NULL, 10);
        else if (strcmp(k, "raw") == 0) {
            dl.raw = (const uint8_t *)v->str;
            dl.raw_len = v->len;
        } else if (strcmp(k, "raw_len") == 0) {
            dl.original_len = (size_t)strtoull(v->str, NULL, 10);
            have_len = 1;
        }
    }
    if (!have_len) dl.original_len = dl.raw_len;
    s_show(&dl, preview);
    rc = 0;
done:
    freeReplyObject(r);
    return rc;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: maillage dlq [OPTIONS] [list]\n"
            "       maillage dlq [OPTIONS] show ID\n"
            "\n"
            "The dead letters: input the broker rejected, with the reason, the offending\n"
            "field, the source, the time and the raw bytes.\n"
            "  list        one line per dead letter, oldest first (default)\n"
            "  show ID     everything about one, with an escaped and a hex preview\n"
            "\n"
            "Options:\n"
            "  -n, --count N        list only the last N (default: all)\n"
            "      --bytes N        bytes shown by show (default 256)\n"
            "%s",
            cli_common_help);
}

int cli_cmd_dlq(int argc, char **argv, cli_settings_t *settings)
{
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS,
                                            {"count", required_argument, NULL, 'n'},
                                            {"bytes", required_argument, NULL, 'b'},
                                            {NULL, 0, NULL, 0}};
    cli_context_t ctx;
    size_t count = 0, preview = 256;
    int opt, rc = CLI_EXIT_FAIL;
    char *end, err[512];

    while ((opt = getopt_long(argc, argv, "hn:", options, NULL)) != -1) {
        if (cli_settings_option(settings, opt, optarg)) continue;
        switch (opt) {
        case 'h': s_usage(stdout); return CLI_EXIT_OK;
        case 'n':
        case 'b': {
            unsigned long long v = strtoull(optarg, &end, 10);
            if (*end || *optarg == '-' || v == 0) {
                cli_error("dlq", "invalid value '%s' for --%s (a positive integer)", optarg,
                          opt == 'n' ? "count" : "bytes");
                return CLI_EXIT_USAGE;
            }
            if (opt == 'n') count = (size_t)v;
            else preview = (size_t)v;
            break;
        }
        default: s_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    const char *action = optind < argc ? argv[optind] : "list";
    const char *id = NULL;
    if (strcmp(action, "list") == 0) {
        if (argc - optind > 1) goto usage;
    } else if (strcmp(action, "show") == 0) {
        if (argc - optind != 2) {
            cli_error("dlq", "show needs one ID (see 'maillage dlq list')");
            return CLI_EXIT_USAGE;
        }
        id = argv[optind + 1];
    } else {
        goto usage;
    }
    if (cli_context_init(&ctx, settings, "dlq") != 0) return CLI_EXIT_FAIL;
    redisContext *redis = cli_redis_connect(&ctx, "dlq");
    if (!redis) goto done;
    if (id) {
        rc = s_show_id(redis, id, preview) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    } else {
        long long n = mg_journal_deadletters(redis, count, s_on_list, NULL, err, sizeof err);
        if (n < 0) {
            cli_error("dlq", "%s", err);
        } else {
            if (n == 0) printf("Aucun message rejeté : la file des lettres mortes est vide.\n");
            rc = CLI_EXIT_OK;
        }
    }
    redisFree(redis);
done:
    fflush(stdout);
    cli_context_destroy(&ctx);
    return rc;
usage:
    cli_error("dlq", "unknown action '%s' (list or show ID)", action);
    return CLI_EXIT_USAGE;
}
