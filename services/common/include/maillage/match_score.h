/* match_score.h -- how well an offer answers a need, and why, in French.
 *
 * Pure functions (no I/O, any thread) used by the matcher: the hard filters
 * that decide whether a (need, offer) pair may be proposed at all, the score
 * with its components, the French sentence staff read, and the text folding
 * (case, accents, stop words) the keyword overlap relies on. Everything the
 * functions need is passed in, already looked up by the caller (communes,
 * structures, feedback and fairness counters), so they are unit-tested
 * without Redis. */
#ifndef MAILLAGE_MATCH_SCORE_H
#define MAILLAGE_MATCH_SCORE_H

#include <stdbool.h>
#include <stddef.h>

#include "maillage/communes.h"
#include "maillage/envelope.h"

/* ---- Text folding ------------------------------------------------------ */

/* Fold French UTF-8 text into keywords: lower case, accents removed
 * ("Épicerie" -> "epicerie", "œuvre" -> "oeuvre"), split on anything that is
 * not a letter or digit (apostrophes included: "l'épicerie" -> "epicerie"),
 * French stop words, words shorter than 3 characters and numbers dropped,
 * simple plurals folded ("cuisines" -> "cuisine", "locaux" -> "local"),
 * duplicates removed, sorted (strcmp order). Keywords are ASCII [a-z0-9],
 * at most 40 bytes. Invalid UTF-8 bytes separate words. `text` may be NULL.
 * Writes at most `max` words into `words` (when the text holds more, those
 * it says first: a side's tags and title before its description), each a
 * new string the caller frees with free(), and returns how many. */
size_t mg_text_keywords(const char *text, char **words, size_t max);

/* As mg_text_keywords(), and, if `spellings` is not NULL, each keyword as
 * `text` spells it, in lower case with its accents (its first spelling with
 * accents, else its first: "numerique ... Numériques" gives "numériques"),
 * into `spellings` (aligned with `words`; each a new string the caller frees
 * with free()), for staff to read; if `places` is not NULL, where the text
 * first says each keyword (aligned with `words`: 0 for the text's first word
 * kept, and so on; distinct), so that the words a side says first can be
 * shown first. */
size_t mg_text_keywords_spelled(const char *text, char **words, char **spellings, size_t *places, size_t max);

/* ---- Scoring ----------------------------------------------------------- */

/* Weights of the score's components and the proposal threshold, from the
 * [matcher] section of the configuration. */
typedef struct {
    double distance;         /* closer is better, relative to the radius */
    double keywords;         /* shared keywords of tags, titles, descriptions */
    double sector;           /* NAF affinity of the two structures */
    double intercooperation; /* both structures of the ESS */
    double freshness;        /* recently published offers first */
    double feedback;         /* the offer's past answers ("mise en relation faite") */
    double fairness;         /* providers proposed many times recently go down */
    double threshold;        /* minimum score to propose, 0..1 */
} mg_match_weights_t;

/* Fill `weights` with the defaults: distance 0.25, keywords 0.25, sector,
 * intercooperation, freshness, feedback and fairness 0.10 each, threshold
 * 0.35 (as the [matcher] section's defaults). */
void mg_match_weights_default(mg_match_weights_t *weights);

/* What the caller knows about one side's structure. Borrowed. */
typedef struct {
    const char *structure_id;
    Maillage__V1__Family family;
    const char *naf_code;        /* "" if unknown */
    const char *const *networks; /* NULL-terminated, may be NULL */
    const mg_commune_t *commune; /* may be NULL if unknown */
} mg_match_party_t;

/* Everything needed to judge one pair. Borrowed. */
typedef struct {
    const Maillage__V1__Need *need;
    const mg_match_party_t *need_party;
    const mg_commune_t *need_commune;
    const Maillage__V1__Offer *offer;
    const mg_match_party_t *offer_party;
    const mg_commune_t *offer_commune;
    const char *today;                  /* "YYYY-MM-DD", Europe/Paris */
    long long offer_age_days;           /* since the offer was published */
    unsigned feedback_contact_made;     /* the offer's past "mise en relation faite" */
    unsigned feedback_not_relevant;     /* ... and "pas pertinent" */
    unsigned provider_recent_proposals; /* proposals of this provider over the fairness window */
    const char *category_label;         /* French label of the shared category */
    /* Optional: the sides' keywords already folded by mg_match_need_keywords()
     * / mg_match_offer_keywords() (sorted, as they return them), so a need is
     * folded once for all its candidates. NULL (the default of a designated
     * initializer) = fold the texts of need / offer here. */
    const char *const *need_keywords;
    size_t n_need_keywords;
    const char *const *offer_keywords;
    size_t n_offer_keywords;
    /* Optional, with the keywords: how each side's own text spells them
     * (mg_match_need_keywords()'s `spellings`), shown in the explanation
     * rather than the folded keyword ("équipe", not "equipe"). NULL = the
     * other side's, else the folded keyword. */
    const char *const *need_spellings;
    const char *const *offer_spellings;
    /* Optional, with the keywords: where each side's text first says them
     * (mg_match_need_keywords()'s `places`). When more than four words are
     * shared, the explanation names the four a side says first (in its
     * tags, then its title, then its description), in alphabetical order,
     * "et N autres" for the rest. NULL for both = the first four in
     * alphabetical order. */
    const size_t *need_places;
    const size_t *offer_places;
} mg_match_input_t;

