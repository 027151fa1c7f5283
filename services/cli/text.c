/* text.c -- one readable French line per event, for chamber staff watching a
 * feed (`maillage tail --format text`, `maillage journal --format text`).
 *
 * The line names things the way staff do: the department by its name, the
 * category by its label from the taxonomy, the commune by its name from the
 * commune table. Without the tables it falls back to the raw codes rather
 * than failing: a feed is more useful slightly raw than not at all. */
#include <inttypes.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *code;
    const char *name;
} s_departments[] = {
    {"14", "Calvados"}, {"27", "Eure"}, {"50", "Manche"}, {"61", "Orne"}, {"76", "Seine-Maritime"},
};

const char *cli_department_name(const char *code)
{
    for (size_t i = 0; i < sizeof s_departments / sizeof s_departments[0]; i++)
        if (strcmp(code, s_departments[i].code) == 0) return s_departments[i].name;
    return NULL;
}

const char *cli_family_label(Maillage__V1__Family family)
{
    switch (family) {
    case MAILLAGE__V1__FAMILY__FAMILY_ASSOCIATION: return "Associations";
    case MAILLAGE__V1__FAMILY__FAMILY_COOPERATIVE: return "Coopératives";
    case MAILLAGE__V1__FAMILY__FAMILY_MUTUAL: return "Mutuelles";
    case MAILLAGE__V1__FAMILY__FAMILY_FOUNDATION: return "Fondations";
    case MAILLAGE__V1__FAMILY__FAMILY_ESS_COMPANY: return "Entreprises de l'ESS";
    case MAILLAGE__V1__FAMILY__FAMILY_LOCAL_BUSINESS: return "Acteurs économiques locaux";
    case MAILLAGE__V1__FAMILY__FAMILY_PUBLIC_BODY: return "Organismes publics";
    case MAILLAGE__V1__FAMILY__FAMILY_NETWORK: return "Réseaux et fédérations";
    default: return "Famille non précisée";
    }
}

static const char *s_family_singular(Maillage__V1__Family family)
{
    switch (family) {
    case MAILLAGE__V1__FAMILY__FAMILY_ASSOCIATION: return "association";
    case MAILLAGE__V1__FAMILY__FAMILY_COOPERATIVE: return "coopérative";
    case MAILLAGE__V1__FAMILY__FAMILY_MUTUAL: return "mutuelle";
    case MAILLAGE__V1__FAMILY__FAMILY_FOUNDATION: return "fondation";
    case MAILLAGE__V1__FAMILY__FAMILY_ESS_COMPANY: return "entreprise de l'ESS";
    case MAILLAGE__V1__FAMILY__FAMILY_LOCAL_BUSINESS: return "acteur économique local";
    case MAILLAGE__V1__FAMILY__FAMILY_PUBLIC_BODY: return "organisme public";
    case MAILLAGE__V1__FAMILY__FAMILY_NETWORK: return "réseau";
    default: return "structure";
    }
}

static const char *s_closure(Maillage__V1__Closure reason)
{
    switch (reason) {
    case MAILLAGE__V1__CLOSURE__CLOSURE_SATISFIED: return "satisfait";
    case MAILLAGE__V1__CLOSURE__CLOSURE_CANCELLED: return "annulé";
    case MAILLAGE__V1__CLOSURE__CLOSURE_EXPIRED: return "expiré";
    case MAILLAGE__V1__CLOSURE__CLOSURE_MEMBER_LEFT: return "structure partie";
    default: return "motif non précisé";
    }
}

static const char *s_cooperation_kind(Maillage__V1__CooperationKind kind)
{
    switch (kind) {
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_POOLING: return "mutualisation";
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_PARTNERSHIP: return "partenariat";
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_JOINT_BID: return "réponse commune";
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_SUBCONTRACTING: return "sous-traitance";
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_MERGER: return "rapprochement";
    default: return "coopération";
    }
}

static const char *s_answer(Maillage__V1__CooperationAnswer answer)
{
    switch (answer) {
    case MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_ACCEPTED: return "acceptée";
    case MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_DECLINED: return "déclinée";
    case MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_UNDER_DISCUSSION: return "en discussion";
    default: return "sans réponse précise";
    }
}

