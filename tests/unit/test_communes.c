/* test_communes.c -- the shipped commune table loads whole and right, lookups
 * and distances hold, and a malformed table is refused with FILE:LINE. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "maillage/communes.h"

#define SHIPPED MAILLAGE_SOURCE_DIR "/config/communes-normandie.csv"

static void shipped_table_has_every_commune_of_normandy(void **state) {
    (void)state;
    char err[256];
    mg_communes_t *t = mg_communes_load(SHIPPED, err, sizeof err);
    if (!t) fail_msg("%s", err);
    assert_int_equal(mg_communes_count(t), 2644);
    unsigned long long population = 0;
    int per_dep[100] = {0};
    for (size_t i = 0; i < mg_communes_count(t); i++) {
        const mg_commune_t *c = mg_communes_at(t, i);
        population += c->population;
        per_dep[atoi(c->department)]++;
        assert_ptr_equal(mg_communes_find(t, c->code), c); /* every code is found */
    }
    assert_int_equal(population, 3345842); /* the source's regional total */
    assert_true(per_dep[14] > 0 && per_dep[27] > 0 && per_dep[50] > 0 && per_dep[61] > 0 && per_dep[76] > 0);
    assert_int_equal(per_dep[14] + per_dep[27] + per_dep[50] + per_dep[61] + per_dep[76], 2644);
    assert_null(mg_communes_at(t, 2644));
    mg_communes_destroy(&t);
    assert_null(t);
    mg_communes_destroy(&t);
}

static void caen_has_its_department_epci_and_position(void **state) {
    (void)state;
    char err[256];
    mg_communes_t *t = mg_communes_load(SHIPPED, err, sizeof err);
    assert_non_null(t);
    const mg_commune_t *caen = mg_communes_find(t, "14118");
    assert_non_null(caen);
    assert_string_equal(caen->name, "Caen");
    assert_string_equal(caen->department, "14");
    assert_string_equal(caen->epci, "200065597");
    assert_string_equal(caen->epci_name, "CU Caen la Mer");
    assert_true(caen->latitude > 49.18 && caen->latitude < 49.19);
    assert_true(caen->longitude > -0.38 && caen->longitude < -0.37);
    assert_int_equal(caen->population, 109400);
    /* A quoted EPCI name containing a comma. */
    const mg_commune_t *granville = mg_communes_find(t, "50008");
    assert_non_null(granville);
    assert_string_equal(granville->epci_name, "CC de Granville, Terre et Mer");
    assert_null(mg_communes_find(t, "75056")); /* Paris is not in Normandy */
    assert_null(mg_communes_find(t, ""));
    assert_null(mg_communes_find(t, NULL));
    mg_communes_destroy(&t);
}

static void an_epci_has_its_name_and_departments(void **state) {
    (void)state;
    char err[256];
    mg_communes_t *t = mg_communes_load(SHIPPED, err, sizeof err);
    assert_non_null(t);
    const mg_epci_t *caen = mg_communes_epci(t, "200065597");
    assert_non_null(caen);
    assert_string_equal(caen->name, "CU Caen la Mer");
    assert_string_equal(caen->departments, "14");
    /* Across the Calvados and the Eure, its first commune's first. */
    const mg_epci_t *honfleur = mg_communes_epci(t, "200066827");
    assert_non_null(honfleur);
    assert_string_equal(honfleur->department, "14");
    assert_string_equal(honfleur->departments, "14 27");
    assert_true(mg_epci_in_department(honfleur, "27"));
    assert_true(mg_epci_in_department(honfleur, "14"));
    assert_false(mg_epci_in_department(honfleur, "1"));
    assert_false(mg_epci_in_department(honfleur, "76"));
    assert_false(mg_epci_in_department(honfleur, ""));
    assert_false(mg_epci_in_department(NULL, "14"));
    assert_null(mg_communes_epci(t, "999999999"));
    assert_null(mg_communes_epci(t, "2000655970000")); /* too long, not cut to a known one */
    assert_null(mg_communes_epci(t, ""));
    assert_null(mg_communes_epci(t, NULL));
    /* A territory entry's department: a department's, an EPCI's first
     * commune's, a commune's. */
    assert_string_equal(mg_communes_territory_department(t, "dep:76"), "76");
    assert_string_equal(mg_communes_territory_department(t, "epci:200066827"), "14");
    assert_string_equal(mg_communes_territory_department(t, "27229"), "27");
    assert_null(mg_communes_territory_department(t, "epci:999999999"));
    assert_null(mg_communes_territory_department(t, "dep:"));
    assert_null(mg_communes_territory_department(t, ""));
    mg_communes_destroy(&t);
}

