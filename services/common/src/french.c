/* french.c -- French words for enums and departments; see french.h. */
#include "maillage/french.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *code, *name, *with_article, *in;
} s_departments[] = {
    {"14", "Calvados", "le Calvados", "dans le Calvados"},
    {"27", "Eure", "l'Eure", "dans l'Eure"},
    {"50", "Manche", "la Manche", "dans la Manche"},
    {"61", "Orne", "l'Orne", "dans l'Orne"},
    {"76", "Seine-Maritime", "la Seine-Maritime", "en Seine-Maritime"},
};

static int s_department(const char *code) {
    for (size_t i = 0; code && i < sizeof s_departments / sizeof s_departments[0]; i++)
        if (strcmp(code, s_departments[i].code) == 0) return (int)i;
    return -1;
}

const char *mg_fr_department(const char *code) {
    int i = s_department(code);
    return i < 0 ? NULL : s_departments[i].name;
}

const char *mg_fr_department_code(size_t i) {
    return i < sizeof s_departments / sizeof s_departments[0] ? s_departments[i].code : NULL;
}

const char *mg_fr_department_with_article(const char *code) {
    int i = s_department(code);
    return i < 0 ? NULL : s_departments[i].with_article;
}

const char *mg_fr_department_in(const char *code) {
    int i = s_department(code);
    return i < 0 ? NULL : s_departments[i].in;
}

