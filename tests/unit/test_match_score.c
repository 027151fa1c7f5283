/* test_match_score.c -- text folding, hard filters, score components and the
 * French sentence, checked by hand on real communes of Normandy (Caen,
 * Hérouville-Saint-Clair, Rouen) from the shipped commune table. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/communes.h"
#include "maillage/french.h"
#include "maillage/envelope.h"
#include "maillage/config.h"
#include "maillage/match_score.h"

#define SHIPPED MAILLAGE_SOURCE_DIR "/config/communes-normandie.csv"
#define TODAY   "2026-03-15"
#define EPS     1e-9

static mg_communes_t *s_communes;

static int s_setup(void **state) {
    (void)state;
    char err[256];
    s_communes = mg_communes_load(SHIPPED, err, sizeof err);
    if (!s_communes) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static int s_teardown(void **state) {
    (void)state;
    mg_communes_destroy(&s_communes);
    return 0;
}

static const mg_commune_t *s_commune(const char *code) {
    const mg_commune_t *c = mg_communes_find(s_communes, code);
    assert_non_null(c);
    return c;
}

/* ---- Text folding ------------------------------------------------------ */

/* Fold `text` and compare with the NULL-terminated `expected`. */
static void s_expect_keywords(const char *text, const char *const *expected) {
    char *words[64];
    size_t n = mg_text_keywords(text, words, 64);
    size_t want = 0;
    while (expected[want])
        want++;
    for (size_t i = 0; i < n; i++) {
        if (i >= want || strcmp(words[i], expected[i]) != 0) {
            fail_msg("\"%s\": word %zu is \"%s\", expected \"%s\"", text, i, words[i],
                     i < want ? expected[i] : "(none)");
        }
    }
    if (n != want) fail_msg("\"%s\": %zu words, expected %zu", text, n, want);
    for (size_t i = 0; i < n; i++)
        free(words[i]);
}

static void folding_lowers_case_removes_accents_and_splits_apostrophes(void **state) {
    (void)state;
    s_expect_keywords("L'Épicerie SOLIDAIRE des Œuvres",
                      (const char *[]){"epicerie", "oeuvre", "solidaire", NULL});
    s_expect_keywords("l’épicerie d’à côté", (const char *[]){"cote", "epicerie", NULL});
    s_expect_keywords("Société Coopérative d'Intérêt Collectif À Hérouville-Saint-Clair",
                      (const char *[]){"clair", "collectif", "cooperative", "herouville", "interet", "saint",
                                       "societe", NULL});
    s_expect_keywords("ÉCOLE Noël CAFÉ-RESTAURANT ÆSTHÉTIQUE Straße ÇÀÈÙÎÔÛËÏÜŸ",
                      (const char *[]){"aesthetique", "caeuioueiuy", "cafe", "ecole",
                                       "noel", "restaurant", "strasse", NULL});
}

static void folding_drops_stop_words_short_words_and_numbers(void **state) {
    (void)state;
    s_expect_keywords("Nous avons besoin d'un local de 80 m² pour notre cuisine et le stockage, à Caen",
                      (const char *[]){"caen", "cuisine", "local", "stockage", NULL});
    s_expect_keywords(
        "le la les un une des du de d l et ou en au aux pour par avec sans sur sous dans chez "
        "notre nos votre vos leur leurs nous vous ils elles qui que quoi dont est sont être avoir "
        "plus moins très ce cet cette ces son sa ses mon ma mes ton ta tes il elle on ne pas se "
        "Aujourd'hui Jusqu'à Parce-que Après Auprès",
        (const char *[]){NULL});
    s_expect_keywords("5 000 € et 2026 ou 12h30", (const char *[]){"12h30", NULL});
    /* Elided stop words and the pieces of set phrases: "lorsqu" became a
     * shared word, which the word list even respelled "lorsqú". */
    s_expect_keywords("Un site lorsqu'il faut, c'est-à-dire au-delà des horaires, puisqu'on ferme tôt ; "
                      "quoiqu'il en soit, presqu'à chaque fois, puisque presque quoique",
                      (const char *[]){"faut", "ferme", "horaire", "site", "tot", NULL});
    /* What every structure of the ESS says of itself carries no signal. */
    s_expect_keywords("Bonjour, notre association (une structure de l'ESS) cherche des locaux, bureaux, etc. "
                      "Merci svp ! Associations et structures bienvenues",
                      (const char *[]){"bienvenue", "bureau", "local", NULL});
    /* Nor the fillers of a request, nor être and avoir in any tense. */
    s_expect_keywords("Nous serons également ravis de trouver, notamment à partir de maintenant, quelques "
                      "bureaux déjà équipés : ce serait bien, nous souhaitons que les salles soient proposées "
                      "ou recherchées",
                      (const char *[]){"bureau", "equipe", "ravi", "salle", NULL});
}

static void folding_beyond_the_cap_keeps_the_words_said_first(void **state) {
    (void)state;
    /* "zythum" first, then 300 other words: alphabetically last, it was cut. */
    char text[300 * 8 + 16] = "Zythum";
    for (int i = 0; i < 300; i++)
        snprintf(text + strlen(text), 16, " mot%03d", i);
    char *words[256];
    size_t n = mg_text_keywords(text, words, 256);
    assert_int_equal(n, 256);
    assert_string_equal(words[n - 1], "zythum"); /* kept, and sorted */
    assert_string_equal(words[0], "mot000");
    assert_string_equal(words[n - 2], "mot254"); /* the 255 said next */
    for (size_t i = 0; i < n; i++)
        free(words[i]);
}

