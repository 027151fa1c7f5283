/* test_validate.c -- mg_envelope_validate(): a complete valid event of every
 * type passes, and each rule, broken alone, is refused naming the right field.
 *
 * Each case starts from the valid fixture of one type, breaks one thing, and
 * states the field path the producer must be told about. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "maillage/communes.h"
#include "maillage/config.h"
#include "maillage/envelope.h"
#include "maillage/taxonomy.h"

static mg_taxonomy_t *s_taxonomy;
static mg_communes_t *s_communes;

/* Every message of the schema, filled with valid values. */
typedef struct {
    mg_envelope_t env;
    Maillage__V1__Contact contact;
    Maillage__V1__Structure structure;
    Maillage__V1__MemberJoined member_joined;
    Maillage__V1__MemberUpdated member_updated;
    Maillage__V1__MemberLeft member_left;
    Maillage__V1__Need need;
    Maillage__V1__NeedReported need_reported;
    Maillage__V1__NeedUpdated need_updated;
    Maillage__V1__NeedClosed need_closed;
    Maillage__V1__OfferConditions conditions;
    Maillage__V1__Offer offer;
    Maillage__V1__OfferPublished offer_published;
    Maillage__V1__OfferUpdated offer_updated;
    Maillage__V1__OfferWithdrawn offer_withdrawn;
    Maillage__V1__CooperationProposed cooperation_proposed;
    Maillage__V1__CooperationAnswered cooperation_answered;
    Maillage__V1__ScoreComponent component;
    Maillage__V1__ScoreComponent *components[1];
    Maillage__V1__MatchFound match_found;
    Maillage__V1__MatchFeedback match_feedback;
    Maillage__V1__CollectiveNeedDetected collective;
    char *networks[2];
    char *labels[2];
    char *tags[40];
    char *territory[3];
    char *member_of[1];
    Maillage__V1__Family families[1];
    char *departments[1];
    char *need_ids[2];
    char *structure_ids[2];
    char *coop_territory[1];
    /* Texts one byte over each limit. */
    char over_200[202];
    char over_4000[4002];
    char over_48[50];
    char over_id[66];
} fx_t;

static fx_t s_fx;

static void s_fill(char *buf, size_t len) {
    memset(buf, 'a', len - 1);
    buf[len - 1] = '\0';
}