static void distances_are_great_circle_kilometres(void **state) {
    (void)state;
    char err[256];
    mg_communes_t *t = mg_communes_load(SHIPPED, err, sizeof err);
    assert_non_null(t);
    const mg_commune_t *caen = mg_communes_find(t, "14118");
    const mg_commune_t *rouen = mg_communes_find(t, "76540");
    assert_non_null(rouen);
    double d = mg_communes_distance_km(caen, rouen);
    /* Caen-Rouen as the crow flies: about 110 km. */
    assert_true(d > 105 && d < 115);
    assert_true(mg_communes_distance_km(rouen, caen) == d);
    assert_true(mg_communes_distance_km(caen, caen) == 0.0);
    /* A known geodesic: one degree of latitude is about 111.2 km. */
    mg_commune_t a = {.latitude = 49.0, .longitude = 0.0}, b = {.latitude = 50.0, .longitude = 0.0};
    double one = mg_communes_distance_km(&a, &b);
    assert_true(one > 111.1 && one < 111.3);
    mg_communes_destroy(&t);
}

static void nearest_communes_in_order(void **state) {
    (void)state;
    char err[256];
    mg_communes_t *t = mg_communes_load(SHIPPED, err, sizeof err);
    assert_non_null(t);
    const mg_commune_t *caen = mg_communes_find(t, "14118");
    assert_ptr_equal(mg_communes_at(t, mg_communes_index(t, caen)), caen);
    const mg_commune_t *near[20];
    double km[20];
    size_t n = mg_communes_nearest(t, caen->latitude, caen->longitude, 20, near, km);
    assert_int_equal(n, 20);
    assert_ptr_equal(near[0], caen);
    assert_true(km[0] == 0.0);
    /* Nearest first, each distance the haversine one, and nothing nearer
     * left out: every other commune is at least as far as the 20th. */
    for (size_t i = 0; i < n; i++) {
        assert_true(km[i] == mg_communes_distance_km(caen, near[i]));
        if (i) assert_true(km[i] >= km[i - 1]);
    }
    size_t closer = 0;
    for (size_t i = 0; i < mg_communes_count(t); i++)
        closer += mg_communes_distance_km(caen, mg_communes_at(t, i)) < km[19];
    assert_true(closer <= 19);
    /* Asking for more than the table holds gives the whole table. */
    size_t all = mg_communes_count(t);
    const mg_commune_t **every = malloc((all + 5) * sizeof(*every));
    double *every_km = malloc((all + 5) * sizeof(*every_km));
    assert_int_equal(mg_communes_nearest(t, 49.0, 0.0, all + 5, every, every_km), all);
    assert_int_equal(mg_communes_nearest(t, 49.0, 0.0, 0, every, every_km), 0);
    free(every);
    free(every_km);
    mg_communes_destroy(&t);
}

static void code_shapes(void **state) {
    (void)state;
    assert_true(mg_commune_code_is_valid("14118"));
    assert_true(mg_commune_code_is_valid("2A004"));
    assert_true(mg_commune_code_is_valid("2B033"));
    assert_true(mg_commune_code_is_valid("97105"));
    assert_false(mg_commune_code_is_valid("1411"));
    assert_false(mg_commune_code_is_valid("141180"));
    assert_false(mg_commune_code_is_valid("2C004"));
    assert_false(mg_commune_code_is_valid("3A004"));
    assert_false(mg_commune_code_is_valid("14a18"));
    assert_false(mg_commune_code_is_valid(" 1411"));
    assert_false(mg_commune_code_is_valid(""));
    assert_false(mg_commune_code_is_valid(NULL));
}