static void folding_folds_simple_plurals_and_removes_duplicates(void **state) {
    (void)state;
    s_expect_keywords("Cuisines cuisine CUISINE cuisinés", (const char *[]){"cuisine", NULL});
    s_expect_keywords(
        "bureaux locaux travaux choix prix adresses process stocks",
        (const char *[]){"adresse", "bureau", "choix", "local", "prix", "process", "stock", "travail", NULL});
    /* Four letters or fewer keep their final s or x, but for the plurals
     * "jeux", "feux" and "eaux". */
    s_expect_keywords("bus gens mois jeux feux eaux",
                      (const char *[]){"bus", "eau", "feu", "gens", "jeu", "mois", NULL});
    /* The irregular plurals of the trade go to their singular. */
    s_expect_keywords("Réemploi de matériaux, matériau, tuyaux, vitraux et baux",
                      (const char *[]){"bail", "materiau", "reemploi", "tuyau", "vitrail", NULL});
}

static void decomposed_accents_fold_as_composed_ones(void **state) {
    (void)state;
    /* "équipe matériel café" typed decomposed (e + U+0301): the same words,
     * not "quipe", "mate", "riel", "caf". */
    s_expect_keywords("e\xCC\x81quipe mate\xCC\x81riel cafe\xCC\x81",
                      (const char *[]){"cafe", "equipe", "materiel", NULL});
    char *words[4], *spelled[4];
    assert_int_equal(mg_text_keywords_spelled("mate\xCC\x81riel", words, spelled, NULL, 4), 1);
    assert_string_equal(words[0], "materiel");
    assert_string_equal(spelled[0], "mate\xCC\x81riel"); /* shown as written */
    free(words[0]);
    free(spelled[0]);
}

static void folding_survives_invalid_utf8_and_keeps_words_ascii(void **state) {
    (void)state;
    /* A truncated é, a stray FF FE, a truncated euro sign, a valid é, an
     * encoded surrogate and an overlong '/': every bad byte separates words. */
    s_expect_keywords(
        "caf\xC3 cuisine \xFF\xFEstockage \xE2\x82 bureau\xC3\xA9 \xED\xA0\x80xyz overlong \xC0\xAF"
        "abc",
        (const char *[]){"abc", "bureaue", "caf", "cuisine", "overlong", "stockage", "xyz", NULL});

    char *words[8];
    assert_int_equal(mg_text_keywords(NULL, words, 8), 0);
    assert_int_equal(mg_text_keywords("", words, 8), 0);
    assert_int_equal(mg_text_keywords("cuisine", words, 0), 0);
    /* `max` keeps the words said first, sorted. */
    assert_int_equal(mg_text_keywords("zebre cuisine abeille", words, 2), 2);
    assert_string_equal(words[0], "cuisine");
    assert_string_equal(words[1], "zebre");
    free(words[0]);
    free(words[1]);

    /* A very long word is cut at 40 bytes. */
    char longword[201];
    memset(longword, 'a', 200);
    longword[200] = '\0';
    assert_int_equal(mg_text_keywords(longword, words, 8), 1);
    assert_int_equal(strlen(words[0]), 40);
    free(words[0]);

    /* Pseudo-random bytes (fixed seed): every keyword is 3..40 of [a-z0-9]. */
    uint32_t seed = 12345;
    char text[257];
    char *many[128];
    for (int round = 0; round < 2000; round++) {
        size_t len = 0;
        for (; len < sizeof text - 1; len++) {
            seed = seed * 1103515245u + 12345u;
            unsigned char byte = (unsigned char)(seed >> 16);
            if (byte == 0) byte = ' ';
            text[len] = (char)byte;
        }
        text[len] = '\0';
        size_t n = mg_text_keywords(text, many, 128);
        for (size_t i = 0; i < n; i++) {
            size_t wl = strlen(many[i]);
            assert_true(wl >= 3 && wl <= 40);
            assert_int_equal(strspn(many[i], "abcdefghijklmnopqrstuvwxyz0123456789"), wl);
            if (i > 0 && strcmp(many[i - 1], many[i]) >= 0)
                fail_msg("not sorted: \"%s\" then \"%s\"", many[i - 1], many[i]);
        }
        for (size_t i = 0; i < n; i++)
            free(many[i]);
    }
}

/* ---- Pairs ------------------------------------------------------------- */

typedef struct {
    Maillage__V1__Need need;
    Maillage__V1__Offer offer;
    Maillage__V1__OfferConditions conditions;
    mg_match_party_t need_party;
    mg_match_party_t offer_party;
    mg_match_input_t in;
} s_pair_t;

static char *s_need_tags[] = {"cuisine", "stockage"};
static char *s_offer_tags[] = {"cuisines", "stockage", "bureaux"};

/* An association in Caen needs premises with a kitchen within 30 km; a
 * cooperative in Hérouville-Saint-Clair offers some within 20 km. */
static void s_pair_init(s_pair_t *p) {
    memset(p, 0, sizeof *p);
    maillage__v1__need__init(&p->need);
    maillage__v1__offer__init(&p->offer);
    maillage__v1__offer_conditions__init(&p->conditions);

    p->need.need_id = "need-1";
    p->need.structure_id = "asso-caen";
    p->need.category = "locaux";
    p->need.tags = s_need_tags;
    p->need.n_tags = 2;
    p->need.title = "Local avec cuisine pour une épicerie solidaire";
    p->need.description = "Nous cherchons une cuisine équipée et du stockage au frais.";
    p->need.commune = "14118";
    p->need.radius_km = 30;
    p->need.valid_until = "2026-06-30";

    p->offer.offer_id = "offer-1";
    p->offer.provider_id = "scop-herouville";
    p->offer.category = "locaux";
    p->offer.tags = s_offer_tags;
    p->offer.n_tags = 3;
    p->offer.title = "Cuisine partagée et bureaux";
    p->offer.description = "Cuisine professionnelle, chambre froide, stockage sec.";
    p->offer.commune = "14327";
    p->offer.radius_km = 20;
    p->offer.valid_from = "2026-01-01";
    p->offer.conditions = &p->conditions;

    p->need_party.structure_id = "asso-caen";
    p->need_party.family = MAILLAGE__V1__FAMILY__FAMILY_ASSOCIATION;
    p->need_party.naf_code = "88.10A";
    p->need_party.commune = s_commune("14118");
    p->offer_party.structure_id = "scop-herouville";
    p->offer_party.family = MAILLAGE__V1__FAMILY__FAMILY_COOPERATIVE;
    p->offer_party.naf_code = "88.10A";
    p->offer_party.commune = s_commune("14327");

    p->in.need = &p->need;
    p->in.need_party = &p->need_party;
    p->in.need_commune = s_commune("14118");
    p->in.offer = &p->offer;
    p->in.offer_party = &p->offer_party;
    p->in.offer_commune = s_commune("14327");
    p->in.today = TODAY;
    p->in.offer_age_days = 3;
    p->in.category_label = "locaux";
}

