/* staff.c -- `maillage staff list|show ID|add ID ...|set ID KEY VALUE|remove ID|reset ID`:
 * the chamber's staff and their scope, in Redis (mg:staff set, mg:staff:<id>
 * hashes), as maillage-notifier reads them (again every staff_refresh_ms).
 *
 * Values are checked by the configuration's own schema (the [staff.*]
 * template), so a value refused here is refused in the config file too, with
 * the same words.
 *
 * Who owns a record: the notifier writes the [staff.<id>] sections of its
 * config at each start with origin=config, and removes the config's records
 * whose section is gone. Whatever this command adds or edits becomes
 * origin=cli and an id it removes is remembered in mg:staff_removed: the
 * config no longer touches either, so an edit made here is never undone by a
 * restart. `reset ID` gives the id back to the config. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "maillage/french.h"
#include "maillage/mem.h"
#include "maillage/outbound.h"
#include "maillage/redis.h"
#include "maillage/staff.h"

static const char *const s_keys[] = {"name",     "email",    "webhook", "departments", "categories",
                                     "networks", "min_score", "channels", "mode",       "digest_hour",
                                     "quiet_start", "quiet_end", NULL};

#define S_KEYS (sizeof s_keys / sizeof s_keys[0] - 1)

/* The channels that need an address, which field of the record holds it
 * (the field is named as the channel), and how the French messages say it. */
static const struct {
    const char *channel, *a, *of_a, *without, *placeholder;
} s_addressed[] = {
    {"email", "une adresse", "d'une adresse", "sans adresse", "ADRESSE"},
    {"webhook", "une URL", "d'une URL", "sans URL", "URL"},
};

#define S_ADDRESSED (sizeof s_addressed / sizeof s_addressed[0])

/* A change to a record: field keys[i] set to values[i] (borrowed). */
typedef struct {
    const char *keys[S_KEYS], *values[S_KEYS];
    size_t n;
} s_change_t;

static const s_change_t s_unchanged = {.n = 0};

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage : maillage staff [OPTIONS] [list]\n"
            "        maillage staff [OPTIONS] show ID\n"
            "        maillage staff [OPTIONS] add ID --name NOM [--email ADRESSE] [--webhook URL]\n"
            "                       [--departments 14,50] [--categories locaux,...] [--networks ...]\n"
            "                       [--min-score 0.5] [--channels inbox,email,webhook]\n"
            "                       [--mode immediate|digest] [--digest-hour H (avec digest)]\n"
            "                       [--quiet-start H --quiet-end H]\n"
            "        maillage staff [OPTIONS] set ID CLÉ VALEUR\n"
            "        maillage staff [OPTIONS] remove ID\n"
            "        maillage staff [OPTIONS] reset ID\n"
            "\n"
            "Les chargé·e·s de mission de la chambre et ce qu'elles et ils suivent ; le notifier\n"
            "applique les changements en moins d'une seconde. Un périmètre vide (departments,\n"
            "categories, networks) veut dire tout. CLÉ est l'une de : name, email, webhook,\n"
            "departments, categories, networks, min_score, channels, mode, digest_hour,\n"
            "quiet_start, quiet_end. Les départements sont des codes de la table des communes\n"
            "(14, 27, 50, 61, 76 pour la Normandie), les catégories des codes de la taxonomie de\n"
            "la configuration (locaux, ...) : add et set refusent les autres, dont la personne\n"
            "ne recevrait rien. add refuse un identifiant qui existe (modifiez-le avec set), et\n"
            "les options de la fiche ne vont qu'avec add.\n"
            "\n"
            "Canaux : inbox, email (demande email), webhook (demande webhook). add et set\n"
            "refusent une fiche qui garderait un canal sans son adresse, quel que soit l'ordre\n"
            "des modifications (l'adresse avant le canal ; retirer le canal avant l'adresse) :\n"
            "le notifier sauterait ce canal sans rien dire. show et list marquent « canal\n"
            "inactif » un canal déjà dans cet état, et ajoutent « à défaut : boîte de\n"
            "réception » quand aucun canal n'est actif (le notifier écrit alors dans la boîte\n"
            "de réception). Les listes sont séparées par des virgules, des espaces ou des\n"
            "tabulations. min_score va de 0 à 1 (0.5), et s'écrit aussi comme l'équipe le lit :\n"
            "0,5 ou 50 %%.\n"
            "\n"
            "Configuration et CLI : à chaque démarrage, le notifier écrit les sections\n"
            "[staff.ID] de la configuration (origine config) et retire les fiches qu'il avait\n"
            "écrites dont la section a disparu. Une fiche ajoutée ou modifiée ici (add, set)\n"
            "prend l'origine cli, et un identifiant retiré ici le reste : la configuration ne\n"
            "les écrase plus ni ne les rajoute, si bien qu'une modification faite ici\n"
            "survit aux redémarrages. « reset ID » rend l'identifiant à la configuration : au\n"
            "prochain démarrage du notifier, la fiche est réécrite depuis [staff.ID], ou\n"
            "retirée si la configuration n'a pas cette section. « show ID » affiche chaque\n"
            "champ en français avec sa CLÉ, et l'origine.\n"
            "\n"
            "Options :\n"
            "%s",
            cli_common_help);
}

