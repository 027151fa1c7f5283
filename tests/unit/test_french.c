/* test_french.c -- French as staff read it: numbers with a decimal comma,
 * percentages, "de" elided and contracted, departments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "maillage/french.h"

static void a_label_inside_a_sentence_loses_its_capital_not_an_acronym(void **state) {
    (void)state;
    char buf[64];
    assert_string_equal(mg_fr_lower_initial("Locaux", buf, sizeof buf), "locaux");
    assert_string_equal(mg_fr_lower_initial("Équipement", buf, sizeof buf), "équipement");
    assert_string_equal(mg_fr_lower_initial("ESS et territoires", buf, sizeof buf), "ESS et territoires");
    assert_string_equal(mg_fr_lower_initial("ÉSAT", buf, sizeof buf), "ÉSAT");
    assert_string_equal(mg_fr_lower_initial("matériel", buf, sizeof buf), "matériel");
    assert_string_equal(mg_fr_lower_initial(NULL, buf, sizeof buf), "");
    assert_string_equal(mg_fr_lower_initial("Locaux", buf, 4), "loc");
    assert_string_equal(mg_fr_lower_initial("Été", buf, 4), "ét"); /* not half of the é */
}

static void numbers_take_a_decimal_comma(void **state) {
    (void)state;
    char buf[32];
    assert_string_equal(mg_fr_number(3.64, 1, buf, sizeof(buf)), "3,6");
    assert_string_equal(mg_fr_number(0.0, 1, buf, sizeof(buf)), "0,0");
    assert_string_equal(mg_fr_number(161.8, 1, buf, sizeof(buf)), "161,8");
    assert_string_equal(mg_fr_number(42.0, 0, buf, sizeof(buf)), "42");
}

static void a_number_too_long_is_cut_not_overrun(void **state) {
    (void)state;
    char buf[4] = "xxx";
    assert_string_equal(mg_fr_number(12345.6, 1, buf, sizeof(buf)), "123");
}

static void scores_read_as_rounded_percentages(void **state) {
    (void)state;
    char buf[16];
    assert_string_equal(mg_fr_percent(0.724, buf, sizeof(buf)), "72 %");
    assert_string_equal(mg_fr_percent(0.396, buf, sizeof(buf)), "40 %");
    assert_string_equal(mg_fr_percent(1.0, buf, sizeof(buf)), "100 %");
    assert_string_equal(mg_fr_percent(0.0, buf, sizeof(buf)), "0 %");
}

static void a_score_below_a_threshold_never_reads_as_it(void **state) {
    (void)state;
    char buf[16];
    double half[] = {0.5}, several[] = {0.6, 0.5, 0.4}, close[] = {0.50001};
    assert_int_equal(mg_fr_percent_decimals(0.4951, half, 1), 1);
    assert_string_equal(mg_fr_percent_with(0.4951, 1, buf, sizeof(buf)), "49,5 %");
    assert_string_equal(mg_fr_percent_with(0.5, 1, buf, sizeof(buf)), "50 %");
    assert_string_equal(mg_fr_percent_with(0.3996, 2, buf, sizeof(buf)), "39,96 %");
    assert_string_equal(mg_fr_percent_with(0.405, 2, buf, sizeof(buf)), "40,5 %");
    assert_int_equal(mg_fr_percent_decimals(0.4996, half, 1), 2); /* 49,96 % */
    assert_int_equal(mg_fr_percent_decimals(0.3, several, 3), 0); /* apart already */
    assert_int_equal(mg_fr_percent_decimals(0.4951, several, 3), 1);
    assert_int_equal(mg_fr_percent_decimals(0.5, half, 1), 0);  /* equal: it reaches it */
    assert_int_equal(mg_fr_percent_decimals(0.5, close, 1), 2); /* as far as two decimals go */
    assert_int_equal(mg_fr_percent_decimals(0.42, NULL, 0), 0);
    /* Closer than two decimals: rounded down, never up to the threshold. */
    assert_string_equal(mg_fr_percent_under(0.39996, 2, 0.4, buf, sizeof(buf)), "39,99 %");
    assert_string_equal(mg_fr_percent_under(0.3996, 2, 0.4, buf, sizeof(buf)), "39,96 %");
    assert_string_equal(mg_fr_percent_under(0.4951, 1, 0.5, buf, sizeof(buf)), "49,5 %");
    assert_string_equal(mg_fr_percent_under(0.35, 0, 0.4, buf, sizeof(buf)), "35 %");
    /* Else rounded, as the message's score says it: 37,99 % is "38 %"
     * under 40 %, not "37 %" beside "Score : 38 %". */
    assert_string_equal(mg_fr_percent_under(0.3799, 0, 0.4, buf, sizeof(buf)), "38 %");
    assert_string_equal(mg_fr_percent_under(0.3996, 0, 0.4, buf, sizeof(buf)), "39 %");
}