static void s_fixture(fx_t *f, mg_payload_case_t payload) {
    memset(f, 0, sizeof *f);
    s_fill(f->over_200, sizeof f->over_200);
    s_fill(f->over_4000, sizeof f->over_4000);
    s_fill(f->over_48, sizeof f->over_48);
    s_fill(f->over_id, sizeof f->over_id);

    maillage__v1__contact__init(&f->contact);
    f->contact.name = "Claire Martin";
    f->contact.email = "claire.martin@epicerie-solidaire.example.org";
    f->contact.phone = "+33 2 31 00 00 00";
    f->contact.role = "coordinatrice";

    maillage__v1__structure__init(&f->structure);
    f->structure.structure_id = "asso-epicerie-caen";
    f->structure.name = "Épicerie solidaire du Calvados";
    f->structure.siren = "123456789";
    f->structure.siret = "12345678900017";
    f->structure.family = MAILLAGE__V1__FAMILY__FAMILY_ASSOCIATION;
    f->structure.legal_category = "9220";
    f->structure.naf_code = "88.99B";
    f->structure.commune = "14118";
    f->networks[0] = "reseau-epiceries";
    f->networks[1] = "cress-normandie";
    f->structure.n_networks = 2;
    f->structure.networks = f->networks;
    f->labels[0] = "esus";
    f->labels[1] = "rup";
    f->structure.n_labels = 2;
    f->structure.labels = f->labels;
    f->structure.employees = 4;
    f->structure.volunteers = 30;
    f->structure.website = "https://epicerie.example.org";
    f->structure.description = "Aide alimentaire\net accompagnement.\tDepuis 1998.";
    f->structure.contact = &f->contact;

    maillage__v1__member_joined__init(&f->member_joined);
    f->member_joined.structure = &f->structure;
    f->member_joined.network = "reseau-epiceries";
    f->member_joined.joined_on = "2024-02-29";
    maillage__v1__member_updated__init(&f->member_updated);
    f->member_updated.structure = &f->structure;
    maillage__v1__member_left__init(&f->member_left);
    f->member_left.structure_id = "asso-epicerie-caen";
    f->member_left.network = "reseau-epiceries";
    f->member_left.left_on = "2026-11-30";
    f->member_left.reason = "fusion";

    maillage__v1__need__init(&f->need);
    f->need.need_id = "need-42";
    f->need.structure_id = "asso-epicerie-caen";
    f->need.category = "locaux";
    f->tags[0] = "stockage";
    f->tags[1] = "chambre froide";
    f->need.n_tags = 2;
    f->need.tags = f->tags;
    f->need.title = "Local de stockage de 80 m² à Caen";
    f->need.description = "Pour les dons des producteurs.\nAccès camion nécessaire.";
    f->need.commune = "14118";
    f->need.radius_km = 20;
    f->need.valid_from = "2026-12-01";
    f->need.valid_until = "2027-06-30";
    f->need.quantity = "80 m²";
    f->need.urgency = 2;
    maillage__v1__need_reported__init(&f->need_reported);
    f->need_reported.need = &f->need;
    maillage__v1__need_updated__init(&f->need_updated);
    f->need_updated.need = &f->need;
    maillage__v1__need_closed__init(&f->need_closed);
    f->need_closed.need_id = "need-42";
    f->need_closed.structure_id = "asso-epicerie-caen";
    f->need_closed.reason = MAILLAGE__V1__CLOSURE__CLOSURE_SATISFIED;
    f->need_closed.comment = "Local trouvé.";

    maillage__v1__offer_conditions__init(&f->conditions);
    f->conditions.ess_only = 1;
    f->member_of[0] = "cress-normandie";
    f->conditions.n_member_of = 1;
    f->conditions.member_of = f->member_of;
    f->families[0] = MAILLAGE__V1__FAMILY__FAMILY_COOPERATIVE;
    f->conditions.n_families = 1;
    f->conditions.families = f->families;
    f->departments[0] = "14";
    f->conditions.n_departments = 1;
    f->conditions.departments = f->departments;

    maillage__v1__offer__init(&f->offer);
    f->offer.offer_id = "offer-7";
    f->offer.provider_id = "scic-batiment";
    f->offer.category = "locaux";
    f->offer.n_tags = 1;
    f->offer.tags = f->tags;
    f->offer.title = "Entrepôt partagé à Mondeville";
    f->offer.description = "Deux cellules disponibles.";
    f->offer.commune = "14437";
    f->offer.radius_km = 30;
    f->territory[0] = "dep:14";
    f->territory[1] = "epci:200065597";
    f->territory[2] = "14118";
    f->offer.n_territory = 3;
    f->offer.territory = f->territory;
    f->offer.capacity = "2 cellules de 100 m²";
    f->offer.slots = 2;
    f->offer.valid_from = "2026-11-01";
    f->offer.valid_until = "2026-11-01"; /* a one-day offer: from == until */
    f->offer.conditions = &f->conditions;
    f->offer.terms = "loyer modéré";
    maillage__v1__offer_published__init(&f->offer_published);
    f->offer_published.offer = &f->offer;
    maillage__v1__offer_updated__init(&f->offer_updated);
    f->offer_updated.offer = &f->offer;
    maillage__v1__offer_withdrawn__init(&f->offer_withdrawn);
    f->offer_withdrawn.offer_id = "offer-7";
    f->offer_withdrawn.provider_id = "scic-batiment";
    f->offer_withdrawn.reason = MAILLAGE__V1__CLOSURE__CLOSURE_CANCELLED;

    maillage__v1__cooperation_proposed__init(&f->cooperation_proposed);
    f->cooperation_proposed.proposal_id = "coop-1";
    f->cooperation_proposed.from_structure_id = "scop-imprimerie";
    f->cooperation_proposed.to_structure_id = "asso-epicerie-caen";
    f->coop_territory[0] = "dep:50";
    f->cooperation_proposed.n_territory = 1;
    f->cooperation_proposed.territory = f->coop_territory;
    f->cooperation_proposed.kind = MAILLAGE__V1__COOPERATION_KIND__COOPERATION_KIND_JOINT_BID;
    f->cooperation_proposed.category = "achats";
    f->cooperation_proposed.title = "Réponse commune au marché de la restauration collective";
    f->cooperation_proposed.valid_until = "2027-01-31";
    maillage__v1__cooperation_answered__init(&f->cooperation_answered);
    f->cooperation_answered.proposal_id = "coop-1";
    f->cooperation_answered.structure_id = "asso-epicerie-caen";
    f->cooperation_answered.answer = MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_ACCEPTED;

    maillage__v1__score_component__init(&f->component);
    f->component.name = "distance";
    f->component.value = 0.8;
    f->component.weight = 0.3;
    f->component.detail = "à 6 km dans un rayon de 20 km";
    f->components[0] = &f->component;
    maillage__v1__match_found__init(&f->match_found);
    f->match_found.match_id = "m:need-42:offer-7";
    f->match_found.need_id = "need-42";
    f->match_found.offer_id = "offer-7";
    f->match_found.need_structure_id = "asso-epicerie-caen";
    f->match_found.offer_structure_id = "scic-batiment";
    f->match_found.category = "locaux";
    f->match_found.score = 1.0;
    f->match_found.rank = 1;
    f->match_found.n_components = 1;
    f->match_found.components = f->components;
    f->match_found.explanation = "Entrepôt à 6 km, dans le rayon demandé.";
    f->match_found.distance_km = 6.2;
    f->match_found.revision = 1;
    f->match_found.department = "14";
    maillage__v1__match_feedback__init(&f->match_feedback);
    f->match_feedback.match_id = "m:need-42:offer-7";
    f->match_feedback.staff_id = "staff.calvados-1";
    f->match_feedback.outcome = MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_CONTACT_MADE;

    maillage__v1__collective_need_detected__init(&f->collective);
    f->collective.collective_id = "coll-locaux-caen";
    f->collective.category = "locaux";
    f->collective.territory = "epci:200065597";
    f->collective.territory_name = "CU Caen la Mer";
    f->need_ids[0] = "need-42";
    f->need_ids[1] = "need-43";
    f->collective.n_need_ids = 2;
    f->collective.need_ids = f->need_ids;
    f->structure_ids[0] = "asso-epicerie-caen";
    f->structure_ids[1] = "asso-ressourcerie";
    f->collective.n_structure_ids = 2;
    f->collective.structure_ids = f->structure_ids;
    f->collective.revision = 1;
    f->collective.explanation = "Trois structures de Caen la Mer cherchent des locaux.";

    maillage__v1__envelope__init(&f->env);
    f->env.event_id = "01JD8Z7QK3V5W6X7Y8Z9A0B1C2";
    f->env.occurred_at_ms = 1764150000000;
    f->env.schema_version = 1;
    f->env.correlation_id = "corr-1";
    f->env.payload_case = payload;
    const mg_event_type_t *type = mg_event_type_by_case(payload);
    f->env.type = type ? (char *)type->type : "";
    switch (payload) {
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED:
        f->env.member_joined = &f->member_joined;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED:
        f->env.member_updated = &f->member_updated;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_LEFT:
        f->env.member_left = &f->member_left;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED:
        f->env.need_reported = &f->need_reported;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED:
        f->env.need_updated = &f->need_updated;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_CLOSED:
        f->env.need_closed = &f->need_closed;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED:
        f->env.offer_published = &f->offer_published;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED:
        f->env.offer_updated = &f->offer_updated;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_WITHDRAWN:
        f->env.offer_withdrawn = &f->offer_withdrawn;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED:
        f->env.cooperation_proposed = &f->cooperation_proposed;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_ANSWERED:
        f->env.cooperation_answered = &f->cooperation_answered;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FOUND:
        f->env.match_found = &f->match_found;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FEEDBACK:
        f->env.match_feedback = &f->match_feedback;
        break;
    case MAILLAGE__V1__ENVELOPE__PAYLOAD_COLLECTIVE_NEED_DETECTED:
        f->env.collective_need_detected = &f->collective;
        break;
    default:
        break;
    }
}

/* ---- Setup --------------------------------------------------------------- */

static int s_setup(void **state) {
    (void)state;
    char err[256];
    mg_config_t *cfg = mg_config_load(NULL, err, sizeof err);
    if (!cfg) return -1;
    s_taxonomy = mg_taxonomy_new(cfg, err, sizeof err);
    mg_config_destroy(&cfg);
    s_communes = mg_communes_load(MAILLAGE_SOURCE_DIR "/config/communes-normandie.csv", err, sizeof err);
    if (!s_taxonomy || !s_communes) {
        fprintf(stderr, "setup: %s\n", err);
        return -1;
    }
    return 0;
}