/* Move the offer to `code`. */
static void s_offer_at(s_pair_t *p, const char *code) {
    p->offer.commune = (char *)code;
    p->in.offer_commune = s_commune(code);
    p->offer_party.commune = p->in.offer_commune;
}

static void s_need_at(s_pair_t *p, const char *code) {
    p->need.commune = (char *)code;
    p->in.need_commune = s_commune(code);
    p->need_party.commune = p->in.need_commune;
}

/* ---- Filters ----------------------------------------------------------- */

static void caen_need_matches_herouville_offer_within_both_radii(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
    double d = mg_communes_distance_km(s_commune("14118"), s_commune("14327"));
    assert_true(d > 3.0 && d < 4.5); /* about 3.6 km, centre to centre */

    /* The smaller radius decides: an offer radius of 3 km no longer reaches. */
    p.offer.radius_km = 3;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OUT_OF_AREA);
    p.offer.radius_km = 20;
    p.need.radius_km = 3;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OUT_OF_AREA);
    /* A need radius of 0 means no limit. */
    p.need.radius_km = 0;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
}

/* The explanation says the distance as match.found carries it (to 0.1
 * km), from which the notifier writes its « à N km »: Hérouville-Saint-
 * Clair to Rouen, 106.46 km, read « à 106 km » in the explanation and
 * « à 107 km » (from 106.5) in the message beside it. */
static void the_explanation_says_the_distance_the_match_carries(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    s_need_at(&p, "14327");
    s_offer_at(&p, "76540");
    char *dep14[] = {"dep:14"};
    p.offer.territory = dep14;
    p.offer.n_territory = 1;
    double d = mg_communes_distance_km(s_commune("14327"), s_commune("76540"));
    assert_true(lround(d) != lround(mg_match_distance_shown(d))); /* the case: rounding twice differs */
    mg_match_score_t out;
    mg_match_score(&p.in, NULL, &out);
    char said[32], phrase[40];
    snprintf(phrase, sizeof phrase, "%s,",
             mg_fr_distance(mg_match_distance_shown(out.distance_km), 0, said, sizeof said));
    assert_non_null(strstr(out.explanation, phrase));
    assert_non_null(strstr(out.explanation, "à 107 km,"));
}

static void caen_need_and_rouen_offer_meet_only_through_the_territory(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    s_offer_at(&p, "76540");
    p.need.radius_km = 30;
    p.offer.radius_km = 30;
    double d = mg_communes_distance_km(s_commune("14118"), s_commune("76540"));
    assert_true(d > 100.0 && d < 115.0);
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OUT_OF_AREA);

    char *dep76[] = {"dep:76"};
    char *dep14[] = {"dep:76", "dep:14"};
    char *epci[] = {"epci:200065597"};
    char *commune[] = {"14118"};
    char *other_epci[] = {"epci:200023414"};
    p.offer.territory = dep76;
    p.offer.n_territory = 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OUT_OF_AREA);
    p.offer.territory = dep14;
    p.offer.n_territory = 2;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK); /* the need's radius does not apply */
    p.offer.territory = epci;
    p.offer.n_territory = 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
    p.offer.territory = commune;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
    p.offer.territory = other_epci;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OUT_OF_AREA);

    /* Without a territory, both radii must reach: the need's has no limit. */
    p.offer.territory = NULL;
    p.offer.n_territory = 0;
    p.need.radius_km = 0;
    p.offer.radius_km = (unsigned)d + 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
    p.offer.radius_km = (unsigned)d - 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OUT_OF_AREA);
}

static void offer_without_radius_serves_its_commune_and_territory_only(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    p.offer.radius_km = 0;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OUT_OF_AREA); /* Hérouville is not Caen */
    s_offer_at(&p, "14118");
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK); /* same commune */
    s_need_at(&p, "14327");
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OUT_OF_AREA);
    char *epci[] = {"epci:200065597"};
    p.offer.territory = epci;
    p.offer.n_territory = 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK); /* Hérouville is in Caen la Mer */
}

/* An offer with a territory and no commune (its provider in Rouen): in area
 * through its territory alone, the provider's seat is not its place, and
 * the explanation says where without a distance. */
static void offer_placed_by_its_territory_only(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    char *dep[] = {"dep:14"};
    p.offer.territory = dep;
    p.offer.n_territory = 1;
    p.offer.radius_km = 0;
    p.offer.commune = "";
    p.in.offer_commune = NULL;
    p.offer_party.commune = s_commune("76540");
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK); /* Caen is in the Calvados */
    mg_match_score_t out;
    mg_match_score(&p.in, NULL, &out);
    assert_non_null(strstr(out.explanation, "sur le territoire desservi (Calvados)"));
    assert_null(strstr(out.explanation, " km"));
    assert_float_equal(out.components[0].value, 0.0, EPS); /* somewhere in the Calvados: how far, unknown */
    /* A territory naming the need's commune: the offer serves that commune
     * itself, as near as can be (it scored 0 and ranked below an offer 5 km
     * away). */
    char *caen[] = {"dep:14", "14118"}; /* in both: the commune, whatever the order */
    p.offer.territory = caen;
    p.offer.n_territory = 2;
    mg_match_score(&p.in, NULL, &out);
    assert_non_null(strstr(out.explanation, "sur le territoire desservi (Caen)"));
    assert_float_equal(out.components[0].value, 1.0, EPS);
    assert_float_equal(out.distance_km, -1.0, EPS);
    s_need_at(&p, "76540"); /* the provider's commune, outside the territory */
    p.offer.territory = dep;
    p.offer.n_territory = 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OUT_OF_AREA);
}

