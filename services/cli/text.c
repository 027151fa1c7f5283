/* text.c -- one readable French line per event, for chamber staff watching a
 * feed (`maillage tail --format text`, `maillage journal --format text`), and
 * the French errors the commands share.
 *
 * The line names things the way staff do: the department by its name, the
 * category by its label from the taxonomy, the commune by its name from the
 * commune table, and what an event refers to by id (a match's need and
 * offer, a proposal's structures) by its title or name (names.c). Without
 * them it falls back to the raw codes and ids rather than failing: a feed is
 * more useful slightly raw than not at all. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "maillage/clock.h"
#include "maillage/french.h"

void cli_error_redis(const char *command, const redisContext *c, const redisReply *r)
{
    const char *why = r && r->type == REDIS_REPLY_ERROR ? r->str : c->err ? c->errstr : "réponse inattendue";
    cli_error(command, "erreur Redis : %s", why);
}

int cli_check_id(const char *command, const char *id)
{
    if (mg_id_is_valid(id)) return 0;
    cli_error(command, "« %s » n'est pas un identifiant valide (de 1 à %d lettres, chiffres ou « . _ : - »)",
              id, MG_ID_MAX);
    return -1;
}

void cli_paris_time(long long unix_ms, char out[CLI_PARIS_TIME_LEN]) {
    char day[11];
    mg_clock_paris_date(unix_ms, day);
    int64_t local = unix_ms + (int64_t)mg_clock_paris_offset_s(unix_ms) * 1000;
    unsigned minutes = (unsigned)(((local / 60000) % 1440 + 1440) % 1440);
    snprintf(out, CLI_PARIS_TIME_LEN, "%.2s/%.2s/%.4s %02u:%02u", day + 8, day + 5, day, minutes / 60,
             minutes % 60);
}

int cli_positive_option(const char *command, const char *name, const char *value, unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long v = value[0] >= '0' && value[0] <= '9' ? strtoull(value, &end, 10) : 0;
    if (v == 0 || *end || errno == ERANGE) {
        cli_error(command, "--%s : « %s » n'est pas un entier positif", name, value);
        return -1;
    }
    *out = v;
    return 0;
}

size_t cli_utf8_width(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

void cli_pad(FILE *out, const char *s, size_t width)
{
    fputs(s, out);
    for (size_t n = cli_utf8_width(s); n < width; n++) fputc(' ', out);
}

void cli_commune_department(const cli_context_t *ctx, const char *code, char out[4])
{
    const char *dep = mg_communes_territory_department(ctx ? ctx->communes : NULL, code);
    if (dep) {
        snprintf(out, 4, "%s", dep);
    } else if (code && (strncmp(code, "dep:", 4) == 0 || strncmp(code, "epci:", 5) == 0)) {
        snprintf(out, 4, "?");
    } else if (code && strlen(code) >= 2) {
        snprintf(out, 4, "%.2s", code);
    } else {
        snprintf(out, 4, "?");
    }
}

const char *cli_commune_name(const cli_context_t *ctx, const char *code)
{
    const char *name = ctx && ctx->communes && code ? mg_communes_territory_name(ctx->communes, code) : NULL;
    return name ? name : (code && *code ? code : "?");
}

const char *cli_offer_place(const Maillage__V1__Offer *of) {
    if (of->commune && *of->commune) return of->commune;
    return of->n_territory && of->territory[0] ? of->territory[0] : "";
}

static const char *s_category(const cli_context_t *ctx, const char *code)
{
    const char *label = ctx && ctx->taxonomy && code ? mg_taxonomy_label(ctx->taxonomy, code) : NULL;
    return label ? label : (code && *code ? code : "catégorie non précisée");
}

/* " · Calvados (14)" for the department of `commune`. */
static void s_place(FILE *out, const cli_context_t *ctx, const char *commune)
{
    char dep[4];
    cli_commune_department(ctx, commune, dep);
    const char *name = mg_fr_department(dep);
    if (name)
        fprintf(out, " · %s (%s)", name, dep);
    else
        fprintf(out, " · département %s", dep);
}

/* What an event refers to by id, as staff know it: a structure (or a network
 * that is one) by its name, a need, an offer or a proposal as « title »
 * (id), and anything by its id while its name is unknown. */
static void s_ref(FILE *out, const cli_context_t *ctx, redisContext *redis, cli_name_kind_t kind,
                  const char *id)
{
    const char *name = ctx ? cli_names_get(ctx->names, redis, kind, id) : NULL;
    if (!name) fputs(id, out);
    else if (kind == CLI_NAME_STRUCTURE) fputs(name, out);
    else fprintf(out, "« %s » (%s)", name, id);
}

static void s_structure(FILE *out, const cli_context_t *ctx, const Maillage__V1__Structure *st)
{
    if (!st) return;
    s_place(out, ctx, st->commune);
    fprintf(out, " · %s · « %s » — %s", mg_fr_family(st->family), st->name,
            cli_commune_name(ctx, st->commune));
}

static void s_need(FILE *out, const cli_context_t *ctx, const Maillage__V1__Need *nd)
{
    if (!nd) return;
    s_place(out, ctx, nd->commune);
    fprintf(out, " · %s · « %s » — %s", s_category(ctx, nd->category), nd->title,
            cli_commune_name(ctx, nd->commune));
}

