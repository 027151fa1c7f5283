/* inbox.c -- `maillage inbox STAFF [--unread] [--mark-read ID]` (a staff
 * member's web inbox, as the gateway shows it) and `maillage notifications
 * [--failed|--pending]` (e-mails and webhooks given up on, or waiting).
 *
 * Inbox entries are the notification records mg:notif:<id> listed in the
 * sorted set mg:inbox:<staff> by creation time; read = 0/1 in the record. */
#include <getopt.h>
#include <limits.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "maillage/clock.h"
#include "maillage/french.h"
#include "maillage/mem.h"
#include "maillage/redis.h"
#include "maillage/staff.h"

static void s_usage(FILE *out, const char *command)
{
    if (strcmp(command, "inbox") == 0)
        fprintf(out,
                "Usage : maillage inbox [OPTIONS] STAFF [--unread] [--full] [--mark-read ID] [--count N]\n"
                "\n"
                "Les notifications du ou de la chargé·e de mission STAFF, les plus récentes\n"
                "d'abord, en français : nature, titre, date, lue ou non, et l'état de ses e-mails\n"
                "et webhooks. STAFF est l'identifiant d'un·e chargé·e de mission, le default_staff\n"
                "du notifier, ou un identifiant dont la boîte de réception est conservée après\n"
                "son retrait ; tout autre est une erreur.\n"
                "  --unread        seulement les entrées pas encore lues\n"
                "  --full          le message entier de chaque entrée, avec la raison de l'envoi\n"
                "  --mark-read ID  marque l'entrée ID (n-...) comme lue\n"
                "  -n, --count N   au plus N entrées (50 par défaut), puis au plus N des e-mails\n"
                "                  et webhooks en échec de cette personne, les plus récents d'abord\n"
                "                  (--limit N revient au même)\n"
                "\n"
                "Options :\n%s",
                cli_common_help);
    else
        fprintf(out,
                "Usage : maillage notifications [OPTIONS] [--failed|--pending] [--count N]\n"
                "\n"
                "Les e-mails et webhooks marqués en échec après leur dernière tentative (--failed,\n"
                "par défaut), ou en attente (--pending : nouvelles tentatives, heures de silence,\n"
                "récapitulatifs, et ce qui attend le récapitulatif d'une personne).\n"
                "  -n, --count N   au plus N de chaque (50 par défaut ; --limit N revient au même)\n"
                "\n"
                "Options :\n%s",
                cli_common_help);
}

static const char *s_field(const redisReply *h, const char *name)
{
    const redisReply *v = mg_redis_field(h, name);
    return v ? v->str : "";
}

static const char *s_state_fr(const char *state)
{
    if (strcmp(state, "delivered") == 0) return "remis";
    if (strcmp(state, "pending") == 0) return "en attente";
    if (strcmp(state, "failed") == 0) return "échec";
    if (strcmp(state, "digest") == 0) return "pour le récapitulatif";
    if (strcmp(state, "dropped") == 0) return "sans objet (retirée ou remplacée avant le récapitulatif)";
    return state;
}