static int s_teardown(void **state) {
    (void)state;
    mg_taxonomy_destroy(&s_taxonomy);
    mg_communes_destroy(&s_communes);
    return 0;
}

/* ---- Valid events pass ------------------------------------------------- */

static void a_valid_event_of_every_type_passes(void **state) {
    (void)state;
    size_t n = 0;
    const mg_event_type_t *types = mg_event_types(&n);
    for (size_t i = 0; i < n; i++) {
        mg_invalid_t why;
        s_fixture(&s_fx, types[i].payload_case);
        if (mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why) != 0)
            fail_msg("%s refused: %s: %s", types[i].type, why.field, why.reason);
        /* And again after a trip through the wire format. */
        uint8_t *buf = NULL;
        size_t len = mg_envelope_pack(&s_fx.env, &buf);
        mg_envelope_t *back = mg_envelope_unpack(buf, len);
        assert_non_null(back);
        if (mg_envelope_validate(back, s_taxonomy, s_communes, &why) != 0)
            fail_msg("%s refused after unpack: %s: %s", types[i].type, why.field, why.reason);
        mg_envelope_free(back);
        free(buf);
    }
}

/* -1 km: a match with an offer placed by its territory only, at no distance. */
static void a_match_at_no_distance_passes(void **state) {
    (void)state;
    mg_invalid_t why;
    s_fixture(&s_fx, MAILLAGE__V1__ENVELOPE__PAYLOAD_MATCH_FOUND);
    s_fx.match_found.distance_km = -1;
    if (mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why) != 0)
        fail_msg("%s: %s", why.field, why.reason);
    s_fx.match_found.distance_km = -0.5;
    assert_int_not_equal(mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why), 0);
}

static void optional_fields_may_be_empty(void **state) {
    (void)state;
    mg_invalid_t why;
    s_fixture(&s_fx, MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED);
    fx_t *f = &s_fx;
    f->structure.siren = f->structure.siret = f->structure.legal_category = f->structure.naf_code = "";
    f->structure.website = f->structure.description = "";
    f->structure.n_networks = f->structure.n_labels = 0;
    f->structure.contact = NULL;
    f->structure.family = MAILLAGE__V1__FAMILY__FAMILY_UNSPECIFIED;
    f->member_joined.joined_on = "";
    f->env.correlation_id = "";
    f->env.occurred_at_ms = 0;
    f->env.schema_version = 0; /* read as 1 */
    assert_int_equal(mg_envelope_validate(&f->env, s_taxonomy, s_communes, &why), 0);

    /* An offer placed by its territory alone, a proposal to a territory. */
    s_fixture(&s_fx, MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED);
    f->offer.commune = "";
    f->offer.conditions = NULL;
    f->offer.valid_from = f->offer.valid_until = "";
    assert_int_equal(mg_envelope_validate(&f->env, s_taxonomy, s_communes, &why), 0);
    s_fixture(&s_fx, MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED);
    f->cooperation_proposed.to_structure_id = "";
    assert_int_equal(mg_envelope_validate(&f->env, s_taxonomy, s_communes, &why), 0);
}

/* A former commune's code is valid, and filed under the commune it merged
 * into: Fervaques (14265) and Heurtevent (14330) into Livarot-Pays-d'Auge
 * (14371), Acqueville (14002) into Cesny-Imbercourt (14150). */
static mg_envelope_t *s_former_codes_filed(mg_payload_case_t payload, int moved) {
    mg_invalid_t why;
    s_fixture(&s_fx, payload);
    s_fx.structure.commune = "14265";
    s_fx.need.commune = "14002";
    s_fx.offer.commune = "14330";
    s_fx.territory[2] = "14265";
    s_fx.coop_territory[0] = "14002";
    s_fx.collective.territory = "14330";
    if (mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why) != 0)
        fail_msg("%s: %s", why.field, why.reason);
    uint8_t *buf = NULL;
    size_t len = mg_envelope_pack(&s_fx.env, &buf);
    mg_envelope_t *env = mg_envelope_unpack(buf, len);
    free(buf);
    assert_non_null(env);
    assert_int_equal(mg_envelope_current_communes(env, s_communes), moved);
    assert_int_equal(mg_envelope_current_communes(env, s_communes), 0); /* once filed, stays */
    assert_int_equal(mg_envelope_validate(env, s_taxonomy, s_communes, &why), 0);
    return env;
}

static void former_commune_codes_are_filed_under_today_s_commune(void **state) {
    (void)state;
    mg_envelope_t *env = s_former_codes_filed(MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_JOINED, 1);
    assert_string_equal(env->member_joined->structure->commune, "14371");
    mg_envelope_free(env);
    env = s_former_codes_filed(MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_UPDATED, 1);
    assert_string_equal(env->member_updated->structure->commune, "14371");
    mg_envelope_free(env);
    env = s_former_codes_filed(MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_UPDATED, 1);
    assert_string_equal(env->need_updated->need->commune, "14150");
    mg_envelope_free(env);
    env = s_former_codes_filed(MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED, 2);
    const Maillage__V1__Offer *offer = env->offer_published->offer;
    assert_string_equal(offer->commune, "14371");
    assert_int_equal(offer->n_territory, 3);
    assert_string_equal(offer->territory[0], "dep:14");
    assert_string_equal(offer->territory[1], "epci:200065597");
    assert_string_equal(offer->territory[2], "14371");
    mg_envelope_free(env);
    env = s_former_codes_filed(MAILLAGE__V1__ENVELOPE__PAYLOAD_COOPERATION_PROPOSED, 1);
    assert_string_equal(env->cooperation_proposed->territory[0], "14150");
    mg_envelope_free(env);
    /* Two communes déléguées of one commune, and the commune itself: named once. */
    s_fixture(&s_fx, MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_PUBLISHED);
    s_fx.territory[0] = "14265";
    s_fx.territory[1] = "14371";
    s_fx.territory[2] = "14330";
    uint8_t *twice = NULL;
    size_t twice_len = mg_envelope_pack(&s_fx.env, &twice);
    env = mg_envelope_unpack(twice, twice_len);
    free(twice);
    assert_int_equal(mg_envelope_current_communes(env, s_communes), 2);
    assert_int_equal(env->offer_published->offer->n_territory, 1);
    assert_string_equal(env->offer_published->offer->territory[0], "14371");
    mg_envelope_free(env);
    env = s_former_codes_filed(MAILLAGE__V1__ENVELOPE__PAYLOAD_COLLECTIVE_NEED_DETECTED, 1);
    assert_string_equal(env->collective_need_detected->territory, "14371");
    mg_envelope_free(env);
    /* Current codes, and events without a place, are left as they are. */
    s_fixture(&s_fx, MAILLAGE__V1__ENVELOPE__PAYLOAD_OFFER_UPDATED);
    uint8_t *buf = NULL;
    size_t len = mg_envelope_pack(&s_fx.env, &buf);
    env = mg_envelope_unpack(buf, len);
    free(buf);
    assert_int_equal(mg_envelope_current_communes(env, s_communes), 0);
    assert_string_equal(env->offer_updated->offer->commune, "14437");
    assert_int_equal(mg_envelope_current_communes(env, NULL), 0);
    mg_envelope_free(env);
    s_fixture(&s_fx, MAILLAGE__V1__ENVELOPE__PAYLOAD_MEMBER_LEFT);
    assert_int_equal(mg_envelope_current_communes(&s_fx.env, s_communes), 0);
}