static void other_category_and_same_structure_never_match(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    p.offer.category = "financement";
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OTHER_CATEGORY);
    assert_string_equal(mg_match_verdict_name(MG_MATCH_OTHER_CATEGORY), "other_category");
    assert_string_equal(mg_match_verdict_name(MG_MATCH_OK), "ok");
    s_pair_init(&p);
    p.offer.provider_id = "asso-caen";
    p.offer_party.structure_id = "asso-caen";
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_SAME_STRUCTURE);
}

static void expired_or_not_yet_valid_items_never_match(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    p.need.valid_until = "2026-03-14";
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_NOT_VALID_TODAY);
    p.need.valid_until = TODAY; /* the last day still holds */
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
    p.offer.valid_from = "2026-03-16";
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_NOT_VALID_TODAY);
    p.offer.valid_from = TODAY;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
    p.offer.valid_until = "2025-12-31";
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_NOT_VALID_TODAY);
    p.offer.valid_until = "";
    p.need.valid_from = "2026-04-01";
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_NOT_VALID_TODAY);
    p.in.today = NULL; /* unknown day: dates are not checked */
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
}

static void reserved_offers_refuse_the_others(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    p.conditions.ess_only = 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
    p.need_party.family = MAILLAGE__V1__FAMILY__FAMILY_LOCAL_BUSINESS;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_CONDITIONS);
    p.need_party.family = MAILLAGE__V1__FAMILY__FAMILY_PUBLIC_BODY;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_CONDITIONS);
    p.need_party.family = MAILLAGE__V1__FAMILY__FAMILY_UNSPECIFIED;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_CONDITIONS);

    s_pair_init(&p);
    char *member_of[] = {"reseau-b", "reseau-c"};
    p.conditions.member_of = member_of;
    p.conditions.n_member_of = 2;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_CONDITIONS); /* no networks at all */
    const char *const networks_a[] = {"reseau-a", NULL};
    p.need_party.networks = networks_a;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_CONDITIONS);
    const char *const networks_ac[] = {"reseau-a", "reseau-c", NULL};
    p.need_party.networks = networks_ac;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);

    s_pair_init(&p);
    Maillage__V1__Family families[] = {MAILLAGE__V1__FAMILY__FAMILY_COOPERATIVE};
    p.conditions.families = families;
    p.conditions.n_families = 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_CONDITIONS);
    p.need_party.family = MAILLAGE__V1__FAMILY__FAMILY_COOPERATIVE;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);

    s_pair_init(&p);
    char *dep76[] = {"76"};
    char *dep14[] = {"61", "14"};
    p.conditions.departments = dep76;
    p.conditions.n_departments = 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_CONDITIONS);
    p.conditions.departments = dep14;
    p.conditions.n_departments = 2;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);

    s_pair_init(&p);
    p.offer.conditions = NULL; /* no conditions at all */
    p.need_party.family = MAILLAGE__V1__FAMILY__FAMILY_LOCAL_BUSINESS;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
}

/* What the matcher's department-wide read is told (s_offer_filter()). */
static void family_admitted_follows_ess_only_and_families(void **state) {
    (void)state;
    Maillage__V1__OfferConditions c;
    maillage__v1__offer_conditions__init(&c);
    assert_true(mg_match_family_admitted(NULL, MAILLAGE__V1__FAMILY__FAMILY_LOCAL_BUSINESS));
    assert_true(mg_match_family_admitted(&c, MAILLAGE__V1__FAMILY__FAMILY_LOCAL_BUSINESS));
    c.ess_only = 1;
    assert_true(mg_match_family_admitted(&c, MAILLAGE__V1__FAMILY__FAMILY_COOPERATIVE));
    assert_false(mg_match_family_admitted(&c, MAILLAGE__V1__FAMILY__FAMILY_LOCAL_BUSINESS));
    assert_false(mg_match_family_admitted(&c, MAILLAGE__V1__FAMILY__FAMILY_UNSPECIFIED));
    Maillage__V1__Family families[] = {MAILLAGE__V1__FAMILY__FAMILY_MUTUAL,
                                       MAILLAGE__V1__FAMILY__FAMILY_PUBLIC_BODY};
    c.families = families;
    c.n_families = 2;
    assert_true(mg_match_family_admitted(&c, MAILLAGE__V1__FAMILY__FAMILY_MUTUAL));
    assert_false(mg_match_family_admitted(&c, MAILLAGE__V1__FAMILY__FAMILY_PUBLIC_BODY)); /* not ESS */
    assert_false(mg_match_family_admitted(&c, MAILLAGE__V1__FAMILY__FAMILY_COOPERATIVE)); /* not listed */
    c.ess_only = 0;
    assert_true(mg_match_family_admitted(&c, MAILLAGE__V1__FAMILY__FAMILY_PUBLIC_BODY));
}

/* ---- Score ------------------------------------------------------------- */

static const mg_match_weights_t s_weights = {
    .distance = 0.25,
    .keywords = 0.25,
    .sector = 0.1,
    .intercooperation = 0.1,
    .freshness = 0.1,
    .feedback = 0.1,
    .fairness = 0.1,
    .threshold = 0.3,
};