/* What a notification is about, in French: "mise en relation" for "match". */
static const char *s_kind_fr(const char *kind)
{
    static const char *const names[][2] = {
        {"match", "mise en relation"},
        {"collective_need", "besoin collectif"},
        {"cooperation_proposed", "proposition de coopération"},
        {"cooperation_answered", "réponse à une proposition de coopération"},
        {"member_joined", "nouvelle adhésion"},
        {"unanswered_need", "besoin sans réponse"},
        {"digest", "récapitulatif"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(kind, names[i][0]) == 0) return names[i][1];
    return kind;
}

/* One record: its line, then (full) its whole French text, or (with_text) its
 * delivery state, or else its link. Returns 1 if shown, 0 if passed over
 * (expired, or read when unread_only), -1 on a Redis error. */
static int s_print_record(redisContext *c, const char *nid, int unread_only, int with_text, int full)
{
    redisReply *r = redisCommand(c, "HGETALL mg:notif:%s", nid);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        cli_error_redis("inbox", c, r);
        if (r) freeReplyObject(r);
        return -1;
    }
    if (r->elements == 0 || (unread_only && strcmp(s_field(r, "read"), "1") == 0)) {
        freeReplyObject(r);
        return 0;
    }
    char when[CLI_PARIS_TIME_LEN];
    cli_paris_time(strtoll(s_field(r, "created_at"), NULL, 10), when);
    /* Read or not for an inbox entry; the channel for a send (a failed one
     * brought into the inbox has both). */
    const char *read = with_text ? "" : s_field(r, "read");
    printf("%s  %s  %s  [%s] %s\n", nid, when,
           *read ? (strcmp(read, "1") == 0 ? "lue    " : "non lue") : s_field(r, "channel"),
           s_kind_fr(s_field(r, "kind")), s_field(r, "title"));
    if (with_text) {
        const char *attempts = s_field(r, "attempts");
        printf("    état : %s, %s tentative%s", s_state_fr(s_field(r, "state")), *attempts ? attempts : "0",
               atol(attempts) > 1 ? "s" : "");
        const char *e = s_field(r, "last_error");
        if (*e) printf(", dernière erreur : %s", e);
        printf("\n    destinataire : %s ; clé : %s\n", s_field(r, "staff"), s_field(r, "key"));
    } else if (full) {
        /* The message as staff read it, indented, so the reason it was sent shows. */
        const char *text = s_field(r, "text");
        fputs("    ", stdout);
        for (const char *p = text; *p; p++) {
            putchar(*p);
            if (*p == '\n' && p[1]) fputs("    ", stdout);
        }
        if (!*text || text[strlen(text) - 1] != '\n') putchar('\n');
    } else {
        printf("    %s\n", s_field(r, "link"));
    }
    freeReplyObject(r);
    return 1;
}

/* Whether `staff` has an inbox to show: a staff member (mg:staff), the
 * notifier's `default_staff`, or an id whose inbox is left (a member removed
 * keeps it). 1 yes, 0 no (said), -1 on a Redis error (said). */
static int s_known(redisContext *c, const char *staff, const char *default_staff) {
    if (default_staff && strcmp(staff, default_staff) == 0) return 1;
    redisReply *r = redisCommand(
        c, "EVAL %s 2 mg:staff mg:inbox:%s %s",
        "return redis.call('SISMEMBER', KEYS[1], ARGV[1]) + redis.call('EXISTS', KEYS[2])", staff, staff);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        cli_error_redis("inbox", c, r);
        if (r) freeReplyObject(r);
        return -1;
    }
    int known = r->integer > 0;
    freeReplyObject(r);
    if (!known)
        cli_error("inbox", "chargé·e de mission inconnu·e : « %s » (voir « maillage staff list »)", staff);
    return known;
}

/* Entries of a sorted set read at a time by s_each_page(). */
#define S_PAGE 100

/* Call `page` with the members of sorted set `key`, newest first (by score,
 * then member, as ZREVRANGE orders them), S_PAGE at a time, until the set is
 * read or `page` returns nonzero (1: enough, -1: an error it said). Each
 * page starts where the last one ended, by score and member, not by rank: an
 * entry written at the top while it reads (by rank, it pushed every later
 * page down one, and each page began with the entry ending the one before)
 * moves no page. Returns 0, or -1 after an error (a Redis one said as
 * `command`'s). */