/* Without the tables, only the shapes of commune and category codes are checked. */
static void without_tables_only_shapes_are_checked(void **state) {
    (void)state;
    mg_invalid_t why;
    s_fixture(&s_fx, MAILLAGE__V1__ENVELOPE__PAYLOAD_NEED_REPORTED);
    s_fx.need.commune = "99999";
    s_fx.need.category = "jardinage";
    assert_int_equal(mg_envelope_validate(&s_fx.env, NULL, NULL, &why), 0);
    assert_int_equal(mg_envelope_validate(&s_fx.env, s_taxonomy, NULL, &why), -1);
    assert_string_equal(why.field, "need_reported.need.category");
    assert_int_equal(mg_envelope_validate(&s_fx.env, NULL, s_communes, &why), -1);
    assert_string_equal(why.field, "need_reported.need.commune");
}

/* ---- Each broken rule is refused with its field ------------------------ */

typedef struct {
    const char *name;
    mg_payload_case_t payload;
    void (*mutate)(fx_t *f);
    const char *field;
} bad_case_t;

#define P(x) MAILLAGE__V1__ENVELOPE__PAYLOAD_##x
#define CASES(X)                                                                                             \
    /* envelope */                                                                                           \
    X(event_id_missing, NEED_REPORTED, "event_id", f->env.event_id = "")                                     \
    X(event_id_with_space, NEED_REPORTED, "event_id", f->env.event_id = "evt 1")                             \
    X(event_id_with_slash, NEED_REPORTED, "event_id", f->env.event_id = "evt/1")                             \
    X(event_id_too_long, NEED_REPORTED, "event_id", f->env.event_id = f->over_id)                            \
    X(type_missing, NEED_REPORTED, "type", f->env.type = "")                                                 \
    X(type_unknown, NEED_REPORTED, "type", f->env.type = "need.eaten")                                       \
    X(type_unknown_with_control, NEED_REPORTED, "type", f->env.type = "need\x1b[2J")                         \
    X(type_disagrees_with_payload, NEED_REPORTED, "type", f->env.type = "offer.published")                   \
    X(payload_missing, NEED_REPORTED, "need_reported", f->env.payload_case = P(_NOT_SET))                    \
    X(payload_message_missing, NEED_REPORTED, "need_reported", f->env.need_reported = NULL)                  \
    X(schema_version_from_the_future, NEED_REPORTED, "schema_version", f->env.schema_version = 2)            \
    X(occurred_at_negative, NEED_REPORTED, "occurred_at_ms", f->env.occurred_at_ms = -1)                     \
    X(correlation_id_invalid, NEED_REPORTED, "correlation_id", f->env.correlation_id = "a b")                \
    /* structure */                                                                                          \
    X(structure_missing, MEMBER_JOINED, "member_joined.structure", f->member_joined.structure = NULL)        \
    X(structure_id_missing, MEMBER_JOINED, "member_joined.structure.structure_id",                           \
      f->structure.structure_id = "")                                                                        \
    X(structure_id_invalid, MEMBER_UPDATED, "member_updated.structure.structure_id",                         \
      f->structure.structure_id = "é")                                                                       \
    X(name_missing, MEMBER_JOINED, "member_joined.structure.name", f->structure.name = "")                   \
    X(name_too_long, MEMBER_JOINED, "member_joined.structure.name", f->structure.name = f->over_200)         \
    X(name_with_newline, MEMBER_JOINED, "member_joined.structure.name", f->structure.name = "a\nb")          \
    X(name_with_tab, MEMBER_JOINED, "member_joined.structure.name", f->structure.name = "a\tb")              \
    X(name_with_del, MEMBER_JOINED, "member_joined.structure.name", f->structure.name = "a\x7f")             \
    X(name_bad_utf8, MEMBER_JOINED, "member_joined.structure.name", f->structure.name = "\xc3\x28")          \
    X(name_overlong_utf8, MEMBER_JOINED, "member_joined.structure.name", f->structure.name = "\xc0\xaf")     \
    X(name_surrogate, MEMBER_JOINED, "member_joined.structure.name", f->structure.name = "\xed\xa0\x80")     \
    X(name_beyond_unicode, MEMBER_JOINED, "member_joined.structure.name",                                    \
      f->structure.name = "\xf4\x90\x80\x80")                                                                \
    X(name_truncated_utf8, MEMBER_JOINED, "member_joined.structure.name", f->structure.name = "caf\xc3")     \
    X(siren_short, MEMBER_JOINED, "member_joined.structure.siren", f->structure.siren = "12345678")          \
    X(siren_letters, MEMBER_JOINED, "member_joined.structure.siren", f->structure.siren = "12345678A")       \
    X(siret_short, MEMBER_JOINED, "member_joined.structure.siret", f->structure.siret = "1234567890001")     \
    X(siret_of_another_siren, MEMBER_JOINED, "member_joined.structure.siret",                                \
      f->structure.siret = "98765432100017")                                                                 \
    X(family_unknown, MEMBER_JOINED, "member_joined.structure.family",                                       \
      f->structure.family = (Maillage__V1__Family)42)                                                        \
    X(legal_category_short, MEMBER_JOINED, "member_joined.structure.legal_category",                         \
      f->structure.legal_category = "92")                                                                    \
    X(legal_category_letters, MEMBER_JOINED, "member_joined.structure.legal_category",                       \
      f->structure.legal_category = "92a0")                                                                  \
    X(naf_without_dot, MEMBER_JOINED, "member_joined.structure.naf_code", f->structure.naf_code = "8810A")   \
    X(naf_lower_case, MEMBER_JOINED, "member_joined.structure.naf_code", f->structure.naf_code = "88.10a")   \
    X(commune_missing, MEMBER_JOINED, "member_joined.structure.commune", f->structure.commune = "")          \
    X(commune_short, MEMBER_JOINED, "member_joined.structure.commune", f->structure.commune = "1411")        \
    X(commune_unknown, MEMBER_JOINED, "member_joined.structure.commune", f->structure.commune = "75056")     \
    X(network_entry_invalid, MEMBER_JOINED, "member_joined.structure.networks[1]",                           \
      f->networks[1] = "bad id")                                                                             \
    X(label_too_long, MEMBER_JOINED, "member_joined.structure.labels[0]", f->labels[0] = f->over_48)         \
    X(website_not_http, MEMBER_JOINED, "member_joined.structure.website",                                    \
      f->structure.website = "javascript:alert(1)")                                                          \
    X(description_too_long, MEMBER_JOINED, "member_joined.structure.description",                            \
      f->structure.description = f->over_4000)                                                               \
    X(description_with_escape, MEMBER_JOINED, "member_joined.structure.description",                         \
      f->structure.description = "a\x1b[31mb")                                                               \
    X(contact_name_with_control, MEMBER_JOINED, "member_joined.structure.contact.name",                      \
      f->contact.name = "a\rb")                                                                              \
    X(contact_email_without_at, MEMBER_JOINED, "member_joined.structure.contact.email",                      \
      f->contact.email = "claire.example.org")                                                               \
    X(contact_email_without_domain_dot, MEMBER_JOINED, "member_joined.structure.contact.email",              \
      f->contact.email = "claire@localhost")                                                                 \
    X(contact_email_with_space, MEMBER_JOINED, "member_joined.structure.contact.email",                      \
      f->contact.email = "cla ire@example.org")                                                              \
    X(contact_phone_letters, MEMBER_JOINED, "member_joined.structure.contact.phone",                         \
      f->contact.phone = "call me")                                                                          \
    X(member_network_missing, MEMBER_JOINED, "member_joined.network", f->member_joined.network = "")         \
    X(joined_on_30_february, MEMBER_JOINED, "member_joined.joined_on",                                       \
      f->member_joined.joined_on = "2026-02-30")                                                             \
    X(joined_on_29_february_2023, MEMBER_JOINED, "member_joined.joined_on",                                  \
      f->member_joined.joined_on = "2023-02-29")                                                             \
    X(joined_on_month_13, MEMBER_JOINED, "member_joined.joined_on",                                          \
      f->member_joined.joined_on = "2026-13-01")                                                             \
    X(joined_on_french_order, MEMBER_JOINED, "member_joined.joined_on",                                      \
      f->member_joined.joined_on = "29/02/2024")                                                             \
    X(member_left_structure_missing, MEMBER_LEFT, "member_left.structure_id",                                \
      f->member_left.structure_id = "")                                                                      \
    X(member_left_network_missing, MEMBER_LEFT, "member_left.network", f->member_left.network = "")          \
    X(member_left_on_bad, MEMBER_LEFT, "member_left.left_on", f->member_left.left_on = "2026-11-31")         \
    X(member_left_reason_control, MEMBER_LEFT, "member_left.reason", f->member_left.reason = "a\x01")        \
    /* need */                                                                                               \
    X(need_missing, NEED_UPDATED, "need_updated.need", f->need_updated.need = NULL)                          \
    X(need_id_missing, NEED_REPORTED, "need_reported.need.need_id", f->need.need_id = "")                    \
    X(need_structure_invalid, NEED_REPORTED, "need_reported.need.structure_id",                              \
      f->need.structure_id = "a*b")                                                                          \
    X(need_category_missing, NEED_REPORTED, "need_reported.need.category", f->need.category = "")            \
    X(need_category_unknown, NEED_REPORTED, "need_reported.need.category", f->need.category = "jardinage")   \
    X(need_category_shape, NEED_REPORTED, "need_reported.need.category", f->need.category = "Locaux")        \
    X(need_too_many_tags, NEED_REPORTED, "need_reported.need.tags", f->need.n_tags = 33)                     \
    X(need_tag_too_long, NEED_REPORTED, "need_reported.need.tags[1]", f->tags[1] = f->over_48)               \
    X(need_tag_empty, NEED_REPORTED, "need_reported.need.tags[0]", f->tags[0] = "")                          \
    X(need_title_missing, NEED_REPORTED, "need_reported.need.title", f->need.title = "")                     \
    X(need_title_too_long, NEED_REPORTED, "need_reported.need.title", f->need.title = f->over_200)           \
    X(need_title_newline, NEED_UPDATED, "need_updated.need.title", f->need.title = "a\nb")                   \
    X(need_title_blank, NEED_REPORTED, "need_reported.need.title", f->need.title = "   ")                    \
    X(need_title_no_break_spaces, NEED_REPORTED, "need_reported.need.title",                                 \
      f->need.title = " \xc2\xa0\xe2\x80\xaf\xe3\x80\x80 ")                                                  \
    X(need_id_dot_dot, NEED_REPORTED, "need_reported.need.need_id", f->need.need_id = "..")                  \
    X(need_id_dot, NEED_CLOSED, "need_closed.need_id", f->need_closed.need_id = ".")                         \
    X(need_description_too_long, NEED_REPORTED, "need_reported.need.description",                            \
      f->need.description = f->over_4000)                                                                    \
    X(need_commune_missing, NEED_REPORTED, "need_reported.need.commune", f->need.commune = "")               \
    X(need_commune_unknown, NEED_REPORTED, "need_reported.need.commune", f->need.commune = "13055")          \
    X(need_radius_absurd, NEED_REPORTED, "need_reported.need.radius_km", f->need.radius_km = 2001)           \
    X(need_valid_from_bad, NEED_REPORTED, "need_reported.need.valid_from", f->need.valid_from = "2026-12-1") \
    X(need_valid_until_bad, NEED_REPORTED, "need_reported.need.valid_until",                                 \
      f->need.valid_until = "2027-06-31")                                                                    \
    X(need_valid_until_before_1970, NEED_REPORTED, "need_reported.need.valid_until",                         \
      f->need.valid_until = "1969-12-31")                                                                    \
    X(need_valid_until_year_1, NEED_REPORTED, "need_reported.need.valid_until",                              \
      f->need.valid_until = "0001-01-01")                                                                    \
    X(need_valid_until_before_from, NEED_REPORTED, "need_reported.need.valid_until",                         \
      f->need.valid_until = "2026-11-30")                                                                    \
    X(need_quantity_too_long, NEED_REPORTED, "need_reported.need.quantity", f->need.quantity = f->over_200)  \
    X(need_urgency_out_of_range, NEED_REPORTED, "need_reported.need.urgency", f->need.urgency = 4)           \
    X(need_closed_id_missing, NEED_CLOSED, "need_closed.need_id", f->need_closed.need_id = "")               \
    X(need_closed_structure_missing, NEED_CLOSED, "need_closed.structure_id",                                \
      f->need_closed.structure_id = "")                                                                      \
    X(need_closed_reason_unknown, NEED_CLOSED, "need_closed.reason",                                         \
      f->need_closed.reason = (Maillage__V1__Closure)9)                                                      \
    X(need_closed_comment_control, NEED_CLOSED, "need_closed.comment", f->need_closed.comment = "\x07")      \
    /* offer */                                                                                              \
    X(offer_missing, OFFER_PUBLISHED, "offer_published.offer", f->offer_published.offer = NULL)              \
    X(offer_id_missing, OFFER_PUBLISHED, "offer_published.offer.offer_id", f->offer.offer_id = "")           \
    X(offer_provider_missing, OFFER_UPDATED, "offer_updated.offer.provider_id", f->offer.provider_id = "")   \
    X(offer_category_unknown, OFFER_PUBLISHED, "offer_published.offer.category", f->offer.category = "x")    \
    X(offer_tag_too_long, OFFER_PUBLISHED, "offer_published.offer.tags[0]", f->tags[0] = f->over_48)         \
    X(offer_title_missing, OFFER_PUBLISHED, "offer_published.offer.title", f->offer.title = "")              \
    X(offer_description_control, OFFER_PUBLISHED, "offer_published.offer.description",                       \
      f->offer.description = "a\x0b")                                                                        \
    X(offer_description_c1_control, OFFER_PUBLISHED, "offer_published.offer.description",                    \
      f->offer.description = "Cuisine\xc2\x85"                                                               \
                             "partagée")                                                                     \
    X(offer_title_bidi_override, OFFER_PUBLISHED, "offer_published.offer.title",                             \
      f->offer.title = "Local \xe2\x80\xaegnp.exe")                                                          \
    X(offer_title_bidi_isolate, OFFER_PUBLISHED, "offer_published.offer.title",                              \
      f->offer.title = "Local \xe2\x81\xa6x\xe2\x81\xa9")                                                    \
    X(offer_nowhere, OFFER_PUBLISHED, "offer_published.offer.commune",                                       \
      (f->offer.commune = "", f->offer.n_territory = 0))                                                     \
    X(offer_commune_unknown, OFFER_PUBLISHED, "offer_published.offer.commune", f->offer.commune = "2A004")   \
    X(offer_radius_absurd, OFFER_PUBLISHED, "offer_published.offer.radius_km", f->offer.radius_km = 100000)  \
    X(territory_department_bad, OFFER_PUBLISHED, "offer_published.offer.territory[0]",                       \
      f->territory[0] = "dep:1")                                                                             \
    X(territory_epci_bad, OFFER_PUBLISHED, "offer_published.offer.territory[1]",                             \
      f->territory[1] = "epci:20006559")                                                                     \
    X(territory_commune_unknown, OFFER_PUBLISHED, "offer_published.offer.territory[2]",                      \
      f->territory[2] = "99999")                                                                             \
    X(territory_unknown_kind, OFFER_PUBLISHED, "offer_published.offer.territory[2]",                         \
      f->territory[2] = "region:28")                                                                         \
    X(offer_capacity_too_long, OFFER_PUBLISHED, "offer_published.offer.capacity",                            \
      f->offer.capacity = f->over_200)                                                                       \
    X(offer_valid_until_before_from, OFFER_PUBLISHED, "offer_published.offer.valid_until",                   \
      f->offer.valid_until = "2026-10-31")                                                                   \
    X(offer_member_of_invalid, OFFER_PUBLISHED, "offer_published.offer.conditions.member_of[0]",             \
      f->member_of[0] = "")                                                                                  \
    X(offer_family_unspecified, OFFER_PUBLISHED, "offer_published.offer.conditions.families[0]",             \
      f->families[0] = MAILLAGE__V1__FAMILY__FAMILY_UNSPECIFIED)                                             \
    X(offer_department_bad, OFFER_PUBLISHED, "offer_published.offer.conditions.departments[0]",              \
      f->departments[0] = "Calvados")                                                                        \
    X(offer_terms_too_long, OFFER_PUBLISHED, "offer_published.offer.terms", f->offer.terms = f->over_200)    \
    X(offer_withdrawn_id_missing, OFFER_WITHDRAWN, "offer_withdrawn.offer_id",                               \
      f->offer_withdrawn.offer_id = "")                                                                      \
    X(offer_withdrawn_provider_missing, OFFER_WITHDRAWN, "offer_withdrawn.provider_id",                      \
      f->offer_withdrawn.provider_id = "")                                                                   \
    X(offer_withdrawn_reason_unknown, OFFER_WITHDRAWN, "offer_withdrawn.reason",                             \
      f->offer_withdrawn.reason = (Maillage__V1__Closure)-1)                                                 \
    /* cooperation */                                                                                        \
    X(proposal_id_missing, COOPERATION_PROPOSED, "cooperation_proposed.proposal_id",                         \
      f->cooperation_proposed.proposal_id = "")                                                              \
    X(proposal_from_missing, COOPERATION_PROPOSED, "cooperation_proposed.from_structure_id",                 \
      f->cooperation_proposed.from_structure_id = "")                                                        \
    X(proposal_to_invalid, COOPERATION_PROPOSED, "cooperation_proposed.to_structure_id",                     \
      f->cooperation_proposed.to_structure_id = "x y")                                                       \
    X(proposal_to_itself, COOPERATION_PROPOSED, "cooperation_proposed.to_structure_id",                      \
      f->cooperation_proposed.to_structure_id = "scop-imprimerie")                                           \
    X(proposal_to_nobody, COOPERATION_PROPOSED, "cooperation_proposed.to_structure_id",                      \
      (f->cooperation_proposed.to_structure_id = "", f->cooperation_proposed.n_territory = 0))               \
    X(proposal_territory_bad, COOPERATION_PROPOSED, "cooperation_proposed.territory[0]",                     \
      f->coop_territory[0] = "dep:")                                                                         \
    X(proposal_kind_unknown, COOPERATION_PROPOSED, "cooperation_proposed.kind",                              \
      f->cooperation_proposed.kind = (Maillage__V1__CooperationKind)7)                                       \
    X(proposal_category_unknown, COOPERATION_PROPOSED, "cooperation_proposed.category",                      \
      f->cooperation_proposed.category = "jardinage")                                                        \
    X(proposal_title_missing, COOPERATION_PROPOSED, "cooperation_proposed.title",                            \
      f->cooperation_proposed.title = "")                                                                    \
    X(proposal_description_too_long, COOPERATION_PROPOSED, "cooperation_proposed.description",               \
      f->cooperation_proposed.description = f->over_4000)                                                    \
    X(proposal_valid_until_bad, COOPERATION_PROPOSED, "cooperation_proposed.valid_until",                    \
      f->cooperation_proposed.valid_until = "2027-02-29")                                                    \
    X(answer_proposal_missing, COOPERATION_ANSWERED, "cooperation_answered.proposal_id",                     \
      f->cooperation_answered.proposal_id = "")                                                              \
    X(answer_structure_missing, COOPERATION_ANSWERED, "cooperation_answered.structure_id",                   \
      f->cooperation_answered.structure_id = "")                                                             \
    X(answer_unspecified, COOPERATION_ANSWERED, "cooperation_answered.answer",                               \
      f->cooperation_answered.answer = MAILLAGE__V1__COOPERATION_ANSWER__COOPERATION_ANSWER_UNSPECIFIED)     \
    X(answer_unknown, COOPERATION_ANSWERED, "cooperation_answered.answer",                                   \
      f->cooperation_answered.answer = (Maillage__V1__CooperationAnswer)9)                                   \
    X(answer_comment_too_long, COOPERATION_ANSWERED, "cooperation_answered.comment",                         \
      f->cooperation_answered.comment = f->over_4000)                                                        \
    /* match */                                                                                              \
    X(match_id_missing, MATCH_FOUND, "match_found.match_id", f->match_found.match_id = "")                   \
    X(match_need_missing, MATCH_FOUND, "match_found.need_id", f->match_found.need_id = "")                   \
    X(match_offer_missing, MATCH_FOUND, "match_found.offer_id", f->match_found.offer_id = "")                \
    X(match_need_structure_missing, MATCH_FOUND, "match_found.need_structure_id",                            \
      f->match_found.need_structure_id = "")                                                                 \
    X(match_offer_structure_missing, MATCH_FOUND, "match_found.offer_structure_id",                          \
      f->match_found.offer_structure_id = "")                                                                \
    X(match_category_unknown, MATCH_FOUND, "match_found.category", f->match_found.category = "zz")           \
    X(match_score_above_one, MATCH_FOUND, "match_found.score", f->match_found.score = 1.0001)                \
    X(match_score_negative, MATCH_FOUND, "match_found.score", f->match_found.score = -0.01)                  \
    X(match_score_nan, MATCH_FOUND, "match_found.score", f->match_found.score = NAN)                         \
    X(match_component_name_missing, MATCH_FOUND, "match_found.components[0].name", f->component.name = "")   \
    X(match_component_value_above_one, MATCH_FOUND, "match_found.components[0].value",                       \
      f->component.value = 2.0)                                                                              \
    X(match_component_weight_infinite, MATCH_FOUND, "match_found.components[0].weight",                      \
      f->component.weight = INFINITY)                                                                        \
    X(match_component_detail_newline, MATCH_FOUND, "match_found.components[0].detail",                       \
      f->component.detail = "a\nb")                                                                          \
    X(match_explanation_too_long, MATCH_FOUND, "match_found.explanation",                                    \
      f->match_found.explanation = f->over_4000)                                                             \
    X(match_distance_negative, MATCH_FOUND, "match_found.distance_km", f->match_found.distance_km = -2)      \
    X(match_department_bad, MATCH_FOUND, "match_found.department", f->match_found.department = "141")        \
    X(feedback_match_missing, MATCH_FEEDBACK, "match_feedback.match_id", f->match_feedback.match_id = "")    \
    X(feedback_staff_invalid, MATCH_FEEDBACK, "match_feedback.staff_id",                                     \
      f->match_feedback.staff_id = "jean@cress")                                                             \
    X(feedback_outcome_unspecified, MATCH_FEEDBACK, "match_feedback.outcome",                                \
      f->match_feedback.outcome = MAILLAGE__V1__MATCH_OUTCOME__MATCH_OUTCOME_UNSPECIFIED)                    \
    X(feedback_comment_bad_utf8, MATCH_FEEDBACK, "match_feedback.comment",                                   \
      f->match_feedback.comment = "tr\xe8s bien")                                                            \
    /* collective need */                                                                                    \
    X(collective_id_missing, COLLECTIVE_NEED_DETECTED, "collective_need_detected.collective_id",             \
      f->collective.collective_id = "")                                                                      \
    X(collective_category_unknown, COLLECTIVE_NEED_DETECTED, "collective_need_detected.category",            \
      f->collective.category = "zz")                                                                         \
    X(collective_territory_missing, COLLECTIVE_NEED_DETECTED, "collective_need_detected.territory",          \
      f->collective.territory = "")                                                                          \
    X(collective_territory_bad, COLLECTIVE_NEED_DETECTED, "collective_need_detected.territory",              \
      f->collective.territory = "epci:abc")                                                                  \
    X(collective_territory_name_control, COLLECTIVE_NEED_DETECTED,                                           \
      "collective_need_detected.territory_name", f->collective.territory_name = "\x1b")                      \
    X(collective_no_need, COLLECTIVE_NEED_DETECTED, "collective_need_detected.need_ids",                     \
      f->collective.n_need_ids = 0)                                                                          \
    X(collective_need_id_bad, COLLECTIVE_NEED_DETECTED, "collective_need_detected.need_ids[1]",              \
      f->need_ids[1] = "need 43")                                                                            \
    X(collective_structure_id_bad, COLLECTIVE_NEED_DETECTED, "collective_need_detected.structure_ids[0]",    \
      f->structure_ids[0] = "")