static void fixed_pair_has_hand_checked_components_and_sentence(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    mg_match_score_t s;
    double score = mg_match_score(&p.in, &s_weights, &s);
    double d = mg_communes_distance_km(s_commune("14118"), s_commune("14327"));

    assert_string_equal(s.components[0].name, "distance");
    assert_float_equal(s.components[0].value, 1.0 - d / 20.0, EPS);
    assert_string_equal(s.components[0].detail, "à 4 km dans un rayon de 20 km");
    assert_float_equal(s.distance_km, d, EPS);
    /* Need: cuisine, epicerie, equipee, frai, solidaire, stockage (6: local,
     * the category's word, left out). Offer: bureau, chambre, cuisine,
     * froide, partagee, professionnelle, sec, stockage (8). Shared: cuisine,
     * stockage -> 2 / 6. */
    assert_string_equal(s.components[1].name, "keywords");
    assert_float_equal(s.components[1].value, 2.0 / 6.0, EPS);
    assert_string_equal(s.components[1].detail, "mots communs : cuisine, stockage");
    assert_string_equal(s.components[2].name, "sector");
    {
        /* Beyond four shared words, how many more is said. */
        s_pair_t many;
        s_pair_init(&many);
        many.need.description = many.offer.description = "bureaux salles réunion cuisine stockage jardin";
        mg_match_score_t m;
        mg_match_score(&many.in, &s_weights, &m);
        assert_non_null(strstr(m.components[1].detail, " et "));
        assert_string_equal(strstr(m.components[1].detail, " et "),
                            " et 2 autres"); /* six shared, four shown */
    }
    assert_float_equal(s.components[2].value, 1.0, EPS);
    assert_string_equal(s.components[2].detail, "même secteur d'activité (88.10A)");
    assert_string_equal(s.components[3].name, "intercooperation");
    assert_float_equal(s.components[3].value, 1.0, EPS);
    assert_string_equal(s.components[3].detail, "deux structures de l'ESS");
    assert_string_equal(s.components[4].name, "freshness");
    assert_float_equal(s.components[4].value, 1.0 - 3.0 / 90.0, EPS);
    assert_string_equal(s.components[4].detail, "offre récente");
    assert_string_equal(s.components[5].name, "feedback");
    assert_float_equal(s.components[5].value, 0.5, EPS);
    assert_string_equal(s.components[5].detail, "");
    assert_string_equal(s.components[6].name, "fairness");
    assert_float_equal(s.components[6].value, 1.0, EPS);

    double expected =
        0.25 * (1.0 - d / 20.0) + 0.25 * 2.0 / 6.0 + 0.1 + 0.1 + 0.1 * (1.0 - 3.0 / 90.0) + 0.05 + 0.1;
    assert_float_equal(score, expected, EPS);
    assert_float_equal(s.score, expected, EPS);
    assert_float_equal(s.components[0].weight, 0.25, EPS);
    assert_string_equal(s.explanation,
                        "Même catégorie (locaux), à 4 km dans un rayon de 20 km, même secteur d'activité "
                        "(88.10A), deux structures de l'ESS, offre récente, mots communs : cuisine, "
                        "stockage");

    /* The same pair as the example: 30 km radii, no sector, an old
     * offer, no weight on freshness. */
    p.offer.radius_km = 30;
    p.offer_party.naf_code = "";
    p.in.offer_age_days = 200;
    mg_match_weights_t w = s_weights;
    w.freshness = 0.0;
    mg_match_score(&p.in, &w, &s);
    assert_string_equal(s.explanation,
                        "Même catégorie (locaux), à 4 km dans un rayon de 30 km, deux structures de l'ESS, "
                        "mots communs : cuisine, stockage");
    assert_float_equal(s.components[4].value, 0.0, EPS);
    assert_float_equal(s.components[4].weight, 0.0, EPS);
}

static void keywords_keep_a_spelling_with_accents_for_staff(void **state) {
    (void)state;
    char *words[8], *spellings[8];
    size_t n = mg_text_keywords_spelled(
        "numerique Équipes BÉNÉVOLES ; l'équipe d'une Œuvre, ÉQUIPE, Numérique, L'HAŸ", words, spellings,
        NULL, 8);
    const char *want[][2] = {{"benevole", "bénévoles"},
                             {"equipe", "équipes"},
                             {"hay", "haÿ"},
                             {"numerique", "numérique"},
                             {"oeuvre", "œuvre"}};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(words[i], want[i][0]);
        assert_string_equal(spellings[i], want[i][1]);
        free(words[i]);
        free(spellings[i]);
    }
}

static void explanations_show_shared_words_as_a_side_spells_them(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    const char *folded[] = {"equipe", "numerique"}, *spelled[] = {"équipe", "numérique"};
    p.in.need_keywords = p.in.offer_keywords = folded;
    p.in.n_need_keywords = p.in.n_offer_keywords = 2;
    mg_match_score_t s;
    p.in.need_spellings = spelled; /* the new need's own text; its candidate is folded */
    mg_match_score(&p.in, &s_weights, &s);
    assert_string_equal(s.components[1].detail, "mots communs : équipe, numérique");
    p.in.need_spellings = NULL, p.in.offer_spellings = spelled; /* the other way */
    mg_match_score(&p.in, &s_weights, &s);
    assert_string_equal(s.components[1].detail, "mots communs : équipe, numérique");
    p.in.offer_spellings = NULL; /* neither: folded */
    mg_match_score(&p.in, &s_weights, &s);
    assert_string_equal(s.components[1].detail, "mots communs : equipe, numerique");

    /* One shared word, spelled in more bytes than a folded word may have:
     * whole, not cut inside its "é" (invalid UTF-8, which the broker
     * refused, and the match was lost). */
    const char *one[] = {"mutualisationinterassociativedesequipements"};
    const char *one_spelled[] = {"mutualisationinterassociativedeséquipéménts"};
    p.in.need_keywords = p.in.offer_keywords = one;
    p.in.n_need_keywords = p.in.n_offer_keywords = 1;
    p.in.need_spellings = one_spelled;
    mg_match_score(&p.in, &s_weights, &s);
    assert_string_equal(s.components[1].detail, "mot commun : mutualisationinterassociativedeséquipéménts");
    assert_true(mg_utf8_is_valid(s.explanation, strlen(s.explanation)));
}