static int s_each_page(redisContext *c, const char *key, const char *command,
                       int (*page)(redisContext *c, const char *const *ids, size_t n, void *arg), void *arg) {
    char max[64] = "+inf"; /* the score of the last member given */
    char *last = NULL;     /* that member */
    long ties = 0;         /* the members given with that score */
    int rc = 0;
    while (rc == 0) {
        long asked = ties + S_PAGE;
        redisReply *r =
            redisCommand(c, "ZRANGE %s %s -inf BYSCORE REV LIMIT 0 %ld WITHSCORES", key, max, asked);
        if (!r || r->type != REDIS_REPLY_ARRAY) {
            cli_error_redis(command, c, r);
            if (r) freeReplyObject(r);
            rc = -1;
            break;
        }
        size_t rows = r->elements / 2, n = 0;
        const char **ids = mg_calloc(rows + 1, sizeof(*ids));
        for (size_t i = 0; i < rows; i++) {
            const char *id = r->element[2 * i]->str, *score = r->element[2 * i + 1]->str;
            /* Given already: the last page's score, at or before its last member. */
            if (last && strcmp(score, max) == 0 && strcmp(id, last) >= 0) continue;
            ids[n++] = r->element[2 * i]->str;
        }
        if (rows) {
            const char *score = r->element[2 * rows - 1]->str;
            ties = 0;
            for (size_t i = 0; i < rows; i++)
                ties += strcmp(r->element[2 * i + 1]->str, score) == 0;
            snprintf(max, sizeof(max), "%s", score);
            free(last);
            last = mg_strdup(r->element[2 * rows - 2]->str);
        }
        if (n) rc = page(c, ids, n, arg);
        int end = rows < (size_t)asked;
        free(ids);
        freeReplyObject(r);
        if (end) break;
    }
    free(last);
    return rc < 0 ? -1 : 0;
}

/* What s_failed_page() and s_inbox_page() need between pages. */
typedef struct {
    const char *staff;
    int unread, full;
    long limit, shown;
} s_listing_t;

/* A page of mg:notifier:failed: this person's (one pipelined HGET of the
 * recipient per entry) are printed. */
static int s_failed_page(redisContext *c, const char *const *ids, size_t n, void *arg) {
    s_listing_t *l = arg;
    /* Whose each one is, all replies read before the records are. */
    char *mine = mg_calloc(n + 1, 1);
    for (size_t i = 0; i < n; i++)
        redisAppendCommand(c, "HGET mg:notif:%s staff", ids[i]);
    for (size_t i = 0; i < n; i++) {
        redisReply *whose = NULL;
        if (redisGetReply(c, (void **)&whose) != REDIS_OK) {
            cli_error_redis("inbox", c, NULL); /* the connection is unusable now */
            free(mine);
            return -1;
        }
        mine[i] = whose->type == REDIS_REPLY_STRING && strcmp(whose->str, l->staff) == 0;
        freeReplyObject(whose);
    }
    int rc = 0;
    for (size_t i = 0; i < n && rc >= 0 && l->shown < l->limit; i++) {
        if (!mine[i]) continue;
        if (!l->shown) printf("Envois en échec :\n");
        if ((rc = s_print_record(c, ids[i], 0, 1, 0)) > 0) l->shown++;
    }
    free(mine);
    return rc < 0 ? -1 : l->shown >= l->limit;
}

/* The failed e-mails and webhooks of `staff`, newest first, at most `limit`,
 * so they are seen. mg:notifier:failed holds everyone's: read page by page
 * until `limit` of this person's are shown or the set ends. Returns 0, or
 * -1 (said). */
static int s_failed_of(redisContext *c, const char *staff, long limit) {
    s_listing_t l = {.staff = staff, .limit = limit};
    return s_each_page(c, "mg:notifier:failed", "inbox", s_failed_page, &l);
}

/* A page of the inbox: its entries printed (--unread passes over the read ones). */
static int s_inbox_page(redisContext *c, const char *const *ids, size_t n, void *arg) {
    s_listing_t *l = arg;
    int rc = 0;
    for (size_t i = 0; i < n && rc >= 0 && l->shown < l->limit; i++)
        if ((rc = s_print_record(c, ids[i], l->unread, 0, l->full)) > 0) l->shown++;
    return rc < 0 ? -1 : l->shown >= l->limit;
}

