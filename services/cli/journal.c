/* journal.c -- `maillage journal`: read the journal back (Redis XRANGE
 * through journal.h), as JSON lines, French text, or a French at-a-glance
 * summary of the territory: events by type, open needs and offers by category
 * and department, structures by family and department.
 *
 * The summary replays the journal the way the matcher applies it (a
 * need.updated replaces the need, a need.closed removes it, a member.left
 * removes the structure; an update or close naming another structure than
 * the item's is void, a close with if_unchanged_since is void once a later
 * event changed the item, and a closed id stays closed: a later report of
 * it changes nothing), so its counts are the current state the API's
 * figures show, not a tally of events. */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "maillage/french.h"
#include "maillage/journal.h"
#include "maillage/json.h"
#include "maillage/mem.h"

/* ---- what the summary's replay keeps of each item (a cli_map_t entry) ----- */

typedef struct {
    cli_map_entry_t entry; /* its id */
    char department[4];
    char *category; /* needs and offers */
    char *owner;    /* needs and offers: the structure that reported or published it */
    uint64_t seq;   /* needs and offers: the sequence of its last event */
    int family;     /* structures */
} s_item_t;

static s_item_t *s_map_put(cli_map_t *m, const char *key)
{
    return (s_item_t *)cli_map_put(m, key, sizeof(s_item_t));
}

static void s_item_drop(cli_map_entry_t *e)
{
    free(((s_item_t *)e)->category);
    free(((s_item_t *)e)->owner);
}

/* Each item of `m`: for (s_item_t *it = s_first(m); it; it = s_next(m, it)). */
static s_item_t *s_first(const cli_map_t *m)
{
    return (s_item_t *)cli_map_next(m, NULL);
}

static s_item_t *s_next(const cli_map_t *m, const s_item_t *it)
{
    return (s_item_t *)cli_map_next(m, &it->entry);
}

/* ---- reading ------------------------------------------------------------ */

typedef struct {
    cli_context_t *ctx;
    redisContext *redis; /* the journal's, also for the names of text */
    char **types;
    int n_types;
    int text;
    int summary;
    uint64_t to; /* --to (0 = to the end) */
    uint64_t delivered, first_seq, last_seq;
    /* summary */
    size_t n_event_types;
    uint64_t *by_type; /* one per entry of mg_event_types(), then "other" */
    uint64_t closed_needs, withdrawn_offers; /* open ones closed, not close events */
    uint64_t matches[3];                     /* match.found: proposals, revisions, retirements */
    cli_map_t needs, offers, structures;     /* the open ones, the members */
    cli_map_t needs_closed, offers_closed;   /* ids closed for good (entries without data) */
} s_journal_t;

static int s_wanted(const s_journal_t *j, const char *type)
{
    if (j->n_types == 0) return 1;
    for (int i = 0; i < j->n_types; i++)
        if (strncmp(type, j->types[i], strlen(j->types[i])) == 0) return 1;
    return 0;
}

/* A need or an offer reported, published (`report`) or updated, by
 * structure `owner` at sequence `seq`, into `open` unless `closed` holds its
 * id or the open item is another structure's; a report only creates, as the
 * matcher reads it. */
static void s_track_item(s_journal_t *j, cli_map_t *open, const cli_map_t *closed, const char *id,
                         const char *owner, const char *commune, const char *category, uint64_t seq,
                         int report) {
    if (!id || !*id || cli_map_get((cli_map_t *)closed, id)) return;
    s_item_t *it = (s_item_t *)cli_map_get(open, id);
    if (it && (report || (it->owner && owner && strcmp(it->owner, owner) != 0))) return;
    if (!it) it = s_map_put(open, id);
    cli_commune_department(j->ctx, commune, it->department);
    free(it->category);
    it->category = mg_strdup(category);
    free(it->owner);
    it->owner = mg_strdup(owner ? owner : "");
    it->seq = seq;
}

/* A need or an offer closed by structure `owner` ("" = not named), void
 * when it is another's or, with `if_unchanged_since`, when a later event
 * changed it; its id is then closed for good, and `count` counts an open
 * item closed. */