static void explanations_name_the_shared_words_a_side_says_first(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    /* Six shared words: the need's title says "outils" and "collaboratifs",
     * its description the others; alphabetical order would name
     * "accueil, animation, collaboratifs, équipe" and hide "outils". */
    p.need.n_tags = p.offer.n_tags = 0;
    p.need.title = "Des outils collaboratifs";
    p.need.description = "Pour l'équipe d'animation, l'accueil et le planning";
    p.offer.title = "Planning et accueil";
    p.offer.description = "Outils collaboratifs libres : animation d'équipe";
    mg_match_score_t s;
    mg_match_score(&p.in, &s_weights, &s);
    assert_string_equal(s.components[1].detail,
                        "mots communs : accueil, collaboratifs, outils, planning et 2 autres");
    /* As the matcher calls it: the need folded once with its places, the
     * candidate stored as its keywords only. */
    char *kw[16], *spelled[16], *okw[16];
    size_t places[16];
    size_t n = mg_match_need_keywords(&p.need, kw, spelled, places, 16);
    size_t on = mg_match_offer_keywords(&p.offer, okw, NULL, NULL, 16);
    p.in.need_keywords = (const char *const *)kw, p.in.n_need_keywords = n;
    p.in.need_spellings = (const char *const *)spelled, p.in.need_places = places;
    p.in.offer_keywords = (const char *const *)okw, p.in.n_offer_keywords = on;
    mg_match_score(&p.in, &s_weights, &s);
    assert_string_equal(s.components[1].detail,
                        "mots communs : animation, collaboratifs, équipe, outils et 2 autres");
    p.in.need_places = NULL; /* no places: the first four in alphabetical order */
    mg_match_score(&p.in, &s_weights, &s);
    assert_string_equal(s.components[1].detail,
                        "mots communs : accueil, animation, collaboratifs, équipe et 2 autres");
    for (size_t i = 0; i < n; i++)
        free(kw[i]), free(spelled[i]);
    for (size_t i = 0; i < on; i++)
        free(okw[i]);
}

static void prefolded_keywords_give_the_same_score(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    mg_match_score_t folded_here, prefolded;
    mg_match_score(&p.in, &s_weights, &folded_here);

    char *need_words[256], *offer_words[256];
    size_t nn = mg_match_need_keywords(&p.need, need_words, NULL, NULL, 256);
    size_t no = mg_match_offer_keywords(&p.offer, offer_words, NULL, NULL, 256);
    assert_int_equal(nn, 7);
    assert_int_equal(no, 8);
    p.in.need_keywords = (const char *const *)need_words;
    p.in.n_need_keywords = nn;
    p.in.offer_keywords = (const char *const *)offer_words;
    p.in.n_offer_keywords = no;
    mg_match_score(&p.in, &s_weights, &prefolded);
    assert_memory_equal(&folded_here, &prefolded, sizeof prefolded);
    for (size_t i = 0; i < nn; i++)
        free(need_words[i]);
    for (size_t i = 0; i < no; i++)
        free(offer_words[i]);
}

static void nearer_offer_with_more_shared_words_ranks_higher(void **state) {
    (void)state;
    s_pair_t near, far;
    s_pair_init(&near);
    s_pair_init(&far);
    s_offer_at(&far, "76540");
    char *dep14[] = {"dep:14"};
    far.offer.territory = dep14;
    far.offer.n_territory = 1;
    static char *far_tags[] = {"cuisine"};
    far.offer.tags = far_tags;
    far.offer.n_tags = 1;
    far.offer.description = "Salle polyvalente.";
    assert_int_equal(mg_match_filter(&far.in), MG_MATCH_OK);

    mg_match_score_t sn, sf;
    mg_match_score(&near.in, &s_weights, &sn);
    mg_match_score(&far.in, &s_weights, &sf);
    assert_true(sn.score > sf.score);
    assert_true(sn.components[0].value > sf.components[0].value);
    assert_true(sn.components[1].value > sf.components[1].value);
    /* Beyond the need's 30 km the distance counts for nothing, but the
     * territory explains why the pair exists. */
    assert_float_equal(sf.components[0].value, 0.0, EPS);
    char expected[160];
    snprintf(expected, sizeof expected, "à %ld km, sur le territoire desservi (Calvados)",
             lround(sf.distance_km));
    assert_string_equal(sf.components[0].detail, expected);
    assert_string_equal(sf.components[1].detail, "mot commun : cuisine");

    char *epci[] = {"epci:200065597"};
    far.offer.territory = epci;
    mg_match_score(&far.in, &s_weights, &sf);
    snprintf(expected, sizeof expected, "à %ld km, sur le territoire desservi (CU Caen la Mer)",
             lround(sf.distance_km));
    assert_string_equal(sf.components[0].detail, expected);
}

/* The keyword component of one offer's texts against the need of
 * s_pair_init(), both put in `category`, and its detail in `detail`. */
static double s_keywords_of(const char *category, char **tags, size_t n_tags, const char *title,
                            const char *description, char detail[256]) {
    s_pair_t p;
    s_pair_init(&p);
    p.need.category = p.offer.category = (char *)category;
    p.need.n_tags = 0;
    p.need.title = "Formation comptabilité associative";
    p.need.description = "Former nos bénévoles à la comptabilité et au budget";
    p.offer.tags = tags;
    p.offer.n_tags = n_tags;
    p.offer.title = (char *)title;
    p.offer.description = (char *)description;
    mg_match_score_t sc;
    mg_match_score(&p.in, &s_weights, &sc);
    snprintf(detail, 256, "%s", sc.components[1].detail);
    return sc.components[1].value;
}