static int s_inbox(redisContext *c, const char *staff, const char *default_staff, int unread,
                   const char *mark, long limit, int full) {
    char whose[128]; /* « claire »: an id, not a name to elide ("d'accueil" read as a welcome inbox) */
    snprintf(whose, sizeof whose, "« %s »", staff);
    if (s_known(c, staff, default_staff) != 1) return -1;
    if (mark) {
        redisReply *r = redisCommand(c, "EVAL %s 2 mg:inbox:%s mg:notif:%s %s", mg_staff_mark_read_script,
                                     staff, mark, mark);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
            cli_error_redis("inbox", c, r);
            if (r) freeReplyObject(r);
            return -1;
        }
        int marked = r->integer == 1;
        freeReplyObject(r);
        if (!marked) {
            cli_error("inbox", "pas de notification « %s » dans la boîte de réception %s (ou elle a expiré)",
                      mark, whose);
            return -1;
        }
        printf("%s marquée comme lue.\n", mark);
        return 0;
    }
    redisReply *total = redisCommand(c, "ZCARD mg:inbox:%s", staff);
    long long count = total && total->type == REDIS_REPLY_INTEGER ? total->integer : 0;
    printf("Boîte de réception %s : %lld notification%s\n", whose, count, count > 1 ? "s" : "");
    if (total) freeReplyObject(total);
    /* Newest first, page by page until `limit` are shown or the inbox ends. */
    char *key = mg_asprintf("mg:inbox:%s", staff);
    s_listing_t l = {.staff = staff, .unread = unread, .full = full, .limit = limit};
    int rc = s_each_page(c, key, "inbox", s_inbox_page, &l);
    free(key);
    if (rc < 0) return -1;
    long shown = l.shown;
    /* The header counts them all: say what --unread found. */
    if (unread && shown) printf("(%ld non lue%s affichée%s)\n", shown, shown > 1 ? "s" : "", shown > 1 ? "s" : "");
    else if (unread) printf("Aucune notification non lue.\n");
    return s_failed_of(c, staff, limit);
}

/* What waits for a member's digest (mg:digest:<staff>:<channel>, not yet a
 * notification of the queue), up to `limit` items; returns how many sets
 * were found, or -1. */
static int s_print_digest_waits(redisContext *c, long limit) {
    char cursor[32] = "0";
    int sets = 0;
    do {
        redisReply *page = redisCommand(c, "SCAN %s MATCH mg:digest:* COUNT 500", cursor);
        if (!page || page->type != REDIS_REPLY_ARRAY || page->elements != 2) {
            cli_error_redis("notifications", c, page);
            if (page) freeReplyObject(page);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", page->element[0]->str);
        const redisReply *keys = page->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *key = keys->element[i]->str, *rest = key + strlen("mg:digest:");
            const char *colon = strrchr(rest, ':');
            if (!strncmp(rest, "items:", 6) || !strncmp(rest, "last:", 5) || !colon ||
                (strcmp(colon, ":email") != 0 && strcmp(colon, ":webhook") != 0))
                continue;
            redisReply *nids = redisCommand(c, "ZREVRANGE %s 0 %ld", key, limit - 1);
            if (nids && nids->type == REDIS_REPLY_ARRAY && nids->elements) {
                printf("En attente du récapitulatif de %.*s (%s) :\n", (int)(colon - rest), rest,
                       strcmp(colon, ":email") == 0 ? "e-mail" : "webhook");
                for (size_t k = 0; k < nids->elements; k++)
                    s_print_record(c, nids->element[k]->str, 0, 1, 0);
                sets++;
            }
            if (nids) freeReplyObject(nids);
        }
        freeReplyObject(page);
    } while (strcmp(cursor, "0") != 0);
    return sets;
}

static int s_notifications(redisContext *c, int pending, long limit)
{
    redisReply *ids = pending ? redisCommand(c, "ZRANGE mg:notifier:queue 0 %ld", limit - 1)
                              : redisCommand(c, "ZREVRANGE mg:notifier:failed 0 %ld", limit - 1);
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        cli_error_redis("notifications", c, ids);
        if (ids) freeReplyObject(ids);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < ids->elements && rc >= 0; i++)
        rc = s_print_record(c, ids->element[i]->str, 0, 1, 0);
    int digests = pending && rc >= 0 ? s_print_digest_waits(c, limit) : 0;
    if (ids->elements == 0 && digests == 0)
        printf(pending ? "Aucun envoi en attente.\n" : "Aucun envoi en échec.\n");
    freeReplyObject(ids);
    return rc < 0 || digests < 0 ? -1 : 0;
}