/* How `show` says a record, line by line in this order: a French label with
 * the keys `staff set` takes for the line, and the fields it shows. Fields
 * not in this table follow, sorted. */
static const struct {
    const char *label, *key, *also;
} s_lines[] = {
    {"nom (name)", "name", NULL},
    {"e-mail (email)", "email", NULL},
    {"webhook (webhook)", "webhook", NULL},
    {"départements (departments)", "departments", NULL},
    {"catégories (categories)", "categories", NULL},
    {"réseaux (networks)", "networks", NULL},
    {"seuil de score (min_score)", "min_score", NULL},
    {"canaux (channels)", "channels", NULL},
    {"mode (mode, digest_hour)", "mode", "digest_hour"},
    {"heures de silence (quiet_start, quiet_end)", "quiet_start", "quiet_end"},
    {"origine", "origin", NULL},
};

#define S_LINES (sizeof s_lines / sizeof s_lines[0])

/* The columns of `list`: a heading and the field shown (NULL: the id). */
static const struct {
    const char *heading, *key;
} s_columns[] = {
    {"id", NULL},
    {"nom", "name"},
    {"départements", "departments"},
    {"catégories", "categories"},
    {"seuil", "min_score"},
    {"canaux", "channels"},
    {"mode", "mode"},
};

#define S_COLUMNS (sizeof s_columns / sizeof s_columns[0])

/* Say in French why the config schema refused `value` for `key`, from the
 * type and range of the same row; `err` is the schema's own reason. */
static void s_refused(const char *key, const char *value, const char *err)
{
    const mg_config_key_t *row = mg_config_schema;
    while (row->section && !(strcmp(row->section, "staff.*") == 0 && row->key && strcmp(row->key, key) == 0))
        row++;
    const char *why = strstr(err, ": ");
    if (row->section && row->type == MG_CONFIG_INT)
        cli_error("staff", "%s : un nombre entier de %.0f à %.0f est attendu, pas « %s »", key, row->min,
                  row->max, value);
    else if (row->section && row->type == MG_CONFIG_DOUBLE)
        cli_error("staff", "%s : un nombre de %g à %g est attendu, pas « %s »", key, row->min, row->max,
                  value);
    else
        cli_error("staff", "%s : valeur refusée (%s)", key, why ? why + 2 : err);
}

/* The departments mg_staff_scope_unknown() accepts, or the taxonomy's categories
 * (`categories`), as "14, 27, 50", for an error. Caller owns the result. */
static char *s_known_codes(const cli_context_t *ctx, int categories) {
    char *text = NULL;
    size_t len = 0, n = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) return mg_strdup("?");
    if (categories) {
        for (size_t i = 0; i < mg_taxonomy_count(ctx->taxonomy); i++)
            fprintf(out, "%s%s", i ? ", " : "", mg_taxonomy_code(ctx->taxonomy, i));
    } else if (!ctx->communes) {
        for (size_t i = 0; mg_fr_department_code(i); i++)
            fprintf(out, "%s%s", i ? ", " : "", mg_fr_department_code(i));
    } else {
        /* Distinct departments, in the table's order (by code). */
        char seen[128][4];
        for (size_t i = 0; i < mg_communes_count(ctx->communes) && n < 128; i++) {
            const char *dep = mg_communes_at(ctx->communes, i)->department;
            size_t k = 0;
            while (k < n && strcmp(seen[k], dep) != 0)
                k++;
            if (k < n) continue;
            snprintf(seen[n++], sizeof seen[0], "%s", dep);
            fprintf(out, "%s%s", k ? ", " : "", dep);
        }
    }
    fclose(out);
    return text;
}

/* A score threshold as staff may write it, as the config reads it: "0,5"
 * (a decimal comma) and "50 %" (as `staff list` shows it) are "0.5". Other
 * text is returned as it is, for s_check() to refuse. */
#define S_SCORE_LEN 32
static const char *s_score_spelling(const char *value, char out[S_SCORE_LEN]) {
    size_t n = strlen(value);
    if (n == 0 || n >= S_SCORE_LEN) return value;
    char digits[S_SCORE_LEN];
    memcpy(digits, value, n + 1);
    char *comma = strchr(digits, ',');
    if (comma && !strchr(comma + 1, ',') && !strchr(digits, '.')) *comma = '.';
    int percent = n > 0 && digits[n - 1] == '%';
    if (percent) n--;
    for (;;) { /* the blank before "%": a space, U+00A0 or U+202F */
        if (n >= 1 && digits[n - 1] == ' ')
            n -= 1;
        else if (n >= 2 && memcmp(digits + n - 2, "\xc2\xa0", 2) == 0)
            n -= 2;
        else if (n >= 3 && memcmp(digits + n - 3, "\xe2\x80\xaf", 3) == 0)
            n -= 3;
        else
            break;
    }
    digits[n] = '\0';
    char *end;
    double v = n && (digits[0] >= '0' && digits[0] <= '9') ? strtod(digits, &end) : -1;
    if (v < 0 || *end) return value;
    snprintf(out, S_SCORE_LEN, "%.6g", percent ? v / 100 : v);
    return out;
}