#define X_FN(name, payload, field, stmt)                                                                     \
    static void m_##name(fx_t *f) {                                                                          \
        stmt;                                                                                                \
    }
CASES(X_FN)
#undef X_FN

#define X_ROW(name, payload, field, stmt) {#name, P(payload), m_##name, field},
static const bad_case_t s_bad_cases[] = {CASES(X_ROW)};
#undef X_ROW

static void each_broken_rule_is_refused_naming_its_field(void **state) {
    (void)state;
    size_t failures = 0;
    for (size_t i = 0; i < sizeof s_bad_cases / sizeof s_bad_cases[0]; i++) {
        const bad_case_t *c = &s_bad_cases[i];
        mg_invalid_t why;
        s_fixture(&s_fx, c->payload);
        c->mutate(&s_fx);
        int rc = mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why);
        if (rc == 0) {
            print_error("%s: accepted, expected a refusal on %s\n", c->name, c->field);
            failures++;
        } else if (strcmp(why.field, c->field) != 0) {
            print_error("%s: refused on \"%s\" (%s), expected \"%s\"\n", c->name, why.field, why.reason,
                        c->field);
            failures++;
        } else if (why.reason[0] == '\0') {
            print_error("%s: no reason given\n", c->name);
            failures++;
        }
    }
    if (failures) fail_msg("%zu of %zu cases wrong", failures, sizeof s_bad_cases / sizeof s_bad_cases[0]);
}