/* The keywords of a need's (an offer's) tags, title and description, as
 * mg_text_keywords_spelled() gives them (`spellings`, `places` may be NULL): at most
 * `max` into `words`, each a new string the caller frees with free().
 * Returns how many were written. The score reads up to 256 keywords per
 * side. */
size_t mg_match_need_keywords(const Maillage__V1__Need *need, char **words, char **spellings, size_t *places,
                              size_t max);
size_t mg_match_offer_keywords(const Maillage__V1__Offer *offer, char **words, char **spellings,
                               size_t *places, size_t max);

/* Why a pair may not be proposed. */
typedef enum {
    MG_MATCH_OK = 0,
    MG_MATCH_OTHER_CATEGORY,
    MG_MATCH_SAME_STRUCTURE,
    MG_MATCH_OUT_OF_AREA,     /* not in the offer's territory nor within both radii */
    MG_MATCH_NOT_VALID_TODAY, /* need or offer expired or not yet valid */
    MG_MATCH_CONDITIONS,      /* the offer is reserved to others */
} mg_match_verdict_t;

#define MG_MATCH_COMPONENTS 7

typedef struct {
    double score;       /* 0..1, weighted mean of the components */
    double distance_km; /* between the two communes; -1 when not known (an offer placed by its territory) */
    struct {
        const char *name; /* "distance", "keywords", ... (static) */
        double value;     /* 0..1 */
        double weight;
        char detail[160]; /* the French phrase it contributes, "" if none */
    } components[MG_MATCH_COMPONENTS];
    char explanation[512]; /* one French sentence for staff */
} mg_match_score_t;

/* Apply the hard filters, in this order: same category; not the same
 * structure; both valid on `today` (bounds inclusive, empty bounds open; a
 * NULL or empty `today` skips this check); in area; the offer's conditions.
 * In area means: the need's commune is in the offer's territory ("dep:NN",
 * "epci:SIREN" or a commune code; the need's radius does not apply then), or
 * the distance is within both radii, where a need radius of 0 means no limit
 * and an offer radius of 0 means the offer serves its territory and its own
 * commune only. An offer always serves its own commune. The communes are
 * in->need_commune / in->offer_commune, or the parties' when those are NULL;
 * an offer placed by its territory only (no commune) has no place: it is in
 * area through its territory alone, at no known distance.
 * Returns MG_MATCH_OK if the pair may be proposed, else the first failed
 * filter. */
mg_match_verdict_t mg_match_filter(const mg_match_input_t *in);

/* Whether a structure of `family` passes the family conditions of `c`
 * (ess_only, families); NULL conditions admit every family. */
int mg_match_family_admitted(const Maillage__V1__OfferConditions *c, Maillage__V1__Family family);

/* English name of a verdict for logs and metrics ("ok", "other_category",
 * "same_structure", "out_of_area", "not_valid_today", "conditions"). Static. */
const char *mg_match_verdict_name(mg_match_verdict_t verdict);

/* Score a pair that passed the filters and write its explanation, e.g.
 * "Même catégorie (locaux), à 12 km dans un rayon de 30 km, deux structures
 * de l'ESS, mots communs : cuisine, stockage". Returns the score (also in
 * out->score). `weights` may be NULL for the defaults; negative weights
 * count as 0; a component of weight 0 adds nothing to the sentence. Every
 * text in `out` is valid UTF-8, cut at a character boundary if too long.
 * The formulas and the area rules are documented in match_score.c. */
double mg_match_score(const mg_match_input_t *in, const mg_match_weights_t *weights, mg_match_score_t *out);

/* A distance as a match.found carries it and its explanation says it: to
 * 0.1 km. Staff read « à 107 km » from 106.5 in the notifier's message;
 * the explanation, phrased from this value too, says the same. */
double mg_match_distance_shown(double km);

#endif