static void a_contracts(void **state) {
    (void)state;
    char buf[64];
    assert_string_equal(mg_fr_a("Le Havre", buf, sizeof(buf)), "au Havre");
    assert_string_equal(mg_fr_a("le Calvados", buf, sizeof(buf)), "au Calvados");
    assert_string_equal(mg_fr_a("Les Andelys", buf, sizeof(buf)), "aux Andelys");
    assert_string_equal(mg_fr_a("La Ferté-Macé", buf, sizeof(buf)), "à La Ferté-Macé");
    assert_string_equal(mg_fr_a("Évreux", buf, sizeof(buf)), "à Évreux");
    assert_string_equal(mg_fr_a("la CU Caen la Mer", buf, sizeof(buf)), "à la CU Caen la Mer");
    assert_string_equal(mg_fr_a(NULL, buf, sizeof(buf)), "à ");
    /* Intercommunalities are feminine, with their article. */
    char epci[96];
    assert_string_equal(
        mg_fr_a(mg_fr_epci("Métropole Rouen Normandie", epci, sizeof(epci)), buf, sizeof(buf)),
        "à la Métropole Rouen Normandie");
}

static void de_elides_and_contracts(void **state) {
    (void)state;
    char buf[64], epci[64];
    assert_string_equal(mg_fr_de("le Calvados", buf, sizeof(buf)), "du Calvados");
    assert_string_equal(mg_fr_de("Le Havre", buf, sizeof(buf)), "du Havre");
    assert_string_equal(mg_fr_de("Les Éditions du Marais", buf, sizeof(buf)), "des Éditions du Marais");
    assert_string_equal(mg_fr_de("la Manche", buf, sizeof(buf)), "de la Manche");
    assert_string_equal(mg_fr_de("l'Eure", buf, sizeof(buf)), "de l'Eure");
    assert_string_equal(mg_fr_de("Épicerie solidaire du Bessin", buf, sizeof(buf)),
                        "d'Épicerie solidaire du Bessin");
    assert_string_equal(mg_fr_de("Aide à domicile", buf, sizeof(buf)), "d'Aide à domicile");
    assert_string_equal(mg_fr_de("Honfleur", buf, sizeof(buf)), "d'Honfleur");
    assert_string_equal(mg_fr_de("Œuvre commune", buf, sizeof(buf)), "d'Œuvre commune");
    assert_string_equal(mg_fr_de("Caen", buf, sizeof(buf)), "de Caen");
    assert_string_equal(mg_fr_de("yann", buf, sizeof(buf)), "de yann");
    assert_string_equal(mg_fr_de("Yvetot", buf, sizeof(buf)), "d'Yvetot");
    assert_string_equal(mg_fr_de(mg_fr_epci("CU Caen la Mer", epci, sizeof(epci)), buf, sizeof(buf)),
                        "de la CU Caen la Mer");
    assert_string_equal(mg_fr_de("Ça va", buf, sizeof(buf)), "de Ça va");
    assert_string_equal(mg_fr_de("", buf, sizeof(buf)), "de ");
    assert_string_equal(mg_fr_de(NULL, buf, sizeof(buf)), "de ");
    /* A person's name: elided, never contracted ("du Goff Marie" was written). */
    assert_string_equal(mg_fr_de_person("Le Goff Marie", buf, sizeof(buf)), "de Le Goff Marie");
    assert_string_equal(mg_fr_de_person("Les Ouvriers", buf, sizeof(buf)), "de Les Ouvriers");
    assert_string_equal(mg_fr_de_person("Éric Morel", buf, sizeof(buf)), "d'Éric Morel");
    assert_string_equal(mg_fr_de_person("Hélène", buf, sizeof(buf)), "d'Hélène");
    assert_string_equal(mg_fr_de_person("Yann Duval", buf, sizeof(buf)), "de Yann Duval");
    assert_string_equal(mg_fr_de_person(NULL, buf, sizeof(buf)), "de ");
}