/* Refuse a scope that names a department or category the notifier cannot
 * match: that person would silently receive nothing of it. The taxonomy is
 * the configuration's (the broker refuses events of other categories); when
 * it could not be loaded (a warning said so), categories are not checked. */
static int s_check_scope(const cli_context_t *ctx, const char *key, const char *value) {
    char bad[128];
    if (!mg_staff_scope_unknown(key, value, ctx->taxonomy, ctx->communes, bad, sizeof bad)) return 0;
    int categories = strcmp(key, "categories") == 0;
    char *known = s_known_codes(ctx, categories);
    cli_error("staff", "%s : %s « %s » (%s)", key, categories ? "catégorie inconnue" : "département inconnu",
              bad, known);
    free(known);
    return -1;
}

/* Check (key, value) with the config schema of [staff.*], and a scope with
 * the tables of `ctx`; prints the reason. */
static int s_check(const cli_context_t *ctx, const char *id, const char *key, const char *value) {
    int known = 0;
    for (size_t i = 0; s_keys[i]; i++) known |= strcmp(s_keys[i], key) == 0;
    if (!known) {
        cli_error("staff", "clé inconnue « %s » (name, email, webhook, departments, categories, networks, "
                           "min_score, channels, mode, digest_hour, quiet_start, quiet_end)", key);
        return -1;
    }
    if (strchr(value, '\n') || strchr(value, '\r')) {
        cli_error("staff", "%s : la valeur doit tenir sur une seule ligne", key);
        return -1;
    }
    char *text = mg_asprintf("[staff.%s]\n%s = %s\n", id, key, value);
    char err[512];
    mg_config_t *cfg = mg_config_load_buffer("staff", text, strlen(text), err, sizeof err);
    free(text);
    if (!cfg) {
        s_refused(key, value, err);
        return -1;
    }
    mg_config_destroy(&cfg);
    if (strcmp(key, "name") == 0 && value[strspn(value, " \t")] == '\0') {
        cli_error("staff", "name : un nom est attendu, celui par lequel les messages saluent la personne (« "
                           "Claire Dupont »)");
        return -1;
    }
    if (strcmp(key, "email") == 0 && *value && !mg_outbound_mailbox_is_valid(value)) {
        cli_error("staff",
                  "email : « %s » n'est pas une adresse électronique (une seule, par exemple "
                  "claire.dupont@cress-normandie.org)",
                  value);
        return -1;
    }
    if (strcmp(key, "webhook") == 0 && *value && !mg_outbound_webhook_url_is_valid(value)) {
        cli_error("staff", "webhook : « %s » n'est pas une adresse http:// ou https://", value);
        return -1;
    }
    if (strcmp(key, "mode") == 0 && strcmp(value, "immediate") != 0 && strcmp(value, "digest") != 0) {
        cli_error("staff", "mode : « immediate » ou « digest » attendu, pas « %s »", value);
        return -1;
    }
    if (strcmp(key, "channels") == 0) {
        size_t len;
        for (const char *t, *p = value; (t = mg_staff_list_next(&p, &len));) {
            char *channel = mg_strndup(t, len);
            int ok = !strcmp(channel, "inbox") || !strcmp(channel, "email") || !strcmp(channel, "webhook");
            if (!ok) cli_error("staff", "channels : canal inconnu « %s » (inbox, email, webhook)", channel);
            free(channel);
            if (!ok) return -1;
        }
    }
    return s_check_scope(ctx, key, value);
}

