/* token.c -- `maillage token issue|list|revoke`: the bearer tokens of the
 * HTTP gateway (token.h).
 *
 * A token is printed once, when issued, and stored only as its SHA-256:
 * whoever reads Redis cannot use it. Revoking deletes the record and
 * publishes the hash on mg:tokens:revoked, so running gateways forget it at
 * once instead of at the end of their cache time. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "maillage/clock.h"
#include "maillage/redis.h"
#include "maillage/token.h"

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage : maillage token [OPTIONS] issue --network ID [--types LISTE] [--label TEXTE]\n"
            "        maillage token [OPTIONS] issue --staff ID [--label TEXTE]\n"
            "        maillage token [OPTIONS] list\n"
            "        maillage token [OPTIONS] revoke TOKEN_ID\n"
            "\n"
            "Les jetons (bearer tokens) de la passerelle HTTP (maillage-gateway).\n"
            "  issue    crée un jeton pour le système d'un réseau (il peut envoyer par POST /v1/events\n"
            "           les événements de LISTE, par défaut « %s »), ou pour\n"
            "           un·e chargé·e de mission (déclaré·e dans mg:staff : lectures, retours, boîte\n"
            "           de réception, page web). Le jeton est affiché une seule fois sur la sortie\n"
            "           standard ; seul son SHA-256 est conservé.\n"
            "  list     identifiant, type, titulaire, types d'événements, note et date de création\n"
            "           de chaque jeton\n"
            "  revoke   supprime un jeton par son identifiant (tok-...) ; les passerelles en marche\n"
            "           l'oublient aussitôt\n"
            "\n"
            "Options :\n"
            "  --network ID    le réseau au nom duquel les événements du jeton sont journalisés\n"
            "  --staff ID      la personne que le jeton identifie\n"
            "  --types LISTE   types d'événements ou leurs débuts, séparés par des virgules\n"
            "                  (need.*,offer.published, * pour tous) ; match.found, match.feedback et\n"
            "                  collective_need.detected seulement s'ils sont nommés\n"
            "  --label TEXTE   une note pour les opérateurs (qui le détient)\n"
            "%s",
            MG_TOKEN_DEFAULT_TYPES, cli_common_help);
}

/* The string value of `field` in an HGETALL reply, or "". Borrowed. */
static const char *s_field(const redisReply *r, const char *field)
{
    const redisReply *v = mg_redis_field(r, field);
    return v ? v->str : "";
}

static int s_reply_ok(redisContext *c, redisReply *r)
{
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok) cli_error("token", "erreur Redis : %s", r && r->str ? r->str : c->errstr);
    if (r) freeReplyObject(r);
    return ok ? 0 : -1;
}

/* An unexpected reply: say why, free it, -1. */
static int s_fail_reply(redisContext *c, redisReply *r)
{
    cli_error_redis("token", c, r);
    if (r) freeReplyObject(r);
    return -1;
}

static int s_issue(redisContext *c, const cli_context_t *ctx, const char *network, const char *staff,
                   const char *types, const char *label) {
    const char *kind = network ? "network" : "staff";
    const char *subject = network ? network : staff;
    if (staff) {
        redisReply *r = redisCommand(c, "EXISTS mg:staff:%s", staff);
        if (!r || r->type != REDIS_REPLY_INTEGER) return s_fail_reply(c, r);
        long long exists = r->integer;
        freeReplyObject(r);
        if (!exists) {
            /* The default recipient's inbox is written undeclared: say how
             * to read it on the staff page. */
            const char *fallback = mg_config_str(ctx->config, "notifier", "default_staff");
            if (fallback && strcmp(staff, fallback) == 0)
                cli_error(
                    "token",
                    "« %s » est le destinataire par défaut ([notifier] default_staff) mais n'est pas "
                    "déclaré·e : le déclarer d'abord (« maillage staff add %s --name NOM »), ou lire sa "
                    "boîte avec « maillage inbox %s »",
                    staff, staff, staff);
            else
                cli_error("token", "chargé·e de mission inconnu·e : « %s » (voir « maillage staff list »)",
                          staff);
            return -1;
        }
        types = "";
    } else if (!types) {
        types = MG_TOKEN_DEFAULT_TYPES;
    }
    char token[MG_TOKEN_LEN + 1], hash[MG_TOKEN_HASH_LEN + 1], id[MG_TOKEN_ID_LEN + 1];
    for (int attempt = 0;; attempt++) {
        if (mg_token_generate(token) != 0) {
            cli_error("token", "impossible d'initialiser libsodium");
            return -1;
        }
        mg_token_hash_hex(token, strlen(token), hash);
        mg_token_id_from_hash(hash, id);
        /* Claim the id first: two tokens never share one (48 bits of hash). */
        redisReply *r = redisCommand(c, "HSETNX %s %s %s", MG_TOKENS_KEY, id, hash);
        if (!r || r->type != REDIS_REPLY_INTEGER) return s_fail_reply(c, r);
        long long claimed = r->integer;
        freeReplyObject(r);
        if (claimed) break;
        if (attempt == 5) {
            cli_error("token", "aucun identifiant de jeton libre n'a été trouvé");
            return -1;
        }
    }
    char created[24];
    snprintf(created, sizeof created, "%" PRId64, mg_clock_now_ms());
    redisReply *r = redisCommand(c, "HSET %s%s id %s kind %s subject %s types %s label %s created_at_ms %s",
                                 MG_TOKEN_KEY_PREFIX, hash, id, kind, subject, types, label ? label : "", created);
    if (s_reply_ok(c, r) != 0) {
        freeReplyObject(redisCommand(c, "HDEL %s %s", MG_TOKENS_KEY, id));
        return -1;
    }
    printf("%s\n", token);
    fflush(stdout);
    fprintf(stderr,
            "Jeton %s créé pour %s %s. Il n'est pas conservé en clair : copiez-le maintenant, il ne sera plus "
            "affiché (révocation : maillage token revoke %s).\n",
            id, network ? "le réseau" : "la personne", subject, id);
    return 0;
}