static void s_offer(FILE *out, const cli_context_t *ctx, const Maillage__V1__Offer *of)
{
    if (!of) return;
    s_place(out, ctx, cli_offer_place(of));
    fprintf(out, " · %s · « %s » — %s", s_category(ctx, of->category), of->title,
            cli_commune_name(ctx, cli_offer_place(of)));
}

void cli_text_event(FILE *out, const cli_context_t *ctx, redisContext *redis, const mg_envelope_t *env)
{
    if (ctx) cli_names_remember(ctx->names, env);
    const mg_event_type_t *type = mg_event_type_by_case(env->payload_case);
    char seq[32];
    snprintf(seq, sizeof seq, "#%" PRIu64, env->sequence);
    cli_pad(out, seq, 5);
    fputc(' ', out);
    const char *label = type ? type->label_fr : env->type;
    if (env->payload_case == MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FOUND && env->match_found->retired)
        label = "mise en relation retirée";
    cli_pad(out, label, 26);

    switch (env->payload_case) {
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED:
        s_structure(out, ctx, env->member_joined->structure);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED:
        s_structure(out, ctx, env->member_updated->structure);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_LEFT:
        fputs(" · ", out);
        s_ref(out, ctx, redis, CLI_NAME_STRUCTURE, env->member_left->structure_id);
        fputs(" · a quitté ", out);
        s_ref(out, ctx, redis, CLI_NAME_STRUCTURE, env->member_left->network);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED:
        s_need(out, ctx, env->need_reported->need);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED:
        s_need(out, ctx, env->need_updated->need);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED:
        fputs(" · ", out);
        s_ref(out, ctx, redis, CLI_NAME_NEED, env->need_closed->need_id);
        fprintf(out, " · %s", mg_fr_closure(env->need_closed->reason, 0));
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED:
        s_offer(out, ctx, env->offer_published->offer);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED:
        s_offer(out, ctx, env->offer_updated->offer);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_WITHDRAWN:
        fputs(" · ", out);
        s_ref(out, ctx, redis, CLI_NAME_OFFER, env->offer_withdrawn->offer_id);
        fprintf(out, " · %s", mg_fr_closure(env->offer_withdrawn->reason, 1));
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED: {
        const Maillage__V1__CooperationProposed *cp = env->cooperation_proposed;
        fprintf(out, " · %s · « %s » — ", mg_fr_cooperation_kind(cp->kind), cp->title);
        s_ref(out, ctx, redis, CLI_NAME_STRUCTURE, cp->from_structure_id);
        fputs(" → ", out);
        if (cp->to_structure_id && *cp->to_structure_id) {
            s_ref(out, ctx, redis, CLI_NAME_STRUCTURE, cp->to_structure_id);
        } else {
            /* "toute structure du territoire : Seine-Maritime, CU Caen la Mer" */
            fputs(cp->n_territory ? "toute structure du territoire : " : "tout le territoire", out);
            for (size_t i = 0; i < cp->n_territory; i++) {
                const char *name = mg_communes_territory_name(ctx ? ctx->communes : NULL, cp->territory[i]);
                fprintf(out, "%s%s", i ? ", " : "", name ? name : cp->territory[i]);
            }
        }
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_ANSWERED: {
        const Maillage__V1__CooperationAnswered *ca = env->cooperation_answered;
        fputs(" · ", out);
        s_ref(out, ctx, redis, CLI_NAME_PROPOSAL, ca->proposal_id);
        fputs(" · ", out); /* "· Coopérative laitière : en discussion" */
        s_ref(out, ctx, redis, CLI_NAME_STRUCTURE, ca->structure_id);
        fprintf(out, " : %s", mg_fr_cooperation_answer(ca->answer));
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FOUND: {
        const Maillage__V1__MatchFound *m = env->match_found;
        const char *dep_name = mg_fr_department(m->department);
        if (dep_name) fprintf(out, " · %s (%s)", dep_name, m->department);
        fprintf(out, " · %s · ", s_category(ctx, m->category));
        s_ref(out, ctx, redis, CLI_NAME_NEED, m->need_id);
        fputs(" ↔ ", out);
        s_ref(out, ctx, redis, CLI_NAME_OFFER, m->offer_id);
        if (m->retired) {
            fprintf(out, " · n'est plus proposée");
        } else {
            char score[16];
            fprintf(out, " · rang %u · score %s", m->rank, mg_fr_percent(m->score, score, sizeof(score)));
            if (m->revision > 1) fprintf(out, " · révision %u", m->revision);
            if (m->explanation && *m->explanation) fprintf(out, " · %s", m->explanation);
        }
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FEEDBACK:
        fprintf(out, " · %s · %s", env->match_feedback->match_id, mg_fr_match_outcome(env->match_feedback->outcome));
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COLLECTIVE_NEED_DETECTED: {
        const Maillage__V1__CollectiveNeedDetected *cn = env->collective_need_detected;
        fprintf(out, " · %s · %s · %zu besoins", s_category(ctx, cn->category),
                cn->territory_name && *cn->territory_name ? cn->territory_name : cn->territory, cn->n_need_ids);
        if (cn->explanation && *cn->explanation) fprintf(out, " · %s", cn->explanation);
        break;
    }
    default:
        break;
    }
    fputc('\n', out);
}