static char s_path[64];

static const char *s_write(const char *text) {
    snprintf(s_path, sizeof s_path, "/tmp/maillage-communes-XXXXXX");
    int fd = mkstemp(s_path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return s_path;
}

static void s_expect_error(const char *text, const char *suffix) {
    char err[256], expected[256];
    const char *path = s_write(text);
    mg_communes_t *t = mg_communes_load(path, err, sizeof err);
    unlink(path);
    if (t) {
        mg_communes_destroy(&t);
        fail_msg("accepted: %s", text);
    }
    snprintf(expected, sizeof expected, "%s%s", path, suffix);
    assert_string_equal(err, expected);
}

#define HEADER "code_insee,nom,dep_code,epci_siren,epci_nom,latitude,longitude,population_municipale\n"
#define FORMER_HEADER                                                                                        \
    "code_insee,nom,dep_code,epci_siren,epci_nom,latitude,longitude,population_municipale,former_codes\n"

static void malformed_tables_are_refused_with_file_and_line(void **state) {
    (void)state;
    /* A good table with extra columns in another order loads. */
    char err[256];
    const char *path =
        s_write("extra,longitude,latitude,nom,code_insee,dep_code,epci_siren,epci_nom,"
                "population_municipale\n"
                "x,-0.3722,49.1846,Caen,14118,14,200065597,\"CU \"\"Caen\"\" la Mer\",109400\n");
    mg_communes_t *t = mg_communes_load(path, err, sizeof err);
    unlink(path);
    if (!t) fail_msg("%s", err);
    assert_string_equal(mg_communes_find(t, "14118")->epci_name, "CU \"Caen\" la Mer");
    mg_communes_destroy(&t);

    s_expect_error("code_insee,nom\n", ":1: missing column \"dep_code\"");
    s_expect_error(HEADER "1411,Caen,14,200065597,CU,49.1,-0.3,1\n", ":2: bad commune code \"1411\"");
    s_expect_error(HEADER "14118,Caen,14,200065597,CU,49.1,-0.3,1\n14118,Caen,14,200065597,CU,49.1,-0.3,1\n",
                   ":3: commune code 14118 already given on line 2");
    /* A former code is no current commune's, nor another's former code. */
    s_expect_error(FORMER_HEADER "14118,Caen,14,200065597,CU,49.1,-0.3,1,14001\n"
                                 "14001,Ablon,14,200066827,CC,49.4,0.28,1,\n",
                   ":3: commune code 14001 already given on line 2");
    s_expect_error(FORMER_HEADER "14118,Caen,14,200065597,CU,49.1,-0.3,1,14002 14118\n",
                   ":2: commune code 14118 already given on line 2");
    s_expect_error(FORMER_HEADER "14118,Caen,14,200065597,CU,49.1,-0.3,1,14002\n"
                                 "14001,Ablon,14,200066827,CC,49.4,0.28,1,14002\n",
                   ":3: commune code 14002 already given on line 2");
    s_expect_error(FORMER_HEADER "14118,Caen,14,200065597,CU,49.1,-0.3,1,14002 1400\n",
                   ":2: bad former commune code \"1400\"");
    s_expect_error(HEADER "14118,Caen,27,200065597,CU,49.1,-0.3,1\n",
                   ":2: department \"27\" does not match code 14118");
    s_expect_error(HEADER "14118,Caen,14,2000655,CU,49.1,-0.3,1\n", ":2: bad EPCI SIREN \"2000655\"");
    s_expect_error(HEADER "14118,Caen,14,200065597,CU,north,-0.3,1\n", ":2: bad coordinates");
    s_expect_error(HEADER "14118,Caen,14,200065597,CU,91,-0.3,1\n", ":2: bad coordinates");
    s_expect_error(HEADER "14118,Caen,14,200065597,CU,49.1,-0.3,many\n", ":2: bad population \"many\"");
    s_expect_error(HEADER "14118,Caen,14,200065597,\"CU,49.1,-0.3,1\n", ":2: malformed CSV record");
    s_expect_error(HEADER "14118,Caen,14\n", ":2: 3 fields, expected at least 4");
    s_expect_error(HEADER "14118,,14,200065597,CU,49.1,-0.3,1\n", ":2: empty commune name");
    s_expect_error(HEADER "14118,Ca\xe9n,14,200065597,CU,49.1,-0.3,1\n", ":2: invalid UTF-8");
    s_expect_error("", ": empty file");

    assert_null(mg_communes_load("/nonexistent/communes.csv", err, sizeof err));
    assert_string_equal(err, "/nonexistent/communes.csv: cannot open: No such file or directory");
}

/* A former commune's code (a commune déléguée or associée) stands for the
 * commune it merged into; only current communes are counted and listed. */
static void former_codes_find_the_commune_they_merged_into(void **state) {
    (void)state;
    char err[256];
    mg_communes_t *t = mg_communes_load(SHIPPED, err, sizeof err);
    if (!t) fail_msg("%s", err);
    const mg_commune_t *livarot = mg_communes_find(t, "14371");
    assert_non_null(livarot);
    assert_string_equal(livarot->name, "Livarot-Pays-d'Auge");
    /* Fervaques (14265) and Heurtevent (14330) merged into it. */
    assert_ptr_equal(mg_communes_find(t, "14265"), livarot);
    assert_ptr_equal(mg_communes_find(t, "14330"), livarot);
    /* Acqueville (14002) merged into Cesny-Imbercourt (14150). */
    const mg_commune_t *cesny = mg_communes_find(t, "14002");
    assert_non_null(cesny);
    assert_string_equal(cesny->code, "14150");
    /* A commune nouvelle that kept its chef-lieu's code is that code's. */
    assert_string_equal(mg_communes_find(t, "14005")->name, "Valambray");
    /* 522 former codes, none of them listed as a commune. */
    size_t former = 0;
    for (size_t i = 0; i < mg_communes_count(t); i++)
        assert_string_not_equal(mg_communes_at(t, i)->code, "14265");
    for (int dep = 14; dep <= 76; dep++) {
        for (int n = 1; n < 1000; n++) {
            char code[8];
            snprintf(code, sizeof code, "%02d%03d", dep, n);
            const mg_commune_t *c = mg_communes_find(t, code);
            if (c && strcmp(c->code, code) != 0) former++;
        }
    }
    assert_int_equal(former, 522);
    assert_int_equal(mg_communes_count(t), 2644);
    mg_communes_destroy(&t);
}

/* The shipped table is exactly what the script makes from the source, when
 * the source is available (it is not on users' machines). */
static void shipped_table_is_the_scripts_output(void **state) {
    (void)state;
    const char *source = "/work/shared/data/communes-normandie-2026.csv";
    const char *former = "/work/shared/data/communes-deleguees-normandie-2026.csv";
    if (access(source, R_OK) != 0 || access(former, R_OK) != 0 || access("/usr/bin/python3", X_OK) != 0)
        skip();
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/scripts/make-communes.py %s %s %s/communes-check.csv >/dev/null && "
             "cmp -s %s/communes-check.csv " SHIPPED,
             MAILLAGE_SOURCE_DIR, source, former, MAILLAGE_BINARY_DIR, MAILLAGE_BINARY_DIR);
    assert_int_equal(system(cmd), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shipped_table_has_every_commune_of_normandy),
        cmocka_unit_test(caen_has_its_department_epci_and_position),
        cmocka_unit_test(an_epci_has_its_name_and_departments),
        cmocka_unit_test(distances_are_great_circle_kilometres),
        cmocka_unit_test(nearest_communes_in_order),
        cmocka_unit_test(code_shapes),
        cmocka_unit_test(malformed_tables_are_refused_with_file_and_line),
        cmocka_unit_test(former_codes_find_the_commune_they_merged_into),
        cmocka_unit_test(shipped_table_is_the_scripts_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