static int s_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int s_list(redisContext *c)
{
    redisReply *all = redisCommand(c, "HGETALL %s", MG_TOKENS_KEY);
    if (!all || all->type != REDIS_REPLY_ARRAY) return s_fail_reply(c, all);
    size_t n = all->elements / 2;
    if (n == 0) {
        printf("Aucun jeton.\n");
        freeReplyObject(all);
        return 0;
    }
    /* Pairs (id, hash) sorted by id. */
    char **pairs = calloc(n, sizeof *pairs);
    if (!pairs) abort();
    for (size_t i = 0; i < n; i++) pairs[i] = all->element[2 * i]->str;
    qsort(pairs, n, sizeof *pairs, s_compare);
    /* Every token first, to size the holder and events columns by the
     * longest (ids have up to 64 characters). */
    redisReply **tokens = calloc(n, sizeof *tokens);
    if (!tokens) abort();
    size_t holder_w = cli_utf8_width("titulaire"), types_w = cli_utf8_width("événements");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const redisReply *hash = mg_redis_field(all, pairs[i]);
        if (!hash || strlen(hash->str) != MG_TOKEN_HASH_LEN) continue;
        redisReply *t = redisCommand(c, "HGETALL %s%s", MG_TOKEN_KEY_PREFIX, hash->str);
        if (!t || t->type != REDIS_REPLY_ARRAY) {
            rc = s_fail_reply(c, t);
            break;
        }
        tokens[i] = t;
        const char *kind = s_field(t, "kind"),
                   *types = strcmp(kind, "network") == 0 ? s_field(t, "types") : "-";
        if (cli_utf8_width(s_field(t, "subject")) > holder_w)
            holder_w = cli_utf8_width(s_field(t, "subject"));
        if (cli_utf8_width(types) > types_w) types_w = cli_utf8_width(types);
    }
    if (rc == 0) {
        /* French headers: pad by characters, not bytes (cli_pad). */
        printf("%-18s %-8s ", "jeton", "type");
        cli_pad(stdout, "titulaire", holder_w + 1);
        cli_pad(stdout, "créé le", 17);
        cli_pad(stdout, "événements", types_w + 1);
        printf("note\n");
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const redisReply *t = tokens[i];
        if (!t) continue;
        const char *kind = s_field(t, "kind");
        char when[CLI_PARIS_TIME_LEN] = "?";
        long long ms = strtoll(s_field(t, "created_at_ms"), NULL, 10);
        if (ms > 0) cli_paris_time(ms, when); /* as `inbox` shows times */
        printf("%-18s ", pairs[i]);
        cli_pad(stdout, strcmp(kind, "network") == 0 ? "réseau" : strcmp(kind, "staff") == 0 ? "équipe" : "?", 9);
        cli_pad(stdout, s_field(t, "subject"), holder_w + 1);
        printf("%-16s ", when);
        cli_pad(stdout, strcmp(kind, "network") == 0 ? s_field(t, "types") : "-", types_w + 1);
        printf("%s\n", s_field(t, "label"));
    }
    for (size_t i = 0; i < n; i++)
        if (tokens[i]) freeReplyObject(tokens[i]);
    free(tokens);
    free(pairs);
    freeReplyObject(all);
    return rc;
}