static void reasons_say_what_is_wrong(void **state) {
    (void)state;
    mg_invalid_t why;
    s_fixture(&s_fx, P(NEED_REPORTED));
    s_fx.need.commune = "75056";
    assert_int_equal(mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why), -1);
    assert_string_equal(why.reason, "unknown commune code \"75056\"");
    s_fixture(&s_fx, P(NEED_REPORTED));
    s_fx.need.title = s_fx.over_200;
    assert_int_equal(mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why), -1);
    assert_string_equal(why.reason, "too long (201 bytes, at most 200)");
    s_fixture(&s_fx, P(NEED_REPORTED));
    s_fx.need.title = "   ";
    assert_int_equal(mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why), -1);
    assert_string_equal(why.reason, "required (only spaces)");
    s_fixture(&s_fx, P(NEED_REPORTED));
    s_fx.need.title = " Local\xc2\xa0";
    assert_int_equal(mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why),
                     0); /* a word among spaces */
    s_fixture(&s_fx, P(NEED_REPORTED));
    s_fx.env.type = "need.eaten";
    assert_int_equal(mg_envelope_validate(&s_fx.env, s_taxonomy, s_communes, &why), -1);
    assert_string_equal(why.reason, "unknown event type \"need.eaten\"");
    assert_int_equal(mg_envelope_validate(NULL, NULL, NULL, &why), -1);
    /* `why` may be NULL when the caller only wants the verdict. */
    assert_int_equal(mg_envelope_validate(&s_fx.env, NULL, NULL, NULL), -1);
}

