/* test_script.c -- the arguments gathered for Redis commands: each copied,
 * binary-safe, numbers written in full whatever their size. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "maillage/script.h"

static void arguments_are_copied_and_binary_safe(void **state) {
    (void)state;
    mg_args_t a;
    mg_args_init(&a);
    char word[] = "locaux";
    mg_args_str(&a, word);
    word[0] = 'X';
    mg_args_bytes(&a, "a\0b", 3);
    mg_args_str(&a, NULL);
    mg_args_int(&a, -9223372036854775807LL - 1);
    assert_int_equal(a.argc, 4);
    assert_string_equal(a.argv[0], "locaux");
    assert_int_equal(a.lens[1], 3);
    assert_memory_equal(a.argv[1], "a\0b", 3);
    assert_int_equal(a.lens[2], 0);
    assert_string_equal(a.argv[3], "-9223372036854775808");
    mg_args_clear(&a);
}

static void doubles_are_written_whole_and_non_finite_ones_as_zero(void **state) {
    (void)state;
    mg_args_t a;
    mg_args_init(&a);
    mg_args_double(&a, 0.35);
    mg_args_double(&a, -1);
    mg_args_double(&a, 1e300); /* 301 digits: more than a small buffer holds */
    mg_args_double(&a, -1.7976931348623157e308);
    mg_args_double(&a, NAN);
    mg_args_double(&a, INFINITY);
    assert_string_equal(a.argv[0], "0.350000");
    assert_string_equal(a.argv[1], "-1.000000");
    assert_int_equal(a.lens[2], 301 + 7);
    assert_string_equal(a.argv[2],
        "100000000000000005250476025520442024870446858110815915491585411551180245798890819578637137508044"
        "786404370444383288387817694252323536043057564479218478670698284838720092657580373783023379478809"
        "005936895323497079994508111903896764088007465274278014249457925878882005684283811566947219638686"
        "5459400540160.000000");
    assert_int_equal(a.lens[3], 1 + 309 + 7);
    assert_string_equal(a.argv[4], "0");
    assert_string_equal(a.argv[5], "0");
    mg_args_clear(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arguments_are_copied_and_binary_safe),
        cmocka_unit_test(doubles_are_written_whole_and_non_finite_ones_as_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
