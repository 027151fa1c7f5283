/* test_taxonomy.c -- mg_taxonomy_new(): the categories of [categories] and
 * the networks' names of [networks], each entry checked, and their lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/config.h"
#include "maillage/taxonomy.h"

static char s_err[512];

/* The taxonomy of configuration `text`, or NULL with the reason in s_err. */
static mg_taxonomy_t *s_taxonomy(const char *text) {
    s_err[0] = '\0';
    mg_config_t *cfg = mg_config_load_buffer("test.conf", text, strlen(text), s_err, sizeof s_err);
    assert_non_null(cfg);
    mg_taxonomy_t *tax = mg_taxonomy_new(cfg, s_err, sizeof s_err);
    mg_config_destroy(&cfg);
    return tax;
}

static void s_refused(const char *text, const char *message) {
    mg_taxonomy_t *tax = s_taxonomy(text);
    if (tax) {
        mg_taxonomy_destroy(&tax);
        fail_msg("accepted: %s", text);
    }
    assert_string_equal(s_err, message);
}

static void test_the_defaults_have_categories_and_name_no_network(void **state) {
    (void)state;
    mg_taxonomy_t *tax = s_taxonomy("");
    assert_non_null(tax);
    assert_int_equal(mg_taxonomy_count(tax), 12);
    assert_string_equal(mg_taxonomy_code(tax, 0), "locaux");
    assert_string_equal(mg_taxonomy_label(tax, "materiel"), "Matériel et réemploi");
    assert_null(mg_taxonomy_label(tax, "licornes"));
    assert_int_equal(mg_taxonomy_network_count(tax), 0);
    assert_null(mg_taxonomy_network_name(tax, "urscop-normandie"));
    assert_null(mg_taxonomy_network_id(tax, 0));
    mg_taxonomy_destroy(&tax);
}

static void test_networks_are_named_in_configuration_order(void **state) {
    (void)state;
    mg_taxonomy_t *tax = s_taxonomy("[networks]\n"
                                    "urscop-normandie = URSCOP Normandie\n"
                                    "cress.normandie = CRESS de Normandie\n"
                                    "Manche_Active = Manche Active, fonds territorial\n");
    assert_non_null(tax);
    assert_int_equal(mg_taxonomy_network_count(tax), 3);
    assert_string_equal(mg_taxonomy_network_id(tax, 0), "urscop-normandie");
    assert_string_equal(mg_taxonomy_network_id(tax, 2), "Manche_Active");
    assert_null(mg_taxonomy_network_id(tax, 3));
    assert_string_equal(mg_taxonomy_network_name(tax, "cress.normandie"), "CRESS de Normandie");
    assert_string_equal(mg_taxonomy_network_name(tax, "Manche_Active"), "Manche Active, fonds territorial");
    assert_null(mg_taxonomy_network_name(tax, "manche_active")); /* ids are case-sensitive */
    assert_null(mg_taxonomy_network_name(tax, NULL));
    /* The categories are still the defaults. */
    assert_int_equal(mg_taxonomy_count(tax), 12);
    mg_taxonomy_destroy(&tax);
}

static void test_bad_entries_are_refused_with_their_section_and_key(void **state) {
    (void)state;
    s_refused("[networks]\nurscop-normandie =\n", "[networks] urscop-normandie: empty label");
    char text[400];
    snprintf(text, sizeof text, "[networks]\nlong = %0201d\n", 0);
    s_refused(text, "[networks] long: label is not valid UTF-8 of at most 200 bytes");
    snprintf(text, sizeof text, "[networks]\n%065d = Trop long\n", 0);
    char message[200];
    snprintf(message, sizeof message,
             "[networks] %065d: not a network id (1 to 64 characters of A-Z, a-z, 0-9, . _ -)", 0);
    s_refused(text, message);
    s_refused("[categories]\nLocaux = Locaux\n",
              "[categories] Locaux: a category code is 1 to 32 characters of a-z and _");
    s_refused("[categories]\nlocaux =\n", "[categories] locaux: empty label");
    s_refused("[categories]\n", "[categories]: no category defined");
}

/* A colon is no key character of the configuration, and invalid UTF-8 no
 * text of it: what the configuration refuses never reaches the taxonomy. */
static void test_what_the_configuration_refuses_is_its_error(void **state) {
    (void)state;
    static const char *const texts[] = {"[networks]\nurscop:items = Non\n",
                                        "[networks]\nurscop = URSCOP \xff\n"};
    static const char *const errors[] = {"invalid key \"urscop:items\"", "test.conf:2: invalid UTF-8"};
    for (size_t i = 0; i < 2; i++) {
        mg_config_t *cfg =
            mg_config_load_buffer("test.conf", texts[i], strlen(texts[i]), s_err, sizeof s_err);
        assert_null(cfg);
        assert_non_null(strstr(s_err, errors[i]));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_defaults_have_categories_and_name_no_network),
        cmocka_unit_test(test_networks_are_named_in_configuration_order),
        cmocka_unit_test(test_bad_entries_are_refused_with_their_section_and_key),
        cmocka_unit_test(test_what_the_configuration_refuses_is_its_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