static const char *s_outcome(Maillage__V1__MatchOutcome outcome)
{
    switch (outcome) {
    case MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_CONTACT_MADE: return "mise en relation faite";
    case MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_NOT_RELEVANT: return "pas pertinent";
    default: return "suite non précisée";
    }
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
    const mg_commune_t *c = ctx && ctx->communes && code ? mg_communes_find(ctx->communes, code) : NULL;
    if (c) {
        snprintf(out, 4, "%s", c->department);
    } else if (code && strlen(code) >= 2) {
        snprintf(out, 4, "%.2s", code);
    } else {
        snprintf(out, 4, "?");
    }
}

const char *cli_commune_name(const cli_context_t *ctx, const char *code)
{
    const mg_commune_t *c = ctx && ctx->communes && code ? mg_communes_find(ctx->communes, code) : NULL;
    return c ? c->name : (code && *code ? code : "?");
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
    const char *name = cli_department_name(dep);
    if (name)
        fprintf(out, " · %s (%s)", name, dep);
    else
        fprintf(out, " · département %s", dep);
}

static void s_structure(FILE *out, const cli_context_t *ctx, const Maillage__V1__Structure *st)
{
    if (!st) return;
    s_place(out, ctx, st->commune);
    fprintf(out, " · %s · « %s » — %s", s_family_singular(st->family), st->name,
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
    s_place(out, ctx, of->commune);
    fprintf(out, " · %s · « %s » — %s", s_category(ctx, of->category), of->title,
            cli_commune_name(ctx, of->commune));
}

void cli_text_event(FILE *out, const cli_context_t *ctx, const mg_envelope_t *env)
{
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
        fprintf(out, " · %s · a quitté %s", env->member_left->structure_id, env->member_left->network);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED:
        s_need(out, ctx, env->need_reported->need);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED:
        s_need(out, ctx, env->need_updated->need);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED:
        fprintf(out, " · %s · %s", env->need_closed->need_id, s_closure(env->need_closed->reason));
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED:
        s_offer(out, ctx, env->offer_published->offer);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED:
        s_offer(out, ctx, env->offer_updated->offer);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_WITHDRAWN:
        fprintf(out, " · %s · %s", env->offer_withdrawn->offer_id, s_closure(env->offer_withdrawn->reason));
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED: {
        const Maillage__V1__CooperationProposed *cp = env->cooperation_proposed;
        fprintf(out, " · %s · « %s » — %s → ", s_cooperation_kind(cp->kind), cp->title, cp->from_structure_id);
        if (cp->to_structure_id && *cp->to_structure_id) {
            fputs(cp->to_structure_id, out);
        } else {
            for (size_t i = 0; i < cp->n_territory; i++) fprintf(out, "%s%s", i ? ", " : "", cp->territory[i]);
            if (cp->n_territory == 0) fputs("tout le territoire", out);
        }
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_ANSWERED:
        fprintf(out, " · %s · %s par %s", env->cooperation_answered->proposal_id,
                s_answer(env->cooperation_answered->answer), env->cooperation_answered->structure_id);
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FOUND: {
        const Maillage__V1__MatchFound *m = env->match_found;
        const char *dep_name = cli_department_name(m->department);
        if (dep_name) fprintf(out, " · %s (%s)", dep_name, m->department);
        fprintf(out, " · %s · %s ↔ %s", s_category(ctx, m->category), m->need_id, m->offer_id);
        if (m->retired) {
            fprintf(out, " · n'est plus proposée");
        } else {
            fprintf(out, " · rang %u · score %.2f", m->rank, m->score);
            if (m->revision > 1) fprintf(out, " · révision %u", m->revision);
            if (m->explanation && *m->explanation) fprintf(out, " · %s", m->explanation);
        }
        break;
    }
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FEEDBACK:
        fprintf(out, " · %s · %s", env->match_feedback->match_id, s_outcome(env->match_feedback->outcome));
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