static void closures_agree_with_their_noun(void **state) {
    (void)state;
    assert_string_equal(mg_fr_closure(MAILLAGE__V1__CLOSURE__CLOSURE_CANCELLED, 0), "annulé");
    assert_string_equal(mg_fr_closure(MAILLAGE__V1__CLOSURE__CLOSURE_CANCELLED, 1), "annulée");
    assert_string_equal(mg_fr_closure(MAILLAGE__V1__CLOSURE__CLOSURE_EXPIRED, 1), "expirée");
    assert_string_equal(mg_fr_closure(MAILLAGE__V1__CLOSURE__CLOSURE_SATISFIED, 0), "satisfait");
    assert_string_equal(mg_fr_closure(MAILLAGE__V1__CLOSURE__CLOSURE_SATISFIED, 1), "pourvue"); /* an offer */
    assert_string_equal(mg_fr_closure(MAILLAGE__V1__CLOSURE__CLOSURE_MEMBER_LEFT, 1),
                        "la structure a quitté le réseau");
}

static void networks_take_the_article_their_name_wants(void **state) {
    (void)state;
    /* a name, then it with its article, then after "à" */
    static const char *const cases[][3] = {
        {"URSCOP Normandie", "le réseau URSCOP Normandie", "au réseau URSCOP Normandie"},
        {"Réseau normand des ressourceries", "le Réseau normand des ressourceries",
         "au Réseau normand des ressourceries"},
        {"Fédération des centres sociaux", "la Fédération des centres sociaux",
         "à la Fédération des centres sociaux"},
        {"Union régionale des Scop", "l'Union régionale des Scop", "à l'Union régionale des Scop"},
        {"Le Mouvement associatif", "le Mouvement associatif", "au Mouvement associatif"},
        {"L\xe2\x80\x99Union des Scic", "l\xe2\x80\x99Union des Scic", "à l\xe2\x80\x99Union des Scic"},
        /* a word that only starts like one, an acronym, no name */
        {"Réseaux d'ici", "le réseau Réseaux d'ici", "au réseau Réseaux d'ici"},
        {"CRESS Normandie", "le réseau CRESS Normandie", "au réseau CRESS Normandie"},
        {"", "un réseau", "à un réseau"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char the[160], to[160];
        assert_string_equal(mg_fr_network(cases[i][0], the, sizeof(the)), cases[i][1]);
        assert_string_equal(mg_fr_a(the, to, sizeof(to)), cases[i][2]);
    }
}

static void distances_read_as_explanations_say_them(void **state) {
    (void)state;
    char buf[32];
    assert_string_equal(mg_fr_distance(3.6, 0, buf, sizeof(buf)), "à 4 km");
    assert_string_equal(mg_fr_distance(161.8, 0, buf, sizeof(buf)), "à 162 km");
    assert_string_equal(mg_fr_distance(0.4, 0, buf, sizeof(buf)), "à moins d'un km");
    assert_string_equal(mg_fr_distance(0.0, 1, buf, sizeof(buf)), "dans la même commune");
}

static void departments_and_their_articles(void **state) {
    (void)state;
    assert_string_equal(mg_fr_department("14"), "Calvados");
    assert_string_equal(mg_fr_department_with_article("27"), "l'Eure");
    assert_string_equal(mg_fr_department_with_article("50"), "la Manche");
    assert_null(mg_fr_department("75"));
    assert_null(mg_fr_department_with_article(""));
    assert_string_equal(mg_fr_department_in("14"), "dans le Calvados");
    assert_string_equal(mg_fr_department_in("61"), "dans l'Orne");
    assert_string_equal(mg_fr_department_in("76"), "en Seine-Maritime");
    assert_null(mg_fr_department_in("75"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_label_inside_a_sentence_loses_its_capital_not_an_acronym),
        cmocka_unit_test(numbers_take_a_decimal_comma),
        cmocka_unit_test(a_number_too_long_is_cut_not_overrun),
        cmocka_unit_test(scores_read_as_rounded_percentages),
        cmocka_unit_test(a_score_below_a_threshold_never_reads_as_it),
        cmocka_unit_test(de_elides_and_contracts),
        cmocka_unit_test(a_contracts),
        cmocka_unit_test(closures_agree_with_their_noun),
        cmocka_unit_test(networks_take_the_article_their_name_wants),
        cmocka_unit_test(distances_read_as_explanations_say_them),
        cmocka_unit_test(departments_and_their_articles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