const char *mg_fr_family(Maillage__V1__Family family) {
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

const char *mg_fr_family_plural(Maillage__V1__Family family) {
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

const char *mg_fr_closure(Maillage__V1__Closure reason, int feminine) {
    switch (reason) {
    case MAILLAGE__V1__CLOSURE__CLOSURE_SATISFIED:
        return feminine ? "pourvue" : "satisfait"; /* an offer is filled, a need met */
    case MAILLAGE__V1__CLOSURE__CLOSURE_CANCELLED:
        return feminine ? "annulée" : "annulé";
    case MAILLAGE__V1__CLOSURE__CLOSURE_EXPIRED:
        return feminine ? "expirée" : "expiré";
    case MAILLAGE__V1__CLOSURE__CLOSURE_MEMBER_LEFT:
        return "la structure a quitté le réseau";
    default: return "motif non précisé";
    }
}

const char *mg_fr_cooperation_kind(Maillage__V1__CooperationKind kind) {
    switch (kind) {
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_POOLING: return "mutualisation";
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_PARTNERSHIP: return "partenariat";
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_JOINT_BID: return "réponse commune";
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_SUBCONTRACTING: return "sous-traitance";
    case MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_MERGER: return "rapprochement";
    default: return "coopération";
    }
}

const char *mg_fr_cooperation_answer(Maillage__V1__CooperationAnswer answer) {
    switch (answer) {
    case MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_ACCEPTED: return "acceptée";
    case MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_DECLINED: return "déclinée";
    case MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_UNDER_DISCUSSION: return "en discussion";
    default: return "réponse non précisée";
    }
}

const char *mg_fr_match_outcome(Maillage__V1__MatchOutcome outcome) {
    switch (outcome) {
    case MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_CONTACT_MADE: return "mise en relation faite";
    case MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_NOT_RELEVANT: return "pas pertinent";
    default: return "suite non précisée";
    }
}

char *mg_fr_number(double v, int decimals, char *buf, size_t len) {
    snprintf(buf, len, "%.*f", decimals, v);
    char *dot = strchr(buf, '.');
    if (dot) *dot = ',';
    return buf;
}

char *mg_fr_percent(double score, char *buf, size_t len) {
    return mg_fr_percent_with(score, 0, buf, len);
}

char *mg_fr_percent_with(double score, int decimals, char *buf, size_t len) {
    char number[32];
    mg_fr_number(score * 100, decimals, number, sizeof(number));
    char *comma = strchr(number, ',');
    if (comma) {
        char *end = number + strlen(number);
        while (end > comma && (end[-1] == '0' || end[-1] == ','))
            *--end = '\0';
    }
    snprintf(buf, len, "%s %%", number);
    return buf;
}

char *mg_fr_percent_under(double score, int decimals, double limit, char *buf, size_t len) {
    /* Rounded, as everywhere else (a message's {{score}} too), when that
     * reads below `limit` at these decimals: rounding keeps the order, so
     * it does unless both read the same. */
    char at_limit[32];
    mg_fr_percent_with(score, decimals, buf, len);
    if (score < limit && strcmp(buf, mg_fr_percent_with(limit, decimals, at_limit, sizeof(at_limit))) != 0)
        return buf;
    double scale = decimals >= 2 ? 10000.0 : decimals == 1 ? 1000.0 : 100.0;
    /* (the epsilon: 0.3996 * 10000 may come out as 3995.9999...) */
    return mg_fr_percent_with(floor(score * scale + 1e-9) / scale, decimals, buf, len);
}

int mg_fr_percent_decimals(double score, const double *others, size_t n) {
    for (int d = 0; d < 2; d++) {
        char a[32], b[32];
        size_t i = 0;
        mg_fr_number(score * 100, d, a, sizeof(a));
        while (i < n &&
               (others[i] == score || strcmp(a, mg_fr_number(others[i] * 100, d, b, sizeof(b))) != 0))
            i++;
        if (i == n) return d;
    }
    return 2;
}

/* Whether `s` starts with a vowel or an h (UTF-8: the accented vowels of
 * French too, either case), where "de" elides; a y only before a consonant
 * ("d'Yvetot", "de Yann"). */
static int s_elides(const char *s) {
    unsigned char c = (unsigned char)s[0];
    if (c == 'Y' || c == 'y') return s[1] && (unsigned char)s[1] < 0x80 && !strchr("aeiouyAEIOUY", s[1]);
    if (c < 0x80) return c && strchr("AEIOUHaeiouh", c) != NULL;
    unsigned char d = (unsigned char)s[1];
    if (c == 0xC5) return d == 0x92 || d == 0x93; /* Œ œ */
    if (c != 0xC3) return 0;
    d &= (unsigned char)~0x20; /* lower case to upper */
    return d == 0x80 || d == 0x82 || d == 0x88 || d == 0x89 || d == 0x8A || d == 0x8B || d == 0x8E ||
           d == 0x8F || d == 0x94 || d == 0x99 || d == 0x9B;
}

/* The contracting article `name` starts with: 1 for "le "/"Le ", 2 for
 * "les "/"Les ", else 0; `*rest` is what follows it. */
static int s_contracting_article(const char *name, const char **rest) {
    int article = 0;
    if (strncmp(name, "le ", 3) == 0 || strncmp(name, "Le ", 3) == 0)
        article = 1;
    else if (strncmp(name, "les ", 4) == 0 || strncmp(name, "Les ", 4) == 0)
        article = 2;
    *rest = name + (article ? 2 + (size_t)article : 0); /* "le " or "les " */
    return article;
}

char *mg_fr_de(const char *name, char *buf, size_t len) {
    if (!name) name = "";
    const char *rest;
    int article = s_contracting_article(name, &rest);
    if (article)
        snprintf(buf, len, "%s %s", article == 1 ? "du" : "des", rest);
    else if (strncmp(name, "la ", 3) == 0 || strncmp(name, "l'", 2) == 0)
        snprintf(buf, len, "de %s", name);
    else if (s_elides(name))
        snprintf(buf, len, "d'%s", name);
    else
        snprintf(buf, len, "de %s", name);
    return buf;
}

char *mg_fr_de_person(const char *name, char *buf, size_t len) {
    if (!name) name = "";
    /* A name keeps its article ("Le Goff"), and a Y is a consonant ("Yann"). */
    if (s_elides(name) && name[0] != 'Y' && name[0] != 'y')
        snprintf(buf, len, "d'%s", name);
    else
        snprintf(buf, len, "de %s", name);
    return buf;
}

char *mg_fr_epci(const char *name, char *buf, size_t len) {
    snprintf(buf, len, "la %s", name ? name : "");
    return buf;
}

char *mg_fr_lower_initial(const char *label, char *buf, size_t len) {
    if (!len) return buf;
    if (!label) label = "";
    size_t n = strlen(label);
    if (n >= len) { /* cut at a character, not inside one */
        n = len - 1;
        while (n > 0 && ((unsigned char)label[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(buf, label, n);
    buf[n] = '\0';
    int acronym = buf[0] && buf[1] >= 'A' && buf[1] <= 'Z';
    if (!acronym && buf[0] >= 'A' && buf[0] <= 'Z') buf[0] = (char)(buf[0] - 'A' + 'a');
    /* É (C3 89) -> é (C3 A9), unless an acronym follows it */
    if ((unsigned char)buf[0] == 0xC3 && (unsigned char)buf[1] == 0x89 && !(buf[2] >= 'A' && buf[2] <= 'Z'))
        buf[1] = (char)0xA9;
    return buf;
}

char *mg_fr_a(const char *name, char *buf, size_t len) {
    if (!name) name = "";
    const char *rest;
    int article = s_contracting_article(name, &rest);
    snprintf(buf, len, "%s %s", article == 1 ? "au" : article == 2 ? "aux" : "à", rest);
    return buf;
}

/* Whether `lower` (a name, its initial lowered) starts with one of
 * `words`, as a whole word. */
static int s_starts_with_word(const char *lower, const char *const *words) {
    for (size_t i = 0; words[i]; i++) {
        size_t n = strlen(words[i]);
        if (strncmp(lower, words[i], n) == 0 && (lower[n] == ' ' || lower[n] == '\0')) return 1;
    }
    return 0;
}

char *mg_fr_network(const char *name, char *buf, size_t len) {
    /* The common nouns network names start with, by gender. */
    static const char *const masculine[] = {"réseau",   "collectif",    "mouvement", "groupement", "pôle",
                                            "comité",   "syndicat",     "centre",    "conseil",    "cluster",
                                            "institut", "observatoire", NULL};
    static const char *const feminine[] = {"fédération",  "confédération", "union",      "association",
                                           "coopérative", "coordination",  "chambre",    "maison",
                                           "alliance",    "agence",        "plateforme", NULL};
    if (!name || !*name) {
        snprintf(buf, len, "un réseau");
        return buf;
    }
    char lower[64]; /* its first word, enough to compare */
    mg_fr_lower_initial(name, lower, sizeof(lower));
    if (!strncmp(lower, "le ", 3) || !strncmp(lower, "la ", 3) || !strncmp(lower, "les ", 4) ||
        !strncmp(lower, "l'", 2) || !strncmp(lower, "l\xe2\x80\x99", 4)) /* l' or l’ */
        snprintf(buf, len, "%c%s", lower[0], name + 1); /* "Le Mouvement associatif": "le Mouvement ..." */
    else if (s_starts_with_word(lower, masculine))
        snprintf(buf, len, "%s%s", s_elides(name) ? "l'" : "le ", name);
    else if (s_starts_with_word(lower, feminine))
        snprintf(buf, len, "%s%s", s_elides(name) ? "l'" : "la ", name);
    else
        snprintf(buf, len, "le réseau %s", name);
    return buf;
}

char *mg_fr_distance(double km, int same_commune, char *buf, size_t len) {
    long rounded = lround(km);
    if (same_commune)
        snprintf(buf, len, "dans la même commune");
    else if (rounded < 1)
        snprintf(buf, len, "à moins d'un km");
    else
        snprintf(buf, len, "à %ld km", rounded);
    return buf;
}