static void keywords_leave_out_the_category_and_do_not_reward_a_one_word_text(void **state) {
    (void)state;
    char d_bare[256], d_other[256], d_right[256];
    static char *right_tags[] = {"comptabilité", "budget"};
    /* A need for accounting training: "Formations" alone, or first aid,
     * share only the category's word, which counts for nothing; the offer
     * that teaches accounting comes first. */
    double bare = s_keywords_of("formation", NULL, 0, "Formations", "", d_bare);
    double other = s_keywords_of("formation", NULL, 0, "Formation premiers secours", "", d_other);
    double right =
        s_keywords_of("formation", right_tags, 2, "Formation comptabilité et budget des associations",
                      "Tenue des comptes, budget prévisionnel, bilan", d_right);
    assert_float_equal(bare, 0.0, EPS);
    assert_float_equal(other, 0.0, EPS);
    assert_string_equal(d_bare, "");
    /* Need: associative, benevole, budget, comptabilite, former (5). */
    assert_float_equal(right, 2.0 / 5.0, EPS);
    assert_string_equal(d_right, "mots communs : budget, comptabilité");
    /* In another category, "formation" is a word like any other. */
    assert_float_equal(s_keywords_of("competences", NULL, 0, "Formations", "", d_bare), 1.0 / 3.0, EPS);
    assert_string_equal(d_bare, "mot commun : formation"); /* as the need spells it */
    /* A text of one or two words is not a full match: it counts as three. */
    assert_float_equal(s_keywords_of("formation", NULL, 0, "Comptabilité", "", d_bare), 1.0 / 3.0, EPS);
    assert_float_equal(s_keywords_of("formation", NULL, 0, "Comptabilité, budget", "", d_bare), 2.0 / 3.0,
                       EPS);
    assert_float_equal(s_keywords_of("formation", NULL, 0, "Comptabilité, budget, bénévoles", "", d_bare),
                       1.0, EPS);
    /* A code of two words leaves both out, on both sides. */
    s_pair_t p;
    s_pair_init(&p);
    p.need.category = p.offer.category = "emploi_partage";
    p.need.n_tags = p.offer.n_tags = 0;
    p.need.title = p.offer.title = "Emploi partagé en comptabilité";
    p.need.description = p.offer.description = "";
    mg_match_score_t sc;
    mg_match_score(&p.in, &s_weights, &sc);
    assert_float_equal(sc.components[1].value, 1.0 / 3.0, EPS);
    assert_string_equal(sc.components[1].detail, "mot commun : comptabilité");
}

static void fairness_ranks_down_a_provider_proposed_many_times(void **state) {
    (void)state;
    s_pair_t fresh, busy;
    s_pair_init(&fresh);
    s_pair_init(&busy);
    busy.in.provider_recent_proposals = 50;
    mg_match_score_t sf, sb;
    mg_match_score(&fresh.in, &s_weights, &sf);
    mg_match_score(&busy.in, &s_weights, &sb);
    assert_float_equal(sf.components[6].value, 1.0, EPS);
    assert_float_equal(sb.components[6].value, 1.0 / 11.0, EPS);
    /* (assert_float_equal() compares floats: a difference of two scores
     * may round to another float than the expected value.) */
    assert_true(fabs((sf.score - sb.score) - 0.1 * (1.0 - 1.0 / 11.0)) < EPS);
    busy.in.provider_recent_proposals = 5;
    mg_match_score(&busy.in, &s_weights, &sb);
    assert_float_equal(sb.components[6].value, 0.5, EPS);
    assert_string_equal(sf.explanation, sb.explanation); /* fairness ranks, it does not explain */
}

static void components_follow_their_formulas(void **state) {
    (void)state;
    s_pair_t p;
    mg_match_score_t s;

    /* Sector: division, section, unrelated, unknown. */
    s_pair_init(&p);
    p.offer_party.naf_code = "8899B";
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[2].value, 0.6, EPS);
    assert_string_equal(s.components[2].detail, "même division d'activité (NAF 88)");
    p.offer_party.naf_code = "86.10Z";
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[2].value, 0.3, EPS);
    assert_string_equal(s.components[2].detail,
                        "secteurs d'activité proches (santé humaine et action sociale)");
    p.offer_party.naf_code = "47.11F";
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[2].value, 0.0, EPS);
    assert_string_equal(s.components[2].detail, "");
    p.need_party.naf_code = "";
    p.offer_party.naf_code = "";
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[2].value, 0.0, EPS);

    /* Intercooperation. */
    s_pair_init(&p);
    p.offer_party.family = MAILLAGE__V1__FAMILY__FAMILY_LOCAL_BUSINESS;
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[3].value, 0.5, EPS);
    assert_string_equal(s.components[3].detail, "");
    p.need_party.family = MAILLAGE__V1__FAMILY__FAMILY_PUBLIC_BODY;
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[3].value, 0.0, EPS);

    /* Freshness. */
    s_pair_init(&p);
    p.in.offer_age_days = 45;
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[4].value, 0.5, EPS);
    assert_string_equal(s.components[4].detail, "");
    p.in.offer_age_days = 0;
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[4].value, 1.0, EPS);

    /* Feedback, Laplace-smoothed. */
    p.in.feedback_contact_made = 8;
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[5].value, 0.9, EPS);
    assert_string_equal(s.components[5].detail, "offre souvent suivie d'une mise en relation");
    assert_non_null(strstr(s.explanation, ", offre souvent suivie d'une mise en relation, mots communs"));
    p.in.feedback_contact_made = 0;
    p.in.feedback_not_relevant = 8;
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[5].value, 0.1, EPS);
    assert_string_equal(s.components[5].detail, "");

    /* Same commune: full distance value. */
    s_pair_init(&p);
    s_offer_at(&p, "14118");
    mg_match_score(&p.in, &s_weights, &s);
    assert_float_equal(s.components[0].value, 1.0, EPS);
    assert_float_equal(s.distance_km, 0.0, EPS);
    assert_string_equal(s.components[0].detail, "dans la même commune");
    assert_non_null(strstr(s.explanation, "Même catégorie (locaux), dans la même commune, "));

    /* No weight at all: score 0, no division by zero; NULL weights = defaults. */
    mg_match_weights_t zero = {0};
    assert_float_equal(mg_match_score(&p.in, &zero, &s), 0.0, EPS);
    assert_string_equal(s.explanation, "Même catégorie (locaux)");
    mg_match_weights_t defaults;
    mg_match_weights_default(&defaults);
    mg_match_score_t with_defaults;
    assert_float_equal(mg_match_score(&p.in, NULL, &s), mg_match_score(&p.in, &defaults, &with_defaults),
                       EPS);
}

