/* test_token.c -- gateway tokens (token.h): their form, their hash and id,
 * and the event-type patterns a network token carries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/token.h"

static void test_generated_tokens_are_well_formed_and_distinct(void **state) {
    (void)state;
    char a[MG_TOKEN_LEN + 1], b[MG_TOKEN_LEN + 1];
    assert_int_equal(mg_token_generate(a), 0);
    assert_int_equal(mg_token_generate(b), 0);
    assert_int_equal(strlen(a), MG_TOKEN_LEN);
    assert_memory_equal(a, "mgt_", 4);
    assert_true(mg_token_is_well_formed(a, strlen(a)));
    assert_string_not_equal(a, b);
}

static void test_malformed_tokens_are_refused_before_hashing(void **state) {
    (void)state;
    char t[MG_TOKEN_LEN + 1];
    assert_int_equal(mg_token_generate(t), 0);
    assert_false(mg_token_is_well_formed(t, MG_TOKEN_LEN - 1));
    assert_false(mg_token_is_well_formed(NULL, 0));
    t[10] = '/'; /* base64, not base64url */
    assert_false(mg_token_is_well_formed(t, MG_TOKEN_LEN));
    t[10] = 'A';
    t[0] = 'x';
    assert_false(mg_token_is_well_formed(t, MG_TOKEN_LEN));
}

static void test_hash_is_sha256_hex_and_id_its_prefix(void **state) {
    (void)state;
    char hash[MG_TOKEN_HASH_LEN + 1], id[MG_TOKEN_ID_LEN + 1];
    mg_token_hash_hex("abc", 3, hash);
    assert_string_equal(hash, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    mg_token_id_from_hash(hash, id);
    assert_string_equal(id, "tok-ba7816bf8f01");
}

static void test_type_patterns(void **state) {
    (void)state;
    char err[128];
    const char *def = MG_TOKEN_DEFAULT_TYPES;
    assert_int_equal(mg_token_types_check(def, err, sizeof err), 0);
    assert_true(mg_token_types_allow(def, "need.reported"));
    assert_true(mg_token_types_allow(def, "cooperation.answered"));
    assert_false(mg_token_types_allow(def, "match.found"));
    assert_false(mg_token_types_allow(def, "match.feedback"));
    /* What the chamber's programs emit is never granted by a wildcard. */
    assert_true(mg_token_types_allow("*", "need.reported"));
    assert_false(mg_token_types_allow("*", "match.found"));
    assert_false(mg_token_types_allow("match.*", "match.feedback"));
    assert_false(mg_token_types_allow("*", "collective_need.detected"));
    assert_true(mg_token_types_allow("need.*,match.feedback", "match.feedback"));
    assert_true(mg_token_types_allow(" need.reported , offer.* ", "offer.withdrawn"));
    assert_false(mg_token_types_allow("need.reported", "need.reported2"));
    assert_false(mg_token_types_allow("need.reported", "need.report"));
    assert_false(mg_token_types_allow("", "need.reported"));
    assert_int_equal(mg_token_types_check("need.*,Offer", err, sizeof err), -1);
    assert_int_equal(mg_token_types_check(" , ", err, sizeof err), -1);
    /* A pattern that allows no type is a typo, not a token that may post
     * nothing: refused, naming it. */
    assert_int_equal(mg_token_types_check("need.*,ofer.*", err, sizeof err), -1);
    assert_non_null(strstr(err, "\"ofer.*\" allows no event type"));
    assert_int_equal(mg_token_types_check("need.reportd", err, sizeof err), -1);
    assert_int_equal(mg_token_types_check("need.", err, sizeof err), -1);
    assert_non_null(strstr(err, "\"need.\" allows no event type: a prefix ends with *")); /* as `tail` takes it */
    assert_int_equal(mg_token_types_check("match.*", err, sizeof err), -1); /* never granted by a prefix */
    assert_int_equal(mg_token_types_check("need.*,offer.published,match.feedback", err, sizeof err), 0);
    assert_int_equal(mg_token_types_check("*", err, sizeof err), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_tokens_are_well_formed_and_distinct),
        cmocka_unit_test(test_malformed_tokens_are_refused_before_hashing),
        cmocka_unit_test(test_hash_is_sha256_hex_and_id_its_prefix),
        cmocka_unit_test(test_type_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