static int s_redis_ok(redisContext *c, redisReply *r)
{
    if (!r || r->type == REDIS_REPLY_ERROR) {
        cli_error_redis("staff", c, r);
        if (r) freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

static const char *s_field(const redisReply *h, const char *name)
{
    const redisReply *v = mg_redis_field(h, name);
    return v && *v->str ? v->str : NULL;
}

static int s_compare(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Field `key` of record `h` (an HGETALL reply) once `change` applies: the
 * value the change gives it, else the record's, else NULL (absent).
 * Borrowed from `h` or `change`. */
static const char *s_after(const redisReply *h, const s_change_t *change, const char *key)
{
    for (size_t i = change->n; i-- > 0;)
        if (strcmp(change->keys[i], key) == 0) return change->values[i];
    const redisReply *v = mg_redis_field(h, key);
    return v ? v->str : NULL;
}

/* The channels field of record `h` once `change` applies; absent means the
 * inbox (as the notifier reads it). Borrowed. */
static const char *s_channels_after(const redisReply *h, const s_change_t *change)
{
    const char *channels = s_after(h, change, "channels");
    return channels ? channels : "inbox";
}

/* The row of s_addressed of `channel` if record `h` lists it among its
 * channels (absent: inbox) with no address, so that the notifier drops it
 * without a word (s_staff_fill in services/notifier/notifier.c); else -1. */
static int s_inactive(const redisReply *h, const s_change_t *change, const char *channel)
{
    for (size_t k = 0; k < S_ADDRESSED; k++) {
        if (strcmp(s_addressed[k].channel, channel) != 0) continue;
        const char *address = s_after(h, change, channel);
        int listed = mg_staff_list_has(s_channels_after(h, change), channel);
        return listed && !(address && *address) ? (int)k : -1;
    }
    return -1;
}

/* `channels` without `channel`, comma-separated, or "inbox" if nothing is
 * left: what to set before emptying the channel's address. Caller owns the
 * result. */
static char *s_without(const char *channels, const char *channel)
{
    char *rest = mg_calloc(strlen(channels) + sizeof "inbox", 1);
    size_t len;
    for (const char *t, *p = channels; (t = mg_staff_list_next(&p, &len));) {
        if (len == strlen(channel) && memcmp(t, channel, len) == 0) continue;
        if (*rest) strcat(rest, ",");
        strncat(rest, t, len);
    }
    if (!*rest) strcpy(rest, "inbox");
    return rest;
}

/* Refuse `change` to record `id` (`h`: its HGETALL, empty if new) if it
 * leaves a channel without its address: a person would believe she gets
 * e-mails that the notifier never sends. What is checked is the record
 * after the change, so the order of the edits does not matter; the reason
 * names the step that makes the change possible. `adding` (staff add): the
 * whole record is being declared. A `set` of another field of a record
 * already in that state (written by hand, or by an older version) goes
 * through with a warning. Returns 0, or -1 with the reason printed. */
static int s_check_addresses(const char *id, const redisReply *h, const s_change_t *change, int adding)
{
    int channels_changed = 0;
    for (size_t i = 0; i < change->n; i++)
        channels_changed |= strcmp(change->keys[i], "channels") == 0;
    for (size_t k = 0; k < S_ADDRESSED; k++) {
        const char *channel = s_addressed[k].channel;
        if (s_inactive(h, change, channel) < 0) continue;
        int address_changed = 0;
        for (size_t i = 0; i < change->n; i++)
            address_changed |= strcmp(change->keys[i], channel) == 0;
        if (adding) {
            cli_error("staff", "channels : le canal « %s » a besoin %s (--%s %s)", channel,
                      s_addressed[k].of_a, channel, s_addressed[k].placeholder);
        } else if (address_changed) {
            char *rest = s_without(s_channels_after(h, change), channel);
            cli_error(
                "staff",
                "%s : %s est nécessaire tant que le canal « %s » est actif pour %s (le retirer d'abord : "
                "« maillage staff set %s channels %s »)",
                channel, s_addressed[k].a, channel, id, id, rest);
            free(rest);
        } else if (channels_changed) {
            cli_error("staff",
                      "channels : le canal « %s » a besoin %s, et %s n'en a pas (l'ajouter d'abord : "
                      "« maillage staff set %s %s %s »)",
                      channel, s_addressed[k].of_a, id, id, channel, s_addressed[k].placeholder);
        } else {
            cli_error(
                "staff",
                "attention : le canal « %s » reste inactif pour %s, %s (« maillage staff set %s %s %s »)",
                channel, id, s_addressed[k].without, id, channel, s_addressed[k].placeholder);
            continue;
        }
        return -1;
    }
    return 0;
}

/* One item of a list field of record `h` in French: "Calvados (14)",
 * "Locaux [locaux]" (a category's label may hold parentheses and commas: the
 * brackets end each item), "boîte de réception", "e-mail (sans adresse :
 * canal inactif)"; departments and categories by their code alone when
 * `brief`. */
static void s_item(FILE *out, const cli_context_t *ctx, const redisReply *h, const char *key,
                   const char *item, int brief)
{
    const char *department = strcmp(key, "departments") == 0 ? mg_fr_department(item) : NULL;
    const char *category =
        strcmp(key, "categories") == 0 && ctx->taxonomy ? mg_taxonomy_label(ctx->taxonomy, item) : NULL;
    if (strcmp(key, "channels") == 0) {
        int k = s_inactive(h, &s_unchanged, item);
        fputs(strcmp(item, "inbox") == 0   ? "boîte de réception"
              : strcmp(item, "email") == 0 ? "e-mail"
                                           : item,
              out);
        if (k >= 0) fprintf(out, " (%s : canal inactif)", s_addressed[k].without);
    } else if (department && !brief)
        fprintf(out, "%s (%s)", department, item);
    else if (category && !brief)
        fprintf(out, "%s [%s]", category, item);
    else
        fputs(item, out);
}

/* Whether the notifier sends record `h`'s notifications to the inbox although
 * its channels do not list it: no channel is active, and it never lets a
 * notification fall into silence (s_route_and_create in
 * services/notifier/notifier.c). */
static int s_inbox_by_default(const redisReply *h)
{
    const char *channels = s_channels_after(h, &s_unchanged);
    if (mg_staff_list_has(channels, "inbox")) return 0;
    for (size_t k = 0; k < S_ADDRESSED; k++) {
        const char *channel = s_addressed[k].channel;
        if (mg_staff_list_has(channels, channel) && s_inactive(h, &s_unchanged, channel) < 0) return 0;
    }
    return 1;
}

/* A list field of record `h` (staff.h) item by item, or `none` when it lists
 * nothing. */
static void s_items(FILE *out, const cli_context_t *ctx, const redisReply *h, const char *key,
                    const char *list, const char *none, int brief)
{
    size_t len;
    int n = 0;
    for (const char *t, *p = list; (t = mg_staff_list_next(&p, &len));) {
        char *item = mg_strndup(t, len);
        if (n++) fputs(", ", out);
        s_item(out, ctx, h, key, item, brief);
        free(item);
    }
    if (!n) fputs(none, out);
}

/* The value of field `key` of record `h` in French, as the notifier reads it
 * (s_staff_fill in services/notifier/notifier.c): an absent field has its
 * default, an empty scope means all. `brief`: codes rather than labels. */
static void s_value(FILE *out, const cli_context_t *ctx, const redisReply *h, const char *key, int brief)
{
    const char *v = s_field(h, key);
    if (strcmp(key, "departments") == 0 || strcmp(key, "networks") == 0) {
        s_items(out, ctx, h, key, v ? v : "", "tous", brief);
    } else if (strcmp(key, "categories") == 0) {
        s_items(out, ctx, h, key, v ? v : "", "toutes", brief);
    } else if (strcmp(key, "channels") == 0) {
        s_items(out, ctx, h, key, s_channels_after(h, &s_unchanged), "aucun", brief); /* empty: none */
        if (s_inbox_by_default(h)) fputs(" ; à défaut : boîte de réception", out);
    } else if (strcmp(key, "min_score") == 0) {
        char percent[16];
        fputs(mg_fr_percent(v ? strtod(v, NULL) : 0, percent, sizeof percent), out);
    } else if (strcmp(key, "mode") == 0) {
        const char *hour = s_field(h, "digest_hour");
        if (v && strcmp(v, "digest") == 0) fprintf(out, "récapitulatif à %d h", hour ? atoi(hour) : 8);
        else fputs("immédiat", out);
    } else if (strcmp(key, "quiet_start") == 0) {
        const char *end = s_field(h, "quiet_end");
        int start = v ? atoi(v) : 0, stop = end ? atoi(end) : 0;
        if (start == stop) fputs("aucune", out);
        else fprintf(out, "de %d h à %d h", start, stop);
    } else if (strcmp(key, "origin") == 0) {
        fputs(v && strcmp(v, "config") == 0 ? "configuration" : "maillage staff", out);
    } else {
        fputs(v ? v : "non renseigné", out);
    }
}

/* s_value() as a new string, for a column. Caller owns the result. */
static char *s_value_text(const cli_context_t *ctx, const redisReply *h, const char *key)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out) return mg_strdup("?");
    s_value(out, ctx, h, key, 1);
    fclose(out);
    return text;
}

static int s_list(redisContext *c, const cli_context_t *ctx)
{
    redisReply *ids = redisCommand(c, "SMEMBERS mg:staff");
    if (!ids || ids->type != REDIS_REPLY_ARRAY) {
        cli_error_redis("staff", c, ids);
        if (ids) freeReplyObject(ids);
        return -1;
    }
    if (ids->elements == 0) {
        printf("Aucun·e chargé·e de mission déclaré·e.\n");
        freeReplyObject(ids);
        return 0;
    }
    char **sorted = mg_calloc(ids->elements, sizeof *sorted);
    for (size_t i = 0; i < ids->elements; i++) sorted[i] = ids->element[i]->str;
    qsort(sorted, ids->elements, sizeof *sorted, s_compare);
    /* Every cell first, the headings' too, so that each column is as wide
     * as its widest cell. */
    char **cells = mg_calloc((ids->elements + 1) * S_COLUMNS, sizeof *cells);
    size_t rows = 1, width[S_COLUMNS] = {0};
    for (size_t k = 0; k < S_COLUMNS; k++) cells[k] = mg_strdup(s_columns[k].heading);
    for (size_t i = 0; i < ids->elements; i++) {
        if (!mg_id_is_valid(sorted[i])) continue;
        redisReply *hash = redisCommand(c, "HGETALL mg:staff:%s", sorted[i]);
        if (!hash || hash->type != REDIS_REPLY_ARRAY) {
            s_redis_ok(c, hash);
            continue;
        }
        char **row = cells + rows++ * S_COLUMNS;
        for (size_t k = 0; k < S_COLUMNS; k++)
            row[k] = s_columns[k].key ? s_value_text(ctx, hash, s_columns[k].key) : mg_strdup(sorted[i]);
        freeReplyObject(hash);
    }
    for (size_t i = 0; i < rows * S_COLUMNS; i++) {
        size_t w = cli_utf8_width(cells[i]);
        if (w > width[i % S_COLUMNS]) width[i % S_COLUMNS] = w;
    }
    for (size_t i = 0; i < rows * S_COLUMNS; i++) {
        if ((i + 1) % S_COLUMNS) cli_pad(stdout, cells[i], width[i % S_COLUMNS] + 2);
        else puts(cells[i]);
        free(cells[i]);
    }
    free(cells);
    free(sorted);
    freeReplyObject(ids);
    return 0;
}

/* Whether `show` has a line of its own for `field`. */
static int s_shown(const char *field)
{
    for (size_t i = 0; i < S_LINES; i++)
        if (strcmp(s_lines[i].key, field) == 0 || (s_lines[i].also && strcmp(s_lines[i].also, field) == 0))
            return 1;
    return 0;
}

/* "  label" padded to the column of the values. */
static void s_label(const char *label, size_t width)
{
    fputs("  ", stdout);
    cli_pad(stdout, label, width + 2);
}

static int s_show(redisContext *c, const cli_context_t *ctx, const char *id)
{
    redisReply *hash = redisCommand(c, "HGETALL mg:staff:%s", id);
    if (!hash || hash->type != REDIS_REPLY_ARRAY) {
        cli_error_redis("staff", c, hash);
        if (hash) freeReplyObject(hash);
        return -1;
    }
    if (hash->elements == 0) {
        cli_error("staff", "chargé·e de mission inconnu·e : « %s » (voir « maillage staff list »)", id);
        freeReplyObject(hash);
        return -1;
    }
    /* Fields of no line (written by a newer version, or by hand), sorted. */
    const char **others = mg_calloc(hash->elements / 2 + 1, sizeof *others);
    size_t n_others = 0, width = 0;
    for (size_t i = 0; i + 1 < hash->elements; i += 2)
        if (!s_shown(hash->element[i]->str)) others[n_others++] = hash->element[i]->str;
    qsort(others, n_others, sizeof *others, s_compare);
    for (size_t i = 0; i < S_LINES + n_others; i++) {
        size_t w = cli_utf8_width(i < S_LINES ? s_lines[i].label : others[i - S_LINES]);
        if (w > width) width = w;
    }
    printf("%s\n", id);
    for (size_t i = 0; i < S_LINES + n_others; i++) {
        s_label(i < S_LINES ? s_lines[i].label : others[i - S_LINES], width);
        s_value(stdout, ctx, hash, i < S_LINES ? s_lines[i].key : others[i - S_LINES], 0);
        putchar('\n');
    }
    redisReply *n = redisCommand(c, "ZCARD mg:inbox:%s", id);
    if (n && n->type == REDIS_REPLY_INTEGER) {
        s_label("boîte de réception", width);
        printf("%lld notification%s\n", n->integer, n->integer > 1 ? "s" : "");
    }
    if (n) freeReplyObject(n);
    free(others);
    freeReplyObject(hash);
    return 0;
}

/* One try of s_write(): 1 if written, 0 if another client changed the record
 * or the staff set since WATCH (EXEC refused), -1 on error (printed). */
static int s_write_once(redisContext *c, const char *id, const s_change_t *change, int adding)
{
    if (s_redis_ok(c, redisCommand(c, "WATCH mg:staff:%s mg:staff", id)) != 0) return -1;
    redisReply *r = redisCommand(c, "SISMEMBER mg:staff %s", id);
    int exists = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (s_redis_ok(c, r) != 0) return -1;
    if (!adding && !exists) {
        cli_error("staff",
                  "chargé·e de mission inconnu·e : « %s » (l'ajouter d'abord : « maillage staff add %s "
                  "--name … »)",
                  id, id);
        return -1;
    }
    if (adding && exists) {
        cli_error("staff", "« %s » existe déjà ; utilisez « maillage staff set %s CLÉ VALEUR »", id, id);
        return -1;
    }
    redisReply *hash = redisCommand(c, "HGETALL mg:staff:%s", id);
    if (!hash || hash->type != REDIS_REPLY_ARRAY) {
        cli_error_redis("staff", c, hash);
        if (hash) freeReplyObject(hash);
        return -1;
    }
    int ok = s_check_addresses(id, hash, change, adding);
    freeReplyObject(hash);
    if (ok != 0) return -1;
    /* Edited here: the config's [staff.<id>] no longer overwrites it. */
    char *key = mg_asprintf("mg:staff:%s", id);
    const char *argv[2 + 2 * S_KEYS + 2];
    int argc = 0;
    argv[argc++] = "HSET";
    argv[argc++] = key;
    for (size_t i = 0; i < change->n; i++) {
        argv[argc++] = change->keys[i];
        argv[argc++] = change->values[i];
    }
    argv[argc++] = "origin";
    argv[argc++] = "cli";
    ok = s_redis_ok(c, redisCommand(c, "MULTI"));
    if (ok == 0) ok = s_redis_ok(c, redisCommandArgv(c, argc, argv, NULL));
    free(key);
    if (ok == 0) ok = s_redis_ok(c, redisCommand(c, "SREM mg:staff_removed %s", id));
    if (ok == 0) ok = s_redis_ok(c, redisCommand(c, "SADD mg:staff %s", id));
    if (ok != 0) return -1;
    r = redisCommand(c, "EXEC");
    if (r && r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return 0;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY) return s_redis_ok(c, r) == 0 ? 1 : -1;
    for (size_t i = 0; i < r->elements && ok == 0; i++) {
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            cli_error_redis("staff", c, r->element[i]);
            ok = -1;
        }
    }
    freeReplyObject(r);
    return ok == 0 ? 1 : -1;
}