static void the_default_weights_are_those_of_the_config(void **state) {
    (void)state;
    char err[256];
    mg_config_t *cfg = mg_config_load_buffer("empty", "", 0, err, sizeof err);
    assert_non_null(cfg);
    mg_match_weights_t w;
    mg_match_weights_default(&w);
    assert_float_equal(w.distance, mg_config_double(cfg, "matcher", "weight_distance"), EPS);
    assert_float_equal(w.keywords, mg_config_double(cfg, "matcher", "weight_keywords"), EPS);
    assert_float_equal(w.sector, mg_config_double(cfg, "matcher", "weight_sector"), EPS);
    assert_float_equal(w.intercooperation, mg_config_double(cfg, "matcher", "weight_intercooperation"), EPS);
    assert_float_equal(w.freshness, mg_config_double(cfg, "matcher", "weight_freshness"), EPS);
    assert_float_equal(w.feedback, mg_config_double(cfg, "matcher", "weight_feedback"), EPS);
    assert_float_equal(w.fairness, mg_config_double(cfg, "matcher", "weight_fairness"), EPS);
    assert_float_equal(w.threshold, mg_config_double(cfg, "matcher", "threshold"), EPS);
    mg_config_destroy(&cfg);
}

static void a_category_label_with_parentheses_is_not_nested_in_the_sentence(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    p.in.category_label = "Logistique (transport, stockage)";
    mg_match_score_t s;
    mg_match_score(&p.in, &s_weights, &s);
    assert_memory_equal(s.explanation, "Même catégorie (logistique : transport, stockage), ",
                        strlen("Même catégorie (logistique : transport, stockage), "));
    p.in.category_label = "Locaux";
    mg_match_score(&p.in, &s_weights, &s);
    assert_memory_equal(s.explanation, "Même catégorie (locaux), ", strlen("Même catégorie (locaux), "));
}

static void long_texts_are_cut_cleanly_at_a_character(void **state) {
    (void)state;
    s_pair_t p;
    s_pair_init(&p);
    char label[1201];
    for (size_t i = 0; i < 600; i++)
        memcpy(label + 2 * i, "é", 2);
    label[1200] = '\0';
    p.in.category_label = label;
    mg_match_score_t s;
    mg_match_score(&p.in, &s_weights, &s);
    size_t n = strlen(s.explanation);
    assert_true(n < sizeof s.explanation);
    assert_true(n >= sizeof s.explanation - 3);
    assert_true(mg_utf8_is_valid(s.explanation, n));

    /* A commune whose EPCI name overflows the detail. */
    mg_commune_t fake = *s_commune("14118");
    char epci_name[601];
    for (size_t i = 0; i < 300; i++)
        memcpy(epci_name + 2 * i, "É", 2);
    epci_name[600] = '\0';
    fake.epci_name = epci_name;
    s_pair_init(&p);
    p.in.need_commune = &fake;
    s_offer_at(&p, "76540");
    char *epci[] = {"epci:200065597"};
    p.offer.territory = epci;
    p.offer.n_territory = 1;
    assert_int_equal(mg_match_filter(&p.in), MG_MATCH_OK);
    mg_match_score(&p.in, &s_weights, &s);
    n = strlen(s.components[0].detail);
    assert_true(n < sizeof s.components[0].detail && n > 100);
    assert_true(mg_utf8_is_valid(s.components[0].detail, n));
    assert_true(mg_utf8_is_valid(s.explanation, strlen(s.explanation)));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(folding_lowers_case_removes_accents_and_splits_apostrophes),
        cmocka_unit_test(folding_drops_stop_words_short_words_and_numbers),
        cmocka_unit_test(folding_beyond_the_cap_keeps_the_words_said_first),
        cmocka_unit_test(folding_folds_simple_plurals_and_removes_duplicates),
        cmocka_unit_test(decomposed_accents_fold_as_composed_ones),
        cmocka_unit_test(folding_survives_invalid_utf8_and_keeps_words_ascii),
        cmocka_unit_test(caen_need_matches_herouville_offer_within_both_radii),
        cmocka_unit_test(caen_need_and_rouen_offer_meet_only_through_the_territory),
        cmocka_unit_test(the_explanation_says_the_distance_the_match_carries),
        cmocka_unit_test(offer_without_radius_serves_its_commune_and_territory_only),
        cmocka_unit_test(offer_placed_by_its_territory_only),
        cmocka_unit_test(other_category_and_same_structure_never_match),
        cmocka_unit_test(expired_or_not_yet_valid_items_never_match),
        cmocka_unit_test(reserved_offers_refuse_the_others),
        cmocka_unit_test(family_admitted_follows_ess_only_and_families),
        cmocka_unit_test(fixed_pair_has_hand_checked_components_and_sentence),
        cmocka_unit_test(keywords_keep_a_spelling_with_accents_for_staff),
        cmocka_unit_test(explanations_show_shared_words_as_a_side_spells_them),
        cmocka_unit_test(explanations_name_the_shared_words_a_side_says_first),
        cmocka_unit_test(prefolded_keywords_give_the_same_score),
        cmocka_unit_test(nearer_offer_with_more_shared_words_ranks_higher),
        cmocka_unit_test(keywords_leave_out_the_category_and_do_not_reward_a_one_word_text),
        cmocka_unit_test(fairness_ranks_down_a_provider_proposed_many_times),
        cmocka_unit_test(components_follow_their_formulas),
        cmocka_unit_test(the_default_weights_are_those_of_the_config),
        cmocka_unit_test(a_category_label_with_parentheses_is_not_nested_in_the_sentence),
        cmocka_unit_test(long_texts_are_cut_cleanly_at_a_character),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