static void s_close_item(cli_map_t *open, cli_map_t *closed, const char *id, const char *owner,
                         uint64_t if_unchanged_since, uint64_t *count) {
    if (!id || !*id || cli_map_get(closed, id)) return;
    s_item_t *it = (s_item_t *)cli_map_get(open, id);
    if (if_unchanged_since && (it ? it->seq : 0) != if_unchanged_since) return;
    if (it && owner && *owner && it->owner && strcmp(it->owner, owner) != 0) return;
    if (it) {
        cli_map_remove(open, id, s_item_drop);
        (*count)++;
    }
    s_map_put(closed, id);
}

static void s_track_structure(s_journal_t *j, const Maillage__V1__Structure *st)
{
    if (!st || !st->structure_id || !*st->structure_id) return;
    s_item_t *it = s_map_put(&j->structures, st->structure_id);
    cli_commune_department(j->ctx, st->commune, it->department);
    it->family = (int)st->family;
}

static void s_summarise(s_journal_t *j, const mg_envelope_t *env)
{
    size_t i;
    const mg_event_type_t *types = mg_event_types(NULL);
    for (i = 0; i < j->n_event_types; i++)
        if (strcmp(types[i].type, env->type) == 0) break;
    j->by_type[i]++;

    switch (env->payload_case) {
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FOUND:
        j->matches[env->match_found->retired ? 2 : env->match_found->revision > 1 ? 1 : 0]++;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED: s_track_structure(j, env->member_joined->structure); break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED: s_track_structure(j, env->member_updated->structure); break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_LEFT:
        cli_map_remove(&j->structures, env->member_left->structure_id, s_item_drop);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED:
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED: {
        const Maillage__V1__Need *nd = env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED
                                           ? env->need_reported->need
                                           : env->need_updated->need;
        if (nd)
            s_track_item(j, &j->needs, &j->needs_closed, nd->need_id, nd->structure_id, nd->commune,
                         nd->category, env->sequence,
                         env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED);
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED: {
        const Maillage__V1__NeedClosed *c = env->need_closed;
        s_close_item(&j->needs, &j->needs_closed, c->need_id, c->structure_id, c->if_unchanged_since,
                     &j->closed_needs);
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED:
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED: {
        const Maillage__V1__Offer *of = env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED
                                            ? env->offer_published->offer
                                            : env->offer_updated->offer;
        if (of)
            s_track_item(j, &j->offers, &j->offers_closed, of->offer_id, of->provider_id, cli_offer_place(of),
                         of->category, env->sequence,
                         env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED);
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_WITHDRAWN: {
        const Maillage__V1__OfferWithdrawn *w = env->offer_withdrawn;
        s_close_item(&j->offers, &j->offers_closed, w->offer_id, w->provider_id, w->if_unchanged_since,
                     &j->withdrawn_offers);
        break;
    }
    default: break;
    }
}

static int s_on_entry(const mg_journal_entry_t *entry, void *arg)
{
    s_journal_t *j = arg;
    /* Past --to: a trimmed journal has fewer entries than the range holds. */
    if (j->to && entry->sequence > j->to) return 1;
    if (!s_wanted(j, entry->type)) return 0;
    mg_envelope_t *env = mg_envelope_unpack(entry->envelope, entry->len);
    if (!env) {
        cli_error("journal", "entrée #%" PRIu64 " : enveloppe illisible (%zu octets) ; ignorée",
                  entry->sequence, entry->len);
        return 0;
    }
    env->sequence = entry->sequence;
    if (!j->delivered) j->first_seq = entry->sequence;
    j->last_seq = entry->sequence;
    j->delivered++;
    if (j->summary) {
        s_summarise(j, env);
    } else if (j->text) {
        cli_text_event(stdout, j->ctx, j->redis, env);
    } else {
        char *json = mg_json_dumps_message(&env->base);
        puts(json);
        free(json);
    }
    mg_envelope_free(env);
    return cli_stdout_closed(); /* `| head` has what it wanted */
}

/* ---- the summary's tables ------------------------------------------------- */

#define S_MAX_COLUMNS 128
#define S_CELL 6

/* Departments seen in `maps`, sorted, as column headers. */
static size_t s_columns(cli_map_t *const *maps, size_t n_maps, char cols[][4])
{
    size_t n = 0;
    for (size_t m = 0; m < n_maps; m++) {
        for (s_item_t *it = s_first(maps[m]); it; it = s_next(maps[m], it)) {
            size_t k = 0;
            while (k < n && strcmp(cols[k], it->department) != 0) k++;
            if (k == n && n < S_MAX_COLUMNS) memcpy(cols[n++], it->department, 4);
        }
    }
    for (size_t a = 1; a < n; a++) { /* insertion sort: a handful of columns */
        char tmp[4];
        memcpy(tmp, cols[a], 4);
        size_t b = a;
        while (b > 0 && strcmp(cols[b - 1], tmp) > 0) {
            memcpy(cols[b], cols[b - 1], 4);
            b--;
        }
        memcpy(cols[b], tmp, 4);
    }
    return n;
}

static void s_cell(uint64_t v)
{
    /* "·" for zero reads better in a sparse table; it is two bytes of
     * UTF-8 for one column, so it is padded by hand. */
    if (v) printf("%*" PRIu64, S_CELL, v);
    else printf("%*s·", S_CELL - 1, "");
}

static void s_header(size_t label_width, char cols[][4], size_t n_cols)
{
    printf("  ");
    cli_pad(stdout, "", label_width);
    for (size_t c = 0; c < n_cols; c++) printf("%*s", S_CELL, cols[c]);
    printf("%*s\n", S_CELL + 1, "Total");
}

/* One row of a table: its label, its `n_cols` cells (added to `totals`
 * unless NULL) and their sum. */
static void s_row(const char *label, size_t label_width, const uint64_t *cells, size_t n_cols,
                  uint64_t *totals) {
    uint64_t sum = 0;
    printf("  ");
    cli_pad(stdout, label, label_width);
    for (size_t c = 0; c < n_cols; c++) {
        s_cell(cells[c]);
        sum += cells[c];
        if (totals) totals[c] += cells[c];
    }
    printf(" ");
    s_cell(sum);
    printf("\n");
}

/* One row per category (taxonomy order, then unknown codes), one column per
 * department, for the items of `map`. */
static void s_category_table(s_journal_t *j, cli_map_t *map, const char *title, char cols[][4], size_t n_cols)
{
    printf("\n%s : %zu\n", title, map->count);
    if (!map->count) return;
    /* Rows: taxonomy codes, then any other code met (a config change). */
    size_t n_rows = 0, cap = 16;
    const char **rows = mg_malloc(cap * sizeof *rows);
    size_t n_tax = j->ctx->taxonomy ? mg_taxonomy_count(j->ctx->taxonomy) : 0;
    for (size_t i = 0; i < n_tax; i++) {
        if (n_rows == cap) rows = mg_realloc(rows, (cap *= 2) * sizeof *rows);
        rows[n_rows++] = mg_taxonomy_code(j->ctx->taxonomy, i);
    }
    for (s_item_t *it = s_first(map); it; it = s_next(map, it)) {
        size_t r = 0;
        while (r < n_rows && strcmp(rows[r], it->category) != 0) r++;
        if (r == n_rows) {
            if (n_rows == cap) rows = mg_realloc(rows, (cap *= 2) * sizeof *rows);
            rows[n_rows++] = it->category;
        }
    }
    uint64_t *cells = mg_calloc(n_rows * (n_cols + 1), sizeof *cells);
    for (s_item_t *it = s_first(map); it; it = s_next(map, it)) {
        size_t r = 0, c = 0;
        while (strcmp(rows[r], it->category) != 0) r++;
        while (c < n_cols && strcmp(cols[c], it->department) != 0) c++;
        cells[r * (n_cols + 1) + c]++;
    }
    size_t width = strlen("Total");
    for (size_t r = 0; r < n_rows; r++) {
        const char *label = j->ctx->taxonomy ? mg_taxonomy_label(j->ctx->taxonomy, rows[r]) : NULL;
        size_t w = cli_utf8_width(label ? label : rows[r]);
        if (w > width) width = w;
    }
    width += 2;
    s_header(width, cols, n_cols);
    uint64_t *totals = mg_calloc(n_cols + 1, sizeof *totals);
    for (size_t r = 0; r < n_rows; r++) {
        const char *label = j->ctx->taxonomy ? mg_taxonomy_label(j->ctx->taxonomy, rows[r]) : NULL;
        s_row(label ? label : rows[r], width, cells + r * (n_cols + 1), n_cols, totals);
    }
    s_row("Total", width, totals, n_cols, NULL);
    free(totals);
    free(cells);
    free(rows);
}

static void s_family_table(s_journal_t *j, char cols[][4], size_t n_cols)
{
    enum { S_FAMILIES = 9 };
    cli_map_t *map = &j->structures;
    printf("\nStructures par famille et département : %zu\n", map->count);
    if (!map->count) return;
    uint64_t cells[S_FAMILIES][S_MAX_COLUMNS + 1];
    memset(cells, 0, sizeof cells);
    for (s_item_t *it = s_first(map); it; it = s_next(map, it)) {
        size_t c = 0;
        while (c < n_cols && strcmp(cols[c], it->department) != 0) c++;
        int f = it->family >= 0 && it->family < S_FAMILIES ? it->family : 0;
        cells[f][c]++;
    }
    /* Families in the order of the design, "unspecified" last. */
    static const int order[S_FAMILIES] = {1, 2, 3, 4, 5, 8, 6, 7, 0};
    size_t width = 0;
    for (int f = 0; f < S_FAMILIES; f++) {
        size_t w = cli_utf8_width(mg_fr_family_plural((Maillage__V1__Family)f));
        if (w > width) width = w;
    }
    width += 2;
    s_header(width, cols, n_cols);
    uint64_t totals[S_MAX_COLUMNS + 1] = {0};
    for (int k = 0; k < S_FAMILIES; k++) {
        int f = order[k];
        uint64_t row_total = 0;
        for (size_t c = 0; c < n_cols; c++) row_total += cells[f][c];
        if (row_total) s_row(mg_fr_family_plural((Maillage__V1__Family)f), width, cells[f], n_cols, totals);
    }
    s_row("Total", width, totals, n_cols, NULL);
}

static void s_print_summary(s_journal_t *j)
{
    const mg_event_type_t *types = mg_event_types(NULL);
    if (!j->delivered) {
        printf("Journal : aucun événement.\n");
        return;
    }
    if (j->delivered == 1)
        printf("Journal : 1 événement (séquence %" PRIu64 ")\n", j->first_seq);
    else
        printf("Journal : %" PRIu64 " événements (séquences %" PRIu64 " à %" PRIu64 ")\n", j->delivered,
               j->first_seq, j->last_seq);

    printf("\nÉvénements par type\n");
    size_t width = 0;
    for (size_t i = 0; i < j->n_event_types; i++) {
        size_t w = cli_utf8_width(types[i].label_fr);
        if (j->by_type[i] && w > width) width = w;
    }
    width += 2;
    /* A match.found proposes a pair, revises it or retires it: three rows. */
    static const char *const match_rows[3] = {"mise en relation proposée", "mise en relation révisée",
                                              "mise en relation retirée"};
    for (size_t i = 0; i <= j->n_event_types; i++) {
        if (!j->by_type[i]) continue;
        int is_match = i < j->n_event_types && strcmp(types[i].type, "match.found") == 0;
        for (size_t r = 0; r < (is_match ? 3u : 1u); r++) {
            uint64_t count = is_match ? j->matches[r] : j->by_type[i];
            if (!count) continue;
            printf("  ");
            cli_pad(stdout,
                    is_match               ? match_rows[r]
                    : i < j->n_event_types ? types[i].label_fr
                                           : "autres",
                    width);
            printf("%6" PRIu64 "   %s\n", count, i < j->n_event_types ? types[i].type : "");
        }
    }

    char cols[S_MAX_COLUMNS][4];
    cli_map_t *maps[3] = {&j->needs, &j->offers, &j->structures};
    size_t n_cols = s_columns(maps, 3, cols);
    if (n_cols) {
        printf("\nDépartements :");
        for (size_t c = 0; c < n_cols; c++) {
            const char *name = mg_fr_department(cols[c]);
            printf("%s %s %s", c ? " ·" : "", cols[c], name ? name : "");
        }
        printf("\n");
    }
    s_category_table(j, &j->needs, "Besoins ouverts par catégorie et département", cols, n_cols);
    if (j->closed_needs)
        printf("  (%" PRIu64 " besoin%s clos)\n", j->closed_needs, j->closed_needs > 1 ? "s" : "");
    s_category_table(j, &j->offers, "Offres ouvertes par catégorie et département", cols, n_cols);
    if (j->withdrawn_offers)
        printf("  (%" PRIu64 " offre%s retirée%s)\n", j->withdrawn_offers, j->withdrawn_offers > 1 ? "s" : "",
               j->withdrawn_offers > 1 ? "s" : "");
    s_family_table(j, cols, n_cols);
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage : maillage journal [OPTIONS]\n"
            "\n"
            "Relit le journal (chaque événement accepté, dans l'ordre des séquences).\n"
            "\n"
            "Options :\n"
            "      --from SEQ       première séquence (1 par défaut)\n"
            "      --to SEQ         dernière séquence (par défaut : la fin)\n"
            "  -t, --type PRÉFIXE   seulement les événements dont le type commence par PRÉFIXE\n"
            "                       (répétable)\n"
            "  -f, --format FMT     json (par défaut : une enveloppe JSON proto3 par ligne) ou\n"
            "                       text (une ligne en français par événement)\n"
            "  -s, --summary        un bilan à la place : événements par type, besoins et offres\n"
            "                       ouverts par catégorie et département, structures par famille\n"
            "%s",
            cli_common_help);
}

int cli_cmd_journal(int argc, char **argv, cli_settings_t *settings)
{
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS,
                                            {"from", required_argument, NULL, 'F'},
                                            {"to", required_argument, NULL, 'T'},
                                            {"type", required_argument, NULL, 't'},
                                            {"format", required_argument, NULL, 'f'},
                                            {"summary", no_argument, NULL, 's'},
                                            {NULL, 0, NULL, 0}};
    s_journal_t j = {0};
    cli_context_t ctx;
    uint64_t from = 1, to = 0;
    int opt, rc = CLI_EXIT_FAIL;
    char err[512];
    redisContext *redis = NULL;

    j.types = mg_calloc((size_t)argc + 1, sizeof *j.types);
    while ((opt = cli_getopt("journal", argc, argv, "ht:f:s", options)) != -1) {
        if (cli_settings_option(settings, opt, optarg)) continue;
        switch (opt) {
        case 'h':
            s_usage(stdout);
            free(j.types);
            return CLI_EXIT_OK;
        case 'F':
        case 'T': {
            unsigned long long v;
            if (cli_positive_option("journal", opt == 'F' ? "from" : "to", optarg, &v) != 0) {
                free(j.types);
                return CLI_EXIT_USAGE;
            }
            if (opt == 'F') from = v;
            else to = v;
            break;
        }
        case 't':
            if (cli_check_type_prefix("journal", optarg) != 0) {
                free(j.types);
                return CLI_EXIT_USAGE;
            }
            j.types[j.n_types++] = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "text") == 0) j.text = 1;
            else if (strcmp(optarg, "json") != 0) {
                cli_error("journal", "format inconnu « %s » (json ou text)", optarg);
                free(j.types);
                return CLI_EXIT_USAGE;
            }
            break;
        case 's': j.summary = 1; break;
        default: /* '?': said in one line */
            free(j.types);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("journal", "argument inattendu « %s » (voir « maillage journal --help »)", argv[optind]);
        free(j.types);
        return CLI_EXIT_USAGE;
    }
    if (to && to < from) {
        cli_error("journal", "--to %" PRIu64 " précède --from %" PRIu64, to, from);
        free(j.types);
        return CLI_EXIT_USAGE;
    }
    int init = cli_context_init(&ctx, settings, "journal");
    if (init != CLI_EXIT_OK) {
        free(j.types);
        return init;
    }
    j.ctx = &ctx;
    j.to = to;
    if (j.text || j.summary) cli_context_load_tables(&ctx, "journal");
    mg_event_types(&j.n_event_types);
    j.by_type = mg_calloc(j.n_event_types + 1, sizeof *j.by_type);

    redis = j.redis = cli_redis_connect(&ctx, "journal");
    if (!redis) goto done;
    if (mg_journal_read(redis, from, to ? to - from + 1 : 0, s_on_entry, &j, err, sizeof err) < 0) {
        cli_error("journal", "%s", err);
        goto done;
    }
    if (j.summary) s_print_summary(&j);
    rc = CLI_EXIT_OK;
done:
    fflush(stdout);
    if (redis) redisFree(redis);
    cli_map_clear(&j.needs, s_item_drop);
    cli_map_clear(&j.offers, s_item_drop);
    cli_map_clear(&j.needs_closed, s_item_drop);
    cli_map_clear(&j.offers_closed, s_item_drop);
    cli_map_clear(&j.structures, s_item_drop);
    free(j.by_type);
    free(j.types);
    cli_context_destroy(&ctx);
    return rc;
}