/* Apply `change` (values already passed s_check()) to record `id`, which
 * becomes origin cli. The record it leaves is checked by
 * s_check_addresses() and written in one transaction, so that a concurrent
 * edit cannot slip in between the check and the write. `adding` (staff add):
 * the id must be new; else it must exist. Returns 0, or -1 with the reason
 * printed. */
static int s_write(redisContext *c, const char *id, const s_change_t *change, int adding)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        int written = s_write_once(c, id, change, adding);
        if (written != 0) return written > 0 ? 0 : -1;
    }
    cli_error("staff", "la fiche de %s change sans cesse ailleurs ; réessayer", id);
    return -1;
}

/* Give `id` back to the configuration: the next notifier start writes it
 * from [staff.<id>] (or removes it if there is no such section). */
static int s_reset(redisContext *c, const char *id)
{
    redisReply *r = redisCommand(c, "SREM mg:staff_removed %s", id);
    int was_removed = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (s_redis_ok(c, r) != 0) return -1;
    r = redisCommand(c, "EXISTS mg:staff:%s", id);
    int exists = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (s_redis_ok(c, r) != 0) return -1;
    if (!exists && !was_removed) {
        cli_error("staff", "chargé·e de mission inconnu·e : « %s »", id);
        return -1;
    }
    if (exists && s_redis_ok(c, redisCommand(c, "HSET mg:staff:%s origin config", id)) != 0) return -1;
    printf("Fiche « %s » rendue à la configuration : au prochain démarrage du notifier, elle sera réécrite "
           "d'après [staff.%s], ou retirée si la configuration n'a pas cette section.\n",
           id, id);
    return 0;
}