static void ids_and_utf8_helpers(void **state) {
    (void)state;
    assert_true(mg_id_is_valid("a"));
    assert_true(mg_id_is_valid("01JD8Z7QK3V5W6X7Y8Z9A0B1C2"));
    assert_true(mg_id_is_valid("urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"));
    assert_false(mg_id_is_valid(""));
    assert_false(mg_id_is_valid(NULL));
    assert_false(mg_id_is_valid("a b"));
    assert_false(mg_id_is_valid("a{b}")); /* Redis cluster hash tags must not be injectable */
    /* structure "x:items" would be the key of structure x's items */
    assert_false(mg_id_is_valid("x:items"));
    assert_false(mg_id_is_valid(":items"));
    assert_true(mg_id_is_valid("items"));
    assert_true(mg_id_is_valid("x:items2"));
    assert_true(mg_id_is_valid("x-items"));
    /* "." and ".." are resolved away in a URL's path: /v1/offers/.. is /v1/ */
    assert_false(mg_id_is_valid("."));
    assert_false(mg_id_is_valid(".."));
    assert_true(mg_id_is_valid("..."));
    assert_true(mg_id_is_valid(".a"));
    char id[MG_ID_MAX + 2];
    memset(id, 'x', sizeof id);
    id[MG_ID_MAX] = '\0';
    assert_true(mg_id_is_valid(id));
    id[MG_ID_MAX] = 'x';
    id[MG_ID_MAX + 1] = '\0';
    assert_false(mg_id_is_valid(id));

    assert_true(mg_utf8_is_valid("", 0));
    assert_true(mg_utf8_is_valid("Caen é € 𝄞", strlen("Caen é € 𝄞")));
    assert_true(mg_utf8_is_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_true(mg_utf8_is_valid("\xef\xbf\xbf", 3));      /* U+FFFF */
    assert_false(mg_utf8_is_valid("\x80", 1));             /* lone continuation */
    assert_false(mg_utf8_is_valid("\xc1\xbf", 2));         /* overlong 2 bytes */
    assert_false(mg_utf8_is_valid("\xe0\x9f\xbf", 3));     /* overlong 3 bytes */
    assert_false(mg_utf8_is_valid("\xf0\x8f\xbf\xbf", 4)); /* overlong 4 bytes */
    assert_false(mg_utf8_is_valid("\xed\xbf\xbf", 3));     /* surrogate */
    assert_false(mg_utf8_is_valid("\xf5\x80\x80\x80", 4)); /* above U+10FFFF */
    assert_false(mg_utf8_is_valid("\xe2\x82", 2));         /* truncated */
    assert_false(mg_utf8_is_valid("\xff", 1));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_valid_event_of_every_type_passes),
        cmocka_unit_test(a_match_at_no_distance_passes),
        cmocka_unit_test(optional_fields_may_be_empty),
        cmocka_unit_test(without_tables_only_shapes_are_checked),
        cmocka_unit_test(former_commune_codes_are_filed_under_today_s_commune),
        cmocka_unit_test(each_broken_rule_is_refused_naming_its_field),
        cmocka_unit_test(reasons_say_what_is_wrong),
        cmocka_unit_test(ids_and_utf8_helpers),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