static int s_revoke(redisContext *c, const char *id)
{
    if (!mg_id_is_valid(id) || strncmp(id, "tok-", 4) != 0) {
        cli_error("token", "« %s » n'est pas un identifiant de jeton (tok-..., voir « maillage token list »)",
                  id);
        return -1;
    }
    redisReply *r = redisCommand(c, "HGET %s %s", MG_TOKENS_KEY, id);
    if (!r || r->type == REDIS_REPLY_ERROR) return s_fail_reply(c, r);
    if (r->type != REDIS_REPLY_STRING || r->len != MG_TOKEN_HASH_LEN) {
        freeReplyObject(r);
        cli_error("token", "aucun jeton « %s » (voir « maillage token list »)", id);
        return -1;
    }
    char hash[MG_TOKEN_HASH_LEN + 1];
    memcpy(hash, r->str, sizeof hash);
    freeReplyObject(r);
    if (s_reply_ok(c, redisCommand(c, "DEL %s%s", MG_TOKEN_KEY_PREFIX, hash)) != 0 ||
        s_reply_ok(c, redisCommand(c, "HDEL %s %s", MG_TOKENS_KEY, id)) != 0 ||
        s_reply_ok(c, redisCommand(c, "PUBLISH %s %s", MG_TOKENS_REVOKED_CHANNEL, hash)) != 0)
        return -1;
    printf("Jeton %s révoqué : il est refusé dès maintenant.\n", id);
    return 0;
}

int cli_token_revoke_staff(redisContext *c, const char *staff_id)
{
    static const char script[] = MG_TOKEN_REVOKE_STAFF_LUA "return revoke_staff_tokens(ARGV[1])\n";
    redisReply *r = redisCommand(c, "EVAL %s 0 %s", script, staff_id);
    int revoked = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    if (revoked < 0) return s_fail_reply(c, r);
    freeReplyObject(r);
    return revoked;
}

int cli_cmd_token(int argc, char **argv, cli_settings_t *settings)
{
    enum { OPT_NETWORK = 2001, OPT_STAFF, OPT_TYPES, OPT_LABEL };
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS,
                                            {"network", required_argument, NULL, OPT_NETWORK},
                                            {"staff", required_argument, NULL, OPT_STAFF},
                                            {"types", required_argument, NULL, OPT_TYPES},
                                            {"label", required_argument, NULL, OPT_LABEL},
                                            {NULL, 0, NULL, 0}};
    const char *network = NULL, *staff = NULL, *types = NULL, *label = NULL;
    int opt;
    while ((opt = cli_getopt("token", argc, argv, "h", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        if (cli_settings_option(settings, opt, optarg)) continue;
        switch (opt) {
        case OPT_NETWORK: network = optarg; break;
        case OPT_STAFF: staff = optarg; break;
        case OPT_TYPES: types = optarg; break;
        case OPT_LABEL: label = optarg; break;
        case 'h': s_usage(stdout); return CLI_EXIT_OK;
        default: s_usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    const char *action = optind < argc ? argv[optind] : NULL;
    int nargs = argc - optind;
    if (!action) {
        cli_error("token", "attendu : issue, list ou revoke TOKEN_ID (voir « maillage token --help »)");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(action, "issue") == 0) {
        if (nargs != 1 || !network == !staff) {
            cli_error("token", "issue : donnez soit --network ID, soit --staff ID");
            return CLI_EXIT_USAGE;
        }
        if (staff && types) {
            cli_error("token", "issue : --types ne vaut que pour les jetons de réseau");
            return CLI_EXIT_USAGE;
        }
        /* Values of the command line: usage errors, found before Redis. */
        const char *subject = network ? network : staff;
        if (cli_check_id("token", subject) != 0) return CLI_EXIT_USAGE;
        char err[512];
        if (network && mg_token_types_check(types ? types : MG_TOKEN_DEFAULT_TYPES, err, sizeof err) != 0) {
            cli_error("token", "--types : %s", err);
            return CLI_EXIT_USAGE;
        }
    } else if (strcmp(action, "list") == 0 ? nargs != 1 : strcmp(action, "revoke") != 0 || nargs != 2) {
        cli_error("token", "attendu : issue, list ou revoke TOKEN_ID (voir « maillage token --help »)");
        return CLI_EXIT_USAGE;
    } else if (network || staff || types || label) {
        cli_error("token", "--network, --staff, --types et --label ne vont qu'avec issue");
        return CLI_EXIT_USAGE;
    }
    if (label && strpbrk(label, "\r\n")) {
        cli_error("token", "--label : une seule ligne de texte");
        return CLI_EXIT_USAGE;
    }
    cli_context_t ctx;
    int rc = CLI_EXIT_FAIL;
    int init = cli_context_init(&ctx, settings, "token");
    if (init != CLI_EXIT_OK) return init;
    redisContext *redis = cli_redis_connect(&ctx, "token");
    if (redis) {
        int ok = strcmp(action, "issue") == 0  ? s_issue(redis, &ctx, network, staff, types, label)
                 : strcmp(action, "list") == 0 ? s_list(redis)
                                               : s_revoke(redis, argv[optind + 1]);
        rc = ok == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
        redisFree(redis);
    }
    fflush(stdout);
    cli_context_destroy(&ctx);
    return rc;
}