int cli_cmd_staff(int argc, char **argv, cli_settings_t *settings)
{
    enum { O_NAME = 2000, O_EMAIL, O_WEBHOOK, O_DEPS, O_CATS, O_NETS, O_MIN, O_CHANNELS, O_MODE, O_HOUR, O_QS, O_QE };
    static const struct option options[] = {
        CLI_COMMON_LONG_OPTIONS,
        {"name", required_argument, NULL, O_NAME},
        {"email", required_argument, NULL, O_EMAIL},
        {"webhook", required_argument, NULL, O_WEBHOOK},
        {"departments", required_argument, NULL, O_DEPS},
        {"categories", required_argument, NULL, O_CATS},
        {"networks", required_argument, NULL, O_NETS},
        {"min-score", required_argument, NULL, O_MIN},
        {"channels", required_argument, NULL, O_CHANNELS},
        {"mode", required_argument, NULL, O_MODE},
        {"digest-hour", required_argument, NULL, O_HOUR},
        {"quiet-start", required_argument, NULL, O_QS},
        {"quiet-end", required_argument, NULL, O_QE},
        {NULL, 0, NULL, 0},
    };
    const char *values[S_KEYS] = {NULL};
    int opt;
    while ((opt = cli_getopt("staff", argc, argv, "h", options)) != -1) {
        if (opt == '?') return CLI_EXIT_USAGE;
        if (cli_settings_option(settings, opt, optarg)) continue;
        if (opt == 'h') {
            s_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (opt >= O_NAME && opt <= O_QE) {
            values[opt - O_NAME] = optarg;
            continue;
        }
        s_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char score[S_SCORE_LEN];
    if (values[O_MIN - O_NAME]) values[O_MIN - O_NAME] = s_score_spelling(values[O_MIN - O_NAME], score);
    const char *action = optind < argc ? argv[optind] : "list";
    int nargs = argc - optind;
    int ok_usage = (strcmp(action, "list") == 0 && nargs <= 1) || (strcmp(action, "show") == 0 && nargs == 2) ||
                   (strcmp(action, "add") == 0 && nargs == 2) || (strcmp(action, "set") == 0 && nargs == 4) ||
                   (strcmp(action, "remove") == 0 && nargs == 2) || (strcmp(action, "reset") == 0 && nargs == 2);
    if (!ok_usage) {
        cli_error("staff", "attendu : list, show ID, add ID --name NOM, set ID CLÉ VALEUR, remove ID ou "
                           "reset ID (voir « maillage staff --help »)");
        return CLI_EXIT_USAGE;
    }
    const char *id = nargs >= 2 ? argv[optind + 1] : NULL;
    if (id && cli_check_id("staff", id) != 0) return CLI_EXIT_USAGE;
    if (strcmp(action, "add") == 0 && !values[0]) {
        cli_error("staff", "add : --name est obligatoire");
        return CLI_EXIT_USAGE;
    }
    /* The record's options describe a new record: elsewhere they would be
     * ignored without a word. */
    for (size_t i = 0; i < S_KEYS && strcmp(action, "add") != 0; i++) {
        if (!values[i]) continue;
        const char *flag = cli_option_name(options, O_NAME + (int)i);
        if (strcmp(action, "set") == 0)
            cli_error("staff",
                      "set : --%s ne va qu'avec add ; une clé à la fois : « maillage staff set %s %s %s »",
                      flag, id, s_keys[i], values[i]);
        else
            cli_error("staff", "%s : --%s ne va qu'avec add", action, flag);
        return CLI_EXIT_USAGE;
    }
    /* Options of `add` that mean something only together. */
    const char *mode = values[O_MODE - O_NAME], *quiet_start = values[O_QS - O_NAME],
               *quiet_end = values[O_QE - O_NAME];
    if (values[O_HOUR - O_NAME] && !(mode && strcmp(mode, "digest") == 0)) {
        cli_error("staff",
                  "add : --digest-hour ne sert qu'avec --mode digest (l'heure du récapitulatif quotidien)");
        return CLI_EXIT_USAGE;
    }
    if (!quiet_start != !quiet_end) {
        cli_error("staff",
                  "add : --quiet-start et --quiet-end vont ensemble (les heures de silence, de H à H)");
        return CLI_EXIT_USAGE;
    }
    cli_context_t ctx;
    int init = cli_context_init(&ctx, settings, "staff");
    if (init != CLI_EXIT_OK) return init;
    /* category labels (show), known departments and categories (add, set) */
    if (strcmp(action, "show") == 0 || strcmp(action, "add") == 0 || strcmp(action, "set") == 0)
        cli_context_load_tables(&ctx, "staff");
    int rc = CLI_EXIT_FAIL;
    redisContext *c = cli_redis_connect(&ctx, "staff");
    if (c) {
        int ok = -1, refused = 0; /* a value of the command line refused: a usage error */
        if (strcmp(action, "list") == 0) ok = s_list(c, &ctx);
        else if (strcmp(action, "show") == 0) ok = s_show(c, &ctx, id);
        else if (strcmp(action, "set") == 0) {
            /* "min-score", as `staff add --min-score` spells it, is min_score. */
            for (char *k = argv[optind + 2]; *k; k++)
                if (*k == '-') *k = '_';
            const char *value = argv[optind + 3];
            if (strcmp(argv[optind + 2], "min_score") == 0) value = s_score_spelling(value, score);
            s_change_t change = {.keys = {argv[optind + 2]}, .values = {value}, .n = 1};
            ok = s_check(&ctx, id, change.keys[0], change.values[0]);
            refused = ok != 0;
            if (ok == 0) ok = s_write(c, id, &change, 0);
            if (ok == 0) printf("%s : %s = %s\n", id, argv[optind + 2], value);
        } else if (strcmp(action, "reset") == 0) {
            ok = s_reset(c, id);
        } else if (strcmp(action, "remove") == 0) {
            redisReply *r = redisCommand(c, "SREM mg:staff %s", id);
            int removed = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
            if (r) freeReplyObject(r);
            r = redisCommand(c, "DEL mg:staff:%s", id);
            if (r) freeReplyObject(r);
            if (removed) {
                /* Remembered, so that the config's [staff.<id>] does not
                 * bring the person back at the next notifier start. */
                ok = s_redis_ok(c, redisCommand(c, "SADD mg:staff_removed %s", id));
                int tokens = ok == 0 ? cli_token_revoke_staff(c, id) : 0;
                if (tokens < 0) ok = -1;
                if (ok == 0)
                    printf("%s retiré·e ; sa boîte de réception (mg:inbox:%s) est conservée, %d jeton%s "
                           "HTTP révoqué%s. Une section [staff.%s] de la configuration ne l'ajoutera plus "
                           "(« maillage staff reset %s » pour l'y rendre).\n",
                           id, id, tokens, tokens > 1 ? "s" : "", tokens > 1 ? "s" : "", id, id);
            } else {
                cli_error("staff", "chargé·e de mission inconnu·e : « %s »", id);
            }
        } else {
            s_change_t change = {.n = 0};
            ok = 0;
            for (size_t i = 0; i < S_KEYS && ok == 0; i++) {
                if (!values[i]) continue;
                refused = (ok = s_check(&ctx, id, s_keys[i], values[i])) != 0;
                change.keys[change.n] = s_keys[i];
                change.values[change.n++] = values[i];
            }
            if (ok == 0) ok = s_write(c, id, &change, 1);
            if (ok == 0) printf("%s ajouté·e.\n", id);
        }
        rc = ok == 0 ? CLI_EXIT_OK : refused ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
        redisFree(c);
    }
    fflush(stdout);
    cli_context_destroy(&ctx);
    return rc;
}