static int s_run(int argc, char **argv, cli_settings_t *settings, const char *command)
{
    enum { O_UNREAD = 2100, O_MARK, O_LIMIT, O_FAILED, O_PENDING, O_FULL };
    static const struct option options[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"unread", no_argument, NULL, O_UNREAD},
        {"mark-read", required_argument, NULL, O_MARK},
        {"count", required_argument, NULL, 'n'},
        {"limit", required_argument, NULL, O_LIMIT}, /* its first name, kept */
        {"failed", no_argument, NULL, O_FAILED},
        {"pending", no_argument, NULL, O_PENDING},
        {"full", no_argument, NULL, O_FULL},
        {NULL, 0, NULL, 0},
    };
    int inbox = strcmp(command, "inbox") == 0;
    int unread = 0, pending = 0, full = 0, opt;
    const char *mark = NULL;
    long limit = 50;
    while ((opt = cli_getopt(command, argc, argv, "hn:", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        if (cli_settings_option(settings, opt, optarg)) continue;
        if (opt == 'h') {
            s_usage(stdout, command);
            return CLI_EXIT_OK;
        }
        if (opt == 'n' || opt == O_LIMIT) {
            unsigned long long v;
            if (cli_positive_option(command, opt == 'n' ? "count" : "limit", optarg, &v) != 0)
                return CLI_EXIT_USAGE;
            limit = v > LONG_MAX ? LONG_MAX : (long)v;
            continue;
        }
        if (inbox && opt == O_UNREAD) unread = 1;
        else if (inbox && opt == O_MARK) mark = optarg;
        else if (inbox && opt == O_FULL) full = 1;
        else if (!inbox && opt == O_FAILED) pending = 0;
        else if (!inbox && opt == O_PENDING) pending = 1;
        else { /* an option of the other command */
            cli_error(command, "« --%s » ne va pas avec « maillage %s » (voir « maillage %s --help »)",
                      cli_option_name(options, opt), command, command);
            return CLI_EXIT_USAGE;
        }
    }
    if (inbox ? argc - optind != 1 : argc - optind != 0) {
        /* The reason in one line, not the whole help. */
        if (inbox)
            cli_error(command, "%s (maillage inbox --help)",
                      argc - optind == 0 ? "de qui ? Un identifiant de chargé·e de mission est attendu"
                                         : "un seul identifiant de chargé·e de mission est attendu");
        else
            cli_error(command, "« %s » : aucun argument attendu (maillage notifications --help)",
                      argv[optind]);
        return CLI_EXIT_USAGE;
    }
    const char *staff = inbox ? argv[optind] : NULL;
    if ((staff && cli_check_id(command, staff) != 0) || (mark && cli_check_id(command, mark) != 0))
        return CLI_EXIT_USAGE;
    cli_context_t ctx;
    int init = cli_context_init(&ctx, settings, command);
    if (init != CLI_EXIT_OK) return init;
    int rc = CLI_EXIT_FAIL;
    redisContext *c = cli_redis_connect(&ctx, command);
    if (c) {
        int ok = inbox ? s_inbox(c, staff, mg_config_str(ctx.config, "notifier", "default_staff"), unread,
                                 mark, limit, full)
                       : s_notifications(c, pending, limit);
        rc = ok == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
        redisFree(c);
    }
    fflush(stdout);
    cli_context_destroy(&ctx);
    return rc;
}

int cli_cmd_inbox(int argc, char **argv, cli_settings_t *settings)
{
    return s_run(argc, argv, settings, "inbox");
}

int cli_cmd_notifications(int argc, char **argv, cli_settings_t *settings)
{
    return s_run(argc, argv, settings, "notifications");
}
